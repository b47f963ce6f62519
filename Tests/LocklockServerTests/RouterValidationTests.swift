import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LocklockServer
import RedisWire
import Redlock
import Testing

/// The adapter's validation, in process, with no master reachable: every request here is
/// decided before Redis is asked, or answered 503 because it cannot be.
@Suite("Locklock REST API validation (in process, no masters)")
struct RouterValidationTests {
    static func application(anonymousRate: Int = 0) -> some ApplicationProtocol {
        // Nothing listens on these ports: a request that reaches the masters gets 503.
        let unreachable = (1...3).map { RedisServerAddress.hostname("127.0.0.1", port: $0) }
        let groups = MasterGroups(primary: Redlock(masters: unreachable, configuration: .init(instanceTimeout: .milliseconds(100), retry: .never)))
        let configuration = LocklockServerConfiguration(anonymousRate: anonymousRate, tenants: testTenants)
        return Application(router: buildRouter(groups: groups, configuration: configuration))
    }

    static let path = "/v1/api/lock/uuid/6f1c2a86-0d2e-4b51-9a1f-0b8b8c3f2f10"
    static let json: HTTPFields = [.contentType: "application/json"]

    @Test func theBearerSchemeIsMatchedCaseInsensitively() async throws {
        try await Self.application().test(.router) { client in
            for scheme in ["Bearer", "bearer", "BEARER"] {
                let response = try await client.execute(
                    uri: "/v1/api/lock/key/report",
                    method: .post,
                    headers: [.authorization: "\(scheme) \(Keys.acme)", .contentType: "application/json"],
                    body: ByteBuffer(string: "{not json")
                )
                #expect(response.status == .badRequest, "\(scheme): authenticated, then the body was refused")
            }
        }
    }

