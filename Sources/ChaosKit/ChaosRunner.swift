import Foundation
import LocalRedis
import RedisWire
import Redlock
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How long each phase of a scenario lasts.
package struct Timing: Sendable {
    package var warmUp: Duration
    package var baseline: Duration
    package var fault: Duration
    package var healed: Duration

    /// `make test`'s short form: about 8 s a scenario.
    package static let short = Timing(warmUp: .milliseconds(700), baseline: .seconds(2), fault: .seconds(3), healed: .seconds(1))
    /// `make chaos`'s long form.
    package static let long = Timing(warmUp: .seconds(1), baseline: .seconds(10), fault: .seconds(20), healed: .seconds(5))

    /// Creates a timing.
    package init(warmUp: Duration, baseline: Duration, fault: Duration, healed: Duration) {
        self.warmUp = warmUp
        self.baseline = baseline
        self.fault = fault
        self.healed = healed
    }
}

/// One scenario's outcome.
package struct ScenarioResult: Sendable {
    package var scenario: Scenario
    package var report: CheckReport
    /// Every attempt the clients recorded, the phases, and when each fault was injected (for
    /// ``timelineSVG``).
    package var records: [AttemptRecord] = []
    package var phases: Phases
    package var injectionMoments: [Int64] = []
    /// Faults actually injected (restarts, jumps, pauses): 0 means the scenario could not
    /// find a holder to fault, and proves nothing.
    package var injections: Int
    /// Why the expectation failed; empty when it held.
    package var failures: [String]

    /// Whether another run may change the verdict (see ``isWorthRetrying(_:_:injectionWaitsOnChance:)``).
    package var isWorthRetrying: Bool {
        Self.isWorthRetrying(scenario.expectation, failures, injectionWaitsOnChance: scenario.fault.injectionWaitsOnChance)
    }

    /// True only for an unsafe scenario whose sole miss is that its violation did not happen
    /// this time, or (for a fault that is injected only when the clients happen to reach a
    /// given state) that the state, and so the fault, never came; a safety failure, or a stale
    /// token accepted despite fencing, never is.
    package static func isWorthRetrying(_ expectation: Expectation, _ failures: [String], injectionWaitsOnChance: Bool = false) -> Bool {
        guard case .unsafe = expectation else { return false }
        if failures == [ChaosRunner.notReproduced] { return true }
        return injectionWaitsOnChance && failures == [ChaosRunner.neverInjected, ChaosRunner.notReproduced]
    }

    /// What this run means for the suite.
    package var verdict: SuiteVerdict {
        SuiteVerdict(scenario.expectation, failures, injectionWaitsOnChance: scenario.fault.injectionWaitsOnChance)
    }

    /// The run as a picture (see `Timeline`).
    package func timelineSVG(clients: Int) -> String {
        let verdict: String
        if !failures.isEmpty {
            verdict = "FAILED: " + failures.joined(separator: "; ")
        } else if case .unsafe = scenario.expectation {
            verdict = "limit reproduced, as documented"
        } else {
            verdict = "safe"
        }
        let title = "\(scenario.name): \(verdict)"
        return Timeline.svg(title: title, records: records, phases: phases, injections: injectionMoments, clients: clients)
    }

    /// One JSON line for the summary.
    package var jsonLine: String {
        var object: [String: Any] = [
            "scenario": scenario.name, "fenced": scenario.fenced, "passed": failures.isEmpty,
            "verdict": verdict.label,
            "expect": { if case .unsafe = scenario.expectation { "violation reproduced" } else { "safe" } }(),
            "violations": report.violations, "lost_updates": report.lostUpdates, "stale_tokens_accepted": report.staleTokensAccepted,
            "late_writes_accepted": report.lateWritesAccepted, "writes_rejected": report.writesRejected, "injections": injections,
            "sections_per_s": ["baseline": (report.baselineRate * 10).rounded() / 10, "fault": (report.faultRate * 10).rounded() / 10],
            "availability": (report.availability * 1000).rounded() / 1000,
            "throughput_ratio": (report.throughputRatio * 1000).rounded() / 1000,
            "acquire_success": [
                "baseline": (report.baselineSuccessRate * 1000).rounded() / 1000, "fault": (report.faultSuccessRate * 1000).rounded() / 1000,
            ],
            "fault_acquire_ms": ["p50": (report.faultAcquireP50 * 100).rounded() / 100, "p99": (report.faultAcquireP99 * 100).rounded() / 100],
            "outcomes": report.outcomes, "missed_handovers": report.missedHandOvers, "most_at_once": report.mostAtOnce,
            "term_regressions": report.termRegressions, "primitive": scenario.primitive.description,
        ]
        if let recovery = report.recoveryMilliseconds { object["recovery_ms"] = (recovery * 10).rounded() / 10 }
        if !failures.isEmpty { object["failures"] = failures }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// What one scenario's final run means for the suite.
package enum SuiteVerdict: Sendable, Equatable {
    /// The scenario showed what it must: no violation where safe, the violation where unsafe.
    case held
    /// A known-unsafe scenario whose violation did not happen in any run (or whose fault never
    /// found its moment): the suite's power to reproduce a documented limit fell short, which
    /// says nothing about safety. Reported, and does not fail the suite.
    case notReproduced
    /// Anything else: a safety failure, a stale token despite fencing, no section run at all.
    case failed

    /// Classifies a run's failures under its scenario's expectation.
    package init(_ expectation: Expectation, _ failures: [String], injectionWaitsOnChance: Bool = false) {
        if failures.isEmpty {
            self = .held
        } else if ScenarioResult.isWorthRetrying(expectation, failures, injectionWaitsOnChance: injectionWaitsOnChance) {
            self = .notReproduced
        } else {
            self = .failed
        }
    }

    /// Whether the suite exits non-zero because of it.
    package var failsTheSuite: Bool { self == .failed }

    /// The verdict as the JSON summary spells it.
    package var label: String {
        switch self {
        case .held: "held"
        case .notReproduced: "not reproduced"
        case .failed: "failed"
        }
    }
}

/// Runs scenarios: 5 masters, each behind one ``FaultProxy`` per client group, a witness
/// that is never faulted, and `clients` client processes (this executable's `client`
/// subcommand) contending for one resource.
package struct ChaosRunner: Sendable {
    /// The executable that runs a client (`<it> client ...`).
    package var clientExecutable: String
    package var clients: Int
    package var timing: Timing
    /// Each client's pause between attempts.
    package var think: Duration

    /// Creates a runner.
    package init(clientExecutable: String, clients: Int = 4, timing: Timing, think: Duration = .milliseconds(100)) {
        self.clientExecutable = clientExecutable
        self.clients = clients
        self.timing = timing
        self.think = think
    }

    /// Runs one scenario from fresh servers to the checker's verdict.
    package func run(_ scenario: Scenario) async throws -> ScenarioResult {
        let clockFiles = (0..<5).map {
            FileManager.default.temporaryDirectory.appendingPathComponent("locklock-chaos-clock-\($0)-\(UUID().uuidString)").path
        }
        for file in clockFiles { try "+0".write(toFile: file, atomically: true, encoding: .utf8) }
        defer { for file in clockFiles { try? FileManager.default.removeItem(atPath: file) } }
        let certificates: TestCertificates?
        if case .tls = scenario.masters { certificates = try TestCertificates.makeAuthority() } else { certificates = nil }
        defer { certificates?.remove() }
        let listener = try certificates?.listener()
        let witnessServer = try await RedisServer.start()
        var masters: [RedisServer] = []
        var proxies: [[FaultProxy]] = [[], []]
        let children = ClientProcesses()
        func tearDown() async {
            for child in children.all {
                child.send(SIGCONT)
                child.send(SIGKILL)
                _ = await child.wait(timeout: .seconds(5))
            }
            for proxy in proxies.joined() { await proxy.stop() }
            for master in masters { await master.shutdown() }
            await witnessServer.shutdown()
        }
        do {
            for index in 0..<5 {
                var options = options(for: scenario, master: index, clockFile: clockFiles[index])
                if let listener { options.tls = listener }
                masters.append(try await RedisServer.start(options: options))
            }
            for group in 0..<2 {
                for master in masters { proxies[group].append(try await FaultProxy.start(upstreamPort: master.tlsPort ?? master.port)) }
            }
            let witness = RedisConnection(address: witnessServer.address)
            try await witness.connect()
            for id in 0..<clients {
                let group = id % 2
                let scheme = certificates == nil ? "" : "rediss://"
                let masterList: String = proxies[group].map { "\(scheme)127.0.0.1:\($0.port)" }.joined(separator: ",")
                var arguments: [String] = [
                    clientExecutable, "client", "--id", String(id), "--masters", masterList, "--witness", witnessServer.hostAndPort,
                ]
                arguments += ["--ttl-ms", String(scenario.ttl.nanoseconds / 1_000_000), "--hold-ms", String(scenario.hold.nanoseconds / 1_000_000)]
                arguments += ["--think-ms", String((scenario.think ?? think).nanoseconds / 1_000_000)]
                if scenario.fenced { arguments.append("--fenced") }
                if let maximumTTL = scenario.maximumTTL { arguments += ["--max-ttl-ms", String(maximumTTL.nanoseconds / 1_000_000)] }
                if scenario.tokenFromStatus { arguments.append("--token-from-status") }
                if scenario.polls { arguments.append("--polling") }
                arguments += ["--primitive", scenario.primitive.description]
                if scenario.lockDelay > .zero { arguments += ["--lock-delay-ms", String(scenario.lockDelay.nanoseconds / 1_000_000)] }
                if let certificates { arguments += ["--tls-ca", certificates.caCertificate] }
                try children.start(arguments)
            }
            for wrapper in 0..<scenario.runWrappers {
                let id = clients + wrapper
                let masterList = proxies[id % 2].map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
                var arguments = [clientExecutable, "run-client", "--id", String(id), "--locklock", try locklockExecutable()]
                arguments += ["--masters", masterList, "--witness", witnessServer.hostAndPort]
                arguments += [
                    "--ttl-ms", String(scenario.ttl.nanoseconds / 1_000_000), "--hold-ms", String(scenario.runWrapperHold.nanoseconds / 1_000_000),
                ]
                arguments += ["--think-ms", String((scenario.think ?? think).nanoseconds / 1_000_000)]
                try children.start(arguments, wrapsRun: true)
            }
            let context = FaultContext(
                masters: masters,
                proxies: proxies,
                children: children,
                witness: witness,
                clockFiles: clockFiles,
                moments: InjectionLog()
            )
            try await Task.sleep(for: timing.warmUp)
            let baseline = monotonicNanoseconds()
            try await Task.sleep(for: timing.baseline)
            let faultStart = monotonicNanoseconds()
            let faultEnd = ContinuousClock.now + timing.fault
            let injections = try await context.inject(scenario.fault, ttl: scenario.ttl, until: faultEnd)
            if ContinuousClock.now < faultEnd { try await Task.sleep(until: faultEnd) }
            var observed: [String] = []
            if let killed = scenario.killedMajority {
                let survivors = (0..<5).filter { !killed.contains($0) }
                let orphans = try await context.persistentLockValues(on: survivors)
                if orphans > 0 { observed.append("\(orphans) lock keys of failed acquisitions left on reachable masters") }
            }
            let healed = monotonicNanoseconds()
            try await context.heal(scenario.fault)
            try await Task.sleep(for: timing.healed)
            let end = monotonicNanoseconds()
            _ = try await witness.send("SET", "chaos:stop", "1")
            for child in children.all {
                // Bounded: a client finishes its section within TTL + its 1 s wait; then it is killed.
                if await child.wait(timeout: .seconds(8)) == nil {
                    child.send(SIGCONT)
                    child.send(SIGKILL)
                    _ = await child.wait(timeout: .seconds(5))
                }
            }
            let lines = try await witness.send("LRANGE", WitnessKeys.events, "0", "-1")
            let records = Self.strings(lines).compactMap(AttemptRecord.init(line:))
            // Each lane (a semaphore's slot) protects its own counter, in its own fencing order.
            var counters: [String: Int] = [:]
            var tokens: [String: [Int64]] = [:]
            for lane in Set(records.filter { $0.outcome == "ok" && $0.writes }.map(\.lane)) {
                let accepted = try await witness.send("LRANGE", WitnessKeys.key(WitnessKeys.acceptedTokens, lane: lane), "0", "-1")
                tokens[lane] = Self.strings(accepted).compactMap { Int64($0) }
                counters[lane] = Int(try await witness.send("GET", WitnessKeys.key(WitnessKeys.counter, lane: lane)).string ?? "0") ?? 0
            }
            if let mismatches = try await witness.send("LLEN", WitnessKeys.tokenMismatches).integer, mismatches > 0 {
                observed.append("\(mismatches) sections read another fencing token from status than they were issued")
            }
            await witness.close()
            let report = Checker.check(
                records: records,
                counters: counters,
                acceptedTokens: tokens,
                phases: Phases(baseline: baseline, fault: faultStart, healed: healed, end: end),
                handOvers: scenario.checksHandOversThroughout ? baseline...end : nil
            )
            await tearDown()
            return ScenarioResult(
                scenario: scenario,
                report: report,
                records: records,
                phases: Phases(baseline: baseline, fault: faultStart, healed: healed, end: end),
                injectionMoments: context.moments.all,
                injections: injections,
                failures: Self.failures(scenario, report, injections) + observed + context.moments.notes
            )
        } catch {
            await tearDown()
            throw error
        }
    }

    /// The `locklock` executable the run-wrapper clients start: built next to this suite.
    private func locklockExecutable() throws -> String {
        let path = URL(fileURLWithPath: clientExecutable).deletingLastPathComponent().appendingPathComponent("locklock").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw RedisServerError("no locklock next to \(clientExecutable): build the locklock product too")
        }
        return path
    }

    static func strings(_ value: RESPValue) -> [String] {
        if case .array(let items) = value { return items.compactMap(\.string) }
        return []
    }

    /// The one miss an unsafe scenario can show by chance: the interleaving that exposes the
    /// violation did not happen in this run.
    package static let notReproduced = "the violation was not reproduced"
    /// The fault phase ended before the fault could be injected.
    package static let neverInjected = "the fault was never injected"

    static func failures(_ scenario: Scenario, _ report: CheckReport, _ injections: Int) -> [String] {
        var failures: [String] = []
        if report.outcomes["ok", default: 0] == 0 { failures.append("no critical section ran") }
        // Whatever the fault, an election's terms rise: a paused leader entered before the next.
        if scenario.primitive == .election, report.termRegressions > 0 {
            failures.append("\(report.termRegressions) terms not higher than an earlier leader's")
        }
        switch scenario.expectation {
        case .safe(let floor):
            if report.violations > 0 { failures.append("\(report.violations) mutual-exclusion violations") }
            if report.lostUpdates > 0 { failures.append("\(report.lostUpdates) lost updates") }
            if report.staleTokensAccepted > 0 { failures.append("\(report.staleTokensAccepted) stale tokens accepted") }
            if case .semaphore(let permits) = scenario.primitive, report.mostAtOnce > permits {
                failures.append("\(report.mostAtOnce) holders at once, more than the \(permits) permits")
            }
            if report.missedHandOvers > 0 {
                failures.append("\(report.missedHandOvers) waiters gave up while the lock sat free (missed hand-overs)")
            }
            if scenario.minorityFaulted, let unreachable = report.outcomes["quorumUnreachable"], unreachable > 0 {
                failures.append("\(unreachable) attempts reported unreachable with only a minority faulted")
            }
            if let floor, report.availability < floor {
                failures.append("availability \(report.availability) below \(floor) of fault-free")
            }
        case .unsafe:
            if injections == 0 { failures.append(neverInjected) }
            if scenario.fenced {
                if report.staleTokensAccepted > 0 { failures.append("\(report.staleTokensAccepted) stale tokens accepted despite fencing") }
            } else if report.violations + report.lostUpdates + report.staleTokensAccepted + report.lateWritesAccepted == 0 {
                failures.append(notReproduced)
            }
        }
        return failures
    }

    private func options(for scenario: Scenario, master: Int, clockFile: String) -> RedisServerOptions {
        switch scenario.masters {
        case .plain, .tls:
            return RedisServerOptions()
        case .appendOnlyAlways:
            return RedisServerOptions(persistence: .appendOnlyAlways)
        case .jumpableClock:
            if case .clockJump(let jumping, _, _) = scenario.fault, !jumping.contains(master) { return RedisServerOptions() }
            return FakeClock.offset(readFrom: clockFile)
        case .fastClock(let fast, let rate):
            guard fast.contains(master) else { return RedisServerOptions() }
            return FakeClock.rate(rate)
        }
    }
}

/// Everything a fault acts on.
struct FaultContext: Sendable {
    let masters: [RedisServer]
    let proxies: [[FaultProxy]]
    let children: ClientProcesses
    let witness: RedisConnection
    let clockFiles: [String]
    let moments: InjectionLog

    /// Injects `fault`; returns how many discrete injections happened.
    func inject(_ fault: Fault, ttl: Duration, until end: ContinuousClock.Instant) async throws -> Int {
        switch fault {
        case .none:
            return 0
        case .kill(let indexes):
            moments.mark()
            for index in indexes { await masters[index].kill9() }
            return indexes.count
        case .pause(let indexes):
            moments.mark()
            for index in indexes { masters[index].pause() }
            return indexes.count
        case .proxy(let indexes, let proxyFault):
            moments.mark()
            for index in indexes { for group in proxies { group[index].set(proxyFault) } }
            return indexes.count
        case .splitPartition:
            moments.mark()
            for index in [3, 4] { proxies[0][index].set(.blackHole) }
            for index in [0, 1] { proxies[1][index].set(.blackHole) }
            return 1
        case .restartWhileHeld(let indexes, let delay, let times):
            var done = 0
            // Unsafe runs need the fault to land inside a section several times, so this
            // may run past the fault phase, by at most 6 s.
            let bound = end + .seconds(6)
            for _ in 0..<times {
                guard try await waitForHolder(until: bound) != nil else { break }
                moments.mark()
                if let delay {
                    for index in indexes { await masters[index].kill9() }
                    try await Task.sleep(for: delay)
                }
                for index in indexes { try await masters[index].restart() }
                done += 1
                try await Task.sleep(for: delay == nil ? .milliseconds(900) : ttl)
            }
            return done
        case .rollingRestart(let gap, let clockStep):
            var done = 0
            // Every master, whatever the fault phase's length: bounded by the gaps.
            let bound = ContinuousClock.now + gap * 5 + .seconds(5)
            for index in masters.indices {
                guard try await waitForHolder(until: bound) != nil else { break }
                moments.mark()
                try await masters[index].restart()
                if let clockStep {
                    try "+\(clockStep.components.seconds)".write(toFile: clockFiles[index], atomically: true, encoding: .utf8)
                }
                done += 1
                try await Task.sleep(for: gap)
            }
            return done
        case .clockJump(let indexes, let step, let times):
            var done = 0
            for jump in 1...max(times, 1) {
                guard try await waitForHolder(until: end) != nil else { break }
                moments.mark()
                for index in indexes {
                    try "+\(step.components.seconds * Int64(jump))".write(toFile: clockFiles[index], atomically: true, encoding: .utf8)
                }
                done += 1
                try await Task.sleep(for: ttl)
            }
            return done
        case .clockJumpOnBareQuorum(let step, let times):
            let direct = masters.map { RedisConnection(address: $0.address) }
            defer { for connection in direct { Task { await connection.close() } } }
            var offsets = [Int64](repeating: 0, count: masters.count)
            var done = 0
            while done < times, ContinuousClock.now < end {
                guard try await waitForHolder(until: end) != nil else { break }
                var values: [[UInt8]?] = []
                for connection in direct { values.append(try? await connection.send("GET", "redlock:lock:chaos:resource").bytes) }
                let holders = Dictionary(grouping: values.indices.filter { values[$0] != nil }) { values[$0]! }
                guard let bare = holders.values.first(where: { $0.count == QuorumTally.quorum(of: masters.count) }) else {
                    try await Task.sleep(for: .milliseconds(2))
                    continue
                }
                let index = bare[0]
                moments.mark()
                offsets[index] += step.components.seconds
                try "+\(offsets[index])".write(toFile: clockFiles[index], atomically: true, encoding: .utf8)
                done += 1
                // Long enough for the holder's section (and a second holder's) to end.
                try await Task.sleep(for: .milliseconds(800))
            }
            return done
        case .pauseHolder(let pause, let times):
            var done = 0
            for _ in 0..<times {
                guard let pid = try await waitForHolder(until: end), let child = children.all.first(where: { $0.pid == pid }) else { break }
                moments.mark()
                child.send(SIGSTOP)
                try await Task.sleep(for: pause)
                child.send(SIGCONT)
                done += 1
                try await Task.sleep(for: .milliseconds(500))
            }
            return done
        case .restartClientsDuringHoldOut(let indexes, let times):
            var done = 0
            for _ in 0..<times {
                guard let holder = try await waitForHolder(until: end) else { break }
                moments.mark()
                for index in indexes { try await masters[index].restart() }
                // Every client but the holder, which is in its section on the masters that kept it.
                for index in children.indices(wrappingRun: false) where children.pid(index) != holder {
                    try await children.restart(index)
                }
                done += 1
                try await Task.sleep(for: .milliseconds(1500))
            }
            return done
        case .killRunWrappers(let times):
            var done = 0
            for _ in 0..<times {
                guard let (section, wrapper) = try await waitForWrappedHolder(until: end) else { break }
                moments.mark()
                kill(wrapper, SIGKILL)
                done += 1
                // Its section would write well after this (it lasts longer than the TTL).
                var gone = false
                for _ in 0..<50 where !gone {
                    try await Task.sleep(for: .milliseconds(20))
                    gone = ProcessTree.isGone(section)
                }
                if !gone {
                    moments.note("the section of a killed locklock run outlived it")
                    kill(section, SIGKILL)
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            return done
        }
    }

    /// Polls the witness until a `locklock run`'s command is in its critical section; returns
    /// the section's pid and its `run`'s (the section is a shell's child, the shell `run`'s).
    private func waitForWrappedHolder(until end: ContinuousClock.Instant) async throws -> (section: pid_t, wrapper: pid_t)? {
        while ContinuousClock.now < end {
            if let text = try await witness.send("GET", WitnessKeys.holder).string, let pid = pid_t(text),
                let shell = ProcessTree.parent(of: pid), let wrapper = ProcessTree.parent(of: shell), ProcessTree.name(of: wrapper) == "locklock"
            {
                return (pid, wrapper)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// Removes `fault`.
    func heal(_ fault: Fault) async throws {
        switch fault {
        case .kill(let indexes):
            for index in indexes { try await masters[index].restart() }
        case .pause(let indexes):
            for index in indexes { masters[index].resume() }
        case .proxy, .splitPartition:
            for group in proxies { for proxy in group { proxy.set(.none) } }
        case .none, .restartWhileHeld, .clockJump, .clockJumpOnBareQuorum, .pauseHolder, .rollingRestart, .restartClientsDuringHoldOut,
            .killRunWrappers:
            break
        }
    }

    /// How many of `survivors` hold one lock value for the resource unchanged across three
    /// looks 150 ms apart. With a majority down nobody can hold the lock, and an attempt's own
    /// key lives only until its release: a value that stays is an orphan.
    func persistentLockValues(on survivors: [Int]) async throws -> Int {
        let direct = survivors.map { RedisConnection(address: masters[$0].address) }
        defer { for connection in direct { Task { await connection.close() } } }
        var seen: [[[UInt8]?]] = []
        for look in 0..<3 {
            if look > 0 { try await Task.sleep(for: .milliseconds(150)) }
            var values: [[UInt8]?] = []
            for connection in direct { values.append(try await connection.send("GET", "redlock:lock:chaos:resource").bytes) }
            seen.append(values)
        }
        return direct.indices.filter { index in seen[0][index] != nil && seen.allSatisfy { $0[index] == seen[0][index] } }.count
    }

    /// Polls the witness until a client is in its critical section; returns its pid.
    private func waitForHolder(until end: ContinuousClock.Instant) async throws -> pid_t? {
        while ContinuousClock.now < end {
            if let text = try await witness.send("GET", WitnessKeys.holder).string, let pid = pid_t(text) { return pid }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }
}

/// When faults were injected, in ``monotonicNanoseconds()``, and what an injection saw go
/// wrong (each a failure of the scenario).
final class InjectionLog: Sendable {
    private let moments = Mutex<[Int64]>([])
    private let seen = Mutex<[String]>([])

    func mark() { moments.withLock { $0.append(monotonicNanoseconds()) } }
    var all: [Int64] { moments.withLock { $0 } }
    func note(_ failure: String) { seen.withLock { $0.append(failure) } }
    var notes: [String] { seen.withLock { $0 } }
}

/// The client processes of one run, each restartable with the arguments it was started with.
final class ClientProcesses: Sendable {
    private struct Client {
        var process: ChildProcess
        let arguments: [String]
        let wrapsRun: Bool
    }
    private let clients = Mutex<[Client]>([])

    /// Starts a client; `wrapsRun` for a ``RunWrapperClient``.
    func start(_ arguments: [String], wrapsRun: Bool = false) throws {
        let process = try ChildProcess.spawn(arguments)
        clients.withLock { $0.append(Client(process: process, arguments: arguments, wrapsRun: wrapsRun)) }
    }

    var all: [ChildProcess] { clients.withLock { $0.map(\.process) } }

    func indices(wrappingRun: Bool) -> [Int] { clients.withLock { all in all.indices.filter { all[$0].wrapsRun == wrappingRun } } }

    func pid(_ index: Int) -> pid_t { clients.withLock { $0[index].process.pid } }

    /// kill -9 client `index` and start it again, as a fresh process.
    func restart(_ index: Int) async throws {
        let (old, arguments) = clients.withLock { ($0[index].process, $0[index].arguments) }
        old.send(SIGCONT)
        old.send(SIGKILL)
        _ = await old.wait(timeout: .seconds(5))
        let new = try ChildProcess.spawn(arguments)
        clients.withLock { $0[index].process = new }
    }
}

/// A look at other processes through /proc (Linux).
enum ProcessTree {
    /// `pid`'s parent, or nil when it is gone.
    static func parent(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }

    /// `pid`'s command name.
    static func name(of pid: pid_t) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether `pid` has exited (a zombie counts as gone).
    static func isGone(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }
}
