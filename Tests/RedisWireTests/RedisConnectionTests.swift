import LocalRedis
import NIOCore
import RealServerGate
import RedisWire
import Synchronization
import Testing

@Suite("RedisConnection against a real redis-server", .serialized, .realRedisServers)
struct RedisConnectionTests {
    @Test func roundTripsSetAndGet() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            defer { Task { await connection.close() } }
            #expect(try await connection.send("PING") == .simpleString("PONG"))
            #expect(try await connection.send("SET", "greeting", "hello") == .simpleString("OK"))
            #expect(try await connection.send("GET", "greeting") == .bulkString(Array("hello".utf8)))
            #expect(try await connection.send("GET", "missing") == .null)
            #expect(try await connection.send("INCRBY", "counter", "41") == .integer(41))
            let list = try await connection.send("MGET", "greeting", "missing")
            #expect(list == .array([.bulkString(Array("hello".utf8)), .null]))
            await connection.close()
        }
    }

    @Test func aURLsACLUserPasswordAndDatabaseAreUsedAndAWrongPasswordIsAClearError() async throws {
        try await withRedisServers(count: 1) { group throws in
            let admin = RedisConnection(address: group[0].address)
            _ = try await admin.send("ACL", "SETUSER", "locker", "on", ">s3cret", "~*", "+@all")
            let port = group[0].port
            let endpoint = try #require(RedisEndpoint(parsing: "redis://locker:s3cret@127.0.0.1:\(port)/3"))
            let user = RedisConnection(address: endpoint.address, configuration: endpoint.configuration(from: .init()))
            #expect(try await user.send("ACL", "WHOAMI") == .bulkString(Array("locker".utf8)))
            _ = try await user.send("SET", "where", "db3")
            _ = try await admin.send("SELECT", "3")
            #expect(try await admin.send("GET", "where") == .bulkString(Array("db3".utf8)), "SELECT 3 was sent")
            await user.close()

            let wrong = try #require(RedisEndpoint(parsing: "redis://locker:guess@127.0.0.1:\(port)"))
            let refused = RedisConnection(address: wrong.address, configuration: wrong.configuration(from: .init()))
            let error = await #expect(throws: RedisWireError.self) { try await refused.connect() }
            #expect(error?.message.contains("AUTH refused: WRONGPASS") == true, "\(String(describing: error))")
            #expect(error?.message.contains("guess") == false, "the password is never in an error")
            await refused.close()
            await admin.close()
        }
    }

    @Test func pipelinesAThousandConcurrentCommandsToTheirOwnCallers() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            try await connection.connect()
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { tasks in
                for index in 0..<1_000 {
                    tasks.addTask {
                        let value = "value-\(index)-" + String(repeating: "x", count: index % 37)
                        let set = try await connection.send("SET", "key:\(index)", value)
                        let echoed = try await connection.send("ECHO", value)
                        let got = try await connection.send("GET", "key:\(index)")
                        let ok = set == .simpleString("OK") && echoed.string == value && got.string == value
                        return ok ? 0 : 1
                    }
                }
                return try await tasks.reduce(0, +)
            }
            #expect(mismatches == 0)
            #expect(try await connection.send("DBSIZE") == .integer(1_000))
            await connection.close()
        }
    }

    @Test func commandsQueuedInOneEventLoopTickGoOutInSeveralBatchesAndEachReplyReachesItsCaller() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            try await connection.connect()
            // All queued from one job on the loop: more than the eager-flush batch several times
            // over, so some batches leave before the tick ends and others at its end.
            let count = 100
            let commands = try (0..<count).map { try RedisCommand(["ECHO", "reply-\($0)"].map { Array($0.utf8) }) }
            let deadline = NIODeadline.now() + .seconds(5)
            let replies: [RESPValue] = try await connection.eventLoop.flatSubmit {
                let futures = commands.map { command -> EventLoopFuture<RESPValue> in
                    let promise = connection.eventLoop.makePromise(of: RESPValue.self)
                    connection.send(command, deadline: deadline) { promise.completeWith($0.mapError { $0 as any Error }) }
                    return promise.futureResult
                }
                return EventLoopFuture.whenAllSucceed(futures, on: connection.eventLoop)
            }.get()
            #expect(replies.map(\.string) == (0..<count).map { "reply-\($0)" })
            await connection.close()
        }
    }

    @Test func tasksOnTheConnectionsLoopMixArgumentListsEncodedCommandsAndBadCommandsAndEachGetsItsOwnReply() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            try await connection.connect()
            // On the loop, argument lists are encoded straight into the batch being written,
            // beside pre-encoded commands queued in the same tick.
            let outcomes = try await withThrowingTaskGroup(of: (onLoop: Bool, ok: Bool, rejected: Bool).self) { tasks in
                for index in 0..<200 {
                    tasks.addTask(executorPreference: connection.taskExecutor) {
                        let onLoop = connection.eventLoop.inEventLoop
                        let direct = try await connection.send([Array("ECHO".utf8), Array("direct-\(index)".utf8)])
                        let encoded = try RedisCommand([Array("ECHO".utf8), Array("encoded-\(index)".utf8)])
                        let viaBuffer = try await connection.send(encoded, deadline: .now() + .seconds(5))
                        var rejected = true
                        if index % 10 == 0 {
                            do throws(RedisWireError) {
                                _ = try await connection.send([])
                                rejected = false
                            } catch {
                                rejected = error.code == .invalidArgument
                            }
                        }
                        let after = try await connection.send("ECHO", "after-\(index)")
                        let ok = direct.string == "direct-\(index)" && viaBuffer.string == "encoded-\(index)" && after.string == "after-\(index)"
                        return (onLoop, ok, rejected)
                    }
                }
                return try await tasks.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.count == 200)
            #expect(outcomes.allSatisfy { $0.onLoop })
            #expect(outcomes.allSatisfy { $0.ok })
            #expect(outcomes.allSatisfy { $0.rejected })
            #expect(try await connection.send("PING") == .simpleString("PONG"))
            await connection.close()
        }
    }

    @Test func keepsBinaryValuesWithNulAndCRLFIntact() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            let key: [UInt8] = [0x6B, 0x00, 0x0D, 0x0A, 0xFF]
            let value: [UInt8] = [0x00, 0x0D, 0x0A, 0x24, 0x2D, 0x31, 0x0D, 0x0A, 0xFE, 0x00] + Array(0...255)
            #expect(try await connection.send([Array("SET".utf8), key, value]) == .simpleString("OK"))
            #expect(try await connection.send([Array("GET".utf8), key]) == .bulkString(value))
            #expect(try await connection.send([Array("STRLEN".utf8), key]) == .integer(Int64(value.count)))
            #expect(try await connection.send([Array("SET".utf8), Array("empty".utf8), []]) == .simpleString("OK"))
            #expect(try await connection.send("GET", "empty") == .bulkString([]))
            await connection.close()
        }
    }

    @Test func aPausedServerTimesOutWithinTheDeadlineAndTheNextCommandSucceedsAfterResume() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            try await connection.connect()
            group[0].pause()
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: RedisWireError.self) {
                try await connection.send("PING", timeout: .milliseconds(100))
            }
            let elapsed = clock.now - start
            #expect(error?.code == .timeout)
            #expect(elapsed >= .milliseconds(100))
            #expect(elapsed < .milliseconds(600), "timed out after \(elapsed), deadline was 100 ms")
            group[0].resume()
            #expect(try await connection.send("PING", timeout: .seconds(2)) == .simpleString("PONG"))
            await connection.close()
        }
    }

    @Test func aKilledServerFailsFastAndIsReconnectedAfterRestart() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(
                address: group[0].address,
                configuration: .init(commandTimeout: .seconds(2), reconnect: .init(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200)))
            )
            try await connection.connect()
            await group[0].kill9()
            // The first command may see the connection close; after that every call fails fast.
            _ = try? await connection.send("PING")
            let clock = ContinuousClock()
            for _ in 0..<20 {
                let start = clock.now
                let error = await #expect(throws: RedisWireError.self) { try await connection.send("PING") }
                #expect(error?.code == .unavailable || error?.code == .connectionClosed)
                #expect(clock.now - start < .milliseconds(200), "a down server must not cost the full 2 s timeout")
            }
            try await group[0].restart()
            var answered = false
            for _ in 0..<100 where !answered {  // bounded: about 5 s
                if (try? await connection.send("PING")) == .simpleString("PONG") {
                    answered = true
                } else {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            #expect(answered, "the connection re-dialled the restarted server")
            await connection.close()
        }
    }

    @Test func evaluateFallsBackToEvalOnNoscript() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            let script = RedisScript("return {KEYS[1], ARGV[1], redis.call('incr', KEYS[1])}")
            _ = try await connection.send("SCRIPT", "FLUSH")
            let exists = try await connection.send("SCRIPT", "EXISTS", script.sha1)
            #expect(exists == .array([.integer(0)]))
            let first = try await connection.evaluate(script, keys: [Array("n".utf8)], arguments: [Array("a".utf8)])
            #expect(first == .array([.bulkString(Array("n".utf8)), .bulkString(Array("a".utf8)), .integer(1)]))
            // EVAL cached it: EVALSHA now works directly.
            let direct = try await connection.send("EVALSHA", script.sha1, "1", "n", "b")
            #expect(direct.array?.last == .integer(2))
            await connection.close()
        }
    }

    @Test func aSharedReceiverGetsEachReplyOnceUnderItsTagIncludingAfterANoscriptFallback() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            try await connection.connect()
            let script = RedisScript("return 'script-' .. ARGV[1]")
            _ = try await connection.send("SCRIPT", "FLUSH")
            let receiver = TaggedReplies()
            let count = 40
            // Even tags are plain ECHOs, odd tags the uncached script: its first EVALSHA gets
            // NOSCRIPT and is re-sent as EVAL, behind later commands, yet lands on its own tag.
            let plain = try (0..<count).map { try RedisCommand(["ECHO", "plain-\($0)"].map { Array($0.utf8) }) }
            let calls = try (0..<count).map { try RedisScriptCall(script, keys: [], arguments: [Array(String($0).utf8)]) }
            let deadline = NIODeadline.now() + .seconds(5)
            try await connection.eventLoop.submit {
                for tag in 0..<count {
                    if tag % 2 == 0 {
                        connection.send(plain[tag], deadline: deadline, receiver: receiver, tag: tag)
                    } else {
                        connection.evaluate(calls[tag], deadline: deadline, receiver: receiver, tag: tag)
                    }
                }
            }.get()
            for _ in 0..<500 where receiver.count < count { try await Task.sleep(for: .milliseconds(10)) }  // bounded: 5 s
            let replies = receiver.snapshot
            #expect(replies.count == count)
            for tag in 0..<count {
                let expected = tag % 2 == 0 ? "plain-\(tag)" : "script-\(tag)"
                #expect(replies[tag] == [expected], "tag \(tag)")
            }
            await connection.close()
        }
    }

    @Test func aCommandSentAfterAnUncachedScriptNeverRunsBeforeIt() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            try await connection.connect()
            _ = try await connection.send("SCRIPT", "FLUSH")
            // An acquisition's script the server has not cached, then a release of its key on
            // the same connection before the script's reply is back (a failed attempt's clean-up).
            #expect(try await setByScriptThenDelete(on: connection) == 2)
            #expect(try await connection.send("EXISTS", "k") == .integer(0), "the DEL ran before the script it followed")
            await connection.close()
        }
    }

    @Test func aScriptCacheFlushedUnderALiveConnectionDropsItRatherThanReorderCommands() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            _ = try await connection.evaluate(setScript, keys: [Array("warm".utf8)], arguments: [Array("v".utf8)])
            let admin = RedisConnection(address: group[0].address)
            _ = try await admin.send("SCRIPT", "FLUSH")
            #expect(try await setByScriptThenDelete(on: connection) == 2)
            #expect(try await admin.send("EXISTS", "k") == .integer(0), "the DEL ran before the script it followed")
            // And the connection serves again, the script reloaded.
            #expect(try await connection.evaluate(setScript, keys: [Array("k2".utf8)], arguments: [Array("v".utf8)]) == .simpleString("OK"))
            await connection.close()
            await admin.close()
        }
    }

    @Test func errorRepliesSurfaceAsTypedErrorsWithTheServersMessage() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            let unknown = await #expect(throws: RedisWireError.self) { try await connection.send("NOSUCHCOMMAND", "x") }
            #expect(unknown?.code == .serverError)
            #expect(unknown?.serverErrorPrefix == "ERR")
            #expect(unknown?.message.contains("unknown command") == true)
            _ = try await connection.send("SET", "s", "text")
            let wrongType = await #expect(throws: RedisWireError.self) { try await connection.send("LPUSH", "s", "x") }
            #expect(wrongType?.serverErrorPrefix == "WRONGTYPE")
            // The connection stays usable after error replies.
            #expect(try await connection.send("GET", "s") == .bulkString(Array("text".utf8)))
            let empty = await #expect(throws: RedisWireError.self) { try await connection.send([]) }
            #expect(empty?.code == .invalidArgument)
            await connection.close()
        }
    }

    @Test func aServerThatNeverListenedIsReportedUnavailable() async throws {
        let port = try FreePort.pick()
        let connection = RedisConnection(address: .hostname("127.0.0.1", port: port))
        let error = await #expect(throws: RedisWireError.self) { try await connection.send("PING") }
        #expect(error?.code == .unavailable)
        await connection.close()
    }

    @Test func aCommandSentFromAFailedDialsCompletionFailsFastInsteadOfVanishing() async throws {
        // Redlock's fan-out does this: a failed acquisition's completion sends the release at
        // once, on the same connection, while the failed dial is still delivering its failures.
        let port = try FreePort.pick()
        let connection = RedisConnection(address: .hostname("127.0.0.1", port: port))
        let ping = try RedisCommand([Array("PING".utf8)])
        let outcomes = Mutex<[RedisWireError.Code?]>([])
        connection.eventLoop.execute {
            let deadline = NIODeadline.now() + .seconds(2)
            connection.send(ping, deadline: deadline) { first in
                outcomes.withLock { $0.append(first.errorCode) }
                connection.send(ping, deadline: deadline) { second in
                    outcomes.withLock { $0.append(second.errorCode) }
                }
            }
        }
        for _ in 0..<300 where outcomes.withLock({ $0.count }) < 2 { try await Task.sleep(for: .milliseconds(10)) }  // bounded: 3 s
        #expect(outcomes.withLock { $0 } == [.unavailable, .unavailable])
        await connection.close()
    }

    @Test func closeFailsLaterCommands() async throws {
        try await withRedisServers(count: 1) { group throws in
            let connection = RedisConnection(address: group[0].address)
            #expect(try await connection.send("PING") == .simpleString("PONG"))
            await connection.close()
            let error = await #expect(throws: RedisWireError.self) { try await connection.send("PING") }
            #expect(error?.code == .closed)
        }
    }
}

