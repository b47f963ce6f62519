import NIOCore
import NIOSSL
import NIOTLS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// TLS to a Redis server (managed services such as ElastiCache, Azure Cache, Memorystore,
/// Redis Cloud and Upstash accept nothing else; `redis-server --tls-port` speaks it too).
/// The server's certificate is verified by default, name included.
public struct RedisTLSConfiguration: Sendable {
    /// Which certificate authorities the client trusts.
    public enum TrustRoots: Sendable, Hashable {
        /// The system's trust store.
        case system
        /// The CA certificates in a PEM file (a private CA).
        case certificateFile(String)
    }

    /// A client certificate and its key, both PEM files, for servers that require mutual TLS
    /// (`tls-auth-clients yes`).
    public struct ClientIdentity: Sendable, Hashable {
        /// The certificate (chain) file.
        public var certificateFile: String
        /// The private key file.
        public var keyFile: String

        /// Creates a client identity from two PEM files.
        public init(certificateFile: String, keyFile: String) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// Which CAs sign the server's certificate.
    public var trustRoots: TrustRoots
    /// The client certificate for mutual TLS, if the server asks for one.
    public var clientIdentity: ClientIdentity?
    /// The name sent in SNI and checked against the server's certificate; nil uses the
    /// address's host (an IP address is then checked against the certificate's IP entries).
    public var serverName: String?
    /// Whether the server's certificate is verified (chain and name). Leave it on: without it
    /// anyone on the path can impersonate the masters.
    public var verifiesServer: Bool

    /// Creates a TLS configuration; by default it trusts the system's CAs and verifies the server.
    public init(trustRoots: TrustRoots = .system, clientIdentity: ClientIdentity? = nil, serverName: String? = nil, verifiesServer: Bool = true) {
        self.trustRoots = trustRoots
        self.clientIdentity = clientIdentity
        self.serverName = serverName
        self.verifiesServer = verifiesServer
    }

    /// The NIOSSL context, built once per connection and reused by every re-dial.
    func makeContext() throws(RedisWireError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = verifiesServer ? .fullVerification : .none
        do {
            if case .certificateFile(let path) = trustRoots { configuration.trustRoots = .file(path) }
            if let clientIdentity {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(clientIdentity.certificateFile).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientIdentity.keyFile, format: .pem))
            }
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisWireError(.invalidArgument, "TLS configuration cannot be used: \(error)")
        }
    }

    /// Why the server's certificate failed verification, when its dates say so: a second
    /// handshake that does not verify, only to read the certificate. Nil when the dates are
    /// fine (the CA is then the problem).
    func diagnoseUntrustedCertificate(
        at address: RedisServerAddress,
        transport: any RedisTransport,
        on eventLoop: any EventLoop,
        timeout: Duration
    ) -> EventLoopFuture<RedisTLSFailure?> {
        var unverified = self
        unverified.verifiesServer = false
        let context: NIOSSLContext
        do {
            context = try unverified.makeContext()
        } catch {
            return eventLoop.makeSucceededFuture(nil)
        }
        let deadline = NIODeadline.now() + .nanoseconds(timeout.nanoseconds)
        return unverified.connect(to: address, transport: transport, on: eventLoop, context: context, timeout: timeout, deadline: deadline)
            .flatMapThrowing { channel -> RedisTLSFailure? in
                defer { channel.close(promise: nil) }
                guard let certificate = try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate else {
                    return nil
                }
                let now = time(nil)
                if certificate.notValidAfter < now { return .expiredCertificate }
                if certificate.notValidBefore > now { return .notYetValidCertificate }
                return nil
            }
    }

    /// Dials `address` through `transport` with TLS on `context`, then adds `handlers` after
    /// the TLS handler. The future succeeds once the handshake is over. It fails with the
    /// classified failure, or at `deadline`; the channel is then closed.
    func connect(
        to address: RedisServerAddress,
        transport: any RedisTransport,
        on eventLoop: any EventLoop,
        context: NIOSSLContext,
        timeout: Duration,
        deadline: NIODeadline,
        addingAfter handlers: @escaping @Sendable (any Channel) throws -> Void = { _ in }
    ) -> EventLoopFuture<any Channel> {
        let handshake = eventLoop.makePromise(of: Void.self)
        let expiry = eventLoop.scheduleTask(deadline: deadline) {
            handshake.fail(RedisWireError(.timeout, "TLS handshake did not finish within the connect timeout"))
        }
        handshake.futureResult.whenComplete { _ in expiry.cancel() }
        return transport.connect(to: address, on: eventLoop, timeout: timeout) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(self.makeHandler(context: context, address: address))
                try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(promise: handshake))
                try handlers(channel)
            }
        }
        .flatMapErrorThrowing { error in
            handshake.fail(error)
            throw error
        }
        .flatMap { channel in
            handshake.futureResult.map { channel }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
    }

    /// The handler that speaks TLS on a new channel to `address`.
    func makeHandler(context: NIOSSLContext, address: RedisServerAddress) throws -> NIOSSLClientHandler {
        var name = serverName
        if name == nil, case .hostname(let host, _) = address.base, !host.isIPAddress { name = host }
        return try NIOSSLClientHandler(context: context, serverHostname: name)
    }
}

