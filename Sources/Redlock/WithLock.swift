import Logging
import Synchronization

/// What the body of ``Redlock/withLock(_:ttl:wait:retry:fencing:lockDelay:_:)-(String,_,_,_,_,_,_)`` sees of its lock while it
/// runs: the lock as the background extensions keep it.
public final class LockHandle: Sendable {
    private let state: Mutex<(lock: Lock, lost: Bool)>

    package init(_ lock: Lock) { state = Mutex((lock, false)) }

    /// The lock as of its last extension.
    public var lock: Lock { state.withLock { $0.lock } }
    /// The fencing token of the (first) resource; pass it to the protected resource. Nil only
    /// when fencing is turned off in the configuration.
    public var fencingToken: Int64? { lock.fencingToken }
    /// One fencing token per resource.
    public var fencingTokens: [Int64] { lock.fencingTokens }
    /// Validity left now, as of the last successful extension.
    public var remainingValidity: Duration { lock.remainingValidity }
    /// Whether the lock was lost (the body is being cancelled).
    public var isLost: Bool { state.withLock { $0.lost } }

    func update(_ lock: Lock) { state.withLock { $0.lock = lock } }
    func markLost() { state.withLock { $0.lost = true } }
}

extension Redlock {
    /// Runs `body` while holding a lock on `resource`, and releases it on every exit path.
    ///
    /// While the body runs, the lock is extended in the background every
    /// ``RedlockConfiguration/autoExtendInterval`` (ttl / 3 by default). If it cannot be kept
    /// (a quorum says it is gone, or extensions keep failing until little validity is left),
    /// the body's task is cancelled before the validity runs out, and `withLock` throws
    /// ``RedlockError/Code/lockLost`` once the body has returned. Bodies should check for
    /// cancellation (`try Task.checkCancellation()`, or any cancellable `await`).
    ///
    /// `fencing` and `lockDelay` are as in ``acquire(_:ttl:value:wait:retry:fencing:lockDelay:)-(String,_,_,_,_,_,_)``.
    ///
    /// The body escapes into a child task of its own, unlike valkey's `withConnection`: only a
    /// child task can be cancelled when the lock is lost while the caller's task waits, and it
    /// lets the body run off the masters' event loop whatever executor the caller prefers.
    ///
    /// - Throws: the acquisition's ``RedlockError``, ``RedlockError/Code/lockLost``, or what
    ///   the body throws.
    public func withLock<Value: Sendable>(
        _ resource: String,
        ttl: Duration,
        wait: Duration? = nil,
        retry: RedlockConfiguration.Retry? = nil,
        fencing: Bool? = nil,
        lockDelay: Duration = .zero,
        _ body: @escaping @Sendable (LockHandle) async throws -> Value
    ) async throws -> Value {
        try await withLock([resource], ttl: ttl, wait: wait, retry: retry, fencing: fencing, lockDelay: lockDelay, body)
    }

    /// ``withLock(_:ttl:wait:retry:fencing:lockDelay:_:)-(String,_,_,_,_,_,_)`` over several resources at once (all or nothing).
    public func withLock<Value: Sendable>(
        _ resources: [String],
        ttl: Duration,
        wait: Duration? = nil,
        retry: RedlockConfiguration.Retry? = nil,
        fencing: Bool? = nil,
        lockDelay: Duration = .zero,
        _ body: @escaping @Sendable (LockHandle) async throws -> Value
    ) async throws -> Value {
        let lock = try await acquire(resources, ttl: ttl, wait: wait, retry: retry, fencing: fencing, lockDelay: lockDelay)
        return try await withLock(holding: lock, body)
    }

