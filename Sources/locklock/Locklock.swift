import ArgumentParser
import Foundation
import Hummingbird
import LocalRedis
import LocklockServer
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import RedisWire
import Redlock
import ServiceLifecycle
import UnixSignals

@main
struct Locklock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "locklock",
        abstract: "Distributed locks over Redis masters (Redlock), as a REST service or around a command.",
        subcommands: [Serve.self, Dev.self, HashKey.self, Run.self, Acquire.self, Release.self, Masters.self]
    )

    /// Sets up logging before any subcommand runs, then parses and runs as ArgumentParser does.
    static func main() async {
        bootstrapLogging()
        do {
            let arguments = EnvironmentOptions.merge(Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// `30s`, `500ms`, `2m`, `1h`, or a plain number of seconds.
struct DurationArgument: ExpressibleByArgument {
    let duration: Duration
    /// As `--help` shows a default: the way a person would type it (`30s`, `24h`, `500ms`).
    var defaultValueDescription: String {
        let milliseconds = duration.nanoseconds / 1_000_000
        for (suffix, unit) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000)] where milliseconds % unit == 0 {
            return "\(milliseconds / unit)\(suffix)"
        }
        return "\(milliseconds)ms"
    }

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var text = argument
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            text = String(text.dropLast(suffix.count))
            scale = factor
            break
        }
        guard let number = Double(text), number > 0, number.isFinite else { return nil }
        duration = .milliseconds(Int64((number * scale * 1000).rounded()))
    }
}

/// A secret kept out of `ps`: the contents of `file` (given with `flag`) without its trailing
/// line breaks, or else the environment variable `environment` when set and not empty.
func secret(file: String?, flag: String, environment: String) throws -> [UInt8]? {
    if let file {
        guard let handle = FileHandle(forReadingAtPath: file), let contents = try? handle.readToEnd() ?? Data() else {
            throw ValidationError("cannot read \(flag) \(file)")
        }
        var bytes = Array(contents)
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
        return bytes
    }
    guard let text = ProcessInfo.processInfo.environment[environment], !text.isEmpty else { return nil }
    return Array(text.utf8)
}

/// `--forwarded-header x-forwarded-for|forwarded`.
enum ForwardedHeaderArgument: String, ExpressibleByArgument, CaseIterable {
    case xForwardedFor = "x-forwarded-for"
    case forwarded
}

/// `--throttle shared|local`.
enum ThrottleArgument: String, ExpressibleByArgument, CaseIterable {
    case shared, local
}

struct MasterOptions: ParsableArguments {
    @Option(
        help: """
            Comma-separated independent masters (or LOCKLOCK_MASTERS): host:port, \
            redis://[user[:password]@]host[:port][/db], rediss://... (TLS) or unix:///path.
            """
    )
    var masters: String?
    @Option(help: "CA certificate (PEM) the masters' TLS certificates chain to (default: the system's). Turns TLS on for host:port masters.")
    var redisTlsCa: String?
    @Option(help: "Client certificate (PEM) for masters that require mutual TLS; needs --redis-tls-key.") var redisTlsCert: String?
    @Option(help: "The private key (PEM) of --redis-tls-cert.") var redisTlsKey: String?
    @Option(help: "File holding the masters' password (or LOCKLOCK_REDIS_PASSWORD), kept out of `ps`; a URL's own password wins.")
    var redisPasswordFile: String?

    func endpoints() throws -> [RedisEndpoint] {
        guard let text = masters ?? ProcessInfo.processInfo.environment["LOCKLOCK_MASTERS"], !text.isEmpty else {
            throw ValidationError("give --masters h1:p1,h2:p2,... or set LOCKLOCK_MASTERS")
        }
        return try Self.parse(text)
    }

