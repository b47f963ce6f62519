import ChaosKit
import Testing

/// The checker on hand-made records: each count must move when, and only when, its fault is
/// in the records (so a scenario's 0 means something).
@Suite("Chaos checker")
struct CheckerTests {
    let phases = Phases(baseline: 0, fault: 1_000, healed: 2_000, end: 3_000)

    func section(_ client: Int, enter: Int64, exit: Int64, validUntil: Int64 = 10_000, token: Int64, accepted: Bool = true) -> AttemptRecord {
        AttemptRecord(
            client: client,
            started: enter - 1,
            outcome: "ok",
            acquireNanoseconds: 1,
            enter: enter,
            validUntil: validUntil,
            exit: exit,
            token: token,
            writeAccepted: accepted
        )
    }

    func laned(_ client: Int, _ lane: String, enter: Int64, exit: Int64, token: Int64 = 0, accepted: Bool = true) -> AttemptRecord {
        var record = section(client, enter: enter, exit: exit, token: token, accepted: accepted)
        record.lane = lane
        return record
    }

    @Test func semaphoreSlotsOverlapFreelyButOneSlotNeverHasTwoHolders() {
        let slots = [
            laned(0, "s0", enter: 100, exit: 400, token: 7), laned(1, "s1", enter: 200, exit: 500, token: 3),
            laned(2, "s0", enter: 400, exit: 600, token: 8),
        ]
        let clean = Checker.check(records: slots, counters: ["s0": 2, "s1": 1], acceptedTokens: ["s0": [7, 8], "s1": [3]], phases: phases)
        #expect(clean.violations == 0)
        #expect(clean.mostAtOnce == 2)
        #expect(clean.staleTokensAccepted == 0, "each slot has its own token order")
        #expect(clean.lostUpdates == 0)
        let crowded = slots + [laned(3, "s1", enter: 300, exit: 350, token: 4)]
        let report = Checker.check(records: crowded, counters: ["s0": 2, "s1": 2], acceptedTokens: ["s0": [7, 8], "s1": [3, 4]], phases: phases)
        #expect(report.violations == 1)
        #expect(report.mostAtOnce == 3)
    }

    @Test func readersShareButAWriterConflictsWithEveryone() {
        let readers = [
            laned(0, AttemptRecord.readerLane, enter: 100, exit: 400, accepted: false),
            laned(1, AttemptRecord.readerLane, enter: 200, exit: 500, accepted: false),
        ]
        let shared = Checker.check(records: readers, counters: [:], acceptedTokens: [:], phases: phases)
        #expect(shared.violations == 0)
        #expect(shared.writesRejected == 0, "readers write nothing, so nothing of theirs is refused")
        let writer = laned(2, AttemptRecord.writerLane, enter: 450, exit: 600, token: 5)
        let report = Checker.check(records: readers + [writer], counters: ["": 1], acceptedTokens: ["": [5]], phases: phases)
        #expect(report.violations == 1)
        let twoWriters = [writer, laned(3, AttemptRecord.writerLane, enter: 550, exit: 700, token: 6)]
        #expect(Checker.check(records: twoWriters, counters: ["": 2], acceptedTokens: ["": [5, 6]], phases: phases).violations == 1)
    }

    @Test func termsMustRiseInTheOrderLeadersEntered() {
        let rising = [section(0, enter: 100, exit: 200, token: 4), section(1, enter: 300, exit: 400, token: 9)]
        #expect(Checker.check(records: rising, counter: 2, acceptedTokens: [4, 9], phases: phases).termRegressions == 0)
        let falling = [section(0, enter: 100, exit: 200, token: 9), section(1, enter: 300, exit: 400, token: 4)]
        #expect(Checker.check(records: falling, counter: 2, acceptedTokens: [9], phases: phases).termRegressions == 1)
    }

    @Test func backToBackSectionsAreClean() {
        let records = [
            section(0, enter: 100, exit: 200, token: 1), section(1, enter: 200, exit: 300, token: 2), section(0, enter: 1_500, exit: 1_600, token: 3),
        ]
        let report = Checker.check(records: records, counter: 3, acceptedTokens: [1, 2, 3], phases: phases)
        #expect(report.violations == 0)
        #expect(report.lostUpdates == 0)
        #expect(report.staleTokensAccepted == 0)
        #expect(report.lateWritesAccepted == 0)
        #expect(report.recoveryMilliseconds == nil)
    }

