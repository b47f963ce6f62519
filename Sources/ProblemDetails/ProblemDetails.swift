import Foundation
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
        let body = Body(type: type, title: title, status: status.code, detail: detail)
        let data = (try? Self.encoder.encode(body)) ?? Data()
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The JSON members of RFC 9457 section 3.1.
    private struct Body: Encodable {
        var type: String
        var title: String
        var status: Int
        var detail: String
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}
