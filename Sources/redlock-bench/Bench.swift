import ArgumentParser
import Foundation
import NIOCore
import RedisWire
import Redlock

@main
struct RedlockBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redlock-bench",
        abstract: "Measures RedisWire and Redlock against real masters; prints one JSON line last.",
        subcommands: [Wire.self, LockCycles.self, NIOFloor.self, Handover.self]
    )
}

enum Mode: String, ExpressibleByArgument, CaseIterable {
    case latency, throughput
}

enum Toggle: String, ExpressibleByArgument, CaseIterable {
    case on, off
}

enum Placement: String, ExpressibleByArgument, CaseIterable {
    /// Callers run on the global task pool (two thread hops per operation).
    case global
    /// Callers prefer the client's event loop as their task executor (no hops).
    case loop
}

struct Wire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "SET key value NX PX 10000 on distinct keys over one connection.")

    @Option(help: "host:port of the master") var master: String
    @Option(help: "latency: one caller, one command at a time; throughput: C concurrent tasks") var mode: Mode = .latency
    @Option(help: "concurrent tasks in throughput mode") var concurrency: Int = 64
    @Option(help: "number of commands") var ops: Int = 100_000
    @Option(help: "where callers run: global (task pool) or loop (the connection's event loop)") var executor: Placement = .global
    @Option(help: "speak TLS, trusting this CA certificate (PEM)") var tlsCa: String?

    func run() async throws {
        guard let endpoint = try parseMasters(master).first else { throw ValidationError("bad --master \(master)") }
        let base = RedisConnectionConfiguration(commandTimeout: .seconds(5), tls: tlsConfiguration(tlsCa))
        let connection = RedisConnection(address: endpoint.address, configuration: endpoint.configuration(from: base))
        try await connection.connect()
        let prefix = Array("bench:wire:\(UUID().uuidString.prefix(8)):".utf8)
        let tasks = mode == .latency ? 1 : max(concurrency, 1)
        let warmup = min(ops / 10, 2_000)
        // Like redis-benchmark, build each command from constant parts and a numbered key.
        let (set, value, nx, px, ttl) = (Array("SET".utf8), Array("v".utf8), Array("NX".utf8), Array("PX".utf8), Array("10000".utf8))
        let command: @Sendable (Int) -> [[UInt8]] = { number in [set, key(number, after: prefix), value, nx, px, ttl] }
        _ = try await runWorkers(tasks: tasks, total: warmup, executor: executor == .loop ? connection.taskExecutor : nil) { index in
            _ = try await connection.send(command(-1 - index))
        }
        let result = try await runWorkers(tasks: tasks, total: ops, executor: executor == .loop ? connection.taskExecutor : nil) { index in
            _ = try await connection.send(command(index))
        }
        await connection.close()
        result.print(mode: mode.rawValue, rateKey: "ops_per_s", extra: ["concurrency": tasks, "executor": executor.rawValue, "tls": tlsCa != nil])
    }
}

struct LockCycles: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lock", abstract: "acquire + release cycles on distinct keys over N masters.")

    @Option(help: "comma-separated host:port of the masters") var masters: String
    @Option(help: "latency: one caller, one cycle at a time; throughput: C concurrent tasks") var mode: Mode = .latency
    @Option(help: "concurrent tasks in throughput mode") var concurrency: Int = 64
    @Option(help: "number of acquire+release cycles") var cycles: Int = 20_000
    @Option(help: "where callers run: global (task pool) or loop (the client's event loop)") var executor: Placement = .global
    @Option(help: "hand out fencing tokens (a MULTI/EXEC transaction per acquisition) or not (plain SET NX PX)") var fencing: Toggle = .on
    @Option(help: "also write every cycle's latency in microseconds, one per line, to this file") var samplesFile: String?
    @Option(help: "speak TLS to every master, trusting this CA certificate (PEM)") var tlsCa: String?
    @Option(
        help:
            "mutex: a lock per cycle on distinct keys; semaphore: every task takes a permit of one semaphore of --permits (waiting for one); read: every task takes a reader's share of one read-write lock"
    )
    var primitive: Primitive = .mutex
    @Option(help: "the semaphore's permits") var permits = 8

    enum Primitive: String, ExpressibleByArgument { case mutex, semaphore, read }

    func run() async throws {
        let addresses = try parseMasters(masters)
        var configuration = RedlockConfiguration(instanceTimeout: .milliseconds(500), retry: .never, fencing: fencing == .on)
        configuration.connection.tls = tlsConfiguration(tlsCa)
        let redlock = Redlock(endpoints: addresses, configuration: configuration)
        await redlock.connect()
        let prefix = "bench:lock:\(UUID().uuidString.prefix(8)):"
        let tasks = mode == .latency ? 1 : max(concurrency, 1)
        let preferred = executor == .loop ? redlock.taskExecutor : nil
        let semaphore = try redlock.semaphore("\(prefix)semaphore", permits: permits)
        let shared = try ReadWriteLock("\(prefix)shared", on: redlock)
        let primitive = primitive
        let cycle: nonisolated(nonsending) @Sendable (Int) async throws -> Void = { index in
            let lock =
                switch primitive {
                case .mutex: try await redlock.acquire("\(prefix)\(index)", ttl: .seconds(10))
                case .semaphore: try await semaphore.acquire(ttl: .seconds(10), wait: .seconds(30))
                case .read: try await shared.acquireRead(ttl: .seconds(10))
                }
            try await redlock.release(lock)
        }
        _ = try await runWorkers(tasks: tasks, total: min(cycles / 10, 2_000), executor: preferred) { try await cycle(-1 - $0) }
        let result = try await runWorkers(tasks: tasks, total: cycles, executor: preferred, cycle)
        await redlock.shutdown()
        if let samplesFile { try result.writeSamples(to: samplesFile) }
        result.print(
            mode: mode.rawValue,
            rateKey: "cycles_per_s",
            extra: [
                "concurrency": tasks, "masters": addresses.count, "executor": executor.rawValue, "fencing": fencing.rawValue, "tls": tlsCa != nil,
                "primitive": primitive.rawValue, "permits": primitive == .semaphore ? permits : 0,
            ]
        )
    }
}

