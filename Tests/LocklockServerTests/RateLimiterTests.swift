import NIOCore
import Testing

@testable import LocklockServer

/// The limiter's decisions, with the clock passed in: no server, no sleeping.
@Suite struct RateLimiterTests {
    let start = ContinuousClock.now

    @Test func memoryIsBoundedWhateverTheNumberOfClients() {
        let limiter = RateLimiter(maximumKeys: 1_000)
        for client in 0..<50_000 { _ = limiter.check("a:\(client)", rate: 100, now: start + .microseconds(client)) }
        #expect(limiter.keyCount <= 1_000)
    }

    @Test func aClientOverItsRateIsRefusedAndRefilledOverTime() {
        let limiter = RateLimiter(maximumKeys: 10)
        let decisions = (0..<5).map { _ in limiter.check("a:1", rate: 2, now: start) }
        #expect(decisions.map(\.allowed) == [true, true, true, true, false], "burst is twice the rate")
        #expect(decisions.last?.retryAfter == 1)
        #expect(limiter.check("a:1", rate: 2, now: start + .milliseconds(500)).allowed, "one token back after 1 / rate")
    }

    @Test func evictingIdleBucketsNeverForgetsABusyClient() {
        let limiter = RateLimiter(maximumKeys: 100)
        // The busy client spends its burst, then many others arrive; it is the most recently
        // used, so it is never the one evicted, and stays refused.
        for _ in 0..<4 { _ = limiter.check("a:busy", rate: 2, now: start) }
        for client in 0..<1_000 {
            _ = limiter.check("a:\(client)", rate: 2, now: start)
            #expect(!limiter.check("a:busy", rate: 2, now: start).allowed)
        }
    }

    @Test func idleBucketsAreEvictedAsTheyFillUp() {
        let limiter = RateLimiter(maximumKeys: 1_000)
        for client in 0..<500 { _ = limiter.check("a:\(client)", rate: 10, now: start) }
        // A bucket at rate 10 is full again after 0.2 s: those 500 are idle by then, and each
        // later check evicts a few of them from the old end.
        for client in 500..<800 { _ = limiter.check("a:\(client)", rate: 10, now: start + .seconds(1)) }
        #expect(limiter.keyCount < 500, "\(limiter.keyCount)")
    }

    @Test(arguments: [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", false),
        ("::ffff:192.0.2.1", "192.0.2.1", true),
        ("192.0.2.1", "192.0.2.2", false),
    ])
    func ipv6ClientsAreKeyedPerSlash64(first: String, second: String, same: Bool) throws {
        let a = RateLimiter.clientKey(for: try SocketAddress(ipAddress: first, port: 1))
        let b = RateLimiter.clientKey(for: try SocketAddress(ipAddress: second, port: 2))
        #expect((a == b) == same, "\(a) vs \(b)")
    }
}

/// The shared limit's refusals remembered locally: never past their end, never unbounded.
@Suite("Denial cache")
struct DenialCacheTests {
    @Test func aRefusalLastsUntilTheMastersWouldAllowAgain() {
        let cache = DenialCache()
        let now = ContinuousClock.now
        cache.refuse("a:1", for: .milliseconds(500), now: now)
        #expect(cache.refusal(for: "a:1", now: now + .milliseconds(100)) == .milliseconds(400))
        #expect(cache.refusal(for: "a:1", now: now + .milliseconds(500)) == nil, "at its end the masters are asked again")
        #expect(cache.count == 0, "and it is forgotten")
        cache.refuse("a:2", for: .zero, now: now)
        #expect(cache.refusal(for: "a:2", now: now) == nil, "an allowed request with tokens left remembers nothing")
    }

    @Test func itRemembersAtMostItsBoundDroppingLapsedRefusalsFirst() {
        let cache = DenialCache(maximumKeys: 3)
        let now = ContinuousClock.now
        for index in 0..<3 { cache.refuse("a:\(index)", for: .seconds(index == 0 ? 1 : 10), now: now) }
        cache.refuse("a:3", for: .seconds(10), now: now + .seconds(2))
        #expect(cache.count == 3)
        #expect(cache.refusal(for: "a:3", now: now + .seconds(2)) != nil, "the lapsed one made room")
        cache.refuse("a:4", for: .seconds(10), now: now + .seconds(2))
        #expect(cache.count == 3, "full of live refusals: the newcomer is not remembered")
        #expect(cache.refusal(for: "a:4", now: now + .seconds(2)) == nil)
    }
}
