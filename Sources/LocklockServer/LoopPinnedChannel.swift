import HummingbirdCore
import Logging
import NIOCore
import RedisWire

/// Serves each connection's requests on the connection's own event loop instead of the task
/// pool. Hummingbird reads a request on the connection's loop and hands it to a task on the
/// pool, whose response goes back to the loop to be written: two thread hops per request,
/// and two more for every lock operation whose masters live on another loop. Pinned, a
/// request whose connection shares the masters' loop makes no hop at all, and the others
/// make one each way. Handlers must not block: they share the loop with its sockets.
struct LoopPinnedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let executors: LoopExecutors

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(executors.executor(for: value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}

/// A task executor for every event loop of a group, made once.
final class LoopExecutors: Sendable {
    private let executors: [ObjectIdentifier: EventLoopTaskExecutor]

    /// Executors for every loop of `group`.
    init(_ group: any EventLoopGroup) {
        var executors: [ObjectIdentifier: EventLoopTaskExecutor] = [:]
        for loop in group.makeIterator() { executors[ObjectIdentifier(loop)] = EventLoopTaskExecutor(loop) }
        self.executors = executors
    }

    /// The executor of `loop`; nil (the task pool) for a loop outside the group.
    func executor(for loop: any EventLoop) -> EventLoopTaskExecutor? {
        executors[ObjectIdentifier(loop)]
    }
}
