import RedisWire

/// A lock held on a quorum of masters.
///
/// Its ``description`` never shows the lock value: the value is the only proof of ownership.
public struct Lock: Sendable, CustomStringConvertible {
    /// The resources this lock covers (one, or several for a multi-resource lock).
    public let resources: [String]
    /// One fencing token per resource, in the order of ``resources``; empty for an unfenced
    /// lock.
    public let fencingTokens: [Int64]
    /// The TTL the lock was last set with.
    public let ttl: Duration
    /// The validity computed when the lock was acquired or last extended:
    /// ttl - elapsed - drift.
    public let validity: Duration
    /// When the validity runs out, on this process's monotonic clock.
    public let validUntil: ContinuousClock.Instant
    /// How much longer than ``ttl`` the masters keep the keys (see
    /// ``Redlock/acquire(_:ttl:value:wait:retry:fencing:lockDelay:)-(String,_,_,_,_,_,_)``); extensions keep it.
    public internal(set) var lockDelay: Duration = .zero
    /// Whether this is a reader's hold on a ``ReadWriteLock``, shared with other readers.
    public internal(set) var isShared = false
    /// The random (or caller-supplied) value stored on the masters (before the trailer that
    /// carries the token, see `StoredValue`).
    let value: [UInt8]
    /// Each master's vote in the acquisition that granted it (for tracing); empty otherwise.
    var votes: [RedlockError.Vote] = []
    /// How many attempts the acquisition took (for tracing).
    var attempts = 1

    init(resources: [String], fencingTokens: [Int64], ttl: Duration, validity: Duration, validUntil: ContinuousClock.Instant, value: [UInt8]) {
        self.resources = resources
        self.fencingTokens = fencingTokens
        self.ttl = ttl
        self.validity = validity
        self.validUntil = validUntil
        self.value = value
    }

    /// The first (for a single-resource lock: the only) resource.
    public var resource: String { resources[0] }

    /// The fencing token of the first resource (nil for an unfenced lock). Pass it to the
    /// protected resource and have it reject any write whose token is not higher than the
    /// last one it accepted.
    public var fencingToken: Int64? { fencingTokens.first }

    /// Validity left now; zero or negative once it ran out.
    public var remainingValidity: Duration { validUntil - ContinuousClock.now }

    /// A readable summary, for logs and messages.
    public var description: String {
        "Lock(\(resources.joined(separator: ",")), token \(fencingTokens.map(String.init).joined(separator: ",")), valid for \(remainingValidity))"
    }

    func with(validity: Duration, validUntil: ContinuousClock.Instant, ttl: Duration) -> Lock {
        var lock = Lock(resources: resources, fencingTokens: fencingTokens, ttl: ttl, validity: validity, validUntil: validUntil, value: value)
        lock.lockDelay = lockDelay
        lock.isShared = isShared
        return lock
    }
}

/// What a quorum of masters says about a resource.
public struct LockState: Sendable, CustomStringConvertible {
    /// Whether a quorum of masters holds the same value for the resource.
    public let isHeld: Bool
    /// The smallest remaining TTL among the quorum that holds it, minus the drift allowance:
    /// how long the holder may still count on it.
    public let remaining: Duration?
    /// The smallest remaining TTL among the quorum that holds it, as the masters report it:
    /// when a quorum's keys will have expired, so when to try again.
    public let timeToLive: Duration?
    /// The holder's raw value. It proves ownership: never log or return it to other clients.
    package let holderValue: [UInt8]?
    /// The fencing token issued to the holder's acquisition, which its value carries on the
    /// masters. Nil when the lock is free. For an unfenced lock it is the resource's fence (the
    /// highest token handed out for it) where a quorum of the holder's masters agree on one.
    public let fencingToken: Int64?

    init(isHeld: Bool, remaining: Duration?, holder: [UInt8]?, fencingToken: Int64? = nil, timeToLive: Duration? = nil) {
        self.isHeld = isHeld
        self.remaining = remaining
        self.timeToLive = timeToLive
        self.holderValue = holder
        self.fencingToken = fencingToken
    }

    /// Whether the quorum's value is exactly `value` (for callers that supply their own
    /// values, such as the HTTP adapter's secrets).
    package func isHeld(by value: [UInt8]) -> Bool { isHeld && holderValue == value }

    /// A readable summary, for logs and messages.
    public var description: String {
        isHeld ? "LockState(held, \(remaining.map { "\($0)" } ?? "?") left)" : "LockState(free)"
    }
}

/// How release and extend recognise our value on a master.
package enum ValueMatch: Sendable, Hashable {
    /// The stored value equals these bytes.
    case exact([UInt8])
    /// The stored value starts with these bytes (for values that carry a payload after an
    /// owner part, as the HTTP adapter stores them).
    case prefix([UInt8])

    var bytes: [UInt8] {
        switch self {
        case .exact(let bytes), .prefix(let bytes): bytes
        }
    }

    var mode: [UInt8] {
        switch self {
        case .exact: Array("exact".utf8)
        case .prefix: Array("prefix".utf8)
        }
    }
}

/// The result of ``Redlock/release(_:)``.
public enum ReleaseOutcome: Sendable, Hashable {
    /// A quorum of masters held our value and deleted it.
    case released
    /// A quorum of masters no longer held our value: the lock had expired (or was never
    /// ours). Work done after the validity ran out was not protected.
    case notHeld
    /// A quorum deleted our value, but the lock's validity (the client-side bound that allows
    /// for clock drift) had already ended: work done after it was not protected.
    case releasedAfterValidity
}

/// Redlock's timing rule, kept apart so that it can be tested on its own.
public enum Validity {
    /// The clock drift allowance for a TTL: ttl * driftFactor + 2 ms.
    public static func drift(ttl: Duration, driftFactor: Double) -> Duration {
        .nanoseconds(Int64((Double(ttl.nanoseconds) * driftFactor).rounded(.up))) + .milliseconds(2)
    }

    /// ttl - elapsed - drift; the lock is usable only while this is positive.
    public static func remaining(ttl: Duration, elapsed: Duration, driftFactor: Double) -> Duration {
        ttl - elapsed - drift(ttl: ttl, driftFactor: driftFactor)
    }
}
