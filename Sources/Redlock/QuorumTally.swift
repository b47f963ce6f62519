import RedisWire

/// The quorum decision of one acquisition attempt, from each master's vote so far. Pure: no
/// I/O and no clock, so every mix of votes can be tested on its own.
package struct QuorumTally: Sendable, Equatable {
    /// What a finished attempt amounts to.
    enum Outcome: Sendable, Equatable {
        /// A quorum granted it.
        case acquired
        /// Another owner holds it on enough masters that we cannot get a quorum.
        case held
        /// More masters failed than a quorum can spare: no outcome of the others could have
        /// made a quorum, and nobody can tell whether the resource is held.
        case unreachable
    }

    /// How many masters vote.
    let count: Int
    /// How many must grant: ``quorum(of:)``.
    let quorum: Int

    /// The quorum of `count` masters: a strict majority, so that any two quorums share a master.
    package static func quorum(of count: Int) -> Int { count / 2 + 1 }
    /// Each master's vote, in the masters' order; `.pending` until it answers.
    private(set) var votes: [RedlockError.Vote]
    /// The remaining TTL (ms) that masters which refused reported for the other owner's key,
    /// where they reported it.
    private(set) var holderTTLs: [Int64] = []

    init(count: Int) {
        self.count = count
        self.quorum = Self.quorum(of: count)
        self.votes = Array(repeating: .pending, count: count)
    }

    /// Records one master's vote; `holderTTL` is the other owner's remaining TTL in ms, when
    /// the master reported it with its refusal.
    mutating func record(_ vote: RedlockError.Vote, at index: Int, holderTTL: Int64? = nil) {
        votes[index] = vote
        if vote == .heldByAnother, let holderTTL, holderTTL >= 0 { holderTTLs.append(holderTTL) }
    }

    func number(of vote: RedlockError.Vote) -> Int { votes.reduce(0) { $0 + ($1 == vote ? 1 : 0) } }

    /// Whether the votes so far settle the attempt: a quorum granted, or too few masters are
    /// left that could still grant. Pending masters count as "could still grant", never as
    /// failed.
    var isDecided: Bool {
        Self.isDecided(granted: number(of: .granted), pending: number(of: .pending), quorum: quorum)
    }

    static func isDecided(granted: Int, pending: Int, quorum: Int) -> Bool {
        granted >= quorum || granted + pending < quorum
    }

    /// The outcome once the attempt is over (masters still pending then are not counted as
    /// failed: they may have answered had we waited).
    var outcome: Outcome {
        if number(of: .granted) >= quorum { return .acquired }
        if number(of: .failed) > count - quorum { return .unreachable }
        return number(of: .heldByAnother) > 0 ? .held : .unreachable
    }

    /// For ``Outcome/held``: how long until enough of the other owner's keys have expired for
    /// a quorum to be possible, when the refusing masters reported their TTLs. Masters that
    /// granted or did not answer count as free; failed ones do not.
    var retryAfter: Duration? {
        let free = number(of: .granted) + number(of: .pending)
        let needed = quorum - free
        guard needed >= 1, holderTTLs.count == number(of: .heldByAnother), needed <= holderTTLs.count else { return nil }
        return .milliseconds(holderTTLs.sorted()[needed - 1])
    }
}

extension QuorumTally {
    /// The vote a reply to an acquisition command casts: nil or a bare integer (the other
    /// owner's PTTL, from the scripts) refuses; a fenced transaction's reply votes as its
    /// ``FencedTransaction/Outcome`` says (a refused candidate, like an error, fails); any other
    /// value grants.
    static func acquisitionVote(_ reply: Result<RESPValue, RedisWireError>?) -> (vote: RedlockError.Vote, holderTTL: Int64?) {
        switch reply {
        case nil: (.pending, nil)
        case .failure?: (.failed, nil)
        case .success(.null)?: (.heldByAnother, nil)
        case .success(.integer(let ttl))?: (.heldByAnother, ttl)
        case .success(.array(let replies))?:
            switch FencedTransaction.outcome(replies) {
            case .granted?: (.granted, nil)
            case .held(let ttl)?: (.heldByAnother, ttl)
            case .candidateRefused?, nil: (.failed, nil)
            }
        case .success?: (.granted, nil)
        }
    }

    /// ``isDecided`` for the replies of an acquisition fan-out so far, without building a
    /// tally (it runs on every reply).
    static func isDecided(acquisitionReplies replies: Replies) -> Bool {
        var granted = 0
        var pending = 0
        for reply in replies {
            switch acquisitionVote(reply).vote {
            case .granted: granted += 1
            case .pending: pending += 1
            default: break
            }
        }
        return isDecided(granted: granted, pending: pending, quorum: Self.quorum(of: replies.count))
    }

    /// Tallies the replies of one acquisition fan-out.
    init(acquisitionReplies replies: Replies) {
        self.init(count: replies.count)
        for (index, reply) in replies.enumerated() {
            let (vote, ttl) = Self.acquisitionVote(reply)
            record(vote, at: index, holderTTL: ttl)
        }
    }
}
