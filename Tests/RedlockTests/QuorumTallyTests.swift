import RedisWire
import Testing

@testable import Redlock

/// Every mix of votes for N = 1, 3, 5 and 7 masters: no I/O.
@Suite("QuorumTally: the acquisition decision, exhaustively")
struct QuorumTallyTests {
    static let allVotes: [RedlockError.Vote] = [.granted, .heldByAnother, .failed, .pending]

    /// Every assignment of votes to `count` masters.
    static func everyMix(of count: Int) -> [[RedlockError.Vote]] {
        var mixes: [[RedlockError.Vote]] = [[]]
        for _ in 0..<count { mixes = mixes.flatMap { mix in allVotes.map { mix + [$0] } } }
        return mixes
    }

    static func tally(_ votes: [RedlockError.Vote]) -> QuorumTally {
        var tally = QuorumTally(count: votes.count)
        for (index, vote) in votes.enumerated() { tally.record(vote, at: index) }
        return tally
    }

    @Test(arguments: [1, 3, 5, 7])
    func decidedExactlyWhenNoAnswerOfThePendingMastersCouldChangeWhetherAQuorumGrants(count: Int) {
        let quorum = count / 2 + 1
        for votes in Self.everyMix(of: count) {
            let granted = votes.filter { $0 == .granted }.count
            let pending = votes.filter { $0 == .pending }.count
            // The oracle: the best and worst completions of the pending votes.
            let couldAcquire = granted + pending >= quorum
            let mustAcquire = granted >= quorum
            #expect(Self.tally(votes).isDecided == (mustAcquire || !couldAcquire), "\(votes)")
        }
    }

    @Test(arguments: [1, 3, 5, 7])
    func unreachableOnlyWhenTheFailedMastersAloneRuleOutAQuorum(count: Int) {
        let quorum = count / 2 + 1
        for votes in Self.everyMix(of: count) {
            let tally = Self.tally(votes)
            let granted = votes.filter { $0 == .granted }.count
            let held = votes.filter { $0 == .heldByAnother }.count
            let failed = votes.filter { $0 == .failed }.count
            switch tally.outcome {
            case .acquired:
                #expect(granted >= quorum, "\(votes)")
            case .held:
                #expect(granted < quorum && held > 0 && failed <= count - quorum, "\(votes)")
            case .unreachable:
                #expect(granted < quorum, "\(votes)")
                #expect(failed > count - quorum || held == 0, "\(votes)")
            }
            // A decided attempt with a minority failed and another owner seen is "held".
            if tally.isDecided, granted < quorum, failed <= count - quorum {
                #expect(tally.outcome == .held, "a minority down turned a held lock into unreachable: \(votes)")
            }
        }
    }

    @Test func retryAfterIsWhenEnoughOfTheOtherOwnersKeysHaveExpired() {
        // 5 masters: 1 granted, 1 failed, 3 held with 9, 4 and 7 s left. A quorum needs two more
        // free masters: the second-earliest expiry.
        var tally = QuorumTally(count: 5)
        tally.record(.granted, at: 0)
        tally.record(.failed, at: 1)
        tally.record(.heldByAnother, at: 2, holderTTL: 9_000)
        tally.record(.heldByAnother, at: 3, holderTTL: 4_000)
        tally.record(.heldByAnother, at: 4, holderTTL: 7_000)
        #expect(tally.outcome == .held)
        #expect(tally.retryAfter == .milliseconds(7_000))
        // A refusal without a TTL (a plain SET NX) leaves it unknown.
        tally.record(.heldByAnother, at: 0)
        #expect(tally.retryAfter == nil)
    }

    @Test func repliesMapToVotes() {
        let replies: Replies = [
            .success(.simpleString("OK")), .success(.null), .success(.integer(1_500)), .failure(RedisWireError(.timeout, "late")),
            .failure(RedisWireError(.serverError, "LOWFENCE 1796350485628590")), nil,
        ]
        let tally = QuorumTally(acquisitionReplies: replies)
        #expect(tally.votes == [.granted, .heldByAnother, .heldByAnother, .failed, .failed, .pending])
        #expect(tally.holderTTLs == [1_500])
    }

    /// A fenced transaction's `EXEC` reply: the SET, the ZADD of the fence, the EXISTS of the
    /// watch marker and the PTTL.
    static func transaction(set: RESPValue, fenceRaised: Int64, ttl: Int64 = -2) -> Result<RESPValue, RedisWireError> {
        .success(.array([set, .integer(fenceRaised), .integer(0), .integer(ttl)]))
    }

    @Test func aFencedTransactionGrantsOnlyWhereTheKeyWasSetAndTheFenceRaised() {
        let replies: Replies = [
            Self.transaction(set: .simpleString("OK"), fenceRaised: 1),
            Self.transaction(set: .null, fenceRaised: 1, ttl: 2_500),
            Self.transaction(set: .null, fenceRaised: 0, ttl: 900),
            // The key was set, but the fence was past the candidate: not a vote for this token.
            Self.transaction(set: .simpleString("OK"), fenceRaised: 0),
            // EXEC refused (a command was refused as it queued): an error, not a grant.
            .failure(RedisWireError(.serverError, "EXECABORT Transaction discarded because of previous errors.")),
        ]
        let tally = QuorumTally(acquisitionReplies: replies)
        #expect(tally.votes == [.granted, .heldByAnother, .heldByAnother, .failed, .failed])
        #expect(tally.holderTTLs == [2_500, 900])
        #expect(FencedTransaction.outcome([.simpleString("OK"), .integer(1)]) == nil, "not the four replies of the transaction")
    }
}
