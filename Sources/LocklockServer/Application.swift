import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus
import Redlock
import ServiceLifecycle
import Synchronization
import Tracing

/// Builds the router of the Locklock REST API.
public func buildRouter(
    groups: MasterGroups,
    configuration: LocklockServerConfiguration,
    prometheus: PrometheusCollectorRegistry? = nil
) -> Router<LocklockRequestContext> {
    let router = Router(context: LocklockRequestContext.self)
    // Extracts the caller's trace context (W3C traceparent with an OpenTelemetry tracer), so
    // the lock operations' spans join the caller's trace. Only when a tracer was bootstrapped
    // before the router is built: the middleware builds span attributes for the no-op tracer
    // too, and sends every response as two writes.
    if !(InstrumentationSystem.tracer is NoOpTracer) {
        router.middlewares.add(TracingMiddleware())
    }
    router.middlewares.add(RequestMetricsMiddleware())
    router.middlewares.add(ProblemMiddleware())
    if let allowed = configuration.allowedHosts { router.middlewares.add(AllowedHostsMiddleware(allowed)) }
    LockController(groups: groups, configuration: configuration, limiter: RateLimiter()).register(on: router)
    router.get("/livez") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
    }
    let answering = AnsweringMasters(freshFor: .seconds(1))
    router.get("/readyz") { _, _ -> Response in
        // Ready when a quorum of every group votes and answers a PING within the instance timeout.
        for (name, redlock) in groups.named {
            let statuses = await redlock.masterStatus()
            if statuses.count(where: { $0.state == .voting }) < redlock.quorum {
                let quorumBack = MasterStatus.timeUntilQuorum(statuses, quorum: redlock.quorum)
                throw Problem.unavailable(
                    "fewer than a quorum of the \(name) lock servers vote: " + readinessDetail(statuses),
                    retryAfter: quorumBack.map { $0.secondsRoundedUp } ?? 1
                )
            }
            if await answering.count(name, of: redlock) < redlock.quorum {
                throw Problem.unavailable("fewer than a quorum of the \(name) lock servers answer")
            }
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ready"}"#)))
    }
    if configuration.servesMetrics {
        // On the public address the masters are named by place (1-based, per group), as on
        // /readyz: their addresses are internal.
        var places: [String: String] = [:]
        for (_, redlock) in groups.named {
            for (index, master) in redlock.masters.enumerated() where places[#"master="\#(master)""#] == nil {
                places[#"master="\#(master)""#] = #"master="\#(index + 1)""#
            }
        }
        addMetricsRoute(to: router, prometheus: prometheus, replacing: places)
    }
    let openapi = OpenAPIDocument.json(maximumExpiresIn: configuration.maximumExpiresIn, maximumWait: configuration.maximumWait)
    router.get("/v1/api/openapi.json") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: openapi)))
    }
    return router
}

/// Builds the whole application: the router, the server on `configuration.host:port` (HTTPS
/// when a certificate and key are configured), and the Redlock clients as services (dialled
/// at start, closed on graceful shutdown). The server runs on `eventLoopGroup` (NIO's shared
/// loops unless given), and each connection's requests run on that connection's loop, not on
/// the task pool. Give the Redlock clients the same group: a request on the loop of its
/// group's connections makes no thread hop, and with a group of one loop none does.
///
/// - Throws: when the TLS certificate or key cannot be read.
public func buildApplication(
    groups: MasterGroups,
    configuration: LocklockServerConfiguration,
    prometheus: PrometheusCollectorRegistry? = nil,
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    logger: Logger = Logger(label: "locklock")
) throws -> some ApplicationProtocol {
    let router = buildRouter(groups: groups, configuration: configuration, prometheus: prometheus)
    let limits = ConnectionGuard.Limits(
        headerTimeout: .nanoseconds(configuration.headerTimeout.nanoseconds),
        bodyTimeout: .nanoseconds(configuration.bodyTimeout.nanoseconds),
        idleTimeout: .nanoseconds(configuration.idleTimeout.nanoseconds),
        connections: ConnectionCount(maximum: configuration.maximumConnections, perClient: configuration.connectionsPerClient),
        trustedProxies: configuration.trustedProxies
    )
    let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [ConnectionGuard(limits: limits)], idleTimeout: limits.idleTimeout)
    let executors = LoopExecutors(eventLoopGroup)
    var tls: TLSConfiguration?
    if let certificatePath = configuration.tlsCertificatePath, let keyPath = configuration.tlsKeyPath {
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
        var server = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain,
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
        )
        // TLS 1.0 and 1.1 are deprecated (RFC 8996).
        server.minimumTLSVersion = .tlsv12
        tls = server
    }
    let server = HTTPServerBuilder { [tls] responder -> any ServerChildChannel in
        let plain = HTTP1Channel(responder: responder, configuration: http1)
        guard let tls else { return LoopPinnedChannel(base: plain, executors: executors) }
        return LoopPinnedChannel(base: try TLSChannel(plain, tlsConfiguration: tls), executors: executors)
    }
    return Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "locklock"),
        services: groups.all,
        eventLoopGroupProvider: .shared(eventLoopGroup),
        logger: logger
    )
}

