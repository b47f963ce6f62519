import LocalRedis
import Logging
import RealServerGate
import RedisWire
import Redlock
import ServiceLifecycle
import Synchronization
import Testing

/// One leader at a time, terms that increase, a resignation that hands the role over at once,
/// a dead leader replaced at its TTL, and a lost leadership that cancels the leader's work.
@Suite("Leader election", .serialized, .realRedisServers)
struct LeaderElectionTests {
    static var configuration: RedlockConfiguration { wakeUpsOnlyConfiguration }

    /// Reads `events` until `count` have arrived (at most `timeout`).
    static func collect(_ events: AsyncStream<LeaderElection.Event>, count: Int, timeout: Duration = .seconds(10)) async -> [LeaderElection.Event] {
        await withTaskGroup(of: [LeaderElection.Event].self) { group in
            group.addTask {
                var seen: [LeaderElection.Event] = []
                for await event in events {
                    seen.append(event)
                    if seen.count == count { break }
                }
                return seen
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return []
            }
            let first = await group.next() ?? []
            group.cancelAll()
            return first
        }
    }

    @Test func oneLeaderAtATimeAndAResignationHandsTheRoleOverWithAHigherTerm() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, _ in
            let first = try LeaderElection("scheduler", on: redlock, ttl: .seconds(30))
            let second = try LeaderElection("scheduler", on: redlock, ttl: .seconds(30))
            let firstEvents = first.events
            let secondEvents = second.events
            let firstRun = Task { try await first.run() }
            let elected = await Self.collect(firstEvents, count: 1)
            guard case .elected(let firstTerm)? = elected.first else {
                Issue.record("the first campaigner was not elected: \(elected)")
                firstRun.cancel()
                return
            }
            let secondRun = Task { try await second.run() }
            try await Task.sleep(for: .milliseconds(500))
            #expect(second.term == nil, "one leader at a time")
            #expect(first.term == firstTerm)

            let clock = ContinuousClock()
            let resigned = clock.now
            firstRun.cancel()  // as a graceful shutdown does: resign
            let handedOver = await Self.collect(secondEvents, count: 1)
            #expect(clock.now - resigned < .seconds(5), "the resignation hands over long before the 30 s TTL")
            guard case .elected(let secondTerm)? = handedOver.first else {
                Issue.record("the second campaigner was not elected: \(handedOver)")
                secondRun.cancel()
                return
            }
            #expect(secondTerm > firstTerm, "terms strictly increase across leaders")
            #expect(await Self.collect(firstEvents, count: 1) == [.lost])
            secondRun.cancel()
            _ = try? await firstRun.value
            _ = try? await secondRun.value
        }
    }

    @Test func aDeadLeaderIsReplacedAtItsTTLWithAMinorityDown() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, group in
            // A leader that died: it holds the role and never extends or releases it.
            let dead = try await redlock.acquire("singleton", ttl: .milliseconds(800), fencing: true)
            await group[0].kill9()
            await group[1].kill9()
            let election = try LeaderElection("singleton", on: redlock, ttl: .seconds(5))
            let clock = ContinuousClock()
            let started = clock.now
            let term = try await election.lead(wait: .seconds(10)) { leadership in leadership.fencingToken }
            #expect(clock.now - started < .seconds(3), "elected at the dead leader's expiry")
            #expect(term! > dead.fencingToken!)
        }
    }

    @Test func aLostLeadershipCancelsTheLeadersWork() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, group in
            let election = try LeaderElection("lossy", on: redlock, ttl: .milliseconds(900))
            let events = election.events
            let flag = Flag()
            await #expect(throws: RedlockError.self) {
                try await election.lead { _ in
                    // Another process deletes the role on every master: the next extension fails.
                    try await withDirect(group) { masters in
                        for master in masters { _ = try await master.send("DEL", "redlock:lock:lossy") }
                    }
                    do {
                        try await Task.sleep(for: .seconds(30))
                    } catch {
                        flag.set()
                        throw error
                    }
                }
            }
            #expect(flag.isSet, "the work was cancelled when the leadership was lost")
            let seen = await Self.collect(events, count: 2)
            #expect(seen.count == 2)
            #expect(seen.last == .lost)
        }
    }

    @Test func aGracefulShutdownResigns() async throws {
        try await withRedlock(configuration: Self.configuration) { redlock, group in
            let election = try LeaderElection("graceful", on: redlock, ttl: .seconds(30))
            let events = election.events
            let services = ServiceGroup(
                configuration: .init(services: [.init(service: election)], logger: Logger(label: "test"))
            )
            let running = Task { try await services.run() }
            #expect(await Self.collect(events, count: 1).count == 1)
            await services.triggerGracefulShutdown()
            try await running.value
            #expect(await Self.collect(events, count: 1) == [.lost])
            let held = try await withDirect(group) { masters throws -> Int in
                var held = 0
                for master in masters where try await master.send("EXISTS", "redlock:lock:graceful") == .integer(1) { held += 1 }
                return held
            }
            #expect(held == 0, "resigned: the role is free at once")
        }
    }

    /// Set once, read from any task.
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .sequentiallyConsistent) }
        var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
    }

    @Test func badArgumentsAreRefused() async throws {
        let redlock = Redlock(masters: [.hostname("127.0.0.1", port: 1)])
        #expect(throws: RedlockError.self) { try LeaderElection("", on: redlock) }
        #expect(throws: RedlockError.self) { try LeaderElection("role", on: redlock, ttl: .zero) }
        await redlock.shutdown()
    }
}
