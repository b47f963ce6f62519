import Logging
import NIOCore

/// The NIO side of one connection: writes encoded commands, feeds replies through hiredis
/// and completes callers strictly in FIFO order, and enforces per-command deadlines.
///
/// A command past its deadline fails its caller at once but keeps its place in the FIFO: its
/// late reply is read and dropped, so a slow server costs timeouts, not reconnects. Only a
/// server that sends no reply at all for the health timeout while commands are outstanding
/// gets the connection dropped.
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

    /// Completion of one command, as a plain callback. Awaiting callers are resumed through
    /// their continuation instead (``ReplySink/continuation(_:)``); only the connection's
    /// handshake goes through a promise (``send(_:deadline:promise:)``).
    typealias Completion = (Result<RESPValue, RedisWireError>) -> Void

    private struct Pending {
        var sink: ReplySink
        let deadline: NIODeadline
        /// Set for an EVALSHA of a script the server had cached: a NOSCRIPT reply means the
        /// cache was flushed under this connection.
        let script: RedisScriptCall?
        /// Set for an EVAL: the script's id, cached on the server once it succeeds.
        var caches: Int? = nil
        /// Replies to drop before the one the caller gets: a transaction's `MULTI` and
        /// `QUEUED` replies; 0 for one command.
        var dropFirst = 0
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
    /// Replies read so far, and how many had been read when the health check last saw
    /// progress, and when: no progress for `healthTimeout` with commands outstanding drops the
    /// connection.
    @exclusivity(unchecked) private var repliesRead = 0
    /// Which scripts (by ``RedisScript/id``) the server is known to have cached: preloaded on
    /// connect, or run once with `EVAL` on this connection.
    @exclusivity(unchecked) private var cachedScripts: [Bool] = []
    @exclusivity(unchecked) private var progressMark: (replies: Int, at: NIODeadline)?
    private let healthTimeout: TimeAmount
    private let maximumInFlight: Int
    /// For a subscriber connection: receives each published message (channel, payload),
    /// which takes no place in the FIFO.
    private let onMessage: (([UInt8], [UInt8]) -> Void)?
    /// Set when the connection was dropped because the server went silent: the owner then
    /// re-dials with backoff rather than at once.
    private(set) var droppedAsSilent = false

    /// Whether this connection has been dropped (timeout, protocol error, close) and must not
    /// take new commands, even before its channel has finished closing.
    var isDropped: Bool { failure != nil || context == nil }

    init(
        logger: Logger = Logger(label: "redis-wire"),
        healthTimeout: Duration = .seconds(2),
        maximumInFlight: Int = 10_000,
        onMessage: (([UInt8], [UInt8]) -> Void)? = nil
    ) {
        self.logger = logger
        self.onMessage = onMessage
        self.healthTimeout = .nanoseconds(healthTimeout.nanoseconds)
        self.maximumInFlight = max(maximumInFlight, 1)
    }

    /// Fails `sink` at once when the connection is gone, or too many commands are in flight,
    /// or the socket's send buffer is full; returns whether it did.
    private func refuses(_ sink: ReplySink, context: ChannelHandlerContext?) -> Bool {
        guard let context, failure == nil else {
            sink.deliver(.failure(failure ?? RedisWireError(.connectionClosed, "connection is closed")))
            return true
        }
        guard pending.count < maximumInFlight, context.channel.isWritable else {
            sink.deliver(.failure(RedisWireError(.unavailable, "too many commands in flight on this connection")))
            return true
        }
        return false
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

    /// Queues one encoded command whose reply goes to `sink`. With `script`, `encoded` is its
    /// EVALSHA, sent only when the server is known to have the script cached; otherwise its
    /// EVAL goes instead. A fallback after a NOSCRIPT reply would run behind commands sent
    /// after it (a release overtaking the acquisition it follows), so there is none.
    func send(_ encoded: ByteBuffer, deadline: NIODeadline, sink: ReplySink, script: RedisScriptCall?, replies: Int = 1) {
        guard !refuses(sink, context: context), let context else { return }
        if let script, !isCached(script.script) {
            let eval: RedisCommand
            do throws(RedisWireError) {
                eval = try RedisCommand.eval(script.script, keys: script.keys, arguments: script.arguments)
            } catch {
                sink.deliver(.failure(error))
                return
            }
            openBatch(context: context)
            var encoded = eval.encoded
            outbound!.writeBuffer(&encoded)
            queued(Pending(sink: sink, deadline: deadline, script: nil, caches: script.script.id), context: context)
            return
        }
        if unflushed == 0 && outbound == nil {
            single = encoded
        } else {
            openBatch(context: context)
            var encoded = encoded
            outbound!.writeBuffer(&encoded)
        }
        queued(Pending(sink: sink, deadline: deadline, script: script, dropFirst: replies - 1), context: context)
    }

    /// Encodes `arguments` straight into this tick's batch and queues the command; an argument
    /// list hiredis cannot encode fails `sink` with ``RedisWireError/Code/invalidArgument``.
    func send(encoding arguments: [[UInt8]], deadline: NIODeadline, sink: ReplySink) {
        guard !refuses(sink, context: context), let context else { return }
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
            while true {
                if onMessage == nil, !pending.isEmpty, pending[pending.startIndex].dropFirst > 0 {
                    // A transaction's `MULTI` and `QUEUED` replies: read past, never decoded.
                    guard try reader.skip() else { break }
                    repliesRead &+= 1
                    pending[pending.startIndex].dropFirst -= 1
                    continue
                }
                guard let reply = try reader.next() else { break }
                if let onMessage, let message = Self.publishedMessage(reply) {
                    onMessage(message.channel, message.payload)
                    continue
                }
                guard !pending.isEmpty else {
                    throw RedisWireError(.protocolError, "reply received with no command in flight")
                }
                repliesRead &+= 1
                if pending[pending.startIndex].dropFirst > 0 {
                    pending[pending.startIndex].dropFirst -= 1
                    continue
                }
                let head = pending.removeFirst()
                if let id = head.caches, case .success = reply { markCached(id) }
                if head.script != nil, case .failure(let error) = reply, error.serverErrorPrefix == "NOSCRIPT" {
                    // The cache was flushed under us, and commands sent after this one may
                    // already have run: none may run ahead of its retry, so start over on a new
                    // connection (which loads the scripts again).
                    cachedScripts = []
                    let flushed = RedisWireError(.connectionClosed, "the server's script cache was flushed under the connection; reconnecting")
                    head.sink.deliver(.failure(flushed))
                    throw flushed
                }
                if case .abandoned = head.sink { continue }
                head.sink.deliver(reply)
            }
        } catch {
            drop(error, context: context)
        }
    }

    /// A `message` push of a subscribed connection (RESP2: the array `message`, channel,
    /// payload); nil for any other reply.
    static func publishedMessage(_ reply: Result<RESPValue, RedisWireError>) -> (channel: [UInt8], payload: [UInt8])? {
        guard case .success(.array(let parts)) = reply, parts.count == 3, parts[0].bytes == Self.messageKind,
            let channel = parts[1].bytes, let payload = parts[2].bytes
        else { return nil }
        return (channel, payload)
    }

    private static let messageKind = Array("message".utf8)

    /// Whether the server is known to have `script` cached.
    private func isCached(_ script: RedisScript) -> Bool {
        script.id < cachedScripts.count && cachedScripts[script.id]
    }

    /// Records that the server has the script with this id cached (a preload or an EVAL
    /// succeeded on this connection). Must be called on the loop.
    func markCached(_ id: Int) {
        if id >= cachedScripts.count { cachedScripts += Array(repeating: false, count: id - cachedScripts.count + 1) }
        cachedScripts[id] = true
    }

    func channelInactive(context: ChannelHandlerContext) {
        if failure == nil { failure = RedisWireError(.connectionClosed, "connection closed") }
        failAll(failure ?? RedisWireError(.connectionClosed, "connection closed with the command in flight"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        drop(error as? RedisWireError ?? RedisWireError(.connectionClosed, "connection error: \(error)", underlying: nil), context: context)
    }

    private func armTimer(at deadline: NIODeadline) {
        guard let context, deadline != .distantFuture else { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.scheduleTask(deadline: deadline) { [self] in
            self.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        timerDeadline = .distantFuture
        guard let context, !pending.isEmpty else {
            progressMark = nil
            return
        }
        let now = NIODeadline.now()
        // Callers past their deadline are answered now; their slots stay until the replies come.
        var expired: [ReplySink] = []
        var earliest = NIODeadline.distantFuture
        for index in pending.indices {
            if case .abandoned = pending[index].sink { continue }
            if pending[index].deadline <= now {
                expired.append(pending[index].sink)
                pending[index].sink = .abandoned
            } else {
                earliest = min(earliest, pending[index].deadline)
            }
        }
        if let mark = progressMark, mark.replies == repliesRead {
            if now - mark.at >= healthTimeout {
                droppedAsSilent = true
                logger.warning("server sent no reply for the health timeout; dropping the connection")
                drop(RedisWireError(.timeout, "the server sent no reply for \(healthTimeout.nanoseconds / 1_000_000) ms"), context: context)
            }
        } else {
            progressMark = (repliesRead, now)
        }
        let timeout = RedisWireError(.timeout, "command deadline passed before the reply arrived")
        for sink in expired { sink.deliver(.failure(timeout)) }
        guard failure == nil, !pending.isEmpty, let mark = progressMark else { return }
        armTimer(at: min(earliest, mark.at + healthTimeout))
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
