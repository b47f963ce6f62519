import Foundation
import RedisWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors from starting or controlling local servers.
public struct RedisServerError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for people.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    /// A readable summary, for logs and messages.
    public var description: String { "RedisServerError: \(message)" }
}

/// How a local `redis-server` is started.
public struct RedisServerOptions: Sendable {
    /// What a server is for: it decides the directory name and whether the pid is recorded
    /// for `make clean-test-servers`.
    public enum Role: Sendable {
        /// A test's throwaway server: recorded, so that a crashed run's leftovers can be killed.
        case test
        /// A `locklock dev` master: not recorded, so that cleaning up after tests spares it.
        case development

        var directoryPrefix: String {
            switch self {
            case .test: "locklock-test-redis"
            case .development: "locklock-dev-redis"
            }
        }
    }

    /// Persistence of a test server.
    public enum Persistence: Sendable {
        /// No RDB, no AOF: a restart loses every key (the default).
        case none
        /// AOF with `appendfsync always`: a restart keeps every acknowledged write.
        case appendOnlyAlways
        /// AOF with `appendfsync everysec`.
        case appendOnlyEverySecond
    }

    /// A TLS port beside the plain one (which stays, for readiness checks and direct access).
    public struct TLSListener: Sendable {
        /// The server's certificate and key (PEM files).
        public var certificateFile: String
        /// The server's private key.
        public var keyFile: String
        /// The CA that signs client certificates.
        public var caCertificateFile: String
        /// Whether clients must present a certificate signed by that CA (`tls-auth-clients`).
        public var requiresClientCertificates: Bool

        /// Creates a TLS listener description.
        public init(certificateFile: String, keyFile: String, caCertificateFile: String, requiresClientCertificates: Bool = false) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.caCertificateFile = caCertificateFile
            self.requiresClientCertificates = requiresClientCertificates
        }
    }

    /// Persistence mode.
    public var persistence: Persistence
    /// Also listen with TLS on a second free port.
    public var tls: TLSListener?
    /// Extra `--name value` arguments passed to redis-server.
    public var extraArguments: [String]
    /// Environment variables added to the server's environment (for example `LD_PRELOAD`
    /// and `FAKETIME` for clock-jump tests).
    public var environment: [String: String]
    /// The redis-server executable; found on `PATH` (and `/usr/bin`, `/usr/sbin`) when nil.
    public var executable: String?
    /// What the server is for.
    public var role: Role

    /// Creates options; the defaults start a throwaway test server with no persistence.
    public init(
        persistence: Persistence = .none,
        extraArguments: [String] = [],
        environment: [String: String] = [:],
        executable: String? = nil,
        role: Role = .test,
        tls: TLSListener? = nil
    ) {
        self.tls = tls
        self.persistence = persistence
        self.extraArguments = extraArguments
        self.environment = environment
        self.executable = executable
        self.role = role
    }
}

