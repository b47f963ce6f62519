import LocalRedis
import NIOCore
import RealServerGate
import RedisWire
import Redlock
import Synchronization
import Testing

/// Waiters are woken by releases (and by their fallback timers), never wait past their
/// deadline, queue in arrival order, and a waiter that keeps losing claims priority.
@Suite("Wake-ups and lock-delay", .serialized, .realRedisServers)
struct WakeUpTests {
    /// Wake-ups on, with a fallback far longer than any test waits: an acquisition that comes
    /// quickly came from an announcement.
    static func configuration(priorityAfter lost: Int = 3, enabled: Bool = true) -> RedlockConfiguration {
        var configuration = RedlockConfiguration(instanceTimeout: .milliseconds(250), retry: .never)
        configuration.wakeUps = .init(isEnabled: enabled, longestSleep: .seconds(60), priorityAfterLostWakeUps: lost)
        return configuration
    }

    @Test func aReleaseWakesAWaiterLongBeforeTheHolderWouldExpire() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, _ in
            let holder = try await redlock.acquire("handover", ttl: .seconds(60))
            let clock = ContinuousClock()
            async let waited = redlock.acquire("handover", ttl: .seconds(10), wait: .seconds(30))
            try await Task.sleep(for: .milliseconds(300))
            let released = clock.now
            try await redlock.release(holder)
            let lock = try await waited
            let handOver = clock.now - released
            #expect(handOver < .seconds(5), "woken by the release, not by the holder's 60 s expiry or the 60 s fallback: \(handOver)")
            #expect(lock.fencingToken! > holder.fencingToken!)
            try await redlock.release(lock)
        }
    }

    @Test func withWakeUpsOffTheWaiterPollsAtTheRetryDelay() async throws {
        var configuration = Self.configuration(enabled: false)
        configuration.retry = .init(count: 0, delay: .seconds(20), jitter: .zero)
        try await withRedlock(configuration: configuration) { redlock, _ in
            let holder = try await redlock.acquire("polled", ttl: .seconds(60))
            let clock = ContinuousClock()
            let started = clock.now
            async let waited = redlock.acquire("polled", ttl: .seconds(10), wait: .seconds(2))
            try await Task.sleep(for: .milliseconds(300))
            try await redlock.release(holder)
            // Polling every 20 s, the waiter's only other attempt is at its 2 s deadline.
            let lock = try await waited
            #expect(clock.now - started >= .milliseconds(1_900), "the control: without wake-ups nothing announces the release")
            try await redlock.release(lock)
        }
    }

    @Test func aPolicyThatRetriesForeverWithoutADeadlineIsWokenToo() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, _ in
            let holder = try await redlock.acquire("forever", ttl: .seconds(60))
            let retry = RedlockConfiguration.Retry(count: .max, delay: .milliseconds(10), jitter: .milliseconds(5))
            async let waited = redlock.acquire("forever", ttl: .seconds(10), retry: retry)
            try await Task.sleep(for: .milliseconds(300))
            try await redlock.release(holder)
            try await redlock.release(try await waited)
        }
    }

    @Test func aWaiterNeverWaitsPastItsDeadline() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, _ in
            _ = try await redlock.acquire("kept", ttl: .seconds(60))
            let clock = ContinuousClock()
            let started = clock.now
            let error = await #expect(throws: RedlockError.self) {
                try await redlock.acquire("kept", ttl: .seconds(10), wait: .milliseconds(600))
            }
            let waited = clock.now - started
            #expect(error?.code == .lockHeld)
            #expect(waited >= .milliseconds(550) && waited < .seconds(3), "gave up at its deadline: \(waited)")
        }
    }

    @Test func aLockThatExpiresIsCaughtByTheFallbackTimer() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, _ in
            // An expiry announces nothing: the waiter's timer is set at the holder's PTTL.
            _ = try await redlock.acquire("expiring", ttl: .milliseconds(800))
            let clock = ContinuousClock()
            let started = clock.now
            let lock = try await redlock.acquire("expiring", ttl: .seconds(10), wait: .seconds(30))
            let waited = clock.now - started
            #expect(waited >= .milliseconds(600) && waited < .seconds(5), "woke at the holder's expiry, not the 60 s fallback: \(waited)")
            try await redlock.release(lock)
        }
    }

    @Test func waitersOfOneClientAreServedInArrivalOrder() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, _ in
            let holder = try await redlock.acquire("queue", ttl: .seconds(60))
            let order = Recorder<Int>()
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for index in 0..<8 {
                    tasks.addTask {
                        let lock = try await redlock.acquire("queue", ttl: .seconds(10), wait: .seconds(60))
                        order.append(index)
                        try await Task.sleep(for: .milliseconds(20))
                        try await redlock.release(lock)
                    }
                    // Arrival order: each waiter has queued before the next one starts.
                    try await Task.sleep(for: .milliseconds(150))
                }
                try await redlock.release(holder)
                try await tasks.waitForAll()
            }
            #expect(order.all == Array(0..<8))
        }
    }

    @Test func aWaiterThatClaimedPriorityWinsTheNextRelease() async throws {
        try await withRedisServers(count: 5, options: .init()) { group throws in
            // Two clients (two processes' worth of queues): the first claims priority at once.
            let starving = Redlock(masters: group.addresses, configuration: Self.configuration(priorityAfter: 0))
            let rival = Redlock(masters: group.addresses, configuration: Self.configuration(priorityAfter: 1_000))
            let holder = Redlock(masters: group.addresses, configuration: Self.configuration())
            for client in [starving, rival, holder] { await client.connect() }
            for round in 0..<4 {
                let resource = "priority-\(round)"
                let held = try await holder.acquire(resource, ttl: .seconds(60))
                async let claimed = starving.acquire(resource, ttl: .seconds(1), wait: .seconds(30))
                async let other = rival.acquire(resource, ttl: .seconds(1), wait: .seconds(30))
                try await Task.sleep(for: .milliseconds(400))
                try await holder.release(held)
                let winner = try await claimed
                try await Task.sleep(for: .milliseconds(300))
                try await starving.release(winner)
                let loser = try await other
                #expect(loser.fencingToken! > winner.fencingToken!, "round \(round): the claimant went first")
                try await rival.release(loser)
            }
            for client in [starving, rival, holder] { await client.shutdown() }
        }
    }

    @Test func wakeUpsByTheFallbackTimerCountTowardThePriorityClaim() async throws {
        try await withRedisServers(count: 3, options: .init()) { group throws in
            // The lock is never released: the waiter only ever wakes at its fallback (200 ms),
            // and each wake is refused. Two such lost wake-ups earn it the priority claim.
            var settings = Self.configuration(priorityAfter: 2)
            settings.wakeUps.longestSleep = .milliseconds(200)
            let waiter = Redlock(masters: group.addresses, configuration: settings)
            let holder = Redlock(masters: group.addresses, configuration: Self.configuration())
            for client in [waiter, holder] { await client.connect() }
            let held = try await holder.acquire("patience", ttl: .seconds(60))
            async let waited = waiter.acquire("patience", ttl: .seconds(1), wait: .seconds(3))
            var claimed = false
            try await withDirect(group) { masters in
                for _ in 0..<150 where !claimed {
                    try await Task.sleep(for: .milliseconds(20))
                    claimed = try await masters[0].send("EXISTS", "redlock:first:patience") == .integer(1)
                }
            }
            #expect(claimed, "timer wake-ups followed by refusals never counted as lost")
            _ = try? await waited
            try await holder.release(held)
            for client in [waiter, holder] { await client.shutdown() }
        }
    }

    @Test func aLiveWaiterRenewsItsPlaceInTheQueueAndKeepsItPastManyLeases() async throws {
        try await withRedisServers(count: 3, options: .init()) { group throws in
            // Attempts every 500 ms at most: each place lasts 1.75 s unless renewed.
            var settings = Self.configuration(priorityAfter: 1_000)
            settings.wakeUps.longestSleep = .milliseconds(500)
            let first = Redlock(masters: group.addresses, configuration: settings)
            let second = Redlock(masters: group.addresses, configuration: settings)
            let holder = Redlock(masters: group.addresses, configuration: Self.configuration())
            for client in [first, second, holder] { await client.connect() }
            #expect(first.queueLease == .milliseconds(1_750))
            let held = try await holder.acquire("renewed", ttl: .seconds(60))
            try await withDirect(group) { masters in
                /// The first master's queue: (entry, arrival) in order, and its clock (ms).
                func queue() async throws -> (entries: [(entry: String, arrival: String)], now: Int) {
                    let flat = try await masters[0].send("ZRANGE", "redlock:queue:renewed", "0", "-1", "WITHSCORES").array?.compactMap(\.string) ?? []
                    let time = try await masters[0].send("TIME").array?.compactMap(\.string).compactMap(Int.init) ?? [0, 0]
                    return (stride(from: 0, to: flat.count - 1, by: 2).map { (flat[$0], flat[$0 + 1]) }, time[0] * 1_000 + time[1] / 1_000)
                }
                func lapse(_ entry: String) -> Int { Int(entry.split(separator: ":").last ?? "") ?? 0 }
                func waitForQueue(count: Int) async throws -> [(entry: String, arrival: String)] {
                    for _ in 0..<250 {
                        let entries = try await queue().entries
                        if entries.count == count { return entries }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    return try await queue().entries
                }
                async let firstLock = first.acquire("renewed", ttl: .seconds(5), wait: .seconds(30))
                let queuedFirst = try #require(try await waitForQueue(count: 1).first)
                async let secondLock = second.acquire("renewed", ttl: .seconds(5), wait: .seconds(30))
                #expect(try await waitForQueue(count: 2).count == 2)
                try await Task.sleep(for: .seconds(4))
                let later = try await queue()
                #expect(later.entries.count == 2, "one entry per waiter, however often renewed: \(later.entries)")
                let renewed = try #require(later.entries.first)
                #expect(renewed.entry.split(separator: ":").first == queuedFirst.entry.split(separator: ":").first)
                #expect(renewed.arrival == queuedFirst.arrival, "renewed at its arrival: its place")
                #expect(lapse(renewed.entry) >= lapse(queuedFirst.entry) + 3_000, "its attempts renewed it")
                #expect(later.entries.allSatisfy { lapse($0.entry) > later.now }, "neither place lapsed")
                try await holder.release(held)
                let winner = try await firstLock
                try await first.release(winner)
                let next = try await secondLock
                #expect(next.fencingToken! > winner.fencingToken!, "the first to arrive went first")
                try await second.release(next)
            }
            for client in [first, second, holder] { await client.shutdown() }
        }
    }

    @Test func aReleaseNobodyWaitsForPublishesNothing() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, group in
            try await withDirect(group) { masters in
                for master in masters { _ = try await master.send("CONFIG", "RESETSTAT") }
                let lock = try await redlock.acquire("alone", ttl: .seconds(10))
                try await redlock.release(lock)
                #expect(try await Self.publishes(on: masters) == 0)

                let held = try await redlock.acquire("awaited", ttl: .seconds(60))
                async let waited = redlock.acquire("awaited", ttl: .seconds(10), wait: .seconds(30))
                try await Task.sleep(for: .milliseconds(300))
                try await redlock.release(held)
                try await redlock.release(try await waited)
                #expect(try await Self.publishes(on: masters) >= 3, "the release with a waiter was announced on a quorum")
            }
        }
    }

    @Test func wakeUpsSurviveDroppedSubscriberConnectionsAndARestartedMaster() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, group in
            try await withDirect(group) { masters in
                let holder = try await redlock.acquire("restarts", ttl: .seconds(60))
                async let waited = redlock.acquire("restarts", ttl: .seconds(10), wait: .seconds(40))
                try await Task.sleep(for: .milliseconds(300))
                // Every subscriber connection is cut and one master restarts: the hub
                // re-subscribes, and the release is still announced.
                for master in masters { _ = try await master.send("CLIENT", "KILL", "TYPE", "pubsub") }
                try await group.servers[0].restart()
                try await Task.sleep(for: .milliseconds(500))
                let clock = ContinuousClock()
                let released = clock.now
                _ = try? await redlock.release(holder)
                let lock = try await waited
                #expect(clock.now - released < .seconds(5), "woken after the reconnects, not by the 60 s fallback")
                try await redlock.release(lock)
            }
        }
    }

    @Test func aCancelledWaiterStopsAtOnceAndLeavesTheQueue() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, _ in
            let holder = try await redlock.acquire("cancel", ttl: .seconds(60))
            let waiter = Task { try await redlock.acquire("cancel", ttl: .seconds(10), wait: .seconds(30)) }
            try await Task.sleep(for: .milliseconds(300))
            let clock = ContinuousClock()
            let cancelled = clock.now
            waiter.cancel()
            let error = await #expect(throws: RedlockError.self) { try await waiter.value }
            #expect(error?.code == .cancelled)
            #expect(clock.now - cancelled < .seconds(2))
            // The next waiter is not stuck behind the cancelled one.
            async let next = redlock.acquire("cancel", ttl: .seconds(10), wait: .seconds(30))
            try await Task.sleep(for: .milliseconds(200))
            try await redlock.release(holder)
            let released = clock.now
            try await redlock.release(try await next)
            #expect(clock.now - released < .seconds(5))
        }
    }

    // MARK: Lock-delay

    @Test func aLockDelayKeepsADeadHoldersLockUnusableAfterItsValidity() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, _ in
            let clock = ContinuousClock()
            let dead = try await redlock.acquire("delayed", ttl: .milliseconds(300), lockDelay: .seconds(2))
            #expect(dead.validity <= .milliseconds(300), "the validity comes from the TTL alone")
            try await Task.sleep(until: dead.validUntil + .milliseconds(200))
            let early = await #expect(throws: RedlockError.self) {
                try await redlock.acquire("delayed", ttl: .seconds(1))
            }
            #expect(early?.code == .lockHeld, "nobody holds it during the delay")
            let next = try await redlock.acquire("delayed", ttl: .seconds(1), wait: .seconds(10))
            let freed = clock.now - (dead.validUntil - dead.validity)
            #expect(freed >= .milliseconds(2_200), "free only after TTL + delay: \(freed)")
            try await redlock.release(next)
        }
    }

    @Test func aReleasedLockWithADelayIsFreeAtOnceAndExtensionKeepsTheDelay() async throws {
        try await withRedlock(configuration: Self.configuration()) { redlock, group in
            try await withDirect(group) { masters in
                let lock = try await redlock.acquire("delay-release", ttl: .seconds(1), lockDelay: .seconds(30))
                let extended = try await redlock.extend(lock, ttl: .seconds(2))
                let pttl = try await masters[0].send("PTTL", "redlock:lock:delay-release").integer ?? 0
                #expect(pttl > 30_000, "the extension kept the 30 s delay: \(pttl) ms")
                #expect(extended.lockDelay == .seconds(30))
                try await redlock.release(extended)
                let next = try await redlock.acquire("delay-release", ttl: .seconds(1))
                try await redlock.release(next)
            }
        }
    }

    static func publishes(on masters: [RedisConnection]) async throws -> Int {
        var total = 0
        for master in masters {
            let stats = try await master.send("INFO", "commandstats").string ?? ""
            for line in stats.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_publish:") {
                total += Int(line.split(separator: "=")[1].split(separator: ",")[0]) ?? 0
            }
        }
        return total
    }
}