struct BenchResult {
    var latenciesNanoseconds: [Int64]
    var elapsed: Duration

    func writeSamples(to path: String) throws {
        let text = latenciesNanoseconds.map { String(Double($0) / 1_000) }.joined(separator: "\n") + "\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func print(mode: String, rateKey: String, extra: [String: any Sendable]) {
        let sorted = latenciesNanoseconds.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1_000
        }
        let seconds = elapsed.seconds
        var object: [String: Any] = [
            "mode": mode,
            rateKey: (Double(sorted.count) / seconds).rounded(),
            "p50_us": (percentile(0.50) * 10).rounded() / 10,
            "p90_us": (percentile(0.90) * 10).rounded() / 10,
            "p99_us": (percentile(0.99) * 10).rounded() / 10,
            "count": sorted.count,
        ]
        for (key, value) in extra { object[key] = value }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        Swift.print(String(decoding: data, as: UTF8.self))
    }
}

/// `prefix` followed by the decimal digits of `index` (negative numbers get a trailing "w",
/// for warm-up keys), built in one allocation as redis-benchmark builds its keys in place.
func key(_ index: Int, after prefix: [UInt8] = []) -> [UInt8] {
    var digitCount = 1
    var rest = index.magnitude
    while rest >= 10 {
        digitCount += 1
        rest /= 10
    }
    var bytes = prefix
    bytes.reserveCapacity(prefix.count + digitCount + 1)
    bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digitCount))
    rest = index.magnitude
    var position = bytes.count - 1
    repeat {
        bytes[position] = UInt8(ascii: "0") + UInt8(rest % 10)
        rest /= 10
        position -= 1
    } while rest > 0
    if index < 0 { bytes.append(UInt8(ascii: "w")) }
    return bytes
}

/// Runs `total` operations split over `tasks` workers, timing each one.
func runWorkers(
    tasks: Int,
    total: Int,
    executor: EventLoopTaskExecutor?,
    _ operation: nonisolated(nonsending) @escaping @Sendable (Int) async throws -> Void
) async throws -> BenchResult {
    let clock = ContinuousClock()
    let start = clock.now
    let latencies = try await withThrowingTaskGroup(of: [Int64].self) { group in
        for worker in 0..<tasks {
            let share = total / tasks + (worker < total % tasks ? 1 : 0)
            let base = worker * (total / tasks + 1)
            group.addTask(executorPreference: executor) {
                var samples = [Int64]()
                samples.reserveCapacity(share)
                for offset in 0..<share {
                    let begin = clock.now
                    try await operation(base + offset)
                    samples.append((clock.now - begin).nanoseconds)
                }
                return samples
            }
        }
        var all = [Int64]()
        for try await samples in group { all.append(contentsOf: samples) }
        return all
    }
    return BenchResult(latenciesNanoseconds: latencies, elapsed: clock.now - start)
}

/// `--tls-ca` as the bench takes it: TLS trusting that CA, or plain TCP.
func tlsConfiguration(_ caFile: String?) -> RedisTLSConfiguration? {
    caFile.map { RedisTLSConfiguration(trustRoots: .certificateFile($0)) }
}

/// `--masters` as every command of the bench takes it.
func parseMasters(_ text: String) throws -> [RedisEndpoint] {
    do {
        return try RedisEndpoint.list(parsing: text)
    } catch {
        throw ValidationError("--masters: \(error)")
    }
}