    static func parse(_ text: String) throws -> [RedisEndpoint] {
        do {
            return try RedisEndpoint.list(parsing: text)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The connection settings every master shares: TLS from the `--redis-tls-*` flags, the
    /// password from its file or the environment.
    func connection() throws -> RedisConnectionConfiguration {
        var configuration = RedisConnectionConfiguration()
        guard (redisTlsCert == nil) == (redisTlsKey == nil) else { throw ValidationError("--redis-tls-cert and --redis-tls-key go together") }
        for path in [redisTlsCa, redisTlsCert, redisTlsKey].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("cannot read \(path)")
        }
        if redisTlsCa != nil || redisTlsCert != nil {
            configuration.tls = RedisTLSConfiguration(
                trustRoots: redisTlsCa.map { .certificateFile($0) } ?? .system,
                clientIdentity: redisTlsCert.flatMap { certificate in
                    redisTlsKey.map { RedisTLSConfiguration.ClientIdentity(certificateFile: certificate, keyFile: $0) }
                }
            )
        }
        if let password = try password() { configuration.authentication = .init(password: password) }
        return configuration
    }

    private func password() throws -> String? {
        try secret(file: redisPasswordFile, flag: "--redis-password-file", environment: "LOCKLOCK_REDIS_PASSWORD").map {
            String(decoding: $0, as: UTF8.self)
        }
    }
}

struct ServeOptions: ParsableArguments {
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port to bind.") var port = 8080
    @Option(help: "Tenants file: {\"tenants\":[{\"name\",\"plan\",\"key_sha256\",\"region\"?}]}.") var tenants: String?
    @Option(help: "Requests/s per client address without a key (burst 2x, 0 = off).") var anonymousRate = 100
    @Option(help: "Requests/s per Developer tenant (0 = off).") var developerRate = 100
    @Option(help: "Requests/s per Pro tenant (0 = off).") var proRate = 1_000
    @Option(help: "Largest expires_in in seconds (30 days).") var maxExpiresIn = Self.defaultMaxExpiresIn
    @Option(help: "Largest expires_in in seconds for callers without a key (1 hour).") var anonymousMaxExpiresIn = 3_600.0
    @Option(help: "Distinct lock names one address without a key may use per --fencing-retention; 0 for no limit (default: 200; dev: 0).")
    var anonymousNames: Int?
    @Option(help: "Largest wait in seconds.") var maxWait = 60.0
    @Option(help: "Serve HTTPS with this certificate chain (PEM); needs --tls-key.") var tlsCert: String?
    @Option(help: "The private key (PEM) of --tls-cert.") var tlsKey: String?
    @Option(help: "Where throttling state lives: shared (on the masters, one rate across replicas) or local (per process).")
    var throttle: ThrottleArgument = .shared
    @Option(help: "Serve /metrics on this port only (not on --port), bound to --metrics-host.") var metricsPort: Int?
    @Option(help: "Address to bind --metrics-port to.") var metricsHost = "127.0.0.1"
    @Option(help: "A proxy (CIDR, repeatable) whose --forwarded-header names the client.") var trustedProxy: [String] = []
    @Option(
        help: """
            The one header the trusted proxies write the client into: x-forwarded-for (nginx, AWS ALB, Envoy, Traefik) \
            or forwarded (RFC 7239); the other is never read.
            """
    )
    var forwardedHeader: ForwardedHeaderArgument = .xForwardedFor
    @Option(
        help:
            "File holding the key under which lock secrets are stored (HMAC-SHA-256), the same on every replica (or LOCKLOCK_SECRET_KEY). At least 32 bytes."
    )
    var secretKeyFile: String?
    @Option(help: "Serve TENANT.DOMAIN in that tenant's namespace.") var baseDomain: String?
    @Option(help: "A named master group: NAME=h:p,h:p,... (repeatable).") var region: [String] = []
    @Option(
        help:
            "How long a lock name's fence stays on the masters after its last acquisition, e.g. 1h (one entry per distinct name; shorter tolerates less clock skew between server replicas and the masters)."
    )
    var fencingRetention = DurationArgument(argument: "24h")!
    @Flag(
        inversion: .prefixedNo,
        help:
            "Keep a master that restarted out of votes until --max-expires-in has passed since it started, so one that lost its locks (no persistence) cannot grant them again. Turn off only for masters with appendfsync always."
    )
    var delayedRejoin = true
    @Option(help: "Requests with a wait that may wait at once per client address without a key.") var anonymousWaiters = 20
    @Option(help: "Requests with a wait that may wait at once per Developer tenant.") var developerWaiters = 50
    @Option(help: "Requests with a wait that may wait at once per Pro tenant.") var proWaiters = 500
    @Option(help: "Close a connection with no request in progress after this.") var idleTimeout = DurationArgument(argument: "60s")!
    @Option(help: "A request's head must arrive in full within this.") var headerTimeout = DurationArgument(argument: "10s")!
    @Option(help: "A request's body must arrive in full within this of its head.") var bodyTimeout = DurationArgument(argument: "30s")!
    @Option(help: "Connections open at once; new ones past it are closed at once.") var maxConnections = 10_000
    @Option(
        help: """
            A host name (repeatable; *.example.com for every name under it) requests may name; \
            others get 421, against DNS rebinding (default: any; for dev: localhost, 127.0.0.1 and ::1).
            """
    )
    var allowedHost: [String] = []
    @Option(help: "Connections one client address (IPv6: /64) may hold (default: a tenth of --max-connections); trusted proxies are exempt.")
    var maxConnectionsPerClient: Int?
    @Option(
        help:
            "Threads that serve HTTP and talk to the masters (default: one per core). With 1, every request runs on the masters' thread: no thread hop, less CPU and latency per request, at most one core."
    )
    var eventLoops: Int?
    @Option(help: InstanceTimeoutOption.help) var instanceTimeout = InstanceTimeoutOption.standard

