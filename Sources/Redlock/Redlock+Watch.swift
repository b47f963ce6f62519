import NIOCore
import RedisWire

extension Redlock {

    /// Waits until the lock on `resource` differs from the state the caller saw, or until
    /// `timeout` has passed, and returns the state then (a blocking query, as in Consul).
    ///
    /// - Parameters:
    ///   - resource: the lock's resource name.
    ///   - seenToken: the fencing token of the holder the caller saw, or nil if it saw the
    ///     lock free. With a token, this returns once the lock is no longer held under that
    ///     token (released, expired, or held by a later acquisition); with nil, once it is held.
    ///   - timeout: the longest to wait; zero answers at once.
    ///
    /// Releases and fenced acquisitions are announced to the watcher while it waits; expiry,
    /// and an unfenced acquisition of a free lock, are seen by its fallback timer (the
    /// holder's remaining time, or the wake-up policy's longest sleep).
    public func watch(_ resource: String, seenToken: Int64?, timeout: Duration) async throws(RedlockError) -> LockState {
        guard (Duration.zero...Self.longestDuration).contains(timeout) else {
            throw RedlockError(.invalidArgument, "timeout must be between 0 and ten years")
        }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let changed: (LockState) -> Bool = { state in
            guard let seenToken else { return state.isHeld }
            return !(state.isHeld && state.fencingToken == seenToken)
        }
        var state = try await inspect(resource)
        guard !changed(state), timeout > .zero else { return state }
        let membership = await watchReleases(of: [resource], until: deadline)
        defer { wakeUps.leave(membership, holding: nil) }
        while true {
            // Inspected again once marked: a change before the marker was set is seen here.
            state = try await inspect(resource)
            if changed(state) || clock.now >= deadline { return state }
            var fallback = configuration.wakeUps.longestSleep
            if state.isHeld, let left = state.timeToLive { fallback = min(fallback, left + .milliseconds(Int64.random(in: 1...20))) }
            _ = try await wakeUps.sleepUnlessCancelled(
                membership,
                fallback: Waiting.nioDeadline(min(deadline, clock.now + fallback)),
                while: "watching the lock"
            )
        }
    }

    /// Starts watching `resources` until `instant`: their releases and fenced acquisitions are
    /// announced to the returned watcher (leave it when done).
    func watchReleases(of resources: [String], until instant: ContinuousClock.Instant) async -> WakeUpHub.Membership {
        let keys = AcquisitionKeys(redlock: self, resources: resources, fenced: false)
        let membership = await wakeUps.join(channels: keys.lockKeys, watcher: true, deadline: Waiting.nioDeadline(instant))
        let lifetime = Array(String((max(instant - .now, .zero) + .seconds(1)).millisecondsRoundedUp).utf8)
        _ = await onLoop { (completion: @escaping @Sendable (Result<Void, RedlockError>) -> Void) in
            guard let mark = try? FanOutCommand.script(Scripts.markWatched, keys: keys.watchKeys, arguments: [lifetime]) else {
                return completion(.success(()))
            }
            self.group.fanOut(mark, deadline: self.instanceDeadline()) { _ in completion(.success(())) }
        }
        return membership
    }
}
