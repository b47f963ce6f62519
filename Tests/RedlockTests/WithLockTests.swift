import InMemoryLogging
import LocalRedis
import Logging
import MetricsTestKit
import NIOCore
import RealServerGate
import RedisWire
import Redlock
import Synchronization
import Testing

@Suite("withLock, multi-resource locks, IdempotencyGuard", .serialized, .realRedisServers)
struct WithLockTests {
    @Test func aBodyThatOutlivesTheTTLKeepsTheLockByAutoExtension() async throws {
        // Generous instance timeout: this test is about extension, not latency, and CI shares 2 cores.
        try await withRedlock(configuration: .init(instanceTimeout: .milliseconds(250), retry: .never)) { redlock, _ in
            let observations = try await redlock.withLock("long-job", ttl: .milliseconds(900)) { lock in
                var heldThroughout = true
                for _ in 0..<12 {  // 2.4 s: well past the 900 ms TTL
                    try await Task.sleep(for: .milliseconds(200))
                    if (try? await redlock.acquire("long-job", ttl: .seconds(1), retry: RedlockConfiguration.Retry.never)) != nil {
                        heldThroughout = false
                    }
                }
                return (heldThroughout, lock.remainingValidity)
            }
            #expect(observations.0, "no one else could take the lock while the body ran")
            #expect(observations.1 > .zero)
            #expect(try await redlock.inspect("long-job").isHeld == false, "released on return")
        }
    }