    /// `--max-expires-in`'s default: 30 days.
    static let defaultMaxExpiresIn = 2_592_000.0

    /// The longest a key lives under `--max-expires-in`: an `expires_in` plus a `lock_delay`,
    /// each at most that long.
    static func maximumTTL(maxExpiresIn: Double) -> Duration {
        .milliseconds(Int64((maxExpiresIn * 2000).rounded(.up)))
    }

    /// Where `/metrics` is served when not on the API's address.
    var metricsAddress: (host: String, port: Int)? { metricsPort.map { (metricsHost, $0) } }

    /// The Redlock configuration of one master group; its metrics carry the group's name.
    func redlockConfiguration(group: String, connection: RedisConnectionConfiguration) -> RedlockConfiguration {
        var configuration = RedlockConfiguration(
            instanceTimeout: instanceTimeout.duration,
            fencingCounterRetention: fencingRetention.duration,
            maximumTTL: delayedRejoin ? Self.maximumTTL(maxExpiresIn: maxExpiresIn) : nil
        )
        configuration.connection = connection
        configuration.metricsDimensions = [("group", group)]
        return configuration
    }

    func configuration() throws -> LocklockServerConfiguration {
        // Checked at start: a negative rate or a huge maximum must be an error, not a trap or
        // a limit that silently never applies.
        for (name, rate) in [("--anonymous-rate", anonymousRate), ("--developer-rate", developerRate), ("--pro-rate", proRate)] where rate < 0 {
            throw ValidationError("\(name) must be 0 (off) or more, not \(rate)")
        }
        let tenYears = 10 * 365 * 24 * 3600.0
        guard maxExpiresIn.isFinite, (0.1...tenYears).contains(maxExpiresIn) else {
            throw ValidationError("--max-expires-in must be between 0.1 and \(Int(tenYears)) seconds")
        }
        try InstanceTimeoutOption.validate(instanceTimeout.duration, against: .milliseconds(Int64(maxExpiresIn * 1000)), ttlName: "--max-expires-in")
        guard anonymousMaxExpiresIn.isFinite, (0.1...tenYears).contains(anonymousMaxExpiresIn) else {
            throw ValidationError("--anonymous-max-expires-in must be between 0.1 and \(Int(tenYears)) seconds")
        }
        guard maxWait.isFinite, (0...tenYears).contains(maxWait) else {
            throw ValidationError("--max-wait must be between 0 and \(Int(tenYears)) seconds")
        }
        for (name, limit) in [
            ("--anonymous-waiters", anonymousWaiters), ("--developer-waiters", developerWaiters), ("--pro-waiters", proWaiters),
            ("--max-connections", maxConnections), ("--max-connections-per-client", maxConnectionsPerClient ?? 1),
            ("--anonymous-names", (anonymousNames ?? 0) + 1),
        ] where limit < 1 {
            throw ValidationError("\(name) must be 1 or more, not \(limit)")
        }
        if let eventLoops, !(1...1024).contains(eventLoops) {
            throw ValidationError("--event-loops must be between 1 and 1024, not \(eventLoops)")
        }
        let directory = try tenants.map { try TenantDirectory(contentsOf: URL(fileURLWithPath: $0)) } ?? TenantDirectory([])
        var configuration = LocklockServerConfiguration(
            host: host,
            port: port,
            maximumExpiresIn: maxExpiresIn,
            maximumWait: maxWait,
            anonymousRate: anonymousRate,
            developerRate: developerRate,
            proRate: proRate,
            baseDomain: baseDomain,
            tenants: directory
        )
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        configuration.tlsCertificatePath = tlsCert
        configuration.tlsKeyPath = tlsKey
        configuration.anonymousMaximumExpiresIn = anonymousMaxExpiresIn
        configuration.throttle = throttle == .shared ? .shared : .local
        configuration.trustedProxies = try trustedProxy.map { text in
            guard let network = IPNetwork(text) else { throw ValidationError("--trusted-proxy takes an address or a CIDR network, not '\(text)'") }
            return network
        }
        configuration.forwardedHeader = forwardedHeader == .forwarded ? .forwarded : .xForwardedFor
        configuration.secretKey = try secretKey()
        configuration.anonymousWaiters = anonymousWaiters
        configuration.developerWaiters = developerWaiters
        configuration.proWaiters = proWaiters
        configuration.idleTimeout = idleTimeout.duration
        configuration.headerTimeout = headerTimeout.duration
        configuration.bodyTimeout = bodyTimeout.duration
        configuration.maximumConnections = maxConnections
        configuration.maximumConnectionsPerClient = maxConnectionsPerClient
        configuration.allowedHosts = allowedHost.isEmpty ? nil : allowedHost
        if let anonymousNames { configuration.anonymousNamesPerRetention = anonymousNames }
        return configuration
    }

