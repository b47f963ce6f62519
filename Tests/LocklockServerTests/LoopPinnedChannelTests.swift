import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import LocklockServer

@Suite("Requests served on their connection's event loop")
struct LoopPinnedChannelTests {
    /// A child channel whose handling reports whether it ran on the connection's loop.
    struct Probe: ServerChildChannel {
        struct Value: ServerChildChannelValue { let channel: any Channel }
        let ranOnLoop: @Sendable (Bool) -> Void

        func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
            channel.eventLoop.makeSucceededFuture(Value(channel: channel))
        }

        func handle(value: Value, logger: Logger) async {
            ranOnLoop(value.channel.eventLoop.inEventLoop)
            // Still there after a suspension: the preference holds for the whole connection.
            try? await Task.sleep(for: .milliseconds(1))
            ranOnLoop(value.channel.eventLoop.inEventLoop)
        }
    }

    @Test(arguments: [true, false])
    func aConnectionIsHandledOnItsOwnLoopOnlyWhenPinned(pinned: Bool) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let channel = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let seen = ResultBox()
        let probe = Probe { seen.append($0) }
        let value = try await probe.setup(channel: channel, logger: Logger(label: "test")).get()
        if pinned {
            await LoopPinnedChannel(base: probe, executors: LoopExecutors(group)).handle(value: value, logger: Logger(label: "test"))
        } else {
            await probe.handle(value: value, logger: Logger(label: "test"))
        }
        #expect(seen.values == [pinned, pinned])
        try await channel.close()
        try await group.shutdownGracefully()
    }

    @Test func aLoopOutsideTheGroupHasNoExecutor() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let other = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executors = LoopExecutors(group)
        #expect(executors.executor(for: group.next()) != nil)
        #expect(executors.executor(for: other.next()) == nil)
        try await group.shutdownGracefully()
        try await other.shutdownGracefully()
    }
}

private final class ResultBox: Sendable {
    private let storage = Mutex<[Bool]>([])
    func append(_ value: Bool) { storage.withLock { $0.append(value) } }
    var values: [Bool] { storage.withLock { $0 } }
}
