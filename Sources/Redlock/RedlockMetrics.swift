import Metrics

/// The client's swift-metrics instruments, created once so the hot path only records.
struct RedlockMetrics: @unchecked Sendable {
    // @unchecked: metric objects and factories are thread-safe by swift-metrics' contract
    // (MetricsFactory is not declared Sendable in 2.x).
    let attempts: Counter
    let acquired: Counter
    let held: Counter
    let unreachable: Counter
    let validityExhausted: Counter
    let extended: Counter
    let extendLost: Counter
    let released: Counter
    let releaseNotHeld: Counter
    let acquireLatency: Timer
    let masterLabels: [String]
    let factory: any MetricsFactory

    let dimensions: [(String, String)]

    init(masters: [String], factory: (any MetricsFactory)?, dimensions: [(String, String)] = []) {
        let factory = factory ?? MetricsSystem.factory
        self.factory = factory
        self.dimensions = dimensions
        attempts = Counter(label: "redlock_acquire_attempts_total", dimensions: dimensions, factory: factory)
        func outcome(_ operation: String, _ outcome: String) -> Counter {
            Counter(label: "redlock_outcomes_total", dimensions: dimensions + [("operation", operation), ("outcome", outcome)], factory: factory)
        }
        acquired = outcome("acquire", "acquired")
        held = outcome("acquire", "held")
        unreachable = outcome("acquire", "unreachable")
        validityExhausted = outcome("acquire", "validity_exhausted")
        extended = outcome("extend", "extended")
        extendLost = outcome("extend", "lost")
        released = outcome("release", "released")
        releaseNotHeld = outcome("release", "not_held")
        acquireLatency = Timer(label: "redlock_acquire_duration_seconds", dimensions: dimensions, factory: factory)
        masterLabels = masters
    }

    /// Counts one failed command on one master (rare path: the counter is looked up here).
    func masterError(_ index: Int, code: String) {
        Counter(
            label: "redlock_master_errors_total",
            dimensions: dimensions + [("master", masterLabels[index]), ("code", code)],
            factory: factory
        ).increment()
    }

    /// Counts one hold-out of a master that may have lost data.
    func heldOut(_ index: Int) {
        Counter(label: "redlock_master_hold_outs_total", dimensions: dimensions + [("master", masterLabels[index])], factory: factory)
            .increment()
    }
}
