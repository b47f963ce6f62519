import LocalRedis
import NIOCore
import RealServerGate
import RedisWire
import Redlock
import Synchronization
import Testing

@Suite("Redlock against 5 real masters", .serialized, .realRedisServers)
struct RedlockTests {
    @Test func sixtyFourContendersIncrementAPlainCounterWithoutLostUpdatesAndWithIncreasingTokens() async throws {
        try await withRedlock(configuration: .init(retry: fastRetry)) { redlock, _ in
            try await withRedisServers(count: 1) { witness throws in
                let counter = direct(witness[0])
                _ = try await counter.send("SET", "counter", "0")
                let tokens = Recorder<Int64>()
                let total = 2_000
                let contenders = 64
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for contender in 0..<contenders {
                        let share = total / contenders + (contender < total % contenders ? 1 : 0)
                        tasks.addTask {
                            for _ in 0..<share {
                                try await redlock.withLock("shared-counter", ttl: .seconds(5)) { lock in
                                    tokens.append(lock.fencingToken ?? -1)
                                    // Deliberately non-atomic read-modify-write.
                                    let current = Int(try await counter.send("GET", "counter").string ?? "") ?? -1
                                    _ = try await counter.send("SET", "counter", String(current + 1))
                                }
                            }
                        }
                    }
                    try await tasks.waitForAll()
                }
                #expect(try await counter.send("GET", "counter").string == String(total))
                let seen = tokens.all
                #expect(seen.count == total)
                #expect(zip(seen, seen.dropFirst()).allSatisfy { $0 < $1 }, "fencing tokens must strictly increase")
                await counter.close()
            }
        }
    }

    @Test func aForeignValueOnTwoOfFiveStillAcquiresAndOnThreeFailsAsHeld() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, group in
            try await withDirect(group) { masters in
                for master in masters.prefix(2) { _ = try await master.send("SET", "redlock:lock:two", "foreign", "PX", "60000") }
                let lock = try await redlock.acquire("two", ttl: .seconds(10))
                #expect(lock.validity > .seconds(9))
                #expect(try await redlock.release(lock) == .released)

                for master in masters.prefix(3) { _ = try await master.send("SET", "redlock:lock:three", "foreign", "PX", "60000") }
                let error = await #expect(throws: RedlockError.self) { try await redlock.acquire("three", ttl: .seconds(10)) }
                #expect(error?.code == .lockHeld)
                // A failed acquisition leaves no key of ours anywhere, and foreign values intact.
                for master in masters.prefix(3) { #expect(try await master.send("GET", "redlock:lock:three").string == "foreign") }
                for master in masters.suffix(2) { #expect(try await master.send("EXISTS", "redlock:lock:three") == .integer(0)) }
            }
        }
    }

    @Test func threeOfFiveMastersKilledFailsAsUnreachableAndTwoKilledStillAcquires() async throws {
        let configuration = RedlockConfiguration(instanceTimeout: .milliseconds(50), retry: .never)
        try await withRedlock(configuration: configuration) { redlock, group in
            let clock = ContinuousClock()
            await group[0].kill9()
            await group[1].kill9()
            _ = try? await redlock.acquire("warm-up", ttl: .seconds(1))  // let the clients notice
            for attempt in 0..<5 {
                let start = clock.now
                let lock = try await redlock.acquire("two-down-\(attempt)", ttl: .seconds(10))
                // The wait on Redis is bounded by the 50 ms instance timeout; 30 ms more covers
                // task scheduling on a shared 2-core machine.
                #expect(clock.now - start < .milliseconds(80), "one attempt took \(clock.now - start)")
                try await redlock.release(lock)
            }
            await group[2].kill9()
            _ = try? await redlock.acquire("warm-up-2", ttl: .seconds(1))
            for attempt in 0..<5 {
                let start = clock.now
                let error = await #expect(throws: RedlockError.self) { try await redlock.acquire("three-down-\(attempt)", ttl: .seconds(10)) }
                #expect(error?.code == .quorumUnreachable)
                #expect(clock.now - start < .milliseconds(80), "one attempt took \(clock.now - start)")
            }
        }
    }

    @Test func aPausedMinorityCostsAtMostOneInstanceTimeout() async throws {
        let configuration = RedlockConfiguration(instanceTimeout: .milliseconds(50), retry: .never)
        try await withRedlock(configuration: configuration) { redlock, group in
            group[3].pause()
            group[4].pause()
            defer {
                group[3].resume()
                group[4].resume()
            }
            let clock = ContinuousClock()
            for attempt in 0..<3 {
                let start = clock.now
                let lock = try await redlock.acquire("paused-\(attempt)", ttl: .seconds(10))
                #expect(clock.now - start < .milliseconds(80), "the quorum answers without waiting for the paused masters")
                try await redlock.release(lock)
            }
            group[2].pause()
            let start = clock.now
            let error = await #expect(throws: RedlockError.self) { try await redlock.acquire("paused-majority", ttl: .seconds(10)) }
            #expect(error?.code == .quorumUnreachable)
            // One instance timeout for the SETs; the release does not wait on unresponsive masters.
            #expect(clock.now - start < .milliseconds(150), "took \(clock.now - start)")
            group[2].resume()
        }
    }

    @Test func releaseNeverDeletesAForeignValueAndReportsNotHeldAfterExpiry() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, group in
            try await withDirect(group) { masters in
                let lock = try await redlock.acquire("expiring", ttl: .milliseconds(100))
                try await Task.sleep(for: .milliseconds(200))
                #expect(try await redlock.release(lock) == .notHeld)
                // Someone else takes it; our stale release must not touch their value.
                let other = try await redlock.acquire("expiring", ttl: .seconds(10))
                #expect(try await redlock.release(lock) == .notHeld)
                for master in masters { #expect(try await master.send("EXISTS", "redlock:lock:expiring") == .integer(1)) }
                #expect(try await redlock.inspect("expiring").isHeld)
                #expect(try await redlock.release(other) == .released)
                for master in masters { #expect(try await master.send("EXISTS", "redlock:lock:expiring") == .integer(0)) }
            }
        }
    }

    @Test func reportedValidityIsTTLMinusElapsedMinusDriftUnderAnInjectedDelay() async throws {
        let configuration = RedlockConfiguration(instanceTimeout: .seconds(2), retry: .never)
        try await withRedlock(configuration: configuration) { redlock, group in
            try await withDirect(group) { masters in
                let clock = ContinuousClock()
                // 3 of 5 masters are paused for at least 150 ms after the attempt reached the
                // other two (they hold its key): the quorum cannot answer sooner.
                let ttl = Duration.seconds(2)
                for index in 0..<3 { group[index].pause() }
                defer { for index in 0..<3 { group[index].resume() } }
                let start = clock.now
                let attempt = Task { try await redlock.acquire("slow", ttl: ttl) }
                try await waitUntilHeld("redlock:lock:slow", on: [masters[3], masters[4]])
                try await Task.sleep(for: .milliseconds(150))
                for index in 0..<3 { group[index].resume() }
                let lock = try await attempt.value
                let outer = clock.now - start
                let drift = Validity.drift(ttl: ttl, driftFactor: 0.01)
                // validity = ttl - elapsed - drift, where 150 ms <= elapsed <= what we measured outside.
                #expect(lock.validity <= ttl - .milliseconds(150) - drift)
                #expect(lock.validity >= ttl - outer - drift)
                try await redlock.release(lock)
            }
        }
    }

    @Test func aPausedMinorityCostsNeitherASplitVoteNorAReleaseTheInstanceTimeout() async throws {
        // Found by the fault-injection suite: contenders used to wait for the paused master on
        // every split vote, cutting the rate of critical sections by about two thirds.
        let configuration = RedlockConfiguration(instanceTimeout: .seconds(3), retry: .never, fencing: false)
        try await withRedlock(masters: 3, configuration: configuration) { redlock, group in
            try await withDirect(group) { masters in
                let clock = ContinuousClock()
                _ = try await masters[0].send("SET", "redlock:lock:split", "rival", "PX", "10000")
                group[2].pause()
                defer { group[2].resume() }
                let start = clock.now
                let error = await #expect(throws: RedlockError.self) { try await redlock.acquire("split", ttl: .seconds(10)) }
                #expect(error?.code == .lockHeld)
                #expect(clock.now - start < .seconds(1), "decided by the two live masters, not the 3 s instance timeout")
                #expect(try await masters[1].send("EXISTS", "redlock:lock:split") == .integer(0), "our vote was taken back")

                _ = try await masters[0].send("DEL", "redlock:lock:split")
                let lock = try await redlock.acquire("split", ttl: .seconds(10))
                let releaseStart = clock.now
                #expect(try await redlock.release(lock) == .released)
                #expect(clock.now - releaseStart < .seconds(1), "released on a quorum without waiting for the paused master")
            }
        }
    }

    @Test func anAcquisitionSlowerThanTTLMinusDriftFailsAndLeavesNoKey() async throws {
        let configuration = RedlockConfiguration(instanceTimeout: .seconds(2), retry: .never)
        try await withRedlock(configuration: configuration) { redlock, group in
            try await withDirect(group) { masters in
                // Three of five masters answer only 1 s after the other two hold the key, so the
                // quorum's elapsed time exceeds ttl - drift (1 s - 12 ms). They are paused before
                // the attempt starts and resumed only after that, so the delay is never skipped.
                for index in 0..<3 { group[index].pause() }
                defer { for index in 0..<3 { group[index].resume() } }
                let attempt = Task { try await redlock.acquire("too-slow", ttl: .seconds(1)) }
                try await waitUntilHeld("redlock:lock:too-slow", on: [masters[3], masters[4]])
                try await Task.sleep(for: .seconds(1))
                for index in 0..<3 { group[index].resume() }
                let error = await #expect(throws: RedlockError.self) { try await attempt.value }
                #expect(error?.code == .validityExhausted)
                for master in masters { #expect(try await master.send("EXISTS", "redlock:lock:too-slow") == .integer(0)) }
            }
        }
    }

    @Test func aFailedContenderLeavesTheHoldersTokenAsIssued() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, _ in
            let value = Redlock.randomValue()
            let holder = try await redlock.acquire("kept", ttl: .seconds(10), value: value)
            let issued = try #require(holder.fencingToken)
            for _ in 0..<5 {
                await #expect(throws: RedlockError.self) { try await redlock.acquire("kept", ttl: .seconds(10)) }
            }
            // Status and token-bound release read the token from the holder's value, which the
            // contenders' burned candidates do not touch.
            #expect(try await redlock.inspect("kept").fencingToken == issued)
            #expect(try await redlock.release(["kept"], matching: .exact(value), fencingToken: issued) == .released)
        }
    }

    @Test func fencingTokensRiseAboveFencesThatRanAheadOfThisClientsClock() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, group in
            try await withDirect(group) { masters in
                let first = try await redlock.acquire("fenced", ttl: .seconds(10))
                try await redlock.release(first)
                // Another client whose clock is hours ahead raised the fence on a majority.
                let ahead = first.fencingToken! + 10_000_000_000
                for index in 2..<5 { _ = try await masters[index].send("ZADD", "redlock:fences", "\(ahead)", "redlock:lock:fenced") }
                let second = try await redlock.acquire("fenced", ttl: .seconds(10))
                #expect(second.fencingToken! > ahead, "a majority's fences refused the clock's candidate; the token rose above them")
                #expect(try await redlock.inspect("fenced").fencingToken == second.fencingToken)
                try await redlock.release(second)
                // A fence ahead on master 4 alone; with 0 and 1 paused, every quorum needs it.
                let further = second.fencingToken! + 10_000_000_000
                _ = try await masters[4].send("ZADD", "redlock:fences", "\(further)", "redlock:lock:fenced")
                group[0].pause()
                group[1].pause()
                let third: Lock
                do {
                    third = try await redlock.acquire("fenced", ttl: .seconds(10))
                } catch {
                    group[0].resume()
                    group[1].resume()
                    throw error
                }
                group[0].resume()
                group[1].resume()
                #expect(third.fencingToken! > further)
                try await redlock.release(third)
                // Without master 4, any quorum of {0, 1, 2, 3} holds 2 or 3, whose fences hold
                // the third token: the next token is still higher.
                await group[4].kill9()
                for _ in 0..<3 {
                    let next = try await redlock.acquire(
                        "fenced",
                        ttl: .seconds(10),
                        retry: .init(count: 20, delay: .milliseconds(20), jitter: .zero)
                    )
                    #expect(next.fencingToken! > third.fencingToken!)
                    try await redlock.release(next)
                }
            }
        }
    }

    @Test func extendKeepsTheLockAndFailsAsLostAfterExpiry() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, group in
            let lock = try await redlock.acquire("extend-me", ttl: .milliseconds(300))
            let extended = try await redlock.extend(lock, ttl: .seconds(5))
            #expect(extended.validity > .seconds(4))
            #expect(extended.fencingToken == lock.fencingToken)
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await redlock.inspect("extend-me").isHeld, "the extension outlived the first TTL")
            try await redlock.release(extended)

            let short = try await redlock.acquire("expire-me", ttl: .milliseconds(50))
            try await Task.sleep(for: .milliseconds(100))
            let error = await #expect(throws: RedlockError.self) { try await redlock.extend(short, ttl: .seconds(5)) }
            #expect(error?.code == .lockLost)
        }
    }

    @Test func extendReseedsARestartedMasterOnlyWhileTheQuorumHoldsOurValue() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, group in
            try await withDirect(group) { masters in
                let lock = try await redlock.acquire("reseed", ttl: .seconds(10))
                try await group[0].restart()  // no persistence: the key is gone there
                #expect(try await masters[0].send("EXISTS", "redlock:lock:reseed") == .integer(0))
                // The client's connection to master 0 re-dials in the background.
                var extended: Lock?
                for _ in 0..<50 where extended == nil {
                    extended = try await redlock.extend(lock, ttl: .seconds(10))
                    if try await masters[0].send("EXISTS", "redlock:lock:reseed") == .integer(0) {
                        extended = nil
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                #expect(extended != nil)
                #expect(try await masters[0].send("EXISTS", "redlock:lock:reseed") == .integer(1))
                #expect(try await redlock.release(lock) == .released)

                // The other half: once the quorum no longer holds our value, nothing is written back.
                let lost = try await redlock.acquire("reseed-lost", ttl: .seconds(10))
                for master in masters[1...3] { _ = try await master.send("SET", "redlock:lock:reseed-lost", "someone-else", "PX", "10000") }
                try await group[0].restart()
                for _ in 0..<50 where await redlock.reachableMasters() < 5 { try await Task.sleep(for: .milliseconds(20)) }
                let error = await #expect(throws: RedlockError.self) { try await redlock.extend(lost, ttl: .seconds(10)) }
                #expect(error?.code == .lockLost)
                #expect(try await masters[0].send("EXISTS", "redlock:lock:reseed-lost") == .integer(0), "not re-seeded without a quorum")
            }
        }
    }

    @Test func inspectReportsHolderAndRemainingTTL() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, _ in
            #expect(try await redlock.inspect("inspected").isHeld == false)
            let lock = try await redlock.acquire("inspected", ttl: .seconds(10))
            let state = try await redlock.inspect("inspected")
            #expect(state.isHeld)
            #expect(state.fencingToken == lock.fencingToken, "status reports the holder's own token")
            #expect(state.remaining.map { $0 > .seconds(9) && $0 <= .seconds(10) } == true)
            #expect(state.isHeld(by: Array("someone-else".utf8)) == false)
            try await redlock.release(lock)
            #expect(try await redlock.inspect("inspected").isHeld == false)
        }
    }
}
