import Testing

/// Marks a suite or test whose cases start real `redis-server` processes.
///
/// Such cases run one at a time across the whole test run, whatever `swift test`'s own
/// parallelism: several suites each starting 3-5 servers at once on a 2-core machine push
/// command latencies past Redlock's 50 ms instance timeout and the timing assertions of
/// auto-extension and validity tests. Tests without the trait still run in parallel.
public struct RealRedisServers: SuiteTrait, TestTrait, TestScoping {
    /// The trait applies to every test of a suite it marks.
    public var isRecursive: Bool { true }

    /// Only concrete test cases take the gate; suites and functions pass through, so a suite's
    /// scope never holds the gate its own cases wait for.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    /// Runs `function` once the gate admits it, and leaves the gate afterwards.
    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        await OneAtATime.shared.enter()
        do {
            try await function()
        } catch {
            await OneAtATime.shared.leave()
            throw error
        }
        await OneAtATime.shared.leave()
    }
}

extension Trait where Self == RealRedisServers {
    /// The cases start real `redis-server` processes: run them one at a time (see ``RealRedisServers``).
    public static var realRedisServers: Self { Self() }
}

/// A process-wide gate with one holder at a time; waiters enter in arrival order.
actor OneAtATime {
    static let shared = OneAtATime()
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func enter() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        if waiting.isEmpty {
            held = false
        } else {
            waiting.removeFirst().resume()
        }
    }
}
