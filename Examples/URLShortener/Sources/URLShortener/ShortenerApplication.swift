import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdIdempotency
import Logging
import Redlock

/// The body of `POST /shorten`.
public struct ShortenRequest: Codable, Sendable {
    /// The long URL (http or https, at most 2048 characters).
    public var url: String

    /// Creates a request body.
    public init(url: String) { self.url = url }
}

/// The body of a successful `POST /shorten`.
public struct ShortenResponse: Codable, Sendable, Equatable {
    /// The short code.
    public var code: String
    /// The long URL it stands for.
    public var url: String
    /// Where the short URL lives (`/s/<code>`).
    public var shortPath: String
}

/// The routes of the shortener:
/// - `POST /shorten` `{"url": ...}`: 201 with the new code, 200 with the existing one, 409 with
///   `Retry-After` while another request for the same URL holds the lock (reject mode), and
///   the Idempotency-Key middleware in front;
/// - `GET /s/:code`: 302 to the long URL;
/// - `GET /urls?url=...`: every code recorded for a long URL (to count duplicates);
/// - `GET /healthz`.
public func buildShortenerRouter(
    shortener: Shortener,
    database: ShortURLDatabase,
    redlock: Redlock,
    idempotency: IdempotencyKeyMiddleware<BasicRequestContext>.Configuration = .init()
) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("healthz") { _, _ in HTTPResponse.Status.ok }
    router.group()
        .add(
            middleware: IdempotencyKeyMiddleware(
                redlock: redlock,
                store: SQLiteIdempotencyStore(database: database),
                configuration: idempotency,
                // The demo has no accounts: every client is the same principal.
                scope: { _, _ in "demo" }
            )
        )
        .post("shorten") { request, context -> Response in
            let body = try await request.decode(as: ShortenRequest.self, context: context)
            guard let url = URL(string: body.url), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil,
                body.url.utf8.count <= 2048
            else {
                throw HTTPError(.badRequest, message: "url must be an absolute http(s) URL of at most 2048 characters")
            }
            switch try await shortener.shorten(body.url) {
            case .created(let shortURL):
                return try jsonResponse(.created, ShortenResponse(shortURL))
            case .existing(let shortURL):
                return try jsonResponse(.ok, ShortenResponse(shortURL))
            case .busy(let retryAfter):
                var headers = HTTPFields()
                headers[.retryAfter] = String(max(1, Int(retryAfter?.components.seconds ?? 0) + 1))
                throw HTTPError(.conflict, headers: headers, message: "this URL is being shortened by another request; retry shortly")
            }
        }
    router.get("s/:code") { _, context -> Response in
        let code = try context.parameters.require("code")
        guard let shortURL = try await database.find(code: code) else { throw HTTPError(.notFound) }
        return Response.redirect(to: shortURL.longURL, type: .found)
    }
    router.get("urls") { request, _ -> Response in
        guard let longURL = request.uri.queryParameters["url"] else { throw HTTPError(.badRequest, message: "give ?url=") }
        let codes = try await database.all(longURL: String(longURL)).map(\.code)
        return try jsonResponse(.ok, ["codes": codes])
    }
    return router
}

private func jsonResponse(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder().encode(value))))
}

extension ShortenResponse {
    init(_ shortURL: ShortURL) {
        self.init(code: shortURL.code, url: shortURL.longURL, shortPath: "/s/\(shortURL.code)")
    }
}
