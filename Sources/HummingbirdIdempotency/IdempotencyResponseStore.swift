import Foundation

/// A response recorded under an idempotency key, replayed to later retries with the same key.
public struct StoredResponse: Sendable, Codable, Equatable {
    /// The HTTP status code.
    public var status: Int
    /// Header fields worth replaying, in order (name, value).
    public var headers: [HeaderField]
    /// The whole body.
    public var body: Data
    /// SHA-256 (hex) of the request that produced it: method, path and body. A retry whose
    /// fingerprint differs reused the key for a different request and is refused.
    public var requestFingerprint: String

    /// One header field.
    public struct HeaderField: Sendable, Codable, Equatable {
        /// The field name.
        public var name: String
        /// The field value.
        public var value: String

        /// Creates a field.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Creates a stored response.
    public init(status: Int, headers: [HeaderField], body: Data, requestFingerprint: String) {
        self.status = status
        self.headers = headers
        self.body = body
        self.requestFingerprint = requestFingerprint
    }
}

/// Where completed responses live until their retention passes.
///
/// The store must be shared by every instance that serves the same clients (a database or
/// Redis), or a retry that reaches another instance runs the operation again. Writes happen
/// only while the key's lock is held, so a store needs no locking of its own.
public protocol IdempotencyResponseStore: Sendable {
    /// The response recorded for `key`, or nil if none is (or it expired).
    func response(for key: String) async throws -> StoredResponse?
    /// Records `response` for `key`, to be kept at least `retention`.
    func save(_ response: StoredResponse, for key: String, retention: Duration) async throws
}

/// An in-process store for tests and single-instance services. Entries expire after their
/// retention; expired entries are dropped as new ones are saved.
public actor InMemoryIdempotencyStore: IdempotencyResponseStore {
    private var entries: [String: (response: StoredResponse, expires: ContinuousClock.Instant)] = [:]

    /// Creates an empty store.
    public init() {}

    /// The stored response for `key`, if one is still kept.
    public func response(for key: String) -> StoredResponse? {
        guard let entry = entries[key], entry.expires > .now else { return nil }
        return entry.response
    }

    /// Stores `response` under `key` for `retention`.
    public func save(_ response: StoredResponse, for key: String, retention: Duration) {
        let now = ContinuousClock.now
        entries = entries.filter { $0.value.expires > now }
        entries[key] = (response, now + retention)
    }
}
