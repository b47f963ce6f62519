import ArgumentParser
import NIOCore
import NIOPosix
import RedisWire

/// The fan-out floor's network work done over SwiftNIO: what a lock cycle costs when NIO owns
/// the sockets, before any lock library code runs.
///
/// Like the plain variant of `scripts/bench/safe-floor.py`, each cycle sends `SET key v NX PX 10000` to every
/// master, waits for every reply, then `DEL key` to every master and waits for every reply.
/// Nothing is parsed (a reply is counted by its line end), there is no hiredis, no Swift task,
/// no promise: one handler per channel and one driver, all on one event loop.
struct NIOFloor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nio-floor",
        abstract: "The fan-out floor's SET/DEL cycle over SwiftNIO channels with nothing else: the NIO share of a lock cycle."
    )

    @Option(help: "comma-separated host:port of the masters") var masters: String
    @Option(help: "number of SET+DEL cycles") var cycles: Int = 20_000

    func run() async throws {
        let addresses = try parseMasters(masters).map(\.address)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let driver = FloorDriver(cycles: max(cycles, 1), eventLoop: loop)
        var channels: [any Channel] = []
        // The same transport (TCP_NODELAY, keep-alive) as RedisConnection's, with only a counter on top.
        for address in addresses {
            let channel = try await PlainRedisTransport().connect(to: address, on: loop, timeout: .seconds(5)) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReplyLineCounter(driver: driver))
                }
            }.get()
            channels.append(channel)
        }
        let connected = channels
        let samples = try await loop.flatSubmit { driver.start(connected) }.get()
        for channel in channels { try? await channel.close() }
        BenchResult(latenciesNanoseconds: samples, elapsed: .nanoseconds(samples.reduce(0, +)))
            .print(mode: "nio-floor", rateKey: "cycles_per_s", extra: ["masters": addresses.count])
    }
}

/// Runs the cycles: sends a phase's command to every master, and the next phase once every
/// master has answered. Confined to its event loop.
private final class FloorDriver: @unchecked Sendable {
    // @unchecked: created off the loop, then touched only on it (start and every reply).
    private let cycles: Int
    private let eventLoop: any EventLoop
    private var channels: [any Channel] = []
    private var cycle = 0
    private var deleting = false
    private var outstanding = 0
    private var started: UInt64 = 0
    private var samples: [Int64] = []
    private var done: EventLoopPromise<[Int64]>?

    init(cycles: Int, eventLoop: any EventLoop) {
        self.cycles = cycles
        self.eventLoop = eventLoop
        samples.reserveCapacity(cycles)
    }

    func start(_ channels: [any Channel]) -> EventLoopFuture<[Int64]> {
        self.channels = channels
        let promise = eventLoop.makePromise(of: [Int64].self)
        done = promise
        beginCycle()
        return promise.futureResult
    }

    func replies(_ count: Int) {
        outstanding -= count
        guard outstanding <= 0 else { return }
        if !deleting {
            deleting = true
            send(command(["DEL", key]))
            return
        }
        samples.append(Int64(NIODeadline.now().uptimeNanoseconds - started))
        cycle += 1
        if cycle == cycles {
            done?.succeed(samples)
            done = nil
        } else {
            beginCycle()
        }
    }

    private var key: String { "nio-floor:\(started):\(cycle)" }

    private func beginCycle() {
        deleting = false
        started = NIODeadline.now().uptimeNanoseconds
        send(command(["SET", key, "v", "NX", "PX", "10000"]))
    }

    private func send(_ buffer: ByteBuffer) {
        outstanding = channels.count
        for channel in channels { channel.writeAndFlush(buffer, promise: nil) }
    }

    private func command(_ arguments: [String]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments { buffer.writeString("$\(argument.utf8.count)\r\n\(argument)\r\n") }
        return buffer
    }
}

/// Counts the replies in what a master sends: every reply of SET NX PX and DEL is one line.
private final class ReplyLineCounter: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: NIO calls it only on its channel's event loop.
    typealias InboundIn = ByteBuffer
    private let driver: FloorDriver

    init(driver: FloorDriver) { self.driver = driver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let lines = buffer.readableBytesView.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        if lines > 0 { driver.replies(lines) }
    }
}
