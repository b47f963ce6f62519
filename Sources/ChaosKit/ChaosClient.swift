import Foundation
import Logging
import RedisWire
import Redlock

#if canImport(Glibc)
import Glibc
#endif

/// One contending client process: loops `withLock` on one resource and does a
/// read-sleep-write of the witness counter inside, recording every attempt.
///
/// The body deliberately ignores cancellation once it has read the counter, like code that
/// does not check it (or a process paused between its check and its write): that is the
/// worst case the checker must see, not hide.
package struct ChaosClient: Sendable {
    /// Tunables of one client.
    package struct Options: Sendable {
        package var id: Int
        package var masters: [RedisEndpoint]
        package var witness: RedisServerAddress
        package var ttl: Duration
        package var hold: Duration
        package var fenced: Bool
        /// Pause between the end of one attempt and the next (0: hammer the lock).
        package var think: Duration
        /// Turns on the delayed rejoin of restarted masters (nil: off).
        package var maximumTTL: Duration?
        /// Read the token back from the lock's status in each section and report a mismatch.
        package var tokenFromStatus: Bool
        /// Speak TLS to the masters, trusting this CA certificate (nil: plain TCP).
        package var tlsCertificateAuthority: String?
        /// How long the keys outlive the TTL when the holder neither releases nor extends.
        package var lockDelay: Duration = .zero
        /// Whether waiting clients poll at the retry delay instead of being woken by releases.
        package var polls = false
        /// What the clients contend for.
        package var primitive = Primitive.mutex

        /// Creates options.
        package init(
            id: Int,
            masters: [RedisEndpoint],
            witness: RedisServerAddress,
            ttl: Duration,
            hold: Duration,
            fenced: Bool,
            think: Duration,
            maximumTTL: Duration? = nil,
            tokenFromStatus: Bool = false,
            tlsCertificateAuthority: String? = nil
        ) {
            self.tlsCertificateAuthority = tlsCertificateAuthority
            self.id = id
            self.masters = masters
            self.witness = witness
            self.ttl = ttl
            self.hold = hold
            self.fenced = fenced
            self.think = think
            self.maximumTTL = maximumTTL
            self.tokenFromStatus = tokenFromStatus
        }
    }

    let options: Options

    /// Creates a client.
    package init(options: Options) { self.options = options }

    /// Runs until the runner sets `chaos:stop` on the witness.
    package func run() async throws {
        var configuration = RedlockConfiguration(
            instanceTimeout: .milliseconds(50),
            retry: .init(count: 0, delay: .milliseconds(3), jitter: .milliseconds(3)),
            fencing: true,
            maximumTTL: options.maximumTTL
        )
        configuration.connection.tls = options.tlsCertificateAuthority.map { RedisTLSConfiguration(trustRoots: .certificateFile($0)) }
        configuration.wakeUps.isEnabled = !options.polls
        let redlock = Redlock(
            endpoints: options.masters,
            configuration: configuration,
            logger: Logger(label: "chaos-client", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let witness = RedisConnection(address: options.witness)
        await redlock.connect()
        try await witness.connect()
        let pid = String(getpid())
        let contend = try holding("chaos:resource", on: redlock, witness: witness)
        var round = options.id
        while try await witness.send("EXISTS", "chaos:stop").integer != 1 {
            let started = monotonicNanoseconds()
            round += 1
            // The section records itself: withLock may still throw lockLost after it ran.
            let section: Section = { handle, lane in
                let record = try await criticalSection(handle: handle, witness: witness, started: started, pid: pid, lane: lane)
                _ = try await witness.send("RPUSH", WitnessKeys.events, record.line)
            }
            do {
                try await contend(round, section)
            } catch let error as RedlockError where error.code == .lockLost {
                // The section ran and recorded itself.
            } catch let error as RedlockError {
                let record = AttemptRecord(client: options.id, started: started, outcome: "\(error.code)", exit: monotonicNanoseconds())
                _ = try? await witness.send("RPUSH", WitnessKeys.events, record.line)
            }
            if options.think > .zero { try? await Task.sleep(for: options.think) }
        }
        await redlock.shutdown()
        await witness.close()
    }

    /// A critical section run with the handle of what it holds and its lane.
    typealias Section = @Sendable (LockHandle, String) async throws -> Void

    /// How one round holds the contended primitive and runs its section (made once: the
    /// semaphore, the read-write lock or the election is the same every round).
    private func holding(
        _ resource: String,
        on redlock: Redlock,
        witness: RedisConnection
    ) throws -> @Sendable (_ round: Int, _ section: @escaping Section) async throws -> Void {
        let options = options
        switch options.primitive {
        case .mutex:
            return { _, section in
                try await redlock.withLock(
                    resource,
                    ttl: options.ttl,
                    wait: .seconds(1),
                    retry: .init(count: .max, delay: .milliseconds(3), jitter: .milliseconds(3)),
                    lockDelay: options.lockDelay
                ) { handle in
                    if options.tokenFromStatus, let reported = try? await redlock.inspect(resource),
                        reported.fencingToken != handle.fencingToken
                    {
                        _ = try await witness.send(
                            "RPUSH",
                            WitnessKeys.tokenMismatches,
                            "\(reported.fencingToken.map(String.init) ?? "none") != \(handle.fencingToken ?? 0)"
                        )
                    }
                    try await section(handle, "")
                }
            }
        case .semaphore(let permits):
            let semaphore = try redlock.semaphore(resource, permits: permits)
            return { _, section in
                try await semaphore.withPermit(ttl: options.ttl, wait: .seconds(1)) { handle in
                    try await section(handle, "s\(semaphore.slotIndex(of: handle.lock) ?? -1)")
                }
            }
        case .readWrite:
            let lock = try ReadWriteLock(resource, on: redlock)
            return { round, section in
                if round % 3 == 0 {
                    try await lock.withWriteLock(ttl: options.ttl, wait: .seconds(1)) { try await section($0, AttemptRecord.writerLane) }
                } else {
                    try await lock.withReadLock(ttl: options.ttl, wait: .seconds(1)) { try await section($0, AttemptRecord.readerLane) }
                }
            }
        case .election:
            let election = try LeaderElection(resource, on: redlock, ttl: options.ttl)
            return { _, section in try await election.lead(wait: .seconds(1)) { try await section($0, "") } }
        }
    }

    /// A read-sleep-write of the lane's counter (a reader's section only reads it).
    private func criticalSection(
        handle: LockHandle,
        witness: RedisConnection,
        started: Int64,
        pid: String,
        lane: String
    ) async throws -> AttemptRecord {
        let enter = monotonicNanoseconds()
        return try await WitnessedSection(client: options.id, started: started, enter: enter, pid: pid, lane: lane).run(
            validUntil: enter + handle.remainingValidity.nanoseconds,
            token: handle.fencingToken ?? 0,
            hold: options.hold,
            fenced: options.fenced,
            witness: witness
        )
    }
}
