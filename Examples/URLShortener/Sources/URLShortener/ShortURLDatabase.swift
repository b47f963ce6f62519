import Foundation
import GRDB

/// One short URL.
public struct ShortURL: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    /// The SQLite table.
    public static let databaseTableName = "short_url"

    /// The short code, the key of the table.
    public var code: String
    /// The URL it redirects to. Deliberately not unique: the point of the example is that the
    /// application, not the schema, has to keep one code per long URL.
    public var longURL: String
    /// When it was created.
    public var createdAt: Date

    /// Creates a record.
    public init(code: String, longURL: String, createdAt: Date = Date()) {
        self.code = code
        self.longURL = longURL
        self.createdAt = createdAt
    }
}

/// The SQLite database of the shortener (short URLs and stored idempotent responses).
public struct ShortURLDatabase: Sendable {
    /// The GRDB connection; every access is serialised by GRDB.
    public let writer: any DatabaseWriter

    /// Opens (creating if needed) the database at `path`, or an in-memory one when nil.
    public init(path: String? = nil) throws {
        writer = if let path { try DatabaseQueue(path: path) } else { try DatabaseQueue() }
        try Self.migrator.migrate(writer)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: ShortURL.databaseTableName) { table in
                table.primaryKey("code", .text)
                table.column("longURL", .text).notNull().indexed()
                table.column("createdAt", .datetime).notNull()
            }
            try db.create(table: SQLiteIdempotencyStore.tableName) { table in
                table.primaryKey("key", .text)
                table.column("response", .blob).notNull()
                table.column("expiresAt", .datetime).notNull().indexed()
            }
        }
        return migrator
    }

    /// The first short URL recorded for `longURL`, if any.
    public func find(longURL: String) async throws -> ShortURL? {
        try await writer.read { db in
            try ShortURL.filter(Column("longURL") == longURL).order(Column("createdAt")).fetchOne(db)
        }
    }

    /// Every short URL recorded for `longURL`: more than one means a race was lost.
    public func all(longURL: String) async throws -> [ShortURL] {
        try await writer.read { db in try ShortURL.filter(Column("longURL") == longURL).fetchAll(db) }
    }

    /// The short URL with `code`, if any.
    public func find(code: String) async throws -> ShortURL? {
        try await writer.read { db in try ShortURL.fetchOne(db, key: code) }
    }

    /// Inserts `shortURL`.
    public func insert(_ shortURL: ShortURL) async throws {
        try await writer.write { db in try shortURL.insert(db) }
    }
}
