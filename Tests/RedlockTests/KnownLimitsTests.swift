import ChaosKit
import Foundation
import LocalRedis
import RealServerGate
import RedisWire
import Redlock
import Testing

/// One test per limit documented in Docs/redlock.md: each reproduces the limit, and where a
/// mitigation exists, shows that the mitigation closes it.
@Suite("Redlock's documented limits, reproduced", .serialized, .realRedisServers)
struct KnownLimitsTests {
    private func client(_ group: RedisServerGroup) async -> Redlock {
        let redlock = Redlock(masters: group.addresses, configuration: .init(retry: .never))
        await redlock.connect()
        return redlock
    }

    @Test func anImmediateRestartWithoutPersistenceCanGiveTwoHolders() async throws {
        try await withRedisServers(count: 5) { group throws in
            let first = await client(group)
            let second = await client(group)
            let held = try await first.acquire("ledger", ttl: .seconds(30))
            for index in 0..<3 { try await group[index].restart() }  // a majority forgets the lock
            let stolen = try await second.acquire("ledger", ttl: .seconds(30), retry: .init(count: 20, delay: .milliseconds(50), jitter: .zero))
            // Reproduced: two holders of one lock, each inside its validity.
            #expect(held.remainingValidity > .seconds(20), "the first holder still believes it holds the lock")
            #expect(stolen.remainingValidity > .seconds(20), "and so does the second")
            // Asked through the second client: the first one's connections to the restarted
            // masters may still be re-dialling with backoff on a loaded machine.
            #expect(try await second.inspect("ledger").fencingToken == stolen.fencingToken, "a quorum holds the second holder's lock")
            await first.shutdown()
            await second.shutdown()
        }
    }

    /// A minority is enough when the holder's quorum was bare: a split vote (a rival's
    /// partial grants, released after it lost) leaves the holder on exactly a majority, and
    /// restarting the part of it that is a minority leaves the lock on fewer masters than a
    /// quorum. With the delayed rejoin, the restarted masters do not vote until the locks
    /// they forgot have expired.
    @Test(arguments: [false, true])
    func aMinorityRestartCanGiveTwoHoldersWhenTheHoldersQuorumWasBare(delayedRejoin: Bool) async throws {
        try await withRedisServers(count: 5) { group throws in
            // The holder needs all three of its masters: no vote may be lost to a slow reply.
            let configuration = RedlockConfiguration(
                instanceTimeout: .seconds(1),
                retry: .never,
                maximumTTL: delayedRejoin ? .seconds(30) : nil
            )
            let first = Redlock(masters: group.addresses, configuration: configuration)
            let second = Redlock(masters: group.addresses, configuration: configuration)
            await first.connect()
            await second.connect()
            let rival = [3, 4].map { RedisConnection(address: group[$0].address) }
            for connection in rival { _ = try await connection.send("SET", "redlock:lock:ledger", "rival", "PX", "30000") }
            let held = try await first.acquire("ledger", ttl: .seconds(30))
            for connection in rival {
                #expect(try await connection.send("GET", "redlock:lock:ledger").string == "rival", "the holder's quorum is bare")
                _ = try await connection.send("DEL", "redlock:lock:ledger")  // the rival lost and released
                await connection.close()
            }
            for index in 0..<2 { try await group[index].restart() }  // a minority of the five
            let retry = RedlockConfiguration.Retry(count: 20, delay: .milliseconds(50), jitter: .zero)
            if delayedRejoin {
                let error = await #expect(throws: RedlockError.self) { try await second.acquire("ledger", ttl: .seconds(30), retry: retry) }
                #expect(error?.code == .quorumUnreachable || error?.code == .lockHeld, "\(String(describing: error))")
            } else {
                // Reproduced: two holders of one lock, each inside its validity.
                let stolen = try await second.acquire("ledger", ttl: .seconds(30), retry: retry)
                #expect(held.remainingValidity > .seconds(20), "the first holder still believes it holds the lock")
                #expect(stolen.remainingValidity > .seconds(20), "and so does the second")
            }
            await first.shutdown()
            await second.shutdown()
        }
    }

