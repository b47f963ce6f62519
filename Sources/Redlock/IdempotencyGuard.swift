import Logging

/// Runs an operation once per idempotency key across every process that shares the masters.
///
/// - ``Mode/atMostOnce(retention:)``: the first caller for a key runs the operation. Its
///   marker is never released, and records the state: running, done, or outcome unknown.
///   Later callers (until `retention` passes) get ``Outcome/inProgress(retryAfter:)`` while it
///   runs, ``Outcome/alreadyPerformed`` once it is done, and ``Outcome/outcomeUnknown`` when
///   it failed in a way that may have come after its effect. Only an operation that throws
///   ``NotPerformed`` frees the key for a retry. Use it to handle an at-least-once event at
///   most once.
/// - ``Mode/exclusive(ttl:)``: one caller per key at a time; a concurrent retry with the same
///   key gets ``Outcome/inProgress(retryAfter:)``. The lock is released when the operation ends,
///   so a later retry runs again (pair it with a stored result to replay, as the
///   Idempotency-Key middleware does).
///
/// The guard takes its locks without fencing tokens: the operation never sees one, and a
/// fenced lock would leave a fence per idempotency key on every master for
/// ``RedlockConfiguration/fencingCounterRetention``, besides costing a transaction per call.
///
/// At most once holds only while the masters keep their data: run them with
/// `appendfsync always` and `maxmemory-policy noeviction` (Docs/operations.md).
public struct IdempotencyGuard: Sendable {
    /// How keys are guarded.
    public enum Mode: Sendable {
        /// The marker is never released (it expires after `retention`), except when the
        /// operation throws ``NotPerformed``.
        case atMostOnce(retention: Duration)
        /// Held (and auto-extended) only while the operation runs.
        case exclusive(ttl: Duration)
    }

    /// What happened to one call.
    public enum Outcome<Value: Sendable>: Sendable {
        /// This call ran the operation.
        case performed(Value)
        /// At-most-once: another call already ran the operation for this key to completion.
        case alreadyPerformed
        /// Another call is running the operation for this key right now (it may still fail);
        /// retry after `retryAfter` if known.
        case inProgress(retryAfter: Duration?)
        /// At-most-once: an earlier call's operation failed after it may have taken effect (a
        /// timeout, a dropped connection). The guard will not run it again; reconcile by hand.
        case outcomeUnknown
    }

    /// Thrown by an operation to say that it certainly had no effect, so the key is freed
    /// and a retry may run the operation again. The guard rethrows `underlying`.
    public struct NotPerformed: Error, Sendable {
        /// Why the operation did not run.
        public var underlying: any Error & Sendable
        /// Wraps the reason the operation did not run.
        public init(_ underlying: any Error & Sendable) { self.underlying = underlying }
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

    /// The marker's states, as the prefix of its value.
    enum Marker: String, CaseIterable {
        case running, done, unknown

        func value(_ id: [UInt8]) -> [UInt8] { Array("\(rawValue):".utf8) + id }

        init?(value: [UInt8]) {
            guard let state = Self.allCases.first(where: { value.starts(with: Array("\($0.rawValue):".utf8)) }) else { return nil }
            self = state
        }
    }

    /// Runs `operation` under the guard for `key`.
    ///
    /// - Throws: ``RedlockError`` when the masters cannot be reached (the operation did not
    ///   run), ``RedlockError/Code/lockLost`` if an exclusive lock was lost mid-operation, or
    ///   what the operation throws (the underlying error of ``NotPerformed``).
    public func run<Value: Sendable>(
        key: String,
        _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Outcome<Value> {
        let resource = namespace + key
        switch mode {
        case .atMostOnce(let retention):
            let marker: Lock
            switch try await acquireOrFindMarker(resource, ttl: retention) {
            case .acquired(let lock): marker = lock
            case .found(let state):
                switch state {
                case .done: return .alreadyPerformed
                case .unknown: return .outcomeUnknown
                case .running, nil: return .inProgress(retryAfter: nil)
                }
            }
            let value: Value
            do {
                value = try await operation()
            } catch let notPerformed as NotPerformed {
                _ = try? await redlock.release(marker)
                throw notPerformed.underlying
            } catch {
                // It may have failed after its effect: never run it again.
                _ = try? await redlock.relabel(marker, to: Marker.unknown.value(Redlock.randomValue()))
                throw error
            }
            do {
                _ = try await redlock.relabel(marker, to: Marker.done.value(Redlock.randomValue()))
            } catch {
                // Still "running" on the masters: later callers get inProgress, never a rerun.
                redlock.logger.warning("could not mark an idempotency key done", metadata: ["redlock.reason": "\(error.code)"])
            }
            return .performed(value)
        case .exclusive(let ttl):
            do {
                let value = try await redlock.withLock(resource, ttl: ttl, retry: RedlockConfiguration.Retry.never, fencing: false) { _ in
                    do {
                        return try await operation()
                    } catch {
                        throw OperationFailed(error: error)
                    }
                }
                return .performed(value)
            } catch let failed as OperationFailed {
                throw failed.error
            } catch let error as RedlockError where error.code == .lockHeld {
                let state = try? await redlock.inspect(resource)
                return .inProgress(retryAfter: state?.remaining)
            }
        }
    }

    /// Carries the operation's own error past `withLock`, so that it is never taken for the
    /// guard's.
    private struct OperationFailed: Error, @unchecked Sendable {
        // @unchecked: `any Error` from a @Sendable closure; it is only rethrown.
        let error: any Error
    }

    private enum MarkerSearch {
        case acquired(Lock)
        case found(Marker?)
    }

    /// Acquires the marker for `resource`, or returns the state of the one a quorum holds.
    ///
    /// "Held" from a failed attempt is not enough: when several callers race, each can win a
    /// minority (a split vote), all release, and none runs the operation. So a held result is
    /// confirmed with a quorum read; if nobody holds the marker the attempt is repeated, for
    /// at most two seconds.
    private func acquireOrFindMarker(_ resource: String, ttl: Duration) async throws(RedlockError) -> MarkerSearch {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(2)
        while true {
            do {
                let running = Marker.running.value(Redlock.randomValue())  // fresh for every attempt
                return .acquired(
                    try await redlock.acquire(resource, ttl: ttl, value: running, retry: RedlockConfiguration.Retry.never, fencing: false)
                )
            } catch  where error.code == .lockHeld {
                let state = try await redlock.inspect(resource)
                if state.isHeld { return .found(state.holderValue.flatMap(Marker.init(value:))) }
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
