import CoreMetrics
import NIOCore
import RedisWire

extension Redlock {

    /// Releases a lock: compare-and-delete on every master, so a key holding another owner's
    /// value is never deleted.
    ///
    /// - Returns: ``ReleaseOutcome/released``, or ``ReleaseOutcome/notHeld`` when the lock had
    ///   already expired: whatever ran after its validity was not protected.
    /// - Throws: ``RedlockError/Code/quorumUnreachable`` when too few masters answered to tell.
    @discardableResult
    public func release(_ lock: Lock) async throws(RedlockError) -> ReleaseOutcome {
        let outcome = try await release(lock.resources, matching: .exact(lock.value), shared: lock.isShared)
        return outcome == .released && lock.remainingValidity <= .zero ? .releasedAfterValidity : outcome
    }

    /// Releases the lock on `resources` if it holds `value` (for callers that supply their own
    /// values, such as the HTTP adapter).
    @discardableResult
    public func release(_ resources: [String], value: [UInt8]) async throws(RedlockError) -> ReleaseOutcome {
        try await release(resources, matching: .exact(value))
    }

    /// Releases the lock on `resources` where the stored value matches `match`.
    @discardableResult
    ///
    /// With `fencingToken`, for one resource, a master deletes the key only while its value
    /// carries that token: a delayed release of an earlier acquisition cannot delete a later
    /// one that reused its value (or its value's prefix).
    /// `shared`: the value is a reader's entry of the ``ReadWriteLock`` named `resources[0]`.
    package func release(
        _ resources: [String],
        matching match: ValueMatch,
        fencingToken: Int64? = nil,
        shared: Bool = false
    ) async throws(RedlockError) -> ReleaseOutcome {
        try await traced("release", resources) { () async throws(RedlockError) -> ReleaseOutcome in
            try await tracked { () async throws(RedlockError) -> ReleaseOutcome in
                try await releaseUntracked(resources, matching: match, fencingToken: fencingToken, shared: shared)
            }
        }
    }

    func releaseUntracked(
        _ resources: [String],
        matching match: ValueMatch,
        fencingToken: Int64? = nil,
        shared: Bool = false
    ) async throws(RedlockError) -> ReleaseOutcome {
        let value = match.bytes
        let mode = match.mode
        guard !resources.isEmpty, !resources.contains(where: \.isEmpty) else {
            throw RedlockError(.invalidArgument, "resource names must not be empty")
        }
        guard fencingToken == nil || resources.count == 1 else {
            throw RedlockError(.invalidArgument, "a fencing token names one resource's acquisition")
        }
        guard !shared || (resources.count == 1 && fencingToken == nil) else {
            throw RedlockError(.invalidArgument, "a reader holds one read-write lock, unfenced")
        }
        let access = shared ? ReadWriteAccess(redlock: self, name: resources[0], mode: .read) : nil
        let keys = AcquisitionKeys(redlock: self, resources: resources, fenced: false, access: access)
        let release = try keys.releaseCommand(value: value, mode: mode, fencingToken: fencingToken)
        let quorum = group.quorum
        let result: Result<ReleaseOutcome, RedlockError> = await onLoop { completion in
            // Decided as soon as a quorum deleted it or too few can still have: a paused or
            // black-holed master costs the caller nothing (the command still reaches it).
            let decided: @Sendable (Replies) -> Bool = { replies in
                var deleted = 0
                var kept = 0
                for case .success(let value)? in replies {
                    if (value.integer ?? 0) > 0 { deleted += 1 } else { kept += 1 }
                }
                return deleted >= quorum || kept > replies.count - quorum
            }
            self.group.fanOut(release, deadline: self.instanceDeadline(), until: decided) { replies in
                var deleted = 0
                var answered = 0
                for reply in replies {
                    guard case .success(let value)? = reply else { continue }
                    answered += 1
                    if (value.integer ?? 0) > 0 { deleted += 1 }
                }
                if deleted >= quorum {
                    completion(.success(.released))
                } else if answered >= quorum {
                    completion(.success(.notHeld))
                } else {
                    completion(.failure(RedlockError(.quorumUnreachable, "only \(answered) of \(replies.count) masters answered the release")))
                }
            }
        }
        switch result {
        case .success(let outcome):
            (outcome == .released ? metrics.released : metrics.releaseNotHeld).increment()
            return outcome
        case .failure(let error):
            throw error
        }
    }

    /// Replaces the value of a lock we hold with `newValue`, keeping its TTL (for markers that
    /// record a state, as ``IdempotencyGuard`` does). Throws ``RedlockError/Code/lockLost``
    /// when fewer than a quorum still held `lock`'s value.
    func relabel(_ lock: Lock, to newValue: [UInt8]) async throws(RedlockError) -> Lock {
        try await tracked { () async throws(RedlockError) -> Lock in try await relabelUntracked(lock, to: newValue) }
    }

    func relabelUntracked(_ lock: Lock, to newValue: [UInt8]) async throws(RedlockError) -> Lock {
        let key = lockKey(lock.resource)
        let quorum = group.quorum
        let result: Result<Int, RedlockError> = await onLoop { completion in
            guard let relabel = try? FanOutCommand.script(Scripts.relabel, keys: [key], arguments: [lock.value, newValue]) else {
                completion(.failure(RedlockError(.invalidArgument, "cannot encode command")))
                return
            }
            self.group.fanOut(relabel, deadline: self.instanceDeadline()) { replies in
                completion(
                    .success(
                        replies.reduce(0) { count, reply in
                            if case .success(.integer(1))? = reply { return count + 1 }
                            return count
                        }
                    )
                )
            }
        }
        guard try result.get() >= quorum else {
            throw RedlockError(.lockLost, "fewer than a quorum still held the marker")
        }
        return Lock(
            resources: lock.resources,
            fencingTokens: lock.fencingTokens,
            ttl: lock.ttl,
            validity: lock.validity,
            validUntil: lock.validUntil,
            value: newValue
        )
    }
}
