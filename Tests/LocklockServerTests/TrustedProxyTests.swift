import LocklockServer
import NIOCore
import RealServerGate
import RedlockTestSupport
import Testing

@testable import LocklockServer

/// Behind a proxy every client arrives from the proxy's address; the forwarded client address
/// counts only when the proxy is trusted.
@Suite("Trusted proxies", .serialized, .realRedisServers)
struct TrustedProxyTests {
    /// Statuses of 3 GETs (burst 2 at rate 1) from one forwarded address each.
    func statuses(_ server: LiveServer, forwardedFor clients: [String], header: String = "X-Forwarded-For") async throws -> [[Int]] {
        var all: [[Int]] = []
        for client in clients {
            var statuses: [Int] = []
            for _ in 0..<3 {
                let path = "/v1/api/lock/uuid/6f1c2a86-0d2e-4b51-9a1f-0b8b8c3f2f10"
                statuses.append(try await server.request("GET", path, headers: [header: client]).status)
            }
            all.append(statuses)
        }
        return all
    }

    @Test func behindATrustedProxyEachForwardedClientHasItsOwnBucket() async throws {
        let loopback = try #require(IPNetwork("127.0.0.0/8"))
        try await withLiveServer(anonymousRate: 1, setting: .set(\.trustedProxies, [loopback])) { server throws in
            let statuses = try await statuses(server, forwardedFor: ["203.0.113.1", "198.51.100.7, 203.0.113.2"])
            #expect(statuses == [[404, 404, 429], [404, 404, 429]], "\(statuses)")
        }
    }

    @Test func onlyTheHeaderTheProxyWritesNamesTheClient() async throws {
        let loopback = try #require(IPNetwork("127.0.0.0/8"))
        try await withLiveServer(anonymousRate: 1, setting: .set(\.trustedProxies, [loopback])) { server throws in
            // The proxy appends to X-Forwarded-For (nginx, ALB, Envoy, Traefik) and passes the
            // client's own Forwarded header through: a fresh one per request must not buy a
            // fresh bucket.
            var statuses: [Int] = []
            for attempt in 0..<3 {
                let headers = ["X-Forwarded-For": "203.0.113.9", "Forwarded": "for=198.51.100.\(attempt + 1)"]
                statuses.append(try await server.request("GET", "/v1/api/lock/uuid/6f1c2a86-0d2e-4b51-9a1f-0b8b8c3f2f10", headers: headers).status)
            }
            #expect(statuses == [404, 404, 429], "the client chose its identity: \(statuses)")
        }
        let behindForwarded = ConfigurationTweak {
            $0.trustedProxies = [loopback]
            $0.forwardedHeader = .forwarded
        }
        try await withLiveServer(anonymousRate: 1, setting: behindForwarded) { server throws in
            let statuses = try await statuses(server, forwardedFor: ["203.0.113.1", "203.0.113.2"])
            #expect(statuses == [[404, 404, 429], [429, 429, 429]], "X-Forwarded-For is not read when Forwarded is the proxy's: \(statuses)")
            let forwarded = try await self.statuses(server, forwardedFor: [#"for="[2001:db8::1]:4711""#], header: "Forwarded")
            #expect(forwarded == [[404, 404, 429]], "\(forwarded)")
        }
    }

    @Test func forwardedAddressesFromAnUntrustedPeerAreIgnored() async throws {
        let elsewhere = try #require(IPNetwork("10.0.0.0/8"))
        try await withLiveServer(anonymousRate: 1, setting: .set(\.trustedProxies, [elsewhere])) { server throws in
            let statuses = try await statuses(server, forwardedFor: ["203.0.113.1", "203.0.113.2"])
            #expect(statuses == [[404, 404, 429], [429, 429, 429]], "one bucket, the peer's: \(statuses)")
        }
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.200.3.4", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::1", false),
        ("192.0.2.1/32", "192.0.2.1", true),
    ])
    func networksContainTheirAddresses(network: String, address: String, contained: Bool) throws {
        let parsed = try #require(IPNetwork(network))
        #expect(parsed.contains(try SocketAddress(ipAddress: address, port: 0)) == contained)
    }

    @Test(arguments: ["10.0.0.0/33", "10.0.0/8", "::1/129", "example.com/8", "10.0.0.0"])
    func badNetworksAreRefused(text: String) {
        if text == "10.0.0.0" {
            #expect(IPNetwork(text)?.prefixLength == 32, "a bare address is a /32")
        } else {
            #expect(IPNetwork(text) == nil)
        }
    }
}