/// How many masters of each group answered a PING, asked at most once per `freshFor` and
/// group: a load balancer's health checks, however frequent, cost the masters a few PINGs a
/// second.
final class AnsweringMasters: Sendable {
    private let seen = Mutex<[String: (at: ContinuousClock.Instant, count: Int)]>([:])
    private let freshFor: Duration

    init(freshFor: Duration) { self.freshFor = freshFor }

    /// The masters of group `name` that answer, as last asked within `freshFor`.
    func count(_ name: String, of redlock: Redlock) async -> Int {
        let now = ContinuousClock.now
        if let last = seen.withLock({ $0[name] }), now - last.at < freshFor { return last.count }
        let count = await redlock.answeringMasters()
        seen.withLock { $0[name] = (ContinuousClock.now, count) }
        return count
    }
}

/// Turns every error that is not already a ``Problem`` into a problem+json response, so no
/// route ever answers with a bare 500 or an HTML page.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = LocklockRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            throw problem
        } catch let error as HTTPError {
            switch error.status {
            case .notFound: throw Problem.notFound("no such route")
            case .methodNotAllowed: throw Problem(.methodNotAllowed, "Method Not Allowed", "method not allowed on this route")
            case .contentTooLarge: throw Problem.tooLarge
            default: throw Problem(error.status, error.status.reasonPhrase, "request could not be handled")
            }
        } catch {
            context.logger.error("unexpected error", metadata: ["error.type": "\(type(of: error))"])
            throw Problem(.internalServerError, "Internal Server Error", "unexpected error")
        }
    }
}

/// `GET /metrics`: the registry in Prometheus text format, each label of `replacing` written
/// as its replacement.
func addMetricsRoute<Context: RequestContext>(
    to router: Router<Context>,
    prometheus: PrometheusCollectorRegistry?,
    replacing labels: [String: String] = [:]
) {
    router.get("/metrics") { _, _ -> Response in
        var bytes: [UInt8] = []
        prometheus?.emit(into: &bytes)
        if !labels.isEmpty {
            var text = String(decoding: bytes, as: UTF8.self)
            for (label, replacement) in labels where text.contains(label) { text = text.replacingOccurrences(of: label, with: replacement) }
            bytes = Array(text.utf8)
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// `/metrics` alone on an address of its own (an internal interface), for when the API's
/// address is public: set ``LocklockServerConfiguration/servesMetrics`` to false and run this
/// beside ``buildApplication(groups:configuration:prometheus:eventLoopGroup:logger:)``, on the
/// same `eventLoopGroup`.
public func buildMetricsApplication(
    prometheus: PrometheusCollectorRegistry,
    host: String,
    port: Int,
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    logger: Logger = Logger(label: "locklock")
) -> some ApplicationProtocol {
    let router = Router()
    addMetricsRoute(to: router, prometheus: prometheus)
    return Application(
        router: router,
        configuration: .init(address: .hostname(host, port: port), serverName: "locklock"),
        eventLoopGroupProvider: .shared(eventLoopGroup),
        logger: logger
    )
}

/// Each master that does not vote, by its place in the configured list (not its address, which
/// stays internal), with why and, when held out, for how much longer.
func readinessDetail(_ statuses: [MasterStatus], now: ContinuousClock.Instant = .now) -> String {
    var parts: [String] = []
    for (index, status) in statuses.enumerated() {
        let label = "master \(index + 1) of \(statuses.count)"
        switch status.state {
        case .voting: continue
        case .heldOut(let until?, let reason):
            parts.append("\(label) held out for \((until - now).secondsRoundedUp) s more (\(reason))")
        case .heldOut(nil, let reason): parts.append("\(label) held out while its evidence is read (\(reason))")
        case .unreachable(let reason): parts.append("\(label) unreachable (\(reason))")
        }
    }
    return parts.joined(separator: "; ")
}
