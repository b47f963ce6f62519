import CoreMetrics
import Logging
import NIOCore
import RedisWire

extension Redlock {

    /// Acquires a lock on one resource.
    ///
    /// - Parameters:
    ///   - resource: any non-empty name; it reaches Redis only as one key argument.
    ///   - ttl: how long the masters keep the lock if it is never released (>= 1 ms).
    ///   - value: the value stored on the masters; by default 128 random bits from the
    ///     system CSPRNG. Supply your own only if it is unique per acquisition.
    ///   - wait: overall deadline for this acquisition, overriding the retry policy's.
    ///   - retry: the retry policy for this call; the configuration's when nil
    ///     (``RedlockConfiguration/Retry/never`` tries once).
    ///   - fencing: whether to hand out fencing tokens; the configuration's when nil.
    ///   - lockDelay: how much longer than `ttl` the masters keep the keys. The validity is
    ///     still computed from `ttl`, and ``release(_:)`` frees the lock at once; only a holder
    ///     that died or stopped extending leaves the lock unusable for this long after its
    ///     validity, so that its late writes land while nobody holds the lock.
    /// - Throws: ``RedlockError`` with code ``RedlockError/Code/lockHeld``,
    ///   ``RedlockError/Code/quorumUnreachable``, ``RedlockError/Code/validityExhausted``,
    ///   ``RedlockError/Code/invalidArgument`` or ``RedlockError/Code/cancelled``.
    public func acquire(
        _ resource: String,
        ttl: Duration,
        value: [UInt8]? = nil,
        wait: Duration? = nil,
        retry: RedlockConfiguration.Retry? = nil,
        fencing: Bool? = nil,
        lockDelay: Duration = .zero
    ) async throws(RedlockError) -> Lock {
        try await acquire([resource], ttl: ttl, value: value, wait: wait, retry: retry, fencing: fencing, lockDelay: lockDelay)
    }

    /// Acquires one lock over several resources, all or nothing on each master: either every
    /// resource is locked on a master or none is. Two multi-resource locks that share any
    /// resource never both succeed.
    public func acquire(
        _ resources: [String],
        ttl: Duration,
        value: [UInt8]? = nil,
        wait: Duration? = nil,
        retry: RedlockConfiguration.Retry? = nil,
        fencing: Bool? = nil,
        lockDelay: Duration = .zero
    ) async throws(RedlockError) -> Lock {
        try await acquire(resources, ttl: ttl, value: value, wait: wait, retry: retry, fencing: fencing, lockDelay: lockDelay, access: nil)
    }

    /// ``acquire(_:ttl:value:wait:retry:fencing:lockDelay:)-([String],_,_,_,_,_,_)``, traced
    /// and tracked; `access` makes it a read-write lock's (see ``ReadWriteLock``).
    func acquire(
        _ resources: [String],
        ttl: Duration,
        value: [UInt8]?,
        wait: Duration?,
        retry: RedlockConfiguration.Retry?,
        fencing: Bool?,
        lockDelay: Duration,
        access: ReadWriteAccess?
    ) async throws(RedlockError) -> Lock {
        try await traced("acquire", resources) { () async throws(RedlockError) -> Lock in
            try await tracked { () async throws(RedlockError) -> Lock in
                try await acquireUntracked(
                    resources,
                    ttl: ttl,
                    value: value,
                    wait: wait,
                    retry: retry,
                    fencing: fencing,
                    lockDelay: lockDelay,
                    access: access
                )
            }
        }
    }

