import ChaosKit
import Foundation
import LocalRedis
import RealServerGate
import RedisWire
import Redlock
import RedlockTestSupport
import Testing

/// The built `locklock` executable (it sits next to the test bundle).
private func locklockExecutable() -> URL {
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("locklock")
    let directory = Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("locklock")
    return FileManager.default.isExecutableFile(atPath: binary.path) ? binary : directory
}

/// Runs `locklock` to completion.
private func locklock(
    _ arguments: [String],
    masters: String,
    environment: [String: String] = [:]
) async throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = locklockExecutable()
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(["LOCKLOCK_MASTERS": masters]) { $1 }.merging(environment) { $1 }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    for _ in 0..<3000 where process.isRunning { try await Task.sleep(for: .milliseconds(10)) }  // bounded: 30 s
    if process.isRunning {
        process.interrupt()
        process.waitUntilExit()
    }
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// The names of a process's threads (Linux).
private func threadNames(of pid: Int32) throws -> [String] {
    let tasks = "/proc/\(pid)/task"
    return try FileManager.default.contentsOfDirectory(atPath: tasks).map { task in
        try String(contentsOfFile: "\(tasks)/\(task)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Starts `locklock` with its output discarded, and returns at once.
private func spawnLocklock(_ arguments: [String], masters: String) throws -> Process {
    let process = Process()
    process.executableURL = locklockExecutable()
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(["LOCKLOCK_MASTERS": masters]) { $1 }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

/// Runs `locklock serve` with `arguments` over `masters` until `body` returns; `body` starts
/// once `readyPath` answers 200 on `port`, and gets the server's process. Returns what the
/// server wrote to standard error.
@discardableResult
private func withServe(
    _ arguments: [String],
    port: Int,
    masters: String,
    readyPath: String = "/livez",
    _ body: (Process) async throws -> Void
) async throws -> String {
    let server = Process()
    server.executableURL = locklockExecutable()
    server.arguments = ["serve", "--port", "\(port)"] + arguments
    server.environment = ProcessInfo.processInfo.environment.merging(["LOCKLOCK_MASTERS": masters]) { $1 }
    let errors = Pipe()
    server.standardOutput = FileHandle.nullDevice
    server.standardError = errors
    try server.run()
    do {
        try await waitUntilServing(port: port, path: readyPath)
        try await body(server)
    } catch {
        server.terminate()
        server.waitUntilExit()
        throw error
    }
    server.terminate()
    server.waitUntilExit()
    return String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
}

/// Whether `pid` names a live process (a zombie waiting to be reaped counts as gone).
private func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    return stat[stat.index(close, offsetBy: 2)] != "Z"
}

/// Waits up to `limit` for `pid` to be gone; true if it is.
private func waitUntilGone(_ pid: Int32, within limit: Duration) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while isRunning(pid) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    return !isRunning(pid)
}

/// Waits up to 10 s for `file` to hold a pid, and returns it.
private func pid(from file: String) async throws -> Int32 {
    for _ in 0..<500 {
        if let text = try? String(contentsOfFile: file, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            return pid
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw CocoaError(.fileReadNoSuchFile)
}

/// A fresh directory for a test's pid files, removed by `body`'s caller.
private func scratchDirectory() throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("locklock-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

/// Forgets every key on `servers`, as a restart without persistence does.
private func flush(_ servers: [RedisServer]) async throws {
    for server in servers {
        let connection = RedisConnection(address: server.address)
        _ = try await connection.send("FLUSHALL")
        await connection.close()
    }
}

/// Whether this process may start a command in a PID namespace of its own.
private func canMakePIDNamespaces() -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    process.arguments = ["--pid", "--fork", "--mount-proc", "true"]
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}

/// The header of a JSON request body.
private let json = ["Content-Type": "application/json"]

/// POSTs the UUID lock `name` for `expiresIn` seconds, as an anonymous caller.
private func postLock(port: Int, _ name: String, expiresIn: Int) async throws -> HTTPResult {
    try await loopbackRequest(port: port, "POST", "/v1/api/lock/uuid/\(name)", body: #"{"expires_in":\#(expiresIn)}"#, headers: json)
}

/// A direct connection to one master.
private func direct(_ server: RedisServer) -> RedisConnection {
    RedisConnection(address: server.address, configuration: .init(commandTimeout: .seconds(5)))
}

@Suite("locklock CLI", .serialized, .realRedisServers)
struct CLITests {
    @Test func runHoldsTheLockWhileTheCommandRunsAndExitsWithItsStatus() async throws {
        try await withRedisServers(count: 3) { group throws in
            let observer = Redlock(masters: group.addresses, configuration: .init(retry: .never))
            await observer.connect()
            async let run = locklock(
                ["run", "--lock", "nightly", "--ttl", "1s", "--", "sh", "-c", "sleep 1.5; exit 7"],
                masters: group.commaSeparated
            )
            var sawHeld = false
            for _ in 0..<20 where !sawHeld {
                try await Task.sleep(for: .milliseconds(50))
                sawHeld = (try? await observer.inspect("nightly"))?.isHeld == true
            }
            #expect(sawHeld, "the lock is held while the command runs")
            let result = try await run
            #expect(result.status == 7, "exits with the command's status: \(result.stderr)")
            #expect(try await observer.inspect("nightly").isHeld == false, "released after the command")
            await observer.shutdown()
        }
    }

    @Test func runExits75WhenTheLockIsHeld() async throws {
        try await withRedisServers(count: 3) { group throws in
            let holder = Redlock(masters: group.addresses, configuration: .init(retry: .never))
            await holder.connect()
            let lock = try await holder.acquire("busy", ttl: .seconds(30))
            let result = try await locklock(["run", "--lock", "busy", "--ttl", "5s", "--", "true"], masters: group.commaSeparated)
            #expect(result.status == 75)
            try await holder.release(lock)
            await holder.shutdown()
        }
    }

    @Test func runTerminatesTheCommandAndExits70WhenTheLockIsLost() async throws {
        try await withRedisServers(count: 3) { group throws in
            async let run = locklock(["run", "--lock", "fragile", "--ttl", "600ms", "--", "sleep", "20"], masters: group.commaSeparated)
            try await Task.sleep(for: .milliseconds(300))
            await group[0].kill9()
            await group[1].kill9()
            let clock = ContinuousClock()
            let start = clock.now
            let result = try await run
            #expect(result.status == 70, "lost lock: \(result.stderr)")
            #expect(result.stderr.contains("lock lost"))
            #expect(clock.now - start < .seconds(5), "the command was terminated, not waited for")
        }
    }

    @Test func runWaitsForTheHoldersReleaseAndALockDelayOutlivesAKilledHolder() async throws {
        try await withRedisServers(count: 3) { group throws in
            let holder = Redlock(masters: group.addresses, configuration: .init(retry: .never))
            await holder.connect()
            let lock = try await holder.acquire("handed", ttl: .seconds(60))
            async let waiting = locklock(["run", "--lock", "handed", "--wait", "30s", "--", "true"], masters: group.commaSeparated)
            try await Task.sleep(for: .seconds(1))
            let clock = ContinuousClock()
            let released = clock.now
            try await holder.release(lock)
            #expect(try await waiting.status == 0)
            #expect(clock.now - released < .seconds(3), "woken by the release, not the 60 s expiry or the 5 s fallback")
            // A holder that never releases (acquire exits holding it) leaves the delay behind.
            let acquired = try await locklock(
                ["acquire", "--lock", "delayed", "--ttl", "300ms", "--lock-delay", "30s"],
                masters: group.commaSeparated
            )
            #expect(acquired.status == 0)
            try await Task.sleep(for: .milliseconds(600))
            #expect(try await locklock(["acquire", "--lock", "delayed", "--ttl", "5s"], masters: group.commaSeparated).status == 75)
            await holder.shutdown()
        }
    }

    @Test func aKilledWaitersPlaceInTheQueueLapsesSoTheReleaseWakesTheLiveWaiter() async throws {
        try await withRedisServers(count: 3) { group throws in
            var configuration = RedlockConfiguration(retry: .never)
            // A fallback far longer than the test: the live waiter can only be woken by a release.
            configuration.wakeUps = .init(longestSleep: .seconds(120))
            let client = Redlock(masters: group.addresses, configuration: configuration)
            await client.connect()
            let queueKey = "redlock:queue:relayed"
            /// Each master's queue entries (`token:lapse-ms`) in order, and its clock (ms).
            func queues() async throws -> [(entries: [String], now: Int)] {
                var all: [(entries: [String], now: Int)] = []
                for master in group.servers {
                    let connection = direct(master)
                    let entries = try await connection.send("ZRANGE", queueKey, "0", "-1").array?.compactMap(\.string) ?? []
                    let time = try await connection.send("TIME").array?.compactMap(\.string).compactMap(Int.init) ?? []
                    all.append((entries, time.count == 2 ? time[0] * 1_000 + time[1] / 1_000 : 0))
                    await connection.close()
                }
                return all
            }
            func waitForQueues(_ done: ([(entries: [String], now: Int)]) -> Bool, within limit: Duration) async throws -> Bool {
                let deadline = ContinuousClock.now + limit
                while ContinuousClock.now < deadline {
                    if done(try await queues()) { return true }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return false
            }
            let holder = try await client.acquire("relayed", ttl: .seconds(60))
            // The first waiter, in a process of its own, asks to wait far longer than the test.
            let doomed = try spawnLocklock(["run", "--lock", "relayed", "--wait", "300s", "--", "true"], masters: group.commaSeparated)
            #expect(try await waitForQueues({ $0.allSatisfy { $0.entries.count == 1 } }, within: .seconds(10)), "the process queued first")
            async let live = client.acquire("relayed", ttl: .seconds(10), wait: .seconds(60))
            #expect(try await waitForQueues({ $0.allSatisfy { $0.entries.count == 2 } }, within: .seconds(10)), "the live waiter queued behind it")
            kill(doomed.processIdentifier, SIGKILL)
            doomed.waitUntilExit()
            // Its entry is a lease its attempts renewed: with no more attempts it lapses soon,
            // not at its 300 s deadline.
            func lapse(_ entry: String) -> Int { Int(entry.split(separator: ":").last ?? "") ?? .max }
            let lapsed = try await waitForQueues({ $0.allSatisfy { $0.entries.first.map(lapse) ?? 0 < $0.now } }, within: .seconds(15))
            let left = try await queues().map(\.entries)
            #expect(lapsed, "the killed waiter's entry lapsed: \(left)")
            let clock = ContinuousClock()
            let released = clock.now
            try await client.release(holder)
            let lock = try await live
            #expect(clock.now - released < .seconds(3), "the release named the live waiter, not the dead one")
            try await client.release(lock)
            #expect(try await queues().allSatisfy { $0.entries.isEmpty }, "the lapsed entry was dropped and the winner left the queue")
            await client.shutdown()
        }
    }

    @Test func runWithPermitsLetsAtMostNCommandsRunAtOnce() async throws {
        try await withRedisServers(count: 3) { group throws in
            let masters = group.commaSeparated
            // Started without reading their output: `locklock(_:masters:)` blocks a thread of
            // the task pool until its process exits, and two of them would take both.
            let holders = try (0..<2).map { _ in
                try spawnLocklock(["run", "--permits", "2", "--lock", "jobs", "--ttl", "5s", "--", "sleep", "3"], masters: masters)
            }
            try await Task.sleep(for: .milliseconds(1500))
            let third = try await locklock(["run", "--permits", "2", "--lock", "jobs", "--ttl", "5s", "--", "true"], masters: masters)
            #expect(third.status == 75, "both permits are held: \(third.stderr)")
            let waited = try await locklock(
                ["run", "--permits", "2", "--lock", "jobs", "--ttl", "5s", "--wait", "20s", "--", "true"],
                masters: masters
            )
            #expect(waited.status == 0, "ran once a permit was released: \(waited.stderr)")
            for holder in holders {
                for _ in 0..<3000 where holder.isRunning { try await Task.sleep(for: .milliseconds(10)) }
                #expect(holder.terminationStatus == 0)
            }
        }
    }

    @Test func runAsLeaderWaitsForTheRoleAndPassesAHigherTermToTheCommand() async throws {
        try await withRedisServers(count: 3) { group throws in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("leader-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let script = { (name: String) in "echo $LOCKLOCK_FENCING_TOKEN > \(directory.path)/\(name); sleep 2" }
            let first = try spawnLocklock(
                ["run", "--leader", "--lock", "scheduler", "--ttl", "5s", "--", "sh", "-c", script("first")],
                masters: group.commaSeparated
            )
            try await Task.sleep(for: .milliseconds(800))
            let clock = ContinuousClock()
            let started = clock.now
            let second = try await locklock(
                ["run", "--leader", "--lock", "scheduler", "--ttl", "5s", "--", "sh", "-c", script("second")],
                masters: group.commaSeparated
            )
            #expect(second.status == 0, "\(second.stderr)")
            #expect(clock.now - started > .seconds(1), "it waited for the first leader to finish")
            for _ in 0..<3000 where first.isRunning { try await Task.sleep(for: .milliseconds(10)) }
            #expect(first.terminationStatus == 0)
            let terms = try ["first", "second"].map {
                Int64(try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
            }
            #expect(terms[0] != nil && terms[1] != nil)
            #expect((terms[1] ?? 0) > (terms[0] ?? 0), "terms increase across leaders")
            let impatient = try await locklock(
                ["run", "--leader", "--lock", "scheduler", "--ttl", "5s", "--permits", "2", "--", "true"],
                masters: group.commaSeparated
            )
            #expect(impatient.status != 0 && impatient.stderr.contains("do not go together"))
        }
    }

    @Test func aLeaderThatLosesTheRoleSendsSIGTERMThenSIGKILLAfterTheGrace() async throws {
        try await withRedisServers(count: 3) { group throws in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("grace-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let pidFile = directory.appendingPathComponent("pid").path
            // A command that ignores SIGTERM: only SIGKILL stops it.
            async let run = locklock(
                [
                    "run", "--leader", "--lock", "stubborn", "--ttl", "900ms", "--grace", "700ms", "--",
                    "sh", "-c", "trap '' TERM; echo $$ > \(pidFile); while true; do sleep 0.1; done",
                ],
                masters: group.commaSeparated
            )
            for _ in 0..<500 where !FileManager.default.fileExists(atPath: pidFile) { try await Task.sleep(for: .milliseconds(10)) }
            // Another process takes the role away on every master.
            for server in group.servers {
                let connection = RedisConnection(address: server.address)
                _ = try await connection.send("DEL", "redlock:lock:stubborn")
                await connection.close()
            }
            let clock = ContinuousClock()
            let deleted = clock.now
            let result = try await run
            #expect(result.status == 70, "\(result.stderr)")
            #expect(result.stderr.contains("sending SIGTERM"))
            #expect(result.stderr.contains("sending SIGKILL"), "the command ignored SIGTERM for longer than its grace")
            #expect(clock.now - deleted < .seconds(5))
            let pid = Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            #expect(pid > 0 && kill(pid, 0) != 0, "the command is gone")
        }
    }

    @Test func aLostLockStopsTheCommandsWholeProcessGroupNotOnlyItsShell() async throws {
        try await withRedisServers(count: 3) { group throws in
            let directory = try scratchDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let pidFile = directory.appendingPathComponent("sleep").path
            async let run = locklock(
                ["run", "--lock", "shell", "--ttl", "3s", "--", "sh", "-c", "sleep 40 > /dev/null 2>&1 & echo $! > \(pidFile); wait"],
                masters: group.commaSeparated
            )
            let sleeper = try await pid(from: pidFile)
            let flushed = ContinuousClock.now
            try await flush([group[0], group[1]])
            let result = try await run
            #expect(ContinuousClock.now - flushed < .seconds(10))
            #expect(result.status == 70, "\(result.stderr)")
            #expect(try await waitUntilGone(sleeper, within: .seconds(5)), "the shell's child outlived the lock")
            if isRunning(sleeper) { kill(sleeper, SIGKILL) }
        }
    }

    @Test func afterALostLockTheCommandIsKilledByTheEndOfValidityWhateverTheGrace() async throws {
        try await withRedisServers(count: 3) { group throws in
            let directory = try scratchDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let pidFile = directory.appendingPathComponent("stubborn").path
            async let run = locklock(
                [
                    "run", "--lock", "slow-exit", "--ttl", "3s", "--grace", "20s", "--",
                    "sh", "-c", "trap '' TERM; echo $$ > \(pidFile); while true; do sleep 0.1; done",
                ],
                masters: group.commaSeparated
            )
            let stubborn = try await pid(from: pidFile)
            let flushed = ContinuousClock.now
            try await flush([group[0], group[1]])
            let result = try await run
            // The last extension before the flush left at most the TTL of validity.
            #expect(ContinuousClock.now - flushed < .milliseconds(4500), "SIGKILL waited for the grace, past the validity")
            #expect(result.status == 70, "\(result.stderr)")
            #expect(result.stderr.contains("validity ended, sending SIGKILL"), "\(result.stderr)")
            #expect(try await waitUntilGone(stubborn, within: .seconds(2)))
        }
    }

    @Test(arguments: [SIGTERM, SIGINT, SIGHUP])
    func aStopSignalReachesTheCommandsGroupAndTheLockIsReleasedAfterIt(signal: Int32) async throws {
        try await withRedisServers(count: 3) { group throws in
            let directory = try scratchDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let pidFile = directory.appendingPathComponent("sleep").path
            let run = try spawnLocklock(
                ["run", "--lock", "stoppable", "--ttl", "30s", "--", "sh", "-c", "sleep 40 & echo $! > \(pidFile); wait"],
                masters: group.commaSeparated
            )
            let sleeper = try await pid(from: pidFile)
            kill(run.processIdentifier, signal)
            for _ in 0..<500 where run.isRunning { try await Task.sleep(for: .milliseconds(20)) }
            #expect(!run.isRunning, "run exits once the command has")
            #expect(run.terminationStatus == 128 + signal, "the command's own status: ended by the signal")
            #expect(try await waitUntilGone(sleeper, within: .seconds(2)), "the signal reached the shell's child too")
            let observer = Redlock(masters: group.addresses, configuration: .init(retry: .never))
            #expect(try await observer.inspect("stoppable").isHeld == false, "released, not left to expire")
            await observer.shutdown()
            if run.isRunning { run.terminate() }
        }
    }

    @Test func theCommandDiesWithRunEvenWhenRunIsKilled() async throws {
        try await withRedisServers(count: 3) { group throws in
            let directory = try scratchDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let pidFile = directory.appendingPathComponent("shell").path
            let run = try spawnLocklock(
                [
                    "run", "--lock", "orphan", "--ttl", "30s", "--", "sh", "-c",
                    "trap '' TERM HUP; echo $$ > \(pidFile); while true; do sleep 0.1; done",
                ],
                masters: group.commaSeparated
            )
            let shell = try await pid(from: pidFile)
            // Long enough for the supervisor thread to outlive any idle-thread reaping.
            try await Task.sleep(for: .seconds(1))
            #expect(isRunning(shell))
            kill(run.processIdentifier, SIGKILL)
            run.waitUntilExit()
            #expect(try await waitUntilGone(shell, within: .seconds(2)), "the command outlived a killed run")
            if isRunning(shell) { kill(shell, SIGKILL) }
        }
    }

    @Test func theCommandsWholeGroupDiesWithRunEvenWhenRunIsKilled() async throws {
        try await withRedisServers(count: 3) { group throws in
            let directory = try scratchDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let pidFile = directory.appendingPathComponent("grandchild").path
            // The shell's child is not run's: the kernel's parent-death signal reaches only the shell.
            let run = try spawnLocklock(
                ["run", "--lock", "orphaned-group", "--ttl", "30s", "--", "sh", "-c", "sleep 300 & echo $! > \(pidFile); wait"],
                masters: group.commaSeparated
            )
            let grandchild = try await pid(from: pidFile)
            try await Task.sleep(for: .seconds(1))
            #expect(isRunning(grandchild))
            kill(run.processIdentifier, SIGKILL)
            // Before waiting for run: the grandchild holds a descriptor Process waits on.
            #expect(try await waitUntilGone(grandchild, within: .seconds(2)), "the command's child outlived a killed run")
            if isRunning(grandchild) { kill(grandchild, SIGKILL) }
            run.waitUntilExit()
        }
    }

    @Test(.enabled(if: canMakePIDNamespaces(), "needs unshare --pid (root)"))
    func asPID1RunReapsTheOrphansItInherits() async throws {
        try await withRedisServers(count: 3) { group throws in
            // In a PID namespace of its own `run` is PID 1: the subshell's `sleep` is orphaned to
            // it, and left unreaped it would stay a zombie that the command counts.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = [
                "--pid", "--fork", "--mount-proc", locklockExecutable().path, "run", "--lock", "init", "--ttl", "5s", "--",
                "sh", "-c", "(sleep 0.2 &); sleep 1; grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l",
            ]
            process.environment = ProcessInfo.processInfo.environment.merging(["LOCKLOCK_MASTERS": group.commaSeparated]) { $1 }
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "zombies left unreaped: \(output)")
        }
    }

    @Test func oneServerUnderTwoAddressesIsRefusedByRun() async throws {
        try await withRedisServers(count: 2) { group throws in
            let masters = "127.0.0.1:\(group[0].port),localhost:\(group[0].port),127.0.0.1:\(group[1].port)"
            let result = try await locklock(["run", "--lock", "twice", "--ttl", "5s", "--", "true"], masters: masters)
            #expect(result.status == 64, "\(result.stderr)")
            #expect(result.stderr.contains("are the same server"), "\(result.stderr)")
        }
    }

    @Test func aNewServeProcessHonoursTheHoldOutOfARunningOneAndSaysWhyAndUntilWhen() async throws {
        try await withRedisServers(count: 3) { group throws in
            let first = try FreePort.pick()
            let nightly = UUID().uuidString.lowercased()
            try await withServe(["--max-expires-in", "60", "--anonymous-rate", "0"], port: first, masters: group.commaSeparated) { _ in
                let held = try await postLock(port: first, nightly, expiresIn: 60)
                #expect(held.status == 201, "\(held.text)")
                for index in 0..<2 { try await group[index].restart() }
                let rival = try await postLock(port: first, nightly, expiresIn: 5)
                #expect(rival.status == 503, "\(rival.text)")
                // A second process, as a deploy or a crash starts one.
                let second = try FreePort.pick()
                try await withServe(["--max-expires-in", "60", "--anonymous-rate", "0"], port: second, masters: group.commaSeparated) { _ in
                    // Once its first contact with the masters has read the other's decision.
                    for _ in 0..<250 {
                        if try await loopbackRequest(port: second, "GET", "/readyz").text.contains("held out for") { break }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    let again = try await postLock(port: second, nightly, expiresIn: 5)
                    #expect(again.status == 503, "the new process trusted masters the first holds out: \(again.text)")
                    #expect(again.text.contains("held out"), "\(again.text)")
                    let retryAfter = Int(again.header("Retry-After") ?? "") ?? 0
                    #expect(retryAfter > 30, "Retry-After names when a quorum is back, not 1: \(retryAfter)")
                    let ready = try await loopbackRequest(port: second, "GET", "/readyz")
                    #expect(ready.status == 503)
                    #expect(ready.text.contains("master 1 of 3 held out for"), "\(ready.text)")
                }
                let masters = try await locklock(["masters"], masters: group.commaSeparated)
                #expect(masters.status == 69, "no quorum votes: \(masters.stdout)")
                #expect(masters.stdout.contains("\(group[0].hostAndPort)  held out for"), "\(masters.stdout)")
                #expect(masters.stdout.contains("\(group[2].hostAndPort)  voting"), "\(masters.stdout)")
                #expect(masters.stdout.contains("1 of 3 vote; 2 needed"), "\(masters.stdout)")
            }
        }
    }

    @Test(.enabled(if: FakeClock.isAvailable, "needs libfaketime"))
    func aMastersClockSteppedAheadAfterItsRestartDoesNotShortenTheHoldOut() async throws {
        let directory = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let clocks = (0..<2).map { directory.appendingPathComponent("clock-\($0)").path }
        for clock in clocks { try "+0".write(toFile: clock, atomically: true, encoding: .utf8) }
        var servers: [RedisServer] = []
        defer { for server in servers { Task { await server.shutdown() } } }
        for clock in clocks { servers.append(try await RedisServer.start(options: FakeClock.offset(readFrom: clock))) }
        servers.append(try await RedisServer.start())
        let masters = servers.map(\.hostAndPort).joined(separator: ",")
        let port = try FreePort.pick()
        let nightly = UUID().uuidString.lowercased()
        try await withServe(["--max-expires-in", "60", "--anonymous-rate", "0"], port: port, masters: masters) { serve in
            let held = try await postLock(port: port, nightly, expiresIn: 60)
            #expect(held.status == 201, "\(held.text)")
            // The server process sees the masters again only once their clocks have stepped,
            // as after a boot that NTP then corrects: their uptime jumps by an hour.
            kill(serve.processIdentifier, SIGSTOP)
            for index in 0..<2 { try await servers[index].restart() }
            for clock in clocks { try "+3600".write(toFile: clock, atomically: true, encoding: .utf8) }
            let uptime = try await direct(servers[0]).send("INFO", "server").string ?? ""
            #expect(uptime.contains("uptime_in_seconds:36"), "the clock stepped: \(uptime)")
            kill(serve.processIdentifier, SIGCONT)
            try await waitUntilServing(port: port, path: "/livez")
            let rival = try await postLock(port: port, nightly, expiresIn: 5)
            #expect(rival.status == 503, "a stepped clock let a master that lost the lock vote: \(rival.text)")
        }
    }

    @Test func aRollingRestartWithOnlyShortLocksLiveStaysAvailableAtServesDefaults() async throws {
        try await withRedisServers(count: 3) { group throws in
            let port = try FreePort.pick()
            try await withServe(["--anonymous-rate", "0"], port: port, masters: group.commaSeparated) { _ in
                var statuses: [Int] = []
                for index in 0..<3 {
                    let lock = try await postLock(port: port, UUID().uuidString.lowercased(), expiresIn: 2)
                    statuses.append(lock.status)
                    try await group[index].restart()
                    // Longer than the 2 s locks, with headroom and drift: the restarted master
                    // has rejoined before the next one goes down.
                    try await Task.sleep(for: .seconds(4))
                }
                let after = try await postLock(port: port, UUID().uuidString.lowercased(), expiresIn: 2)
                statuses.append(after.status)
                #expect(statuses == [201, 201, 201, 201], "\(statuses)")
                let masters = try await locklock(["masters"], masters: group.commaSeparated)
                #expect(masters.status == 0, "\(masters.stdout)")
                #expect(masters.stdout.contains("3 of 3 vote"), "\(masters.stdout)")
            }
        }
    }

    @Test func serveRefusesToStartOverAMasterThatRefusesINFO() async throws {
        let user = ["--user", "locker", "on", ">s3cret", "~*", "&*", "+@all", "-info"]
        try await withRedisServers(count: 3, options: .init(extraArguments: user)) { group throws in
            let masters = group.servers.map { "redis://locker:s3cret@127.0.0.1:\($0.port)" }.joined(separator: ",")
            let result = try await locklock(["serve", "--port", String(try FreePort.pick())], masters: masters)
            #expect(result.status != 0)
            #expect(result.stderr.contains("INFO refused"), "\(result.stderr)")
            #expect(!result.stderr.contains("s3cret"), "the password stays out of the message")
        }
    }

    @Test(arguments: [
        (
            ["run", "--lock", "far", "--ttl", "100ms", "--instance-timeout", "50ms", "--", "true"],
            "--instance-timeout 0.05 seconds leaves no validity"
        ),
        (["acquire", "--lock", "far", "--ttl", "1s", "--instance-timeout", "0ms"], "The value '0ms' is invalid for '--instance-timeout"),
        (["serve", "--port", "0", "--max-expires-in", "0.2", "--instance-timeout", "150ms"], "leaves no validity of a --max-expires-in"),
    ])
    func theInstanceTimeoutIsValidatedAgainstTheTTL(arguments: [String], message: String) async throws {
        let result = try await locklock(arguments, masters: "127.0.0.1:6390,127.0.0.1:6391,127.0.0.1:6392")
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test func mastersFarAwayVoteWithALongerInstanceTimeoutFromTheEnvironment() async throws {
        // Each master behind a proxy that holds every chunk back 80 ms: the 50 ms default fails
        // every vote.
        try await withRedisServers(count: 3) { group throws in
            var delays: [FaultProxy] = []
            for server in group.servers {
                let proxy = try await FaultProxy.start(upstreamPort: server.port)
                proxy.set(.latency(.milliseconds(80)))
                delays.append(proxy)
            }
            defer { for proxy in delays { Task { await proxy.stop() } } }
            let masters = delays.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
            let near = try await locklock(["acquire", "--lock", "far", "--ttl", "5s"], masters: masters)
            #expect(near.status == 69, "\(near.stderr)")
            let far = try await locklock(
                ["acquire", "--lock", "far", "--ttl", "5s"],
                masters: masters,
                environment: ["LOCKLOCK_INSTANCE_TIMEOUT": "400ms"]
            )
            #expect(far.status == 0, "\(far.stderr)")
        }
    }

    @Test func acquireAndReleaseForShellScripts() async throws {
        try await withRedisServers(count: 3) { group throws in
            let acquired = try await locklock(["acquire", "--lock", "deploy", "--ttl", "30s"], masters: group.commaSeparated)
            #expect(acquired.status == 0)
            let token = acquired.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(token.hasPrefix("cli-"))
            #expect(try await locklock(["acquire", "--lock", "deploy", "--ttl", "30s"], masters: group.commaSeparated).status == 75)
            #expect(try await locklock(["release", "--lock", "deploy", "--token", "wrong"], masters: group.commaSeparated).status == 1)
            #expect(try await locklock(["release", "--lock", "deploy", "--token", token], masters: group.commaSeparated).status == 0)
            #expect(try await locklock(["release", "--lock", "deploy", "--token", token], masters: group.commaSeparated).status == 1)
        }
    }

    @Test(arguments: ["serve", "dev", "run", "acquire", "release", "hash-key", "masters"])
    func helpShowsDefaultsAsAPersonWouldTypeThem(subcommand: String) async throws {
        let help = try await locklock([subcommand, "--help"], masters: "127.0.0.1:6390")
        #expect(help.status == 0)
        #expect(!help.stdout.contains("DurationArgument"), "\(help.stdout)")
        #expect(!help.stdout.contains("Optional("), "\(help.stdout)")
    }

    @Test func acquireAndReleaseOverMutualTLSWithThePasswordFromAFile() async throws {
        let certificates = try TestCertificates.makeAuthority()
        defer { certificates.remove() }
        let client = try certificates.issue("locklock-client", clientAuthentication: true)
        let passwordFile = certificates.directory.appendingPathComponent("redis-password")
        try "s3cret\n".write(to: passwordFile, atomically: true, encoding: .utf8)
        let options = RedisServerOptions(tls: try certificates.listener(requiresClientCertificates: true))
        try await withRedisServers(count: 3, options: options) { group throws in
            for master in group.servers {
                let admin = RedisConnection(address: master.address)
                _ = try await admin.send("CONFIG", "SET", "requirepass", "s3cret")
                await admin.close()
            }
            let masters = group.servers.compactMap(\.tlsPort).map { "rediss://localhost:\($0)" }.joined(separator: ",")
            let tls = [
                "--redis-tls-ca", certificates.caCertificate, "--redis-tls-cert", client.certificate, "--redis-tls-key", client.key,
                "--redis-password-file", passwordFile.path,
            ]
            let acquired = try await locklock(["acquire", "--lock", "deploy", "--ttl", "30s"] + tls, masters: masters)
            #expect(acquired.status == 0, "\(acquired.stderr)")
            let token = acquired.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await locklock(["release", "--lock", "deploy", "--token", token] + tls, masters: masters).status == 0)
            // Without the client certificate, the masters refuse: unavailable, not a crash.
            let refused = try await locklock(
                ["acquire", "--lock", "deploy", "--redis-tls-ca", certificates.caCertificate, "--redis-password-file", passwordFile.path],
                masters: masters
            )
            #expect(refused.status == 69, "\(refused.stderr)")
            #expect(!refused.stderr.contains("s3cret"))
        }
    }

    @Test(arguments: [
        (["--anonymous-rate=-1"], "--anonymous-rate must be 0 (off) or more"),
        (["--pro-rate=-5"], "--pro-rate must be 0 (off) or more"),
        (["--max-expires-in", "1e300"], "--max-expires-in must be between"),
        (["--max-expires-in", "0"], "--max-expires-in must be between"),
        (["--max-wait", "1e300"], "--max-wait must be between"),
        (["--anonymous-waiters", "0"], "--anonymous-waiters must be 1 or more"),
        (["--max-connections", "0"], "--max-connections must be 1 or more"),
        (["--event-loops", "0"], "--event-loops must be between 1 and 1024"),
        (["--secret-key-file", "/dev/null"], "the secret key must be at least 32 bytes"),
        (["--trusted-proxy", "10.0.0.0/33"], "--trusted-proxy takes an address or a CIDR network"),
    ])
    func serveRefusesLimitsItCannotApply(arguments: [String], message: String) async throws {
        let result = try await locklock(["serve", "--port", "0"] + arguments, masters: "127.0.0.1:6390")
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test func aMasterListedTwiceIsRefused() async throws {
        let result = try await locklock(["acquire", "--lock", "dup"], masters: "127.0.0.1:6390,127.0.0.1:6391,127.0.0.1:6390")
        #expect(result.status != 0)
        #expect(result.stderr.contains("master 127.0.0.1:6390 is listed twice"), "\(result.stderr)")
    }

    @Test func serveRefusesTenantsWhoseRegionIsNotDefined() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("locklock-test-tenants-\(UUID().uuidString).json")
        try
            #"{"tenants":[{"name":"euro","plan":"pro","key_sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","region":"eu"}]}"#
            .write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try await locklock(["serve", "--tenants", file.path, "--port", "0"], masters: "127.0.0.1:6379")
        #expect(result.status != 0)
        #expect(result.stderr.contains("tenants name regions with no --region: eu"))
    }

    @Test func logsGoToStandardErrorAtTheLevelLocklockLogLevelNames() async throws {
        // Port 1 refuses connections at once: the wire layer logs a warning and the
        // acquisition fails; standard output, the lock value's channel, stays empty.
        let noisy = try await locklock(["acquire", "--lock", "logs", "--ttl", "1s"], masters: "127.0.0.1:1")
        #expect(noisy.status != 0)
        #expect(noisy.stdout.isEmpty)
        #expect(noisy.stderr.contains("warning redlock:"), "stderr: \(noisy.stderr)")
        #expect(noisy.stderr.contains("redis.address=127.0.0.1:1"))
        #expect(noisy.stderr.contains("server unreachable"))
        let quiet = try await locklock(
            ["acquire", "--lock", "logs", "--ttl", "1s"],
            masters: "127.0.0.1:1",
            environment: ["LOCKLOCK_LOG_LEVEL": "error"]
        )
        #expect(quiet.status == noisy.status)
        #expect(!quiet.stderr.contains("server unreachable"), "stderr: \(quiet.stderr)")
    }

    @Test func serveDropsTheFencesOfNamesUnusedForTheRetentionItIsGiven() async throws {
        // One fence per distinct lock name: with fresh UUIDs that is one per POST, so the
        // retention is what bounds the masters' memory.
        try await withRedisServers(count: 3) { group throws in
            let port = try FreePort.pick()
            try await withServe(["--anonymous-rate", "0", "--fencing-retention", "2s"], port: port, masters: group.commaSeparated) { _ in
                func post() async throws -> (name: String, token: Int) {
                    let name = UUID().uuidString.lowercased()
                    let created = try await loopbackRequest(
                        port: port,
                        "POST",
                        "/v1/api/lock/uuid/\(name)",
                        body: #"{"expires_in":30}"#,
                        headers: ["Content-Type": "application/json"]
                    )
                    #expect(created.status == 201, "\(created.text)")
                    return ("redlock:lock:u:\(name)", try #require(created.json?["fencing_token"] as? Int))
                }
                func fences() async throws -> [[String]] {
                    var all: [[String]] = []
                    for master in group.servers {
                        let connection = RedisConnection(address: master.address)
                        all.append(try await connection.send("ZRANGE", "redlock:fences", "0", "-1", "WITHSCORES").array?.compactMap(\.string) ?? [])
                        await connection.close()
                    }
                    return all
                }
                let old = try await post()
                #expect(try await fences().allSatisfy { $0 == [old.name, "\(old.token)"] }, "each master keeps the name's fence at its token")
                try await Task.sleep(for: .seconds(3))
                let new = try await post()
                // The next fenced acquisition after the retention prunes (without waiting for it).
                var left: [[String]] = []
                for _ in 0..<100 {
                    left = try await fences()
                    if left.allSatisfy({ $0 == [new.name, "\(new.token)"] }) { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(left.allSatisfy { $0 == [new.name, "\(new.token)"] }, "\(left)")
            }
        }
    }

    @Test func serveWarnsAtStartAboutMastersThatMayEvictKeys() async throws {
        try await withRedisServers(count: 3, options: .init(extraArguments: ["--maxmemory-policy", "volatile-lru"])) { group throws in
            let log = try await withServe([], port: try FreePort.pick(), masters: group.commaSeparated, readyPath: "/readyz") { _ in
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(log.contains("primary: 3 of 3 masters may evict keys (maxmemory-policy volatile-lru)"), "\(log)")
        }
    }

    @Test func serveWarnsAtStartWhenTheDelayedRejoinIsOffOverMastersThatForgetOnRestart() async throws {
        try await withRedisServers(count: 3) { group throws in
            let warning = "primary: 3 of 3 masters do not fsync every write (appendfsync always) and the delayed rejoin is off"
            let off = try await withServe(["--no-delayed-rejoin"], port: try FreePort.pick(), masters: group.commaSeparated, readyPath: "/readyz") {
                _ in
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(off.contains(warning), "\(off)")
            let on = try await withServe([], port: try FreePort.pick(), masters: group.commaSeparated, readyPath: "/readyz") { _ in
                try await Task.sleep(for: .milliseconds(300))
            }
            #expect(!on.contains("do not fsync every write"), "the default delayed rejoin protects: \(on)")
        }
    }

    @Test func devAnswersOnlyToLoopbackNamesAgainstDNSRebinding() async throws {
        let port = try FreePort.pick()
        let dev = try spawnLocklock(["dev", "--port", "\(port)"], masters: "")
        defer {
            dev.terminate()
            dev.waitUntilExit()
        }
        try await waitUntilServing(port: port, path: "/livez")
        func status(host: String) throws -> String {
            let client = try RawConnection(port: port)
            try client.send("GET /livez HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            return String(client.waitForClose(within: .seconds(3)).received.prefix(12))
        }
        for host in ["localhost:\(port)", "127.0.0.1:\(port)", "[::1]:\(port)"] { #expect(try status(host: host) == "HTTP/1.1 200", "\(host)") }
        #expect(try status(host: "rebound.attacker.example:\(port)") == "HTTP/1.1 421")
    }

    @Test func aClientThatHangsUpWhileWaitingIsCountedAs499Not503() async throws {
        try await withRedisServers(count: 3) { group throws in
            let port = try FreePort.pick()
            try await withServe([], port: port, masters: group.commaSeparated, readyPath: "/readyz") { _ in
                let path = "/v1/api/lock/uuid/\(UUID().uuidString.lowercased())"
                #expect(try await loopbackRequest(port: port, "POST", path).status == 201)
                let waiter = try RawConnection(port: port)
                let body = #"{"wait":20}"#
                try waiter.send(
                    "POST \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                )
                try await Task.sleep(for: .milliseconds(500))
                waiter.hangUp()
                var lines: [Substring] = []
                for _ in 0..<50 {
                    try await Task.sleep(for: .milliseconds(100))
                    let metrics = try await loopbackRequest(port: port, "GET", "/metrics").text
                    lines = metrics.split(separator: "\n").filter { $0.hasPrefix("hb_requests{") && $0.contains(#"http_request_method="POST""#) }
                    if lines.contains(where: { $0.contains(#"http_response_status_code="499""#) }) { break }
                }
                #expect(lines.contains { $0.contains(#"http_response_status_code="499""#) }, "\(lines)")
                #expect(!lines.contains { $0.contains(#"http_response_status_code="503""#) }, "\(lines)")
            }
        }
    }

    @Test func metricsOnThePublicAddressNameMastersByPlaceNotByAddress() async throws {
        try await withRedisServers(count: 3) { group throws in
            let port = try FreePort.pick()
            try await withServe([], port: port, masters: group.commaSeparated, readyPath: "/readyz") { _ in
                // A master that fails a command shows in the error counters, labelled.
                await group.servers[2].kill9()
                for _ in 0..<3 { _ = try await loopbackRequest(port: port, "POST", "/v1/api/lock/uuid/\(UUID().uuidString.lowercased())") }
                let metrics = try await loopbackRequest(port: port, "GET", "/metrics")
                #expect(metrics.status == 200)
                let labelled = metrics.text.split(separator: "\n").filter { $0.hasPrefix("redlock_master_errors_total") }
                #expect(!labelled.isEmpty, "a master error was counted")
                #expect(labelled.allSatisfy { $0.contains(#"master="3""#) }, "by its place in the list: \(labelled)")
                for server in group.servers {
                    #expect(!metrics.text.contains(server.hostAndPort), "an internal address on the public port: \(server.hostAndPort)")
                }
            }
        }
    }

    @Test func metricsCanBeServedOnTheirOwnAddressAndCarryTheGroup() async throws {
        try await withRedisServers(count: 3) { primary throws in
            try await withRedisServers(count: 3) { region throws in
                let port = try FreePort.pick()
                let metricsPort = try FreePort.pick()
                let arguments = ["--metrics-port", "\(metricsPort)", "--region", "eu=\(region.commaSeparated)"]
                try await withServe(arguments, port: port, masters: primary.commaSeparated, readyPath: "/readyz") { _ in
                    let created = try await loopbackRequest(port: port, "POST", "/v1/api/lock/uuid/\(UUID().uuidString.lowercased())")
                    #expect(created.status == 201)
                    #expect(try await loopbackRequest(port: port, "GET", "/metrics").status == 404, "not on the public address")
                    let metrics = try await loopbackRequest(port: metricsPort, "GET", "/metrics")
                    #expect(metrics.status == 200)
                    let series = #"redlock_outcomes_total{group="primary",operation="acquire",outcome="acquired"} 1"#
                    #expect(metrics.text.contains(series), "\(metrics.text.split(separator: "\n").filter { $0.contains("redlock_outcomes") })")
                    let requests = #"hb_requests{http_route="/v1/api/lock/uuid/{name}",http_request_method="POST",http_response_status_code="201"} 1"#
                    #expect(metrics.text.contains(requests), "\(metrics.text.split(separator: "\n").filter { $0.contains("hb_requests") })")
                }
            }
        }
    }

    @Test(arguments: [1, 3])
    func serveRunsOnAsManyEventLoopsAsItIsGiven(loops: Int) async throws {
        try await withRedisServers(count: 3) { group throws in
            let port = try FreePort.pick()
            try await withServe(["--event-loops", "\(loops)", "--metrics-port", "\(try FreePort.pick())"], port: port, masters: group.commaSeparated)
            {
                server in
                let created = try await loopbackRequest(port: port, "POST", "/v1/api/lock/uuid/\(UUID().uuidString.lowercased())")
                #expect(created.status == 201)
                let threads = try threadNames(of: server.processIdentifier)
                #expect(threads.filter { $0.hasPrefix("NIO-ELT-") }.count == loops, "\(threads)")
                // The masters' connections, the API and /metrics all run on those loops.
                #expect(!threads.contains { $0.hasPrefix("NIO-SGLTN-") }, "\(threads)")
            }
        }
    }

    @Test func serveTakesItsOptionsFromTheEnvironmentAndTheCommandLineWins() async throws {
        let fromEnvironment = try await locklock(["serve"], masters: "127.0.0.1:1", environment: ["LOCKLOCK_ANONYMOUS_RATE": "-1"])
        #expect(fromEnvironment.status != 0)
        #expect(fromEnvironment.stderr.contains("--anonymous-rate must be 0 (off) or more, not -1"), "\(fromEnvironment.stderr)")
        let overridden = try await locklock(
            ["serve", "--anonymous-rate", "5", "--max-wait", "1e300"],
            masters: "127.0.0.1:1",
            environment: ["LOCKLOCK_ANONYMOUS_RATE": "-1"]
        )
        #expect(overridden.stderr.contains("--max-wait must be between"), "the flag's 5 was used, not the environment's -1: \(overridden.stderr)")
        let repeated = try await locklock(["serve"], masters: "127.0.0.1:1", environment: ["LOCKLOCK_TRUSTED_PROXY": "10.0.0.0/8;bad"])
        #expect(repeated.stderr.contains("--trusted-proxy takes an address or a CIDR network, not 'bad'"), "\(repeated.stderr)")
        // The masters' connection options too (the bad rate makes serve stop either way).
        let masterOption = try await locklock(
            ["serve"],
            masters: "127.0.0.1:1",
            environment: ["LOCKLOCK_REDIS_TLS_CA": "/nonexistent/ca.pem", "LOCKLOCK_ANONYMOUS_RATE": "-1"]
        )
        #expect(masterOption.stderr.contains("cannot read /nonexistent/ca.pem"), "\(masterOption.stderr)")
    }

    @Test func hashKeyPrintsTheTenantsFileHash() async throws {
        let result = try await locklock(["hash-key", "abc"], masters: "")
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
