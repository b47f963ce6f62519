import LocalRedis
import RealServerGate
import RedisWire
import Redlock
import Testing

/// The ACL that Docs/operations.md gives the masters' Locklock user, checked against real
/// masters: every operation works with it, and nothing more is granted.
@Suite("The least ACL Locklock needs", .realRedisServers)
struct LeastPrivilegeTests {
    /// The rules of Docs/operations.md, after `ACL SETUSER locklock on >PASSWORD`.
    static let rules = [
        "resetkeys", "~redlock:*", "~locklock:*", "resetchannels", "&redlock:*", "-@all",
        "+ping", "+info", "+select", "+evalsha", "+eval", "+script|load", "+config|get",
        "+set", "+get", "+del", "+exists", "+pttl", "+pexpire", "+multi", "+exec", "+time",
        "+publish", "+subscribe", "+unsubscribe", "+zadd", "+zrem", "+zrange", "+zrangebyscore", "+zremrangebyscore", "+zscore", "+zcard",
    ]

    @Test func everyLockOperationWorksWithTheDocumentedACLAndNoMore() async throws {
        try await withRedisServers(count: 5) { group throws in
            for server in group.servers {
                let admin = RedisConnection(address: server.address)
                _ = try await admin.send(
                    ["ACL", "SETUSER", "locklock", "on", ">least-privilege"].map { Array($0.utf8) } + Self.rules.map { Array($0.utf8) }
                )
                await admin.close()
            }
            let endpoints = try RedisEndpoint.list(
                parsing: group.servers.map { "redis://locklock:least-privilege@127.0.0.1:\($0.port)/0" }.joined(separator: ",")
            )
            // maximumTTL: the delayed rejoin reads INFO on every connect.
            let redlock = Redlock(endpoints: endpoints, configuration: .init(retry: .never, maximumTTL: .seconds(60)))
            #expect(await redlock.connect() == 5)
            let fenced = try await redlock.acquire("acl", ttl: .seconds(10))
            #expect(fenced.fencingToken != nil)
            let extended = try await redlock.extend(fenced, ttl: .seconds(10))
            #expect(try await redlock.inspect("acl").isHeld)
            #expect(try await redlock.release(extended) == .released)
            let plain = try await redlock.acquire("acl-plain", ttl: .seconds(10), fencing: false)
            #expect(try await redlock.release(plain) == .released)
            let many = try await redlock.acquire(["acl-a", "acl-b"], ttl: .seconds(10))
            #expect(try await redlock.release(many) == .released)
            // A waiter is woken by the release (its fallback would be the holder's 60 s).
            let held = try await redlock.acquire("acl-wait", ttl: .seconds(60))
            async let waited = redlock.acquire("acl-wait", ttl: .seconds(10), wait: .seconds(20))
            try await Task.sleep(for: .milliseconds(300))
            try await redlock.release(held)
            let woken = ContinuousClock.now
            #expect(try await redlock.release(try await waited) == .released)
            #expect(ContinuousClock.now - woken < .seconds(5), "the release was announced to the waiter")
            // A read-write lock: readers' entries, a writer that waits for them, extension.
            let shared = try ReadWriteLock("acl-rw", on: redlock)
            let reader = try await shared.acquireRead(ttl: .seconds(10))
            await #expect(throws: RedlockError.self) { try await shared.acquireWrite(ttl: .seconds(10), wait: .milliseconds(100)) }
            #expect(try await redlock.release(try await redlock.extend(reader, ttl: .seconds(10))) == .released)
            #expect(try await redlock.release(try await shared.acquireWrite(ttl: .seconds(10))) == .released)
            #expect(await redlock.answeringMasters() == 5)
            #expect(await redlock.serverSetting("maxmemory-policy").allSatisfy { $0 != nil })
            // And no more: a key outside the prefixes, or a command outside the list, is refused.
            let user = RedisConnection(address: endpoints[0].address, configuration: endpoints[0].configuration(from: .init()))
            await #expect(throws: RedisWireError.self) { try await user.send("SET", "other:key", "v") }
            await #expect(throws: RedisWireError.self) { try await user.send("FLUSHALL") }
            await user.close()
            await redlock.shutdown()
        }
    }
}
