import RedisWire
import Synchronization

/// Token buckets per client address or tenant: `rate` requests per second with a burst of
/// twice that. A rate of 0 turns throttling off.
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = Mutex<[String: Bucket]>([:])

    /// Creates a limiter.
    public init() {}

    /// Outcome of one check.
    public struct Decision: Sendable {
        /// Whether the request may go ahead.
        public var allowed: Bool
        /// Tokens left (rounded down).
        public var remaining: Int
        /// Seconds until a token is available, when refused.
        public var retryAfter: Int
    }

    /// Takes one token from `key`'s bucket.
    public func check(_ key: String, rate: Int) -> Decision {
        guard rate > 0 else { return Decision(allowed: true, remaining: Int.max, retryAfter: 0) }
        let capacity = Double(rate * 2)
        let now = ContinuousClock.now
        return buckets.withLock { buckets in
            if buckets.count > 100_000 { buckets = buckets.filter { now - $0.value.updated < .seconds(60) } }
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = now - bucket.updated
            bucket.tokens = min(capacity, bucket.tokens + elapsed.seconds * Double(rate))
            bucket.updated = now
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return Decision(allowed: true, remaining: Int(bucket.tokens), retryAfter: 0)
            }
            let wait = (1 - bucket.tokens) / Double(rate)
            return Decision(allowed: false, remaining: 0, retryAfter: max(1, Int(wait.rounded(.up))))
        }
    }
}