    @Test(arguments: [
        ("{not json", "malformed JSON"),
        ("[1,2]", "the body must be a JSON object"),
        (#"{"expires_in":"300"}"#, "expires_in must be a number"),
        (#"{"wait":false}"#, "wait must be a number"),
        (#"{"secret":42}"#, "secret must be a string"),
        (String(repeating: "[", count: 40) + String(repeating: "]", count: 40), "JSON nested deeper than 32 levels"),
    ])
    func aBodyThatDoesNotDecodeIsABadRequestNamingTheField(body: String, detail: String) async throws {
        try await Self.application().test(.router) { client in
            let response = try await client.execute(uri: Self.path, method: .post, headers: Self.json, body: ByteBuffer(string: body))
            #expect(response.status == .badRequest)
            #expect(response.headers[.contentType] == "application/problem+json")
            let problem = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
            #expect(problem?["detail"] as? String == detail)
        }
    }

    @Test(arguments: [
        "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", nil,
    ])
    func aBodyThatIsNotDeclaredJSONIsUnsupported(contentType: String?) async throws {
        // What a cross-site form (or a fetch without a preflight) can send.
        try await Self.application().test(.router) { client in
            var headers = HTTPFields()
            if let contentType { headers[.contentType] = contentType }
            let response = try await client.execute(uri: Self.path, method: .post, headers: headers, body: ByteBuffer(string: #"{"expires_in":30}"#))
            #expect(response.status == .unsupportedMediaType, "\(contentType ?? "no Content-Type")")
            let problem = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
            #expect(problem?["detail"] as? String == "a request body must be JSON, sent as Content-Type: application/json")
        }
    }

    @Test(arguments: ["application/json", "application/json; charset=utf-8", "Application/JSON"])
    func aJSONBodyOrNoBodyAtAllIsAccepted(contentType: String) async throws {
        try await Self.application().test(.router) { client in
            // No master answers: 503 means the body got past validation.
            let declared = try await client.execute(
                uri: Self.path,
                method: .post,
                headers: [.contentType: contentType],
                body: ByteBuffer(string: #"{"expires_in":30}"#)
            )
            #expect(declared.status == .serviceUnavailable, "\(contentType)")
            let bare = try await client.execute(uri: Self.path, method: .post)
            #expect(bare.status == .serviceUnavailable, "curl -X POST, with no body, stays valid")
        }
    }

    @Test func onlyTheAllowedHostNamesAreServedWhenAListIsGiven() async throws {
        let unreachable = [RedisServerAddress.hostname("127.0.0.1", port: 1)]
        let groups = MasterGroups(primary: Redlock(masters: unreachable, configuration: .init(retry: .never)))
        var configuration = LocklockServerConfiguration(anonymousRate: 0, tenants: testTenants)
        configuration.allowedHosts = ["locks.example.com", "*.locks.example.com", "localhost"]
        try await Application(router: buildRouter(groups: groups, configuration: configuration)).test(.router) { client in
            for host in ["locks.example.com", "LOCKS.example.com:8443", "acme.locks.example.com", "localhost:8080"] {
                let response = try await client.execute(uri: "/livez", method: .get, headers: [HTTPField.Name("Host")!: host])
                #expect(response.status == .ok, "\(host)")
            }
            // A name an attacker's DNS points at the server (DNS rebinding), or none at all.
            for host in ["attacker.example", "locks.example.com.attacker.example", "example.com", ""] {
                let response = try await client.execute(
                    uri: "/v1/api/lock/uuid/6f1c2a86-0d2e-4b51-9a1f-0b8b8c3f2f10",
                    method: .get,
                    headers: [HTTPField.Name("Host")!: host]
                )
                #expect(response.status == .misdirectedRequest, "\(host)")
            }
        }
    }

    @Test func theOpenAPIDocumentStatesTheConfiguredLimits() async throws {
        let unreachable = [RedisServerAddress.hostname("127.0.0.1", port: 1)]
        let groups = MasterGroups(primary: Redlock(masters: unreachable, configuration: .init(retry: .never)))
        let configuration = LocklockServerConfiguration(maximumExpiresIn: 3600, maximumWait: 12.5, anonymousRate: 0, tenants: testTenants)
        try await Application(router: buildRouter(groups: groups, configuration: configuration)).test(.router) { client in
            let response = try await client.execute(uri: "/v1/api/openapi.json", method: .get)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
            let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
            func maximum(_ schema: String, _ field: String) -> Double? {
                (((schemas[schema] as? [String: Any])?["properties"] as? [String: Any])?[field] as? [String: Any])?["maximum"] as? Double
            }
            #expect(maximum("AcquireRequest", "expires_in") == 3600)
            #expect(maximum("AcquireRequest", "wait") == 12.5)
            #expect(maximum("ExtendRequest", "expires_in") == 3600)
            #expect(maximum("AcquireRequest", "lock_delay") == 3600)
            #expect(maximum("AcquirePermitRequest", "expires_in") == 3600)
            #expect(maximum("AcquirePermitRequest", "wait") == 12.5)
            let paths = try #require(document["paths"] as? [String: Any])
            let status = try #require((paths["/v1/api/lock/uuid/{uuid}"] as? [String: Any])?["get"] as? [String: Any])
            let wait = (status["parameters"] as? [[String: Any]])?.first { $0["name"] as? String == "wait" }
            #expect((wait?["schema"] as? [String: Any])?["maximum"] as? Double == 12.5)
            let named = try #require(paths["/v1/api/lock/key/{name}"] as? [String: Any])
            #expect((named["post"] as? [String: Any])?["operationId"] as? String == "acquireKey")
            let permit = try #require(paths["/v1/api/semaphore/key/{name}/{permit}"] as? [String: Any])
            #expect(Set(permit.keys) == ["parameters", "delete", "patch", "get"])
            #expect((permit["delete"] as? [String: Any])?["operationId"] as? String == "releasePermit")
        }
    }

    @Test(arguments: [
        ("?wait=abc", 400), ("?wait=nan", 400), ("?index=-1", 400), ("?wait=1&index=-1", 400), ("?wait=1&index=x", 400),
        ("?wait=61", 422), ("?wait=-1", 422),
    ])
    func aWatchWithBadParametersIsRefusedBeforeAnyMasterIsAsked(query: String, status: Int) async throws {
        try await Self.application().test(.router) { client in
            let response = try await client.execute(uri: Self.path + query, method: .get)
            #expect(response.status.code == status, "\(query)")
        }
    }

    @Test(arguments: [
        ("POST", "/v1/api/semaphore/key/builds", #"{}"#, 422),
        ("POST", "/v1/api/semaphore/key/builds", #"{"permits": 0}"#, 422),
        ("POST", "/v1/api/semaphore/key/builds", #"{"permits": 1025}"#, 422),
        ("POST", "/v1/api/semaphore/key/builds", #"{"permits": 2.5}"#, 400),
        ("POST", "/v1/api/semaphore/key/builds", #"{"permits": "2"}"#, 400),
        ("POST", "/v1/api/semaphore/key/bad%23name", #"{"permits": 2}"#, 400),
        ("POST", "/v1/api/lock/key/builds", #"{"permits": 2}"#, 422),
        ("DELETE", "/v1/api/semaphore/key/builds/1024", "", 400),
        ("DELETE", "/v1/api/semaphore/key/builds/-1", "", 400),
        ("PATCH", "/v1/api/semaphore/key/builds/01", #"{"expires_in": 5}"#, 400),
        ("GET", "/v1/api/semaphore/key/builds/x", "", 400),
        ("PATCH", "/v1/api/semaphore/key/builds/1", #"{"expires_in": 5, "permits": 2}"#, 422),
    ])
    func aSemaphoreRequestWithBadPermitsIsRefusedBeforeAnyMasterIsAsked(method: String, path: String, body: String, status: Int) async throws {
        try await Self.application().test(.router) { client in
            let response = try await client.execute(
                uri: path,
                method: .init(rawValue: method)!,
                headers: [.authorization: "Bearer \(Keys.acme)", .contentType: "application/json"],
                body: ByteBuffer(string: body)
            )
            #expect(response.status.code == status, "\(method) \(path) \(body)")
            #expect(response.headers[.contentType] == "application/problem+json")
        }
    }

    @Test func aPayloadWithoutThePlanIsRefusedBeforeItIsBuilt() async throws {
        // The worst body under the size limit: as many values as 64 KiB holds.
        let worst = #"{"data":["# + Array(repeating: "{}", count: 21_000).joined(separator: ",") + "]}"
        try await Self.application().test(.router) { client in
            let anonymous = try await client.execute(uri: Self.path, method: .post, headers: Self.json, body: ByteBuffer(string: worst))
            #expect(anonymous.status == .forbidden)
            let problem = try JSONSerialization.jsonObject(with: Data(anonymous.body.readableBytesView)) as? [String: Any]
            #expect(problem?["detail"] as? String == "data payloads need a Pro plan")
            // Scanned all the same: a malformed payload is a bad request, as for anyone.
            let broken = try await client.execute(uri: Self.path, method: .post, headers: Self.json, body: ByteBuffer(string: #"{"data":[1,}"#))
            #expect(broken.status == .badRequest)
            let pro = try await client.execute(
                uri: "/v1/api/lock/key/report",
                method: .post,
                headers: [.authorization: "Bearer \(Keys.acme)", .contentType: "application/json"],
                body: ByteBuffer(string: worst)
            )
            #expect(pro.status == .unprocessableContent, "read, and over the 16 KiB payload limit")
        }
    }

    @Test func semaphoresNeedAProKey() async throws {
        try await Self.application().test(.router) { client in
            let body = ByteBuffer(string: #"{"permits": 2}"#)
            let anonymous = try await client.execute(uri: "/v1/api/semaphore/key/builds", method: .post, body: body)
            #expect(anonymous.status == .unauthorized)
            let developer = try await client.execute(
                uri: "/v1/api/semaphore/key/builds",
                method: .post,
                headers: [.authorization: "Bearer \(Keys.initech)"],
                body: body
            )
            #expect(developer.status == .forbidden)
            let permit = try await client.execute(uri: "/v1/api/semaphore/key/builds/0", method: .delete)
            #expect(permit.status == .unauthorized)
        }
    }

    @Test func aLockDelayOutOfRangeIsUnprocessable() async throws {
        try await Self.application().test(.router) { client in
            for body in [#"{"lock_delay": -1}"#, #"{"lock_delay": 1e12}"#] {
                let response = try await client.execute(uri: Self.path, method: .post, headers: Self.json, body: ByteBuffer(string: body))
                #expect(response.status == .unprocessableContent, "\(body)")
            }
            let wrongType = try await client.execute(
                uri: Self.path,
                method: .post,
                headers: Self.json,
                body: ByteBuffer(string: #"{"lock_delay": "5"}"#)
            )
            #expect(wrongType.status == .badRequest)
        }
    }

    @Test func anExpiresInTooShortToHonourIsUnprocessable() async throws {
        try await Self.application().test(.router) { client in
            for expiresIn in ["0.002", "0.003", "0.05"] {
                let response = try await client.execute(
                    uri: Self.path,
                    method: .post,
                    headers: Self.json,
                    body: ByteBuffer(string: #"{"expires_in": \#(expiresIn)}"#)
                )
                #expect(response.status == .unprocessableContent, "expires_in \(expiresIn)")
            }
        }
    }

    @Test func aSecretsLengthIsCountedInBytes() async throws {
        try await Self.application().test(.router) { client in
            let secret = String(repeating: "é", count: 200)  // 200 characters, 400 bytes
            let response = try await client.execute(
                uri: Self.path,
                method: .post,
                headers: Self.json,
                body: ByteBuffer(string: #"{"secret": "\#(secret)"}"#)
            )
            #expect(response.status == .unprocessableContent)
            let header = try await client.execute(uri: Self.path, method: .delete, headers: [.init("Lock-Secret")!: secret])
            #expect(header.status == .unprocessableContent)
        }
    }

    @Test func anonymousLocksLiveAtMostTheAnonymousMaximum() async throws {
        try await Self.application().test(.router) { client in
            let anonymous = try await client.execute(
                uri: Self.path,
                method: .post,
                headers: Self.json,
                body: ByteBuffer(string: #"{"expires_in": 7200}"#)
            )
            #expect(anonymous.status == .unprocessableContent, "an anonymous 2-hour lock is refused: \(anonymous.status)")
            let keyed = try await client.execute(
                uri: Self.path,
                method: .post,
                headers: [.authorization: "Bearer \(Keys.initech)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"expires_in": 7200}"#)
            )
            #expect(keyed.status == .serviceUnavailable, "a tenant's is accepted (and reaches the absent masters): \(keyed.status)")
        }
    }

    @Test func failedAuthenticationsAreThrottledLikeAnonymousRequests() async throws {
        try await Self.application(anonymousRate: 1).test(.router) { client in
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<4 {
                let response = try await client.execute(uri: Self.path, method: .get, headers: [.authorization: "Bearer wrong-key-\(statuses.count)"])
                statuses.append(response.status)
            }
            #expect(statuses == [.unauthorized, .unauthorized, .tooManyRequests, .tooManyRequests], "guessing keys costs the guesser's rate")
        }
    }

    @Test func everyCountedResponseCarriesTheRateLimitHeadersErrorsIncluded() async throws {
        try await Self.application(anonymousRate: 100).test(.router) { client in
            let response = try await client.execute(uri: Self.path, method: .get)
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers[.init("RateLimit")!] != nil, "a 503 was counted, so it says how much is left")
            let tooShort = try await client.execute(
                uri: Self.path,
                method: .post,
                headers: Self.json,
                body: ByteBuffer(string: #"{"expires_in": 0.002}"#)
            )
            #expect(tooShort.headers[.init("RateLimit")!] != nil)
        }
    }

    @Test func aTooLargeBodyClosesTheConnection() async throws {
        try await Self.application().test(.router) { client in
            let body = ByteBuffer(string: "{\"secret\":\"" + String(repeating: "a", count: 100_000) + "\"}")
            let response = try await client.execute(uri: Self.path, method: .post, headers: Self.json, body: body)
            #expect(response.status == .contentTooLarge)
            #expect(response.headers[.connection] == "close")
        }
    }
}
