import RealServerGate
import RedisWire
import Redlock
import Synchronization
import Testing

@Suite("IdempotencyGuard keeps its at-most-once promise", .serialized, .realRedisServers)
struct IdempotencyGuardTests {
    @Test func aCallWhileTheFirstStillRunsIsInProgressNotAlreadyPerformed() async throws {
        try await withRedlock(masters: 3, configuration: .init(retry: .never)) { redlock, _ in
            let guardian = IdempotencyGuard(redlock: redlock, mode: .atMostOnce(retention: .seconds(60)))
            let started = AsyncStream<Void>.makeStream()
            let finish = AsyncStream<Void>.makeStream()
            let first = Task {
                try await guardian.run(key: "slow-event") {
                    started.continuation.yield()
                    for await _ in finish.stream { break }
                    return 1
                }
            }
            for await _ in started.stream { break }
            let during = try await guardian.run(key: "slow-event") { 2 }
            if case .inProgress = during {} else { Issue.record("the first call may still fail: expected inProgress, got \(during)") }
            finish.continuation.yield()
            if case .performed(1) = try await first.value {} else { Issue.record("the first call performed") }
            let after = try await guardian.run(key: "slow-event") { 3 }
            if case .alreadyPerformed = after {} else { Issue.record("expected alreadyPerformed once done, got \(after)") }
        }
    }

    @Test func anOperationsOwnLockHeldErrorIsRethrownNotReadAsTheGuards() async throws {
        try await withRedlock(masters: 3, configuration: .init(retry: .never)) { redlock, _ in
            let other = try await redlock.acquire("inner-resource", ttl: .seconds(10))
            let guardian = IdempotencyGuard(redlock: redlock, mode: .exclusive(ttl: .seconds(5)))
            let error = await #expect(throws: RedlockError.self) {
                _ = try await guardian.run(key: "outer") { try await redlock.acquire("inner-resource", ttl: .seconds(1)) }
            }
            #expect(error?.code == .lockHeld, "the operation's error reaches the caller")
            try await redlock.release(other)
        }
    }

    @Test func aFailureThatMayHaveTakenEffectKeepsTheMarkerAsOutcomeUnknown() async throws {
        struct TimedOut: Error {}
        struct Refused: Error {}
        try await withRedlock(masters: 3, configuration: .init(retry: .never)) { redlock, _ in
            let guardian = IdempotencyGuard(redlock: redlock, mode: .atMostOnce(retention: .seconds(60)))
            await #expect(throws: TimedOut.self) { _ = try await guardian.run(key: "credit-1") { throw TimedOut() } }
            let retried = try await guardian.run(key: "credit-1") { 1 }
            if case .outcomeUnknown = retried {} else { Issue.record("a timeout may have credited the account: got \(retried)") }

            await #expect(throws: Refused.self) { _ = try await guardian.run(key: "credit-2") { throw IdempotencyGuard.NotPerformed(Refused()) } }
            let again = try await guardian.run(key: "credit-2") { 2 }
            if case .performed(2) = again {} else { Issue.record("a failure that certainly had no effect frees the key: got \(again)") }
        }
    }
}
