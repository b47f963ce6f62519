import Synchronization
import Testing

@testable import RealServerGate

/// How many tasks are inside the gate now, at most, and in total.
private final class Occupancy: Sendable {
    let counts = Mutex((inside: 0, mostInside: 0, finished: 0))
}

@Suite struct RealServerGateTests {
    @Test func theGateAdmitsOneHolderAtATimeAndEveryWaiterInTheEnd() async {
        let gate = OneAtATime()
        let state = Occupancy()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    await gate.enter()
                    state.counts.withLock {
                        $0.inside += 1
                        $0.mostInside = max($0.mostInside, $0.inside)
                    }
                    try? await Task.sleep(for: .milliseconds(5))
                    state.counts.withLock {
                        $0.inside -= 1
                        $0.finished += 1
                    }
                    await gate.leave()
                }
            }
        }
        let final = state.counts.withLock { $0 }
        #expect(final.mostInside == 1)
        #expect(final.finished == 8)
        #expect(final.inside == 0)
    }
}