    /// The secrets' storage key: from --secret-key-file, or LOCKLOCK_SECRET_KEY, or none.
    func secretKey() throws -> [UInt8]? {
        let key = try secret(file: secretKeyFile, flag: "--secret-key-file", environment: "LOCKLOCK_SECRET_KEY")
        if let key, key.count < 32 {
            throw ValidationError("the secret key must be at least 32 bytes, not \(key.count)")
        }
        return key
    }

    /// Runs `body` with the event loops that serve HTTP and hold the masters' connections:
    /// NIO's shared group (one loop per core), or a group of `--event-loops` made for it and
    /// shut down after it.
    func withEventLoops<T>(_ body: (any EventLoopGroup) async throws -> T) async throws -> T {
        guard let eventLoops else { return try await body(MultiThreadedEventLoopGroup.singleton) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops)
        let result: T
        do {
            result = try await body(group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
        return result
    }

    /// The Redlock clients of the primary masters and of every `--region`, each on one loop
    /// of `eventLoopGroup`.
    func groups(
        primary: [RedisEndpoint],
        connection: RedisConnectionConfiguration,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) throws -> MasterGroups {
        var regions: [String: Redlock] = [:]
        for entry in region {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--region takes NAME=h:p,h:p,...") }
            regions[String(parts[0])] = Redlock(
                endpoints: try MasterOptions.parse(String(parts[1])),
                configuration: redlockConfiguration(group: String(parts[0]), connection: connection),
                eventLoopGroup: eventLoopGroup,
                logger: logger
            )
        }
        let unknown = try configuration().tenants.regions.subtracting(regions.keys).sorted()
        guard unknown.isEmpty else {
            // Falling back to the default masters would silently move a tenant's locks.
            throw ValidationError("tenants name regions with no --region: \(unknown.joined(separator: ", "))")
        }
        return MasterGroups(
            primary: Redlock(
                endpoints: primary,
                configuration: redlockConfiguration(group: "primary", connection: connection),
                eventLoopGroup: eventLoopGroup,
                logger: logger
            ),
            regions: regions
        )
    }
}

/// Serves the API with `options`: on the event loops `--event-loops` asks for, over the
/// Redlock clients of `primary` and of every `--region`, each on one of those loops. The
/// metrics system is bootstrapped before the clients are created: each client takes the
/// factory when it is created.
func serve(
    _ options: ServeOptions,
    primary: [RedisEndpoint],
    connection: RedisConnectionConfiguration,
    configuration: LocklockServerConfiguration,
    logger: Logger
) async throws {
    try await options.withEventLoops { eventLoopGroup in
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let groups = try options.groups(primary: primary, connection: connection, eventLoopGroup: eventLoopGroup, logger: logger)
        let unidentified = await identificationFailures(groups: groups)
        guard unidentified.isEmpty else {
            for group in groups.named { await group.1.shutdown() }
            throw ValidationError(unidentified.joined(separator: "\n"))
        }
        let metrics = options.metricsAddress
        var configuration = configuration
        configuration.servesMetrics = metrics == nil
        let app = try buildApplication(
            groups: groups,
            configuration: configuration,
            prometheus: registry,
            eventLoopGroup: eventLoopGroup,
            logger: logger
        )
        if configuration.secretKey == nil {
            logger.warning(
                "no --secret-key-file or LOCKLOCK_SECRET_KEY: lock secrets are stored as a plain SHA-256, which a dump of the masters exposes to offline guessing"
            )
        }
        let check = Task {
            for warning in await evictionWarnings(groups: groups) + persistenceWarnings(groups: groups) { logger.warning("\(warning)") }
        }
        defer { check.cancel() }
        guard let metrics else {
            try await app.runService()
            return
        }
        let metricsApp = buildMetricsApplication(
            prometheus: registry,
            host: metrics.host,
            port: metrics.port,
            eventLoopGroup: eventLoopGroup,
            logger: logger
        )
        let services = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: metricsApp)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await services.run()
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the Locklock REST API over the given masters.")
    @OptionGroup var master: MasterOptions
    @OptionGroup var options: ServeOptions

    func run() async throws {
        let logger = Logger(label: "locklock")
        let primary = try master.endpoints()
        let connection = try master.connection()
        try await serve(options, primary: primary, connection: connection, configuration: try options.configuration(), logger: logger)
    }
}

struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start 3 local redis-server masters and serve the API on 127.0.0.1:8080.")
    @OptionGroup var options: ServeOptions

    /// The names `dev` answers to unless `--allowed-host` says otherwise.
    static let loopbackNames = ["localhost", "127.0.0.1", "::1"]

    func run() async throws {
        let logger = Logger(label: "locklock")
        do {
            _ = try RedisServer.findExecutable()
        } catch {
            throw ValidationError("redis-server is not installed. Install it with: sudo apt-get install -y redis-server (or run `make run`)")
        }
        let servers = try await RedisServerGroup.start(count: 3, options: RedisServerOptions(role: .development))
        print("locklock dev: masters \(servers.commaSeparated); serving http://\(options.host):\(options.port)/v1/api (Ctrl-C stops everything)")
        fflush(nil)  // visible at once even when stdout is a file or a pipe
        do {
            var configuration = try options.configuration()
            // A development server on a laptop: a page elsewhere must not reach it by
            // rebinding its DNS to 127.0.0.1.
            if configuration.allowedHosts == nil { configuration.allowedHosts = Dev.loopbackNames }
            // Throwaway masters: no quota of names unless one is asked for.
            if options.anonymousNames == nil { configuration.anonymousNamesPerRetention = 0 }
            // Throwaway masters, one process: a key of its own unless one was given.
            if configuration.secretKey == nil { configuration.secretKey = Redlock.randomValue() }
            try await serve(
                options,
                primary: servers.addresses.map { RedisEndpoint($0) },
                connection: .init(),
                configuration: configuration,
                logger: logger
            )
        } catch {
            await servers.shutdown()
            throw error
        }
        await servers.shutdown()
    }
}

struct HashKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-key",
        abstract: "Print the SHA-256 of an API key for the tenants file (reads stdin without an argument)."
    )
    @Argument(help: "The API key.") var key: String?

