import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import RedisWire

/// The channel handler alone, on an `NIOAsyncTestingChannel`: bytes in, bytes out, no server.
@Suite struct RedisChannelHandlerTests {
    /// Replies as the handler delivered them, in delivery order.
    final class Replies: Sendable {
        private let storage = Mutex<[Result<RESPValue, RedisWireError>]>([])
        var all: [Result<RESPValue, RedisWireError>] { storage.withLock { $0 } }
        var strings: [String?] { all.map { try? $0.get().string } }
        func sink() -> ReplySink { .closure { reply in self.storage.withLock { $0.append(reply) } } }
    }

    func makeChannel(
        healthTimeout: Duration = .seconds(2),
        maximumInFlight: Int = 10_000
    ) async throws -> (NIOAsyncTestingChannel, RedisChannelHandler) {
        let handler = RedisChannelHandler(healthTimeout: healthTimeout, maximumInFlight: maximumInFlight)
        let channel = NIOAsyncTestingChannel()
        try await channel.pipeline.addHandler(handler)
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379))
        return (channel, handler)
    }

    func send(
        _ arguments: [String],
        on channel: NIOAsyncTestingChannel,
        _ handler: RedisChannelHandler,
        to replies: Replies,
        deadline: NIODeadline = .now() + .seconds(60),
        script: RedisScriptCall? = nil
    ) async throws {
        let command = try RedisCommand(arguments.map { Array($0.utf8) })
        try await channel.testingEventLoop.executeInContext {
            handler.send(command.encoded, deadline: deadline, sink: replies.sink(), script: script)
        }
    }

    /// Everything the handler wrote so far, as text.
    func written(_ channel: NIOAsyncTestingChannel) async throws -> [String] {
        var writes: [String] = []
        while let buffer = try await channel.readOutbound(as: ByteBuffer.self) { writes.append(String(buffer: buffer)) }
        return writes
    }

    @Test func commandsQueuedInOneTickGoOutAsOneWriteAndRepliesCompleteInOrder() async throws {
        let (channel, handler) = try await makeChannel()
        let replies = Replies()
        let commands = [["GET", "a"], ["GET", "b"], ["GET", "c"]].map { try! RedisCommand($0.map { Array($0.utf8) }) }
        try await channel.testingEventLoop.executeInContext {
            for command in commands { handler.send(command.encoded, deadline: .now() + .seconds(60), sink: replies.sink(), script: nil) }
        }
        await channel.testingEventLoop.run()
        let writes = try await written(channel)
        #expect(writes == ["*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n*2\r\n$3\r\nGET\r\n$1\r\nc\r\n"], "one write for the tick")
        try await channel.writeInbound(ByteBuffer(string: "$1\r\nA\r\n$1\r\nB\r\n$1\r\nC\r\n"))
        #expect(replies.strings == ["A", "B", "C"])
    }

    @Test func aTransactionGetsOnlyExecsReplyAndTheRepliesAfterItStayInStep() async throws {
        let (channel, handler) = try await makeChannel()
        let transacted = Replies()
        let refused = Replies()
        let after = Replies()
        let transaction = try RedisCommand(transaction: [["SET", "c", "1"], ["INCR", "c"]].map { $0.map { Array($0.utf8) } })
        let refusedTransaction = try RedisCommand(transaction: [["NOSUCH"]].map { $0.map { Array($0.utf8) } })
        try await channel.testingEventLoop.executeInContext {
            for (command, replies) in [(transaction, transacted), (refusedTransaction, refused)] {
                handler.send(command.encoded, deadline: .now() + .seconds(60), sink: replies.sink(), script: nil, replies: command.replies)
            }
        }
        try await send(["GET", "d"], on: channel, handler, to: after)
        await channel.testingEventLoop.run()
        let writes = try await written(channel).joined()
        #expect(writes.hasPrefix("*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n"), "\(writes)")
        #expect(writes.hasSuffix("*1\r\n$4\r\nEXEC\r\n*2\r\n$3\r\nGET\r\n$1\r\nd\r\n"))
        // MULTI's OK, two QUEUED, EXEC's array; then MULTI's OK, a refused command, EXECABORT; GET d.
        try await channel.writeInbound(ByteBuffer(string: "+OK\r\n+QUEUED\r\n"))
        #expect(transacted.all.isEmpty, "a transaction answers only with its EXEC")
        try await channel.writeInbound(ByteBuffer(string: "+QUEUED\r\n*2\r\n+OK\r\n:2\r\n+OK\r\n-ERR unknown command\r\n"))
        #expect(try transacted.all.first?.get() == .array([.simpleString("OK"), .integer(2)]))
        #expect(refused.all.isEmpty, "a queued command's error is not the caller's reply")
        try await channel.writeInbound(ByteBuffer(string: "-EXECABORT Transaction discarded\r\n$1\r\nD\r\n"))
        if case .failure(let error) = refused.all.first {
            #expect(error.serverErrorPrefix == "EXECABORT")
        } else {
            Issue.record("expected EXECABORT, got \(refused.all)")
        }
        #expect(after.strings == ["D"], "the replies after them stay in step")
    }

    /// The replies a transaction drops are read past without being decoded: fed one byte at a
    /// time, with a dropped reply that is an array as well, the caller still gets exactly the
    /// last reply and the next command stays in step.
    @Test func droppedRepliesSplitAcrossReadsAreSkippedWhole() async throws {
        let (channel, handler) = try await makeChannel()
        let transacted = Replies()
        let after = Replies()
        let transaction = try RedisCommand(transaction: [["SET", "k", "v"], ["PTTL", "k"]].map { $0.map { Array($0.utf8) } })
        try await channel.testingEventLoop.executeInContext {
            handler.send(transaction.encoded, deadline: .now() + .seconds(60), sink: transacted.sink(), script: nil, replies: transaction.replies)
            // Not what a server answers to MULTI, but a dropped reply may be any shape.
            handler.send(ByteBuffer(string: "*1\r\n$4\r\nPING\r\n"), deadline: .now() + .seconds(60), sink: after.sink(), script: nil, replies: 2)
        }
        await channel.testingEventLoop.run()
        _ = try await written(channel)
        let bytes = "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:-1\r\n" + "*2\r\n$1\r\na\r\n*1\r\n:7\r\n$4\r\nPONG\r\n"
        for byte in bytes.utf8 { try await channel.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(transacted.all.count == 1)
        #expect(try transacted.all.first?.get() == .array([.simpleString("OK"), .integer(-1)]))
        #expect(after.strings == ["PONG"], "the nested array was dropped whole, then the reply after it delivered")
    }

    @Test func aReplySplitAcrossReadsCompletesOnlyWhenWhole() async throws {
        let (channel, handler) = try await makeChannel()
        let replies = Replies()
        try await send(["GET", "greeting"], on: channel, handler, to: replies)
        try await channel.writeInbound(ByteBuffer(string: "$5\r\nhel"))
        #expect(replies.all.isEmpty, "half a bulk string is not a reply")
        try await channel.writeInbound(ByteBuffer(string: "lo\r"))
        #expect(replies.all.isEmpty)
        try await channel.writeInbound(ByteBuffer(string: "\n"))
        #expect(replies.strings == ["hello"])
    }

    @Test func aCommandPastItsDeadlineFailsAndItsLateReplyIsDroppedNotGivenToTheNext() async throws {
        let (channel, handler) = try await makeChannel()
        let slow = Replies()
        let next = Replies()
        let deadline = NIODeadline.now() + .milliseconds(1)
        try await send(["GET", "slow"], on: channel, handler, to: slow, deadline: deadline)
        try await send(["GET", "next"], on: channel, handler, to: next)
        try await Task.sleep(for: .milliseconds(5))  // the handler reads the real clock when its timer fires
        await channel.testingEventLoop.advanceTime(to: .now())  // the handler's timers are set from the real clock
        #expect(slow.all.count == 1)
        if case .failure(let error) = slow.all.first { #expect(error.code == .timeout) } else { Issue.record("expected a timeout, got \(slow.all)") }
        #expect(channel.isActive, "a timeout costs the caller, not the connection")
        try await channel.writeInbound(ByteBuffer(string: "$4\r\nlate\r\n$4\r\nmine\r\n"))
        #expect(slow.all.count == 1, "the late reply is read and dropped")
        #expect(next.strings == ["mine"], "the next command gets its own reply, not the late one")
    }

    @Test func aServerSilentForTheHealthTimeoutGetsTheConnectionDropped() async throws {
        let (channel, handler) = try await makeChannel(healthTimeout: .milliseconds(20))
        let replies = Replies()
        let deadline = NIODeadline.now() + .milliseconds(1)
        try await send(["GET", "a"], on: channel, handler, to: replies, deadline: deadline)
        try await send(["GET", "b"], on: channel, handler, to: replies, deadline: deadline + .seconds(60))
        try await Task.sleep(for: .milliseconds(5))
        await channel.testingEventLoop.advanceTime(to: .now())  // the handler's timers are set from the real clock
        #expect(channel.isActive, "one timeout alone does not drop the connection")
        try await Task.sleep(for: .milliseconds(30))
        await channel.testingEventLoop.advanceTime(to: .now())
        #expect(handler.droppedAsSilent)
        #expect(replies.all.count == 2)
        if case .failure(let error) = replies.all.last {
            #expect(error.code == .timeout)
        } else {
            Issue.record("expected a failure, got \(replies.all)")
        }
    }

    @Test func aScriptGoesAsEvalUntilItsServerHasItCachedThenAsEvalsha() async throws {
        let (channel, handler) = try await makeChannel()
        let replies = Replies()
        let script = RedisScript("return 1")
        let call = try RedisScriptCall(script, keys: [Array("k".utf8)], arguments: [])
        for reply in [":1\r\n", ":2\r\n"] {
            try await channel.testingEventLoop.executeInContext {
                handler.send(call.evalsha.encoded, deadline: .now() + .seconds(60), sink: replies.sink(), script: call)
            }
            await channel.testingEventLoop.run()
            let sent = try await written(channel)
            if reply == ":1\r\n" {
                #expect(sent.count == 1 && sent[0].contains("$4\r\nEVAL\r\n") && sent[0].contains("return 1"), "\(sent)")
            } else {
                #expect(sent.count == 1 && sent[0].contains("EVALSHA") && !sent[0].contains("return 1"), "\(sent)")
            }
            try await channel.writeInbound(ByteBuffer(string: reply))
        }
        #expect(replies.all.compactMap { try? $0.get().integer } == [1, 2])
    }

    @Test func noscriptForAScriptTheServerHadCachedFailsTheCallAndDropsTheConnection() async throws {
        let (channel, handler) = try await makeChannel()
        let replies = Replies()
        let script = RedisScript("return 1")
        let call = try RedisScriptCall(script, keys: [Array("k".utf8)], arguments: [])
        try await channel.testingEventLoop.executeInContext {
            handler.markCached(script.id)
            handler.send(call.evalsha.encoded, deadline: .now() + .seconds(60), sink: replies.sink(), script: call)
        }
        try await send(["DEL", "k"], on: channel, handler, to: replies)
        await channel.testingEventLoop.run()
        #expect(try await written(channel).first?.contains("EVALSHA") == true)
        try await channel.writeInbound(ByteBuffer(string: "-NOSCRIPT No matching script.\r\n"))
        await channel.testingEventLoop.run()
        // Nothing is re-sent behind the DEL: both calls fail, and the connection is closed.
        #expect(try await written(channel).isEmpty)
        #expect(replies.all.count == 2)
        #expect(replies.all.allSatisfy { if case .failure(let error) = $0 { error.code == .connectionClosed } else { false } }, "\(replies.all)")
        #expect(!channel.isActive)
    }

    @Test func pastTheInFlightLimitCommandsFailAtOnce() async throws {
        let (channel, handler) = try await makeChannel(maximumInFlight: 2)
        let replies = Replies()
        for key in ["a", "b", "c"] { try await send(["GET", key], on: channel, handler, to: replies) }
        #expect(replies.all.count == 1)
        if case .failure(let error) = replies.all.first {
            #expect(error.code == .unavailable)
        } else {
            Issue.record("expected a refusal, got \(replies.all)")
        }
        try await channel.writeInbound(ByteBuffer(string: "$1\r\nA\r\n$1\r\nB\r\n"))
        #expect(replies.strings.suffix(2) == ["A", "B"])
    }

    @Test func aReplyWithNoCommandInFlightIsAProtocolErrorThatClosesTheConnection() async throws {
        let (channel, _) = try await makeChannel()
        try await channel.writeInbound(ByteBuffer(string: "+OK\r\n"))
        await channel.testingEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test func aClosedConnectionFailsEveryCommandInFlight() async throws {
        let (channel, handler) = try await makeChannel()
        let replies = Replies()
        for key in ["a", "b"] { try await send(["GET", key], on: channel, handler, to: replies) }
        try await channel.close()
        #expect(replies.all.count == 2)
        #expect(replies.all.allSatisfy { if case .failure(let error) = $0 { error.code == .connectionClosed } else { false } })
    }
}

/// The hiredis reader's two ways of taking a reply: decoded, or skipped without building
/// reply objects. A reply is finished the way it was begun.
@Suite struct HiredisReaderTests {
    /// A reader holding the first half of a two-element array, begun by `skipping` or decoding.
    func halfAnArray(skipping: Bool) throws -> HiredisReader {
        let reader = HiredisReader()
        try reader.feed(ByteBuffer(string: "*2\r\n$1\r\na\r\n"))
        if skipping {
            #expect(try reader.skip() == false, "half an array is not a reply")
        } else {
            #expect(try reader.next() == nil, "half an array is not a reply")
        }
        #expect(reader.isPartway)
        return reader
    }

    @Test func aReaderFreedHalfwayThroughASkippedArrayDoesNotFreeWhatItNeverBuilt() throws {
        // Without object functions hiredis records the array's type, cast to a pointer, as
        // the reply under construction: freeing the reader must not hand that to free().
        _ = try halfAnArray(skipping: true)
    }

    @Test func aProtocolErrorHalfwayThroughASkippedArrayLeavesNothingToFree() throws {
        let reader = try halfAnArray(skipping: true)
        try reader.feed(ByteBuffer(string: "?\r\n"))
        #expect(throws: RedisWireError.self) { try reader.skip() }
        #expect(!reader.isPartway)
    }

    @Test func aReplyBegunDecodedIsFinishedDecodedWhenTheCallerThenSkips() throws {
        let reader = try halfAnArray(skipping: false)
        try reader.feed(ByteBuffer(string: ":7\r\n$4\r\nPONG\r\n"))
        #expect(try reader.skip() == true, "the array is consumed")
        #expect(try reader.next().map { try $0.get() } == .bulkString(Array("PONG".utf8)), "the reply after it is in step")
        #expect(!reader.isPartway)
    }

    @Test func aReplyBegunSkippedCannotBeFinishedDecoded() throws {
        let reader = try halfAnArray(skipping: true)
        try reader.feed(ByteBuffer(string: ":7\r\n"))
        #expect(throws: RedisWireError.self, "its objects were never built") { try reader.next() }
    }
}
