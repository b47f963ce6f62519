import NIOCore
import NIOPosix
import RedisWire
import Synchronization
import Testing

@Suite struct EventLoopTaskExecutorTests {
    @Test func tasksPreferringTheExecutorRunOnItsLoopAndAllFinishWhileTheyKeepResumingEachOther() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executor = EventLoopTaskExecutor(group.next())
        let counts = Counts()
        // 100 tasks yielding 50 times each: every resumption is enqueued from the loop itself,
        // so the jobs go through the executor's batches, and each batch re-enqueues the next.
        await withTaskGroup(of: Void.self) { tasks in
            for _ in 0..<100 {
                tasks.addTask(executorPreference: executor) {
                    for _ in 0..<50 {
                        if !executor.eventLoop.inEventLoop { counts.offLoop.add(1, ordering: .relaxed) }
                        counts.steps.add(1, ordering: .relaxed)
                        await Task.yield()
                    }
                }
            }
        }
        #expect(counts.steps.load(ordering: .relaxed) == 5_000)
        #expect(counts.offLoop.load(ordering: .relaxed) == 0)
        try await group.shutdownGracefully()
    }

    @Test func socketWorkStillRunsBetweenBatchesOfJobsThatKeepReenqueueing() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let executor = EventLoopTaskExecutor(loop)
        let counts = Counts()
        // A task that never stops yielding must not starve other loop work: a drain runs only
        // the jobs queued before it started.
        let spinner = Task(executorPreference: executor) {
            var spins = 0
            while !counts.stop.load(ordering: .relaxed), spins < 1_000_000 {
                spins += 1
                await Task.yield()
            }
            return spins
        }
        try await Task.sleep(for: .milliseconds(20))
        let ranOnLoop = try await loop.submit { true }.get()
        counts.stop.store(true, ordering: .relaxed)
        let spins = await spinner.value
        #expect(ranOnLoop)
        #expect(spins < 1_000_000)
        try await group.shutdownGracefully()
    }
}

/// Shared between the test and its tasks.
private final class Counts: Sendable {
    let offLoop = Atomic<Int>(0)
    let steps = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
}
