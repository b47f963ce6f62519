import Synchronization

/// Wrong secrets per caller and lock: each lock's answers (403 or 412 to a DELETE or PATCH,
/// 409 or 200 to a POST with a secret) tell a right secret from a wrong one, so a caller may
/// get only a few of them wrong before it must wait. A bucket of ``allowance`` failures per
/// caller identity and lock, refilled one every ``refill``; an empty one answers 429 before
/// the secret is even looked at. Kept in each replica (at most `maximumKeys` buckets, full
/// ones forgotten first).
final class SecretGuessLimiter: Sendable {
    /// Wrong secrets a caller may send for one lock in a row.
    static let allowance = 30.0
    /// How often one more is allowed.
    static let refill = Duration.seconds(10)

    private let buckets = Mutex<[String: (tokens: Double, updated: ContinuousClock.Instant)]>([:])
    private let maximumKeys: Int

    init(maximumKeys: Int = 100_000) { self.maximumKeys = max(maximumKeys, 1) }

    /// How long `key` must wait before its next guess, or nil when it may go ahead.
    func refusal(for key: String, now: ContinuousClock.Instant = .now) -> Duration? {
        buckets.withLock { buckets in
            guard let bucket = buckets[key] else { return nil }
            let tokens = Self.tokens(bucket, now: now)
            return tokens >= 1 ? nil : Self.refill * (1 - tokens)
        }
    }

    /// Counts one wrong secret of `key`.
    func recordFailure(_ key: String, now: ContinuousClock.Instant = .now) {
        buckets.withLock { buckets in
            if buckets[key] == nil, buckets.count >= maximumKeys {
                buckets = buckets.filter { Self.tokens($0.value, now: now) < Self.allowance }
                guard buckets.count < maximumKeys else { return }
            }
            let tokens = buckets[key].map { Self.tokens($0, now: now) } ?? Self.allowance
            buckets[key] = (max(tokens - 1, 0), now)
        }
    }

    private static func tokens(_ bucket: (tokens: Double, updated: ContinuousClock.Instant), now: ContinuousClock.Instant) -> Double {
        min(allowance, bucket.tokens + (now - bucket.updated) / refill)
    }
}