    func run() async throws {
        let key = self.key ?? (readLine(strippingNewline: true) ?? "")
        guard !key.isEmpty else { throw ValidationError("no key given") }
        print(TenantDirectory.hash(key: key))
    }
}

struct LockOptions: ParsableArguments {
    @OptionGroup var master: MasterOptions
    @Option(help: "The lock's name.") var lock: String
    @Option(help: "Time to live, e.g. 30s, 500ms, 2m.") var ttl = DurationArgument(argument: "30s")!
    @Option(help: "Wait up to this long for the lock, e.g. 10s (default: try once).") var wait: DurationArgument?
    @Option(help: "Keep the lock unusable this long past its TTL if it is never released (a holder that died), e.g. 10s.")
    var lockDelay: DurationArgument?
    @OptionGroup var timing: InstanceTimeoutOption

    /// The client `run` and `acquire` lock with. It holds out a master that may have lost data
    /// as `serve` does, the fallback bound being `serve`'s default maximum (30 days, doubled for
    /// a lock-delay) or this lock's own lifetime if longer.
    func redlock() throws -> Redlock {
        try InstanceTimeoutOption.validate(timing.instanceTimeout.duration, against: ttl.duration, ttlName: "--ttl")
        let lifetime = ttl.duration + (lockDelay?.duration ?? .zero)
        return Redlock(
            endpoints: try master.endpoints(),
            configuration: .init(
                instanceTimeout: timing.instanceTimeout.duration,
                retry: .init(count: 0, delay: .milliseconds(100), jitter: .milliseconds(50)),
                connection: try master.connection(),
                maximumTTL: max(ServeOptions.maximumTTL(maxExpiresIn: ServeOptions.defaultMaxExpiresIn), lifetime)
            )
        )
    }
}

