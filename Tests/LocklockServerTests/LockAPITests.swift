import Crypto
import Foundation
import LocalRedis
import LocklockServer
import RealServerGate
import RedisWire
import RedlockTestSupport
import Testing

private func uuid() -> String { UUID().uuidString.lowercased() }

private func expectProblem(_ result: HTTPResult, _ status: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == status, "\(result.text)", sourceLocation: sourceLocation)
    #expect(result.header("Content-Type") == "application/problem+json", sourceLocation: sourceLocation)
    let json = result.json
    #expect(json?["status"] as? Int == status, sourceLocation: sourceLocation)
    #expect(json?["title"] is String && json?["detail"] is String && json?["type"] is String, sourceLocation: sourceLocation)
}

@Suite("Locklock REST API over a live server and real masters", .serialized, .realRedisServers)
struct LockAPITests {
    @Test func theReadmesCurlSessionWorks() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            let acquired = try await server.request("POST", path)
            #expect(acquired.status == 201)
            #expect(acquired.header("Cache-Control") == "no-store")
            #expect(acquired.json?["has_secret"] as? Bool == false)
            #expect(acquired.json?["fencing_token"] is Int)
            #expect(try await server.request("DELETE", path).status == 200)

            let withSecret = try await server.request("POST", path, body: #"{"secret":"super-secret", "expires_in": 300}"#)
            #expect(withSecret.status == 201)
            let expiresIn = try #require(withSecret.json?["expires_in"] as? Double)
            #expect(expiresIn > 290 && expiresIn <= 300)
            #expect(withSecret.json?["has_secret"] as? Bool == true)
            #expect(!withSecret.text.contains("super-secret"), "the lock body never contains the secret")
            let released = try await server.request("DELETE", path, body: #"{"secret":"super-secret"}"#)
            #expect(released.status == 200)
            #expect(released.json?["released"] as? Bool == true)
            let status = try await server.request("GET", path)
            expectProblem(status, 404)
        }
    }

