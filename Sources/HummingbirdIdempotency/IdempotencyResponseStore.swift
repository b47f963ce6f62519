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

/// An in-process store for tests and single-instance services, bounded in entries and in body
/// bytes: past either bound the oldest entries go first (their retries then run again).
/// Expired entries are dropped from the old end as new ones are saved; each save is O(1)
/// amortised.
public actor InMemoryIdempotencyStore: IdempotencyResponseStore {
    private struct Entry {
        var response: StoredResponse
        var expires: ContinuousClock.Instant
        var sequence: Int
    }

    private var entries: [String: Entry] = [:]
    /// Keys in the order they were saved, with the save's sequence number; a key saved again
    /// leaves a stale pair behind, skipped when it reaches the front.
    private var order: [(key: String, sequence: Int)] = []
    private var front = 0
    private var nextSequence = 0
    private let maximumEntries: Int
    private let maximumBytes: Int

    /// The body bytes kept now.
    public private(set) var storedBytes = 0

    /// Creates an empty store that keeps at most `maximumEntries` responses and
    /// `maximumBytes` of bodies.
    public init(maximumEntries: Int = 10_000, maximumBytes: Int = 64 << 20) {
        self.maximumEntries = max(maximumEntries, 1)
        self.maximumBytes = max(maximumBytes, 0)
    }

    /// The stored response for `key`, if one is still kept.
    public func response(for key: String) -> StoredResponse? {
        guard let entry = entries[key], entry.expires > .now else { return nil }
        return entry.response
    }

    /// Stores `response` under `key` for `retention`.
    public func save(_ response: StoredResponse, for key: String, retention: Duration) {
        let now = ContinuousClock.now
        if let old = entries.removeValue(forKey: key) { storedBytes -= old.response.body.count }
        nextSequence += 1
        entries[key] = Entry(response: response, expires: now + retention, sequence: nextSequence)
        storedBytes += response.body.count
        order.append((key, nextSequence))
        while front < order.count {
            let (oldestKey, sequence) = order[front]
            guard let oldest = entries[oldestKey], oldest.sequence == sequence else {
                front += 1  // stale: the key was saved again or already dropped
                continue
            }
            let overBound = entries.count > maximumEntries || storedBytes > maximumBytes
            guard overBound || oldest.expires <= now else { break }
            entries[oldestKey] = nil
            storedBytes -= oldest.response.body.count
            front += 1
        }
        if front > 1024 && front * 2 > order.count {
            order.removeFirst(front)
            front = 0
        }
    }
}
