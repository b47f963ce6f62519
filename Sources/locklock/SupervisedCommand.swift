import CSupervisedSpawn
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The command of `locklock run`, supervised so that it cannot outlive the lock.
///
/// - It leads a process group of its own, and every signal goes to the whole group, so a
///   shell's children stop with the shell.
/// - On Linux it gets SIGKILL from the kernel if `run` dies (even of SIGKILL). The kernel sends
///   it when the thread that forked exits, so a thread of its own forks and then waits for the
///   command, living exactly as long as it. That reaches the command alone; a guard process,
///   told by the kernel in the same way, kills the rest of its group (a shell's children).
/// - As PID 1 (in a container), that thread also reaps every orphan the kernel hands over.
/// - A terminal's foreground is handed to the command while it runs, so an interactive command
///   can read the terminal and Ctrl-C reaches it directly.
final class SupervisedCommand: Sendable {
    /// The command's pid, which is also its process group's id.
    let pid: pid_t
    private let exit = Mutex<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))
    private let terminal: Int32?

    private init(pid: pid_t, terminal: Int32?) {
        self.pid = pid
        self.terminal = terminal
    }

    /// Starts `arguments[0]` (looked up on PATH) with the rest as its arguments, inheriting
    /// standard input, output, error and the environment, with `defaults` (the signals this
    /// process catches or ignores for itself) back at their default disposition.
    static func start(_ arguments: [String], defaults: [Int32]) async throws(SupervisedCommandError) -> SupervisedCommand {
        let started: Result<SupervisedCommand, SupervisedCommandError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                let argv = arguments.map { strdup($0) } + [nil]
                var reset = sigset_t()
                sigemptyset(&reset)
                for number in defaults { sigaddset(&reset, number) }
                var error: Int32 = 0
                let pid = locklock_supervised_spawn(arguments[0], argv, &reset, 1, &error)
                for pointer in argv { free(pointer) }
                guard pid > 0 else {
                    continuation.resume(returning: .failure(SupervisedCommandError(arguments[0], errno: error)))
                    return
                }
                let guardian = locklock_group_guard(pid, &error)
                let command = SupervisedCommand(pid: pid, terminal: Self.handTerminal(to: pid))
                continuation.resume(returning: .success(command))
                let status = Self.reap(pid)
                if guardian > 0 {
                    // The command is gone and `run` lives: whatever it left behind may run on.
                    kill(guardian, SIGKILL)
                    while waitpid(guardian, nil, 0) < 0 && errno == EINTR {}
                }
                command.finish(status)
            }
            thread.name = "locklock-run-supervisor"
            thread.start()
        }
        return try started.get()
    }

    /// Sends `signal` to every process of the command's group.
    func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// Waits for the command to exit: its exit status, or 128 + the signal that ended it.
    func status() async -> Int32 {
        await withCheckedContinuation { continuation in
            let known: Int32? = exit.withLock { state in
                if let status = state.status { return status }
                state.waiters.append(continuation)
                return nil
            }
            if let known { continuation.resume(returning: known) }
        }
    }

    private func finish(_ status: Int32) {
        if let terminal { Self.takeTerminalBack(terminal) }
        let waiters = exit.withLock { state in
            state.status = status
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    /// Blocks until `pid` exits; as PID 1, reaps every other child on the way.
    private static func reap(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        let reapsOrphans = getpid() == 1
        while true {
            let reaped = waitpid(reapsOrphans ? -1 : pid, &status, 0)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { return 1 }
        }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// When standard input is a terminal whose foreground is this process's group, gives the
    /// foreground to `group` and returns the file descriptor to take it back through.
    private static func handTerminal(to group: pid_t) -> Int32? {
        guard isatty(STDIN_FILENO) == 1, tcgetpgrp(STDIN_FILENO) == getpgrp() else { return nil }
        let previous = signal(SIGTTOU, SIG_IGN)
        defer { signal(SIGTTOU, previous) }
        return tcsetpgrp(STDIN_FILENO, group) == 0 ? STDIN_FILENO : nil
    }

    private static func takeTerminalBack(_ terminal: Int32) {
        let previous = signal(SIGTTOU, SIG_IGN)
        defer { signal(SIGTTOU, previous) }
        tcsetpgrp(terminal, getpgrp())
    }
}

/// A command that could not be started.
struct SupervisedCommandError: Error, CustomStringConvertible {
    /// What went wrong, with the command's name.
    var description: String

    init(_ command: String, errno: Int32) {
        description = "cannot run \(command): \(String(cString: strerror(errno)))"
    }
}

/// The signals that ask `run` to stop (SIGTERM, SIGINT, SIGHUP), caught instead of ending the
/// process, so that they can be passed on to the command and the lock released after it. One
/// that was already ignored when `run` started (SIGHUP under `nohup`) stays ignored, for the
/// command too.
final class StopSignals: Sendable {
    private let sources: Mutex<[any DispatchSourceSignal]>
    /// Each signal as it arrives.
    let received: AsyncStream<Int32>
    /// The signals the command must get back at their default disposition: the ones caught
    /// here, and those the Swift runtime and SwiftNIO ignore for themselves.
    let commandDefaults: [Int32]

    init(_ signals: [Int32] = [SIGTERM, SIGINT, SIGHUP]) {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        received = stream
        let caught = signals.filter { locklock_signal_is_ignored($0) == 0 }
        commandDefaults = caught + [SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2]
        sources = Mutex(
            caught.map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { continuation.yield(number) }
                source.resume()
                return source
            }
        )
    }

    /// Stops catching: the signals end the process again.
    func restore() {
        sources.withLock { sources in
            for source in sources {
                source.cancel()
                signal(Int32(source.handle), SIG_DFL)
            }
        }
    }

    /// The signal's usual name, such as "SIGTERM".
    static func name(_ number: Int32) -> String {
        switch number {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGHUP: "SIGHUP"
        case SIGKILL: "SIGKILL"
        default: "signal \(number)"
        }
    }
}