    @Test func aHundredConcurrentPostsGiveExactlyOneWinner() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            let results = try await withThrowingTaskGroup(of: HTTPResult.self) { group in
                for _ in 0..<100 { group.addTask { try await server.request("POST", path, body: #"{"expires_in": 60}"#) } }
                return try await group.reduce(into: [HTTPResult]()) { $0.append($1) }
            }
            #expect(results.filter { $0.status == 201 }.count == 1)
            let conflicts = results.filter { $0.status == 409 }
            #expect(conflicts.count == 99)
            #expect(conflicts.allSatisfy { Int($0.header("Retry-After") ?? "") ?? 0 >= 1 })
        }
    }

    @Test func wrongSecretIsForbiddenAndTheLockStaysHeld() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", path, body: #"{"secret":"right"}"#).status == 201)
            expectProblem(try await server.request("DELETE", path, body: #"{"secret":"wrong"}"#), 403)
            expectProblem(try await server.request("DELETE", path), 403)
            #expect(try await server.request("GET", path).status == 200)
            // Same secret again: 200 with the TTL unchanged.
            let again = try await server.request("POST", path, body: #"{"secret":"right","expires_in":5}"#)
            #expect(again.status == 200)
            #expect((again.json?["expires_in"] as? Double ?? 0) > 1_000, "TTL unchanged, not reset to 5 s")
            #expect(try await server.request("DELETE", path, headers: ["Lock-Secret": "right"]).status == 200)
        }
    }

    @Test func expiredLocksAreNotFoundOnDeleteAndCanBeReacquired() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", path, body: #"{"expires_in":0.2,"secret":"s"}"#).status == 201)
            try await Task.sleep(for: .milliseconds(400))
            expectProblem(try await server.request("DELETE", path, body: #"{"secret":"s"}"#), 404)
            #expect(try await server.request("POST", path).status == 201)
        }
    }

    @Test func ifMatchBindsADeleteOrPatchToOneAcquisitionSoADelayedOneCannotTouchTheNext() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            let first = try await server.request("POST", path, body: #"{"expires_in":0.3,"secret":"reused"}"#)
            let firstToken = try #require(first.json?["fencing_token"] as? Int)
            try await Task.sleep(for: .milliseconds(500))
            // The same client, with the same secret, takes the lock again.
            let second = try await server.request("POST", path, body: #"{"expires_in":60,"secret":"reused"}"#)
            let secondToken = try #require(second.json?["fencing_token"] as? Int)
            #expect(second.header("ETag") == "\"\(secondToken)\"", "the lock body's token is its entity tag")
            // The first acquisition's delayed DELETE and PATCH arrive now.
            let lateDelete = try await server.request("DELETE", path, headers: ["Lock-Secret": "reused", "If-Match": "\"\(firstToken)\""])
            expectProblem(lateDelete, 412)
            let latePatch = try await server.request(
                "PATCH",
                path,
                body: #"{"expires_in":1,"secret":"reused"}"#,
                headers: ["If-Match": "\(firstToken)"]
            )
            expectProblem(latePatch, 412)
            let status = try await server.request("GET", path)
            #expect(status.status == 200, "the second acquisition still holds the lock")
            #expect((status.json?["expires_in"] as? Double ?? 0) > 30, "and its TTL was not cut to 1 s")
            let patch = try await server.request(
                "PATCH",
                path,
                body: #"{"expires_in":30,"secret":"reused"}"#,
                headers: ["If-Match": "\(secondToken)"]
            )
            #expect(patch.status == 200)
            let delete = try await server.request("DELETE", path, headers: ["Lock-Secret": "reused", "If-Match": "\"\(secondToken)\""])
            #expect(delete.status == 200)
            expectProblem(try await server.request("DELETE", path, headers: ["Lock-Secret": "reused", "If-Match": "not-a-token"]), 400)
        }
    }

    @Test func aLockWithoutExpiresInLivesTheCallersMaximum() async throws {
        try await withLiveServer(setting: .set(\.maximumExpiresIn, 600)) { server throws in
            let anonymous = try await server.request("POST", "/v1/api/lock/uuid/\(uuid())")
            let anonymousTTL = try #require(anonymous.json?["expires_in"] as? Double)
            #expect(anonymousTTL <= 600 && anonymousTTL > 590, "capped by --max-expires-in: \(anonymousTTL)")
            let keyed = try await server.request("POST", "/v1/api/lock/uuid/\(uuid())", headers: ["Authorization": "Bearer \(Keys.acme)"])
            let keyedTTL = try #require(keyed.json?["expires_in"] as? Double)
            #expect(keyedTTL <= 600 && keyedTTL > 590, "\(keyedTTL)")
        }
        try await withLiveServer { server throws in
            let anonymous = try await server.request("POST", "/v1/api/lock/uuid/\(uuid())")
            let anonymousTTL = try #require(anonymous.json?["expires_in"] as? Double)
            #expect(anonymousTTL <= 3600 && anonymousTTL > 3500, "anonymous locks default to the anonymous maximum, 1 hour: \(anonymousTTL)")
        }
    }

    @Test func secretsAreStoredAsAKeyedHashSoADumpCannotBeBruteForcedOffline() async throws {
        let serverKey = Array("a-server-key-from-a-file-0123456789".utf8)
        try await withLiveServer(setting: .set(\.secretKey, serverKey)) { server throws in
            let id = uuid()
            #expect(try await server.request("POST", "/v1/api/lock/uuid/\(id)", body: #"{"secret":"hunter2"}"#).status == 201)
            let master = RedisConnection(address: server.masters[0].address)
            let stored = try await master.send("GET", "redlock:lock:u:\(id)").string ?? ""
            await master.close()
            let unkeyed = "s:" + SHA256.hash(data: Array("u:\(id)\nhunter2".utf8)).map { String(format: "%02x", $0) }.joined()
            let keyed =
                "s:"
                + HMAC<SHA256>.authenticationCode(for: Array("u:\(id)\nhunter2".utf8), using: SymmetricKey(data: serverKey))
                .map { String(format: "%02x", $0) }.joined()
            #expect(stored.hasPrefix("s:"), "\(stored)")
            #expect(!stored.hasPrefix(unkeyed), "a plain SHA-256 of the lock and the secret can be brute-forced from a dump")
            #expect(stored.hasPrefix(keyed), "HMAC-SHA-256 under the server key")
            #expect(try await server.request("DELETE", "/v1/api/lock/uuid/\(id)", headers: ["Lock-Secret": "hunter2"]).status == 200)
        }
    }

    @Test func waitingRequestsPerClientAreCapped() async throws {
        try await withLiveServer(setting: .set(\.anonymousWaiters, 2)) { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", path, body: #"{"secret":"holder"}"#).status == 201)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<3 { group.addTask { try await server.request("POST", path, body: #"{"wait":3}"#).status } }
                try await Task.sleep(for: .milliseconds(800))
                #expect(try await server.request("DELETE", path, body: #"{"secret":"holder"}"#).status == 200)
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.sorted() == [201, 409, 429], "two wait (one gets the lock), the third is refused: \(statuses)")
        }
    }

    @Test func aWatchCountsAgainstTheWaiterCap() async throws {
        try await withLiveServer(setting: .set(\.anonymousWaiters, 1)) { server throws in
            let watched = "/v1/api/lock/uuid/\(uuid())"
            let held = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", held, body: #"{"secret":"holder"}"#).status == 201)
            async let watch = server.request("GET", watched + "?wait=2")
            try await Task.sleep(for: .milliseconds(400))
            expectProblem(try await server.request("POST", held, body: #"{"wait":3}"#), 429)
            expectProblem(try await server.request("GET", held + "?wait=3&index=1"), 429)
            #expect(try await watch.status == 404, "the watch timed out on a free lock")
            // A watch whose client hangs up stops, and frees its place.
            let client = try RawConnection(port: server.port)
            try client.send("GET \(watched)?wait=30 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try await Task.sleep(for: .milliseconds(300))
            client.hangUp()
            try await Task.sleep(for: .milliseconds(600))
            expectProblem(try await server.request("POST", held, body: #"{"wait":0.3}"#), 409)
        }
    }

    @Test func aWaiterWhoseClientHasGoneNeverLeavesTheLockHeld() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", path, body: #"{"secret":"holder"}"#).status == 201)
            // A client sends a waiting POST and hangs up before any answer.
            let client = try RawConnection(port: server.port)
            try client.send("POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"wait\":10}")
            client.hangUp()
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await server.request("DELETE", path, body: #"{"secret":"holder"}"#).status == 200)
            try await Task.sleep(for: .milliseconds(800))
            let status = try await server.request("GET", path)
            #expect(status.status == 404, "nobody is there to use the lock, so nobody may hold it: \(status.text)")
        }
    }

    @Test func extendSetsANewTTLFromNow() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", path, body: #"{"expires_in":2,"secret":"s"}"#).status == 201)
            let extended = try await server.request("PATCH", path, body: #"{"expires_in":600,"secret":"s"}"#)
            #expect(extended.status == 200)
            #expect((extended.json?["expires_in"] as? Double ?? 0) > 500)
            expectProblem(try await server.request("PATCH", path, body: #"{"expires_in":600,"secret":"x"}"#), 403)
            expectProblem(try await server.request("PATCH", path, body: #"{"secret":"s"}"#), 422)
            expectProblem(try await server.request("PATCH", "/v1/api/lock/uuid/\(uuid())", body: #"{"expires_in":5}"#), 404)
        }
    }

    @Test func waitingAcquireGetsTheLockWhenItFrees() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", path, body: #"{"expires_in":0.3}"#).status == 201)
            expectProblem(try await server.request("POST", path, body: #"{"wait":0}"#), 409)
            #expect(try await server.request("POST", path, body: #"{"wait":3}"#).status == 201)
            let timedOut = try await server.request("POST", path, body: #"{"wait":0.2}"#)
            expectProblem(timedOut, 409)
            #expect(timedOut.header("Retry-After") != nil)
        }
    }

    @Test func aLongPollingPostIsWokenByTheHoldersDelete() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            // The holder's lock lives 60 s: only the DELETE's announcement can hand it over soon.
            #expect(try await server.request("POST", path, body: #"{"expires_in":60,"secret":"first"}"#).status == 201)
            async let waiter = server.request("POST", path, body: #"{"wait":30,"secret":"second"}"#)
            try await Task.sleep(for: .milliseconds(400))
            let clock = ContinuousClock()
            let released = clock.now
            #expect(try await server.request("DELETE", path, body: #"{"secret":"first"}"#).status == 200)
            let granted = try await waiter
            #expect(granted.status == 201, "\(granted.text)")
            #expect(clock.now - released < .seconds(5), "handed over by the release, not the 60 s expiry")
        }
    }

    @Test func aWatchAnswersWhenTheLockChangesFromTheStateTheClientSaw() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            let clock = ContinuousClock()
            // Saw it free: answers when it is taken.
            async let taken = server.request("GET", path + "?wait=20")
            try await Task.sleep(for: .milliseconds(400))
            let acquired = try await server.request("POST", path, body: #"{"expires_in":60,"secret":"s"}"#)
            let postedAt = clock.now
            let seenTaken = try await taken
            #expect(seenTaken.status == 200)
            #expect(clock.now - postedAt < .seconds(5))
            let token = try #require(acquired.json?["fencing_token"] as? Int)
            #expect(seenTaken.json?["fencing_token"] as? Int == token)
            // Saw it held under this token: a watch with that index answers at once only when stale.
            let unchanged = try await server.request("GET", path + "?wait=0.3&index=\(token)")
            #expect(unchanged.status == 200, "timed out with the same holder")
            #expect(try await server.request("GET", path + "?wait=20&index=\(token - 1)").status == 200, "a stale index answers at once")
            #expect(try await server.request("GET", path + "?index=\(token)").status == 200, "an index without a wait answers at once")
            async let released = server.request("GET", path + "?wait=20&index=\(token)")
            try await Task.sleep(for: .milliseconds(400))
            let deletedAt = clock.now
            #expect(try await server.request("DELETE", path, body: #"{"secret":"s"}"#).status == 200)
            let seenReleased = try await released
            #expect(seenReleased.status == 404)
            #expect(clock.now - deletedAt < .seconds(5))
            // A watch that times out on a free lock says so.
            let started = clock.now
            #expect(try await server.request("GET", path + "?wait=0.5").status == 404)
            #expect(clock.now - started >= .milliseconds(450))
        }
    }

    @Test func aLockDelayOutlivesAnAbandonedLockButNotAReleasedOne() async throws {
        try await withLiveServer { server throws in
            let abandoned = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", abandoned, body: #"{"expires_in":0.3,"lock_delay":30}"#).status == 201)
            try await Task.sleep(for: .milliseconds(600))
            expectProblem(try await server.request("POST", abandoned, body: #"{"expires_in":5}"#), 409)
            let released = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", released, body: #"{"expires_in":5,"lock_delay":30,"secret":"s"}"#).status == 201)
            #expect(try await server.request("PATCH", released, body: #"{"expires_in":5,"lock_delay":30,"secret":"s"}"#).status == 200)
            #expect(try await server.request("DELETE", released, body: #"{"secret":"s"}"#).status == 200)
            #expect(try await server.request("POST", released, body: #"{"expires_in":5}"#).status == 201)
        }
    }

    @Test func keyLocksNeedAProKeyAndAreNamespacedPerTenant() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/key/deploy:prod"
            expectProblem(try await server.request("POST", path), 401)
            expectProblem(try await server.request("POST", path, headers: ["Authorization": "Bearer \(Keys.initech)"]), 403)
            expectProblem(try await server.request("POST", path, headers: ["Authorization": "Bearer not-a-key"]), 401)
            #expect(try await server.request("POST", path, headers: ["Authorization": "Bearer \(Keys.acme)"]).status == 201)
            #expect(
                try await server.request("POST", path, headers: ["Authorization": "Bearer \(Keys.globex)"]).status == 201,
                "tenants never collide"
            )
            expectProblem(try await server.request("POST", path, headers: ["Authorization": "Bearer \(Keys.acme)"]), 409)
            #expect(try await server.request("DELETE", path, headers: ["Authorization": "Bearer \(Keys.acme)"]).status == 200)
            #expect(try await server.request("GET", path, headers: ["Authorization": "Bearer \(Keys.globex)"]).status == 200)
        }
    }

    @Test func aSemaphoreAdmitsNHoldersAndAReleasedPermitGoesToAWaiter() async throws {
        try await withLiveServer { server throws in
            let acme = ["Authorization": "Bearer \(Keys.acme)"]
            let path = "/v1/api/semaphore/key/builds"
            var permits: [Int] = []
            for _ in 0..<2 {
                let taken = try await server.request("POST", path, body: #"{"permits": 2, "expires_in": 60, "secret": "s"}"#, headers: acme)
                #expect(taken.status == 201, "\(taken.text)")
                #expect(taken.json?["fencing_token"] is Int)
                let index = try #require(taken.json?["permit"] as? Int)
                #expect(taken.json?["lock"] as? String == "key/builds/\(index)")
                permits.append(index)
            }
            #expect(Set(permits) == [0, 1])
            let full = try await server.request("POST", path, body: #"{"permits": 2, "expires_in": 60}"#, headers: acme)
            expectProblem(full, 409)
            #expect(Int(full.header("Retry-After") ?? "") ?? 0 >= 1)
            #expect(
                try await server.request("POST", path, body: #"{"permits": 2}"#, headers: ["Authorization": "Bearer \(Keys.globex)"]).status == 201,
                "tenants never share a semaphore"
            )

            let first = "\(path)/\(permits[0])"
            #expect(try await server.request("GET", first, headers: acme).json?["has_secret"] as? Bool == true)
            expectProblem(try await server.request("DELETE", first, body: #"{"secret": "wrong"}"#, headers: acme), 403)
            let extended = try await server.request("PATCH", first, body: #"{"secret": "s", "expires_in": 120}"#, headers: acme)
            #expect(extended.status == 200)
            #expect((extended.json?["expires_in"] as? Double ?? 0) > 100)

            async let waiter = server.request("POST", path, body: #"{"permits": 2, "wait": 30, "expires_in": 10}"#, headers: acme)
            try await Task.sleep(for: .milliseconds(400))
            let clock = ContinuousClock()
            let released = clock.now
            #expect(try await server.request("DELETE", first, body: #"{"secret": "s"}"#, headers: acme).status == 200)
            let granted = try await waiter
            #expect(granted.status == 201, "\(granted.text)")
            #expect(granted.json?["permit"] as? Int == permits[0])
            #expect(clock.now - released < .seconds(5), "handed over by the release, not the 60 s expiry")
            expectProblem(try await server.request("GET", "\(path)/7", headers: acme), 404)
        }
    }

    @Test func dataPayloadsComeBackAsTheyWereSent() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            // 2^53 + 1 has no exact Double: it must travel as an integer.
            let data = #"{"id":9007199254740993,"nested":{"url":"https://example.com/a/b"},"ratio":0.25,"tags":["a",null,true,-3]}"#
            let headers = ["Authorization": "Bearer \(Keys.acme)"]
            let created = try await server.request("POST", path, body: #"{"data":\#(data)}"#, headers: headers)
            #expect(created.status == 201)
            #expect(created.text.contains(#""data":\#(data)"#), "\(created.text)")
            let status = try await server.request("GET", path, headers: headers)
            #expect(status.text.contains(#""data":\#(data)"#), "\(status.text)")
        }
    }

    @Test func dataPayloadsArePro() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            expectProblem(try await server.request("POST", path, body: #"{"data":{"job":7}}"#), 403)
            expectProblem(
                try await server.request("POST", path, body: #"{"data":{"job":7}}"#, headers: ["Authorization": "Bearer \(Keys.initech)"]),
                403
            )
            let created = try await server.request(
                "POST",
                path,
                body: #"{"data":{"job":7,"owner":"w1"}}"#,
                headers: ["Authorization": "Bearer \(Keys.acme)"]
            )
            #expect(created.status == 201)
            let status = try await server.request("GET", path, headers: ["Authorization": "Bearer \(Keys.acme)"])
            let data = status.json?["data"] as? [String: Any]
            #expect(data?["job"] as? Int == 7 && data?["owner"] as? String == "w1", "the tenant that stored the data reads it")
            // A UUID is a public name: anyone may see that it is held, only its tenant the data.
            for headers in [[:], ["Authorization": "Bearer \(Keys.globex)"]] {
                let other = try await server.request("GET", path, headers: headers)
                #expect(other.status == 200)
                #expect(other.json?["data"] == nil, "\(headers): \(other.text)")
            }
            let big = "{\"data\":\"" + String(repeating: "x", count: 17 * 1024) + "\"}"
            expectProblem(
                try await server.request("POST", "/v1/api/lock/uuid/\(uuid())", body: big, headers: ["Authorization": "Bearer \(Keys.acme)"]),
                422
            )
        }
    }

    @Test func throttlingAnswers429WithRetryAfter() async throws {
        try await withLiveServer(anonymousRate: 2, proRate: 1_000) { server throws in
            var statuses: [Int] = []
            var throttled: HTTPResult?
            for _ in 0..<8 {
                let result = try await server.request("GET", "/v1/api/lock/uuid/\(uuid())")
                statuses.append(result.status)
                if result.status == 429 { throttled = result }
            }
            #expect(statuses.prefix(4).allSatisfy { $0 == 404 }, "a burst of twice the rate goes through: \(statuses)")
            let limited = try #require(throttled)
            expectProblem(limited, 429)
            #expect(Int(limited.header("Retry-After") ?? "") ?? 0 >= 1)
            #expect(limited.header("RateLimit") != nil)
            // A Pro tenant has its own, higher bucket.
            #expect(try await server.request("GET", "/v1/api/lock/uuid/\(uuid())", headers: ["Authorization": "Bearer \(Keys.acme)"]).status == 404)
        }
    }

    @Test(arguments: [1, 2])
    func aHeldLockIsStill409WithAMinorityOfMastersDown(down: Int) async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", path, body: #"{"secret":"holder-a","expires_in":600}"#).status == 201)
            for index in 0..<down { await server.masters[index].kill9() }
            for _ in 0..<20 {
                let post = try await server.request("POST", path, body: #"{"secret":"client-b","expires_in":60}"#)
                expectProblem(post, 409)
                let retryAfter = Int(post.header("Retry-After") ?? "") ?? 0
                #expect(retryAfter > 500 && retryAfter <= 600, "Retry-After is the holder's remaining time, not a guess")
            }
        }
    }

    @Test func aRePostWithTheSameSecretNeverDeletesTheHoldersOwnKeys() async throws {
        try await withLiveServer { server throws in
            let id = uuid()
            let path = "/v1/api/lock/uuid/\(id)"
            #expect(try await server.request("POST", path, body: #"{"secret":"same","expires_in":600}"#).status == 201)
            // Master 0 is paused, so the re-POST's vote there is pending; the attempt is decided
            // as held by the others, and its clean-up is queued on master 0 behind its SET.
            server.masters[0].pause()
            let again = try await server.request("POST", path, body: #"{"secret":"same","expires_in":600}"#)
            server.masters[0].resume()
            #expect(again.status == 200, "the holder's own re-POST answers with its lock")
            let direct = RedisConnection(address: server.masters[0].address, configuration: .init(commandTimeout: .seconds(5)))
            _ = try await direct.send("PING")  // everything queued before has been applied
            #expect(
                try await direct.send("EXISTS", "redlock:lock:u:\(id)") == .integer(1),
                "the clean-up of a failed attempt deleted the holder's key"
            )
            await direct.close()
        }
    }

    @Test func retryAfterIsTheRemainingTTLRoundedUpAndTheHoldersOwnWaitingRePostAnswersAtOnce() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            let mine = try await server.request("POST", path, body: #"{"secret":"mine"}"#, headers: ["Authorization": "Bearer \(Keys.acme)"])
            #expect(mine.status == 201)  // 30 days: a tenant's default
            let conflict = try await server.request("POST", path, body: #"{"secret":"theirs"}"#)
            expectProblem(conflict, 409)
            let retryAfter = Int(conflict.header("Retry-After") ?? "") ?? 0
            // Not the drift-shortened validity (1 % early: 7 hours on a 30-day lock).
            #expect(retryAfter >= 2_591_999 && retryAfter <= 2_592_000, "Retry-After \(retryAfter)")

            let clock = ContinuousClock()
            let start = clock.now
            let again = try await server.request("POST", path, body: #"{"secret":"mine","wait":5}"#)
            #expect(again.status == 200)
            #expect(clock.now - start < .seconds(2), "the holder's own re-POST waited \(clock.now - start)")
        }
    }

    @Test func readyzAsksEveryGroupForAPingAndNamesTheGroupThatIsShort() async throws {
        try await withLiveServer { server throws in
            #expect(try await server.request("GET", "/readyz").status == 200)
            // Paused masters keep their connections open but answer nothing.
            for index in 0..<2 { server.regionMasters[index].pause() }
            defer { for index in 0..<2 { server.regionMasters[index].resume() } }
            // The masters' answers are reused for a second: the change shows within two.
            var ready = try await server.request("GET", "/readyz")
            for _ in 0..<40 where ready.status == 200 {
                try await Task.sleep(for: .milliseconds(50))
                ready = try await server.request("GET", "/readyz")
            }
            expectProblem(ready, 503)
            #expect(ready.text.contains("eu"), "the body names the group that is short: \(ready.text)")
            #expect(!ready.text.contains("127.0.0.1"), "no Redis address leaks")
        }
    }

    @Test func anAddressWithoutAKeyUsesAtMostItsQuotaOfLockNames() async throws {
        try await withLiveServer(setting: .set(\.anonymousNamesPerRetention, 3)) { server throws in
            let names = (0..<4).map { _ in "/v1/api/lock/uuid/\(uuid())" }
            for path in names.prefix(3) {
                #expect(try await server.request("POST", path, body: #"{"expires_in":5}"#).status == 201)
                #expect(try await server.request("DELETE", path).status == 200)
            }
            let refused = try await server.request("POST", names[3], body: #"{"expires_in":5}"#)
            expectProblem(refused, 429)
            #expect(Int(refused.header("Retry-After") ?? "") ?? 0 > 3_600, "until the oldest name leaves the 24 h window")
            #expect(try await server.request("POST", names[0], body: #"{"expires_in":5}"#).status == 201, "a name it used is still its own")
            let keyed = try await server.request("POST", "/v1/api/lock/key/quota-\(uuid())", headers: ["Authorization": "Bearer \(Keys.acme)"])
            #expect(keyed.status == 201, "a tenant is accountable by key, and not limited so")
        }
    }

    @Test func wrongSecretsForOneLockAreThrottledBeforeTheSecretIsCompared() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", path, body: #"{"secret":"right-one","expires_in":60}"#).status == 201)
            // The answers tell a right secret from a wrong one: 30 wrong ones are answered...
            var statuses: [Int] = []
            for attempt in 0..<30 {
                let guess = attempt % 2 == 0 ? ("DELETE", #"{"secret":"guess-\#(attempt)"}"#) : ("POST", #"{"secret":"guess-\#(attempt)"}"#)
                statuses.append(try await server.request(guess.0, path, body: guess.1).status)
            }
            #expect(statuses == Array(repeating: [403, 409], count: 15).flatMap { $0 }, "\(statuses)")
            // ...then none is compared, the right one included, until the allowance refills.
            let refused = try await server.request("DELETE", path, body: #"{"secret":"right-one"}"#)
            expectProblem(refused, 429)
            #expect(Int(refused.header("Retry-After") ?? "") ?? 0 >= 1)
            #expect(try await server.request("GET", path).status == 200, "still held, and its status is free to read")
        }
    }

    @Test func frequentHealthChecksCostTheMastersAFewPingsASecond() async throws {
        try await withLiveServer { server throws in
            for master in server.masters.servers + server.regionMasters.servers {
                let connection = RedisConnection(address: master.address)
                _ = try await connection.send("CONFIG", "RESETSTAT")
                await connection.close()
            }
            let clock = ContinuousClock()
            let started = clock.now
            for _ in 0..<100 { #expect(try await server.request("GET", "/readyz").status == 200) }
            let seconds = Int((clock.now - started).components.seconds) + 1
            var pings = 0
            for master in server.masters.servers + server.regionMasters.servers {
                let connection = RedisConnection(address: master.address)
                let stats = try await connection.send("INFO", "commandstats").string ?? ""
                await connection.close()
                pings +=
                    stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_ping:") }
                    .flatMap { $0.split(separator: "=")[1].split(separator: ",").first.flatMap { Int($0) } } ?? 0
            }
            // 8 masters: at most one PING each per second (and one more for the start).
            #expect(pings <= 8 * (seconds + 1), "\(pings) PINGs for 100 health checks in about \(seconds) s")
        }
    }

    @Test func aQuorumDownGives503FromPostAndReadyz() async throws {
        try await withLiveServer { server throws in
            #expect(try await server.request("GET", "/readyz").status == 200)
            for index in 0..<3 { await server.masters[index].kill9() }
            let path = "/v1/api/lock/uuid/\(uuid())"
            var post = try await server.request("POST", path)
            if post.status != 503 { post = try await server.request("POST", path) }  // first may see the connections close
            expectProblem(post, 503)
            #expect(post.header("Retry-After") != nil)
            var ready = try await server.request("GET", "/readyz")
            for _ in 0..<40 where ready.status == 200 {
                try await Task.sleep(for: .milliseconds(50))
                ready = try await server.request("GET", "/readyz")
            }
            expectProblem(ready, 503)
            #expect(try await server.request("GET", "/livez").status == 200)
            #expect(!post.text.contains("127.0.0.1"), "no Redis address leaks")
        }
    }

    @Test func oversizedBodiesAre413() async throws {
        try await withLiveServer { server throws in
            let body = "{\"secret\":\"" + String(repeating: "a", count: 1024 * 1024) + "\"}"
            expectProblem(try await server.request("POST", "/v1/api/lock/uuid/\(uuid())", body: body), 413)
        }
    }

    @Test(arguments: [
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", "{not json", 400),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", "[1,2]", 400),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", #"{"expires_in":"300"}"#, 400),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", #"{"expires_in":true}"#, 400),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", #"{"secret":42}"#, 400),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", #"{"expires_in":-5}"#, 422),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", #"{"expires_in":0}"#, 422),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", #"{"expires_in":1e300}"#, 422),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", #"{"secret":""}"#, 422),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", #"{"wait":61}"#, 422),
        ("POST", "/v1/api/lock/uuid/\(UUID().uuidString)", String(repeating: "[", count: 100) + String(repeating: "]", count: 100), 400),
        ("POST", "/v1/api/lock/uuid/not-a-uuid", "", 400),
        ("POST", "/v1/api/lock/uuid/123e4567-e89b-12d3-a456-42661417400", "", 400),
        ("POST", "/v1/api/lock/key/a..b", "", 400),
        ("POST", "/v1/api/lock/key/..", "", 404),  // clients resolve the dot segment: /v1/api/lock/ has no route
        ("POST", "/v1/api/lock/key/a%2Fb", "", 400),
        ("POST", "/v1/api/lock/key/a%0D%0Ab", "", 400),
        ("POST", "/v1/api/lock/key/a%00b", "", 400),
        ("POST", "/v1/api/lock/key/a%20b", "", 400),
        ("POST", "/v1/api/lock/key/a/b", "", 404),
        ("POST", "/v1/api/lock/key/" + String(repeating: "n", count: 201), "", 400),
        ("PUT", "/v1/api/lock/uuid/\(UUID().uuidString)", "", 404),  // Hummingbird's router answers unrouted methods with 404
    ])
    func badInputGivesA4xxProblemNeverA500(method: String, path: String, body: String, expected: Int) async throws {
        try await withLiveServer { server throws in
            let headers = path.contains("/key/") ? ["Authorization": "Bearer \(Keys.acme)"] : [:]
            let result = try await server.request(method, path, body: body.isEmpty ? nil : body, headers: headers)
            #expect(result.status == expected, "\(method) \(path) \(body.prefix(40)): \(result.status) \(result.text)")
            #expect(result.header("Content-Type") == "application/problem+json")
        }
    }

    @Test func customSubdomainsServeTheirTenantAndNeedItsKey() async throws {
        try await withLiveServer(baseDomain: "example.com") { server throws in
            let path = "/v1/api/lock/key/nightly"
            let host = ["Host": "acme.example.com"]
            expectProblem(try await server.request("POST", path, headers: host), 401)
            expectProblem(try await server.request("POST", path, headers: host.merging(["Authorization": "Bearer \(Keys.globex)"]) { $1 }), 403)
            #expect(try await server.request("POST", path, headers: host.merging(["Authorization": "Bearer \(Keys.acme)"]) { $1 }).status == 201)
            // The same name on the bare domain with acme's key is the same lock (acme's namespace).
            expectProblem(try await server.request("POST", path, headers: ["Authorization": "Bearer \(Keys.acme)"]), 409)
            // A fully qualified host name (trailing dot) is the same subdomain.
            expectProblem(try await server.request("POST", path, headers: ["Host": "acme.example.com."]), 401)
            expectProblem(
                try await server.request("POST", path, headers: ["Host": "acme.example.com.", "Authorization": "Bearer \(Keys.globex)"]),
                403
            )
        }
    }

    @Test func aTenantsRegionLocksOnThatRegionsMasters() async throws {
        try await withLiveServer { server throws in
            #expect(try await server.request("POST", "/v1/api/lock/key/batch", headers: ["Authorization": "Bearer \(Keys.euro)"]).status == 201)
            let regional = RedisConnection(address: server.regionMasters[0].address)
            let primary = RedisConnection(address: server.masters[0].address)
            #expect(try await regional.send("EXISTS", "redlock:lock:k:euro:batch") == .integer(1))
            #expect(try await primary.send("EXISTS", "redlock:lock:k:euro:batch") == .integer(0))
            await regional.close()
            await primary.close()
        }
    }

    @Test func aUUIDIsOneLockWhateverTheCallersRegion() async throws {
        try await withLiveServer { server throws in
            let path = "/v1/api/lock/uuid/\(uuid())"
            #expect(try await server.request("POST", path, headers: ["Authorization": "Bearer \(Keys.euro)"]).status == 201)
            let anonymous = try await server.request("POST", path)
            expectProblem(anonymous, 409)
            #expect(try await server.request("GET", path).status == 200, "everyone sees the regional tenant's hold")
        }
    }

    @Test func healthMetricsAndOpenAPIAreServed() async throws {
        try await withLiveServer { server throws in
            #expect(try await server.request("GET", "/livez").status == 200)
            #expect(try await server.request("GET", "/readyz").status == 200)
            #expect(try await server.request("GET", "/metrics").status == 200)
            let openapi = try await server.request("GET", "/v1/api/openapi.json")
            #expect(openapi.status == 200)
            let paths = try #require(openapi.json?["paths"] as? [String: Any])
            for path in ["/v1/api/lock/uuid/{uuid}", "/v1/api/lock/key/{name}", "/livez", "/readyz", "/metrics", "/v1/api/openapi.json"] {
                #expect(paths[path] != nil, "OpenAPI lists \(path)")
            }
        }
    }
}
