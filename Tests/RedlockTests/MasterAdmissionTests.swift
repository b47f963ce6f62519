import LocalRedis
import RealServerGate
import RedisWire
import Redlock
import Testing

/// Waits (bounded, `limit`) until `master`'s status satisfies `condition`; returns the last seen.
@discardableResult
private func waitForStatus(
    _ redlock: Redlock,
    master: Int,
    within limit: Duration = .seconds(5),
    _ condition: (MasterStatus.State) -> Bool
) async throws -> MasterStatus.State {
    let deadline = ContinuousClock.now + limit
    var state = await redlock.masterStatus()[master].state
    while !condition(state), ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(20))
        state = await redlock.masterStatus()[master].state
    }
    return state
}

private func isHeldOut(_ state: MasterStatus.State) -> Bool {
    if case .heldOut = state { return true }
    return false
}

/// Held out, and decided until when (not still reading the others' evidence).
private func isHeldOutWithAnEnd(_ state: MasterStatus.State) -> Bool {
    if case .heldOut(_?, _) = state { return true }
    return false
}

/// The masters' hold-out after a restart that may have lost data: fail-closed identification,
/// a decision that every client process honours, measured on the client's clock and sized by
/// the grants actually live.
@Suite("Hold-out of masters that may have lost data", .serialized, .realRedisServers)
struct MasterAdmissionTests {
    let configuration = RedlockConfiguration(instanceTimeout: .milliseconds(250), retry: .never, maximumTTL: .seconds(60))

    @Test func aRestartedMasterThatRefusesINFODoesNotVoteAndSaysWhy() async throws {
        // The client's ACL user may run everything; after the restart, everything but INFO.
        let user = ["--user", "locker", "on", ">s3cret", "~*", "&*", "+@all"]
        var settings = configuration
        settings.connection.authentication = .init(username: "locker", password: "s3cret")
        try await withRedisServers(count: 3, options: .init(extraArguments: user)) { group throws in
            let redlock = Redlock(masters: group.addresses, configuration: settings)
            defer { Task { await redlock.shutdown() } }
            await redlock.connect()
            let holder = try await redlock.acquire("held", ttl: .seconds(60))
            for index in 0..<2 { try await group[index].restart(extraArguments: user + ["-info"]) }
            let rival = Redlock(masters: group.addresses, configuration: settings)
            defer { Task { await rival.shutdown() } }
            for client in [redlock, rival] {
                await client.connect()
                let error = await #expect(throws: RedlockError.self) { try await client.acquire("held", ttl: .seconds(5)) }
                #expect([.quorumUnreachable, .lockHeld].contains(error?.code), "a master that refused INFO voted: \(String(describing: error))")
            }
            #expect(holder.remainingValidity > .zero)
            let state = try await waitForStatus(rival, master: 0) { if case .unreachable = $0 { true } else { false } }
            guard case .unreachable(let reason) = state else {
                Issue.record("master 0 is \(state), not unreachable")
                return
            }
            #expect(reason.contains("INFO refused"), "\(reason)")
        }
    }

    @Test func aClientThatFirstConnectsAfterTheRestartHonoursTheHoldOutAnotherDecided() async throws {
        try await withRedlock(masters: 3, configuration: configuration) { redlock, group in
            let holder = try await redlock.acquire("held", ttl: .seconds(60))
            for index in 0..<2 { try await group[index].restart() }
            // Refused: as unreachable, or as held when the refusal came before the restarted
            // masters' failures (a split the tally settles early).
            let error = await #expect(throws: RedlockError.self) { try await redlock.acquire("held", ttl: .seconds(5)) }
            #expect([.quorumUnreachable, .lockHeld].contains(error?.code))
            #expect(isHeldOut(try await waitForStatus(redlock, master: 0, isHeldOut)))
            // A new process (a redeploy of the server, another replica, `locklock run`).
            let newcomer = Redlock(masters: group.addresses, configuration: configuration)
            defer { Task { await newcomer.shutdown() } }
            await newcomer.connect()
            let refused = await #expect(throws: RedlockError.self) { try await newcomer.acquire("held", ttl: .seconds(5)) }
            #expect([.quorumUnreachable, .lockHeld].contains(refused?.code), "the newcomer trusted a master another client holds out")
            let statuses = await newcomer.masterStatus()
            #expect(statuses.prefix(2).allSatisfy { isHeldOut($0.state) }, "\(statuses)")
            #expect(statuses[2].state == .voting)
            if refused?.code == .quorumUnreachable {
                #expect(refused?.message.contains("held out") == true, "\(refused?.message ?? "")")
            }
            #expect(holder.remainingValidity > .zero)
        }
    }

