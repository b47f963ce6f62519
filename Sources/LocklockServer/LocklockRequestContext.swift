import Foundation
import Hummingbird
import NIOCore

/// The request context: Hummingbird's core context plus the client's address for throttling.
public struct LocklockRequestContext: RequestContext, RemoteAddressRequestContext {
    /// Hummingbird's per-request context.
    public var coreContext: CoreRequestContextStorage
    /// The address of the peer (the client, or the proxy in front of it).
    public let remoteAddress: SocketAddress?
    /// The client's address: the peer's, or the one a trusted proxy forwarded.
    public internal(set) var clientAddress: SocketAddress?
    private let channel: any Channel

    /// Creates the context for one request on `channel`.
    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.clientAddress = source.channel.remoteAddress
        self.channel = source.channel
    }

    /// Lock request bodies: size, depth and type checks, with problem responses.
    public var requestDecoder: LockRequestDecoder { LockRequestDecoder() }
    /// Response bodies: compact JSON with sorted keys and unescaped slashes.
    public var responseEncoder: JSONEncoder { Self.encoder }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Whether the client's connection is still open: a waiting request whose client has
    /// gone stops waiting, and a lock acquired for it is released.
    var clientIsConnected: Bool { channel.isActive }

    /// Completes when the client's connection closes.
    var connectionClosed: EventLoopFuture<Void> { channel.closeFuture }
}