    @Test func aBodyIsCancelledBeforeTheValidityRunsOutWhenAMajorityIsKilled() async throws {
        let configuration = RedlockConfiguration(instanceTimeout: .milliseconds(50), retry: .never)
        try await withRedlock(configuration: configuration) { redlock, group in
            let clock = ContinuousClock()
            let cancelledAt = Mutex<ContinuousClock.Instant?>(nil)
            let validUntil = Mutex<ContinuousClock.Instant?>(nil)
            let error = await #expect(throws: RedlockError.self) {
                try await redlock.withLock("doomed", ttl: .seconds(1)) { lock in
                    await group[0].kill9()
                    await group[1].kill9()
                    await group[2].kill9()
                    do {
                        try await Task.sleep(for: .seconds(5))
                    } catch {
                        cancelledAt.withLock { $0 = clock.now }
                        validUntil.withLock { $0 = lock.lock.validUntil }
                    }
                }
            }
            #expect(error?.code == .lockLost)
            let cancelled = try #require(cancelledAt.withLock { $0 })
            let deadline = try #require(validUntil.withLock { $0 })
            #expect(cancelled < deadline, "cancelled \(deadline - cancelled) before the validity ran out")
        }
    }

    @Test func releaseHappensWhenTheBodyThrows() async throws {
        struct BodyFailed: Error {}
        try await withRedlock(configuration: .init(retry: .never)) { redlock, _ throws in
            await #expect(throws: BodyFailed.self) {
                try await redlock.withLock("throws", ttl: .seconds(10)) { _ in throw BodyFailed() }
            }
            #expect(try await redlock.inspect("throws").isHeld == false)
        }
    }

    @Test func overlappingMultiResourceLocksNeverBothSucceed() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, _ in
            let first = try await redlock.acquire(["a", "b"], ttl: .seconds(10))
            #expect(first.fencingTokens.count == 2)
            let blocked = await #expect(throws: RedlockError.self) { try await redlock.acquire(["b", "c"], ttl: .seconds(10)) }
            #expect(blocked?.code == .lockHeld)
            #expect(try await redlock.inspect("c").isHeld == false, "all or nothing: c was not taken")
            try await redlock.release(first)
            let second = try await redlock.acquire(["b", "c"], ttl: .seconds(10))
            try await redlock.release(second)

            // Racing pairs: never both.
            for round in 0..<30 {
                async let left = try? await redlock.acquire(["x\(round)", "y\(round)"], ttl: .seconds(10))
                async let right = try? await redlock.acquire(["y\(round)", "z\(round)"], ttl: .seconds(10))
                let (l, r) = await (left, right)
                #expect(!(l != nil && r != nil), "round \(round): both overlapping locks succeeded")
            }
        }
    }

    @Test func multiResourceLocksAreAllOrNothingOnEachMaster() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, group in
            try await withDirect(group) { masters in
                _ = try await masters[0].send("SET", "redlock:lock:n", "foreign", "PX", "60000")
                let lock = try await redlock.acquire(["m", "n"], ttl: .seconds(10))
                // Master 0 refused the whole set: "m" was not written there either.
                #expect(try await masters[0].send("EXISTS", "redlock:lock:m") == .integer(0))
                for master in masters.dropFirst() { #expect(try await master.send("EXISTS", "redlock:lock:m", "redlock:lock:n") == .integer(2)) }
                #expect(try await redlock.release(lock) == .released)
                #expect(try await masters[0].send("GET", "redlock:lock:n").string == "foreign")
            }
        }
    }

    @Test func atMostOnceGuardRunsAnOperationOnceHoweverManyCallersRace() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, _ in
            let guardian = IdempotencyGuard(redlock: redlock, mode: .atMostOnce(retention: .seconds(60)))
            let runs = Recorder<Int>()
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { tasks in
                for caller in 0..<25 {
                    tasks.addTask {
                        let outcome = try await guardian.run(key: "event-42") {
                            runs.append(caller)
                            return caller
                        }
                        if case .performed = outcome { return true }
                        return false
                    }
                }
                return try await tasks.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(runs.all.count == 1)
            #expect(outcomes.filter { $0 }.count == 1)
            let later = try await guardian.run(key: "event-42") {
                runs.append(-1)
                return -1
            }
            if case .alreadyPerformed = later {} else { Issue.record("a later call must see alreadyPerformed, got \(later)") }
            #expect(runs.all.count == 1)
        }
    }

    @Test func guardsLeaveNoFenceBehind() async throws {
        // Fenced locks keep a fence per resource for a day; a guard keyed per request must
        // not, or every request would leave an entry on every master.
        try await withRedlock(configuration: .init(retry: .never)) { redlock, group in
            let atMostOnce = IdempotencyGuard(redlock: redlock, mode: .atMostOnce(retention: .seconds(60)))
            let exclusive = IdempotencyGuard(redlock: redlock, mode: .exclusive(ttl: .seconds(5)))
            for key in ["request-1", "request-2", "request-3"] {
                if case .performed = try await atMostOnce.run(key: key, { 1 }) {} else { Issue.record("\(key) must run") }
                if case .performed = try await exclusive.run(key: "x-" + key, { 2 }) {} else { Issue.record("x-\(key) must run") }
            }
            // A plain fenced lock does leave one, so the check below can see fences.
            let fenced = try await redlock.acquire("fenced-control", ttl: .seconds(5), fencing: true)
            try await redlock.release(fenced)
            try await withDirect(group) { masters in
                for master in masters {
                    let fences = try await master.send("ZRANGE", "redlock:fences", "0", "-1").array?.compactMap(\.string) ?? []
                    #expect(fences == ["redlock:lock:fenced-control"])
                    let markers = try await master.send("KEYS", "redlock:lock:idempotency:*").array?.count ?? 0
                    #expect(markers == 3, "the at-most-once markers stay for their retention")
                }
            }
        }
    }

    @Test func exclusiveGuardRejectsConcurrentRetriesAndAllowsLaterOnes() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, _ in
            let guardian = IdempotencyGuard(redlock: redlock, mode: .exclusive(ttl: .seconds(5)))
            let runs = Recorder<Int>()
            async let slow = guardian.run(key: "order-7") {
                runs.append(1)
                try await Task.sleep(for: .milliseconds(300))
                return 1
            }
            try await Task.sleep(for: .milliseconds(100))
            let concurrent = try await guardian.run(key: "order-7") {
                runs.append(2)
                return 2
            }
            if case .inProgress(let retryAfter) = concurrent {
                #expect(retryAfter.map { $0 > .zero } == true)
            } else {
                Issue.record("a concurrent retry must be rejected, got \(concurrent)")
            }
            if case .performed(let value) = try await slow { #expect(value == 1) } else { Issue.record("first call must run") }
            let later = try await guardian.run(key: "order-7") {
                runs.append(3)
                return 3
            }
            if case .performed(3) = later {} else { Issue.record("a retry after completion runs again, got \(later)") }
            #expect(runs.all == [1, 3])
        }
    }

    @Test func logsNeverContainLockValues() async throws {
        var captured = InMemoryLogHandler()
        captured.logLevel = .trace
        let logger = Logger(label: "capture") { [captured] _ in captured }
        try await withRedisServers(count: 3) { group throws in
            let redlock = Redlock(
                masters: group.addresses,
                configuration: .init(retry: .init(count: 1, delay: .milliseconds(5), jitter: .zero)),
                logger: logger
            )
            await redlock.connect()
            let secret = Array("value-that-must-not-leak-1234".utf8)
            let lock = try await redlock.acquire("logged", ttl: .seconds(5), value: secret)
            _ = try? await redlock.acquire("logged", ttl: .seconds(5))
            _ = try await redlock.extend(lock, ttl: .seconds(5))
            try await redlock.release(lock)
            await group[0].kill9()
            _ = try? await redlock.acquire("logged", ttl: .seconds(5), value: secret)
            await redlock.shutdown()
            let lines = captured.entries.map { "\($0.level) \($0.message) \($0.metadata)" }
            #expect(!lines.isEmpty, "the client logged something to check")
            #expect(lines.allSatisfy { !$0.contains("value-that-must-not-leak") })
        }
    }
}

