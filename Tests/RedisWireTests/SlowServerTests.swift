import LocalRedis
import NIOCore
import RealServerGate
import RedisWire
import Testing

/// `INFO stats`' `total_connections_received` on `server`, read over a connection of its own.
private func connectionsReceived(_ server: RedisServer) async throws -> Int {
    let probe = RedisConnection(address: server.address, configuration: .init(commandTimeout: .seconds(5)))
    defer { Task { await probe.close() } }
    let info = try await probe.send("INFO", "stats").string ?? ""
    let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("total_connections_received:") }
    return Int(line?.dropFirst("total_connections_received:".count) ?? "") ?? -1
}

@Suite("RedisConnection under a slow server", .serialized, .realRedisServers)
struct SlowServerTests {
    @Test func aServerJustSlowerThanTheCommandTimeoutCostsTimeoutsNotReconnects() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address, configuration: .init(commandTimeout: .milliseconds(50)))
            defer { Task { await connection.close() } }
            try await connection.connect()
            let before = try await connectionsReceived(group[0])
            for round in 0..<10 {
                group[0].pause()
                let stalled = (0..<5).map { index in Task { try await connection.send("ECHO", "stalled-\(round)-\(index)") } }
                try await Task.sleep(for: .milliseconds(100))
                group[0].resume()
                for task in stalled {
                    await #expect(throws: RedisWireError.self) { try await task.value }
                }
                // The late replies of the timed-out commands are never taken for these.
                for index in 0..<5 { #expect(try await connection.send("ECHO", "fresh-\(round)-\(index)").string == "fresh-\(round)-\(index)") }
            }
            let after = try await connectionsReceived(group[0])
            // One connection for each probe; the client itself stayed on its connection.
            #expect(after - before <= 2, "the client re-dialled \(after - before - 1) times for a server that was only slow")
        }
    }

    @Test func aServerSilentPastTheHealthTimeoutIsDroppedAndRedialled() async throws {
        try await withRedisServers(count: 1) { group throws in
            let configuration = RedisConnectionConfiguration(commandTimeout: .milliseconds(50), healthTimeout: .milliseconds(300))
            let connection = RedisConnection(address: group[0].address, configuration: configuration)
            defer { Task { await connection.close() } }
            try await connection.connect()
            let before = try await connectionsReceived(group[0])
            group[0].pause()
            await #expect(throws: RedisWireError.self) { try await connection.send("PING") }
            try await Task.sleep(for: .milliseconds(500))
            group[0].resume()
            var answered = false
            for _ in 0..<100 where !answered {
                answered = (try? await connection.send("PING")) == .simpleString("PONG")
                if !answered { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(answered)
            #expect(try await connectionsReceived(group[0]) - before >= 2, "a silent connection was dropped and re-dialled")
        }
    }

    @Test func commandsWhileAFullPipelineWaitsFailFastPastTheInFlightCap() async throws {
        try await withRedisServers(count: 1) { group throws in
            let configuration = RedisConnectionConfiguration(commandTimeout: .seconds(2), maximumInFlight: 8)
            let connection = RedisConnection(address: group[0].address, configuration: configuration)
            defer { Task { await connection.close() } }
            try await connection.connect()
            group[0].pause()
            let waiting = (0..<8).map { index in Task { try await connection.send("ECHO", "\(index)") } }
            try await Task.sleep(for: .milliseconds(50))
            let error = await #expect(throws: RedisWireError.self) { try await connection.send("PING") }
            #expect(error?.code == .unavailable)
            group[0].resume()
            for (index, task) in waiting.enumerated() { #expect(try await task.value.string == "\(index)") }
        }
    }
}