    @Test func aMinorityRestartWithOnlyShortLocksLiveIsHeldOutForTheirLifetimeNotTheMaximum() async throws {
        try await withRedlock(masters: 3, configuration: configuration) { redlock, group in
            _ = try await redlock.acquire("short", ttl: .seconds(2))
            try await group[0].restart()
            let restarted = ContinuousClock.now
            let state = try await waitForStatus(redlock, master: 0, isHeldOutWithAnEnd)
            guard case .heldOut(let until?, _) = state else {
                Issue.record("master 0 is \(state), not held out with an end")
                return
            }
            // The horizon the two others recorded: the 2 s lock, with headroom, drift and the
            // instance timeout; not the 60 s maximum.
            #expect(until - restarted < .seconds(5), "held out for \(until - restarted)")
            // Meanwhile the two others keep granting.
            let other = try await redlock.acquire("other", ttl: .seconds(2))
            try await redlock.release(other)
            #expect(try await waitForStatus(redlock, master: 0, within: .seconds(8)) { $0 == .voting } == .voting)
            #expect(ContinuousClock.now - restarted >= .seconds(2), "rejoined before the live lock expired")
        }
    }

    @Test func aMajorityRestartWithoutEvidenceIsHeldOutForTheMaximum() async throws {
        let short = RedlockConfiguration(instanceTimeout: .milliseconds(250), retry: .never, maximumTTL: .seconds(3))
        try await withRedlock(masters: 3, configuration: short) { redlock, group in
            _ = try await redlock.acquire("short", ttl: .milliseconds(500))
            for index in 0..<2 { try await group[index].restart() }
            let restarted = ContinuousClock.now
            let state = try await waitForStatus(redlock, master: 0, isHeldOutWithAnEnd)
            guard case .heldOut(let until?, let reason) = state else {
                Issue.record("master 0 is \(state), not held out with an end")
                return
            }
            // One master that kept its data cannot meet every quorum: the bound is the maximum.
            #expect(until - restarted >= .seconds(3), "held out for only \(until - restarted)")
            #expect(reason.contains("maximum TTL"), "\(reason)")
        }
    }

    @Test func aMasterThatFsyncsEveryWriteKeepsVotingAcrossARestart() async throws {
        try await withRedisServers(count: 3, options: .init(persistence: .appendOnlyAlways)) { group throws in
            let redlock = Redlock(masters: group.addresses, configuration: configuration)
            defer { Task { await redlock.shutdown() } }
            await redlock.connect()
            let lock = try await redlock.acquire("durable", ttl: .seconds(60))
            for index in 0..<2 { try await group[index].restart() }
            await redlock.connect()
            let statuses = await redlock.masterStatus()
            #expect(statuses.allSatisfy { $0.state == .voting }, "\(statuses)")
            let error = await #expect(throws: RedlockError.self) { try await redlock.acquire("durable", ttl: .seconds(5)) }
            #expect(error?.code == .lockHeld, "the restarted masters remembered the lock")
            #expect(try await redlock.release(lock) == .released)
        }
    }

