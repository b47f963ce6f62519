import Hummingbird
import Metrics
import NIOCore
import Synchronization

/// Request metrics, the series Hummingbird's `MetricsMiddleware` records (`hb.requests`,
/// `hb.request.errors`, `http.server.request.duration`, `http.server.active_requests`), taken
/// when the handler has built its response. Hummingbird's middleware takes them after the
/// body is written, by wrapping the body in a closure: that sends a buffered response as two
/// writes (head, then body) instead of one, on every request. A request whose client left
/// before its answer is recorded as 499, not as the 503 it was never sent.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = LocklockRequestContext

    private let series = SeriesCache()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = NIODeadline.now()
        let active = series.active(request.method)
        active.increment()
        defer { active.decrement() }
        do {
            let response = try await next(request, context)
            let endpoint = series.endpoint(context.endpointPath ?? "Unknown", request.method, response.status)
            endpoint.requests.increment()
            endpoint.duration.recordNanoseconds((NIODeadline.now() - start).nanoseconds)
            return response
        } catch {
            var status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            if let problem = error as? Problem, problem.isClientGone { status = Problem.clientClosedRequest }
            let endpoint = series.endpoint(context.endpointPath ?? "NotFound", request.method, status)
            endpoint.requests.increment()
            endpoint.errors.increment()
            throw error
        }
    }
}

/// The metric objects per method and per route, method and status, made once each.
private final class SeriesCache: Sendable {
    struct Endpoint: Sendable {
        let requests: Counter
        let duration: Timer
        let errors: Counter
    }

    private struct EndpointID: Hashable {
        let route: String
        let method: HTTPRequest.Method
        let status: HTTPResponse.Status
    }

    private let meters = Mutex<[HTTPRequest.Method: Meter]>([:])
    private let endpoints = Mutex<[EndpointID: Endpoint]>([:])

    func active(_ method: HTTPRequest.Method) -> Meter {
        meters.withLock { meters in
            if let meter = meters[method] { return meter }
            let meter = Meter(label: "http.server.active_requests", dimensions: [("http.request.method", method.rawValue)])
            meters[method] = meter
            return meter
        }
    }

    func endpoint(_ route: String, _ method: HTTPRequest.Method, _ status: HTTPResponse.Status) -> Endpoint {
        let id = EndpointID(route: route, method: method, status: status)
        return endpoints.withLock { endpoints in
            if let endpoint = endpoints[id] { return endpoint }
            let labels = [("http.route", route), ("http.request.method", method.rawValue), ("http.response.status_code", String(status.code))]
            let endpoint = Endpoint(
                requests: Counter(label: "hb.requests", dimensions: labels),
                duration: Timer(label: "http.server.request.duration", dimensions: labels, preferredDisplayUnit: .seconds),
                errors: Counter(
                    label: "hb.request.errors",
                    dimensions: [("http.route", route), ("http.request.method", method.rawValue), ("error.type", String(status.code))]
                )
            )
            endpoints[id] = endpoint
            return endpoint
        }
    }
}
