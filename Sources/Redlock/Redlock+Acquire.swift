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
    /// - Throws: ``RedlockError`` with code ``RedlockError/Code/lockHeld``,
    ///   ``RedlockError/Code/quorumUnreachable``, ``RedlockError/Code/validityExhausted``,
    ///   ``RedlockError/Code/invalidArgument`` or ``RedlockError/Code/cancelled``.
    public func acquire(
        _ resource: String,
        ttl: Duration,
        value: [UInt8]? = nil,
        wait: Duration? = nil,
        retry: RedlockConfiguration.Retry? = nil,
        fencing: Bool? = nil
    ) async throws(RedlockError) -> Lock {
        try await acquire([resource], ttl: ttl, value: value, wait: wait, retry: retry, fencing: fencing)
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
        fencing: Bool? = nil
    ) async throws(RedlockError) -> Lock {
        try await traced("acquire", resources) { () async throws(RedlockError) -> Lock in
            try await tracked { () async throws(RedlockError) -> Lock in
                try await acquireUntracked(resources, ttl: ttl, value: value, wait: wait, retry: retry, fencing: fencing)
            }
        }
    }

    func acquireUntracked(
        _ resources: [String],
        ttl: Duration,
        value: [UInt8]?,
        wait: Duration?,
        retry: RedlockConfiguration.Retry?,
        fencing: Bool?
    ) async throws(RedlockError) -> Lock {
        let retry = retry ?? configuration.retry
        let fenced = fencing ?? configuration.fencing
        try validate(resources: resources, ttl: ttl)
        guard value?.isEmpty != true else { throw RedlockError(.invalidArgument, "lock value must not be empty") }
        let suppliedValue = value
        let clock = ContinuousClock()
        let maximumWait = wait ?? retry.maximumWait
        if let maximumWait, !(Duration.zero...Self.longestDuration).contains(maximumWait) {
            throw RedlockError(.invalidArgument, "wait must be between 0 and ten years")
        }
        let deadline = maximumWait.map { clock.now + $0 }
        let lockKeys = resources.map(lockKey)
        let fenceKeys = fenced ? resources.map(fenceKey) : []
        var attempt = 0
        while true {
            attempt += 1
            metrics.attempts.increment()
            let started = clock.now
            // A fresh value for every attempt: a late SET of an earlier attempt, which no release
            // can be sure to have followed, then never counts as this attempt's grant.
            let value = suppliedValue ?? Self.randomValue()
            let outcome = await onLoop {
                self.attempt(resources: resources, lockKeys: lockKeys, fenceKeys: fenceKeys, value: value, ttl: ttl, completion: $0)
            }
            metrics.acquireLatency.recordNanoseconds((clock.now - started).nanoseconds)
            switch outcome {
            case .success(var lock):
                lock.attempts = attempt
                metrics.acquired.increment()
                logger.debug("lock acquired", metadata: ["redlock.resource": "\(resources.joined(separator: ","))", "redlock.attempt": "\(attempt)"])
                return lock
            case .failure(let error):
                record(error)
                let retriesLeft = deadline == nil ? attempt <= retry.count : true
                guard retriesLeft, !isClosing else { throw error }
                var delay = retryDelay(retry, afterFailure: attempt)
                if let deadline {
                    // The last attempt is made at the deadline rather than skipped.
                    let left = deadline - clock.now
                    guard left > .milliseconds(1) else { throw error }
                    delay = min(delay, left)
                }
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw RedlockError(.cancelled, "cancelled while waiting to retry the acquisition")
                }
            }
        }
    }

    /// One attempt, entirely on the event loop: SET-with-fence on every master, raise lagging
    /// fencing counters, compute the validity, and on failure release everywhere. Calls
    /// `completion` once, on the loop.
    func attempt(
        resources: [String],
        lockKeys: [[UInt8]],
        fenceKeys: [[UInt8]],
        value: [UInt8],
        ttl: Duration,
        completion: @escaping @Sendable (Result<Lock, RedlockError>) -> Void
    ) {
        let start = ContinuousClock.now
        let quorum = group.quorum
        let count = group.count
        let ttlArgument = Array(String(ttl.millisecondsRoundedUp).utf8)
        let deadline = instanceDeadline()
        let command: FanOutCommand
        do throws(RedlockError) {
            if !fenceKeys.isEmpty {
                let seed = Array(String(Self.fencingSeed()).utf8)
                command = try .script(Scripts.acquireFenced, keys: lockKeys + fenceKeys, arguments: [value, ttlArgument, retentionArgument, seed])
            } else if lockKeys.count == 1 {
                command = try .plain([Self.set, lockKeys[0], value, Self.nx, Self.px, ttlArgument])
            } else {
                command = try .script(Scripts.acquireMany, keys: lockKeys, arguments: [value, ttlArgument])
            }
        } catch {
            completion(.failure(error))
            return
        }
        // Decided as soon as a quorum granted or too few masters are left that could: a split
        // vote (a rival holds some masters) is otherwise settled only by the last masters, and
        // when those are paused or partitioned every contender would wait for the instance
        // timeout before retrying.
        group.fanOut(
            command,
            shuffled: true,
            deadline: deadline,
            lateReplyGrace: configuration.lateReplyGrace,
            until: QuorumTally.isDecided(acquisitionReplies:)
        ) { replies in
            let tally = QuorumTally(acquisitionReplies: replies)
            var granted: [(index: Int, tokens: [Int64])] = []
            for (index, reply) in replies.enumerated() {
                switch reply {
                case .failure(let error)?:
                    self.metrics.masterError(index, code: error.code.description)
                case .success(let value)? where tally.votes[index] == .granted:
                    granted.append((index, value.array?.map { $0.integer ?? 0 } ?? []))
                default:
                    break
                }
            }
            guard tally.outcome == .acquired else {
                let error =
                    tally.outcome == .held
                    ? RedlockError(.lockHeld, "resource is held by another owner", retryAfter: tally.retryAfter, votes: tally.votes)
                    : RedlockError(
                        .quorumUnreachable,
                        "\(tally.number(of: .failed)) of \(count) masters failed; \(quorum) needed",
                        votes: tally.votes
                    )
                self.releaseAfterFailure(lockKeys: lockKeys, value: value, votes: tally.votes) { completion(.failure(error)) }
                return
            }
            var tokens = [Int64](repeating: 0, count: fenceKeys.count)
            for entry in granted {
                for (slot, token) in entry.tokens.enumerated() where slot < tokens.count { tokens[slot] = max(tokens[slot], token) }
            }
            let finalTokens = tokens
            let conclude: @Sendable (Int) -> Void = { confirmed in
                let elapsed = ContinuousClock.now - start
                let validity = Validity.remaining(ttl: ttl, elapsed: elapsed, driftFactor: self.configuration.driftFactor)
                if confirmed < quorum {
                    let error = RedlockError(.quorumUnreachable, "fencing counters could not be raised on a quorum", votes: tally.votes)
                    self.releaseAfterFailure(lockKeys: lockKeys, value: value, votes: tally.votes) { completion(.failure(error)) }
                    return
                }
                guard validity > .zero else {
                    let error = RedlockError(.validityExhausted, "acquisition took \(elapsed), no validity left of a \(ttl) TTL", votes: tally.votes)
                    self.releaseAfterFailure(lockKeys: lockKeys, value: value, votes: tally.votes) { completion(.failure(error)) }
                    return
                }
                let validUntil = start + ttl - Validity.drift(ttl: ttl, driftFactor: self.configuration.driftFactor)
                var lock = Lock(resources: resources, fencingTokens: finalTokens, ttl: ttl, validity: validity, validUntil: validUntil, value: value)
                lock.votes = tally.votes
                completion(.success(lock))
            }
            let lagging = fenceKeys.isEmpty ? [] : granted.filter { $0.tokens != finalTokens }.map(\.index)
            if lagging.isEmpty {
                conclude(granted.count)
                return
            }
            // Masters of the quorum whose counters are behind the token we hand out must catch
            // up, or a later quorum that overlaps only them could hand out a lower one.
            let raiseArguments = tokens.map { Array(String($0).utf8) } + [self.retentionArgument]
            guard let raise = try? FanOutCommand.script(Scripts.raiseCounters, keys: fenceKeys, arguments: raiseArguments) else {
                completion(.failure(RedlockError(.invalidArgument, "cannot encode command")))
                return
            }
            let grantedCount = granted.count
            self.group.fanOut(raise, to: lagging, deadline: self.instanceDeadline()) { raiseReplies in
                conclude(grantedCount - lagging.count + lagging.filter { if case .success? = raiseReplies[$0] { true } else { false } }.count)
            }
        }
    }

    /// Releases on every master that may hold our value: those that granted it, and those
    /// that failed or have not answered yet (the SET may have landed). A master that refused
    /// provably did not set it. Calls `then` once the masters that granted (which are
    /// responsive) have answered the release.
    func releaseAfterFailure(lockKeys: [[UInt8]], value: [UInt8], votes: [RedlockError.Vote], then: @escaping @Sendable () -> Void) {
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
        guard !targets.isEmpty, let release = try? FanOutCommand.script(Scripts.release, keys: lockKeys, arguments: [value, Self.exactMode]) else {
            then()
            return
        }
        let awaited = responsive
        group.fanOut(
            release,
            to: targets,
            deadline: instanceDeadline(),
            until: { replies in awaited.allSatisfy { replies[$0] != nil } },
            then: { _ in if !awaited.isEmpty { then() } }
        )
        if awaited.isEmpty { then() }
    }
}
