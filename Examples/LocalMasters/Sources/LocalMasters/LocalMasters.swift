import Foundation
import Redlock

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Throwaway `redis-server` masters on Unix sockets in a temporary directory: no ports to
/// find, nothing kept on disk. For the examples' demos and tests.
public final class LocalMasters: @unchecked Sendable {
    // @unchecked: `processes` is set once in `start` and only read afterwards.
    private let processes: [Process]
    private let directory: URL

    /// The masters' addresses, for ``Redlock/init(masters:configuration:logger:)``.
    public let addresses: [RedisServerAddress]

    private init(processes: [Process], directory: URL, addresses: [RedisServerAddress]) {
        self.processes = processes
        self.directory = directory
        self.addresses = addresses
    }

    /// Starts `count` masters and waits (at most 10 s) until each one listens.
    public static func start(count: Int) async throws -> LocalMasters {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("locklock-example-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var processes: [Process] = []
        var sockets: [String] = []
        for index in 0..<count {
            let socket = directory.appendingPathComponent("\(index).sock").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try executable())
            process.arguments = ["--port", "0", "--unixsocket", socket, "--save", "", "--appendonly", "no", "--dir", directory.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            processes.append(process)
            sockets.append(socket)
        }
        let masters = LocalMasters(processes: processes, directory: directory, addresses: sockets.map { .unixDomainSocket(path: $0) })
        for _ in 0..<1000 where !sockets.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
            guard processes.allSatisfy(\.isRunning) else { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard sockets.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) else {
            await masters.shutdown()
            throw LocalMastersError(description: "redis-server did not start listening on \(directory.path) within 10 s")
        }
        return masters
    }

    /// Stops every master and removes the directory.
    public func shutdown() async {
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for process in processes {
            for _ in 0..<500 where process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    private static func executable() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"] {
            let candidate = directory + "/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw LocalMastersError(description: "redis-server not found; install it with: apt-get install -y redis-server")
    }
}

/// Runs `body` with `count` fresh masters and always stops them afterwards.
public func withLocalMasters<Result>(count: Int, _ body: ([RedisServerAddress]) async throws -> Result) async throws -> Result {
    let masters = try await LocalMasters.start(count: count)
    do {
        let result = try await body(masters.addresses)
        await masters.shutdown()
        return result
    } catch {
        await masters.shutdown()
        throw error
    }
}

/// Masters that could not be started.
public struct LocalMastersError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String
}
