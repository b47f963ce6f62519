import Foundation
import RealServerGate
import RedlockTestSupport
import Testing

/// Docs/http-api.md is written by hand; this keeps it honest against the OpenAPI document
/// the server serves: every lock operation's status codes, and every other path.
@Suite("HTTP API reference matches the OpenAPI document", .serialized, .realRedisServers)
struct DocsMatchOpenAPITests {
    static let reference = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Docs/http-api.md")

    /// Status codes per method from the reference's lock table: `| POST `/v1/api/lock/{lock}` | ... |`.
    static func documentedLockStatuses(_ text: String) -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| ") && line.contains("`/v1/api/lock/{lock}`") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let method = cells.first?.split(separator: " ").first, cells.count >= 4 else { continue }
            // Success and error columns; request bodies mention numbers too, so skip that column.
            let statusText = cells[2] + " " + cells[3]
            let codes = statusText.matches(of: /\b([1-5][0-9][0-9])\b/).map { String($0.1) }
            result[String(method).lowercased()] = Set(codes)
        }
        return result
    }

    @Test func everyLockOperationDocumentsExactlyTheStatusCodesOfTheSpec() async throws {
        let text = try String(contentsOf: Self.reference, encoding: .utf8)
        let documented = Self.documentedLockStatuses(text)
        #expect(Set(documented.keys) == ["post", "delete", "patch", "get"], "\(documented.keys.sorted())")
        try await withLiveServer { server throws in
            let spec = try #require(try await server.request("GET", "/v1/api/openapi.json").json)
            let paths = try #require(spec["paths"] as? [String: [String: Any]])
            for method in ["post", "delete", "patch", "get"] {
                var specified = Set<String>()
                for path in ["/v1/api/lock/uuid/{uuid}", "/v1/api/lock/key/{name}"] {
                    let operation = try #require(paths[path]?[method] as? [String: Any])
                    specified.formUnion((operation["responses"] as? [String: Any] ?? [:]).keys)
                }
                #expect(
                    documented[method] == specified,
                    "\(method.uppercased()): documented \(documented[method]?.sorted() ?? []), specified \(specified.sorted())"
                )
            }
            // The semaphore's POST row, and its permit row ("as for a lock") against the lock's.
            let semaphoreRow = text.split(separator: "\n").first { $0.hasPrefix("| POST `/v1/api/semaphore/key/{name}`") }
            let cells = semaphoreRow.map { $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            let documentedPost = cells.count >= 4 ? Set((cells[2] + " " + cells[3]).matches(of: /\b([1-5][0-9][0-9])\b/).map { String($0.1) }) : []
            let specifiedPost = Set(((paths["/v1/api/semaphore/key/{name}"]?["post"] as? [String: Any])?["responses"] as? [String: Any] ?? [:]).keys)
            #expect(
                !documentedPost.isEmpty && documentedPost == specifiedPost,
                "semaphore POST: documented \(documentedPost.sorted()), specified \(specifiedPost.sorted())"
            )
            for method in ["delete", "patch", "get"] {
                let permit = (paths["/v1/api/semaphore/key/{name}/{permit}"]?[method] as? [String: Any])?["responses"] as? [String: Any]
                let lock = (paths["/v1/api/lock/key/{name}"]?[method] as? [String: Any])?["responses"] as? [String: Any]
                #expect(permit.map { Set($0.keys) } == lock.map { Set($0.keys) }, "a permit's \(method.uppercased()) answers as a lock's does")
            }
            for path in paths.keys where !path.hasPrefix("/v1/api/lock/") {
                #expect(text.contains("`\(path)`") || text.contains("`GET \(path)`"), "Docs/http-api.md mentions \(path)")
            }
        }
    }
}