/// `--instance-timeout`: how long each master has to answer one operation.
struct InstanceTimeoutOption: ParsableArguments {
    static let help: ArgumentHelp =
        "How long each master has to answer one operation (or LOCKLOCK_INSTANCE_TIMEOUT), e.g. 50ms; raise it for masters far away (see Docs/operations.md)."
    static let standard = DurationArgument(argument: "50ms")!
    @Option(help: help) var instanceTimeout = standard

    /// A TTL no longer than twice the instance timeout could be spent on one slow vote and
    /// leave no validity.
    static func validate(_ timeout: Duration, against ttl: Duration, ttlName: String) throws {
        guard ttl > timeout * 2 else {
            throw ValidationError(
                "--instance-timeout \(timeout) leaves no validity of a \(ttlName) of \(ttl): give a TTL over twice the instance timeout"
            )
        }
    }
}

/// Exit codes of `run`, `acquire` and `release` besides the command's own.
enum ExitStatus {
    static let held: Int32 = 75  // EX_TEMPFAIL: try again later
    static let unavailable: Int32 = 69  // EX_UNAVAILABLE
    static let lost: Int32 = 70  // EX_SOFTWARE: the lock was lost while the command ran
    static let usage: Int32 = 64  // EX_USAGE: the masters or the request cannot work (one server named twice)
}

