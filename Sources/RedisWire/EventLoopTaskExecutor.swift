import NIOCore

/// A `TaskExecutor` that runs jobs on one NIO event loop.
///
/// Awaiting a connection from a task on the global pool costs two thread hops per call (in
/// to the event loop, out again). A task that prefers this executor
/// (`withTaskExecutorPreference(connection.taskExecutor) { ... }`) runs on the connection's
/// own loop, so its commands are written and its replies resumed without waking another
/// thread. Keep such bodies short and non-blocking: they share the loop with the socket I/O.
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    /// The loop the jobs run on.
    public let eventLoop: any EventLoop

    /// Wraps `eventLoop`.
    public init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

extension RedisConnection {
    /// An executor that runs tasks on this connection's event loop (see ``EventLoopTaskExecutor``).
    public var taskExecutor: EventLoopTaskExecutor { EventLoopTaskExecutor(eventLoop) }
}
