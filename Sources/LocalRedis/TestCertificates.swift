import Foundation

/// A throwaway certificate authority and certificates it signed, made with the `openssl`
/// command in a temporary directory, for tests of TLS on loopback.
public struct TestCertificates: Sendable {
    /// The directory holding every file; ``remove()`` deletes it.
    public let directory: URL
    /// The CA's certificate (PEM): what a client trusts.
    public var caCertificate: String { directory.appendingPathComponent("ca.pem").path }

    /// Makes a CA in a new temporary directory.
    public static func makeAuthority() throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("locklock-test-tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        try certificates.openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Locklock Test CA",
            "-keyout", "ca.key", "-out", "ca.pem",
        ])
        return certificates
    }

    /// Issues a certificate for `name` (a DNS name, and 127.0.0.1 unless `loopbackAddress` is
    /// false) signed by the CA; returns the paths of its certificate and key (PEM).
    /// With `expired`, the certificate was valid for one day ending yesterday (issued under
    /// libfaketime, three days in the past).
    public func issue(
        _ name: String,
        clientAuthentication: Bool = false,
        loopbackAddress: Bool = true,
        expired: Bool = false
    ) throws -> (certificate: String, key: String) {
        let extensions = directory.appendingPathComponent("\(name).ext")
        let usage = clientAuthentication ? "clientAuth" : "serverAuth"
        let names = loopbackAddress ? "DNS:\(name),IP:127.0.0.1" : "DNS:\(name)"
        try "subjectAltName=\(names)\nextendedKeyUsage=\(usage)\n".write(to: extensions, atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(name)", "-keyout", "\(name).key", "-out", "\(name).csr"])
        try openssl(
            [
                "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", expired ? "1" : "2",
                "-extfile", extensions.path, "-out", "\(name).pem",
            ],
            environment: expired ? ["LD_PRELOAD": FakeClock.library, "FAKETIME": "-3d"] : [:]
        )
        return (directory.appendingPathComponent("\(name).pem").path, directory.appendingPathComponent("\(name).key").path)
    }

    /// A TLS listener for a local redis-server: a certificate for `localhost` (see
    /// ``issue(_:clientAuthentication:loopbackAddress:expired:)``) and this CA for clients'
    /// certificates.
    public func listener(
        requiresClientCertificates: Bool = false,
        loopbackAddress: Bool = true,
        expired: Bool = false
    ) throws -> RedisServerOptions.TLSListener {
        let server = try issue("localhost", loopbackAddress: loopbackAddress, expired: expired)
        return .init(
            certificateFile: server.certificate,
            keyFile: server.key,
            caCertificateFile: caCertificate,
            requiresClientCertificates: requiresClientCertificates
        )
    }

    /// Deletes every file.
    public func remove() { try? FileManager.default.removeItem(at: directory) }

    private func openssl(_ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "openssl \(arguments.first ?? "") failed"])
        }
    }
}
