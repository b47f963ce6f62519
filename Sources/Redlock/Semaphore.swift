/// "At most N at once" over the quorum: N ordinary Redlock locks, the slots `name#0` to
/// `name#N-1`. A permit is one slot held by a quorum of masters, so the limit follows from
/// the mutex's own guarantee: two holders of one slot would be two holders of one lock.
///
/// Unlike a counter per master with a majority vote of the counters, which is not safe (a
/// counter on a master that restarted empty, or one a failed attempt incremented, votes
/// wrong), nothing here is counted: each slot is decided on its own.
///
/// On Linux, Glibc declares a `Semaphore` too; where both modules are visible, make one with
/// ``Redlock/semaphore(_:permits:)`` and let the type be inferred.
///
/// ```swift
/// let builds = try redlock.semaphore("builds", permits: 4)
/// try await builds.withPermit(ttl: .seconds(30), wait: .seconds(60)) { permit in
///     try await build(fencingToken: permit.fencingToken)
/// }
/// ```
public struct Semaphore: Sendable {
    /// The semaphore's name; its slots are the resources `name#0` to `name#N-1`.
    public let name: String
    /// How many holders it admits at once.
    public let permits: Int
    let redlock: Redlock
    /// The most permits one semaphore may have: each is a slot an acquisition may try.
    public static let maximumPermits = 1_024

    /// A semaphore of `permits` over `redlock`'s masters. Every client must use the same
    /// `permits` for the same name: the slots are its only state.
    /// - Throws: ``RedlockError/Code/invalidArgument`` for an empty name or a number of permits
    ///   outside 1 to ``maximumPermits``.
    public init(_ name: String, permits: Int, on redlock: Redlock) throws(RedlockError) {
        guard !name.isEmpty else { throw RedlockError(.invalidArgument, "a semaphore needs a name") }
        guard (1...Self.maximumPermits).contains(permits) else {
            throw RedlockError(.invalidArgument, "permits must be between 1 and \(Self.maximumPermits)")
        }
        self.name = name
        self.permits = permits
        self.redlock = redlock
    }

    /// The resource of slot `index`.
    public func slot(_ index: Int) -> String { "\(name)#\(index)" }

    /// The slot a permit of this semaphore holds; nil for any other lock.
    public func slotIndex(of permit: Lock) -> Int? {
        guard permit.resource.hasPrefix(name + "#"), let index = Int(permit.resource.dropFirst(name.count + 1)),
            (0..<permits).contains(index), slot(index) == permit.resource
        else { return nil }
        return index
    }

    /// Acquires one permit: tries the slots once each, starting at a random one so that
    /// contenders spread over them, and with a `wait`, sleeps until a slot is released (or
    /// the earliest holder's remaining time) and tries again, until the deadline.
    ///
    /// The permit is a ``Lock`` on one slot: extend and release it like any lock; with fencing,
    /// its token orders the holders of that slot. `value` and `lockDelay` are as for a lock.
    /// - Throws: ``RedlockError/Code/lockHeld`` when every permit is held (after the wait),
    ///   ``RedlockError/Code/quorumUnreachable``, ``RedlockError/Code/invalidArgument``,
    ///   ``RedlockError/Code/cancelled``.
    public func acquire(
        ttl: Duration,
        value: [UInt8]? = nil,
        wait: Duration? = nil,
        fencing: Bool? = nil,
        lockDelay: Duration = .zero
    ) async throws(RedlockError) -> Lock {
        guard wait.map({ (Duration.zero...Redlock.longestDuration).contains($0) }) ?? true else {
            throw RedlockError(.invalidArgument, "wait must be between 0 and ten years")
        }
        let clock = ContinuousClock()
        let deadline = wait.map { clock.now + $0 }
        let slots = (0..<permits).map(slot)
        var watching: WakeUpHub.Membership?
        defer { if let watching { redlock.wakeUps.leave(watching, holding: nil) } }
        while true {
            var soonest: Duration?
            var unreachable: RedlockError?
            let first = Int.random(in: 0..<permits)
            for offset in 0..<permits {
                let resource = slots[(first + offset) % permits]
                do {
                    return try await redlock.acquire(resource, ttl: ttl, value: value, retry: .never, fencing: fencing, lockDelay: lockDelay)
                } catch  where error.code == .lockHeld {
                    if let left = error.retryAfter { soonest = min(soonest ?? left, left) }
                } catch  where error.code == .quorumUnreachable {
                    unreachable = error
                }
            }
            let failure =
                unreachable
                ?? RedlockError(.lockHeld, "all \(permits) permits of \(name) are held", retryAfter: soonest)
            guard let deadline, clock.now < deadline - .milliseconds(1) else { throw failure }
            guard let membership = watching else {
                // Watch the slots, then sweep again at once: a release before the watch began
                // has left its slot free for that sweep, and one after it is announced.
                watching = await redlock.watchReleases(of: slots, until: deadline)
                continue
            }
            let fallback = min(soonest ?? redlock.configuration.retry.delay, redlock.configuration.wakeUps.longestSleep)
            _ = try await redlock.wakeUps.sleepUnlessCancelled(
                membership,
                fallback: Waiting.nioDeadline(min(deadline, clock.now + fallback)),
                while: "waiting for a permit"
            )
        }
    }

    /// Runs `body` while holding one permit, kept alive and released as
    /// ``Redlock/withLock(_:ttl:wait:retry:fencing:lockDelay:_:)-(String,_,_,_,_,_,_)`` keeps
    /// and releases its lock (the body is cancelled if the permit is lost).
    public func withPermit<Value: Sendable>(
        ttl: Duration,
        wait: Duration? = nil,
        fencing: Bool? = nil,
        _ body: @escaping @Sendable (LockHandle) async throws -> Value
    ) async throws -> Value {
        let permit = try await acquire(ttl: ttl, wait: wait, fencing: fencing)
        return try await redlock.withLock(holding: permit, body)
    }
}

extension Redlock {
    /// ``Semaphore/init(_:permits:on:)`` over this client's masters. On Linux, Glibc declares
    /// a `Semaphore` too: where both are visible, this spares naming the type.
    public func semaphore(_ name: String, permits: Int) throws(RedlockError) -> Semaphore {
        try Semaphore(name, permits: permits, on: self)
    }
}
