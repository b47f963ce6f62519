import NIOCore
import NIOPosix

/// Opens the byte stream a ``RedisConnection`` talks over.
///
/// The default is plain TCP (or a Unix socket). TLS is not a transport: it is set in
/// ``RedisConnectionConfiguration/tls`` and layered on whichever transport dials.
public protocol RedisTransport: Sendable {
    /// Connects to `address` on `eventLoop` and installs `handler` as the last handler.
    func connect(
        to address: RedisServerAddress,
        on eventLoop: any EventLoop,
        timeout: Duration,
        handler: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel>
}

/// Plain TCP with `TCP_NODELAY`, or a Unix domain socket.
public struct PlainRedisTransport: RedisTransport {
    /// Creates the plain transport.
    public init() {}

    /// Dials `address` on `eventLoop` and installs `handler`'s channel handlers.
    public func connect(
        to address: RedisServerAddress,
        on eventLoop: any EventLoop,
        timeout: Duration,
        handler: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(timeout.nanoseconds))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer(handler)
        switch address.base {
        case .hostname(let host, let port):
            return bootstrap.connect(host: host, port: port)
        case .unixDomainSocket(let path):
            return bootstrap.connect(unixDomainSocketPath: path)
        }
    }
}
