import Redlock
import Testing

@Suite struct ValidityTests {
    @Test func driftIsOnePercentOfTheTTLPlusTwoMilliseconds() {
        #expect(Validity.drift(ttl: .seconds(10), driftFactor: 0.01) == .milliseconds(102))
        #expect(Validity.drift(ttl: .milliseconds(100), driftFactor: 0.01) == .milliseconds(3))
    }

    @Test(arguments: [
        (10_000, 30, 9_868),  // 10 s - 30 ms - 102 ms
        (1_000, 500, 488),
        (100, 97, 0),  // 100 - 97 - 3: nothing left, not valid
        (100, 98, -1),
    ])
    func validityIsTTLMinusElapsedMinusDrift(ttl: Int, elapsed: Int, expected: Int) {
        let validity = Validity.remaining(ttl: .milliseconds(ttl), elapsed: .milliseconds(elapsed), driftFactor: 0.01)
        #expect(validity == .milliseconds(expected))
    }
}

@Suite struct RetryBackoffTests {
    @Test func withAMaximumDelayTheDelayDoublesUpToIt() {
        let retry = RedlockConfiguration.Retry(delay: .milliseconds(50), jitter: .milliseconds(20), maximumDelay: .milliseconds(400))
        let schedule = (1...6).map { retry.delay(afterFailure: $0) }
        #expect(schedule.map(\.mean) == [50, 100, 200, 400, 400, 400].map { .milliseconds($0) })
        #expect(schedule.map(\.jitter) == [20, 40, 80, 160, 160, 160].map { .milliseconds($0) }, "the jitter keeps its share")
    }

    @Test func withoutAMaximumDelayTheDelayStaysFixed() {
        let retry = RedlockConfiguration.Retry(delay: .milliseconds(50), jitter: .milliseconds(20))
        #expect((1...4).map { retry.delay(afterFailure: $0).mean } == Array(repeating: .milliseconds(50), count: 4))
        let huge = RedlockConfiguration.Retry(delay: .seconds(1), maximumDelay: .seconds(10))
        #expect(huge.delay(afterFailure: 10_000).mean == .seconds(10), "no overflow after many failures")
    }
}
