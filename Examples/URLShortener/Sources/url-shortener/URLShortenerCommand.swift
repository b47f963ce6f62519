import ArgumentParser
import Foundation
import Hummingbird
import LocalMasters
import Logging
import Redlock
import URLShortener

extension GuardMode: ExpressibleByArgument {}

/// Serves the example URL shortener.
@main
struct URLShortenerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "url-shortener",
        abstract: "The seed article's URL shortener over SQLite, with a Redlock guard against racing identical requests."
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8081
    @Option(help: "Comma-separated host:port of the Redis masters; without it, 3 throwaway local masters are started.")
    var masters: String?
    @Option(name: .customLong("guard"), help: "none | reject | wait") var mode: GuardMode = .reject
    @Option(help: "SQLite file (in memory when omitted).") var database: String?
    @Option(help: "Milliseconds of work between the look-up and the insert (the race window).") var processingDelayMs = 100

    func run() async throws {
        let logger = Logger(label: "url-shortener")
        let owned: LocalMasters?
        let addresses: [RedisEndpoint]
        if let masters {
            owned = nil
            do {
                addresses = try RedisEndpoint.list(parsing: masters)
            } catch {
                throw ValidationError("--masters: \(error)")
            }
        } else {
            let group = try await LocalMasters.start(count: 3)
            owned = group
            addresses = group.addresses.map { RedisEndpoint($0) }
        }
        let redlock = Redlock(endpoints: addresses, logger: logger)
        let store = try ShortURLDatabase(path: database)
        let shortener = Shortener(database: store, redlock: redlock, mode: mode, processingDelay: .milliseconds(processingDelayMs))
        let app = Application(
            router: buildShortenerRouter(shortener: shortener, database: store, redlock: redlock),
            configuration: .init(address: .hostname(host, port: port)),
            services: [redlock],
            onServerRunning: { _ in
                print(
                    "url-shortener (guard: \(mode.rawValue)) on http://\(host):\(port); masters \(addresses.map(\.description).joined(separator: ","))"
                )
                fflush(nil)
            },
            logger: logger
        )
        do {
            try await app.runService()
        } catch {
            await owned?.shutdown()
            throw error
        }
        await owned?.shutdown()
    }
}
