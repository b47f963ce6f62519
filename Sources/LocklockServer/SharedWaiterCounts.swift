import RedisWire
import Redlock

/// How many waiting requests each identity has, kept where its throttling is (one master by a
/// stable hash of the identity), so that every replica counts the same waiters. Each waiter is
/// an entry that lapses on the master's clock shortly after the longest it may wait: a replica
/// that dies with waiters in flight frees their places soon after. Nil from either call means
/// the master did not answer, and the caller counts locally instead.
struct SharedWaiterCounts: Sendable {
    let master: IdentityMaster

    /// KEYS[1] the identity's waiters; ARGV[1] a waiter id, ARGV[2] the limit, ARGV[3] its
    /// lease (ms). Drops lapsed entries, then admits (1) unless the limit is reached (0).
    static let enter = RedisScript(
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
        local lapse = now + tonumber(ARGV[3])
        redis.call('ZADD', KEYS[1], lapse, ARGV[1])
        if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
        return 1
        """
    )

    /// KEYS[1] the identity's waiters; ARGV[1] a waiter id that leaves.
    static let leave = RedisScript("return redis.call('ZREM', KEYS[1], ARGV[1])")

    /// Counts one more waiter for `identity`, waiting at most `lease`; its id when admitted,
    /// an empty id when `limit` is reached, nil when the master did not answer.
    func enter(_ identity: String, limit: Int, lease: Duration) async -> [UInt8]? {
        let id = Redlock.randomValue()
        let arguments = [id, Array(String(limit).utf8), Array(String(lease.millisecondsRoundedUp).utf8)]
        guard let admitted = await master.evaluate(Self.enter, for: identity, arguments: arguments)?.integer else { return nil }
        return admitted == 1 ? id : []
    }

    /// Counts the waiter `id` of `identity` less.
    func leave(_ identity: String, id: [UInt8]) async {
        _ = await master.evaluate(Self.leave, for: identity, arguments: [id])
    }
}
