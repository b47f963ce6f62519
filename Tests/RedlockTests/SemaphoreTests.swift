import LocalRedis
import RealServerGate
import RedisWire
import Redlock
import Synchronization
import Testing

/// A semaphore is N quorum-locked slots: never more than N holders, a released permit is
/// handed to a waiter, a dead holder's permit frees at its TTL, a minority down changes nothing.
@Suite("Semaphore", .serialized, .realRedisServers)
struct SemaphoreTests {
    static var configuration: RedlockConfiguration { wakeUpsOnlyConfiguration }

    @Test func nPermitsAndNoMore() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let semaphore = try Semaphore("builds", permits: 3, on: redlock)
            var permits: [Lock] = []
            for _ in 0..<3 { permits.append(try await semaphore.acquire(ttl: .seconds(30))) }
            #expect(Set(permits.map(\.resource)) == ["builds#0", "builds#1", "builds#2"])
            let fourth = await #expect(throws: RedlockError.self) { try await semaphore.acquire(ttl: .seconds(30)) }
            #expect(fourth?.code == .lockHeld)
            #expect(fourth?.retryAfter != nil, "says when the earliest permit may free")
            for permit in permits { try await redlock.release(permit) }
        }
    }

    @Test func aReleasedPermitIsHandedToAWaiterAtOnce() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let semaphore = try Semaphore("handed", permits: 2, on: redlock)
            let first = try await semaphore.acquire(ttl: .seconds(60))
            let second = try await semaphore.acquire(ttl: .seconds(60))
            async let third = semaphore.acquire(ttl: .seconds(10), wait: .seconds(30))
            try await Task.sleep(for: .milliseconds(400))
            let clock = ContinuousClock()
            let released = clock.now
            try await redlock.release(second)
            let permit = try await third
            #expect(clock.now - released < .seconds(5), "woken by the release, not the 60 s expiry or fallback")
            #expect(permit.resource == second.resource)
            try await redlock.release(permit)
            try await redlock.release(first)
        }
    }

    @Test func aDeadHoldersPermitFreesAtItsTTLAndAMinorityDownChangesNothing() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, group in
            let semaphore = try Semaphore("workers", permits: 1, on: redlock)
            _ = try await semaphore.acquire(ttl: .milliseconds(600))  // never released: a dead holder
            await group[0].kill9()
            await group[1].kill9()
            let clock = ContinuousClock()
            let started = clock.now
            let permit = try await semaphore.acquire(ttl: .seconds(5), wait: .seconds(10))
            #expect(clock.now - started < .seconds(3), "free at the dead holder's expiry")
            try await redlock.release(permit)
        }
    }

    @Test func manyContendersNeverExceedThePermits() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let semaphore = try Semaphore("pool", permits: 3, on: redlock)
            let counts = Counts()
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for _ in 0..<12 {
                    tasks.addTask {
                        for _ in 0..<4 {
                            try await semaphore.withPermit(ttl: .seconds(5), wait: .seconds(60)) { _ in
                                let now = counts.inside.add(1, ordering: .sequentiallyConsistent).newValue
                                _ = counts.most.max(now, ordering: .sequentiallyConsistent)
                                try await Task.sleep(for: .milliseconds(10))
                                counts.inside.subtract(1, ordering: .sequentiallyConsistent)
                                counts.sections.add(1, ordering: .relaxed)
                            }
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            #expect(counts.sections.load(ordering: .relaxed) == 48)
            #expect(counts.most.load(ordering: .sequentiallyConsistent) <= 3)
            #expect(counts.most.load(ordering: .sequentiallyConsistent) >= 2, "permits were used side by side")
        }
    }

    /// Holders inside the section now, the most at once, and sections run.
    final class Counts: Sendable {
        let inside = Atomic<Int>(0)
        let most = Atomic<Int>(0)
        let sections = Atomic<Int>(0)
    }

    @Test func badArgumentsAreRefused() async throws {
        let redlock = Redlock(masters: [.hostname("127.0.0.1", port: 1)])
        #expect(throws: RedlockError.self) { try Semaphore("", permits: 2, on: redlock) }
        #expect(throws: RedlockError.self) { try Semaphore("s", permits: 0, on: redlock) }
        #expect(throws: RedlockError.self) { try Semaphore("s", permits: Semaphore.maximumPermits + 1, on: redlock) }
        await redlock.shutdown()
    }
}
