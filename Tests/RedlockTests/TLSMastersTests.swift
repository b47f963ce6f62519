import LocalRedis
import RealServerGate
import RedisWire
import Redlock
import Testing

/// Redlock over 5 real masters that speak TLS, with certificates made by `openssl` per test.
@Suite("Redlock over TLS masters", .serialized, .realRedisServers)
struct TLSMastersTests {
    func withTLSMasters<T>(requiresClientCertificates: Bool, _ body: ([RedisServerAddress], TestCertificates) async throws -> T) async throws -> T {
        let certificates = try TestCertificates.makeAuthority()
        defer { certificates.remove() }
        let options = RedisServerOptions(tls: try certificates.listener(requiresClientCertificates: requiresClientCertificates))
        return try await withRedisServers(count: 5, options: options) { group throws in
            try await body(group.servers.compactMap(\.tlsAddress), certificates)
        }
    }

    func redlock(_ masters: [RedisServerAddress], _ tls: RedisTLSConfiguration) -> Redlock {
        Redlock(masters: masters, configuration: .init(retry: .never, connection: .init(tls: tls)))
    }

    @Test func acquireExtendAndReleaseOverMutualTLS() async throws {
        try await withTLSMasters(requiresClientCertificates: true) { masters, certificates in
            let client = try certificates.issue("locklock-client", clientAuthentication: true)
            let tls = RedisTLSConfiguration(
                trustRoots: .certificateFile(certificates.caCertificate),
                clientIdentity: .init(certificateFile: client.certificate, keyFile: client.key)
            )
            let redlock = redlock(masters, tls)
            #expect(await redlock.connect() == 5)
            let lock = try await redlock.acquire("over-tls", ttl: .seconds(10))
            #expect(lock.fencingToken != nil)
            let extended = try await redlock.extend(lock, ttl: .seconds(20))
            #expect(extended.validity > .seconds(15))
            #expect(try await redlock.inspect("over-tls").isHeld)
            #expect(try await redlock.release(extended) == .released)
            await redlock.shutdown()
        }
    }

    @Test func mastersThatRequireAClientCertificateRefuseALockWithoutOne() async throws {
        try await withTLSMasters(requiresClientCertificates: true) { masters, certificates in
            let redlock = redlock(masters, .init(trustRoots: .certificateFile(certificates.caCertificate)))
            #expect(await redlock.connect() == 0)
            let error = await #expect(throws: RedlockError.self) { try await redlock.acquire("refused", ttl: .seconds(10)) }
            #expect(error?.code == .quorumUnreachable)
            await redlock.shutdown()
        }
    }

    @Test func mastersWithACertificateFromAnotherCAAreRefused() async throws {
        try await withTLSMasters(requiresClientCertificates: false) { masters, _ in
            let stranger = try TestCertificates.makeAuthority()
            defer { stranger.remove() }
            let redlock = redlock(masters, .init(trustRoots: .certificateFile(stranger.caCertificate)))
            #expect(await redlock.connect() == 0)
            await #expect(throws: RedlockError.self) { try await redlock.acquire("refused", ttl: .seconds(10)) }
            await redlock.shutdown()
        }
    }
}
