import LocalRedis
import RealServerGate
import RedisWire
import Redlock
import Synchronization
import Testing

/// Readers share, a writer excludes everyone; a waiting writer turns new readers away;
/// readers expire one by one, so a dead one blocks writers only until its TTL.
@Suite("Read-write lock", .serialized, .realRedisServers)
struct ReadWriteLockTests {
    static var configuration: RedlockConfiguration { wakeUpsOnlyConfiguration }

    @Test func readersShareAndAWriterExcludesEveryone() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let lock = try ReadWriteLock("catalogue", on: redlock)
            let first = try await lock.acquireRead(ttl: .seconds(30))
            let second = try await lock.acquireRead(ttl: .seconds(30))
            #expect(first.isShared && second.isShared)
            #expect(first.fencingToken == nil)
            let refused = await #expect(throws: RedlockError.self) { try await lock.acquireWrite(ttl: .seconds(30)) }
            #expect(refused?.code == .lockHeld)
            #expect(refused?.retryAfter != nil, "says when the last reader's entry expires")
            #expect(try await redlock.release(first) == .released)
            await #expect(throws: RedlockError.self, "one reader still holds") { try await lock.acquireWrite(ttl: .seconds(30)) }
            #expect(try await redlock.release(second) == .released)

            let writer = try await lock.acquireWrite(ttl: .seconds(30))
            #expect(!writer.isShared)
            #expect(writer.fencingToken != nil, "a writer is fenced by default")
            let reader = await #expect(throws: RedlockError.self) { try await lock.acquireRead(ttl: .seconds(30)) }
            #expect(reader?.code == .lockHeld)
            await #expect(throws: RedlockError.self, "a second writer") { try await lock.acquireWrite(ttl: .seconds(30)) }
            await #expect(throws: RedlockError.self, "a mutex on the same name") { try await redlock.acquire("catalogue", ttl: .seconds(30)) }
            #expect(try await redlock.release(writer) == .released)
            let after = try await lock.acquireWrite(ttl: .seconds(30))
            #expect(after.fencingToken! > writer.fencingToken!, "writers' tokens increase")
            try await redlock.release(after)
        }
    }

    @Test func aWaitingWriterTurnsNewReadersAwayAndIsWokenByTheLastRelease() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let lock = try ReadWriteLock("prices", on: redlock)
            let reader = try await lock.acquireRead(ttl: .seconds(60))
            async let writer = lock.acquireWrite(ttl: .seconds(10), wait: .seconds(30))
            try await Task.sleep(for: .milliseconds(400))
            let late = await #expect(throws: RedlockError.self, "a writer waits: no new readers") {
                try await lock.acquireRead(ttl: .seconds(10))
            }
            #expect(late?.code == .lockHeld)
            let clock = ContinuousClock()
            let released = clock.now
            try await redlock.release(reader)
            let write = try await writer
            #expect(clock.now - released < .seconds(5), "woken by the reader's release, not the 60 s expiry or fallback")
            try await redlock.release(write)
            let next = try await lock.acquireRead(ttl: .seconds(10))
            try await redlock.release(next)
        }
    }

    @Test func aWriterThatGivesUpStopsTurningReadersAway() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let lock = try ReadWriteLock("gives-up", on: redlock)
            let reader = try await lock.acquireRead(ttl: .seconds(60))
            await #expect(throws: RedlockError.self) { try await lock.acquireWrite(ttl: .seconds(30), wait: .milliseconds(300)) }
            // The marker is taken down without waiting for a reply; give it a moment.
            var admitted: Lock?
            for _ in 0..<50 where admitted == nil {
                admitted = try? await lock.acquireRead(ttl: .seconds(10))
                if admitted == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            let second = try #require(admitted, "a new reader is admitted within 1 s, long before the marker's 31 s")
            try await redlock.release(second)
            try await redlock.release(reader)
        }
    }

    @Test func aWriterGrantedByAQuorumLeavesNoMarkerToTurnReadersAwayWhereItWasRefused() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, group in
            let lock = try ReadWriteLock("stray-marker", on: redlock)
            // A reader's entry on master 0 only: that master refuses the writer (and marks it
            // as waiting), the other four grant it.
            try await withDirect(group) { masters in
                _ = try await masters[0].send("ZADD", "redlock:readers:stray-marker", "99999999999999", "someone")
            }
            let writer = try await lock.acquireWrite(ttl: .seconds(30), wait: .seconds(5))
            try await redlock.release(writer)
            // Two other masters go: a reader now needs master 0, which must not turn it away.
            await group[1].kill9()
            await group[2].kill9()
            let reader = try await lock.acquireRead(ttl: .seconds(5), wait: .milliseconds(500))
            try await redlock.release(reader)
        }
    }

    @Test func aWriterThatGivesUpAfterItsFirstRefusalStopsTurningReadersAway() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let lock = try ReadWriteLock("brief-writer", on: redlock)
            let reader = try await lock.acquireRead(ttl: .seconds(60))
            // A wait this short ends at the first refusal: the writer never sleeps, but it did
            // mark itself as waiting (for 61 s) where it was refused.
            await #expect(throws: RedlockError.self) { try await lock.acquireWrite(ttl: .seconds(60), wait: .milliseconds(1)) }
            var admitted: Lock?
            for _ in 0..<50 where admitted == nil {
                admitted = try? await lock.acquireRead(ttl: .seconds(10))
                if admitted == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            let second = try #require(admitted, "a new reader is admitted within 1 s")
            try await redlock.release(second)
            try await redlock.release(reader)
        }
    }

    @Test func readersExpireOneByOne() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let lock = try ReadWriteLock("entries", on: redlock)
            let short = try await lock.acquireRead(ttl: .milliseconds(400))
            let long = try await lock.acquireRead(ttl: .seconds(30))
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await redlock.release(short) == .notHeld, "the short reader's entry expired on its own")
            await #expect(throws: RedlockError.self, "the long reader still holds") { try await lock.acquireWrite(ttl: .seconds(5)) }
            let extended = try await redlock.extend(long, ttl: .seconds(40))
            #expect(extended.isShared && extended.ttl == .seconds(40))
            #expect(try await redlock.release(extended) == .released)
            await #expect(throws: RedlockError.self, "an expired reader cannot extend") { try await redlock.extend(short, ttl: .seconds(5)) }
            let writer = try await lock.acquireWrite(ttl: .seconds(5))
            try await redlock.release(writer)
        }
    }

    @Test func aDeadReaderBlocksAWriterOnlyUntilItsTTLWithAMinorityDown() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, group in
            let lock = try ReadWriteLock("dead-reader", on: redlock)
            _ = try await lock.acquireRead(ttl: .milliseconds(600))  // never released: a dead reader
            await group[0].kill9()
            await group[1].kill9()
            let clock = ContinuousClock()
            let started = clock.now
            let writer = try await lock.acquireWrite(ttl: .seconds(5), wait: .seconds(10))
            #expect(clock.now - started < .seconds(3), "free at the dead reader's expiry")
            try await redlock.release(writer)
            let reader = try await lock.acquireRead(ttl: .seconds(5), wait: .seconds(5))
            try await redlock.release(reader)
        }
    }

    @Test func aDeadWriterBlocksOnlyUntilItsTTL() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let lock = try ReadWriteLock("dead-writer", on: redlock)
            _ = try await lock.acquireWrite(ttl: .milliseconds(600))  // never released
            let clock = ContinuousClock()
            let started = clock.now
            let reader = try await lock.acquireRead(ttl: .seconds(5), wait: .seconds(10))
            #expect(clock.now - started < .seconds(3))
            try await redlock.release(reader)
        }
    }

    @Test func withReadLockKeepsItsShareAlive() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let lock = try ReadWriteLock("kept", on: redlock)
            let refusedWhileReading = try await lock.withReadLock(ttl: .milliseconds(600)) { _ in
                try await Task.sleep(for: .milliseconds(1_500))
                return (try? await lock.acquireWrite(ttl: .seconds(5))) == nil
            }
            #expect(refusedWhileReading, "the share outlived its 600 ms TTL by extensions")
            let writer = try await lock.acquireWrite(ttl: .seconds(5))
            try await redlock.release(writer)
        }
    }

    @Test func readersAndWritersNeverOverlap() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let lock = try ReadWriteLock("mixed", on: redlock)
            let state = Inside()
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for task in 0..<10 {
                    tasks.addTask {
                        for round in 0..<4 {
                            if (task + round) % 4 == 0 {
                                try await lock.withWriteLock(ttl: .seconds(5), wait: .seconds(60)) { _ in
                                    let writers = state.writers.add(1, ordering: .sequentiallyConsistent).newValue
                                    if writers != 1 || state.readers.load(ordering: .sequentiallyConsistent) != 0 {
                                        state.overlaps.add(1, ordering: .relaxed)
                                    }
                                    try await Task.sleep(for: .milliseconds(5))
                                    state.writers.subtract(1, ordering: .sequentiallyConsistent)
                                    state.writes.add(1, ordering: .relaxed)
                                }
                            } else {
                                try await lock.withReadLock(ttl: .seconds(5), wait: .seconds(60)) { _ in
                                    let readers = state.readers.add(1, ordering: .sequentiallyConsistent).newValue
                                    _ = state.mostReaders.max(readers, ordering: .relaxed)
                                    if state.writers.load(ordering: .sequentiallyConsistent) != 0 { state.overlaps.add(1, ordering: .relaxed) }
                                    try await Task.sleep(for: .milliseconds(20))
                                    state.readers.subtract(1, ordering: .sequentiallyConsistent)
                                }
                            }
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            #expect(state.overlaps.load(ordering: .relaxed) == 0)
            #expect(state.writes.load(ordering: .relaxed) == 10)
            #expect(state.mostReaders.load(ordering: .relaxed) >= 2, "readers held side by side")
        }
    }

    /// Who is inside the section now, and what was seen.
    final class Inside: Sendable {
        let readers = Atomic<Int>(0)
        let writers = Atomic<Int>(0)
        let mostReaders = Atomic<Int>(0)
        let overlaps = Atomic<Int>(0)
        let writes = Atomic<Int>(0)
    }

    @Test func anEmptyNameIsRefused() async throws {
        let redlock = Redlock(masters: [.hostname("127.0.0.1", port: 1)])
        #expect(throws: RedlockError.self) { try ReadWriteLock("", on: redlock) }
        await redlock.shutdown()
    }
}