@Suite("Redlock metrics", .serialized, .realRedisServers)
struct RedlockMetricsTests {
    @Test func attemptsOutcomesLatencyAndMasterErrorsAreRecorded() async throws {
        let metrics = TestMetrics()
        try await withRedisServers(count: 3) { group throws in
            let redlock = Redlock(masters: group.addresses, configuration: .init(retry: .never, metricsFactory: metrics))
            await redlock.connect()
            let lock = try await redlock.acquire("measured", ttl: .seconds(10))
            _ = try? await redlock.acquire("measured", ttl: .seconds(10))
            try await redlock.release(lock)
            await group[0].kill9()
            _ = try? await redlock.acquire("after-kill", ttl: .seconds(10))
            _ = try? await redlock.acquire("after-kill-2", ttl: .seconds(10))
            await redlock.shutdown()
        }
        #expect(try metrics.expectCounter("redlock_acquire_attempts_total").totalValue == 4)
        #expect(try metrics.expectCounter("redlock_outcomes_total", [("operation", "acquire"), ("outcome", "held")]).totalValue == 1)
        #expect(try metrics.expectCounter("redlock_outcomes_total", [("operation", "acquire"), ("outcome", "acquired")]).totalValue == 3)
        #expect(try metrics.expectCounter("redlock_outcomes_total", [("operation", "release"), ("outcome", "released")]).totalValue == 1)
        #expect(try metrics.expectTimer("redlock_acquire_duration_seconds").values.count == 4)
        #expect(metrics.counters.contains { $0.label == "redlock_master_errors_total" && $0.totalValue > 0 })
    }
}

@Suite("IdempotencyGuard under split votes", .serialized, .realRedisServers)
struct IdempotencySplitVoteTests {
    @Test func aSplitVoteIsNotMistakenForADuplicate() async throws {
        try await withRedlock(configuration: .init(retry: .never)) { redlock, group in
            try await withDirect(group) { masters in
                // Two other racers each hold a minority for a moment, so no one has a quorum.
                for index in 0..<2 { _ = try await masters[index].send("SET", "redlock:lock:idempotency:evt-split", "racer-a", "PX", "150") }
                _ = try await masters[2].send("SET", "redlock:lock:idempotency:evt-split", "racer-c", "PX", "150")
                let guardian = IdempotencyGuard(redlock: redlock, mode: .atMostOnce(retention: .seconds(60)))
                let outcome = try await guardian.run(key: "evt-split") { 7 }
                if case .performed(7) = outcome {
                } else {
                    Issue.record("nobody held the marker on a quorum: the operation must run, got \(outcome)")
                }
            }
        }
    }
}
