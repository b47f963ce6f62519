import RedisWire
import Testing

@testable import Redlock

/// What `inspect` reports, from hand-made replies: no I/O.
@Suite("inspect's answer")
struct InspectStateTests {
    /// One master's inspect reply: the value, its TTL in ms, no fence.
    func reply(_ value: String, ttl: Int64) -> Result<RESPValue, RedisWireError>? {
        .success(.array([.bulkString(Array(value.utf8)), .integer(ttl), .null]))
    }

    @Test func remainingTakesOffTheTimeTheInspectionTook() throws {
        let replies: Replies = [reply("v", ttl: 10_000), reply("v", ttl: 10_000), reply("v", ttl: 10_000)]
        let prompt = try Redlock.lockState(replies, quorum: 2, driftFactor: 0.01).get()
        let slow = try Redlock.lockState(replies, quorum: 2, driftFactor: 0.01, elapsed: .milliseconds(300)).get()
        #expect(prompt.isHeld && slow.isHeld)
        // 10 s less the drift allowance (1% + 2 ms), then less the 300 ms the answers took.
        #expect(prompt.remaining == .milliseconds(9_898))
        #expect(slow.remaining == .milliseconds(9_598))
        #expect(slow.timeToLive == .seconds(10), "the keys' TTL itself is what the masters said")
    }

    @Test func aRemainingNeverGoesBelowZero() throws {
        let replies: Replies = [reply("v", ttl: 100), reply("v", ttl: 100), nil]
        let state = try Redlock.lockState(replies, quorum: 2, driftFactor: 0.01, elapsed: .seconds(1)).get()
        #expect(state.remaining == .zero)
    }
}
