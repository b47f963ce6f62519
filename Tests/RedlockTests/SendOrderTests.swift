import Testing

@testable import Redlock

/// The order of a shuffled fan-out: every master is first about as often as the others, also
/// for seeds that differ only a little (clock readings a microsecond apart).
@Suite struct SendOrderTests {
    @Test func everyMasterLeadsAboutEquallyOftenForNeighbouringSeeds() {
        var firsts = [Int](repeating: 0, count: 5)
        for step in 0..<5_000 {
            var order = SendOrder(seed: 1_000_000_000 + UInt64(step) * 1_000)
            let sequence = Array(0..<5).shuffled(using: &order)
            #expect(sequence.sorted() == [0, 1, 2, 3, 4])
            firsts[sequence[0]] += 1
        }
        #expect(firsts.allSatisfy { (800...1_200).contains($0) }, "\(firsts)")
    }
}
