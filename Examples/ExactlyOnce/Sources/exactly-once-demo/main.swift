import ExactlyOnce
import LocalMasters
import Redlock

// Demo: 3 throwaway lock masters and an in-memory ledger; 20 events, each delivered 5 times at once.
let masters = try await LocalMasters.start(count: 3)
let redlock = Redlock(masters: masters.addresses)
let ledger = try Ledger()
let handler = ExactlyOnceHandler(redlock: redlock, ledger: ledger)
let events = (1...20).map { Event(id: "evt-\($0)", amount: $0) }
try await AtLeastOnceFeed(events: events, copies: 5).deliver { try await handler.handle($0) }
let applied = try await ledger.applications()
print(
    "deliveries: \(events.count * 5), applied: \(applied.values.reduce(0, +)), balance: \(try await ledger.balance()) (expected \(events.map(\.amount).reduce(0, +)))"
)
await redlock.shutdown()
await masters.shutdown()
