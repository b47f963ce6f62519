import Foundation
import Hummingbird
import LocalRedis
import LocklockServer
import Logging
import RealServerGate
import Redlock
import RedlockTestSupport
import ServiceLifecycle
import Testing

/// A replica that is told to stop (SIGTERM) drains: requests in progress finish, and those
/// waiting for a lock are answered at once so the client can retry on another replica.
@Suite("Graceful drain", .serialized, .realRedisServers)
struct DrainTests {
    @Test func onGracefulShutdownAWaitingRequestIsAnswered503WithRetryAfter() async throws {
        try await withRedisServers(count: 3) { masters throws in
            let port = try FreePort.pick()
            let groups = MasterGroups(primary: Redlock(masters: masters.addresses, configuration: .init(instanceTimeout: .milliseconds(250))))
            let app = try buildApplication(
                groups: groups,
                configuration: LocklockServerConfiguration(host: "127.0.0.1", port: port, anonymousRate: 0)
            )
            let services = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "drain-test")))
            let running = Task { try await services.run() }
            try await waitUntilServing(port: port, path: "/readyz")
            let path = "/v1/api/lock/uuid/\(UUID().uuidString.lowercased())"
            #expect(try await loopbackRequest(port: port, "POST", path).status == 201)
            let clock = ContinuousClock()
            let waiter = Task { try await loopbackRequest(port: port, "POST", path, body: #"{"wait":20}"#) }
            try await Task.sleep(for: .milliseconds(500))
            let stopped = clock.now
            await services.triggerGracefulShutdown()
            let answer = try await waiter.value
            #expect(answer.status == 503, "\(answer.status) \(answer.text)")
            #expect(answer.header("Retry-After") != nil)
            #expect(clock.now - stopped < .seconds(5), "answered when the drain began, not when its wait ran out")
            try await running.value
        }
    }
}