    @Test func aNewDeploymentVotesAtOnce() async throws {
        try await withRedlock(masters: 3, configuration: configuration) { redlock, _ in
            #expect(await redlock.masterStatus().allSatisfy { $0.state == .voting })
            let lock = try await redlock.acquire("first", ttl: .seconds(1))
            try await redlock.release(lock)
        }
    }

    @Test func clientsStartingTogetherOnNewMastersAllLetThemVote() async throws {
        try await withRedisServers(count: 3) { group throws in
            // Processes starting at once (replicas of a deploy, `locklock run`s): each finds
            // some masters marked by another and some not, while the marks are being written.
            let clients = (0..<8).map { _ in Redlock(masters: group.addresses, configuration: configuration) }
            await withTaskGroup(of: Void.self) { starting in
                for client in clients { starting.addTask { await client.connect() } }
            }
            for (index, client) in clients.enumerated() {
                let statuses = await client.masterStatus()
                #expect(statuses.allSatisfy { $0.state == .voting }, "client \(index): \(statuses)")
            }
            for client in clients { await client.shutdown() }
        }
    }

    @Test func oneServerUnderTwoAddressesIsRefusedWithAThrownError() async throws {
        try await withRedisServers(count: 2) { group throws in
            let masters: [RedisServerAddress] = [group[0].address, .hostname("localhost", port: group[0].port), group[1].address]
            let redlock = Redlock(masters: masters, configuration: .init(retry: .never))
            defer { Task { await redlock.shutdown() } }
            let error = await #expect(throws: RedlockError.self) { try await redlock.verifyMasters() }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("are the same server") == true, "\(error?.message ?? "")")
            let refused = await #expect(throws: RedlockError.self) { try await redlock.acquire("twice", ttl: .seconds(1)) }
            #expect(refused?.code == .invalidArgument)
        }
    }

    @Test func oneAddressListedTwiceIsAThrownErrorNotATrap() async throws {
        let address = RedisServerAddress.hostname("127.0.0.1", port: 6390)
        let redlock = Redlock(masters: [address, address, .hostname("127.0.0.1", port: 6391)])
        defer { Task { await redlock.shutdown() } }
        let error = await #expect(throws: RedlockError.self) { try await redlock.acquire("twice", ttl: .seconds(1)) }
        #expect(error?.message == "master 127.0.0.1:6390 is listed twice: one server must not vote twice")
    }

    @Test func theLockDelayCountsTowardTheMaximumTTL() async throws {
        let redlock = Redlock(masters: [.hostname("127.0.0.1", port: 6390)], configuration: .init(maximumTTL: .seconds(10)))
        defer { Task { await redlock.shutdown() } }
        let error = await #expect(throws: RedlockError.self) {
            try await redlock.acquire("delayed", ttl: .seconds(8), lockDelay: .seconds(5))
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("plus lock delay") == true, "\(error?.message ?? "")")
    }

    @Test func timeUntilQuorumCountsHeldOutMastersAsTheyRejoin() {
        let now = ContinuousClock.now
        let address = RedisServerAddress.hostname("127.0.0.1", port: 1)
        func status(_ state: MasterStatus.State) -> MasterStatus { MasterStatus(master: address, state: state) }
        let voting = status(.voting)
        let soon = status(.heldOut(until: now + .seconds(3), reason: "r"))
        let later = status(.heldOut(until: now + .seconds(9), reason: "r"))
        let deciding = status(.heldOut(until: nil, reason: "r"))
        let down = status(.unreachable(reason: "r"))
        #expect(MasterStatus.timeUntilQuorum([voting, voting, down], quorum: 2, now: now) == .zero)
        #expect(MasterStatus.timeUntilQuorum([voting, later, soon], quorum: 2, now: now) == .seconds(3))
        #expect(MasterStatus.timeUntilQuorum([down, later, soon], quorum: 2, now: now) == .seconds(9))
        #expect(MasterStatus.timeUntilQuorum([voting, deciding, down], quorum: 2, now: now) == nil)
    }
}
