/// The one error type of the RedisWire module.
///
/// Compare ``code`` to tell cases apart; ``message`` is for people and carries the server's
/// text for ``Code/serverError``. It never contains command arguments.
public struct RedisWireError: Error, Sendable, CustomStringConvertible {
    /// An opaque, extensible error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case timeout, connectionClosed, unavailable, serverError, protocolError, closed, invalidArgument, tlsHandshakeFailed
            case heldOut, unidentified, unsupportedServer
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The command's deadline passed before its reply arrived; the connection was dropped.
        public static let timeout = Code(.timeout)
        /// The connection closed while the command was in flight; it may or may not have run.
        public static let connectionClosed = Code(.connectionClosed)
        /// The server cannot be reached right now (connect failed, or it is marked down and
        /// being re-dialled in the background). The command was not sent.
        public static let unavailable = Code(.unavailable)
        /// The server answered with an error reply (`-ERR ...`, `-NOSCRIPT ...`, ...).
        public static let serverError = Code(.serverError)
        /// The server sent bytes that are not valid RESP; the connection was dropped.
        public static let protocolError = Code(.protocolError)
        /// The connection was closed by its owner.
        public static let closed = Code(.closed)
        /// The caller passed something that cannot be sent (for example no arguments).
        public static let invalidArgument = Code(.invalidArgument)
        /// The TLS handshake with the server failed; ``RedisWireError/tlsFailure`` says why.
        public static let tlsHandshakeFailed = Code(.tlsHandshakeFailed)

        /// The server is connected but held out of use: it may have lost writes it had
        /// acknowledged (see Redlock's hold-out of restarted masters). The command was not sent.
        public static let heldOut = Code(.heldOut)
        /// The server could not be identified after connecting (`INFO` refused, late or
        /// incomplete) while identification decides whether it may be used; the dial failed.
        public static let unidentified = Code(.unidentified)
        /// The server is not one Locklock can use: too old a version, or a replica.
        public static let unsupportedServer = Code(.unsupportedServer)

        /// A readable summary, for logs and messages.
        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// A human-readable explanation; for ``Code/serverError`` the server's own message.
    public var message: String
    /// The lower-level error, if any.
    public var underlying: (any Error & Sendable)?
    /// For ``Code/heldOut``: how much longer the server is held out, when known.
    public var heldOutFor: Duration?

    /// Creates an error.
    public init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    /// For ``Code/serverError``: the first word of the server's message (`ERR`, `NOSCRIPT`,
    /// `WRONGTYPE`, ...).
    public var serverErrorPrefix: Substring? {
        guard code == .serverError else { return nil }
        return message.split(separator: " ", maxSplits: 1).first
    }

    /// A readable summary, for logs and messages.
    public var description: String { "RedisWireError(\(code)): \(message)" }
}
