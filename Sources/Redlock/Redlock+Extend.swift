import CoreMetrics
import NIOCore
import RedisWire

extension Redlock {

    /// Extends a lock to a new TTL from now, on a quorum of masters. Masters that lost the key
    /// (restarted) are re-seeded only when the quorum still holds our value.
    ///
    /// - Throws: ``RedlockError/Code/lockLost`` when a quorum no longer holds our value or no
    ///   validity would be left; ``RedlockError/Code/quorumUnreachable`` when too few masters
    ///   answered to tell.
    public func extend(_ lock: Lock, ttl: Duration) async throws(RedlockError) -> Lock {
        try await extend(lock, match: .exact(lock.value), ttl: ttl)
    }

    /// Extends the lock on `resources` whose stored value matches `match` to a new TTL from
    /// now (the keys live `lockDelay` longer); returns the new validity. A master that lost the key is re-seeded only for an
    /// exact match (a prefix does not say what to write back).
    ///
    /// With `fencingToken`, for one resource, a master extends the key only while its value
    /// carries that token (see ``release(_:matching:fencingToken:shared:)``).
    package func extend(
        _ resources: [String],
        matching match: ValueMatch,
        fencingToken: Int64? = nil,
        ttl: Duration,
        lockDelay: Duration = .zero
    ) async throws(RedlockError) -> Duration {
        guard fencingToken == nil || resources.count == 1 else {
            throw RedlockError(.invalidArgument, "a fencing token names one resource's acquisition")
        }
        guard (Duration.zero...Self.longestDuration).contains(lockDelay) else {
            throw RedlockError(.invalidArgument, "lock delay must be between 0 and ten years")
        }
        var probe = Lock(
            resources: resources,
            fencingTokens: fencingToken.map { [$0] } ?? [],
            ttl: ttl,
            validity: .zero,
            validUntil: .now,
            value: match.bytes
        )
        probe.lockDelay = lockDelay
        return try await extend(probe, match: match, fencingToken: fencingToken, ttl: ttl).validity
    }

    func extend(_ lock: Lock, match: ValueMatch, fencingToken: Int64? = nil, ttl: Duration) async throws(RedlockError) -> Lock {
        try await traced("extend", lock.resources) { () async throws(RedlockError) -> Lock in
            try await tracked { () async throws(RedlockError) -> Lock in
                try await extendUntracked(lock, match: match, fencingToken: fencingToken, ttl: ttl)
            }
        }
    }

    func extendUntracked(_ lock: Lock, match: ValueMatch, fencingToken: Int64? = nil, ttl: Duration) async throws(RedlockError) -> Lock {
        try validate(resources: lock.resources, ttl: ttl, lockDelay: lock.lockDelay)
        let result = await onLoop { self.extendOnLoop(lock, match: match, fencingToken: fencingToken, ttl: ttl, completion: $0) }
        switch result {
        case .success(let lock):
            metrics.extended.increment()
            return lock
        case .failure(let error):
            if error.code == .lockLost { metrics.extendLost.increment() }
            throw error
        }
    }

    func extendOnLoop(
        _ lock: Lock,
        match: ValueMatch,
        fencingToken: Int64? = nil,
        ttl: Duration,
        completion: @escaping @Sendable (Result<Lock, RedlockError>) -> Void
    ) {
        let start = ContinuousClock.now
        let quorum = group.quorum
        let keys = lock.resources.map(lockKey)
        // The keys outlive the validity by the lock's delay, as at acquisition.
        let ttlArgument = Array(String((ttl + lock.lockDelay).millisecondsRoundedUp).utf8)
        let command: FanOutCommand
        do throws(RedlockError) {
            if lock.isShared {
                let readers = ReadWriteAccess(redlock: self, name: lock.resource, mode: .read).readersKey
                command = try .script(Scripts.extendRead, keys: [readers], arguments: [match.bytes, ttlArgument])
            } else if let fencingToken {
                command = try .script(
                    Scripts.extend,
                    keys: keys,
                    arguments: [match.bytes, ttlArgument, match.mode, StoredValue.trailer(token: fencingToken)]
                )
            } else {
                command = try .script(Scripts.extend, keys: keys, arguments: [match.bytes, ttlArgument, match.mode])
            }
        } catch {
            completion(.failure(error))
            return
        }
        // Decided once a quorum extended, or too many refused or failed for a quorum to.
        let decided: @Sendable (Replies) -> Bool = { replies in
            var extended = 0
            var refused = 0
            for case let reply? in replies {
                if case .success(.integer(1)) = reply { extended += 1 } else { refused += 1 }
            }
            return extended >= quorum || refused > replies.count - quorum
        }
        group.fanOut(command, granting: ttl + lock.lockDelay, deadline: instanceDeadline(), until: decided) { replies in
            var extended = 0
            var answered = 0
            var missing: [Int] = []
            for (index, reply) in replies.enumerated() {
                guard case .success(let value)? = reply else {
                    if case .failure(let error)? = reply { self.metrics.masterError(index, code: error.code.description) }
                    continue
                }
                answered += 1
                switch value.integer {
                case .some(1): extended += 1
                case .some(-1): missing.append(index)
                default: break
                }
            }
            let elapsed = ContinuousClock.now - start
            let validity = Validity.remaining(ttl: ttl, elapsed: elapsed, driftFactor: self.configuration.driftFactor)
            guard extended >= quorum else {
                let error =
                    answered >= quorum
                    ? RedlockError(.lockLost, "only \(extended) of \(replies.count) masters still hold the lock")
                    : RedlockError(.quorumUnreachable, "only \(answered) of \(replies.count) masters answered the extension")
                completion(.failure(error))
                return
            }
            guard validity > .zero else {
                completion(.failure(RedlockError(.lockLost, "extension took \(elapsed), no validity left")))
                return
            }
            let extendedLock = lock.with(
                validity: validity,
                validUntil: start + ttl - Validity.drift(ttl: ttl, driftFactor: self.configuration.driftFactor),
                ttl: ttl
            )
            // A restarted master lost the fences too: raised back to the token with our value.
            let reseedKeys = lock.fencingToken == nil ? keys : keys + [self.fencesKey]
            let token = lock.fencingToken.map { [Array(String($0).utf8)] } ?? []
            let stored = StoredValue.encode(lock.value, token: lock.fencingToken)
            guard !missing.isEmpty, case .exact = match, !lock.isShared,
                let reseed = try? FanOutCommand.script(Scripts.reseed, keys: reseedKeys, arguments: [stored, ttlArgument] + token)
            else {
                completion(.success(extendedLock))
                return
            }
            self.group.fanOut(reseed, to: missing, granting: ttl + lock.lockDelay, deadline: self.instanceDeadline()) { _ in
                completion(.success(extendedLock))
            }
        }
    }
}
