/// Phase boundaries of one scenario run, in ``monotonicNanoseconds()``.
package struct Phases: Sendable {
    /// Fault-free measurement starts (after warm-up).
    package var baseline: Int64
    /// The fault is injected.
    package var fault: Int64
    /// The fault is healed.
    package var healed: Int64
    /// The clients are told to stop.
    package var end: Int64

    /// Creates phases.
    package init(baseline: Int64, fault: Int64, healed: Int64, end: Int64) {
        self.baseline = baseline
        self.fault = fault
        self.healed = healed
        self.end = end
    }
}

/// What the checker found in one scenario's records.
package struct CheckReport: Sendable, Equatable {
    /// Pairs of conflicting critical sections (see ``AttemptRecord/conflicts(with:)``) whose
    /// validity windows (enter ... min(exit, validity end)) overlap: two holders at once, or
    /// a writer beside anyone.
    package var violations: Int
    /// Accepted writes that did not show up in the counter (a read-sleep-write overwritten
    /// by one that read the same value).
    package var lostUpdates: Int
    /// Accepted writes whose fencing token was not higher than one accepted before.
    package var staleTokensAccepted: Int
    /// Accepted writes made after the writer's own validity had ended.
    package var lateWritesAccepted: Int
    /// Writes the fenced resource refused.
    package var writesRejected: Int
    /// Critical sections per second, fault-free and under the fault.
    package var baselineRate: Double
    package var faultRate: Double
    /// Share of attempts that acquired (the rest: held, unreachable, ...), per phase.
    package var baselineSuccessRate: Double
    package var faultSuccessRate: Double
    /// Acquisition latency (ms) under the fault.
    package var faultAcquireP50: Double
    package var faultAcquireP99: Double
    /// Milliseconds from healing to the first successful acquisition (nil if none).
    package var recoveryMilliseconds: Double?
    /// Attempt outcomes over the whole run.
    package var outcomes: [String: Int]
    /// Acquisitions that gave up at their deadline although, while they waited, no critical
    /// section ran for longer than ``Checker/idleLimit``: a release that did not reach them.
    package var missedHandOvers = 0
    /// The most sections inside their validity at one moment (a semaphore's holders).
    package var mostAtOnce = 0
    /// Sections of the unnamed lane (a mutex, an election's terms) whose fencing token was not
    /// higher than that of a section entered before them.
    package var termRegressions = 0

    /// Availability under the fault relative to fault-free: the share of attempts that got
    /// the lock (each waits up to the client's limit), fault phase / baseline phase.
    package var availability: Double { baselineSuccessRate > 0 ? faultSuccessRate / baselineSuccessRate : 0 }
    /// Critical sections per second under the fault / fault-free. Also moves with the
    /// machine's load, so it is reported, not asserted.
    package var throughputRatio: Double { baselineRate > 0 ? faultRate / baselineRate : 0 }
}

