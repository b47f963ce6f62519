import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP exchange's outcome, as tests look at it.
public struct HTTPResult: Sendable {
    /// The status code.
    public var status: Int
    /// The response header fields.
    public var headers: [String: String]
    /// The body.
    public var body: Data

    /// The body parsed as a JSON object, if it is one.
    public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }
    /// A header field by case-insensitive name.
    public func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
}

/// A session that opens a connection per concurrent request: URLSession.shared queues
/// requests to one host behind each other, and tests that race requests need them on the
/// wire together.
private let loopbackSession: URLSession = {
    let configuration = URLSessionConfiguration.ephemeral
    configuration.httpMaximumConnectionsPerHost = 256
    return URLSession(configuration: configuration)
}()

/// Sends one request to a server on 127.0.0.1:`port` (JSON body when `body` is given).
public func loopbackRequest(
    port: Int,
    _ method: String,
    _ path: String,
    body: String? = nil,
    headers: [String: String] = [:]
) async throws -> HTTPResult {
    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
    request.httpMethod = method
    if let body {
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    request.timeoutInterval = 10
    let (data, response) = try await loopbackSession.data(for: request)
    guard let http = response as? HTTPURLResponse else { throw LoopbackHTTPError("not an HTTP response") }
    var fields: [String: String] = [:]
    for (name, value) in http.allHeaderFields { fields["\(name)"] = "\(value)" }
    return HTTPResult(status: http.statusCode, headers: fields, body: data)
}

/// Polls `GET path` on `port` until it answers 200, for at most `attempts` × 25 ms.
public func waitUntilServing(port: Int, path: String, attempts: Int = 400) async throws {
    for _ in 0..<attempts {
        if (try? await loopbackRequest(port: port, "GET", path))?.status == 200 { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    throw LoopbackHTTPError("nothing answered 200 on 127.0.0.1:\(port)\(path)")
}

/// A loopback exchange that did not give what a test needs.
public struct LoopbackHTTPError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String
    init(_ description: String) { self.description = description }
}
