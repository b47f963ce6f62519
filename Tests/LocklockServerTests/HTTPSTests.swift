import Foundation
import Hummingbird
import LocalRedis
import LocklockServer
import RealServerGate
import Redlock
import RedlockTestSupport
import Testing

/// `serve --tls-cert --tls-key`: the API over HTTPS, so keys and secrets never travel in
/// cleartext when there is no TLS proxy in front.
@Suite("HTTPS", .serialized, .realRedisServers, .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")))
struct HTTPSTests {
    /// Runs curl with `arguments`; its exit status and output.
    func curl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["--silent", "--show-error", "--max-time", "5"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func theAPIIsServedOverHTTPSWithTheGivenCertificate() async throws {
        let certificates = try TestCertificates.makeAuthority()
        defer { certificates.remove() }
        let server = try certificates.issue("localhost")
        try await withRedisServers(count: 3) { masters throws in
            let port = try FreePort.pick()
            var configuration = LocklockServerConfiguration(host: "127.0.0.1", port: port, anonymousRate: 0)
            configuration.tlsCertificatePath = server.certificate
            configuration.tlsKeyPath = server.key
            let app = try buildApplication(groups: MasterGroups(primary: Redlock(masters: masters.addresses)), configuration: configuration)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await app.runService() }
                defer { group.cancelAll() }
                var ready = (status: Int32(1), output: "")
                for _ in 0..<100 where ready.output != #"{"status":"ready"}"# {
                    ready = try curl(["--cacert", certificates.caCertificate, "https://localhost:\(port)/readyz"])
                    if ready.output != #"{"status":"ready"}"# { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(ready.output == #"{"status":"ready"}"#, "\(ready)")
                let lock = try curl([
                    "--cacert", certificates.caCertificate, "-X", "POST", "-H", "Content-Type: application/json",
                    "-d", #"{"secret":"over-tls"}"#, "-w", "%{http_code}", "-o", "/dev/null",
                    "https://localhost:\(port)/v1/api/lock/uuid/\(UUID().uuidString.lowercased())",
                ])
                #expect(lock.output == "201")
                let plain = try curl(["http://localhost:\(port)/livez"])
                #expect(!plain.output.contains(#""status":"ok""#), "no cleartext HTTP on the TLS port")
                let untrusted = try curl(["https://localhost:\(port)/livez"])
                #expect(untrusted.status != 0, "a client that does not trust the CA refuses the server")
                // A client willing to speak TLS 1.1 (its own security level lowered) is refused.
                let old = try curl([
                    "--cacert", certificates.caCertificate, "--tlsv1.1", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0",
                    "https://localhost:\(port)/livez",
                ])
                #expect(old.status != 0, "TLS 1.1 was accepted: \(old.output)")
                let current = try curl(["--cacert", certificates.caCertificate, "--tlsv1.2", "--tls-max", "1.2", "https://localhost:\(port)/livez"])
                #expect(current.output == #"{"status":"ok"}"#, "TLS 1.2 is served: \(current)")
            }
        }
    }
}
