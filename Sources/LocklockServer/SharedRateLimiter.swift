import Foundation
import RedisWire
import Redlock

/// A rate limit kept on the masters, so that every replica of the server counts the same
/// requests: GCRA (the generic cell rate algorithm) in one script on one master, picked by a
/// stable hash of the identity, on that master's clock. Returns nil when that master cannot
/// answer, and the caller falls back to its local limiter.
struct SharedRateLimiter: Sendable {
    let master: IdentityMaster

    /// KEYS[1] the identity's theoretical arrival time (µs); ARGV[1] µs per request, ARGV[2]
    /// burst. Returns {allowed, remaining, µs until the next request is allowed}.
    static let gcra = RedisScript(
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local interval = tonumber(ARGV[1])
        local tolerance = interval * (tonumber(ARGV[2]) - 1)
        local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
        if tat < now then tat = now end
        if now < tat - tolerance then return {0, 0, math.ceil(tat - tolerance - now)} end
        local next = tat + interval
        redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1000)
        return {1, math.floor((tolerance - (next - now)) / interval) + 1, math.max(0, math.ceil(next - tolerance - now))}
        """
    )

    /// Takes one request from `key`'s allowance of `rate` per second (burst twice that), and
    /// says how long the next request would be refused (zero when it would not).
    func check(_ key: String, rate: Int) async -> (decision: RateLimiter.Decision, refusedFor: Duration)? {
        let interval = 1_000_000.0 / Double(rate)
        let arguments = [Array(String(format: "%.3f", interval).utf8), Array(String(rate * 2).utf8)]
        guard let reply = await master.evaluate(Self.gcra, for: key, arguments: arguments), let values = reply.array?.compactMap(\.integer),
            values.count == 3
        else { return nil }
        let waitSeconds = Int((Double(values[2]) / 1_000_000).rounded(.up))
        let decision = RateLimiter.Decision(
            allowed: values[0] == 1,
            remaining: Int(max(values[1], 0)),
            retryAfter: values[0] == 1 ? 0 : max(1, waitSeconds)
        )
        return (decision, .microseconds(max(values[2], 0)))
    }
}
