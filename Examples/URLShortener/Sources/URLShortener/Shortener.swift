import Crypto
import Foundation
import Redlock

/// How concurrent requests for the same long URL are kept apart.
public enum GuardMode: String, Sendable, CaseIterable {
    /// No guard: the race is visible (several codes for one URL).
    case none
    /// One request per long URL at a time; the others get 409 with Retry-After.
    case reject
    /// One request per long URL at a time; the others wait for the lock and then find the
    /// winner's code.
    case wait
}

/// Shortens URLs with a check-then-insert that is not atomic on purpose, as naive services
/// do: the look-up and the insert are separate database accesses with work
/// in between, so concurrent identical requests all miss and all insert, unless a Redlock
/// lock on the long URL makes the critical section exclusive.
public struct Shortener: Sendable {
    /// What one request got.
    public enum Outcome: Sendable, Equatable {
        /// This request created the short URL.
        case created(ShortURL)
        /// The long URL already had one.
        case existing(ShortURL)
        /// Another request for the same long URL holds the lock (reject mode).
        case busy(retryAfter: Duration?)
    }

    let database: ShortURLDatabase
    let redlock: Redlock
    /// The guard in use.
    public let mode: GuardMode
    /// The work between the look-up and the insert (validating the URL, say): the window
    /// the race needs.
    public let processingDelay: Duration
    /// How long a request waits for the lock in ``GuardMode/wait``.
    public let maximumWait: Duration

    /// Creates a shortener.
    public init(
        database: ShortURLDatabase,
        redlock: Redlock,
        mode: GuardMode,
        processingDelay: Duration = .milliseconds(100),
        maximumWait: Duration = .seconds(15)
    ) {
        self.database = database
        self.redlock = redlock
        self.mode = mode
        self.processingDelay = processingDelay
        self.maximumWait = maximumWait
    }

    /// Returns the short URL for `longURL`, creating it if there is none.
    public func shorten(_ longURL: String) async throws -> Outcome {
        // The lock's TTL only has to outlast one critical section; withLock extends it anyway.
        let ttl = processingDelay * 10 + .seconds(1)
        // Guarded modes look first without the lock: a URL shortened long ago answers 200
        // at once instead of queueing (or 409) behind a request that merely reads it.
        if mode != .none, let existing = try await database.find(longURL: longURL) { return .existing(existing) }
        switch mode {
        case .none:
            return try await checkThenInsert(longURL)
        case .reject:
            do {
                return try await redlock.withLock(Self.resource(for: longURL), ttl: ttl, retry: RedlockConfiguration.Retry.never) { _ in
                    try await checkThenInsert(longURL)
                }
            } catch let error as RedlockError where error.code == .lockHeld {
                return .busy(retryAfter: error.retryAfter)
            }
        case .wait:
            let retry = RedlockConfiguration.Retry(
                count: Int.max,
                delay: .milliseconds(20),
                jitter: .milliseconds(20),
                maximumWait: maximumWait
            )
            return try await redlock.withLock(Self.resource(for: longURL), ttl: ttl, retry: retry) { _ in
                try await checkThenInsert(longURL)
            }
        }
    }

    /// The critical section: look up, work, insert.
    private func checkThenInsert(_ longURL: String) async throws -> Outcome {
        if let existing = try await database.find(longURL: longURL) { return .existing(existing) }
        try await Task.sleep(for: processingDelay)
        let shortURL = ShortURL(code: Self.newCode(), longURL: longURL)
        try await database.insert(shortURL)
        return .created(shortURL)
    }

    /// The lock resource for a long URL: a hash, so any URL makes a short, safe key.
    static func resource(for longURL: String) -> String {
        "shorten:" + SHA256.hash(data: Array(longURL.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Seven random base-62 characters.
    static func newCode() -> String {
        let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        var generator = SystemRandomNumberGenerator()
        return String((0..<7).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
