import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdIdempotency
import LocalRedis
import NIOCore
import RealServerGate
import Redlock
import RedlockTestSupport
import Synchronization
import Testing

/// A store whose every save fails (a database that went away after the operation ran).
struct UnsavableStore: IdempotencyResponseStore {
    struct Unavailable: Error {}
    func response(for key: String) async throws -> StoredResponse? { nil }
    func save(_ response: StoredResponse, for key: String, retention: Duration) async throws { throw Unavailable() }
}

/// A store that cannot be read (its database is down).
struct UnreadableStore: IdempotencyResponseStore {
    struct Unavailable: Error {}
    func response(for key: String) async throws -> StoredResponse? { throw Unavailable() }
    func save(_ response: StoredResponse, for key: String, retention: Duration) async throws {}
}

/// Counts how often the guarded handler really ran.
final class RunCounter: Sendable {
    private let value = Mutex(0)
    func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
    var count: Int { value.withLock { $0 } }
}

@Suite("Idempotency-Key middleware", .serialized, .realRedisServers)
struct IdempotencyKeyMiddlewareTests {
    /// These tests' requests all come from one client.
    static let oneClient: @Sendable (Request, BasicRequestContext) -> String = { _, _ in "" }

    /// A small app: `POST /work` runs once per call (slowly), `POST /flaky` fails with 503 on
    /// its first run, `GET /work` is not guarded.
    func withApp<T: Sendable>(
        _ body: @escaping @Sendable (Int, RunCounter) async throws -> T
    ) async throws -> T {
        try await withRedisServers(count: 3) { masters throws in
            let redlock = Redlock(masters: masters.addresses, configuration: .init(instanceTimeout: .milliseconds(250)))
            await redlock.connect()
            let runs = RunCounter()
            let router = Router()
            router.get("ready") { _, _ in HTTPResponse.Status.ok }
            router.get("work") { _, _ in "run \(runs.next())" }
            router.group()
                .add(middleware: IdempotencyKeyMiddleware(redlock: redlock, store: InMemoryIdempotencyStore(), scope: Self.oneClient))
                .post("work") { _, _ -> Response in
                    let run = runs.next()
                    try await Task.sleep(for: .milliseconds(300))
                    var headers = HTTPFields()
                    headers[HTTPField.Name("X-Run")!] = "\(run)"
                    return Response(status: .created, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "run \(run)")))
                }
                .post("flaky") { _, _ -> Response in
                    let run = runs.next()
                    return Response(status: run == 1 ? .serviceUnavailable : .ok, body: .init(byteBuffer: ByteBuffer(string: "run \(run)")))
                }
                // Refused for now on its first run (a lock held elsewhere, a rate limit), done on its second.
                .post("busy/:status") { _, context -> Response in
                    let run = runs.next()
                    let refusal = HTTPResponse.Status(code: Int(context.parameters.get("status") ?? "") ?? 409)
                    return Response(status: run == 1 ? refusal : .created, body: .init(byteBuffer: ByteBuffer(string: "run \(run)")))
                }
                // A final refusal thrown rather than returned.
                .post("thrown") { _, _ -> Response in
                    let run = runs.next()
                    throw HTTPError(.notFound, message: "no such thing (run \(run))")
                }
            router.group()
                .add(middleware: IdempotencyKeyMiddleware(redlock: redlock, store: UnreadableStore(), scope: Self.oneClient))
                .post("unread") { _, _ -> Response in
                    let run = runs.next()
                    return Response(status: .created, body: .init(byteBuffer: ByteBuffer(string: "run \(run)")))
                }
            // A store that cannot save: the response must still reach the client.
            router.group()
                .add(middleware: IdempotencyKeyMiddleware(redlock: redlock, store: UnsavableStore(), scope: Self.oneClient))
                .post("unsaved") { _, _ -> Response in
                    let run = runs.next()
                    return Response(status: .created, body: .init(byteBuffer: ByteBuffer(string: "run \(run)")))
                }
            // Responses scoped per user: the same key from two users is two requests.
            router.group("scoped")
                .add(
                    middleware: IdempotencyKeyMiddleware(
                        redlock: redlock,
                        store: InMemoryIdempotencyStore(),
                        scope: { request, _ in
                            request.headers[HTTPField.Name("X-User")!] ?? "anonymous"
                        }
                    )
                )
                .post("work") { _, _ -> Response in
                    let run = runs.next()
                    return Response(status: .created, body: .init(byteBuffer: ByteBuffer(string: "run \(run)")))
                }
            // A request that outlives its key's lock TTL: only extension keeps the key locked.
            router.group()
                .add(
                    middleware: IdempotencyKeyMiddleware(
                        redlock: redlock,
                        store: InMemoryIdempotencyStore(),
                        configuration: .init(lockTTL: .milliseconds(300)),
                        scope: Self.oneClient
                    )
                )
                .post("long") { _, _ -> Response in
                    let run = runs.next()
                    try await Task.sleep(for: .milliseconds(1200))
                    return Response(status: .created, body: .init(byteBuffer: ByteBuffer(string: "run \(run)")))
                }
            let port = try FreePort.pick()
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), services: [redlock])
            return try await withServing(app, port: port, readyPath: "/ready") { try await body(port, runs) }
        }
    }

    @Test func aCompletedRequestIsReplayedWithItsStatusHeadersAndBody() async throws {
        try await withApp { port, runs in
            let first = try await loopbackRequest(port: port, "POST", "/work", body: "{}", headers: ["Idempotency-Key": "k1"])
            let second = try await loopbackRequest(port: port, "POST", "/work", body: "{}", headers: ["Idempotency-Key": "\"k1\""])
            #expect(first.status == 201 && first.text == "run 1")
            #expect(first.header("Idempotent-Replayed") == nil)
            #expect(second.status == 201 && second.text == "run 1")
            #expect(second.header("X-Run") == "1")
            #expect(second.header("Idempotent-Replayed") == "true")
            #expect(runs.count == 1)
        }
    }

    @Test func concurrentRetriesGet409WithRetryAfterAndDoNotRun() async throws {
        try await withApp { port, runs in
            let replies = try await withThrowingTaskGroup(of: HTTPResult.self) { group in
                for _ in 0..<5 {
                    group.addTask { try await loopbackRequest(port: port, "POST", "/work", body: "{}", headers: ["Idempotency-Key": "k2"]) }
                }
                return try await group.reduce(into: [HTTPResult]()) { $0.append($1) }
            }
            let ran = replies.filter { $0.status == 201 && $0.header("Idempotent-Replayed") == nil }
            let refused = replies.filter { $0.status == 409 }
            #expect(ran.count == 1, "\(replies.map(\.status))")
            #expect(!refused.isEmpty, "\(replies.map(\.status))")
            for reply in refused {
                #expect(reply.header("Content-Type") == "application/problem+json")
                #expect(Int(reply.header("Retry-After") ?? "") ?? 0 >= 1)
            }
            #expect(runs.count == 1)
        }
    }

    @Test func aRequestThatOutlivesTheLockTTLKeepsItsKeyLockedAgainstRetries() async throws {
        try await withApp { port, runs in
            let first = Task { try await loopbackRequest(port: port, "POST", "/long", body: "{}", headers: ["Idempotency-Key": "k5"]) }
            try await Task.sleep(for: .milliseconds(700))  // more than twice the 300 ms TTL
            let retry = try await loopbackRequest(port: port, "POST", "/long", body: "{}", headers: ["Idempotency-Key": "k5"])
            #expect(retry.status == 409, "the retry found the key unlocked and ran: \(retry.status) \(retry.text)")
            #expect(try await first.value.status == 201)
            #expect(runs.count == 1)
        }
    }

    @Test func aResponseTheStoreCannotSaveStillReachesTheClient() async throws {
        try await withApp { port, runs in
            let reply = try await loopbackRequest(port: port, "POST", "/unsaved", body: "{}", headers: ["Idempotency-Key": "k6"])
            #expect(reply.status == 201, "the operation ran; a failed save must not turn its response into an error")
            #expect(reply.text == "run 1")
            #expect(runs.count == 1)
        }
    }

    @Test func theSameKeyWithAnotherQueryStringIsADifferentRequest() async throws {
        try await withApp { port, runs in
            let first = try await loopbackRequest(port: port, "POST", "/flaky?attempt=1", body: "{}", headers: ["Idempotency-Key": "k7"])
            #expect(first.status == 503)
            let ok = try await loopbackRequest(port: port, "POST", "/flaky?account=1", body: "{}", headers: ["Idempotency-Key": "k8"])
            let other = try await loopbackRequest(port: port, "POST", "/flaky?account=2", body: "{}", headers: ["Idempotency-Key": "k8"])
            #expect(ok.status == 200)
            #expect(other.status == 422, "another query string is another request: \(other.status) \(other.text)")
            #expect(runs.count == 2)
        }
    }

    @Test func aKeyIsScopedSoOneUsersResponseIsNeverReplayedToAnother() async throws {
        try await withApp { port, runs in
            let alice = try await loopbackRequest(
                port: port,
                "POST",
                "/scoped/work",
                body: "{}",
                headers: ["Idempotency-Key": "k9", "X-User": "alice"]
            )
            let bob = try await loopbackRequest(port: port, "POST", "/scoped/work", body: "{}", headers: ["Idempotency-Key": "k9", "X-User": "bob"])
            let aliceAgain = try await loopbackRequest(
                port: port,
                "POST",
                "/scoped/work",
                body: "{}",
                headers: ["Idempotency-Key": "k9", "X-User": "alice"]
            )
            #expect(alice.text == "run 1")
            #expect(bob.text == "run 2", "bob's request ran: alice's response is not his")
            #expect(aliceAgain.text == "run 1")
            #expect(aliceAgain.header("Idempotent-Replayed") == "true")
            #expect(runs.count == 2)
        }
    }

    @Test func reusingAKeyForADifferentRequestIs422() async throws {
        try await withApp { port, runs in
            _ = try await loopbackRequest(port: port, "POST", "/work", body: #"{"a":1}"#, headers: ["Idempotency-Key": "k3"])
            let otherBody = try await loopbackRequest(port: port, "POST", "/work", body: #"{"a":2}"#, headers: ["Idempotency-Key": "k3"])
            let otherPath = try await loopbackRequest(port: port, "POST", "/flaky", body: #"{"a":1}"#, headers: ["Idempotency-Key": "k3"])
            #expect(otherBody.status == 422)
            #expect(otherPath.status == 422)
            #expect(runs.count == 1)
        }
    }

    @Test func serverErrorsAreNotStoredSoARetryRunsAgain() async throws {
        try await withApp { port, runs in
            let first = try await loopbackRequest(port: port, "POST", "/flaky", body: "{}", headers: ["Idempotency-Key": "k4"])
            let second = try await loopbackRequest(port: port, "POST", "/flaky", body: "{}", headers: ["Idempotency-Key": "k4"])
            let third = try await loopbackRequest(port: port, "POST", "/flaky", body: "{}", headers: ["Idempotency-Key": "k4"])
            #expect(first.status == 503)
            #expect(second.status == 200 && second.text == "run 2")
            #expect(third.status == 200 && third.text == "run 2" && third.header("Idempotent-Replayed") == "true")
            #expect(runs.count == 2)
        }
    }

    @Test(arguments: [409, 423, 429])
    func aTransientRefusalIsNotStoredSoARetryRunsAgain(status: Int) async throws {
        try await withApp { port, runs in
            let key = ["Idempotency-Key": "transient-\(status)"]
            let first = try await loopbackRequest(port: port, "POST", "/busy/\(status)", body: "{}", headers: key)
            let second = try await loopbackRequest(port: port, "POST", "/busy/\(status)", body: "{}", headers: key)
            #expect(first.status == status)
            #expect(second.status == 201 && second.text == "run 2", "a retry was frozen on the refusal: \(second.status) \(second.text)")
            #expect(runs.count == 2)
        }
    }

    @Test func aThrownClientErrorIsStoredAndReplayedLikeAReturnedOne() async throws {
        try await withApp { port, runs in
            let first = try await loopbackRequest(port: port, "POST", "/thrown", body: "{}", headers: ["Idempotency-Key": "k8"])
            let second = try await loopbackRequest(port: port, "POST", "/thrown", body: "{}", headers: ["Idempotency-Key": "k8"])
            #expect(first.status == 404)
            #expect(second.status == 404 && second.header("Idempotent-Replayed") == "true", "\(second.status)")
            #expect(runs.count == 1)
        }
    }

    @Test func aDifferentRequestWhileTheFirstIsInFlightIs422() async throws {
        try await withApp { port, runs in
            let first = Task { try await loopbackRequest(port: port, "POST", "/work", body: #"{"a":1}"#, headers: ["Idempotency-Key": "k9"]) }
            try await Task.sleep(for: .milliseconds(100))
            let other = try await loopbackRequest(port: port, "POST", "/work", body: #"{"a":2}"#, headers: ["Idempotency-Key": "k9"])
            let same = try await loopbackRequest(port: port, "POST", "/work", body: #"{"a":1}"#, headers: ["Idempotency-Key": "k9"])
            #expect(other.status == 422, "the key is in use for a different request: \(other.status)")
            #expect(same.status == 409, "the same request is still being processed: \(same.status)")
            #expect(try await first.value.status == 201)
            #expect(runs.count == 1)
        }
    }

    @Test func aStoreThatCannotBeReadAnswers503WithRetryAfter() async throws {
        try await withApp { port, runs in
            let reply = try await loopbackRequest(port: port, "POST", "/unread", body: "{}", headers: ["Idempotency-Key": "k10"])
            #expect(reply.status == 503, "\(reply.status) \(reply.text)")
            #expect(reply.header("Retry-After") == "1")
            #expect(reply.header("Content-Type") == "application/problem+json")
            #expect(runs.count == 0, "nothing ran without knowing whether it had already")
        }
    }

    @Test func twoReplicasOnTheMastersStoreShareResponses() async throws {
        try await withRedisServers(count: 3) { masters throws in
            let runs = RunCounter()
            var ports: [Int] = []
            var apps: [any ApplicationProtocol] = []
            for _ in 0..<2 {
                // Each replica its own client of the same masters, as two processes would have.
                let redlock = Redlock(masters: masters.addresses, configuration: .init(instanceTimeout: .milliseconds(250)))
                let router = Router()
                router.get("ready") { _, _ in HTTPResponse.Status.ok }
                router.group()
                    .add(
                        middleware: IdempotencyKeyMiddleware(
                            redlock: redlock,
                            store: RedlockIdempotencyStore(redlock: redlock),
                            scope: Self.oneClient
                        )
                    )
                    .post("charge") { _, _ -> Response in
                        Response(status: .created, body: .init(byteBuffer: ByteBuffer(string: "charge \(runs.next())")))
                    }
                let port = try FreePort.pick()
                ports.append(port)
                apps.append(Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), services: [redlock]))
            }
            let (first, second) = (apps[0], apps[1])
            let listening = ports
            try await withServing(first, port: listening[0], readyPath: "/ready") {
                try await withServing(second, port: listening[1], readyPath: "/ready") {
                    let charged = try await loopbackRequest(
                        port: listening[0],
                        "POST",
                        "/charge",
                        body: "{}",
                        headers: ["Idempotency-Key": "order-1"]
                    )
                    // The client's retry reaches the other replica.
                    let retried = try await loopbackRequest(
                        port: listening[1],
                        "POST",
                        "/charge",
                        body: "{}",
                        headers: ["Idempotency-Key": "order-1"]
                    )
                    #expect(charged.status == 201 && charged.text == "charge 1")
                    #expect(retried.status == 201 && retried.text == "charge 1" && retried.header("Idempotent-Replayed") == "true")
                    #expect(runs.count == 1)
                    // A master that restarts empty leaves the others' copies.
                    try await masters.servers[0].restart()
                    let again = try await loopbackRequest(port: listening[1], "POST", "/charge", body: "{}", headers: ["Idempotency-Key": "order-1"])
                    #expect(again.text == "charge 1", "\(again.status) \(again.text)")
                    #expect(runs.count == 1)
                }
            }
        }
    }

    @Test func badKeysAre400AndRequestsWithoutAKeyOrUnguardedMethodsPassThrough() async throws {
        try await withApp { port, runs in
            for key in [String(repeating: "x", count: 256), "has space", "\"\""] {
                let refused = try await loopbackRequest(port: port, "POST", "/work", body: "{}", headers: ["Idempotency-Key": key])
                #expect(refused.status == 400, "\(key)")
            }
            #expect(runs.count == 0)
            _ = try await loopbackRequest(port: port, "POST", "/work", body: "{}")
            _ = try await loopbackRequest(port: port, "POST", "/work", body: "{}")
            _ = try await loopbackRequest(port: port, "GET", "/work", headers: ["Idempotency-Key": "k5"])
            _ = try await loopbackRequest(port: port, "GET", "/work", headers: ["Idempotency-Key": "k5"])
            #expect(runs.count == 4)
        }
    }
}