    /// The acquisition behind every public one; `access` makes it a read-write lock's.
    func acquireUntracked(
        _ resources: [String],
        ttl: Duration,
        value: [UInt8]?,
        wait: Duration?,
        retry: RedlockConfiguration.Retry?,
        fencing: Bool?,
        lockDelay: Duration = .zero,
        access: ReadWriteAccess? = nil
    ) async throws(RedlockError) -> Lock {
        let retry = retry ?? configuration.retry
        // Readers share: a fencing token would order nothing among them.
        let fenced = access?.mode == .read ? false : fencing ?? configuration.fencing
        try validate(resources: resources, ttl: ttl, lockDelay: lockDelay)
        guard (Duration.zero...Self.longestDuration).contains(lockDelay) else {
            throw RedlockError(.invalidArgument, "lock delay must be between 0 and ten years")
        }
        guard value?.isEmpty != true else { throw RedlockError(.invalidArgument, "lock value must not be empty") }
        let suppliedValue = value
        let clock = ContinuousClock()
        let maximumWait = wait ?? retry.maximumWait
        if let maximumWait, !(Duration.zero...Self.longestDuration).contains(maximumWait) {
            throw RedlockError(.invalidArgument, "wait must be between 0 and ten years")
        }
        let deadline = maximumWait.map { clock.now + $0 }
        let keys = AcquisitionKeys(redlock: self, resources: resources, fenced: fenced, access: access)
        let keyLifetime = ttl + lockDelay
        var waiting = Waiting(redlock: self, keys: keys, deadline: deadline, retry: retry)
        do throws(RedlockError) {
            try await waiting.lineUpBehindLocalWaiters()
        } catch {
            waiting.leave(holding: nil)
            throw error
        }
        var attempt = 0
        while true {
            attempt += 1
            metrics.attempts.increment()
            let started = clock.now
            // A fresh value for every attempt: a late SET of an earlier attempt, which no release
            // can be sure to have followed, then never counts as this attempt's grant.
            let value = suppliedValue ?? Self.randomValue()
            let asWaiter = waiting.attemptArguments()
            let outcome = await onLoop {
                self.attempt(
                    resources: resources,
                    keys: keys,
                    value: value,
                    ttl: ttl,
                    keyLifetime: keyLifetime,
                    waiter: asWaiter,
                    completion: $0
                )
            }
            metrics.acquireLatency.recordNanoseconds((clock.now - started).nanoseconds)
            switch outcome {
            case .success(var lock):
                waiting.leave(holding: keyLifetime)
                if let access, lock.votes.contains(where: { $0 != .granted }) {
                    // A master outside the quorum may have refused this writer, now or in an
                    // earlier attempt, and marked it as waiting: that marker would turn
                    // readers away there until it lapsed.
                    forgetWriter(access)
                }
                lock.attempts = attempt
                lock.lockDelay = lockDelay
                lock.isShared = access?.mode == .read
                metrics.acquired.increment()
                logger.debug("lock acquired", metadata: ["redlock.resource": "\(resources.joined(separator: ","))", "redlock.attempt": "\(attempt)"])
                return lock
            case .failure(let error):
                record(error)
                let retriesLeft = deadline == nil ? attempt <= retry.count : true
                guard retriesLeft, !isClosing else {
                    waiting.leave(holding: nil)
                    throw error
                }
                var delay = retryDelay(retry, afterFailure: attempt)
                if let deadline {
                    // The last attempt is made at the deadline rather than skipped.
                    let left = deadline - clock.now
                    guard left > .milliseconds(1) else {
                        waiting.leave(holding: nil)
                        throw error
                    }
                    delay = min(delay, left)
                }
                do throws(RedlockError) {
                    try await waiting.pause(after: error, retryDelay: delay)
                } catch {
                    waiting.leave(holding: nil)
                    throw error
                }
            }
        }
    }

