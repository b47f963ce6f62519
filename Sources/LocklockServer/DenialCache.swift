import Synchronization

/// What the shared rate limit said about identities it turned away, remembered here until the
/// moment it would let them in again: a flood from one identity costs the masters about one
/// check per allowed request, not one per refusal. Never lets anyone in (only the masters do),
/// so the rate shared by every replica still holds.
///
/// When a refusal ends, the first request asks the masters (a probe) while the others that
/// arrive before its answer are refused here, as the masters would refuse all but one of
/// them; a probe that never answers stops standing in the way after ``probeTimeout``.
///
/// Memory is bounded: at most `maximumKeys` identities; when full, the lapsed ones are dropped
/// first, and an identity that still finds no room is simply not remembered.
final class DenialCache: Sendable {
    /// What to do with a request.
    enum Verdict: Equatable {
        /// Ask the masters.
        case ask
        /// Refuse it here: the masters would, for this long yet.
        case refused(Duration)
    }

    /// How long other requests are refused while a probe asks the masters.
    static let probeTimeout = Duration.seconds(1)

    private let until = Mutex<[String: ContinuousClock.Instant]>([:])
    private let maximumKeys: Int

    /// Creates a cache of at most `maximumKeys` identities.
    init(maximumKeys: Int = 100_000) { self.maximumKeys = max(maximumKeys, 1) }

    /// Whether to ask the masters about `key`'s request; a request told to ask after a
    /// refusal ended is the probe, and must ``settle(_:refusedFor:now:)`` it.
    func verdict(for key: String, now: ContinuousClock.Instant = .now) -> Verdict {
        until.withLock { table in
            guard let end = table[key] else { return .ask }
            guard end <= now else { return .refused(end - now) }
            table[key] = now + Self.probeTimeout
            return .ask
        }
    }

    /// Records the masters' answer about `key`: refused for `duration` from now (zero: the next
    /// request would be allowed, nothing to remember); nil when they did not answer.
    func settle(_ key: String, refusedFor duration: Duration?, now: ContinuousClock.Instant = .now) {
        until.withLock { table in
            guard let duration, duration > .zero else {
                table[key] = nil
                return
            }
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
