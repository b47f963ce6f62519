import Foundation
import LocklockServer
import RealServerGate
import RedlockTestSupport
import Testing

/// Slow and idle clients cannot hold the server's connections: each phase of a request has a
/// deadline, and the number of connections has a cap.
@Suite("Connection limits", .serialized, .realRedisServers)
struct ConnectionLimitsTests {
    @Test func aClientThatNeverFinishesItsHeadersIsDisconnected() async throws {
        try await withLiveServer(setting: .set(\.headerTimeout, .seconds(1))) { server throws in
            let slow = try RawConnection(port: server.port)
            try slow.send("GET /livez HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            let outcome = slow.waitForClose(within: .seconds(4))
            #expect(outcome.closed, "a request head that never ends holds a connection forever")
        }
    }

    @Test func aClientThatNeverFinishesItsBodyIsDisconnected() async throws {
        try await withLiveServer(setting: .set(\.bodyTimeout, .seconds(1))) { server throws in
            let slow = try RawConnection(port: server.port)
            try slow.send("POST /v1/api/lock/uuid/6f1c2a86-0d2e-4b51-9a1f-0b8b8c3f2f10 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{")
            #expect(slow.waitForClose(within: .seconds(4)).closed)
        }
    }

    @Test func anIdleConnectionIsClosedAfterTheIdleTimeout() async throws {
        try await withLiveServer(setting: .set(\.idleTimeout, .seconds(1))) { server throws in
            let idle = try RawConnection(port: server.port)
            try idle.send("GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let outcome = idle.waitForClose(within: .seconds(4))
            #expect(outcome.received.hasPrefix("HTTP/1.1 200"), "\(outcome.received.prefix(40))")
            #expect(outcome.closed)
        }
    }

    @Test func aClientThatStopsReadingItsResponsesIsDisconnectedAfterTheIdleTimeout() async throws {
        try await withLiveServer(setting: .set(\.idleTimeout, .seconds(1))) { server throws in
            let client = try RawConnection(port: server.port)
            // Pipelined requests whose answers (megabytes in all) outgrow the socket buffers,
            // and a client that reads none of them: the server's writes make no progress.
            let request = "GET /v1/api/openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n"
            try client.send(String(repeating: request, count: 2_000))
            try await Task.sleep(for: .seconds(4))
            let outcome = client.waitForClose(within: .seconds(10))
            let answers = outcome.received.components(separatedBy: "HTTP/1.1 200").count - 1
            #expect(outcome.closed, "still open after \(answers) answers")
            #expect(answers < 2_000, "the server gave up on the stalled connection: \(answers) answers of 2000")
        }
    }

    @Test func aBusyConnectionOutlivesTheDeadlinesItKeepsMeeting() async throws {
        try await withLiveServer(setting: .set(\.headerTimeout, .seconds(1))) { server throws in
            let busy = try RawConnection(port: server.port)
            // 2.4 s of requests, 400 ms apart: well past the first head's 1 s deadline, whose
            // timer fires while the deadline has moved on.
            for request in 0..<6 {
                try busy.send("GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let answer = busy.waitForClose(within: .milliseconds(400))
                #expect(!answer.closed, "closed before request \(request)")
                #expect(answer.received.hasPrefix("HTTP/1.1 200"), "\(answer.received.prefix(40))")
            }
        }
    }

    @Test func aBodyOverTheLimitIsRefusedAtOnceAndTheConnectionClosed() async throws {
        try await withLiveServer { server throws in
            let client = try RawConnection(port: server.port)
            // A declared 10 MB body, of which nothing is sent: the answer must not wait for it.
            try client.send(
                "POST /v1/api/lock/uuid/6f1c2a86-0d2e-4b51-9a1f-0b8b8c3f2f10 HTTP/1.1\r\nHost: localhost\r\n"
                    + "Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n"
            )
            let clock = ContinuousClock()
            let started = clock.now
            let outcome = client.waitForClose(within: .seconds(5))
            #expect(outcome.received.hasPrefix("HTTP/1.1 413"), "\(outcome.received.prefix(40))")
            #expect(outcome.closed && clock.now - started < .seconds(2), "closed at once, not after reading or waiting for the body")
        }
    }

    /// A /proc file, read to its end (it reports no size, so one read may stop short).
    static func readWhole(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func theServerProbesIdleConnectionsWithTCPKeepalive() async throws {
        try await withLiveServer { server throws in
            let client = try RawConnection(port: server.port)
            try client.send("GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n")
            #expect(client.waitForClose(within: .milliseconds(300)).received.hasPrefix("HTTP/1.1 200"))
            // /proc/net/tcp: the server's end is local :port, remote :client; its "tr" (timer)
            // field is 2 while a keepalive timer runs on an idle socket.
            let hex = { (port: Int) in String(format: "%04X", port) }
            var row: [Substring]?
            for _ in 0..<20 where row == nil {
                let table = Self.readWhole("/proc/net/tcp")
                row = table.split(separator: "\n").map { $0.split(separator: " ") }.first {
                    $0.count > 5 && $0[1].hasSuffix(":" + hex(server.port)) && $0[2].hasSuffix(":" + hex(client.localPort))
                }
                if row == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let timer = try #require(row, "the server's end of the connection")[5].split(separator: ":").first
            #expect(timer == "02", "no keepalive timer on the server's socket: \(row?.joined(separator: " ") ?? "")")
        }
    }

    @Test func oneAddressCannotTakeEveryConnection() async throws {
        try await withLiveServer(setting: .set(\.maximumConnections, 40)) { server throws in
            // 40 stalled connections from one address: a tenth of the slots is its share.
            var hog: [RawConnection] = []
            for _ in 0..<40 { hog.append(try RawConnection(port: server.port)) }
            try await Task.sleep(for: .milliseconds(300))
            let refused = hog.filter { $0.waitForClose(within: .milliseconds(50)).closed }.count
            #expect((36...37).contains(refused), "all but its 4 (one may be the readiness probe's) are closed at once: \(refused) closed")
            let other = try RawConnection(port: server.port, from: "127.0.0.2")
            try other.send("GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let answer = other.waitForClose(within: .seconds(3))
            #expect(answer.received.hasPrefix("HTTP/1.1 200"), "another client is still served: \(answer.received.prefix(40))")
        }
    }

    @Test func aTrustedProxyCarriesManyClientsAndIsNotHeldToOneShare() async throws {
        let proxy = try #require(IPNetwork("127.0.0.1/32"))
        let settings = ConfigurationTweak {
            $0.maximumConnections = 40
            $0.trustedProxies = [proxy]
        }
        try await withLiveServer(setting: settings) { server throws in
            var held: [RawConnection] = []
            for _ in 0..<10 { held.append(try RawConnection(port: server.port)) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(held.allSatisfy { !$0.waitForClose(within: .milliseconds(50)).closed }, "the proxy's connections stay open")
        }
    }

    @Test func connectionsPastTheCapAreClosedAtOnce() async throws {
        let settings = ConfigurationTweak {
            $0.maximumConnections = 3
            $0.maximumConnectionsPerClient = 3  // the total alone, for this one client
        }
        try await withLiveServer(setting: settings) { server throws in
            let held = try (0..<3).map { _ in try RawConnection(port: server.port) }
            try await Task.sleep(for: .milliseconds(200))
            let extra = try RawConnection(port: server.port)
            #expect(extra.waitForClose(within: .seconds(2)).closed, "the fourth connection is refused")
            try held[0].send("GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let answered = held[0].waitForClose(within: .seconds(3))
            #expect(answered.received.hasPrefix("HTTP/1.1 200"), "connections under the cap are served: \(answered.received.prefix(40))")
        }
    }
}
