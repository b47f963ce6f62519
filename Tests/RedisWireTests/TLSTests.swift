import LocalRedis
import RealServerGate
import RedisWire
import Testing

/// TLS to real redis-server processes on `--tls-port`, with a CA and certificates made by
/// `openssl` for each test.
@Suite("TLS to a real redis-server", .serialized, .realRedisServers)
struct TLSTests {
    /// One server with TLS (certificates for `localhost` and 127.0.0.1), and its CA.
    func withTLSServer<T>(
        requiresClientCertificates: Bool = false,
        loopbackAddressInCertificate: Bool = true,
        expiredCertificate: Bool = false,
        _ body: (RedisServer, TestCertificates) async throws -> T
    ) async throws -> T {
        let certificates = try TestCertificates.makeAuthority()
        defer { certificates.remove() }
        let options = RedisServerOptions(
            tls: try certificates.listener(
                requiresClientCertificates: requiresClientCertificates,
                loopbackAddress: loopbackAddressInCertificate,
                expired: expiredCertificate
            )
        )
        return try await withRedisServers(count: 1, options: options) { group throws in try await body(group[0], certificates) }
    }

    func connection(to server: RedisServer, _ tls: RedisTLSConfiguration) throws -> RedisConnection {
        let address = try #require(server.tlsAddress)
        return RedisConnection(address: address, configuration: .init(reconnect: .init(initialDelay: .milliseconds(20)), tls: tls))
    }

    @Test func commandsTravelOverTLSAndAReconnectReusesTheConfiguration() async throws {
        try await withTLSServer { server, certificates in
            let connection = try connection(to: server, .init(trustRoots: .certificateFile(certificates.caCertificate)))
            #expect(try await connection.send("SET", "k", "over tls") == .simpleString("OK"))
            #expect(try await connection.send("GET", "k") == .bulkString(Array("over tls".utf8)))
            try await server.restart()
            var answered = false
            for _ in 0..<100 where !answered {  // bounded: about 2 s of re-dialling
                answered = (try? await connection.send("PING")) == .simpleString("PONG")
                if !answered { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(answered, "the connection re-dialled the restarted server over TLS")
            await connection.close()
        }
    }

    @Test func aCertificateFromAnotherCAIsRefusedAsUntrusted() async throws {
        try await withTLSServer { server, _ in
            let stranger = try TestCertificates.makeAuthority()
            defer { stranger.remove() }
            let connection = try connection(to: server, .init(trustRoots: .certificateFile(stranger.caCertificate)))
            let error = await #expect(throws: RedisWireError.self) { try await connection.connect() }
            #expect(error?.tlsFailure == .untrustedCertificate, "\(String(describing: error))")
            #expect(error?.message.contains("trusted CA") == true)
            await connection.close()
        }
    }

    @Test func anExpiredCertificateIsReportedAsExpired() async throws {
        try await withTLSServer(expiredCertificate: true) { server, certificates in
            let connection = try connection(to: server, .init(trustRoots: .certificateFile(certificates.caCertificate)))
            let error = await #expect(throws: RedisWireError.self) { try await connection.connect() }
            #expect(error?.tlsFailure == .expiredCertificate, "\(String(describing: error))")
            #expect(error?.message.contains("expired") == true)
            await connection.close()
        }
    }

    @Test func theServerNameIsVerifiedAgainstTheCertificate() async throws {
        // A certificate for `localhost` only: the address dialled, 127.0.0.1, is not in it.
        try await withTLSServer(loopbackAddressInCertificate: false) { server, certificates in
            let trust = RedisTLSConfiguration.TrustRoots.certificateFile(certificates.caCertificate)
            let other = try connection(to: server, .init(trustRoots: trust, serverName: "redis.example.com"))
            let error = await #expect(throws: RedisWireError.self) { try await other.connect() }
            #expect(error?.tlsFailure == .nameMismatch, "\(String(describing: error))")
            await other.close()
            let named = try connection(to: server, .init(trustRoots: trust, serverName: "localhost"))
            #expect(try await named.send("PING") == .simpleString("PONG"), "the certificate's own name is accepted")
            await named.close()
        }
    }

    @Test func mutualTLSAdmitsAClientCertificateAndRefusesNone() async throws {
        try await withTLSServer(requiresClientCertificates: true) { server, certificates in
            let client = try certificates.issue("locklock-client", clientAuthentication: true)
            let trusted = RedisTLSConfiguration(trustRoots: .certificateFile(certificates.caCertificate))
            let anonymous = try connection(to: server, trusted)
            let error = await #expect(throws: RedisWireError.self) { try await anonymous.connect() }
            #expect(error?.tlsFailure == .clientCertificateRefused, "\(String(describing: error))")
            await anonymous.close()

            var mutual = trusted
            mutual.clientIdentity = .init(certificateFile: client.certificate, keyFile: client.key)
            let identified = try connection(to: server, mutual)
            #expect(try await identified.send("PING") == .simpleString("PONG"))
            await identified.close()
        }
    }

    @Test func anUnreadableCAFileIsAClearError() async throws {
        try await withTLSServer { server, _ in
            let connection = try connection(to: server, .init(trustRoots: .certificateFile("/nonexistent/ca.pem")))
            let error = await #expect(throws: RedisWireError.self) { try await connection.connect() }
            #expect(error?.message.contains("TLS configuration cannot be used") == true, "\(String(describing: error))")
            await connection.close()
        }
    }
}
