import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ProblemDetails

/// A 200 or 201 that describes a held lock.
struct LockResponse: ResponseGenerator, Encodable, Sendable {
    /// 201 for a new acquisition, 200 otherwise. Not part of the body.
    var status: HTTPResponse.Status
    /// The lock's path, `uuid/...` or `key/...`, or a permit's, `key/.../N`.
    var lock: String
    /// Seconds of validity left, to the hundredth.
    var expiresIn: Double
    /// When the validity ends, RFC 3339 in UTC with milliseconds.
    var expiresAt: String
    /// Whether the lock was taken with a secret.
    var hasSecret: Bool
    /// The acquisition's fencing token.
    var fencingToken: Int64?
    /// The Pro data payload, shown only to the tenant that stored it.
    var data: JSONValue?
    /// For a semaphore's permit: its index (the last segment of ``lock``).
    var permit: Int?

    enum CodingKeys: String, CodingKey {
        case permit
        case lock
        case expiresIn = "expires_in"
        case expiresAt = "expires_at"
        case hasSecret = "has_secret"
        case fencingToken = "fencing_token"
        case data
    }

    /// The JSON body with `Cache-Control: no-store`, and the fencing token as the entity tag
    /// (for `If-Match`).
    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = Response.json(status, try body())
        response.headers[.cacheControl] = "no-store"
        if let fencingToken { response.headers[.eTag] = "\"\(fencingToken)\"" }
        return response
    }

    /// The body, as the context's `JSONEncoder` would write it (keys sorted), written directly.
    func body() throws -> ByteBuffer {
        var writer = JSONObjectWriter()
        if let data { writer.field("data", json: data.compact) }
        writer.field("expires_at", expiresAt)
        writer.field("expires_in", expiresIn)
        if let fencingToken { writer.field("fencing_token", fencingToken) }
        writer.field("has_secret", hasSecret)
        writer.field("lock", lock)
        if let permit { writer.field("permit", Int64(permit)) }
        return writer.finish()
    }
}

/// The 200 of a successful DELETE.
struct ReleaseResponse: ResponseGenerator, Encodable, Sendable {
    /// The lock's path.
    var lock: String
    /// Always true: a failed release is a problem response.
    var released = true

    /// The JSON body with `Cache-Control: no-store`.
    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = Response.json(.ok, body())
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// The body, as the context's `JSONEncoder` would write it, written directly.
    func body() -> ByteBuffer {
        var writer = JSONObjectWriter(capacity: 96)
        writer.field("lock", lock)
        writer.field("released", released)
        return writer.finish()
    }
}

extension Response {
    /// A JSON response with the headers Hummingbird's `JSONEncoder` gives one.
    static func json(_ status: HTTPResponse.Status, _ body: ByteBuffer) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .contentLength: String(body.readableBytes)],
            body: .init(byteBuffer: body)
        )
    }
}
