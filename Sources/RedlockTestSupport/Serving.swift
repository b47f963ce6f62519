import Hummingbird

/// Runs `application` (already configured to listen on 127.0.0.1:`port`) until `body`
/// returns or throws; `body` starts once `GET readyPath` answers 200.
public func withServing<Result: Sendable>(
    _ application: some ApplicationProtocol,
    port: Int,
    readyPath: String,
    _ body: @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await application.runService() }
        defer { group.cancelAll() }
        try await waitUntilServing(port: port, path: readyPath)
        return try await body()
    }
}