/// Turns the witness's records into a ``CheckReport``. Pure: the same records give the same
/// report.
package enum Checker {
    /// The longest the lock may sit free (no section running) while an acquisition waits for
    /// it before that waiter's giving up counts as a missed hand-over.
    package static let idleLimit: Int64 = 500_000_000

    /// Checks `records`, given the final counter and the accepted tokens in order. Missed
    /// hand-overs are counted among the attempts that started and ended within `handOvers`
    /// (by default the fault-free phase).
    package static func check(
        records: [AttemptRecord],
        counter: Int,
        acceptedTokens: [Int64],
        phases: Phases,
        handOvers: ClosedRange<Int64>? = nil
    ) -> CheckReport {
        check(records: records, counters: ["": counter], acceptedTokens: ["": acceptedTokens], phases: phases, handOvers: handOvers)
    }

    /// ``check(records:counter:acceptedTokens:phases:handOvers:)`` with one counter and one
    /// order of accepted tokens per lane (a semaphore's slots each protect their own).
    package static func check(
        records: [AttemptRecord],
        counters: [String: Int],
        acceptedTokens: [String: [Int64]],
        phases: Phases,
        handOvers: ClosedRange<Int64>? = nil
    ) -> CheckReport {
        // In the order they were entered: the overlap count and the idle stretches both walk them so.
        let sections = records.filter { $0.outcome == "ok" }.sorted { $0.enter < $1.enter }
        let windows = sections.map { (start: $0.enter, end: min($0.exit, $0.validUntil)) }
        var violations = 0
        for (index, window) in windows.enumerated() {
            for (offset, later) in windows[(index + 1)...].enumerated() {
                if later.start >= window.end { break }
                if sections[index].conflicts(with: sections[index + 1 + offset]) { violations += 1 }
            }
        }
        let accepted = sections.filter(\.writeAccepted)
        let stale = acceptedTokens.values.reduce(0) { $0 + notRising($1) }
        let regressions = notRising(sections.filter { $0.lane.isEmpty && $0.token > 0 }.map(\.token))

        func rate(_ from: Int64, _ to: Int64) -> Double {
            let count = sections.filter { $0.enter >= from && $0.enter < to }.count
            return to > from ? Double(count) / (Double(to - from) / 1e9) : 0
        }
        func successRate(_ from: Int64, _ to: Int64) -> Double {
            let attempts = records.filter { $0.started >= from && $0.started < to }
            return attempts.isEmpty ? 0 : Double(attempts.filter { $0.outcome == "ok" }.count) / Double(attempts.count)
        }
        let faultLatencies = sections.filter { $0.started >= phases.fault && $0.started < phases.healed }
            .map { Double($0.acquireNanoseconds) / 1e6 }.sorted()
        func percentile(_ p: Double) -> Double {
            faultLatencies.isEmpty ? 0 : faultLatencies[min(faultLatencies.count - 1, Int(Double(faultLatencies.count) * p))]
        }
        let firstAfterHeal = sections.filter { $0.enter >= phases.healed }.map(\.enter).min()
        let busy = sections.map { (start: $0.enter, end: $0.exit) }
        let window = handOvers ?? phases.baseline...phases.fault
        let missed = records.filter { record in
            record.outcome == "lockHeld" && record.exit > record.started && window.contains(record.started) && window.contains(record.exit)
                && longestIdle(in: record.started...record.exit, busy: busy) > idleLimit
        }
        var report = CheckReport(
            violations: violations,
            lostUpdates: accepted.count - counters.values.reduce(0, +),
            staleTokensAccepted: stale,
            lateWritesAccepted: accepted.filter { $0.exit > $0.validUntil }.count,
            writesRejected: sections.filter(\.writes).count - accepted.count,
            baselineRate: rate(phases.baseline, phases.fault),
            faultRate: rate(phases.fault, phases.healed),
            baselineSuccessRate: successRate(phases.baseline, phases.fault),
            faultSuccessRate: successRate(phases.fault, phases.healed),
            faultAcquireP50: percentile(0.5),
            faultAcquireP99: percentile(0.99),
            recoveryMilliseconds: firstAfterHeal.map { Double($0 - phases.healed) / 1e6 },
            outcomes: records.reduce(into: [:]) { $0[$1.outcome, default: 0] += 1 }
        )
        report.missedHandOvers = missed.count
        report.mostAtOnce = mostAtOnce(windows)
        report.termRegressions = regressions
        return report
    }

    /// How many of `tokens` are not higher than every one before them.
    static func notRising(_ tokens: [Int64]) -> Int {
        var count = 0
        var highest = Int64.min
        for token in tokens {
            if token <= highest { count += 1 }
            highest = max(highest, token)
        }
        return count
    }

    /// The most of `windows` that cover one moment.
    static func mostAtOnce(_ windows: [(start: Int64, end: Int64)]) -> Int {
        // Ends sort before starts at the same moment: touching windows do not overlap.
        let edges = windows.filter { $0.end > $0.start }.flatMap { [($0.start, 1), ($0.end, -1)] }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        var inside = 0
        var most = 0
        for (_, change) in edges {
            inside += change
            most = max(most, inside)
        }
        return most
    }

    /// The longest stretch of `window` that no interval of `busy` (sorted by start) covers.
    static func longestIdle(in window: ClosedRange<Int64>, busy: [(start: Int64, end: Int64)]) -> Int64 {
        var longest: Int64 = 0
        var cursor = window.lowerBound
        for interval in busy where interval.end > window.lowerBound {
            if interval.start >= window.upperBound { break }
            if interval.start > cursor { longest = max(longest, interval.start - cursor) }
            cursor = max(cursor, interval.end)
        }
        return max(longest, window.upperBound - cursor)
    }
}
