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
        let before = try await Self.commandsProcessed(counters)
        let cpuBefore = try await Self.cpuSeconds(counters)
        let requestsBefore = try await Self.requests(counters)
        for index in 0..<baselineCycles {
            let started = clock.now
            let lock = try await clients[0].acquire("\(prefix):alone:\(index)", ttl: .seconds(10))
            acquireSamples.append((clock.now - started).nanoseconds)
            try await clients[0].release(lock)
        }
        let cycleCommands = Double(try await Self.commandsProcessed(counters) - before) / Double(max(baselineCycles, 1))
        let cycleCPU = (try await Self.cpuSeconds(counters) - cpuBefore) / Double(max(baselineCycles, 1))
        let cycleRequests = Double(try await Self.requests(counters) - requestsBefore) / Double(max(baselineCycles, 1))

        let resource = "\(prefix):contended"
        let state = SharedHandoverState()
        let hold = Duration.milliseconds(Int64(holdMs))
        let total = handovers
        let startCommands = try await Self.commandsProcessed(counters)
        let startCPU = try await Self.cpuSeconds(counters)
        let startRequests = try await Self.requests(counters)
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
        let commands = Double(try await Self.commandsProcessed(counters) - startCommands)
        let cpu = try await Self.cpuSeconds(counters) - startCPU
        let requests = Double(try await Self.requests(counters) - startRequests)
        let measured = state.value.withLock { $0.latencies }
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
        let perHandover = commands / Double(max(measured.count, 1))
        let object: [String: Any] = [
            "mode": "handover", "waiters": waiters, "clients": clients.count, "hold_ms": holdMs, "wake_ups": wakeUps.rawValue,
            "handovers": measured.count, "handovers_per_s": (Double(measured.count) / elapsed.seconds).rounded(),
            "handover_p50_us": percentile(sorted, 0.5), "handover_p99_us": percentile(sorted, 0.99),
            "uncontended_acquire_p50_us": percentile(acquireSorted, 0.5),
            "handover_over_acquire_p50": ((percentile(sorted, 0.5) / max(percentile(acquireSorted, 0.5), 0.1)) * 100).rounded() / 100,
            "commands_per_handover": (perHandover * 10).rounded() / 10, "commands_per_uncontended_cycle": (cycleCommands * 10).rounded() / 10,
            "commands_ratio": ((perHandover / max(cycleCommands, 0.1)) * 100).rounded() / 100, "masters": endpoints.count,
            "requests_per_handover": (requests / Double(max(measured.count, 1)) * 10).rounded() / 10,
            "requests_per_uncontended_cycle": (cycleRequests * 10).rounded() / 10,
            "requests_ratio": ((requests / Double(max(measured.count, 1)) / max(cycleRequests, 0.1)) * 100).rounded() / 100,
            "masters_cpu_us_per_handover": (cpu / Double(max(measured.count, 1)) * 1e7).rounded() / 10,
            "masters_cpu_us_per_uncontended_cycle": (cycleCPU * 1e7).rounded() / 10,
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// The requests the masters received from clients, summed: the lock commands are all
    /// scripts (the run is fenced), plus the subscribers' commands; a script's own calls are
    /// not counted.
    static func requests(_ connections: [RedisConnection]) async throws -> Int {
        let counted = ["cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_subscribe:", "cmdstat_unsubscribe:"]
        var total = 0
        for connection in connections {
            let info = try await connection.send("INFO", "commandstats").string ?? ""
            for line in info.split(whereSeparator: \.isNewline) where counted.contains(where: { line.hasPrefix($0) }) {
                let calls = line.split(separator: ":")[1].split(separator: ",")[0].split(separator: "=")[1]
                total += Int(calls) ?? 0
            }
        }
        return total
    }

    /// The masters' CPU time (user + system, seconds), summed.
    static func cpuSeconds(_ connections: [RedisConnection]) async throws -> Double {
        var total = 0.0
        for connection in connections {
            let info = try await connection.send("INFO", "cpu").string ?? ""
            for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("used_cpu_sys:") || line.hasPrefix("used_cpu_user:") {
                total += Double(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return total
    }

    /// The masters' `total_commands_processed` (each script's own calls included), summed.
    static func commandsProcessed(_ connections: [RedisConnection]) async throws -> Int {
        var total = 0
        for connection in connections {
            let info = try await connection.send("INFO", "stats").string ?? ""
            for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("total_commands_processed:") {
                total += Int(line.dropFirst("total_commands_processed:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return total
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