    /// Runs `body` with `lock`, already acquired, kept alive as ``withLock(_:ttl:wait:retry:fencing:lockDelay:_:)-(String,_,_,_,_,_,_)``
    /// keeps its lock, and released on every exit path.
    func withLock<Value: Sendable>(holding lock: Lock, _ body: @escaping @Sendable (LockHandle) async throws -> Value) async throws -> Value {
        let resources = lock.resources
        let handle = LockHandle(lock)
        let outcome: Result<Value, any Error> = await withTaskGroup(of: Step<Value>.self) { group in
            // The body never inherits the masters' event loop as its executor (a caller that
            // prefers it for speed): a blocking body would stall every master connection.
            group.addTask(executorPreference: globalConcurrentExecutor) {
                do { return .finished(.success(try await body(handle))) } catch { return .finished(.failure(error)) }
            }
            group.addTask {
                await self.keepAlive(handle) ? .lost : .keepAliveStopped
            }
            var lost = false
            var result: Result<Value, any Error>?
            while let step = await group.next() {
                switch step {
                case .finished(let finished):
                    result = finished
                    group.cancelAll()
                case .lost:
                    lost = true
                    group.cancelAll()
                case .keepAliveStopped:
                    break
                }
            }
            if lost {
                return .failure(RedlockError(.lockLost, "the lock could not be kept; the body was cancelled"))
            }
            return result ?? .failure(RedlockError(.cancelled, "cancelled"))
        }
        do {
            if try await release(handle.lock) != .released, case .success = outcome {
                // The lock went (expired, evicted, deleted) between two extensions, or the body
                // ran past its validity: it finished without the protection it asked for.
                logger.warning(
                    "lock was no longer held when the body finished",
                    metadata: ["redlock.resource": "\(resources.joined(separator: ","))"]
                )
                throw RedlockError(.lockLost, "the lock was no longer held when the body finished")
            }
        } catch let error as RedlockError where error.code == .lockLost {
            throw error
        } catch {
            logger.warning("release after withLock failed; the lock will expire", metadata: ["redlock.reason": "\(error)"])
        }
        return try outcome.get()
    }

    private enum Step<Value: Sendable>: Sendable {
        case finished(Result<Value, any Error>)
        case lost
        case keepAliveStopped
    }

    /// Extends `handle`'s lock until the calling task is cancelled: the one auto-extension
    /// that `withLock`, `locklock run` and the idempotency middleware share.
    ///
    /// Extends every ``RedlockConfiguration/autoExtendInterval`` (ttl / 3 by default), retries
    /// a failed extension soon, and gives up (marks the handle lost and returns true) when a
    /// quorum says the lock is gone or when extensions keep failing until a margin before the
    /// validity ends: max(ttl / 10, 2 × instance timeout), at most ttl / 3. Returns false when
    /// cancelled.
    package func keepAlive(_ handle: LockHandle) async -> Bool {
        let clock = ContinuousClock()
        while true {
            let lock = handle.lock
            let interval = configuration.autoExtendInterval ?? lock.ttl / 3
            // Give up early enough that the body can react before the validity runs out, but
            // never extend back to back: with a TTL near twice the instance timeout the give-up
            // point can come before the next extension would.
            let margin = min(max(lock.ttl / 10, configuration.instanceTimeout * 2), lock.ttl / 3)
            let giveUpAt = lock.validUntil - margin
            var nextExtension = max(min(clock.now + interval, giveUpAt), clock.now + max(interval / 2, .milliseconds(1)))
            while true {
                do {
                    try await Task.sleep(until: nextExtension, clock: clock)
                } catch {
                    return false  // cancelled: the body finished
                }
                do {
                    handle.update(try await extend(lock, ttl: lock.ttl))
                    break
                } catch  where error.code == .lockLost || error.code == .invalidArgument {
                    handle.markLost()
                    logger.warning("lock lost while the body ran", metadata: ["redlock.resource": "\(lock.resources.joined(separator: ","))"])
                    return true
                } catch {
                    if clock.now >= giveUpAt {
                        handle.markLost()
                        logger.warning(
                            "lock could not be extended in time",
                            metadata: [
                                "redlock.resource": "\(lock.resources.joined(separator: ","))", "redlock.reason": "\(error.code)",
                            ]
                        )
                        return true
                    }
                    // Transient: try again soon, but never past the give-up point.
                    nextExtension = min(clock.now + max(min(interval / 4, .milliseconds(100)), .milliseconds(5)), giveUpAt)
                }
            }
        }
    }
}
