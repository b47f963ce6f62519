import NIOCore
import NIOPosix
import RedisWire
import Synchronization

/// What a ``FaultProxy`` does to the traffic through it.
package enum ProxyFault: Sendable, Equatable, CustomStringConvertible {
    /// Forward both ways untouched.
    case none
    /// Forward both ways, each chunk held back this long.
    case latency(Duration)
    /// Drop everything both ways; connections stay open (a partition or a dead switch).
    case blackHole
    /// Reset every connection and refuse new ones.
    case reset
    /// Forward requests to the server but drop its replies (the write happens, the client
    /// never learns).
    case dropReplies

    package var description: String {
        switch self {
        case .none: "none"
        case .latency(let delay): "latency \(delay)"
        case .blackHole: "black hole"
        case .reset: "reset"
        case .dropReplies: "drop replies"
        }
    }
}

/// A TCP proxy in front of one Redis master, on a free loopback port, whose fault can be
/// changed while it runs.
package final class FaultProxy: Sendable {
    /// The port clients connect to.
    package let port: Int
    let upstreamPort: Int
    private let state: Mutex<(fault: ProxyFault, channels: [ObjectIdentifier: any Channel])>
    private let server: any Channel

    /// Starts a proxy to `127.0.0.1:upstreamPort`.
    package static func start(upstreamPort: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> FaultProxy {
        let box = ProxyBox()
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                guard let proxy = box.proxy else { return inbound.close() }
                return proxy.accept(inbound)
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let proxy = FaultProxy(port: server.localAddress?.port ?? 0, upstreamPort: upstreamPort, server: server)
        box.proxy = proxy
        return proxy
    }

    private init(port: Int, upstreamPort: Int, server: any Channel) {
        self.port = port
        self.upstreamPort = upstreamPort
        self.server = server
        self.state = Mutex((.none, [:]))
    }

    /// The fault in effect.
    package var fault: ProxyFault { state.withLock { $0.fault } }

    /// Changes the fault; `.reset` also resets every open connection now.
    package func set(_ fault: ProxyFault) {
        let toReset: [any Channel] = state.withLock { state in
            state.fault = fault
            return fault == .reset ? Array(state.channels.values) : []
        }
        for channel in toReset { Self.reset(channel) }
    }

    /// Closes the listener and every connection.
    package func stop() async {
        let channels = state.withLock { Array($0.channels.values) }
        for channel in channels { channel.close(promise: nil) }
        try? await server.close()
    }

    private func accept(_ inbound: any Channel) -> EventLoopFuture<Void> {
        if fault == .reset { return inbound.close() }
        register(inbound)
        return ClientBootstrap(group: inbound.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: upstreamPort)
            .flatMap { outbound in
                self.register(outbound)
                return inbound.pipeline.addHandler(Relay(peer: outbound, proxy: self, towardsServer: true)).flatMap {
                    outbound.pipeline.addHandler(Relay(peer: inbound, proxy: self, towardsServer: false))
                }
            }
            .flatMapError { _ in inbound.close() }
    }

    private func register(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock { $0.channels[id] = channel }
        channel.closeFuture.whenComplete { _ in _ = self.state.withLock { $0.channels.removeValue(forKey: id) } }
    }

    static func reset(_ channel: any Channel) {
        // SO_LINGER 0 makes close send an RST instead of a FIN.
        guard let provider = channel as? any SocketOptionProvider else { return channel.close(promise: nil) }
        provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Forwards one direction, applying the current fault.
    private final class Relay: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let peer: any Channel
        let proxy: FaultProxy
        let towardsServer: Bool

        init(peer: any Channel, proxy: FaultProxy, towardsServer: Bool) {
            self.peer = peer
            self.proxy = proxy
            self.towardsServer = towardsServer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = Self.unwrapInboundIn(data)
            switch proxy.fault {
            case .none:
                peer.writeAndFlush(buffer, promise: nil)
            case .latency(let delay):
                let peer = peer
                context.eventLoop.scheduleTask(in: .nanoseconds(delay.nanoseconds)) {
                    peer.writeAndFlush(buffer, promise: nil)
                }
            case .blackHole:
                break
            case .dropReplies:
                if towardsServer { peer.writeAndFlush(buffer, promise: nil) }
            case .reset:
                FaultProxy.reset(context.channel)
                FaultProxy.reset(peer)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

/// Lets the child initializer reach the proxy created after the bind.
private final class ProxyBox: @unchecked Sendable {
    // Written once before any connection can be accepted by a client that knows the port.
    var proxy: FaultProxy?
}
