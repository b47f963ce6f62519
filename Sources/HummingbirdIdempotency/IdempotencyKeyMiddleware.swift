import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ProblemDetails
import RedisWire
import Redlock

/// Makes retried writes safe: a request carrying an `Idempotency-Key` header runs at most once
/// per key, and retries get the first response back.
///
/// For a request with the header (on the guarded methods):
/// - the key already has a stored response: it is replayed, with `Idempotent-Replayed: true`;
///   if the retry is a different request (method, path or body differ) it gets 422;
/// - a request with the same key is in flight (its Redlock lock is held): 409 with
///   `Retry-After`, and nothing runs;
/// - a different request with the same key is in flight: 422;
/// - otherwise the request runs under the key's lock (extended while it runs), and its
///   final response is stored for ``Configuration/retention``: returned or thrown (an
///   `HTTPResponseError`) alike. Server errors, other thrown errors and refusals that say
///   "not now" (408, 409, 423, 425, 429) are not stored, so a retry runs again;
/// - a store that cannot be read answers 503 with `Retry-After`, and nothing runs.
///
/// Requests without the header pass through untouched unless ``Configuration/requireKey``.
/// The lock is for efficiency: if it is lost mid-request (masters unreachable past its
/// validity), a concurrent retry may run too, so the operation itself should still be safe
/// to repeat or guarded by the data store (a unique index, say).
public struct IdempotencyKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Tunables.
    public struct Configuration: Sendable {
        /// Methods the middleware guards.
        public var methods: Set<HTTPRequest.Method>
        /// Answer 400 to a guarded request that has no key.
        public var requireKey: Bool
        /// How long a completed response is replayed.
        public var retention: Duration
        /// The TTL of the in-flight lock; it is extended every third of it while the request runs.
        public var lockTTL: Duration
        /// The largest request body read (the request is refused with 413 above it).
        public var maximumRequestBodySize: Int
        /// The largest response body stored; bigger responses are returned but not stored.
        public var maximumStoredBodySize: Int
        /// Prefix of the lock resources and store keys.
        public var namespace: String

        /// Creates a configuration; the defaults guard POST and PATCH, keep responses 24 hours
        /// and lock in-flight requests for 30 s at a time.
        public init(
            methods: Set<HTTPRequest.Method> = [.post, .patch],
            requireKey: Bool = false,
            retention: Duration = .seconds(24 * 3600),
            lockTTL: Duration = .seconds(30),
            maximumRequestBodySize: Int = 1 << 20,
            maximumStoredBodySize: Int = 1 << 20,
            namespace: String = "idempotency-key:"
        ) {
            self.methods = methods
            self.requireKey = requireKey
            self.retention = retention
            self.lockTTL = lockTTL
            self.maximumRequestBodySize = maximumRequestBodySize
            self.maximumStoredBodySize = maximumStoredBodySize
            self.namespace = namespace
        }
    }

    /// The header that carries the key.
    public static var headerName: HTTPField.Name { HTTPField.Name("Idempotency-Key")! }
    /// The header set on replayed responses.
    public static var replayedHeaderName: HTTPField.Name { HTTPField.Name("Idempotent-Replayed")! }

    let redlock: Redlock
    let store: any IdempotencyResponseStore
    let configuration: Configuration
    let scope: @Sendable (Request, Context) -> String
    let logger: Logger

    /// Creates the middleware.
    /// - Parameters:
    ///   - redlock: the lock client that serialises requests with the same key.
    ///   - store: where completed responses are kept; shared by every instance.
    ///   - scope: who owns a key, typically the authenticated principal, so that two clients
    ///     never replay each other's responses. Required: there is no safe default. Return
    ///     one constant only when every client is the same principal.
    public init(
        redlock: Redlock,
        store: any IdempotencyResponseStore,
        configuration: Configuration = .init(),
        scope: @escaping @Sendable (Request, Context) -> String,
        logger: Logger = Logger(label: "idempotency-key")
    ) {
        self.redlock = redlock
        self.store = store
        self.configuration = configuration
        self.scope = scope
        self.logger = logger
    }

    /// Replays a stored response, refuses a retry in flight, or runs the request under the key's lock and stores its response.
    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard configuration.methods.contains(request.method) else { return try await next(request, context) }
        guard let header = request.headers[Self.headerName] else {
            if configuration.requireKey { return Self.problem(.badRequest, "This request needs an Idempotency-Key header.") }
            return try await next(request, context)
        }
        guard let key = Self.parseKey(header) else {
            return Self.problem(.badRequest, "The Idempotency-Key must be 1 to 255 visible ASCII characters.")
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: configuration.maximumRequestBodySize)
        } catch {
            return Self.problem(.contentTooLarge, "The request body is larger than \(configuration.maximumRequestBodySize) bytes.")
        }
        let fingerprint = Self.fingerprint(method: request.method, target: request.uri.description, body: body)
        let storeKey = configuration.namespace + Self.sha256Hex(Array("\(scope(request, context))\n\(key)".utf8))

        do {
            if let stored = try await store.response(for: storeKey) { return Self.replay(stored, fingerprint: fingerprint) }
        } catch {
            return storeUnavailable(error)
        }

        let lock: Lock
        do throws(RedlockError) {
            // The lock's value names the request in flight, so that a different one is told so.
            let value = Array("\(fingerprint):".utf8) + Redlock.randomValue()
            lock = try await redlock.acquire(storeKey, ttl: configuration.lockTTL, value: value, retry: .never, fencing: false)
        } catch  where error.code == .lockHeld {
            let state = try? await redlock.inspect(storeKey)
            if let holder = state?.holderValue, !holder.starts(with: Array("\(fingerprint):".utf8)) {
                return Self.problem(.unprocessableContent, "This Idempotency-Key is in use for a different request.")
            }
            let seconds = Self.retryAfterSeconds(error.retryAfter ?? state?.remaining)
            var response = Self.problem(.conflict, "A request with this Idempotency-Key is still being processed; retry later.")
            response.headers[.retryAfter] = String(seconds)
            return response
        } catch {
            logger.warning("idempotency lock unavailable", metadata: ["error": "\(error.code)"])
            var response = Self.problem(.serviceUnavailable, "The idempotency lock service is unavailable; retry later.")
            response.headers[.retryAfter] = "1"
            return response
        }

        let handle = LockHandle(lock)
        let outcome: Result<Response, any Error>
        do {
            outcome = .success(
                try await whileHolding(handle) {
                    // Another instance may have finished between our look-up and our lock.
                    do {
                        if let stored = try await store.response(for: storeKey) { return Self.replay(stored, fingerprint: fingerprint) }
                    } catch {
                        return storeUnavailable(error)
                    }
                    return try await runAndStore(request, context: context, next: next, storeKey: storeKey, fingerprint: fingerprint)
                }
            )
        } catch {
            outcome = .failure(error)
        }
        _ = try? await redlock.release(handle.lock)
        return try outcome.get()
    }

    /// Runs `operation` while a background task keeps `handle`'s lock extended.
    ///
    /// The operation stays in the caller's task rather than a cancellable child as in
    /// `withLock`: Hummingbird's `next` is neither escaping nor `Sendable`. A lost lock is
    /// logged; the handle says so afterwards.
    private func whileHolding(_ handle: LockHandle, _ operation: () async throws -> Response) async throws -> Response {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [redlock, logger] in
                if await redlock.keepAlive(handle) {
                    logger.warning("idempotency lock lost while the request ran; a retry may run it again")
                }
            }
            defer { group.cancelAll() }
            return try await operation()
        }
    }

    private func runAndStore(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response,
        storeKey: String,
        fingerprint: String
    ) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError where (400..<500).contains(error.status.code) {
            // A refusal thrown is the same answer as one returned: stored (if final) alike.
            response = try error.response(from: request, context: context)
        }
        let collector = BodyCollector()
        try await response.body.write(collector)
        let bodyBytes = collector.buffer
        var headers: [StoredResponse.HeaderField] = []
        for field in response.headers where !Self.unreplayedHeaders.contains(field.name) {
            headers.append(.init(name: field.name.canonicalName, value: field.value))
        }
        if Self.isFinal(response.status), bodyBytes.readableBytes <= configuration.maximumStoredBodySize {
            let stored = StoredResponse(
                status: response.status.code,
                headers: headers,
                body: Data(bodyBytes.readableBytesView),
                requestFingerprint: fingerprint
            )
            do {
                try await store.save(stored, for: storeKey, retention: configuration.retention)
            } catch {
                // The operation ran: its response goes back whatever happened to the copy. A
                // retry will run it again, which the log says.
                logger.error("idempotency response could not be stored; a retry will run the request again", metadata: ["error": "\(error)"])
            }
        }
        return Response(status: response.status, headers: response.headers, body: ResponseBody(byteBuffer: bodyBytes))
    }

    /// 503 with `Retry-After` when the store cannot say whether the request already ran:
    /// running it again might repeat it.
    private func storeUnavailable(_ error: any Error) -> Response {
        logger.warning("idempotency store unavailable", metadata: ["error": "\(error)"])
        var response = Self.problem(.serviceUnavailable, "The idempotency store is unavailable; retry later.")
        response.headers[.retryAfter] = "1"
        return response
    }

    // MARK: helpers

    /// Whether a response is the request's outcome, to be replayed to every retry: not a
    /// server error, and not a refusal that says "not now" (408 timeout, 409 conflict, 423
    /// locked, 425 too early, 429 too many requests), which a retry should get past.
    static func isFinal(_ status: HTTPResponse.Status) -> Bool {
        status.code < 500 && ![408, 409, 423, 425, 429].contains(status.code)
    }

    static var unreplayedHeaders: Set<HTTPField.Name> { [.date, .contentLength, .transferEncoding, .connection, .setCookie] }

    /// Accepts a bare token or a structured-field string (`"..."`).
    static func parseKey(_ header: String) -> String? {
        var key = Substring(header)
        if key.count >= 2, key.first == "\"", key.last == "\"" { key = key.dropFirst().dropLast() }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        return String(key)
    }

    /// The request's identity: method, target (path and query string) and body.
    static func fingerprint(method: HTTPRequest.Method, target: String, body: ByteBuffer) -> String {
        var hasher = SHA256()
        hasher.update(data: Array("\(method.rawValue) \(target)\n".utf8))
        hasher.update(data: Array(body.readableBytesView))
        return hasher.finalize().hexString
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).hexString
    }

    static func retryAfterSeconds(_ remaining: Duration?) -> Int {
        max(1, remaining?.secondsRoundedUp ?? 1)
    }

    static func replay(_ stored: StoredResponse, fingerprint: String) -> Response {
        guard stored.requestFingerprint == fingerprint else {
            return problem(.unprocessableContent, "This Idempotency-Key was used for a different request.")
        }
        var headers = HTTPFields()
        for field in stored.headers {
            if let name = HTTPField.Name(field.name) { headers.append(HTTPField(name: name, value: field.value)) }
        }
        headers[replayedHeaderName] = "true"
        return Response(status: .init(code: stored.status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: stored.body)))
    }

    static func problem(_ status: HTTPResponse.Status, _ detail: String) -> Response {
        ProblemDetails(status: status, detail: detail).response()
    }
}

/// Collects a response body into one buffer so it can be stored and sent.
private final class BodyCollector: ResponseBodyWriter {
    var buffer = ByteBuffer()

    func write(_ part: ByteBuffer) async throws {
        var part = part
        buffer.writeBuffer(&part)
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
