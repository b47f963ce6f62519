import RedisWire

/// Many readers or one writer over the quorum.
///
/// Each master keeps the lock's state: the writer is an ordinary lock key, readers are
/// entries that expire one by one, and a writer that waits leaves a marker that turns new
/// readers away. A master decides each request against its own state, and a hold counts only
/// when a quorum of masters granted it. Any two quorums share a master, and no master grants
/// a writer beside a live reader or another writer, or a reader beside a writer: so a writer
/// never overlaps anyone inside their validity, as two holders of a mutex never do.
///
/// ```swift
/// let catalogue = try ReadWriteLock("catalogue", on: redlock)
/// let prices = try await catalogue.withReadLock(ttl: .seconds(10), wait: .seconds(5)) { _ in
///     try await loadPrices()
/// }
/// try await catalogue.withWriteLock(ttl: .seconds(30), wait: .seconds(60)) { writer in
///     try await reprice(fencingToken: writer.fencingToken)
/// }
/// ```
///
/// Holds are ``Lock``s: extend and release them with ``Redlock/extend(_:ttl:)`` and
/// ``Redlock/release(_:)``. A reader's lock has ``Lock/isShared`` set and no fencing token; a
/// writer's is fenced like a mutex's, with the fence of `name`.
public struct ReadWriteLock: Sendable {
    /// The lock's name. Its writer holds the resource `name`, so a mutex on the same name
    /// excludes (and is excluded by) the writer, not the readers.
    public let name: String
    let redlock: Redlock

    /// A read-write lock named `name` over `redlock`'s masters.
    /// - Throws: ``RedlockError/Code/invalidArgument`` for an empty name.
    public init(_ name: String, on redlock: Redlock) throws(RedlockError) {
        guard !name.isEmpty else { throw RedlockError(.invalidArgument, "a read-write lock needs a name") }
        self.name = name
        self.redlock = redlock
    }

    /// Acquires a reader's share: granted while no writer holds the lock or waits for it.
    ///
    /// Parameters are as for ``Redlock/acquire(_:ttl:value:wait:retry:fencing:lockDelay:)-(String,_,_,_,_,_,_)``.
    /// - Throws: ``RedlockError/Code/lockHeld`` while a writer holds or waits (after the wait),
    ///   or the acquisition's other errors.
    public func acquireRead(
        ttl: Duration,
        wait: Duration? = nil,
        retry: RedlockConfiguration.Retry? = nil,
        lockDelay: Duration = .zero
    ) async throws(RedlockError) -> Lock {
        try await acquire(.read, ttl: ttl, wait: wait, retry: retry, fencing: false, lockDelay: lockDelay)
    }

    /// Acquires the writer's exclusive hold: granted once no reader's entry and no writer is
    /// live. A writer that will wait turns new readers away meanwhile, so a stream of readers
    /// cannot starve it (the ones that hold finish, or expire, first).
    ///
    /// Parameters are as for ``Redlock/acquire(_:ttl:value:wait:retry:fencing:lockDelay:)-(String,_,_,_,_,_,_)``.
    /// - Throws: ``RedlockError/Code/lockHeld`` while readers or a writer hold it (after the
    ///   wait), or the acquisition's other errors.
    public func acquireWrite(
        ttl: Duration,
        wait: Duration? = nil,
        retry: RedlockConfiguration.Retry? = nil,
        fencing: Bool? = nil,
        lockDelay: Duration = .zero
    ) async throws(RedlockError) -> Lock {
        try await acquire(.write, ttl: ttl, wait: wait, retry: retry, fencing: fencing, lockDelay: lockDelay)
    }

    /// Runs `body` while holding a reader's share, kept alive and released as
    /// ``Redlock/withLock(_:ttl:wait:retry:fencing:lockDelay:_:)-(String,_,_,_,_,_,_)`` keeps
    /// and releases its lock (the body is cancelled if the share is lost).
    public func withReadLock<Value: Sendable>(
        ttl: Duration,
        wait: Duration? = nil,
        _ body: @escaping @Sendable (LockHandle) async throws -> Value
    ) async throws -> Value {
        let lock = try await acquireRead(ttl: ttl, wait: wait)
        return try await redlock.withLock(holding: lock, body)
    }