    /// One attempt, entirely on the event loop: SET (fenced: with a candidate token for every
    /// master's fence) on every master, compute the validity, and on failure release
    /// everywhere. Calls `completion` once, on the loop. The keys live `keyLifetime` (the TTL
    /// plus any lock delay); the validity is computed from `ttl`. A `waiter` attempt also
    /// leaves a wait marker where the lock is held (see ``WakeUpHub``). When only fences that
    /// were already past the candidate stood between the attempt and a quorum, it is made
    /// again at once above the highest fence reported (`fenceRetries` counts those).
    func attempt(
        resources: [String],
        keys: AcquisitionKeys,
        value: [UInt8],
        ttl: Duration,
        keyLifetime: Duration,
        waiter: WaiterArguments?,
        fenceRetries: Int = 0,
        completion: @escaping @Sendable (Result<Lock, RedlockError>) -> Void
    ) {
        let start = ContinuousClock.now
        let quorum = group.quorum
        let count = group.count
        let lockKeys = keys.lockKeys
        let ttlArgument = Array(String(keyLifetime.millisecondsRoundedUp).utf8)
        let deadline = instanceDeadline()
        let candidate = keys.fences == nil ? nil : nextFencingCandidate()
        // A reader's value is an entry of the readers' set, not a key's value: no trailer.
        let stored = keys.access?.mode == .read ? value : StoredValue.encode(value, token: candidate)
        let candidateArgument = Array(String(candidate ?? 0).utf8)
        let command: FanOutCommand
        do throws(RedlockError) {
            if let access = keys.access {
                let waitMarker = waiter.map { wakeUps.markerLifetime($0.membership) ?? .seconds(1) } ?? .zero
                command = try access.acquireCommand(keys: keys, value: stored, ttl: ttlArgument, candidate: candidateArgument, waitMarker: waitMarker)
            } else if let waiter {
                let markerLifetime = wakeUps.markerLifetime(waiter.membership) ?? .seconds(1)
                let othersLifetime = wakeUps.markerLifetime(waiter.membership, others: true) ?? .zero
                command = try .script(
                    Scripts.acquireWaiting,
                    keys: lockKeys + keys.waitKeys + keys.watchKeys + [keys.priorityKey, keys.queueKey] + (keys.fences.map { [$0] } ?? []),
                    arguments: [
                        stored, ttlArgument, candidateArgument, Array(String(lockKeys.count).utf8),
                        Array(String(markerLifetime.millisecondsRoundedUp).utf8), waiter.membership.token,
                        Array((waiter.claimsPriority ? "1" : "0").utf8),
                        Array(String(configuration.wakeUps.priorityClaimSlack.millisecondsRoundedUp).utf8),
                        Array(String(othersLifetime.millisecondsRoundedUp).utf8),
                        Array(String(waiter.membership.queueLease(queueLease).millisecondsRoundedUp).utf8),
                        waiter.membership.arrival, Array((waiter.mayBeQueued ? "1" : "0").utf8),
                    ]
                )
            } else if let fences = keys.fences, let candidate {
                if lockKeys.count == 1 && fenceRetries == 0 {
                    command = try FencedTransaction.command(
                        lockKey: lockKeys[0],
                        stored: stored,
                        ttl: ttlArgument,
                        fences: fences,
                        candidate: candidate,
                        watchKey: keys.watchKeys[0]
                    )
                } else {
                    // The script reports the fence that refuses a candidate, which the transaction cannot.
                    command = try .script(
                        Scripts.acquireFenced,
                        keys: lockKeys + keys.watchKeys + [fences],
                        arguments: [stored, ttlArgument, candidateArgument]
                    )
                }
            } else if lockKeys.count == 1 {
                command = try .plain([Self.set, lockKeys[0], stored, Self.nx, Self.px, ttlArgument])
            } else {
                command = try .script(Scripts.acquireMany, keys: lockKeys, arguments: [stored, ttlArgument])
            }
        } catch {
            completion(.failure(error))
            return
        }
        if candidate != nil { pruneFencesIfDue() }
        // Decided as soon as a quorum granted or too few masters are left that could: a split
        // vote (a rival holds some masters) is otherwise settled only by the last masters, and
        // when those are paused or partitioned every contender would wait for the instance
        // timeout before retrying.
        group.fanOut(
            command,
            shuffled: true,
            granting: keyLifetime,
            deadline: deadline,
            lateReplyGrace: configuration.lateReplyGrace,
            until: QuorumTally.isDecided(acquisitionReplies:)
        ) { replies in
            let tally = QuorumTally(acquisitionReplies: replies)
            var refusedCandidates = 0
            var watched: [Int] = []
            for (index, reply) in replies.enumerated() {
                switch reply {
                case .failure(let error)? where error.serverErrorPrefix == "LOWFENCE":
                    refusedCandidates += 1
                    if let fence = error.message.split(separator: " ").last.flatMap({ Int64($0) }) { self.raiseFencingFloor(to: fence) }
                case .failure(let error)?:
                    self.metrics.masterError(index, code: error.code.description)
                case .success(.array(let parts))?:
                    switch FencedTransaction.outcome(parts) {
                    case .candidateRefused?: refusedCandidates += 1
                    case .granted(watched: true)?: watched.append(index)
                    default: break
                    }
                default:
                    break
                }
            }
            guard tally.outcome == .acquired else {
                if refusedCandidates > 0, tally.number(of: .granted) + refusedCandidates >= quorum, fenceRetries < 3 {
                    // Only fences already past the candidate (another client's clock is ahead,
                    // or it burned numbers) kept the quorum: try again above them.
                    self.releaseAfterFailure(keys: keys, value: value, votes: tally.votes, replies: replies, keyLifetime: keyLifetime) {
                        self.attempt(
                            resources: resources,
                            keys: keys,
                            value: value,
                            ttl: ttl,
                            keyLifetime: keyLifetime,
                            waiter: waiter,
                            fenceRetries: fenceRetries + 1,
                            completion: completion
                        )
                    }
                    return
                }
                let error =
                    tally.outcome == .held
                    ? RedlockError(.lockHeld, "resource is held by another owner", retryAfter: tally.retryAfter, votes: tally.votes)
                    : RedlockError(
                        .quorumUnreachable,
                        "\(tally.number(of: .failed)) of \(count) masters failed; \(quorum) needed" + self.whyMastersAreOut(replies),
                        retryAfter: Self.timeUntilHeldOutMastersRestoreAQuorum(replies, quorum: quorum),
                        votes: tally.votes
                    )
                self.releaseAfterFailure(keys: keys, value: value, votes: tally.votes, replies: replies, keyLifetime: keyLifetime) {
                    completion(.failure(error))
                }
                return
            }
            let elapsed = ContinuousClock.now - start
            let validity = Validity.remaining(ttl: ttl, elapsed: elapsed, driftFactor: self.configuration.driftFactor)
            guard validity > .zero else {
                let error = RedlockError(.validityExhausted, "acquisition took \(elapsed), no validity left of a \(ttl) TTL", votes: tally.votes)
                self.releaseAfterFailure(keys: keys, value: value, votes: tally.votes, replies: replies, keyLifetime: keyLifetime) {
                    completion(.failure(error))
                }
                return
            }
            if !watched.isEmpty, let announce = try? FanOutCommand.plain([Self.publish, lockKeys[0], Self.acquiredMessage]) {
                self.group.fanOut(announce, to: watched, deadline: self.instanceDeadline()) { _ in }
            }
            let validUntil = start + ttl - Validity.drift(ttl: ttl, driftFactor: self.configuration.driftFactor)
            let tokens = candidate.map { Array(repeating: $0, count: lockKeys.count) } ?? []
            var lock = Lock(resources: resources, fencingTokens: tokens, ttl: ttl, validity: validity, validUntil: validUntil, value: value)
            lock.votes = tally.votes
            if let waiter {
                // Where it did not win, the waiter's entry (and claim) would otherwise linger.
                self.forget(waiter.membership, keys: keys, on: tally.votes.indices.filter { tally.votes[$0] != .granted })
            }
            completion(.success(lock))
        }
    }