func exitStatus(for error: RedlockError) -> Int32 {
    switch error.code {
    case .lockHeld: ExitStatus.held
    case .invalidArgument: ExitStatus.usage
    default: ExitStatus.unavailable
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command while holding a distributed lock (a distributed flock(1)).",
        discussion: """
            The command sees the lock's fencing token (with --leader, the term) in LOCKLOCK_FENCING_TOKEN. \
            It runs in a process group of its own, and on Linux the group dies with `run`. \
            If the lock is lost while it runs, its group gets SIGTERM, and SIGKILL after --grace or when the lock's validity ends, \
            whichever comes first. SIGTERM, SIGINT or SIGHUP sent to `run` go to the group (SIGKILL after --grace), \
            and the lock is released once the command has exited. \
            Exits with the command's status (128 + N if signal N ended it); 75 if the lock is held, 69 if too few masters answer, \
            70 if the lock was lost, 127 if the command cannot be started.
            """
    )
    @OptionGroup var options: LockOptions
    @Option(help: "Run while holding one of N permits of a semaphore named --lock (at most N of these commands at once).")
    var permits: Int?
    @Flag(help: "Campaign to lead the role --lock (until elected, or for --wait), and run the command while leading.")
    var leader = false
    @Option(help: "How long the command has between SIGTERM and SIGKILL, e.g. 10s; after a lost lock, never past its validity.")
    var grace = DurationArgument(argument: "10s")!
    @Argument(parsing: .captureForPassthrough, help: "-- COMMAND ARGS...") var command: [String] = []

    func validate() throws {
        if leader && permits != nil { throw ValidationError("--leader and --permits do not go together") }
    }

    func run() async throws {
        let arguments = command.first == "--" ? Array(command.dropFirst()) : command
        guard let executable = arguments.first else { throw ValidationError("give the command after --") }
        let redlock = try options.redlock()
        let lock: Lock
        do {
            try await redlock.verifyMasters()
            lock = try await acquire(on: redlock)
        } catch {
            await redlock.shutdown()
            say(error.message)
            throw ExitCode(exitStatus(for: error))
        }
        if let token = lock.fencingToken { setenv("LOCKLOCK_FENCING_TOKEN", String(token), 1) }
        let signals = StopSignals()
        let command: SupervisedCommand
        do {
            command = try await SupervisedCommand.start([executable] + arguments.dropFirst(), defaults: signals.commandDefaults)
        } catch {
            _ = try? await redlock.release(lock)
            await redlock.shutdown()
            say("\(error)")
            throw ExitCode(127)
        }
        let handle = LockHandle(lock)
        let status = await supervise(command, holding: handle, on: redlock, signals: signals)
        _ = try? await redlock.release(handle.lock)
        await redlock.shutdown()
        signals.restore()
        throw ExitCode(status)
    }

    /// Runs until the command exits. A lost lock, or a stop signal sent to `run`, sends
    /// SIGTERM to the command's process group, then SIGKILL after the grace; after a lost lock
    /// the SIGKILL comes no later than the end of the lock's validity. Returns `run`'s exit
    /// status.
    private func supervise(_ command: SupervisedCommand, holding handle: LockHandle, on redlock: Redlock, signals: StopSignals) async -> Int32 {
        let grace = grace.duration
        /// What each supervising task ends with.
        enum Ending: Sendable {
            case exited(Int32)
            /// `run` asked the command to stop (the lock was lost, or a stop signal came).
            case stopped
            case idle
        }
        var status: Int32 = 1
        var stopped = false
        await withTaskGroup(of: Ending.self) { group in
            group.addTask { .exited(await command.status()) }
            group.addTask {
                guard await redlock.keepAlive(handle) else { return .idle }
                say("lock lost, sending SIGTERM to the command's process group")
                command.signalGroup(SIGTERM)
                // Whatever the grace, nothing of the command runs past the lock's validity.
                let left = max(handle.lock.validUntil - ContinuousClock.now, .zero)
                let reason = left < grace ? "the lock's validity ended" : "the command outlived its grace period"
                await killAfter(min(grace, left), command, because: reason)
                return .stopped
            }
            group.addTask {
                for await signal in signals.received {
                    say("\(StopSignals.name(signal)) received, passing it to the command's process group")
                    command.signalGroup(signal)
                    await killAfter(grace, command, because: "the command outlived its grace period")
                    return .stopped
                }
                return .idle
            }
            for await ending in group {
                switch ending {
                case .exited(let exited):
                    status = exited
                    group.cancelAll()
                case .stopped: stopped = true
                case .idle: break
                }
            }
        }
        // Asked to stop: whatever of the command's group is left must not run on without the lock.
        if stopped { command.signalGroup(SIGKILL) }
        return handle.isLost ? ExitStatus.lost : status
    }

    /// The lock the command runs under: a plain lock, a semaphore's permit, or the role.
    private func acquire(on redlock: Redlock) async throws(RedlockError) -> Lock {
        let ttl = options.ttl.duration
        let wait = options.wait?.duration
        let lockDelay = options.lockDelay?.duration ?? .zero
        if let permits {
            return try await Semaphore(options.lock, permits: permits, on: redlock).acquire(ttl: ttl, wait: wait, lockDelay: lockDelay)
        }
        if leader {
            return try await LeaderElection(options.lock, on: redlock, ttl: ttl).campaign(wait: wait)
        }
        return try await redlock.acquire(options.lock, ttl: ttl, wait: wait, lockDelay: lockDelay)
    }
}

struct Acquire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Acquire a lock and print its token (the value to pass to `release`).",
        discussion: "Exit status 75 if the lock is held, 69 if too few masters answer."
    )
    @OptionGroup var options: LockOptions

    func run() async throws {
        let token = "cli-" + UUID().uuidString.lowercased()
        try await withShutdown(try options.redlock()) { redlock in
            do {
                let lock = try await redlock.acquire(
                    options.lock,
                    ttl: options.ttl.duration,
                    value: Array(token.utf8),
                    wait: options.wait?.duration,
                    lockDelay: options.lockDelay?.duration ?? .zero
                )
                print(token)
                say("acquired \(options.lock), valid for \(lock.validity)")
            } catch let error as RedlockError {
                say(error.message)
                throw ExitCode(exitStatus(for: error))
            }
        }
    }
}

