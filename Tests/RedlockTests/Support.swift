import LocalRedis
import NIOCore
import RedisWire
import Redlock
import Synchronization
import Testing

/// Starts `count` masters, a client over them, and always tears both down.
func withRedlock<T>(
    masters count: Int = 5,
    configuration: RedlockConfiguration = .init(),
    _ body: (Redlock, RedisServerGroup) async throws -> T
) async throws -> T {
    try await withRedisServers(count: count, options: .init()) { group throws in
        let redlock = Redlock(masters: group.addresses, configuration: configuration)
        await redlock.connect()
        do {
            let result = try await body(redlock, group)
            await redlock.shutdown()
            return result
        } catch {
            await redlock.shutdown()
            throw error
        }
    }
}

/// A direct connection to one master, for setting up and checking keys.
func direct(_ server: RedisServer) -> RedisConnection {
    RedisConnection(address: server.address, configuration: .init(commandTimeout: .seconds(5)))
}

/// Runs `body` with a direct connection to each master.
func withDirect<T>(_ group: RedisServerGroup, _ body: ([RedisConnection]) async throws -> T) async throws -> T {
    let connections = group.servers.map(direct)
    defer { for connection in connections { Task { await connection.close() } } }
    return try await body(connections)
}

/// Waits (polling, at most about 2 s) until `key` exists on every one of `masters`.
func waitUntilHeld(_ key: String, on masters: [RedisConnection]) async throws {
    for _ in 0..<1_000 {
        var held = 0
        for master in masters where try await master.send("EXISTS", key) == .integer(1) { held += 1 }
        if held == masters.count { return }
        try await Task.sleep(for: .milliseconds(2))
    }
    Issue.record("\(key) never appeared on all \(masters.count) masters")
}

/// Thread-safe append-only log for tests.
final class Recorder<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])
    func append(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
}

let fastRetry = RedlockConfiguration.Retry(count: 0, delay: .milliseconds(10), jitter: .milliseconds(10), maximumWait: .seconds(120))

/// A client that tries once unless told to wait, and whose waiters sleep up to 60 s between
/// attempts: a test that is handed a lock in seconds shows the release's wake-up did it.
var wakeUpsOnlyConfiguration: RedlockConfiguration {
    var configuration = RedlockConfiguration(instanceTimeout: .milliseconds(250), retry: .never)
    configuration.wakeUps.longestSleep = .seconds(60)
    return configuration
}