    private static let publish = Array("PUBLISH".utf8)
    private static let acquiredMessage = Array("a".utf8)
    /// Forgets a waiter on `masters` (all when nil): its priority claim and its queue entry.
    /// Best effort: an entry left behind lapses at the waiter's deadline, a claim at its slack.
    func forget(_ membership: WakeUpHub.Membership, keys: AcquisitionKeys, on masters: [Int]? = nil) {
        guard masters?.isEmpty != true,
            let command = try? FanOutCommand.script(
                Scripts.forgetWaiter,
                keys: [keys.priorityKey, keys.queueKey],
                arguments: [membership.token, membership.arrival]
            )
        else { return }
        sendWithoutWaiting(command, to: masters)
    }

    /// Sends `command` to `masters` (all when nil) from whatever thread, without waiting for
    /// the replies: for best-effort clean-up.
    func sendWithoutWaiting(_ command: FanOutCommand, to masters: [Int]? = nil) {
        let send: @Sendable () -> Void = { self.group.fanOut(command, to: masters, deadline: self.instanceDeadline()) { _ in } }
        if group.eventLoop.inEventLoop { send() } else { group.eventLoop.execute(send) }
    }

    /// Releases on every master that may hold our value: those that granted it, and those
    /// that failed or have not answered yet (the SET may have landed). A master that refused
    /// provably did not set it. Calls `then` once the masters that granted (which are
    /// responsive) have answered the release.
    ///
    /// Where the SET may have landed (granted, not answered, or failed after it was sent) and
    /// the release does not succeed, it is retried in the background, with backoff, until it
    /// does or the key has expired (`keyLifetime`, at most ``longestCleanUp``): a missed
    /// clean-up would otherwise keep the key, and the lock from everyone, for its lifetime.
    func releaseAfterFailure(
        keys: AcquisitionKeys,
        value: [UInt8],
        votes: [RedlockError.Vote],
        replies: Replies,
        keyLifetime: Duration,
        then: @escaping @Sendable () -> Void
    ) {
        var targets: [Int] = []
        var responsive: [Int] = []
        for (index, vote) in votes.enumerated() {
            switch vote {
            case .heldByAnother: continue
            case .granted:
                targets.append(index)
                responsive.append(index)
            case .failed, .pending: targets.append(index)
            }
        }
        // Not announced: a contender's partial grant going away frees nothing a quorum held,
        // and announcing it would wake every waiter into another round of contention.
        guard !targets.isEmpty, let release = try? keys.releaseCommand(value: value, mode: Self.exactMode, announce: false) else {
            then()
            return
        }
        // Until the key expires, but not for longer than `longestCleanUp`: a master down that
        // long either comes back without the key (no persistence) or is one vote of several.
        let expiry = NIODeadline.now() + .nanoseconds(min(keyLifetime, Self.longestCleanUp).nanoseconds)
        let awaited = Countdown(responsive.count, then: then)
        for index in targets {
            let mayHoldOurKey = Self.mayHaveLanded(replies[index])
            let isAwaited = responsive.contains(index)
            group.fanOut(release, to: [index], deadline: instanceDeadline()) { replies in
                if isAwaited { awaited.countDown() }
                if mayHoldOurKey, !Self.cleanedUp(replies[index]) {
                    self.retryCleanUp(release, master: index, until: expiry, after: .milliseconds(50))
                }
            }
        }
        if responsive.isEmpty { then() }
    }