    @Test func appendfsyncAlwaysClosesTheRestartGap() async throws {
        try await withRedisServers(count: 5, options: .init(persistence: .appendOnlyAlways)) { group throws in
            let first = await client(group)
            let second = await client(group)
            _ = try await first.acquire("ledger", ttl: .seconds(30))
            for index in 0..<3 { try await group[index].restart() }
            let error = await #expect(throws: RedlockError.self) {
                try await second.acquire("ledger", ttl: .seconds(30), retry: .init(count: 20, delay: .milliseconds(50), jitter: .zero))
            }
            #expect(error?.code == .lockHeld)
            await first.shutdown()
            await second.shutdown()
        }
    }

    @Test func aRestartDelayedPastTheTTLClosesTheRestartGap() async throws {
        try await withRedisServers(count: 5) { group throws in
            let first = await client(group)
            let second = await client(group)
            let held = try await first.acquire("ledger", ttl: .milliseconds(800))
            for index in 0..<3 { await group[index].kill9() }
            // The contender tries all along, from the crash until after the delayed restart.
            let contender = Task {
                try await second.acquire(
                    "ledger",
                    ttl: .seconds(30),
                    wait: .seconds(5),
                    retry: .init(count: 0, delay: .milliseconds(20), jitter: .zero)
                )
            }
            try await Task.sleep(until: held.validUntil + .milliseconds(200), clock: .continuous)
            for index in 0..<3 { try await group[index].restart() }
            let next = try await contender.value
            #expect(held.remainingValidity < .zero, "the second holder comes only after the first's validity ended")
            #expect(next.validity > .zero)
            await first.shutdown()
            await second.shutdown()
        }
    }

    @Test(.enabled(if: FakeClock.isAvailable, "needs libfaketime and tcmalloc (make test installs both)"))
    func aClockJumpOnMastersShortensTheLockThere() async throws {
        let clockFile = FileManager.default.temporaryDirectory.appendingPathComponent("locklock-test-clock-\(UUID().uuidString)")
        try "+0".write(to: clockFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: clockFile) }
        let jumpy = FakeClock.offset(readFrom: clockFile.path)
        try await withRedisServers(count: 2, options: jumpy) { jumping throws in
            try await withRedisServers(count: 1) { steady throws in
                let masters = jumping.addresses + steady.addresses
                // A generous instance timeout: every time call of a master under libfaketime
                // reads the clock file, and a vote lost to a slow reply is not what this shows.
                let configuration = RedlockConfiguration(instanceTimeout: .seconds(1), retry: .never)
                let first = Redlock(masters: masters, configuration: configuration)
                let second = Redlock(masters: masters, configuration: configuration)
                await first.connect()
                await second.connect()
                let held = try await first.acquire("ledger", ttl: .seconds(30))
                try "+60".write(to: clockFile, atomically: true, encoding: .utf8)  // 2 of 3 masters jump a minute ahead
                let stolen = try await second.acquire("ledger", ttl: .seconds(30))
                #expect(held.remainingValidity > .seconds(20), "the first holder's own clock says it still holds the lock")
                #expect(stolen.validity > .zero, "reproduced: the jump expired the lock on a majority and a second client got it")
                await first.shutdown()
                await second.shutdown()
            }
        }
    }

    @Test func aClientPausedPastItsValidityKeepsRunningAndOnlyFencingStopsItsWrite() async throws {
        let fencedWrite = RedisScript(
            """
            local last = tonumber(redis.call('get', KEYS[2]) or '0')
            if tonumber(ARGV[2]) <= last then return 0 end
            redis.call('set', KEYS[1], ARGV[1])
            redis.call('set', KEYS[2], ARGV[2])
            return 1
            """
        )
        try await withRedisServers(count: 3) { group throws in
            try await withRedisServers(count: 1) { witnessGroup throws in
                let witness = RedisConnection(address: witnessGroup[0].address)
                let first = await client(group)
                let second = await client(group)
                let stale = try await first.acquire("ledger", ttl: .milliseconds(200))
                try await Task.sleep(for: .milliseconds(400))  // the "pause": GC, SIGSTOP, swap
                let fresh = try await second.acquire("ledger", ttl: .seconds(10))
                let freshWrite = try await witness.evaluate(
                    fencedWrite,
                    keys: [Array("balance".utf8), Array("balance:token".utf8)],
                    arguments: [Array("from-second".utf8), Array(String(fresh.fencingToken!).utf8)]
                )
                #expect(freshWrite == .integer(1))
                // The paused client resumes and writes as if it still held the lock.
                #expect(stale.remainingValidity < .zero, "reproduced: it runs past its validity")
                let staleWrite = try await witness.evaluate(
                    fencedWrite,
                    keys: [Array("balance".utf8), Array("balance:token".utf8)],
                    arguments: [Array("from-first".utf8), Array(String(stale.fencingToken!).utf8)]
                )
                #expect(staleWrite == .integer(0), "the fenced resource rejects the stale token")
                #expect(try await witness.send("GET", "balance").string == "from-second")
                await witness.close()
                await first.shutdown()
                await second.shutdown()
            }
        }
    }

    @Test func aReleaseFromAnotherClientCanOvertakeAnAcquisitionStillOnItsWayToASlowMaster() async throws {
        try await withRedisServers(count: 3) { group throws in
            // The acquirer reaches the third master through a proxy that holds each chunk back
            // 300 ms; the releaser (another process, or another server replica) reaches it directly.
            let proxy = try await FaultProxy.start(upstreamPort: group[2].port)
            let acquirer = Redlock(
                masters: [group[0].address, group[1].address, .hostname("127.0.0.1", port: proxy.port)],
                configuration: .init(retry: .never)
            )
            await acquirer.connect()
            let releaser = await client(group)
            try await withDirect(group) { masters in
                proxy.set(.latency(.milliseconds(300)))
                let value = Redlock.randomValue()
                // Granted by the first two masters at once: the third's command is still on its way.
                _ = try await acquirer.acquire("overtaken", ttl: .seconds(30), value: value)
                #expect(try await releaser.release(["overtaken"], value: value) == .released)
                #expect(try await masters[2].send("EXISTS", "redlock:lock:overtaken") == .integer(0), "the release found nothing there")
                try await Task.sleep(for: .milliseconds(700))
                // Reproduced: the acquisition lands after the release and stays until its TTL.
                #expect(try await masters[2].send("EXISTS", "redlock:lock:overtaken") == .integer(1))
                #expect(try await masters[2].send("PTTL", "redlock:lock:overtaken").integer ?? 0 > 20_000)
                // The lock is free on a quorum: the next holder gets it without that master.
                _ = try await releaser.acquire("overtaken", ttl: .seconds(5))
                let holders = [
                    try await masters[0].send("GET", "redlock:lock:overtaken"), try await masters[2].send("GET", "redlock:lock:overtaken"),
                ]
                #expect(holders[0] != holders[1], "the third master still holds the released acquisition's value")
            }
            await acquirer.shutdown()
            await releaser.shutdown()
            await proxy.stop()
        }
    }
}
