import Foundation
import LocalRedis
import RedisWire

#if canImport(Glibc)
import Glibc
#endif

/// A client that contends through `locklock run`, as a cron job or a deploy script does: in a
/// loop, `locklock run --lock <resource> -- sh -c '<chaos> section ...; true'`. The section is
/// the shell's child, not `run`'s, so a `run` killed with SIGKILL must take its command's
/// whole group down, or the section writes after the lock expired.
package struct RunWrapperClient: Sendable {
    /// Tunables of one wrapper client.
    package struct Options: Sendable {
        package var id: Int
        /// The `locklock` executable, and this suite's (which runs the section).
        package var locklock: String
        package var chaos: String
        /// The masters as `--masters` takes them.
        package var masters: String
        package var witness: RedisServerAddress
        package var ttl: Duration
        /// How long each section lasts: longer than the TTL, so `run` extends the lock.
        package var hold: Duration
        package var think: Duration

        /// Creates options.
        package init(
            id: Int,
            locklock: String,
            chaos: String,
            masters: String,
            witness: RedisServerAddress,
            ttl: Duration,
            hold: Duration,
            think: Duration
        ) {
            self.id = id
            self.locklock = locklock
            self.chaos = chaos
            self.masters = masters
            self.witness = witness
            self.ttl = ttl
            self.hold = hold
            self.think = think
        }
    }

    let options: Options

    /// Creates a wrapper client.
    package init(options: Options) { self.options = options }

    /// Runs until the runner sets `chaos:stop` on the witness. An attempt whose `run` did not
    /// exit 0 is recorded as `run-exit-<status>` (a killed `run` as `run-exit-137`); its
    /// section, if it ran to the end, recorded itself.
    package func run() async throws {
        let witness = RedisConnection(address: options.witness)
        try await witness.connect()
        while try await witness.send("EXISTS", "chaos:stop").integer != 1 {
            let started = monotonicNanoseconds()
            let section = [
                options.chaos, "section", "--id", String(options.id), "--witness", "\(options.witness)",
                "--hold-ms", String(options.hold.nanoseconds / 1_000_000), "--started", String(started),
            ]
            let wrapper = try ChildProcess.spawn(
                // `exec`: the wrapper's pid is run's own; its complaints (lock held) are expected.
                ["sh", "-c", #"exec "$0" "$@" 2>/dev/null"#, options.locklock, "run", "--masters", options.masters]
                    + ["--lock", "chaos:resource", "--ttl", "\(options.ttl.nanoseconds / 1_000_000)ms", "--wait", "1s", "--grace", "1s"]
                    + ["--", "sh", "-c", section.map(Self.quoted).joined(separator: " ") + "; true"]
            )
            let status = await wrapper.wait() ?? 1
            if status != 0 {
                let record = AttemptRecord(client: options.id, started: started, outcome: "run-exit-\(status)", exit: monotonicNanoseconds())
                _ = try? await witness.send("RPUSH", WitnessKeys.events, record.line)
            }
            if options.think > .zero { try? await Task.sleep(for: options.think) }
        }
        await witness.close()
    }

    /// One section, run by `locklock run` with the lock's fencing token in
    /// `LOCKLOCK_FENCING_TOKEN`. Its validity is `run`'s to keep (it extends the lock), so the
    /// record's window ends at the section's exit.
    package static func section(client: Int, started: Int64, hold: Duration, witness address: RedisServerAddress) async throws {
        let token = ProcessInfo.processInfo.environment["LOCKLOCK_FENCING_TOKEN"].flatMap { Int64($0) } ?? 0
        let witness = RedisConnection(address: address)
        try await witness.connect()
        let record = try await WitnessedSection(client: client, started: started, enter: monotonicNanoseconds(), pid: String(getpid()), lane: "")
            .run(validUntil: .max, token: token, hold: hold, fenced: false, witness: witness)
        _ = try await witness.send("RPUSH", WitnessKeys.events, record.line)
        await witness.close()
    }

    private static func quoted(_ argument: String) -> String {
        "'" + argument.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }
}