    /// The longest a failed attempt's clean-up is retried.
    static let longestCleanUp = Duration.seconds(600)

    /// Whether an acquisition's command may have set the key, given its reply: granted, not
    /// answered, or failed once it may have been sent; not when it was refused, or never sent.
    static func mayHaveLanded(_ reply: Result<RESPValue, RedisWireError>?) -> Bool {
        guard case .failure(let error)? = reply else { return true }
        return [.timeout, .connectionClosed, .protocolError].contains(error.code)
    }

    /// Whether a clean-up's reply settles it: the release ran, or the client was closed.
    private static func cleanedUp(_ reply: Result<RESPValue, RedisWireError>?) -> Bool {
        switch reply {
        case .success?: true
        case .failure(let error)?: error.code == .closed || error.code == .serverError
        case nil: false
        }
    }

    /// Sends `release` to master `index` again after `delay`, doubling it up to 1 s, until it
    /// runs or `expiry` passes.
    private func retryCleanUp(_ release: FanOutCommand, master index: Int, until expiry: NIODeadline, after delay: TimeAmount) {
        guard NIODeadline.now() + delay < expiry else { return }
        group.eventLoop.scheduleTask(in: delay) {
            // Not on the lock's critical path: a timeout long enough for a distant master.
            let deadline = NIODeadline.now() + .nanoseconds(max(self.configuration.instanceTimeout, .milliseconds(250)).nanoseconds)
            self.group.fanOut(release, to: [index], deadline: deadline) { replies in
                guard !Self.cleanedUp(replies[index]) else { return }
                self.retryCleanUp(release, master: index, until: expiry, after: min(delay * 2, .seconds(1)))
            }
        }
    }
}

/// Calls `then` once `count` count-downs have come (never when `count` is 0). Confined to the
/// masters' event loop.
private final class Countdown: @unchecked Sendable {
    // @unchecked: counted down only on the masters' event loop.
    private var remaining: Int
    private let then: @Sendable () -> Void

    init(_ count: Int, then: @escaping @Sendable () -> Void) {
        remaining = count
        self.then = then
    }

    func countDown() {
        remaining -= 1
        if remaining == 0 { then() }
    }
}

