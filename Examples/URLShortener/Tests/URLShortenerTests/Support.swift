import Foundation
import Hummingbird
import ServiceLifecycle
import HummingbirdIdempotency
import RedisWire
import Redlock
import RedlockTestSupport
import URLShortener

/// A running shortener on a free loopback port, over 3 real masters and an in-memory SQLite.
struct RunningShortener: Sendable {
    let port: Int
    let database: ShortURLDatabase
    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }
}

/// Serves `router` on a free port until `body` returns; waits for `readyPath` first.
func withServing<T: Sendable>(
    _ router: Router<BasicRequestContext>, services: [any Service] = [], readyPath: String,
    _ body: @escaping @Sendable (Int) async throws -> T
) async throws -> T {
    let port = try FreePort.pick()
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), services: services)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await app.runService()
            return nil
        }
        defer { group.cancelAll() }
        try await waitUntilServing(port: port, path: readyPath)
        return try await body(port)
    }
}

/// Starts 3 masters and the shortener in `mode`, runs `body`, and tears it all down.
func withShortener<T: Sendable>(
    mode: GuardMode, processingDelay: Duration = .milliseconds(150), _ body: @escaping @Sendable (RunningShortener) async throws -> T
) async throws -> T {
    try await withRedisServers(count: 3) { masters throws in
        // 250 ms: bounded, with room for CI's shared cores; latency is not the subject here.
        let redlock = Redlock(masters: masters.addresses, configuration: .init(instanceTimeout: .milliseconds(250)))
        await redlock.connect()
        let database = try ShortURLDatabase()
        let shortener = Shortener(database: database, redlock: redlock, mode: mode, processingDelay: processingDelay)
        let router = buildShortenerRouter(shortener: shortener, database: database, redlock: redlock)
        return try await withServing(router, services: [redlock], readyPath: "/healthz") { port in
            try await body(RunningShortener(port: port, database: database))
        }
    }
}
