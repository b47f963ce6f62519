import Logging
import NIOCore
import NIOPosix
import RedisWire
import Testing

@testable import Redlock

/// The hub's timers, with no master at all (its subscriber dials a closed port): timing edge
/// cases of the queue, not the hand-over itself (WakeUpTests does that over real masters).
@Suite("WakeUpHub's timers")
struct WakeUpHubTests {
    func makeHub(longestSleep: Duration) -> WakeUpHub {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        return WakeUpHub(
            masterCount: 1,
            eventLoop: eventLoop,
            subscribeTimeout: .milliseconds(50),
            longestSleep: longestSleep,
            logger: Logger(label: "test")
        ) { _, hub in
            RedisConnection(
                subscriberTo: .hostname("127.0.0.1", port: 1),
                configuration: .init(),
                eventLoop: eventLoop,
                logger: Logger(label: "test"),
                onMessage: { channel, payload in hub.received(channel: channel, payload: payload) },
                onConnected: {}
            )
        }
    }

    @Test func aWaiterPromotedToHeadJustBeforeItSleepsKeepsItsShortFallback() async throws {
        let hub = makeHub(longestSleep: .seconds(5))
        let channel = [Array("redlock:lock:race".utf8)]
        let deadline = NIODeadline.now() + .seconds(10)
        let first = await hub.join(channels: channel, watcher: false, deadline: deadline)
        let second = await hub.join(channels: channel, watcher: false, deadline: deadline)
        #expect(await hub.isHead(first))
        #expect(await !hub.isHead(second))
        // The head takes the lock for 300 ms and leaves; the second, promoted before it parks,
        // asks to sleep as a non-head does: until its whole deadline.
        hub.leave(first, holding: .milliseconds(300))
        let started = ContinuousClock.now
        let wake = await hub.sleep(second, fallback: deadline)
        #expect(wake == .timer)
        #expect(ContinuousClock.now - started < .seconds(3), "the promoted head slept past the holder's lock toward its deadline")
        hub.leave(second, holding: nil)
    }
}