/// Every key one acquisition touches, built once for all its attempts.
struct AcquisitionKeys: Sendable {
    let lockKeys: [[UInt8]]
    /// The fences (see ``Redlock/fencesKey``); nil for an unfenced lock.
    let fences: [UInt8]?
    /// Markers that make a release publish: somebody waits, somebody watches.
    let waitKeys: [[UInt8]]
    let watchKeys: [[UInt8]]
    /// The first resource's priority claim and waiter queue (see ``WakeUpHub``).
    let priorityKey: [UInt8]
    let queueKey: [UInt8]
    /// Set for a read-write lock's acquisition.
    let access: ReadWriteAccess?

    init(redlock: Redlock, resources: [String], fenced: Bool, access: ReadWriteAccess? = nil) {
        self.access = access
        lockKeys = resources.map(redlock.lockKey)
        fences = fenced ? redlock.fencesKey : nil
        waitKeys = resources.map { redlock.key(redlock.waitPrefix, $0) }
        watchKeys = resources.map { redlock.key(redlock.watchPrefix, $0) }
        priorityKey = redlock.key(redlock.priorityPrefix, resources[0])
        queueKey = redlock.key(redlock.queuePrefix, resources[0])
    }

    /// The compare-and-delete of these locks; with `fencingToken`, only where the value
    /// carries that token. `announce`: publish the release to waiters and watchers.
    func releaseCommand(
        value: [UInt8],
        mode: [UInt8],
        announce: Bool = true,
        fencingToken: Int64? = nil
    ) throws(RedlockError) -> FanOutCommand {
        let announcement = Array((announce ? "1" : "0").utf8)
        if let access, access.mode == .read {
            return try .script(
                Scripts.releaseRead,
                keys: [lockKeys[0], access.readersKey, waitKeys[0], watchKeys[0]],
                arguments: [value, announcement]
            )
        }
        var arguments = [value, mode, Array(String(lockKeys.count).utf8), announcement]
        let keys = lockKeys + waitKeys + watchKeys + [queueKey, priorityKey]
        if let fencingToken { arguments.append(StoredValue.trailer(token: fencingToken)) }
        return try .script(Scripts.release, keys: keys, arguments: arguments)
    }
}

/// What a waiter's attempt adds: who it is, whether it claims priority, and whether an
/// earlier attempt of it was refused (and so queued it on the masters).
struct WaiterArguments: Sendable {
    let membership: WakeUpHub.Membership
    let claimsPriority: Bool
    let mayBeQueued: Bool
}

/// How one acquisition spends the time between its attempts: asleep for the retry delay, or
/// (with wake-ups on) queued in the ``WakeUpHub`` until a release is announced, its fallback
/// timer fires or its deadline comes.
struct Waiting {
    let redlock: Redlock
    let keys: AcquisitionKeys
    let deadline: ContinuousClock.Instant?
    let retry: RedlockConfiguration.Retry
    private var membership: WakeUpHub.Membership?
    /// Wake-ups in a row after which the attempt failed: past the policy's limit the waiter
    /// claims priority.
    private var lostWakeUps = 0
    private var lastWake: WakeUpHub.Wake?
    /// Whether a waiter's attempt of this acquisition has failed: it may be in the masters'
    /// queues, and its success must take it out.
    private var refusedAsWaiter = false
    /// A read lock's waiter: it shares, so it listens for releases rather than queueing
    /// behind this client's other readers.
    private var shares: Bool { keys.access?.mode == .read }

    init(redlock: Redlock, keys: AcquisitionKeys, deadline: ContinuousClock.Instant?, retry: RedlockConfiguration.Retry) {
        self.redlock = redlock
        self.keys = keys
        self.deadline = deadline
        self.retry = retry
    }

    /// For the next attempt: nil until the acquisition has queued (its first attempt is as
    /// cheap as an uncontended one).
    func attemptArguments() -> WaiterArguments? {
        membership.map {
            WaiterArguments(
                membership: $0,
                claimsPriority: lostWakeUps >= redlock.configuration.wakeUps.priorityAfterLostWakeUps,
                mayBeQueued: refusedAsWaiter
            )
        }
    }

