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
    @Test func aRefusalLastsUntilTheMastersWouldAllowAgainThenOneProbeAsks() {
        let cache = DenialCache()
        let now = ContinuousClock.now
        #expect(cache.verdict(for: "a:1", now: now) == .ask, "an identity it knows nothing of: ask")
        cache.settle("a:1", refusedFor: .milliseconds(500), now: now)
        #expect(cache.verdict(for: "a:1", now: now + .milliseconds(100)) == .refused(.milliseconds(400)))
        let end = now + .milliseconds(500)
        #expect(cache.verdict(for: "a:1", now: end) == .ask, "at its end one request asks the masters")
        #expect(cache.verdict(for: "a:1", now: end + .milliseconds(1)) != .ask, "the others wait for its answer")
        cache.settle("a:1", refusedFor: .zero, now: end + .milliseconds(2))
        #expect(cache.verdict(for: "a:1", now: end + .milliseconds(3)) == .ask, "allowed with room to spare: forgotten")
        #expect(cache.count == 0)
    }

    @Test func aProbeThatNeverAnswersStandsInTheWayOnlyForItsTimeout() {
        let cache = DenialCache()
        let now = ContinuousClock.now
        cache.settle("a:1", refusedFor: .milliseconds(10), now: now)
        #expect(cache.verdict(for: "a:1", now: now + .milliseconds(10)) == .ask)
        #expect(cache.verdict(for: "a:1", now: now + .milliseconds(10) + DenialCache.probeTimeout) == .ask, "the next probe")
        cache.settle("a:1", refusedFor: nil, now: now)
        #expect(cache.count == 0, "masters that did not answer: nothing remembered")
    }

    @Test func itRemembersAtMostItsBoundDroppingLapsedRefusalsFirst() {
        let cache = DenialCache(maximumKeys: 3)
        let now = ContinuousClock.now
        for index in 0..<3 { cache.settle("a:\(index)", refusedFor: .seconds(index == 0 ? 1 : 10), now: now) }
        cache.settle("a:3", refusedFor: .seconds(10), now: now + .seconds(2))
        #expect(cache.count == 3)
        #expect(cache.verdict(for: "a:3", now: now + .seconds(2)) != .ask, "the lapsed one made room")
        cache.settle("a:4", refusedFor: .seconds(10), now: now + .seconds(2))
        #expect(cache.count == 3, "full of live refusals: the newcomer is not remembered")
        #expect(cache.verdict(for: "a:4", now: now + .seconds(2)) == .ask)
    }
}

/// Wrong secrets per caller and lock, with the clock passed in.
@Suite("Secret guesses")
struct SecretGuessLimiterTests {
    @Test func anAllowanceOfWrongSecretsRefilledOneEveryTenSeconds() {
        let limiter = SecretGuessLimiter()
        let now = ContinuousClock.now
        for _ in 0..<30 {
            #expect(limiter.refusal(for: "a:1\u{0}lock", now: now) == nil)
            limiter.recordFailure("a:1\u{0}lock", now: now)
        }
        #expect(limiter.refusal(for: "a:1\u{0}lock", now: now) == .seconds(10), "spent: one more in 10 s")
        #expect(limiter.refusal(for: "a:1\u{0}other", now: now) == nil, "another lock is another allowance")
        #expect(limiter.refusal(for: "a:1\u{0}lock", now: now + .seconds(10)) == nil, "refilled by one")
    }

    @Test func itKeepsAtMostItsBoundForgettingFullBucketsFirst() {
        let limiter = SecretGuessLimiter(maximumKeys: 2)
        let now = ContinuousClock.now
        limiter.recordFailure("a", now: now)
        limiter.recordFailure("b", now: now)
        limiter.recordFailure("c", now: now + .seconds(20))  // a and b have refilled: forgotten
        for _ in 0..<29 { limiter.recordFailure("c", now: now + .seconds(20)) }
        #expect(limiter.refusal(for: "c", now: now + .seconds(20)) != nil)
    }
}
