import ArgumentParser
import Foundation
import RedisWire
import Redlock
import Synchronization

/// Waiters contend for one lock; each holder holds it for `--hold`, then releases. Reports the
/// hand-over latency (the release call returning to the next waiter's acquire returning), the
/// hand-overs per second and the masters' commands per hand-over, beside one uncontended
/// acquire's latency and an uncontended cycle's commands measured in the same run.
struct Handover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Hand-over of one contended lock between waiters.")

    @Option(help: "comma-separated host:port of the masters") var masters: String
    @Option(help: "waiting tasks") var waiters: Int = 16
    @Option(help: "clients the waiters are spread over (each one Redlock: one process's worth of queues)") var clients: Int = 1
    @Option(help: "how long each holder holds the lock, in milliseconds") var holdMs: Int = 1
    @Option(help: "hand-overs to measure") var handovers: Int = 2_000
    @Option(help: "wake-ups on, or off (every waiter polls at the retry delay)") var wakeUps: Toggle = .on
    @Option(help: "the retry delay (and jitter half of it) in milliseconds when polling") var retryMs: Int = 200
    @Option(help: "uncontended acquisitions to time first") var baselineCycles: Int = 2_000
    @Option(help: "also write every hand-over's latency in microseconds, one per line, to this file") var samplesFile: String?

    func run() async throws {
        let endpoints = try parseMasters(masters)
        var configuration = RedlockConfiguration(
            instanceTimeout: .milliseconds(500),
            retry: .init(count: 0, delay: .milliseconds(Int64(retryMs)), jitter: .milliseconds(Int64(retryMs / 2)))
        )
        configuration.wakeUps.isEnabled = wakeUps == .on
        let clients = (0..<max(clients, 1)).map { _ in Redlock(endpoints: endpoints, configuration: configuration) }
        for client in clients { await client.connect() }
        let counters = endpoints.map {
            RedisConnection(address: $0.address, configuration: $0.configuration(from: .init(commandTimeout: .seconds(5))))
        }
        let prefix = "bench:handover:\(UUID().uuidString.prefix(8))"
        let clock = ContinuousClock()

        // The baseline: uncontended acquisitions (timed) and cycles (commands counted).
        var acquireSamples: [Int64] = []
        let before = try await MasterCounters(reading: counters)
        for index in 0..<baselineCycles {
            let started = clock.now
            let lock = try await clients[0].acquire("\(prefix):alone:\(index)", ttl: .seconds(10))
            acquireSamples.append((clock.now - started).nanoseconds)
            try await clients[0].release(lock)
        }
        let cycle = (try await MasterCounters(reading: counters) - before) / Double(max(baselineCycles, 1))

        let resource = "\(prefix):contended"
        let state = SharedHandoverState()
        let hold = Duration.milliseconds(Int64(holdMs))
        let total = handovers
        let start = try await MasterCounters(reading: counters)
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for waiter in 0..<max(waiters, 1) {
                let client = clients[waiter % clients.count]
                group.addTask {
                    while true {
                        let lock: Lock
                        do {
                            lock = try await client.acquire(resource, ttl: .seconds(10), wait: .seconds(60))
                        } catch {
                            if state.value.withLock({ $0.done }) { return }
                            throw error
                        }
                        let acquiredAt = clock.now
                        let finished = state.value.withLock { state -> Bool in
                            state.lastAcquisition = acquiredAt
                            if let released = state.lastRelease {
                                state.latencies.append((acquiredAt - released).nanoseconds)
                                state.lastRelease = nil
                            }
                            if state.latencies.count >= total { state.done = true }
                            return state.done
                        }
                        try await Task.sleep(for: hold)
                        try await client.release(lock)
                        let releasedAt = clock.now
                        state.value.withLock { state in
                            if let last = state.lastAcquisition, last > acquiredAt {
                                // The announcement beat the release's own reply: handed over at once.
                                state.latencies.append(0)
                            } else {
                                state.lastRelease = releasedAt
                            }
                        }
                        if finished { return }
                        // To the back of the line: a holder does not contend again before someone
                        // else has taken the lock (it would otherwise hand the lock to itself).
                        for _ in 0..<10_000 {
                            let handedOver = state.value.withLock { ($0.lastAcquisition ?? releasedAt) > releasedAt || $0.done }
                            if handedOver { break }
                            try await Task.sleep(for: .milliseconds(1))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - started
        let measured = state.value.withLock { $0.latencies }
        let perHandover = (try await MasterCounters(reading: counters) - start) / Double(max(measured.count, 1))
        for client in clients { await client.shutdown() }
        for counter in counters { await counter.close() }

        let sorted = measured.sorted()
        if let samplesFile {
            let text = sorted.map { String(Double($0) / 1_000) }.joined(separator: "\n") + "\n"
            try text.write(toFile: samplesFile, atomically: true, encoding: .utf8)
        }
        let acquireSorted = acquireSamples.sorted()
        func percentile(_ values: [Int64], _ p: Double) -> Double {
            guard !values.isEmpty else { return 0 }
            return (Double(values[min(values.count - 1, Int(Double(values.count) * p))]) / 100).rounded() / 10
        }
        let object: [String: Any] = [
            "mode": "handover", "waiters": waiters, "clients": clients.count, "hold_ms": holdMs, "wake_ups": wakeUps.rawValue,
            "handovers": measured.count, "handovers_per_s": (Double(measured.count) / elapsed.seconds).rounded(),
            "handover_p50_us": percentile(sorted, 0.5), "handover_p99_us": percentile(sorted, 0.99),
            "uncontended_acquire_p50_us": percentile(acquireSorted, 0.5),
            "handover_over_acquire_p50": ((percentile(sorted, 0.5) / max(percentile(acquireSorted, 0.5), 0.1)) * 100).rounded() / 100,
            "commands_per_handover": (perHandover.commands * 10).rounded() / 10,
            "commands_per_uncontended_cycle": (cycle.commands * 10).rounded() / 10,
            "commands_ratio": ((perHandover.commands / max(cycle.commands, 0.1)) * 100).rounded() / 100, "masters": endpoints.count,
            "requests_per_handover": (perHandover.requests * 10).rounded() / 10,
            "requests_per_uncontended_cycle": (cycle.requests * 10).rounded() / 10,
            "requests_ratio": ((perHandover.requests / max(cycle.requests, 0.1)) * 100).rounded() / 100,
            "masters_cpu_us_per_handover": (perHandover.cpuSeconds * 1e7).rounded() / 10,
            "masters_cpu_us_per_uncontended_cycle": (cycle.cpuSeconds * 1e7).rounded() / 10,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// What the masters have done so far, summed over them, from one `INFO` per master.
struct MasterCounters {
    /// `total_commands_processed`: each script's own calls included.
    var commands: Double
    /// Requests from clients: the lock commands are all scripts (the run is fenced), plus the
    /// subscribers' commands; a script's own calls are not counted.
    var requests: Double
    /// CPU time, user + system, in seconds.
    var cpuSeconds: Double

    init(commands: Double, requests: Double, cpuSeconds: Double) {
        self.commands = commands
        self.requests = requests
        self.cpuSeconds = cpuSeconds
    }

    init(reading connections: [RedisConnection]) async throws {
        self.init(commands: 0, requests: 0, cpuSeconds: 0)
        let requestStats: Set<Substring> = ["cmdstat_evalsha", "cmdstat_eval", "cmdstat_subscribe", "cmdstat_unsubscribe"]
        for connection in connections {
            let info = try await connection.send("INFO", "stats", "cpu", "commandstats").string ?? ""
            for line in info.split(whereSeparator: \.isNewline) {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let (field, value) = (line[..<colon], line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
                switch field {
                case "total_commands_processed": commands += Double(value) ?? 0
                case "used_cpu_sys", "used_cpu_user": cpuSeconds += Double(value) ?? 0
                case _ where requestStats.contains(field):
                    // calls=N,usec=...
                    requests += Double(value.split(separator: ",")[0].dropFirst("calls=".count)) ?? 0
                default: break
                }
            }
        }
    }

    static func - (later: MasterCounters, earlier: MasterCounters) -> MasterCounters {
        MasterCounters(
            commands: later.commands - earlier.commands,
            requests: later.requests - earlier.requests,
            cpuSeconds: later.cpuSeconds - earlier.cpuSeconds
        )
    }

    static func / (counters: MasterCounters, divisor: Double) -> MasterCounters {
        MasterCounters(commands: counters.commands / divisor, requests: counters.requests / divisor, cpuSeconds: counters.cpuSeconds / divisor)
    }
}

/// The waiters' shared state, behind a lock.
final class SharedHandoverState: Sendable {
    let value = Mutex(HandoverState())
}

/// What the waiters of one run share.
struct HandoverState: Sendable {
    var latencies: [Int64] = []
    /// When the last release call returned, until a waiter takes the lock.
    var lastRelease: ContinuousClock.Instant?
    /// When the latest acquisition returned.
    var lastAcquisition: ContinuousClock.Instant?
    var done = false
}
