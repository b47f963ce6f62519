import Foundation
import Hummingbird
import LocalRedis
import LocklockServer
import RedisWire
import Redlock
import RedlockTestSupport

/// Keys of the test tenants.
enum Keys {
    static let acme = "acme-pro-key-0123456789"
    static let globex = "globex-pro-key-9876543210"
    static let initech = "initech-developer-key-555"
    static let euro = "euro-pro-key-in-region-eu"
}

let testTenants = TenantDirectory([
    Tenant(name: "acme", plan: .pro, keySHA256: TenantDirectory.hash(key: Keys.acme)),
    Tenant(name: "globex", plan: .pro, keySHA256: TenantDirectory.hash(key: Keys.globex)),
    Tenant(name: "initech", plan: .developer, keySHA256: TenantDirectory.hash(key: Keys.initech)),
    Tenant(name: "euro", plan: .pro, keySHA256: TenantDirectory.hash(key: Keys.euro), region: "eu"),
])

/// A running `locklock` server on a free loopback port over real masters.
struct LiveServer: Sendable {
    let port: Int
    let masters: RedisServerGroup
    let regionMasters: RedisServerGroup

    func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> HTTPResult {
        try await loopbackRequest(port: port, method, path, body: body, headers: headers)
    }
}

/// Starts 5 masters (plus 3 for region "eu") and the server, runs `body`, and tears it all down.
func withLiveServer<T: Sendable>(
    anonymousRate: Int = 0,
    developerRate: Int = 0,
    proRate: Int = 0,
    baseDomain: String? = nil,
    setting tweak: ConfigurationTweak? = nil,
    _ body: @escaping @Sendable (LiveServer) async throws -> T
) async throws -> T {
    try await withRedisServers(count: 5) { masters throws in
        try await withRedisServers(count: 3) { regionMasters throws in
            let port = try FreePort.pick()
            var configuration = LocklockServerConfiguration(
                host: "127.0.0.1",
                port: port,
                anonymousRate: anonymousRate,
                developerRate: developerRate,
                proRate: proRate,
                baseDomain: baseDomain,
                tenants: testTenants
            )
            tweak?.apply(&configuration)
            // 250 ms: bounded, with room for CI's 2 shared cores; the Redlock tests pin the latency.
            let lockConfiguration = RedlockConfiguration(instanceTimeout: .milliseconds(250))
            let groups = MasterGroups(
                primary: Redlock(masters: masters.addresses, configuration: lockConfiguration),
                regions: ["eu": Redlock(masters: regionMasters.addresses, configuration: lockConfiguration)]
            )
            let app = try buildApplication(groups: groups, configuration: configuration)
            let server = LiveServer(port: port, masters: masters, regionMasters: regionMasters)
            // Ready once the server answers and a quorum of every group is connected.
            return try await withServing(app, port: port, readyPath: "/readyz") { try await body(server) }
        }
    }
}

/// One setting of the server under test that differs from the default.
struct ConfigurationTweak {
    let apply: (inout LocklockServerConfiguration) -> Void

    /// Sets `keyPath` to `value`.
    static func set<Value>(_ keyPath: WritableKeyPath<LocklockServerConfiguration, Value>, _ value: Value) -> Self {
        Self { $0[keyPath: keyPath] = value }
    }
}
