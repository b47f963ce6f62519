#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process (the command of `locklock run`, a chaos client), spawned with a clean
/// signal mask.
///
/// Foundation's `Process` spawns from a Swift-concurrency thread whose signal mask blocks
/// most signals, and the child inherits it: a SIGTERM sent when the lock is lost would stay
/// pending forever. posix_spawn with an empty mask and default dispositions avoids that.
public struct ChildProcess: Sendable {
    /// The process id.
    public let pid: pid_t

    /// Spawns `arguments[0]` (looked up on PATH) with the given arguments, inheriting stdio.
    public static func spawn(_ arguments: [String]) throws -> ChildProcess {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], nil, &attributes, argv, environ)
        guard result == 0 else { throw ChildProcessError(message: "cannot run \(arguments[0]): \(String(cString: strerror(result)))") }
        return ChildProcess(pid: pid)
    }

    /// Sends SIGTERM.
    public func terminate() { kill(pid, SIGTERM) }

    /// Sends `signal` (SIGSTOP, SIGCONT, SIGKILL, ...).
    public func send(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the command to exit: its exit status, or 128 + the signal that ended it.
    /// Waits at most `timeout` when given; nil if it has not exited by then or the calling
    /// task is cancelled (the process is left running).
    public func wait(timeout: Duration? = nil) async -> Int32? {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { return 1 }
            if let deadline, ContinuousClock.now >= deadline { return nil }
            do {
                try await Task.sleep(for: .milliseconds(20))
            } catch {
                return nil  // cancelled: without this the loop would spin
            }
        }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }
}

/// A command that could not be started.
public struct ChildProcessError: Error, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    /// A readable summary, for logs and messages.
    public var description: String { message }
}
