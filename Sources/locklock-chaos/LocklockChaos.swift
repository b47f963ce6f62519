import ArgumentParser
import ChaosKit
import Foundation
import RedisWire

/// The fault-injection suite: see Docs/safety.md.
@main
struct LocklockChaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "locklock-chaos",
        abstract: "Inject faults under contending Redlock clients and check what the lock guarantees.",
        subcommands: [RunSuite.self, Client.self, RunWrapper.self, Section.self],
        defaultSubcommand: RunSuite.self
    )
}

/// Runs the scenarios and prints one JSON line each; exits 1 if any scenario failed (a known
/// limit that was not reproduced is reported, not failed: see ``SuiteVerdict``).
struct RunSuite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the scenarios (the default).")

    enum Form: String, ExpressibleByArgument { case short, long }

    @Option(help: "short (make test, ~8 s a scenario) or long (make chaos)") var form: Form = .short
    @Option(help: "seed of the fault schedule (which masters are hit)") var seed: UInt64 = 1
    @Option(help: "run only scenarios whose name contains this") var only: String?
    @Option(help: "contending client processes") var clients = 4
    @Option(help: "each client's pause between attempts, ms (0: hammer the lock)") var thinkMs = 100
    @Option(help: "write each scenario's run as an SVG timeline into this directory") var timelines: String?

    func run() async throws {
        var random = SplitMix64(seed: seed)
        let scenarios = Scenario.suite(random: &random).filter { only == nil || $0.name.contains(only!) }
        guard !scenarios.isEmpty else { throw ValidationError("no scenario matches \(only ?? "")") }
        let runner = ChaosRunner(
            clientExecutable: try Self.ownExecutable(),
            clients: clients,
            timing: form == .short ? .short : .long,
            think: .milliseconds(thinkMs)
        )
        print("# locklock-chaos: \(scenarios.count) scenarios, form \(form.rawValue), seed \(seed), \(clients) clients, think \(thinkMs) ms")
        var failed = 0
        var missed: [String] = []
        for scenario in scenarios {
            var result = try await runner.run(scenario)
            // An unsafe scenario needs one unlucky interleaving to show its violation: up to
            // three runs, five when even injecting its fault waits on chance. Safety failures
            // are never retried.
            let runs = scenario.fault.injectionWaitsOnChance ? 5 : 3
            for run in 2...runs where result.isWorthRetrying {
                print(result.jsonLine)
                print("# \(scenario.name): \(result.failures.joined(separator: ", ")), run \(run) of \(runs)")
                result = try await runner.run(scenario)
            }
            print(result.jsonLine)
            fflush(nil)
            if let timelines {
                let name = scenario.name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
                let file = URL(fileURLWithPath: timelines).appendingPathComponent(
                    "chaos-" + String(name).split(separator: "-").joined(separator: "-") + ".svg"
                )
                try result.timelineSVG(clients: clients).write(to: file, atomically: true, encoding: .utf8)
            }
            switch result.verdict {
            case .held: break
            case .notReproduced: missed.append(scenario.name)
            case .failed: failed += 1
            }
        }
        print("# \(scenarios.count - failed - missed.count) of \(scenarios.count) scenarios showed what they must")
        for name in missed {
            // A known limit that did not show is the suite's power falling short, not a safety
            // failure: said plainly, and the exit status stays for safety alone.
            print("# NOT REPRODUCED (known limit; the suite's power, not safety): \(name)")
        }
        print("# \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }

    static func ownExecutable() throws -> String {
        let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        return path
    }
}

/// One contending client (started by `run`).
struct Client: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "client", abstract: "One contending client process (started by run).")

    @Option var id: Int
    @Option var masters: String
    @Option var witness: String
    @Option var ttlMs: Int
    @Option var holdMs: Int
    @Option var thinkMs: Int
    @Flag var fenced = false
    @Option var maxTtlMs: Int?
    @Flag var tokenFromStatus = false
    @Option var tlsCa: String?
    @Option var lockDelayMs = 0
    @Flag var polling = false
    @Option var primitive = "mutex"

    func run() async throws {
        let addresses: [RedisEndpoint]
        do {
            addresses = try RedisEndpoint.list(parsing: masters)
        } catch {
            throw ValidationError("--masters: \(error)")
        }
        guard let witnessAddress = RedisServerAddress(parsing: witness) else { throw ValidationError("bad --witness \(witness)") }
        var options = ChaosClient.Options(
            id: id,
            masters: addresses,
            witness: witnessAddress,
            ttl: .milliseconds(ttlMs),
            hold: .milliseconds(holdMs),
            fenced: fenced,
            think: .milliseconds(thinkMs),
            maximumTTL: maxTtlMs.map { .milliseconds($0) },
            tokenFromStatus: tokenFromStatus,
            tlsCertificateAuthority: tlsCa
        )
        options.lockDelay = .milliseconds(lockDelayMs)
        options.polls = polling
        guard let contended = Primitive(primitive) else { throw ValidationError("bad --primitive \(primitive)") }
        options.primitive = contended
        try await ChaosClient(options: options).run()
    }
}

/// One client that contends through `locklock run` (started by `run`).
struct RunWrapper: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run-client", abstract: "One client looping `locklock run` (started by run).")

    @Option var id: Int
    @Option var locklock: String
    @Option var masters: String
    @Option var witness: String
    @Option var ttlMs: Int
    @Option var holdMs: Int
    @Option var thinkMs: Int

    func run() async throws {
        guard let witnessAddress = RedisServerAddress(parsing: witness) else { throw ValidationError("bad --witness \(witness)") }
        let options = RunWrapperClient.Options(
            id: id,
            locklock: locklock,
            chaos: try RunSuite.ownExecutable(),
            masters: masters,
            witness: witnessAddress,
            ttl: .milliseconds(ttlMs),
            hold: .milliseconds(holdMs),
            think: .milliseconds(thinkMs)
        )
        try await RunWrapperClient(options: options).run()
    }
}

/// One critical section, run by `locklock run` (started by `run-client`).
struct Section: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "section",
        abstract: "One critical section under locklock run (started by run-client)."
    )

    @Option var id: Int
    @Option var witness: String
    @Option var holdMs: Int
    @Option var started: Int64

    func run() async throws {
        guard let witnessAddress = RedisServerAddress(parsing: witness) else { throw ValidationError("bad --witness \(witness)") }
        try await RunWrapperClient.section(client: id, started: started, hold: .milliseconds(holdMs), witness: witnessAddress)
    }
}
