import HTTPTypes
import Hummingbird
import NIOCore

/// An RFC 9457 problem as an `application/problem+json` response: the one encoding of error
/// bodies for the REST adapter and the idempotency middleware.
package struct ProblemDetails: Sendable {
    /// The problem type: a URI, or `about:blank` when the status says it all.
    package var type: String
    /// A short, stable title.
    package var title: String
    /// The HTTP status.
    package var status: HTTPResponse.Status
    /// What went wrong with this request. Never a secret.
    package var detail: String
    /// Extra headers (`Retry-After`, `RateLimit`, ...).
    package var headers: HTTPFields

    /// Creates a problem.
    package init(type: String = "about:blank", title: String? = nil, status: HTTPResponse.Status, detail: String, headers: HTTPFields = [:]) {
        self.type = type
        self.title = title ?? status.reasonPhrase
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    /// The response: the JSON object with sorted keys, not cached.
    package func response() -> Response {
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: body()))
    }

    /// The body: the JSON members of RFC 9457 section 3.1, keys sorted, written directly
    /// (a rejection, such as a 429 to a flood, should cost the server little).
    package func body() -> ByteBuffer {
        var writer = JSONObjectWriter(capacity: 96 + detail.utf8.count + title.utf8.count + type.utf8.count)
        writer.field("detail", detail)
        writer.field("status", Int64(status.code))
        writer.field("title", title)
        writer.field("type", type)
        return writer.finish()
    }
}
