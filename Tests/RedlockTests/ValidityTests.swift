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
