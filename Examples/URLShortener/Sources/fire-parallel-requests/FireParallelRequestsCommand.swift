import ArgumentParser
import Foundation
import URLShortener

/// Fires identical shorten requests at once and reports what came back.
@main
struct FireParallelRequestsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fire-parallel-requests",
        abstract: "Send N identical POST /shorten requests at once; print the statuses and the distinct short codes."
    )

    @Option(help: "Base URL of the shortener.") var url = "http://127.0.0.1:8081"
    @Option(help: "The long URL to shorten.") var longURL = "https://example.com/a/very/long/path?campaign=locklock"
    @Option(help: "How many requests.") var count = 50
    @Option(help: "Send this Idempotency-Key with every request.") var idempotencyKey: String?

    func validate() throws {
        guard URL(string: url) != nil else { throw ValidationError("--url is not a URL") }
        guard (1...1000).contains(count) else { throw ValidationError("--count must be 1...1000") }
    }

    func run() async throws {
        let report = try await fireParallelRequests(baseURL: URL(string: url)!, longURL: longURL, count: count, idempotencyKey: idempotencyKey)
        for reply in report.replies {
            var line = "\(reply.status)"
            if let code = reply.code { line += " code=\(code)" }
            if let retryAfter = reply.retryAfter { line += " retry-after=\(retryAfter)" }
            if reply.replayed { line += " (replayed)" }
            print(line)
        }
        print(report)
    }
}
