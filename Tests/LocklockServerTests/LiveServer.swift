import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import LocklockServer
import RedisWire
import RedlockTestSupport
import Redlock

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

/// One HTTP exchange's outcome.
struct HTTPResult: Sendable {
    var status: Int
    var headers: [String: String]
    var body: Data

    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
}

/// A running `locklock` server on a free loopback port over real masters.
struct LiveServer: Sendable {
    let port: Int
    let masters: RedisServerGroup
    let regionMasters: RedisServerGroup

    func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> HTTPResult {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as! HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields { fields["\(name)"] = "\(value)" }
        return HTTPResult(status: http.statusCode, headers: fields, body: data)
    }
}

/// Starts 5 masters (plus 3 for region "eu") and the server, runs `body`, and tears it all down.
func withLiveServer<T: Sendable>(
    anonymousRate: Int = 0,
    developerRate: Int = 0,
    proRate: Int = 0,
    baseDomain: String? = nil,
    _ body: @escaping @Sendable (LiveServer) async throws -> T
) async throws -> T {
    try await withRedisServers(count: 5) { masters throws in
        try await withRedisServers(count: 3) { regionMasters throws in
            let port = try FreePort.pick()
            let configuration = LocklockServerConfiguration(
                host: "127.0.0.1", port: port, anonymousRate: anonymousRate, developerRate: developerRate, proRate: proRate,
                baseDomain: baseDomain, tenants: testTenants
            )
            // 250 ms: bounded, with room for CI's 2 shared cores; the Redlock tests pin the latency.
            let lockConfiguration = RedlockConfiguration(instanceTimeout: .milliseconds(250))
            let groups = MasterGroups(
                primary: Redlock(masters: masters.addresses, configuration: lockConfiguration),
                regions: ["eu": Redlock(masters: regionMasters.addresses, configuration: lockConfiguration)]
            )
            let app = buildApplication(groups: groups, configuration: configuration)
            let server = LiveServer(port: port, masters: masters, regionMasters: regionMasters)
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await app.runService()
                    return nil
                }
                // Bounded wait until the server answers and a quorum of every group is connected.
                var up = false
                for _ in 0..<400 where !up {
                    if (try? await server.request("GET", "/readyz"))?.status == 200 { up = true } else { try await Task.sleep(for: .milliseconds(25)) }
                }
                guard up else { throw RedisServerError("server did not start") }
                do {
                    let result = try await body(server)
                    group.cancelAll()
                    return result
                } catch {
                    group.cancelAll()
                    throw error
                }
            }
        }
    }
}