/// Why a TLS handshake with a Redis server failed.
public enum RedisTLSFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server's certificate does not chain to a trusted CA.
    case untrustedCertificate
    /// The server's certificate has expired.
    case expiredCertificate
    /// The server's certificate is not valid yet (a clock behind, or a certificate issued
    /// for later).
    case notYetValidCertificate
    /// The certificate is valid but for another name than the one dialled.
    case nameMismatch
    /// The server requires a client certificate (mutual TLS) and none was configured, or it
    /// refused the one sent.
    case clientCertificateRefused
    /// Another handshake failure; the text says what the TLS library reported.
    case other(String)

    /// A sentence for people.
    public var description: String {
        switch self {
        case .untrustedCertificate: "the server's certificate is not signed by a trusted CA"
        case .expiredCertificate: "the server's certificate has expired"
        case .notYetValidCertificate: "the server's certificate is not valid yet (check the clocks)"
        case .nameMismatch: "the server's certificate is for another name than the one dialled"
        case .clientCertificateRefused: "the server requires a client certificate and did not accept ours (none, or untrusted)"
        case .other(let text): "TLS handshake failed: \(text)"
        }
    }

    /// Classifies an error the TLS handler raised during the handshake.
    static func classify(_ error: any Error) -> RedisTLSFailure {
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname { return .nameMismatch }
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") { return .untrustedCertificate }
        if text.contains("CERTIFICATE_REQUIRED") || text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") || text.contains("ALERT_HANDSHAKE_FAILURE")
            || text.contains("ALERT_UNKNOWN_CA") || text.contains("ALERT_BAD_CERTIFICATE")
        {
            return .clientCertificateRefused
        }
        return .other(text)
    }
}

/// Completes `promise` when the TLS handshake ends: with success, or with the classified
/// failure as a ``RedisWireError``. Sits right after the TLS handler.
final class TLSHandshakeWatcher: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: lives on its channel's event loop.
    typealias InboundIn = NIOAny
    private var promise: EventLoopPromise<Void>?

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            promise?.succeed()
            promise = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failure = RedisTLSFailure.classify(error)
        fail(failure)
        // Also after the handshake: under TLS 1.3 a server refuses a missing client
        // certificate only once the client has finished, with an alert the next read sees.
        context.fireErrorCaught(RedisWireError(.tlsHandshakeFailed, failure.description, underlying: failure))
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A server that closes during the handshake without an alert: most often one that
        // wanted a client certificate (TLS 1.3 sends its refusal after our Finished).
        fail(.other("the server closed the connection during the handshake"))
        context.fireChannelInactive()
    }

    private func fail(_ failure: RedisTLSFailure) {
        promise?.fail(RedisWireError(.tlsHandshakeFailed, failure.description, underlying: failure))
        promise = nil
    }
}

extension RedisWireError {
    /// For a failed TLS handshake (directly or as the cause of an unreachable server): why.
    public var tlsFailure: RedisTLSFailure? {
        if let failure = underlying as? RedisTLSFailure { return failure }
        return (underlying as? RedisWireError)?.tlsFailure
    }
}

extension String {
    /// Whether this is an IPv4 or IPv6 literal (not usable as an SNI name).
    var isIPAddress: Bool {
        (try? SocketAddress(ipAddress: self, port: 0)) != nil
    }
}
