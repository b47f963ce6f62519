import RedisWire

/// Several independent test masters (no replication between them).
public final class RedisServerGroup: Sendable {
    /// The servers, in start order.
    public let servers: [RedisServer]

    /// Starts `count` servers in parallel.
    public static func start(count: Int, options: RedisServerOptions = .init()) async throws -> RedisServerGroup {
        let servers = try await withThrowingTaskGroup(of: (Int, RedisServer).self) { group in
            for index in 0..<count {
                group.addTask { (index, try await RedisServer.start(options: options)) }
            }
            var started: [(Int, RedisServer)] = []
            do {
                for try await entry in group { started.append(entry) }
            } catch {
                for (_, server) in started { await server.shutdown() }
                throw error
            }
            return started.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return RedisServerGroup(servers: servers)
    }

    private init(servers: [RedisServer]) { self.servers = servers }

    /// The servers' addresses.
    public var addresses: [RedisServerAddress] { servers.map(\.address) }

    /// `h:p,h:p,...` as the command line takes it.
    public var commaSeparated: String { servers.map(\.hostAndPort).joined(separator: ",") }

    /// Subscript by index.
    public subscript(index: Int) -> RedisServer { servers[index] }

    /// Kills every server and removes their directories.
    public func shutdown() async {
        for server in servers { await server.shutdown() }
    }
}

/// Runs `body` with `count` fresh servers and always shuts them down afterwards, whether
/// `body` returns or throws.
public func withRedisServers<Result>(
    count: Int,
    options: RedisServerOptions = .init(),
    _ body: (RedisServerGroup) async throws -> Result
) async throws -> Result {
    let group = try await RedisServerGroup.start(count: count, options: options)
    do {
        let result = try await body(group)
        await group.shutdown()
        return result
    } catch {
        await group.shutdown()
        throw error
    }
}
