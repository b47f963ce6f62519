import ExactlyOnce
import LocalMasters
import Redlock
import Testing

@Suite("Exactly-once handling of an at-least-once feed", .serialized)
struct ExactlyOnceTests {
    let events = (1...40).map { Event(id: "evt-\($0)", amount: $0) }
    var expectedBalance: Int { events.map(\.amount).reduce(0, +) }

    @Test func withoutTheGuardRedeliveriesApplyEventsMoreThanOnce() async throws {
        let ledger = try Ledger()
        try await AtLeastOnceFeed(events: events, copies: 4).deliver { try await ledger.apply($0) }
        #expect(try await ledger.balance() == expectedBalance * 4, "the feed really redelivers: the test below can fail")
    }

    @Test func withTheGuardEveryEventIsAppliedExactlyOnce() async throws {
        try await withLocalMasters(count: 5) { masters in
            let redlock = Redlock(masters: masters, configuration: .init(instanceTimeout: .milliseconds(250)))
            await redlock.connect()
            let ledger = try Ledger()
            let handler = ExactlyOnceHandler(redlock: redlock, ledger: ledger)
            try await AtLeastOnceFeed(events: events, copies: 4).deliver { try await handler.handle($0) }
            let applied = try await ledger.applications()
            #expect(applied.count == events.count)
            #expect(applied.values.allSatisfy { $0 == 1 }, "\(applied.filter { $0.value != 1 })")
            #expect(try await ledger.balance() == expectedBalance)
            // A late redelivery, long after, is still recognised.
            #expect(try await handler.handle(events[0]) == false)
            await redlock.shutdown()
        }
    }

    @Test func aFailedHandlingLetsARedeliveryTryAgain() async throws {
        struct Unavailable: Error {}
        try await withLocalMasters(count: 3) { masters in
            let redlock = Redlock(masters: masters, configuration: .init(retry: .never))
            await redlock.connect()
            let guardian = IdempotencyGuard(redlock: redlock, mode: .atMostOnce(retention: .seconds(60)))
            await #expect(throws: Unavailable.self) {
                _ = try await guardian.run(key: "evt-x") { throw IdempotencyGuard.NotPerformed(Unavailable()) }
            }
            let retried = try await guardian.run(key: "evt-x") { 1 }
            if case .performed(1) = retried {} else { Issue.record("a redelivery after a failure runs again, got \(retried)") }
            await redlock.shutdown()
        }
    }
}
