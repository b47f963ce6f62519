import Hummingbird
import LocalRedis
import LocklockServer
import RealServerGate
import RedisWire
import Redlock
import RedlockTestSupport
import Testing

/// Two replicas of the server over the same masters: a client's rate is one rate, whichever
/// replica its requests reach.
@Suite("Throttling shared by replicas", .serialized, .realRedisServers)
struct SharedThrottlingTests {
    func withReplicas(
        throttle: LocklockServerConfiguration.Throttle,
        anonymousRate: Int = 1,
        anonymousWaiters: Int = 10,
        _ body: @escaping @Sendable ([Int], RedisServerGroup) async throws -> Void
    ) async throws {
        try await withRedisServers(count: 3) { masters throws in
            var ports: [Int] = []
            var apps: [any ApplicationProtocol] = []
            for _ in 0..<2 {
                let port = try FreePort.pick()
                var configuration = LocklockServerConfiguration(host: "127.0.0.1", port: port, anonymousRate: anonymousRate)
                configuration.throttle = throttle
                configuration.anonymousWaiters = anonymousWaiters
                let groups = MasterGroups(primary: Redlock(masters: masters.addresses, configuration: .init(instanceTimeout: .milliseconds(250))))
                apps.append(try buildApplication(groups: groups, configuration: configuration))
                ports.append(port)
            }
            let (first, second) = (apps[0], apps[1])
            let listening = ports
            try await withServing(first, port: listening[0], readyPath: "/readyz") {
                try await withServing(second, port: listening[1], readyPath: "/readyz") {
                    try await body(listening, masters)
                }
            }
        }
    }

    static let path = "/v1/api/lock/uuid/6f1c2a86-0d2e-4b51-9a1f-0b8b8c3f2f10"

    @Test func aClientSpreadingItsRequestsOverTwoReplicasGetsOneRate() async throws {
        try await withReplicas(throttle: .shared) { ports, _ in
            var statuses: [Int] = []
            for port in [ports[0], ports[1], ports[0], ports[1]] {
                statuses.append(try await loopbackRequest(port: port, "GET", Self.path).status)
            }
            #expect(statuses == [404, 404, 429, 429], "a burst of 2 in all, not 2 per replica: \(statuses)")
        }
    }

    /// Calls on `masters` since their last reset, but the test's own INFO and CONFIG.
    static func commands(on masters: RedisServerGroup) async throws -> Int {
        var total = 0
        for server in masters.servers {
            let connection = RedisConnection(address: server.address)
            let stats = try await connection.send("INFO", "commandstats").string ?? ""
            await connection.close()
            for line in stats.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
                guard !line.hasPrefix("cmdstat_info:"), !line.hasPrefix("cmdstat_config"),
                    let calls = line.split(separator: ",").first?.split(separator: "=").last.flatMap({ Int($0) })
                else { continue }
                total += calls
            }
        }
        return total
    }

    @Test func aFloodOfRefusedRequestsCostsTheMastersAlmostNothing() async throws {
        try await withReplicas(throttle: .shared) { ports, masters in
            for server in masters.servers {
                let connection = RedisConnection(address: server.address)
                _ = try await connection.send("CONFIG", "RESETSTAT")
                await connection.close()
            }
            let before = try await Self.commands(on: masters)
            // A malformed body: what is asked of the masters is the throttling alone.
            var refused = 0
            for request in 0..<200 {
                let port = ports[request % 2]
                let status = try await loopbackRequest(port: port, "POST", Self.path, body: "{", headers: ["Content-Type": "application/json"]).status
                if status == 429 { refused += 1 }
            }
            let spent = try await Self.commands(on: masters) - before
            #expect(refused >= 150, "the flood was throttled: \(refused) of 200 refused")
            let perRefusal = Double(spent) / Double(max(refused, 1))
            #expect(perRefusal <= 0.2, "\(spent) master commands for \(refused) refusals: \(perRefusal) each")
        }
    }

    @Test func aClientsWaitersAreCountedOnceOverEveryReplica() async throws {
        try await withReplicas(throttle: .shared, anonymousRate: 0, anonymousWaiters: 4) { ports, _ in
            let path = "/v1/api/lock/uuid/0d9f3c1e-7b5a-4c2e-9f1d-3a6b8c2e4f70"
            let held = try await loopbackRequest(
                port: ports[0],
                "POST",
                path,
                body: #"{"expires_in":30}"#,
                headers: ["Content-Type": "application/json"]
            )
            #expect(held.status == 201)
            // 12 waiting POSTs from one address, over both replicas: 4 wait in all, not 4 each.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<12 {
                    group.addTask {
                        try await loopbackRequest(
                            port: ports[index % 2],
                            "POST",
                            path,
                            body: #"{"expires_in":30,"wait":2}"#,
                            headers: ["Content-Type": "application/json"]
                        ).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 429 }.count == 8, "8 turned away, 4 waited (409 at their deadline): \(statuses.sorted())")
            #expect(statuses.filter { $0 == 409 }.count == 4, "\(statuses.sorted())")
        }
    }

    @Test func withLocalThrottlingEachReplicaCountsAlone() async throws {
        try await withReplicas(throttle: .local) { ports, _ in
            var statuses: [Int] = []
            for port in [ports[0], ports[1], ports[0], ports[1]] {
                statuses.append(try await loopbackRequest(port: port, "GET", Self.path).status)
            }
            #expect(statuses == [404, 404, 404, 404], "\(statuses)")
        }
    }

    @Test func withTheThrottlingMasterDownEachReplicaFallsBackToItsOwnLimiter() async throws {
        try await withReplicas(throttle: .shared) { ports, masters in
            for server in masters.servers { await server.kill9() }
            var statuses: [Int] = []
            for _ in 0..<3 { statuses.append(try await loopbackRequest(port: ports[0], "GET", Self.path).status) }
            #expect(statuses.last == 429, "the local limiter still throttles: \(statuses)")
        }
    }
}
