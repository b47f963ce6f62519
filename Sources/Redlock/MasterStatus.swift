import RedisWire

/// One master's standing in the vote (see ``Redlock/masterStatus()``).
public struct MasterStatus: Sendable, Equatable {
    /// Whether the master votes, and if not why.
    public enum State: Sendable, Equatable {
        /// It votes.
        case voting
        /// It may have lost writes it acknowledged (it restarted without them, or was promoted
        /// from a replica) and is kept out of votes until `until`, when every grant it may have
        /// forgotten has expired; `until` is nil while the other masters' evidence is read.
        case heldOut(until: ContinuousClock.Instant?, reason: String)
        /// It cannot be reached or identified now.
        case unreachable(reason: String)
    }

    /// The master's address.
    public var master: RedisServerAddress
    /// Its standing.
    public var state: State

    /// Creates a status.
    public init(master: RedisServerAddress, state: State) {
        self.master = master
        self.state = state
    }

    /// How long until `quorum` of `statuses` vote, counting the held-out masters as they
    /// rejoin: zero when they vote now, nil when it depends on masters whose return is unknown.
    public static func timeUntilQuorum(_ statuses: [MasterStatus], quorum: Int, now: ContinuousClock.Instant = .now) -> Duration? {
        let rejoining = statuses.compactMap { status -> Duration? in
            if case .heldOut(let until?, _) = status.state { return max(until - now, .zero) }
            return nil
        }
        return timeUntil(quorum, voting: statuses.count { $0.state == .voting }, rejoiningIn: rejoining)
    }

    /// How long until `quorum` masters vote when `voting` do now and the held-out ones rejoin
    /// after `rejoiningIn`: zero when enough vote, nil when too few are due back.
    static func timeUntil(_ quorum: Int, voting: Int, rejoiningIn rejoining: [Duration]) -> Duration? {
        let needed = quorum - voting
        guard needed > 0 else { return .zero }
        guard rejoining.count >= needed else { return nil }
        return rejoining.sorted()[needed - 1]
    }
}
