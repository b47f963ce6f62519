import GRDB
import Redlock

/// One event of an at-least-once feed (an SQS message, a webhook delivery, ...).
public struct Event: Sendable, Hashable {
    /// The producer's id for the event: the same on every redelivery.
    public let id: String
    /// The amount to credit.
    public let amount: Int

    /// Creates an event.
    public init(id: String, amount: Int) {
        self.id = id
        self.amount = amount
    }
}

/// A feed that delivers every event `copies` times, shuffled, to many consumers at once: the
/// worst case at-least-once delivery allows.
public struct AtLeastOnceFeed: Sendable {
    /// The events.
    public let events: [Event]
    /// Deliveries per event.
    public let copies: Int

    /// Creates a feed.
    public init(events: [Event], copies: Int) {
        self.events = events
        self.copies = copies
    }

    /// Hands every delivery to `consumer`, all deliveries concurrently.
    public func deliver(to consumer: @escaping @Sendable (Event) async throws -> Void) async throws {
        let deliveries = (0..<copies).flatMap { _ in events }.shuffled()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for event in deliveries { group.addTask { try await consumer(event) } }
            try await group.waitForAll()
        }
    }
}

/// The side effect: credits an account in a database with a non-idempotent increment per
/// delivery it is asked to apply, and counts how often each event was applied.
public struct Ledger: Sendable {
    let database: DatabaseQueue

    /// Creates an empty ledger in memory.
    public init() throws {
        database = try DatabaseQueue()
        try database.write { db in
            try db.execute(sql: "CREATE TABLE balance (amount INTEGER NOT NULL); INSERT INTO balance VALUES (0)")
            try db.execute(sql: "CREATE TABLE applied (event TEXT PRIMARY KEY, count INTEGER NOT NULL)")
        }
    }

    /// Applies `event` once more, in one transaction.
    public func apply(_ event: Event) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE balance SET amount = amount + ?", arguments: [event.amount])
            try db.execute(
                sql: "INSERT INTO applied (event, count) VALUES (?, 1) ON CONFLICT (event) DO UPDATE SET count = count + 1",
                arguments: [event.id]
            )
        }
    }

    /// The balance.
    public func balance() async throws -> Int {
        try await database.read { db in try Int.fetchOne(db, sql: "SELECT amount FROM balance") ?? 0 }
    }

    /// How many times each event was applied.
    public func applications() async throws -> [String: Int] {
        try await database.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT event, count FROM applied").map { ($0["event"], $0["count"]) })
        }
    }
}

/// Handles each event at most once per id, whatever the feed redelivers, through
/// ``IdempotencyGuard`` in at-most-once mode. The ledger applies an event in one atomic
/// step, so a failure that reached it may have applied the event: the guard then reports the
/// outcome as unknown and never applies it again. Only a failure before the ledger was reached
/// (``IdempotencyGuard/NotPerformed``) lets a redelivery try again.
public struct ExactlyOnceHandler: Sendable {
    let guardian: IdempotencyGuard
    let ledger: Ledger

    /// Creates a handler; the guard's marker for an event id lives for `retention`, which must
    /// exceed how long the feed may redeliver it.
    public init(redlock: Redlock, ledger: Ledger, retention: Duration = .seconds(24 * 3600)) {
        self.guardian = IdempotencyGuard(redlock: redlock, mode: .atMostOnce(retention: retention), namespace: "event:")
        self.ledger = ledger
    }

    /// Handles one delivery; returns whether this delivery applied the event.
    @discardableResult
    public func handle(_ event: Event) async throws -> Bool {
        let ledger = self.ledger
        switch try await guardian.run(key: event.id, { try await ledger.apply(event) }) {
        case .performed: return true
        case .alreadyPerformed, .inProgress, .outcomeUnknown: return false
        }
    }
}
