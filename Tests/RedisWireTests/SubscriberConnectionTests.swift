import LocalRedis
import Logging
import NIOCore
import NIOPosix
import RealServerGate
import RedisWire
import Synchronization
import Testing

/// A subscriber connection: published messages go to its handler, and a server that accepts
/// and drops the connection counts as down, not as a storm of connects.
@Suite("Subscriber connections", .serialized, .realRedisServers)
struct SubscriberConnectionTests {
    final class Log: Sendable {
        let connects = Atomic<Int>(0)
        let messages = Mutex<[String]>([])
    }

    static func subscriber(to address: RedisServerAddress, _ log: Log) -> RedisConnection {
        RedisConnection(
            subscriberTo: address,
            configuration: .init(connectTimeout: .milliseconds(500), commandTimeout: .seconds(2)),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "subscriber-test"),
            onMessage: { channel, payload in
                log.messages.withLock { $0.append("\(String(decoding: channel, as: UTF8.self))=\(String(decoding: payload, as: UTF8.self))") }
            },
            onConnected: { log.connects.add(1, ordering: .relaxed) }
        )
    }

    @Test func publishedMessagesReachTheHandlerOutsideTheReplyOrder() async throws {
        try await withRedisServers(count: 1) { group throws in
            let log = Log()
            let subscriber = Self.subscriber(to: group[0].address, log)
            let reply = try await subscriber.send("SUBSCRIBE", "news")
            #expect(reply.array?.first?.string == "subscribe")
            let publisher = RedisConnection(address: group[0].address)
            #expect(try await publisher.send("PUBLISH", "news", "first") == .integer(1))
            #expect(try await publisher.send("PUBLISH", "news", "second") == .integer(1))
            // A command after the messages still gets its own reply.
            #expect(try await subscriber.send("PING").array?.first?.string == "pong")
            #expect(log.messages.withLock { $0 } == ["news=first", "news=second"])
            #expect(log.connects.load(ordering: .relaxed) == 1)
            await publisher.close()
            await subscriber.close()
        }
    }

    @Test func anOrdinaryConnectionBacksOffFromAServerThatAcceptsAndDropsIt() async throws {
        let accepted = Atomic<Int>(0)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.add(1, ordering: .relaxed)
                return channel.close()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let connection = RedisConnection(address: .hostname("127.0.0.1", port: port), configuration: .init(preloadedScripts: []))
        _ = try? await connection.send("PING")
        try await Task.sleep(for: .milliseconds(800))
        // Backoff from 25 ms doubling: a handful of dials, not one per round trip.
        #expect(accepted.load(ordering: .relaxed) < 20, "\(accepted.load(ordering: .relaxed)) dials in 800 ms")
        await connection.close()
        try await server.close()
    }

    @Test func aServerThatAcceptsAndDropsEveryConnectionIsNotCountedAsConnected() async throws {
        // Like a proxy in front of a dead master: TCP connects, then the connection closes.
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.close() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let log = Log()
        let subscriber = Self.subscriber(to: .hostname("127.0.0.1", port: port), log)
        _ = try? await subscriber.send("SUBSCRIBE", "news")
        try await Task.sleep(for: .milliseconds(800))
        #expect(log.connects.load(ordering: .relaxed) == 0, "each dial failed its PING instead of counting as a connect")
        await subscriber.close()
        try await server.close()
    }
}
