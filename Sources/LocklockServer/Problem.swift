import HTTPTypes
import Hummingbird
import NIOCore
import ProblemDetails

/// An RFC 9457 problem: every error response of the API. Its detail never carries a secret,
/// a lock value or a Redis address.
public struct Problem: HTTPResponseError, Sendable {
    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// A short, stable title.
    public let title: String
    /// What went wrong with this request.
    public let detail: String
    /// Extra headers (`Retry-After`, `RateLimit`).
    public let headers: HTTPFields
    /// Whether it tells its caller that the secret it sent for a held lock is not the
    /// holder's (see ``SecretGuessLimiter``).
    var revealsAWrongSecret = false

    /// Creates a problem.
    public init(_ status: HTTPResponse.Status, _ title: String, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers
    }

    /// The problem as an `application/problem+json` response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        // The title's words, lowercased and hyphenated; mapped in Swift rather than with
        // Foundation's `replacingOccurrences`, which cost an error response 3% of its CPU.
        let slug = String(title.lowercased().map { $0 == " " ? "-" : $0 })
        return ProblemDetails(type: "https://locklock.dev/problems/" + slug, title: title, status: status, detail: detail, headers: headers)
            .response()
    }

    static func badRequest(_ detail: String) -> Problem { Problem(.badRequest, "Bad Request", detail) }
    static func unprocessable(_ detail: String) -> Problem { Problem(.unprocessableContent, "Unprocessable Content", detail) }
    static func unauthorized(_ detail: String) -> Problem {
        Problem(.unauthorized, "Unauthorized", detail, headers: [.wwwAuthenticate: "Bearer"])
    }
    static func forbidden(_ detail: String) -> Problem { Problem(.forbidden, "Forbidden", detail) }
    static func notFound(_ detail: String) -> Problem { Problem(.notFound, "Not Found", detail) }
    static func conflict(_ detail: String, retryAfter: Int) -> Problem {
        Problem(.conflict, "Conflict", detail, headers: [.retryAfter: String(max(retryAfter, 1))])
    }
    static func unavailable(_ detail: String, retryAfter: Int = 1) -> Problem {
        Problem(.serviceUnavailable, "Service Unavailable", detail, headers: [.retryAfter: String(max(retryAfter, 1))])
    }
    /// For a client with too many requests waiting (POSTs with `wait`, watches) already.
    static func tooManyWaiters(retryAfter: Int) -> Problem {
        tooManyRequests("too many of this client's requests are already waiting", retryAfter: retryAfter)
    }
    /// 429 with `Retry-After` in seconds.
    static func tooManyRequests(_ detail: String, retryAfter: Int) -> Problem {
        Problem(.tooManyRequests, "Too Many Requests", detail, headers: [.retryAfter: String(retryAfter)])
    }
    /// For a client that hung up while its request waited: nobody reads it.
    static let clientGone = Problem(.serviceUnavailable, "Service Unavailable", "the client closed the connection while the request waited")

    /// The status metrics record for a request whose client closed the connection before its
    /// answer (nginx's 499), rather than blaming the server with a 503 nobody received.
    static let clientClosedRequest = HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request")

    /// Whether this problem answers a client that has gone.
    var isClientGone: Bool { status == Self.clientGone.status && detail == Self.clientGone.detail }
    /// Also closes the connection: the rest of an oversized body is not read.
    static let unsupportedMediaType = Problem(
        .unsupportedMediaType,
        "Unsupported Media Type",
        "a request body must be JSON, sent as Content-Type: application/json"
    )
    static let tooLarge = Problem(.contentTooLarge, "Content Too Large", "request bodies are limited to 64 KiB", headers: [.connection: "close"])

    /// This problem with `fields` added to its headers (those it has already win).
    func adding(_ fields: [HTTPField]) -> Problem {
        var headers = self.headers
        for field in fields where headers[field.name] == nil { headers.append(field) }
        var problem = Problem(status, title, detail, headers: headers)
        problem.revealsAWrongSecret = revealsAWrongSecret
        return problem
    }

    /// This problem, marked as telling a wrong secret from a right one.
    var revealingAWrongSecret: Problem {
        var problem = self
        problem.revealsAWrongSecret = true
        return problem
    }
}

extension HTTPField.Name {
    static let lockSecret = Self("Lock-Secret")!
    static let rateLimit = Self("RateLimit")!
    static let rateLimitPolicy = Self("RateLimit-Policy")!
}
