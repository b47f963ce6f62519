import NIOCore
import RedisWire

/// One reply per master of a fan-out; nil where the master has not answered yet.
typealias Replies = [Result<RESPValue, RedisWireError>?]

/// N independent masters whose connections all live on one event loop, so a lock operation
/// fans out and in on that loop: one hop in, one hop out, whatever N is.
struct MasterGroup: Sendable {
    let connections: [RedisConnection]
    let eventLoop: any EventLoop

    var count: Int { connections.count }
    var quorum: Int { connections.count / 2 + 1 }

    /// Sends one command to every master at once and completes when `decided` says the
    /// replies so far settle the question, or when every master has answered or failed.
    /// Must be called on ``eventLoop``.
    func fanOut(
        _ command: (RedisConnection) -> EventLoopFuture<RESPValue>,
        until decided: (@Sendable (Replies) -> Bool)? = nil
    ) -> EventLoopFuture<Replies> {
        eventLoop.preconditionInEventLoop()
        let collector = FanIn(count: connections.count, promise: eventLoop.makePromise(), decided: decided)
        for (index, connection) in connections.enumerated() {
            command(connection).whenComplete { result in
                collector.record(index, result.mapError { RedisConnection.wireErrorPublic($0) })
            }
        }
        return collector.promise.futureResult
    }

    /// Like ``fanOut(_:until:)`` over a subset of the masters; replies for the others stay nil.
    func fanOut(to indices: [Int], _ command: (RedisConnection) -> EventLoopFuture<RESPValue>) -> EventLoopFuture<Replies> {
        eventLoop.preconditionInEventLoop()
        let collector = FanIn(count: connections.count, promise: eventLoop.makePromise(), decided: nil, expected: indices.count)
        if indices.isEmpty { collector.promise.succeed(collector.replies) }
        for index in indices {
            command(connections[index]).whenComplete { result in
                collector.record(index, result.mapError { RedisConnection.wireErrorPublic($0) })
            }
        }
        return collector.promise.futureResult
    }
}

/// Collects the replies of one fan-out. Confined to the group's event loop.
private final class FanIn: @unchecked Sendable {
    // @unchecked: created and completed on the event loop; every callback runs there.
    var replies: Replies
    var outstanding: Int
    var done = false
    let promise: EventLoopPromise<Replies>
    let decided: (@Sendable (Replies) -> Bool)?

    init(count: Int, promise: EventLoopPromise<Replies>, decided: (@Sendable (Replies) -> Bool)?, expected: Int? = nil) {
        self.replies = Replies(repeating: nil, count: count)
        self.outstanding = expected ?? count
        self.promise = promise
        self.decided = decided
    }

    func record(_ index: Int, _ result: Result<RESPValue, RedisWireError>) {
        guard !done else { return }
        replies[index] = result
        outstanding -= 1
        if outstanding == 0 || decided?(replies) == true {
            done = true
            promise.succeed(replies)
        }
    }
}

extension RedisConnection {
    static func wireErrorPublic(_ error: any Error) -> RedisWireError {
        if let wire = error as? RedisWireError { return wire }
        return RedisWireError(.connectionClosed, "\(error)")
    }
}