/// One real `redis-server` process on a free loopback port in its own temporary directory:
/// a test's master, a chaos scenario's master, or a `locklock dev` master.
///
/// It can be stopped, killed with SIGKILL, paused with SIGSTOP, resumed with SIGCONT and
/// restarted on the same port and directory. ``shutdown()`` (also run from `deinit`) kills
/// it and removes the directory.
public final class RedisServer: @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock`.
    private let lock = NSLock()
    private var process: Process?
    /// The extra arguments given to ``restart(extraArguments:)``, in place of the options' own.
    private var restartArguments: [String]?

    /// The loopback port the server listens on.
    public let port: Int
    /// The loopback port it listens on with TLS, if started with ``RedisServerOptions/tls``.
    public let tlsPort: Int?
    /// The server's working directory (AOF files live here).
    public let directory: URL
    /// The options it was started with.
    public let options: RedisServerOptions

    /// `127.0.0.1:port` as an address.
    public var address: RedisServerAddress { .hostname("127.0.0.1", port: port) }
    /// `127.0.0.1:tlsPort` as an address, if the server speaks TLS.
    public var tlsAddress: RedisServerAddress? { tlsPort.map { .hostname("127.0.0.1", port: $0) } }
    /// `127.0.0.1:port` as text.
    public var hostAndPort: String { "127.0.0.1:\(port)" }

    /// The server's process id, while it runs.
    public var pid: Int32? {
        lock.withLock { process.flatMap { $0.isRunning ? $0.processIdentifier : nil } }
    }

    /// Starts a server on a free loopback port and waits until it answers `PING`.
    public static func start(options: RedisServerOptions = .init()) async throws -> RedisServer {
        var lastError: any Error = RedisServerError("no attempt made")
        for _ in 0..<5 {
            let port = try FreePort.pick()
            let tlsPort = try options.tls.map { _ in try FreePort.pick() }
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("\(options.role.directoryPrefix)-\(port)-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let server = RedisServer(port: port, tlsPort: tlsPort, directory: directory, options: options)
            do {
                try await server.launch()
                return server
            } catch {
                // Most likely the port was taken between picking and binding: try another.
                lastError = error
                await server.shutdown()
            }
        }
        throw lastError
    }

    private init(port: Int, tlsPort: Int?, directory: URL, options: RedisServerOptions) {
        self.port = port
        self.tlsPort = tlsPort
        self.directory = directory
        self.options = options
    }

    deinit {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The full redis-server argument list for this server.
    var arguments: [String] {
        var arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
            "--dir", directory.path, "--save", "", "--daemonize", "no",
            "--logfile", directory.appendingPathComponent("redis.log").path,
            "--enable-debug-command", "local",
        ]
        switch options.persistence {
        case .none: arguments += ["--appendonly", "no"]
        case .appendOnlyAlways: arguments += ["--appendonly", "yes", "--appendfsync", "always"]
        case .appendOnlyEverySecond: arguments += ["--appendonly", "yes", "--appendfsync", "everysec"]
        }
        if let tls = options.tls, let tlsPort {
            arguments += [
                "--tls-port", String(tlsPort), "--tls-cert-file", tls.certificateFile, "--tls-key-file", tls.keyFile,
                "--tls-ca-cert-file", tls.caCertificateFile, "--tls-auth-clients", tls.requiresClientCertificates ? "yes" : "no",
            ]
        }
        return arguments + (lock.withLock { restartArguments } ?? options.extraArguments)
    }

    private func launch() async throws {
        let executable = try options.executable ?? Self.findExecutable()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for (name, value) in options.environment { environment[name] = value }
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        lock.withLock { self.process = process }
        if options.role == .test { Self.recordPID(process.processIdentifier) }
        try await waitUntilReady(process)
    }

    /// Where every test server's pid is recorded, one empty file per pid, so that
    /// `make clean-test-servers` kills exactly the servers a crashed run left behind.
    public static let pidDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("locklock-test-servers")

    private static func recordPID(_ pid: Int32) {
        try? FileManager.default.createDirectory(at: pidDirectory, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: pidDirectory.appendingPathComponent(String(pid)).path, contents: nil)
    }

    private static func forgetPID(_ pid: Int32) {
        try? FileManager.default.removeItem(at: pidDirectory.appendingPathComponent(String(pid)))
    }

    private func waitUntilReady(_ process: Process) async throws {
        // Bounded: 10 s in 10 ms steps.
        for _ in 0..<1000 {
            if !process.isRunning {
                let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
                throw RedisServerError("redis-server exited at start (status \(process.terminationStatus)): \(log.suffix(500))")
            }
            // The server that answers must be this process: with ports picked in parallel, a
            // second server can be started on a port another one has just taken; it then fails
            // to bind while the first answers in its place.
            if Self.answers(port: port, asProcess: process.processIdentifier) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw RedisServerError("redis-server on port \(port) did not answer PING within 10 s")
    }

    /// Kills the server with SIGKILL and waits for it to exit. Its data is lost unless it
    /// used AOF.
    public func kill9() async {
        let process = lock.withLock { self.process }
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        await Self.waitForExit(process)
        Self.forgetPID(process.processIdentifier)
    }

    /// Pauses the server with SIGSTOP: connections stay open, nothing is answered.
    public func pause() {
        lock.withLock {
            guard let process, process.isRunning else { return }
            kill(process.processIdentifier, SIGSTOP)
        }
    }

    /// Resumes a paused server with SIGCONT.
    public func resume() {
        lock.withLock {
            guard let process, process.isRunning else { return }
            kill(process.processIdentifier, SIGCONT)
        }
    }

    /// Starts the server again on the same port and directory (after ``kill9()``); with
    /// `extraArguments`, those replace ``RedisServerOptions/extraArguments`` from now on (an
    /// ACL user redefined without a command, say).
    public func restart(extraArguments: [String]? = nil) async throws {
        await kill9()
        if let extraArguments { lock.withLock { restartArguments = extraArguments } }
        // The port may linger briefly after the kill; retry the bind a few times.
        var lastError: any Error = RedisServerError("no attempt made")
        for _ in 0..<20 {
            do {
                try await launch()
                return
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        throw lastError
    }

    /// Kills the server and removes its directory. Safe to call more than once.
    public func shutdown() async {
        await kill9()
        try? FileManager.default.removeItem(at: directory)
    }

    private static func waitForExit(_ process: Process) async {
        // Bounded: 10 s.
        for _ in 0..<1000 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Finds `redis-server`, or throws a message with the install command.
    public static func findExecutable() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
            let candidate = directory + "/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw RedisServerError("redis-server not found; install it with: apt-get install -y redis-server (or run `make test`)")
    }

    /// Whether the server on `port` answers `INFO server` as process `pid` (a blocking
    /// exchange over a plain socket, used only while waiting for start-up).
    static func answers(port: Int, asProcess pid: Int32) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return false }
        let request = Array("INFO server\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { return false }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let marker = "process_id:"
        for _ in 0..<16 {
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { return false }
            received += chunk[0..<count]
            let text = String(decoding: received, as: UTF8.self)
            if let range = text.range(of: marker), let end = text[range.upperBound...].firstIndex(where: \.isNewline) {
                return Int32(text[range.upperBound..<end]) == pid
            }
        }
        return false
    }
}

/// Picks free loopback TCP ports.
public enum FreePort {
    /// Binds port 0 on 127.0.0.1, reads the port the kernel chose, and releases it.
    public static func pick() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisServerError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw RedisServerError("bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw RedisServerError("getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension sockaddr_in {
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}
