import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps clients from holding connections they do not use, one handler per connection:
///
/// - a request's head must arrive within `headerTimeout` of the connection opening, or within
///   idle timeout + `headerTimeout` of the previous response (the server's own idle timeout
///   closes a keep-alive connection that sends nothing before that);
/// - its body must arrive within `bodyTimeout` of its head;
/// - past `maximumConnections` open connections, or past its client's share of them, a new
///   one is closed as soon as it opens;
/// - a client that closes its side of the connection has gone: the connection is closed, so
///   a request that waits for a lock on its behalf sees it and stops;
/// - a 413 closes the connection once written, without reading the rest of the body;
/// - TCP keepalive probes an idle connection after 60 s, so a vanished client is noticed;
/// - a response that makes no progress (the client stopped reading) for the idle timeout
///   closes the connection.
///
/// No deadline applies while the server works on a request (a POST may wait for a lock).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The deadlines and the cap, shared by every connection of one server.
    struct Limits: Sendable {
        var headerTimeout: TimeAmount
        var bodyTimeout: TimeAmount
        var idleTimeout: TimeAmount
        var connections: ConnectionCount
        /// Peers held to the total only: each carries many clients.
        var trustedProxies: [IPNetwork] = []
    }

    private let limits: Limits
    private var started = false
    /// Closes the connection if it is still not writable when it fires.
    private var stall: Scheduled<Void>?
    /// Set by a 413's head: the connection closes once that response is written.
    private var closesAfterResponse = false
    /// The client this connection was counted against (nil for a trusted proxy), once counted.
    private var counted: ConnectionCount.Client?
    /// When the connection is closed unless the deadline moves first; nil while a request is
    /// being served.
    private var deadline: NIODeadline?
    /// One timer at or before `deadline`, re-armed when it fires early, so that a request on
    /// a busy connection moves a field instead of cancelling and scheduling timers.
    private var timer: (task: Scheduled<Void>, fires: NIODeadline)?

    init(limits: Limits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        let peer = context.channel.remoteAddress
        let client: String? =
            if let peer, limits.trustedProxies.contains(where: { $0.contains(peer) }) { nil } else { RateLimiter.clientKey(for: peer) }
        guard limits.connections.open(for: client) else {
            context.close(promise: nil)
            return
        }
        counted = .init(key: client)
        Self.keepAlive(context.channel)
        arm(limits.headerTimeout, context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: arm(limits.bodyTimeout, context: context)
        case .body: break
        case .end: disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            closesAfterResponse = head.status == .contentTooLarge
        case .end where closesAfterResponse:
            // The rest of an oversized body is never read: close as soon as the 413 is out,
            // instead of waiting for (or draining) what the client still sends.
            let done = context.eventLoop.makePromise(of: Void.self)
            done.futureResult.whenComplete { _ in context.close(promise: nil) }
            done.futureResult.cascade(to: promise)
            context.write(data, promise: done)
            return
        case .end:
            arm(limits.idleTimeout + limits.headerTimeout, context: context)
        case .body:
            break
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// A client that stops reading its responses fills the socket: once the channel has not
    /// been writable for the idle timeout, the connection is closed (no progress).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        stall?.cancel()
        stall = nil
        if !context.channel.isWritable {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            stall = context.eventLoop.scheduleTask(in: limits.idleTimeout) {
                let context = bound.value
                if !context.channel.isWritable { context.close(promise: nil) }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
    }

    /// Stops the timer and stops counting this connection, once whichever comes first calls it.
    private func finish() {
        stall?.cancel()
        stall = nil
        deadline = nil
        timer?.task.cancel()
        timer = nil
        if let client = counted {
            counted = nil
            limits.connections.close(for: client.key)
        }
    }

    /// TCP keepalive: a client that vanished (its host died, a NAT forgot it) while a request
    /// waits on its behalf is found within about two minutes, not the kernel's two hours.
    private static func keepAlive(_ channel: any Channel) {
        #if os(Linux)
        let tcp = NIOBSDSocket.OptionLevel.tcp
        for (name, value) in [(TCP_KEEPIDLE, 60), (TCP_KEEPINTVL, 10), (TCP_KEEPCNT, 6)] {
            let option = ChannelOptions.Types.SocketOption(level: tcp, name: NIOBSDSocket.Option(rawValue: Int32(name)))
            channel.setOption(option, value: SocketOptionValue(value)).whenFailure { _ in }
        }
        #endif
        channel.setOption(ChannelOptions.socketOption(.so_keepalive), value: 1).whenFailure { _ in }
    }

    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        let deadline = NIODeadline.now() + timeout
        self.deadline = deadline
        if let timer, timer.fires <= deadline { return }
        schedule(at: deadline, context: context)
    }

    private func schedule(at time: NIODeadline, context: ChannelHandlerContext) {
        timer?.task.cancel()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(deadline: time) {
            let (handler, context) = bound.value
            handler.timer = nil
            guard let deadline = handler.deadline else { return }
            if deadline <= .now() {
                context.channel.close(promise: nil)
            } else {
                handler.schedule(at: deadline, context: context)
            }
        }
        timer = (task, time)
    }

    private func disarm() {
        deadline = nil
    }
}

/// Open connections of one server, against its cap and each client's share of it.
final class ConnectionCount: Sendable {
    /// Whom a connection was counted against.
    struct Client {
        /// The client's key, nil for a trusted proxy.
        let key: String?
    }

    private let counts = Mutex<(total: Int, perClient: [String: Int])>((0, [:]))
    let maximum: Int
    let perClient: Int

    init(maximum: Int, perClient: Int? = nil) {
        self.maximum = maximum
        self.perClient = perClient ?? maximum
    }

    /// Counts a new connection of `client` (nil: a trusted proxy, held to the total only);
    /// false (and not counted) when the cap or the client's share is reached.
    func open(for client: String?) -> Bool {
        counts.withLock { counts in
            guard counts.total < maximum else { return false }
            if let client {
                let held = counts.perClient[client, default: 0]
                guard held < perClient else { return false }
                counts.perClient[client] = held + 1
            }
            counts.total += 1
            return true
        }
    }

    /// Counts a connection of `client` less.
    func close(for client: String?) {
        counts.withLock { counts in
            counts.total -= 1
            guard let client, let held = counts.perClient[client] else { return }
            counts.perClient[client] = held > 1 ? held - 1 : nil
        }
    }
}
