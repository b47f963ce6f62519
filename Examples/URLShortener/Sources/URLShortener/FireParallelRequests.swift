import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// What a burst of identical shorten requests got back.
public struct BurstReport: Sendable, CustomStringConvertible {
    /// One response.
    public struct Reply: Sendable {
        /// The HTTP status.
        public var status: Int
        /// The short code in a 2xx body.
        public var code: String?
        /// The `Retry-After` header.
        public var retryAfter: String?
        /// The `Idempotent-Replayed` header.
        public var replayed: Bool
    }

    /// Every reply, in completion order.
    public var replies: [Reply]

    /// How many replies had each status.
    public var statusCounts: [Int: Int] { replies.reduce(into: [:]) { $0[$1.status, default: 0] += 1 } }
    /// The distinct short codes handed out.
    public var distinctCodes: Set<String> { Set(replies.compactMap(\.code)) }

    /// A readable summary, for logs and messages.
    public var description: String {
        let statuses = statusCounts.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
        return "\(replies.count) requests: \(statuses); distinct short codes: \(distinctCodes.count) \(distinctCodes.sorted())"
    }
}

/// Sends `count` identical `POST /shorten` requests at once, each on its own connection: the
/// race a double-clicking user or a retrying client produces.
public func fireParallelRequests(
    baseURL: URL,
    longURL: String,
    count: Int,
    idempotencyKey: String? = nil
) async throws -> BurstReport {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.httpMaximumConnectionsPerHost = count
    configuration.timeoutIntervalForRequest = 30
    let session = URLSession(configuration: configuration)
    defer { session.finishTasksAndInvalidate() }
    let body = try JSONEncoder().encode(ShortenRequest(url: longURL))
    var request = URLRequest(url: baseURL.appendingPathComponent("shorten"))
    request.httpMethod = "POST"
    request.httpBody = body
    request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    if let idempotencyKey { request.setValue(idempotencyKey, forHTTPHeaderField: "Idempotency-Key") }
    let prepared = request
    let replies = try await withThrowingTaskGroup(of: BurstReport.Reply.self) { group in
        for _ in 0..<count {
            group.addTask {
                let (data, response) = try await session.data(for: prepared)
                let http = response as! HTTPURLResponse
                let code = (200..<300).contains(http.statusCode) ? (try? JSONDecoder().decode(ShortenResponse.self, from: data))?.code : nil
                return .init(
                    status: http.statusCode,
                    code: code,
                    retryAfter: http.value(forHTTPHeaderField: "Retry-After"),
                    replayed: http.value(forHTTPHeaderField: "Idempotent-Replayed") == "true"
                )
            }
        }
        return try await group.reduce(into: []) { $0.append($1) }
    }
    return BurstReport(replies: replies)
}
