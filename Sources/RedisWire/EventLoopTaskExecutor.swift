import NIOCore

/// A `TaskExecutor` that runs jobs on one NIO event loop.
///
/// Awaiting a connection from a task on the global pool costs two thread hops per call (in
/// to the event loop, out again). A task that prefers this executor
/// (`withTaskExecutorPreference(connection.taskExecutor) { ... }`) runs on the connection's
/// own loop, so its commands are written and its replies resumed without waking another
/// thread. Keep such bodies short and non-blocking: they share the loop with the socket I/O.
///
/// Jobs enqueued from the loop itself (a reply resuming its caller) are batched: all those
/// enqueued during one pass run from a single loop task, in the order they were enqueued.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `queued`, `running` and `drainScheduled` are read and written only on
    // `eventLoop` (enqueue checks `inEventLoop` before touching them).

    /// The loop the jobs run on.
    public let eventLoop: any EventLoop
    @exclusivity(unchecked) private var queued: [UnownedJob] = []
    @exclusivity(unchecked) private var running: [UnownedJob] = []
    @exclusivity(unchecked) private var drainScheduled = false

    /// Wraps `eventLoop`.
    public init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    /// Runs `job` on the event loop.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        guard eventLoop.inEventLoop else {
            eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
            return
        }
        // One loop task (a closure and a lock in NIO) for every job resumed in this pass,
        // rather than one each: 64 replies read in one tick resume 64 callers.
        queued.append(job)
        if !drainScheduled {
            drainScheduled = true
            eventLoop.execute { self.drain() }
        }
    }

    /// Runs the jobs queued so far; jobs they enqueue wait for the next drain, so socket I/O
    /// still gets its turn between batches.
    private func drain() {
        drainScheduled = false
        swap(&queued, &running)
        let executor = asUnownedTaskExecutor()
        var index = 0
        while index < running.count {
            running[index].runSynchronously(on: executor)
            index += 1
        }
        running.removeAll(keepingCapacity: true)
    }
}
