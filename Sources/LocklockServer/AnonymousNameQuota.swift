import RedisWire
import Redlock

/// How many distinct lock names one anonymous caller may use per fence retention: each new
/// name leaves a lock key on every master for its `expires_in`, and a fence for the retention,
/// so this is what bounds the masters' memory one address can take. Counted where throttling
/// is (one master by a stable hash of the identity), shared by every replica; when that master
/// does not answer, the name is let through.
struct AnonymousNameQuota: Sendable {
    let master: IdentityMaster

    /// KEYS[1] the identity's names; ARGV[1] a lock name, ARGV[2] the quota, ARGV[3] the window
    /// (ms). Forgets names older than the window; admits a name already counted, or a new one
    /// while there is room (0), else returns the ms until the oldest leaves the window.
    static let admit = RedisScript(
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local window = tonumber(ARGV[3])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
        if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
          local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
          return math.max(1, tonumber(oldest[2]) + window - now)
        end
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        redis.call('PEXPIRE', KEYS[1], window)
        return 0
        """
    )

    /// Nil when `name` may be used by `identity`; else how long until it may.
    func admit(_ name: String, for identity: String, quota: Int, window: Duration) async -> Duration? {
        let milliseconds = max(window.millisecondsRoundedUp, 1)
        let arguments = [Array(name.utf8), Array(String(quota).utf8), Array(String(milliseconds).utf8)]
        guard let wait = await master.evaluate(Self.admit, for: identity, arguments: arguments)?.integer, wait > 0 else { return nil }
        return .milliseconds(wait)
    }
}