extension Result where Failure == RedisWireError {
    /// The error's code, or nil on success.
    fileprivate var errorCode: RedisWireError.Code? {
        if case .failure(let error) = self { return error.code }
        return nil
    }
}

/// Records every reply a connection hands it, by tag.
/// `SET KEYS[1] ARGV[1]` as a script.
private let setScript = RedisScript("return redis.call('SET', KEYS[1], ARGV[1])")

/// Queues, in one tick on `connection`'s loop, the script setting `k` and then a `DEL k`, and
/// waits (bounded, 5 s) for their replies; returns how many came.
private func setByScriptThenDelete(on connection: RedisConnection) async throws -> Int {
    let call = try RedisScriptCall(setScript, keys: [Array("k".utf8)], arguments: [Array("v".utf8)])
    let delete = try RedisCommand(["DEL", "k"].map { Array($0.utf8) })
    let receiver = TaggedReplies()
    let deadline = NIODeadline.now() + .seconds(5)
    try await connection.eventLoop.submit {
        connection.evaluate(call, deadline: deadline, receiver: receiver, tag: 0)
        connection.send(delete, deadline: deadline, receiver: receiver, tag: 1)
    }.get()
    for _ in 0..<500 where receiver.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
    return receiver.count
}

private final class TaggedReplies: RedisReplyReceiver {
    private let replies = Mutex<[Int: [String]]>([:])

    func receive(_ reply: Result<RESPValue, RedisWireError>, tag: Int) {
        let text: String
        switch reply {
        case .success(let value): text = value.string ?? "\(value)"
        case .failure(let error): text = "error: \(error.message)"
        }
        replies.withLock { $0[tag, default: []].append(text) }
    }

    var count: Int { replies.withLock { $0.values.reduce(0) { $0 + $1.count } } }
    var snapshot: [Int: [String]] { replies.withLock { $0 } }
}
