import Foundation
import Hummingbird
import HummingbirdTesting
import LocalMasters
import Redlock
import URLShortener

/// A running shortener on a loopback port (Hummingbird's live test server), over 3 real
/// masters and an in-memory SQLite.
struct RunningShortener: Sendable {
    let client: any TestClientProtocol
    let database: ShortURLDatabase
    var baseURL: URL { URL(string: "http://127.0.0.1:\(client.port ?? 0)")! }

    /// Sends a JSON body (when given) and returns the response.
    func request(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil) async throws -> TestResponse {
        let headers: HTTPFields = json == nil ? [:] : [.contentType: "application/json"]
        return try await client.execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }) { $0 }
    }
}

/// Starts 3 masters and the shortener in `mode`, runs `body`, and tears it all down.
func withShortener<T: Sendable>(
    mode: GuardMode,
    processingDelay: Duration = .milliseconds(150),
    _ body: @escaping @Sendable (RunningShortener) async throws -> T
) async throws -> T {
    try await withLocalMasters(count: 3) { masters in
        // 250 ms: bounded, with room for CI's shared cores; latency is not the subject here.
        let redlock = Redlock(masters: masters, configuration: .init(instanceTimeout: .milliseconds(250)))
        await redlock.connect()
        let database = try ShortURLDatabase()
        let shortener = Shortener(database: database, redlock: redlock, mode: mode, processingDelay: processingDelay)
        let router = buildShortenerRouter(shortener: shortener, database: database, redlock: redlock)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), services: [redlock])
        return try await app.test(.live) { client in try await body(RunningShortener(client: client, database: database)) }
    }
}
