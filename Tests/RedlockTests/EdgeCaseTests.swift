import LocalRedis
import MetricsTestKit
import NIOCore
import RealServerGate
import RedisWire
import Redlock
import Synchronization
import Testing

@Suite("Redlock's edge cases, against real masters", .serialized, .realRedisServers)
struct EdgeCaseTests {
    @Test func autoExtensionOfATTLNearTheInstanceTimeoutDoesNotSpin() async throws {
        let metrics = TestMetrics()
        let configuration = RedlockConfiguration(instanceTimeout: .milliseconds(50), retry: .never, metricsFactory: metrics)
        try await withRedlock(masters: 3, configuration: configuration) { redlock, _ in
            _ = try? await redlock.withLock("short", ttl: .milliseconds(90)) { _ in try await Task.sleep(for: .milliseconds(300)) }
        }
        let extensions = metrics.counters.filter { $0.label == "redlock_outcomes_total" }.map(\.totalValue).reduce(0, +)
        // A 90 ms TTL is extended every 30 ms at most: about 10 in 300 ms, not back to back.
        #expect(extensions < 40, "\(extensions) outcomes recorded in 300 ms")
    }

    @Test func aPausedMinorityCostsExtendAndInspectNotTheInstanceTimeout() async throws {
        let configuration = RedlockConfiguration(instanceTimeout: .seconds(2), retry: .never)
        try await withRedlock(configuration: configuration) { redlock, group in
            let lock = try await redlock.acquire("early", ttl: .seconds(20))
            group[3].pause()
            group[4].pause()
            defer {
                group[3].resume()
                group[4].resume()
            }
            let clock = ContinuousClock()
            var start = clock.now
            let extended = try await redlock.extend(lock, ttl: .seconds(20))
            #expect(clock.now - start < .seconds(1), "extend waited \(clock.now - start) for the paused minority")
            start = clock.now
            let state = try await redlock.inspect("early")
            #expect(clock.now - start < .seconds(1), "inspect waited \(clock.now - start) for the paused minority")
            #expect(state.isHeld)
            #expect(state.fencingToken == lock.fencingToken)
            #expect(extended.validity > .seconds(19))
        }
    }

    @Test func theLastAttemptIsClampedToTheWaitDeadlineRatherThanSkipped() async throws {
        try await withRedlock(masters: 3, configuration: .init(retry: .never)) { redlock, _ in
            _ = try await redlock.acquire("clamped", ttl: .milliseconds(300))
            // Retries every 2 s would skip the whole 800 ms wait after the first refusal; the
            // last attempt is made at the deadline instead, after the holder's key expired.
            let lock = try await redlock.acquire(
                "clamped",
                ttl: .seconds(5),
                wait: .milliseconds(800),
                retry: .init(count: 0, delay: .seconds(2), jitter: .zero)
            )
            #expect(lock.validity > .seconds(4))
        }
    }

    @Test func aReleaseAfterTheClientSideValidityEndedIsReportedAsSuch() async throws {
        // A large drift factor opens a window in which the keys outlive the validity.
        let configuration = RedlockConfiguration(driftFactor: 0.5, retry: .never)
        try await withRedlock(masters: 3, configuration: configuration) { redlock, _ in
            let lock = try await redlock.acquire("late", ttl: .seconds(1))
            try await Task.sleep(until: lock.validUntil + .milliseconds(100), clock: .continuous)
            #expect(try await redlock.release(lock) == .releasedAfterValidity)
            #expect(try await redlock.inspect("late").isHeld == false, "the keys were still deleted")
        }
    }

    @Test func shutdownDrainsOperationsInFlightAndLaterCallsFailAsShutdown() async throws {
        try await withRedisServers(count: 3) { group throws in
            let redlock = Redlock(masters: group.addresses, configuration: .init(instanceTimeout: .milliseconds(500), retry: .never))
            await redlock.connect()
            let codes = Recorder<String>()
            await withTaskGroup(of: Void.self) { tasks in
                for index in 0..<50 {
                    tasks.addTask {
                        do {
                            let lock = try await redlock.acquire("drain-\(index)", ttl: .seconds(10))
                            codes.append("acquired")
                            _ = lock
                        } catch let error as RedlockError {
                            codes.append("\(error.code)")
                        } catch {
                            codes.append("\(error)")
                        }
                    }
                }
                tasks.addTask { await redlock.shutdown() }
            }
            let seen = codes.all
            #expect(seen.count == 50)
            #expect(seen.allSatisfy { $0 == "acquired" || $0 == "shutdown" }, "in flight either finished or was refused: \(Set(seen))")
            let error = await #expect(throws: RedlockError.self) { try await redlock.acquire("after", ttl: .seconds(1)) }
            #expect(error?.code == .shutdown)
        }
    }

    @Test func tooLongATTLOrWaitIsAnInvalidArgument() async throws {
        try await withRedlock(masters: 3, configuration: .init(retry: .never)) { redlock, _ in
            let ttl = await #expect(throws: RedlockError.self) { try await redlock.acquire("huge", ttl: .seconds(Int64.max)) }
            #expect(ttl?.code == .invalidArgument)
            let wait = await #expect(throws: RedlockError.self) { try await redlock.acquire("huge", ttl: .seconds(1), wait: .seconds(Int64.max)) }
            #expect(wait?.code == .invalidArgument)
            let lock = try await redlock.acquire("huge", ttl: .seconds(1))
            let extend = await #expect(throws: RedlockError.self) { try await redlock.extend(lock, ttl: .seconds(Int64.max)) }
            #expect(extend?.code == .invalidArgument)
        }
    }

    @Test func aWithLockBodyRunsOffTheEventLoopEvenWhenTheCallerPrefersIt() async throws {
        try await withRedlock(masters: 3, configuration: .init(retry: .never)) { redlock, _ in
            let onLoop = try await withTaskExecutorPreference(redlock.taskExecutor) {
                try await redlock.withLock("executor", ttl: .seconds(5)) { _ in redlock.taskExecutor.eventLoop.inEventLoop }
            }
            #expect(onLoop == false, "a blocking body would stall every master connection")
        }
    }
}
