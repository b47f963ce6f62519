import Foundation
import GRDB
import HummingbirdIdempotency

/// Stores idempotent responses in the shortener's SQLite database, next to the data they
/// describe, so a replay survives a restart of the service.
public struct SQLiteIdempotencyStore: IdempotencyResponseStore {
    static let tableName = "idempotent_response"

    let database: ShortURLDatabase

    /// Creates a store on `database`.
    public init(database: ShortURLDatabase) { self.database = database }

    /// The stored response for `key`, if one is still kept.
    public func response(for key: String) async throws -> StoredResponse? {
        // Fetch Data (Sendable), not a Row, so that GRDB's async read is the overload chosen and
        // the query does not block a cooperative thread.
        let data = try await database.writer.read { db in
            try Data.fetchOne(db, sql: "SELECT response FROM \(Self.tableName) WHERE key = ? AND expiresAt > ?", arguments: [key, Date()])
        }
        guard let data else { return nil }
        return try JSONDecoder().decode(StoredResponse.self, from: data)
    }

    /// Stores `response` under `key` for `retention`.
    public func save(_ response: StoredResponse, for key: String, retention: Duration) async throws {
        let data = try JSONEncoder().encode(response)
        let expiresAt = Date().addingTimeInterval(Double(retention.components.seconds))
        try await database.writer.write { db in
            try db.execute(sql: "DELETE FROM \(Self.tableName) WHERE expiresAt <= ?", arguments: [Date()])
            try db.execute(
                sql: "INSERT OR REPLACE INTO \(Self.tableName) (key, response, expiresAt) VALUES (?, ?, ?)",
                arguments: [key, data, expiresAt]
            )
        }
    }
}
