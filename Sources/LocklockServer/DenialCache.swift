import Synchronization

/// What the shared rate limit said about identities it turned away, remembered here until the
/// moment it would let them in again: a flood from one identity costs the masters one check per
/// allowed request, not one per refusal. Never lets anyone in (only the masters do), so the
/// rate shared by every replica still holds.
///
/// Memory is bounded: at most `maximumKeys` identities; when full, the lapsed ones are dropped
/// first, and an identity that still finds no room is simply not remembered.
final class DenialCache: Sendable {
    private let until = Mutex<[String: ContinuousClock.Instant]>([:])
    private let maximumKeys: Int

    /// Creates a cache of at most `maximumKeys` identities.
    init(maximumKeys: Int = 100_000) { self.maximumKeys = max(maximumKeys, 1) }

    /// How long `key` is still refused, or nil when the masters must be asked.
    func refusal(for key: String, now: ContinuousClock.Instant = .now) -> Duration? {
        until.withLock { table in
            guard let end = table[key] else { return nil }
            guard end > now else {
                table[key] = nil
                return nil
            }
            return end - now
        }
    }

    /// Remembers that the masters refuse `key` for `duration` from now.
    func refuse(_ key: String, for duration: Duration, now: ContinuousClock.Instant = .now) {
        guard duration > .zero else { return }
        until.withLock { table in
            if table[key] == nil, table.count >= maximumKeys {
                table = table.filter { $0.value > now }
                guard table.count < maximumKeys else { return }
            }
            table[key] = now + duration
        }
    }

    /// How many identities it remembers now.
    var count: Int { until.withLock { $0.count } }
}
