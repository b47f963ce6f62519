import Logging
import NIOCore

/// The NIO side of one connection: writes encoded commands, feeds replies through hiredis
/// and completes callers strictly in FIFO order, and enforces per-command deadlines.
///
/// Lives on its channel's event loop and is touched only there.
final class RedisChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: every method runs on the channel's event loop (NIO calls the handler there,
    // and RedisConnection calls `send` only from that loop), so the state is never shared.
    // For the same reason the hot stored vars skip Swift's dynamic exclusivity checks
    // (`@exclusivity(unchecked)`): no two accesses can overlap, and the checks were about 5%
    // of the client's CPU per pipelined command.
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Completion of one command. A plain callback (not a promise) keeps the per-command
    /// cost to one closure; the async API wraps a promise in it.
    typealias Completion = (Result<RESPValue, RedisWireError>) -> Void

    private struct Pending {
        let sink: ReplySink
        let deadline: NIODeadline
        /// Set for an EVALSHA: re-sent as EVAL when the server answers NOSCRIPT.
        let script: RedisScriptCall?
    }

    @exclusivity(unchecked) private var pending = CircularBuffer<Pending>(initialCapacity: 32)
    private let reader = HiredisReader()
    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    private let logger: Logger
    @exclusivity(unchecked) private var flushScheduled = false
    /// The only command queued during this tick, written as it is: a fan-out's one encoded
    /// command goes to every server without a copy or a buffer of ours.
    @exclusivity(unchecked) private var single: ByteBuffer?
    /// Commands queued during this tick once there is more than one, sent as one write and one
    /// flush at its end (or as soon as `eagerFlushCommands` have queued).
    @exclusivity(unchecked) private var outbound: ByteBuffer?
    /// Size of the last batch, to size the next one.
    @exclusivity(unchecked) private var lastBatchBytes = 256
    /// Commands queued and not yet written.
    @exclusivity(unchecked) private var unflushed = 0
    /// Past this many commands in one tick, flush at once instead of at the tick's end.
    static let eagerFlushCommands = 32
    @exclusivity(unchecked) private var timer: Scheduled<Void>?
    @exclusivity(unchecked) private var timerDeadline: NIODeadline = .distantFuture
    @exclusivity(unchecked) private var failure: RedisWireError?

    /// Whether this connection has been dropped (timeout, protocol error, close) and must not
    /// take new commands, even before its channel has finished closing.
    var isDropped: Bool { failure != nil || context == nil }

    init(logger: Logger = Logger(label: "redis-wire")) {
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(RedisWireError(.connectionClosed, "connection closed with the command in flight"))
        self.context = nil
    }

    /// Queues one encoded command; everything queued during this event-loop tick goes out as
    /// one write and one flush at its end, so concurrent callers share syscalls. Past
    /// ``eagerFlushCommands`` queued commands the batch goes out at once, so the server works
    /// on it while later callers queue theirs.
    func send(_ encoded: ByteBuffer, deadline: NIODeadline, completion: @escaping Completion) {
        send(encoded, deadline: deadline, sink: .closure(completion), script: nil)
    }

    /// Queues one encoded command whose reply goes to `sink`; `script` makes a NOSCRIPT reply
    /// re-send the command as EVAL instead of completing.
    func send(_ encoded: ByteBuffer, deadline: NIODeadline, sink: ReplySink, script: RedisScriptCall?) {
        guard let context, failure == nil else {
            sink.deliver(.failure(failure ?? RedisWireError(.connectionClosed, "connection is closed")))
            return
        }
        if unflushed == 0 && outbound == nil {
            single = encoded
        } else {
            openBatch(context: context)
            var encoded = encoded
            outbound!.writeBuffer(&encoded)
        }
        queued(Pending(sink: sink, deadline: deadline, script: script), context: context)
    }

    /// Encodes `arguments` straight into this tick's batch and queues the command; an argument
    /// list hiredis cannot encode fails `sink` with ``RedisWireError/Code/invalidArgument``.
    func send(encoding arguments: [[UInt8]], deadline: NIODeadline, sink: ReplySink) {
        guard let context, failure == nil else {
            sink.deliver(.failure(failure ?? RedisWireError(.connectionClosed, "connection is closed")))
            return
        }
        openBatch(context: context)
        do throws(RedisWireError) {
            try HiredisEncoder.encode(arguments, into: &outbound!)
        } catch {
            sink.deliver(.failure(error))
            return
        }
        queued(Pending(sink: sink, deadline: deadline, script: nil), context: context)
    }

    /// Makes sure this tick's batch buffer exists, moving a lone queued command into it.
    private func openBatch(context: ChannelHandlerContext) {
        guard outbound == nil else { return }
        var batch = context.channel.allocator.buffer(capacity: lastBatchBytes)
        if var first = single {
            batch.writeBuffer(&first)
            single = nil
        }
        outbound = batch
    }

    /// Counts a command whose bytes are queued, and flushes now or at the tick's end.
    private func queued(_ entry: Pending, context: ChannelHandlerContext) {
        pending.append(entry)
        unflushed += 1
        if unflushed >= Self.eagerFlushCommands {
            // Many callers in one tick: send what we have now so the server starts on it while
            // we queue the rest, rather than ping-pong one big batch each way.
            flushOutbound(context: context)
        } else {
            scheduleFlush(context: context)
        }
        if entry.deadline < timerDeadline { armTimer(at: entry.deadline) }
    }

    /// Flushes at the end of this tick, after the callers woken in it have queued their commands.
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.execute { [self] in
            flushScheduled = false
            guard let context = self.context else { return }
            self.flushOutbound(context: context)
        }
    }

    /// Writes and flushes everything queued so far as one write.
    private func flushOutbound(context: ChannelHandlerContext) {
        guard unflushed > 0 else { return }
        unflushed = 0
        if let command = single {
            single = nil
            context.writeAndFlush(wrapOutboundOut(command), promise: nil)
        } else if let batch = outbound {
            outbound = nil
            lastBatchBytes = max(batch.readableBytes, 256)
            context.writeAndFlush(wrapOutboundOut(batch), promise: nil)
        }
    }

    /// Promise-based form of ``send(_:deadline:completion:)``.
    func send(_ encoded: ByteBuffer, deadline: NIODeadline, promise: EventLoopPromise<RESPValue>) {
        send(encoded, deadline: deadline) { result in
            switch result {
            case .success(let value): promise.succeed(value)
            case .failure(let error): promise.fail(error)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try reader.feed(buffer)
            while let reply = try reader.next() {
                guard let head = pending.popFirst() else {
                    throw RedisWireError(.protocolError, "reply received with no command in flight")
                }
                if let script = head.script, case .failure(let error) = reply, error.serverErrorPrefix == "NOSCRIPT" {
                    sendAsEval(script, deadline: head.deadline, sink: head.sink)
                } else {
                    head.sink.deliver(reply)
                }
            }
        } catch {
            drop(error, context: context)
        }
    }

    /// The server does not have the script cached (restarted, or `SCRIPT FLUSH`): send its
    /// source, which also caches it for the next EVALSHA.
    private func sendAsEval(_ script: RedisScriptCall, deadline: NIODeadline, sink: ReplySink) {
        logger.debug("script not cached on server, sending EVAL", metadata: ["redis.script": "\(script.script.sha1)"])
        do throws(RedisWireError) {
            let eval = try RedisCommand.eval(script.script, keys: script.keys, arguments: script.arguments)
            send(eval.encoded, deadline: deadline, sink: sink, script: nil)
        } catch {
            sink.deliver(.failure(error))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if failure == nil { failure = RedisWireError(.connectionClosed, "connection closed") }
        failAll(failure ?? RedisWireError(.connectionClosed, "connection closed with the command in flight"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        drop(RedisWireError(.connectionClosed, "connection error: \(error)", underlying: nil), context: context)
    }

    private func armTimer(at deadline: NIODeadline) {
        guard let context else { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.scheduleTask(deadline: deadline) { [self] in
            self.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        timerDeadline = .distantFuture
        guard let context, !pending.isEmpty else { return }
        let now = NIODeadline.now()
        var earliest = NIODeadline.distantFuture
        var expired = false
        for entry in pending {
            if entry.deadline <= now { expired = true; break }
            earliest = min(earliest, entry.deadline)
        }
        if expired {
            // A late reply would be taken as the answer to the next command: fail the
            // expired commands, then drop the connection (which fails the rest).
            let timeout = RedisWireError(.timeout, "command deadline passed before the reply arrived")
            var survivors = CircularBuffer<Pending>()
            while let entry = pending.popFirst() {
                if entry.deadline <= now { entry.sink.deliver(.failure(timeout)) } else { survivors.append(entry) }
            }
            pending = survivors
            drop(RedisWireError(.connectionClosed, "connection dropped after another command timed out"), context: context)
        } else {
            armTimer(at: earliest)
        }
    }

    private func drop(_ error: any Error, context: ChannelHandlerContext) {
        let wireError = error as? RedisWireError ?? RedisWireError(.protocolError, "\(error)")
        if failure == nil { failure = wireError }
        failAll(wireError)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisWireError) {
        timer?.cancel()
        timer = nil
        timerDeadline = .distantFuture
        while let entry = pending.popFirst() {
            entry.sink.deliver(.failure(error))
        }
    }
}
