/// The one error type of the Redlock module.
///
/// Compare ``code``: ``Code/lockHeld`` (someone else holds it: retry later, HTTP 409) is a
/// different thing from ``Code/quorumUnreachable`` (too few masters answered: HTTP 503) and
/// from ``Code/lockLost`` (a lock you held can no longer be kept).
public struct RedlockError: Error, Sendable, CustomStringConvertible {
    /// An opaque, extensible error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case lockHeld, quorumUnreachable, validityExhausted, lockLost, invalidArgument, cancelled, shutdown
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A majority of the masters that answered hold the resource for someone else.
        public static let lockHeld = Code(.lockHeld)
        /// Too few masters answered to reach a quorum (down, paused, partitioned, timing out).
        public static let quorumUnreachable = Code(.quorumUnreachable)
        /// A quorum said yes, but it took so long that no validity was left (TTL too short
        /// for the latency, or clock drift budget used up).
        public static let validityExhausted = Code(.validityExhausted)
        /// The lock is no longer ours on a quorum: it expired or was taken over. Work done under
        /// it must stop.
        public static let lockLost = Code(.lockLost)
        /// A bad argument: empty resource name, TTL out of range, and so on.
        public static let invalidArgument = Code(.invalidArgument)
        /// The calling task was cancelled while waiting.
        public static let cancelled = Code(.cancelled)
        /// The client has been shut down (``Redlock/shutdown()``): operations already running
        /// finished first; later ones fail with this code.
        public static let shutdown = Code(.shutdown)

        /// A readable summary, for logs and messages.
        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// A human-readable explanation. Never contains a lock value.
    public var message: String
    /// For ``Code/lockHeld``: how long until the current holder's lock expires, when known.
    /// For ``Code/quorumUnreachable``: how long until masters held out after a restart (see
    /// ``Redlock/masterStatus()``) rejoin in enough number for a quorum, when that is known.
    public var retryAfter: Duration?
    /// The lower-level error, if any.
    public var underlying: (any Error & Sendable)?
    /// For a failed acquisition: each master's vote, in the order the masters were given.
    public var votes: [Vote]

    /// How one master answered one attempt.
    public enum Vote: Sendable, Hashable {
        /// It set our value.
        case granted
        /// It holds the resource for another owner.
        case heldByAnother
        /// It failed: an error, a timeout, or it is down.
        case failed
        /// It had not answered when the attempt was decided without it.
        case pending
    }

    /// Creates an error.
    public init(_ code: Code, _ message: String, retryAfter: Duration? = nil, votes: [Vote] = [], underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
        self.votes = votes
        self.underlying = underlying
    }

    /// A readable summary, for logs and messages.
    public var description: String { "RedlockError(\(code)): \(message)" }
}