    @Test func overlappingValidityWindowsAreViolations() {
        let records = [
            section(0, enter: 100, exit: 400, token: 1), section(1, enter: 300, exit: 500, token: 2), section(2, enter: 350, exit: 360, token: 3),
        ]
        let report = Checker.check(records: records, counter: 3, acceptedTokens: [1, 2, 3], phases: phases)
        #expect(report.violations == 3)  // 0-1, 0-2, 1-2
    }

    @Test func aWindowEndsAtTheValidityEvenIfTheClientRanLonger() {
        // Client 0 was paused: it exits at 900, but its validity ended at 250.
        let records = [section(0, enter: 100, exit: 900, validUntil: 250, token: 1), section(1, enter: 300, exit: 400, token: 2)]
        let report = Checker.check(records: records, counter: 1, acceptedTokens: [2, 1], phases: phases)
        #expect(report.violations == 0)
        #expect(report.lateWritesAccepted == 1)
        #expect(report.staleTokensAccepted == 1)
        #expect(report.lostUpdates == 1)
    }

    @Test func ratesAndRecoveryAreMeasuredPerPhase() {
        let baseline: [AttemptRecord] = (0..<10).map { (index: Int64) -> AttemptRecord in
            section(0, enter: 10 + index * 90, exit: 20 + index * 90, token: index)
        }
        let fault: [AttemptRecord] = (0..<5).map { (index: Int64) -> AttemptRecord in
            section(1, enter: 1_010 + index * 190, exit: 1_020 + index * 190, token: 10 + index)
        }
        let after = [section(0, enter: 2_040, exit: 2_050, token: 20)]
        let failed = AttemptRecord(client: 2, started: 1_500, outcome: "quorumUnreachable")
        let report = Checker.check(records: baseline + fault + after + [failed], counter: 16, acceptedTokens: Array(0..<16), phases: phases)
        #expect(abs(report.baselineRate - 1e7) < 1)  // 10 sections in 1 µs of fake time
        #expect(abs(report.faultRate - 5e6) < 1)
        #expect(abs(report.throughputRatio - 0.5) < 1e-9)
        #expect(abs(report.availability - 5.0 / 6.0) < 1e-9)  // 5 of 6 attempts under the fault, 10 of 10 before
        #expect(report.faultSuccessRate == 5.0 / 6.0)
        #expect(report.recoveryMilliseconds == 40 / 1e6)
        #expect(report.outcomes == ["ok": 16, "quorumUnreachable": 1])
    }

    @Test func aRejectedWriteIsNotALostUpdate() {
        let records = [section(0, enter: 100, exit: 200, token: 2), section(1, enter: 300, exit: 400, token: 1, accepted: false)]
        let report = Checker.check(records: records, counter: 1, acceptedTokens: [2], phases: phases)
        #expect(report.lostUpdates == 0)
        #expect(report.writesRejected == 1)
        #expect(report.staleTokensAccepted == 0)
    }

