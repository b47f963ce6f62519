/// Runs an operation once per idempotency key across every process that shares the masters.
///
/// - ``Mode/atMostOnce(retention:releaseOnFailure:)``: the first caller for a key runs the
///   operation; the lock is never released, so every later caller (until `retention` passes)
///   gets ``Outcome/alreadyPerformed``. Use it to handle an at-least-once event at most once.
/// - ``Mode/exclusive(ttl:)``: one caller per key at a time; a concurrent retry with the same
///   key gets ``Outcome/inProgress``. The lock is released when the operation ends, so a later
///   retry runs again (pair it with a stored result to replay, as the Idempotency-Key
///   middleware does).
///
/// The guard takes its locks without fencing tokens: the operation never sees one, and a
/// fenced lock would leave a counter key per idempotency key on every master for
/// ``RedlockConfiguration/fencingCounterRetention``, besides costing a Lua script per call.
public struct IdempotencyGuard: Sendable {
    /// How keys are guarded.
    public enum Mode: Sendable {
        /// Never released; `releaseOnFailure` lets a retry run again when the operation threw.
        case atMostOnce(retention: Duration, releaseOnFailure: Bool = false)
        /// Held (and auto-extended) only while the operation runs.
        case exclusive(ttl: Duration)
    }

    /// What happened to one call.
    public enum Outcome<Value: Sendable>: Sendable {
        /// This call ran the operation.
        case performed(Value)
        /// At-most-once: another call already ran (or is running) the operation for this key.
        case alreadyPerformed
        /// Exclusive: another call holds the key right now; retry after `retryAfter` if known.
        case inProgress(retryAfter: Duration?)
    }

    /// The lock client.
    public let redlock: Redlock
    /// The guarding mode.
    public let mode: Mode
    /// Prefix added to every key so guards do not collide with other locks.
    public let namespace: String

    /// Creates a guard.
    public init(redlock: Redlock, mode: Mode, namespace: String = "idempotency:") {
        self.redlock = redlock
        self.mode = mode
        self.namespace = namespace
    }

    /// Runs `operation` under the guard for `key`.
    ///
    /// - Throws: ``RedlockError`` when the masters cannot be reached (the operation did not
    ///   run), ``RedlockError/Code/lockLost`` if an exclusive lock was lost mid-operation, or
    ///   what the operation throws.
    public func run<Value: Sendable>(
        key: String,
        _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Outcome<Value> {
        let resource = namespace + key
        switch mode {
        case .atMostOnce(let retention, let releaseOnFailure):
            guard let lock = try await acquireOrFindDone(resource, ttl: retention) else { return .alreadyPerformed }
            do {
                return .performed(try await operation())
            } catch {
                if releaseOnFailure { _ = try? await redlock.release(lock) }
                throw error
            }
        case .exclusive(let ttl):
            do {
                return .performed(try await redlock.withLock(resource, ttl: ttl, retry: RedlockConfiguration.Retry.never, fencing: false) { _ in try await operation() })
            } catch let error as RedlockError where error.code == .lockHeld {
                let state = try? await redlock.inspect(resource)
                return .inProgress(retryAfter: state?.remaining)
            }
        }
    }

    /// Acquires the marker for `resource`, or returns nil when a quorum says it is already
    /// held (the operation ran or is running).
    ///
    /// "Held" from a failed attempt is not enough: when several callers race, each can win a
    /// minority (a split vote), all release, and none runs the operation. So a held result is
    /// confirmed with a quorum read; if nobody holds the marker the attempt is repeated, for
    /// at most two seconds.
    private func acquireOrFindDone(_ resource: String, ttl: Duration) async throws(RedlockError) -> Lock? {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(2)
        while true {
            do {
                return try await redlock.acquire(resource, ttl: ttl, retry: RedlockConfiguration.Retry.never, fencing: false)
            } catch where error.code == .lockHeld {
                if try await redlock.inspect(resource).isHeld { return nil }
                guard clock.now < deadline else { throw error }
                do {
                    try await Task.sleep(for: .milliseconds(Int64.random(in: 5...25)))
                } catch {
                    throw RedlockError(.cancelled, "cancelled while retrying after a split vote")
                }
            }
        }
    }
}