    /// Before the first attempt of a caller that may wait: when this client is subscribed to
    /// the resources already, queue now, so that the first attempt is a waiter's (it queues on
    /// the masters if refused), and behind this client's waiters, sleeping until it is this
    /// one's turn, rather than overtaking them.
    mutating func lineUpBehindLocalWaiters() async throws(RedlockError) {
        let hub = redlock.wakeUps
        guard redlock.configuration.wakeUps.isEnabled, !shares, deadline != nil || retry.count > 0, hub.hasSubscriptions else { return }
        let until = deadline ?? estimatedDeadline(retryDelay: retry.delay)
        guard let joined = await hub.joinIfSubscribed(channels: keys.lockKeys, deadline: Self.nioDeadline(until)) else { return }
        membership = joined
        guard await !hub.isHead(joined) else { return }
        lastWake = try await hub.sleepUnlessCancelled(joined, fallback: Self.nioDeadline(until), while: Self.activity)
    }

    /// Waits before the next attempt, after `error`; `retryDelay` is the policy's delay (already
    /// capped at the deadline).
    mutating func pause(after error: RedlockError, retryDelay: Duration) async throws(RedlockError) {
        let policy = redlock.configuration.wakeUps
        guard policy.isEnabled else {
            do {
                try await Task.sleep(for: retryDelay)
            } catch {
                throw RedlockError(.cancelled, "cancelled while \(Self.activity)")
            }
            return
        }
        // A wake, by a release or by the fallback timer, followed by a refusal is lost: a waiter
        // whose releases always name someone else (a crashed waiter's queue entry) wakes only
        // by its timer, and must still reach the claim.
        if lastWake == .woken || lastWake == .timer {
            lostWakeUps = error.code == .lockHeld ? lostWakeUps + 1 : lostWakeUps
        }
        if membership != nil { refusedAsWaiter = true }
        let hub = redlock.wakeUps
        if membership == nil {
            // Subscribed before the marked attempt: a release after that attempt is announced
            // to us, and one before it leaves the lock free for it.
            let until = deadline ?? estimatedDeadline(retryDelay: retryDelay)
            let joined = await hub.join(channels: keys.lockKeys, watcher: shares, deadline: Self.nioDeadline(until))
            membership = joined
            if await hub.isHead(joined) {
                lastWake = nil
                return
            }
        }
        guard let membership else { return }
        // Without a wait deadline the policy's delay is the fallback; with one, the holder's
        // remaining time (a key that expires announces nothing), with jitter.
        var fallback = retryDelay
        if error.votes.contains(.granted) {
            // A split vote: the rival's partial grants are being released, unannounced.
            fallback = min(retryDelay, .milliseconds(Int64.random(in: 2...30)))
        } else if let deadline, error.code == .lockHeld, let holderLeft = error.retryAfter {
            let jitter = Duration.milliseconds(Int64.random(in: 1...max(holderLeft.millisecondsRoundedUp / 10, 2)))
            fallback = min(holderLeft + jitter, policy.longestSleep, deadline - .now)
        }
        // Never longer: the waiter's place in the masters' queues lasts until its next attempt
        // (see `Redlock.queueLease`).
        fallback = min(fallback, policy.longestSleep)
        lastWake = try await hub.sleepUnlessCancelled(membership, fallback: Self.nioDeadline(.now + fallback), while: Self.activity)
    }

    private static let activity = "waiting to retry the acquisition"

    /// Without a wait deadline, when the retries will be over: for the wait markers and the
    /// queue entry (the count is capped: a policy may retry "forever").
    private func estimatedDeadline(retryDelay: Duration) -> ContinuousClock.Instant {
        .now + min(max(retryDelay, retry.delay + retry.jitter), .seconds(60)) * (min(max(retry.count, 0), 1_000) + 1)
    }

    /// Leaves the queue; `holding` when this acquisition took the lock for that long. A waiter
    /// that gives up also leaves the masters' queue, so that no release names it.
    mutating func leave(holding: Duration?) {
        // A writer of a read-write lock that gives up may have left its waiting marker where it
        // was refused (one that acquired took it down where it was granted; see the caller).
        if holding == nil, let access = keys.access { redlock.forgetWriter(access) }
        guard let membership else { return }
        redlock.wakeUps.leave(membership, holding: holding)
        if holding == nil { redlock.forget(membership, keys: keys) }
        self.membership = nil
    }

    static func nioDeadline(_ instant: ContinuousClock.Instant) -> NIODeadline {
        .now() + .nanoseconds(max((instant - .now).nanoseconds, 0))
    }
}