    @Test func onlyAChanceMissOfAnUnsafeScenarioIsWorthRetrying() {
        #expect(ScenarioResult.isWorthRetrying(.unsafe, [ChaosRunner.notReproduced]))
        #expect(!ScenarioResult.isWorthRetrying(.unsafe, []))
        #expect(!ScenarioResult.isWorthRetrying(.unsafe, ["2 stale tokens accepted despite fencing"]))
        #expect(!ScenarioResult.isWorthRetrying(.unsafe, [ChaosRunner.neverInjected, ChaosRunner.notReproduced]))
        #expect(ScenarioResult.isWorthRetrying(.unsafe, [ChaosRunner.neverInjected, ChaosRunner.notReproduced], injectionWaitsOnChance: true))
        #expect(!ScenarioResult.isWorthRetrying(.unsafe, [ChaosRunner.neverInjected], injectionWaitsOnChance: true))
        #expect(
            !ScenarioResult.isWorthRetrying(
                .safe(availabilityFloor: nil),
                [ChaosRunner.neverInjected, ChaosRunner.notReproduced],
                injectionWaitsOnChance: true
            )
        )
        #expect(Fault.clockJumpOnBareQuorum(by: .seconds(5), times: 3).injectionWaitsOnChance)
        #expect(!Fault.clockJump([0, 1, 2], by: .seconds(5), times: 3).injectionWaitsOnChance)
        #expect(!ScenarioResult.isWorthRetrying(.safe(availabilityFloor: 0.9), ["1 mutual-exclusion violations"]))
        #expect(!ScenarioResult.isWorthRetrying(.safe(availabilityFloor: nil), [ChaosRunner.notReproduced]))
    }

    @Test func aKnownLimitNotReproducedIsReportedButDoesNotFailTheSuite() {
        #expect(SuiteVerdict(.unsafe, []) == .held)
        #expect(SuiteVerdict(.safe(availabilityFloor: nil), []) == .held)
        #expect(SuiteVerdict(.unsafe, [ChaosRunner.notReproduced]) == .notReproduced)
        #expect(
            SuiteVerdict(.unsafe, [ChaosRunner.neverInjected, ChaosRunner.notReproduced], injectionWaitsOnChance: true)
                == .notReproduced
        )
        // Every safety failure fails the suite, whatever else the run missed.
        #expect(SuiteVerdict(.safe(availabilityFloor: nil), [ChaosRunner.notReproduced]) == .failed)
        #expect(SuiteVerdict(.safe(availabilityFloor: 0.9), ["1 mutual-exclusion violations"]) == .failed)
        #expect(SuiteVerdict(.unsafe, ["2 stale tokens accepted despite fencing"]) == .failed)
        #expect(SuiteVerdict(.unsafe, ["no critical section ran", ChaosRunner.notReproduced]) == .failed)
        #expect(SuiteVerdict.held.failsTheSuite == false)
        #expect(SuiteVerdict.notReproduced.failsTheSuite == false)
        #expect(SuiteVerdict.failed.failsTheSuite)
    }

    @Test func aRecordSurvivesItsWitnessLine() {
        let record = section(3, enter: 123, exit: 456, validUntil: 789, token: 42, accepted: false)
        #expect(AttemptRecord(line: record.line) == record)
        #expect(AttemptRecord(line: "garbage") == nil)
    }
}

@Suite("Chaos checker: missed hand-overs")
struct MissedHandOverTests {
    let phases = Phases(baseline: 0, fault: 10_000_000_000, healed: 20_000_000_000, end: 30_000_000_000)

    func section(enter: Int64, exit: Int64) -> AttemptRecord {
        AttemptRecord(
            client: 1,
            started: enter - 1,
            outcome: "ok",
            acquireNanoseconds: 1,
            enter: enter,
            validUntil: exit,
            exit: exit,
            token: enter,
            writeAccepted: true
        )
    }

    @Test func aWaiterThatGaveUpWhileTheLockSatFreeIsAMissedHandOver() {
        let ms: Int64 = 1_000_000
        // Busy until 300 ms, then free for 700 ms while client 2 waited from 100 to 1 100 ms.
        let gaveUp = AttemptRecord(client: 2, started: 100 * ms, outcome: "lockHeld", exit: 1_100 * ms)
        let report = Checker.check(records: [section(enter: 10 * ms, exit: 300 * ms), gaveUp], counter: 1, acceptedTokens: [10 * ms], phases: phases)
        #expect(report.missedHandOvers == 1)
    }

    @Test func aWaiterThatGaveUpWhileOthersHeldTheLockIsNot() {
        let ms: Int64 = 1_000_000
        let sections = stride(from: Int64(0), to: 1_200, by: 100).map { section(enter: $0 * ms + 1, exit: ($0 + 100) * ms) }
        let gaveUp = AttemptRecord(client: 2, started: 100 * ms, outcome: "lockHeld", exit: 1_100 * ms)
        let report = Checker.check(records: sections + [gaveUp], counter: sections.count, acceptedTokens: sections.map(\.token), phases: phases)
        #expect(report.missedHandOvers == 0)
        // Under a fault it is not counted unless the scenario asks for it.
        let underFault = AttemptRecord(client: 2, started: 12_000 * ms, outcome: "lockHeld", exit: 13_000 * ms)
        #expect(Checker.check(records: [underFault], counter: 0, acceptedTokens: [], phases: phases).missedHandOvers == 0)
        #expect(Checker.check(records: [underFault], counter: 0, acceptedTokens: [], phases: phases, handOvers: 0...phases.end).missedHandOvers == 1)
    }
}