struct Release: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Release a lock taken with `acquire`; exit status 1 if it was no longer held.")
    @OptionGroup var master: MasterOptions
    @Option(help: "The lock's name.") var lock: String
    @Option(help: "The token `acquire` printed.") var token: String
    @OptionGroup var timing: InstanceTimeoutOption

    func run() async throws {
        let configuration = RedlockConfiguration(instanceTimeout: timing.instanceTimeout.duration, connection: try master.connection())
        try await withShutdown(Redlock(endpoints: try master.endpoints(), configuration: configuration)) { redlock in
            do {
                let outcome = try await redlock.release([lock], value: Array(token.utf8))
                if outcome == .notHeld {
                    say("\(lock) was not held (expired or another token)")
                    throw ExitCode(1)
                }
            } catch let error as RedlockError {
                say(error.message)
                throw ExitCode(ExitStatus.unavailable)
            }
        }
    }
}

/// Runs `body` with `redlock` and shuts the client down before returning or throwing (a
/// `defer { Task { ... } }` could lose its task when the process exits). The masters are
/// dialled first: a one-shot command pays for its connections anyway, and a TLS handshake
/// would otherwise count against the operation's instance timeout.
func withShutdown<T>(_ redlock: Redlock, _ body: (Redlock) async throws -> T) async throws -> T {
    let result: Result<T, any Error>
    do {
        try await redlock.verifyMasters()
        result = .success(try await body(redlock))
    } catch let error as RedlockError {
        say(error.message)
        result = .failure(ExitCode(exitStatus(for: error)))
    } catch {
        result = .failure(error)
    }
    await redlock.shutdown()
    return try result.get()
}

/// Writes one line to standard error, as `locklock: <message>`.
func say(_ message: String) {
    FileHandle.standardError.write(Data("locklock: \(message)\n".utf8))
}

/// Sends SIGKILL to the command's group once `delay` has passed, unless cancelled first (the
/// command exited).
private func killAfter(_ delay: Duration, _ command: SupervisedCommand, because reason: String) async {
    guard (try? await Task.sleep(for: delay)) != nil else { return }
    say("\(reason), sending SIGKILL")
    command.signalGroup(SIGKILL)
}

struct Masters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each master's standing in the vote: voting, held out (until when, and why) or unreachable.",
        discussion: """
            A master that may have lost data in a restart is held out until every lock it may have forgotten has expired. \
            Exit status 0 when a quorum votes, 69 when not.
            """
    )
    @OptionGroup var master: MasterOptions
    @OptionGroup var timing: InstanceTimeoutOption

    func run() async throws {
        let configuration = RedlockConfiguration(
            instanceTimeout: timing.instanceTimeout.duration,
            connection: try master.connection(),
            maximumTTL: ServeOptions.maximumTTL(maxExpiresIn: ServeOptions.defaultMaxExpiresIn)
        )
        let quorate = try await withShutdown(Redlock(endpoints: try master.endpoints(), configuration: configuration)) { redlock in
            let statuses = await redlock.masterStatus()
            let now = ContinuousClock.now
            let width = statuses.map(\.master.description.count).max() ?? 0
            for status in statuses {
                let name = status.master.description.padding(toLength: width, withPad: " ", startingAt: 0)
                print("\(name)  \(Self.describe(status.state, now: now))")
            }
            let voting = statuses.count { $0.state == .voting }
            print("\(voting) of \(statuses.count) vote; \(redlock.quorum) needed")
            return voting >= redlock.quorum
        }
        if !quorate { throw ExitCode(ExitStatus.unavailable) }
    }

    static func describe(_ state: MasterStatus.State, now: ContinuousClock.Instant) -> String {
        switch state {
        case .voting: return "voting"
        case .heldOut(let until?, let reason):
            let left = until - now
            let wallClock = Date().addingTimeInterval(Double(left.nanoseconds) / 1e9)
            return "held out for \(left.secondsRoundedUp) s more, until \(ISO8601DateFormatter().string(from: wallClock)): \(reason)"
        case .heldOut(nil, let reason): return "held out while the other masters' evidence is read: \(reason)"
        case .unreachable(let reason): return "unreachable: \(reason)"
        }
    }
}