    /// Runs `body` while holding the writer's exclusive hold, kept alive and released as
    /// ``Redlock/withLock(_:ttl:wait:retry:fencing:lockDelay:_:)-(String,_,_,_,_,_,_)`` keeps
    /// and releases its lock.
    public func withWriteLock<Value: Sendable>(
        ttl: Duration,
        wait: Duration? = nil,
        fencing: Bool? = nil,
        _ body: @escaping @Sendable (LockHandle) async throws -> Value
    ) async throws -> Value {
        let lock = try await acquireWrite(ttl: ttl, wait: wait, fencing: fencing)
        return try await redlock.withLock(holding: lock, body)
    }

    private func acquire(
        _ mode: ReadWriteAccess.Mode,
        ttl: Duration,
        wait: Duration?,
        retry: RedlockConfiguration.Retry?,
        fencing: Bool?,
        lockDelay: Duration
    ) async throws(RedlockError) -> Lock {
        let willWait = (wait ?? .zero) > .zero || (wait == nil && (retry ?? redlock.configuration.retry).count > 0)
        // A waiting writer's marker outlives the longest it sleeps between attempts, each of
        // which renews it; one that died stops blocking readers after this long.
        let intent = willWait ? max(ttl, redlock.configuration.wakeUps.longestSleep) + .seconds(1) : .zero
        let access = ReadWriteAccess(redlock: redlock, name: name, mode: mode, writerIntent: intent)
        return try await redlock.acquire(
            [name],
            ttl: ttl,
            value: nil,
            wait: wait,
            retry: retry,
            fencing: fencing,
            lockDelay: lockDelay,
            access: access
        )
    }
}

/// What makes an acquisition a read-write lock's: which side, its keys on each master, and
/// for a writer the marker that tells readers it waits.
struct ReadWriteAccess: Sendable {
    /// A reader's share or the writer's hold.
    enum Mode: Sendable { case read, write }
    let mode: Mode
    /// The readers' entries, each scored by its expiry on the master's clock.
    let readersKey: [UInt8]
    /// Present while a writer waits; new readers are refused.
    let writerWaitingKey: [UInt8]
    /// The writer's id in that marker (random per acquisition; empty for a reader).
    let writerID: [UInt8]
    /// How long a refused writer's marker lives; zero for a writer that will not wait.
    let writerIntent: Duration

    init(redlock: Redlock, name: String, mode: Mode, writerIntent: Duration = .zero) {
        self.mode = mode
        self.readersKey = redlock.key(redlock.readersPrefix, name)
        self.writerWaitingKey = redlock.key(redlock.writerWaitingPrefix, name)
        self.writerID = mode == .write ? Redlock.randomValue() : []
        self.writerIntent = mode == .write ? writerIntent : .zero
    }

    /// One attempt's command for this side; `waitMarker` is how long the wait marker must
    /// live (zero for an attempt that does not wait).
    func acquireCommand(
        keys: AcquisitionKeys,
        value: [UInt8],
        ttl: [UInt8],
        candidate: [UInt8],
        waitMarker: Duration
    ) throws(RedlockError) -> FanOutCommand {
        let marker = Array(String(waitMarker.millisecondsRoundedUp).utf8)
        switch mode {
        case .read:
            return try .script(
                Scripts.acquireRead,
                keys: [keys.lockKeys[0], readersKey, writerWaitingKey, keys.waitKeys[0]],
                arguments: [value, ttl, marker]
            )
        case .write:
            return try .script(
                Scripts.acquireWrite,
                keys: keys.lockKeys + [readersKey, writerWaitingKey, keys.waitKeys[0], keys.watchKeys[0]] + (keys.fences.map { [$0] } ?? []),
                arguments: [value, ttl, candidate, marker, writerID, Array(String(writerIntent.millisecondsRoundedUp).utf8)]
            )
        }
    }
}

extension Redlock {
    /// Takes a writer's waiting marker down on every master where it is still its own (best
    /// effort: one left behind lapses after the writer's intent).
    func forgetWriter(_ access: ReadWriteAccess) {
        guard access.mode == .write, access.writerIntent > .zero,
            let command = try? FanOutCommand.script(Scripts.forgetWriter, keys: [access.writerWaitingKey], arguments: [access.writerID])
        else { return }
        sendWithoutWaiting(command)
    }
}
