import Logging
import NIOCore
import RedisWire

/// Which masters vote: holds a master out while it may have lost writes it acknowledged, so
/// that it cannot grant a second time a lock it forgot (see `Docs/redlock.md`, "Hold-out of
/// masters that lost data").
///
/// Every (re)connect identifies the server (its `run_id`, from `INFO`). The evidence that it
/// kept its data is the deployment marker `<prefix>epoch`, which holds the run id under which
/// the master was last admitted:
/// - the marker names this run id: the master never stopped since; it votes.
/// - it names another: the master restarted with its data. It votes only when it fsyncs every
///   write (`appendonly yes`, `appendfsync always`, both readable) and was not promoted from a
///   replica; the marker is then moved to the new run id.
/// - there is none: the master lost its data (or is new).
///
/// A master that may have lost data is held out until every grant it may have forgotten has
/// expired, measured on this client's monotonic clock from its first contact:
/// - a hold-out already decided by another client for this run id (`<prefix>holdout:<run id>`
///   on any master) is honoured for what remains of it;
/// - otherwise, when the masters that kept their data (voting here) intersect every quorum
///   (at least N - quorum + 1 of them), until the latest grant horizon they report (see
///   ``GrantHorizon``), plus drift and the instance timeout;
/// - otherwise for the configured maximum (``RedlockConfiguration/maximumTTL`` plus drift).
///
/// The decision is written on every master that answered, so that every client process honours
/// it; when it ends, the marker is written and the master votes. Masters of which none has a
/// marker (every one answering, and none holding a recorded hold-out) were never admitted by a
/// client with the hold-out, or all lost their data at once, which nothing left can tell: they
/// are marked and vote at once.
actor MasterAdmission {
    /// One master's standing, as ``Redlock/masterStatus()`` reports it.
    enum Standing: Sendable, Equatable {
        /// Not reached yet, or being identified.
        case identifying
        case voting
        case heldOut(until: ContinuousClock.Instant, reason: String)
        /// Suspected of lost data; waiting for the other masters' evidence.
        case deciding(reason: String)
        case unreachable(reason: String)
    }

    private struct Master {
        var standing: Standing = .identifying
        var connection: RedisConnection?
        var generation = 0
        var runID: String?
        /// Every run id this process has seen at this master.
        var seenRunIDs: Set<String> = []
        var release: Task<Void, Never>?
    }

    private var masters: [Master]
    private let quorum: Int
    private let markerKey: [UInt8]
    private let horizonKey: [UInt8]
    private let holdOutPrefix: String
    /// The hold-out when nothing bounds it better; nil when masters that may have lost data are
    /// not held out at all (``RedlockConfiguration/maximumTTL`` nil).
    private let maximumHoldOut: Duration?
    private let driftFactor: Double
    private let instanceTimeout: Duration
    private let connectTimeout: Duration
    private let logger: Logger
    private let labels: [String]
    private let onHoldOut: @Sendable (Int) -> Void
    private let onDuplicate: @Sendable (RedlockError) -> Void
    private var evaluating = false
    private var evaluationWanted = false

    init(
        masters labels: [String],
        keyPrefix: String,
        maximumHoldOut: Duration?,
        driftFactor: Double,
        instanceTimeout: Duration,
        connectTimeout: Duration,
        logger: Logger,
        onHoldOut: @escaping @Sendable (Int) -> Void,
        onDuplicate: @escaping @Sendable (RedlockError) -> Void
    ) {
        masters = Array(repeating: Master(), count: labels.count)
        self.labels = labels
        quorum = QuorumTally.quorum(of: labels.count)
        markerKey = Array((keyPrefix + "epoch").utf8)
        horizonKey = Array((keyPrefix + "horizon").utf8)
        holdOutPrefix = keyPrefix + "holdout:"
        self.maximumHoldOut = maximumHoldOut
        self.driftFactor = driftFactor
        self.instanceTimeout = instanceTimeout
        self.connectTimeout = connectTimeout
        self.logger = logger
        self.onHoldOut = onHoldOut
        self.onDuplicate = onDuplicate
    }

    /// Every master's standing, in the masters' order.
    func standings() -> [Standing] { masters.map(\.standing) }

    /// The gate each master's connection calls (it knows its master's index).
    nonisolated func gate(master index: Int, horizon: GrantHorizon) -> any RedisAdmissionGate {
        Gate(index: index, admission: self, horizon: horizon, requiresIdentity: maximumHoldOut != nil)
    }

    private struct Gate: RedisAdmissionGate {
        let index: Int
        let admission: MasterAdmission
        let horizon: GrantHorizon
        let requiresIdentity: Bool

        func identified(_ identity: ServerIdentity, connection: RedisConnection, generation: Int) {
            horizon.forget(master: index)
            Task { await admission.identified(index, identity, connection, generation) }
        }

        func unreachable(_ connection: RedisConnection, error: RedisWireError) {
            Task { await admission.unreachable(index, error) }
        }
    }

    private func unreachable(_ index: Int, _ error: RedisWireError) {
        masters[index].release?.cancel()
        masters[index].release = nil
        masters[index].standing = .unreachable(reason: error.message)
        if error.code == .unidentified {
            logger.warning(
                "master cannot be identified: it does not vote",
                metadata: ["redis.master": "\(labels[index])", "error": "\(error.message)"]
            )
        }
        requestEvaluation()
    }

    private func identified(_ index: Int, _ identity: ServerIdentity, _ connection: RedisConnection, _ generation: Int) async {
        guard generation > masters[index].generation else { return }  // an older dial's report, late
        masters[index].release?.cancel()
        masters[index].release = nil
        masters[index].standing = .identifying
        masters[index].connection = connection
        masters[index].generation = generation
        masters[index].runID = identity.runID
        masters[index].seenRunIDs.insert(identity.runID)
        if let twin = masters.indices.first(where: { $0 != index && masters[$0].runID == identity.runID && masters[$0].connection != nil }) {
            let reason = "\(labels[twin]) and \(labels[index]) are the same server (run_id \(identity.runID)): one server must not vote twice"
            onDuplicate(RedlockError(.invalidArgument, reason))
            logger.error("the same master is listed twice", metadata: ["redlock.reason": "\(reason)"])
            for duplicate in [twin, index] {
                masters[duplicate].standing = .unreachable(reason: reason)
                guard let connection = masters[duplicate].connection else { continue }
                let generation = masters[duplicate].generation
                connection.eventLoop.execute { connection.holdOut(until: .distantFuture, reason: reason, generation: generation) }
            }
            return
        }
        guard maximumHoldOut != nil else {
            admit(index)
            return
        }
        let suspicion: String?
        do throws(RedisWireError) {
            suspicion = try await whyDataMayBeLost(connection, identity)
        } catch {
            // Could not read the evidence: decide for the safe side.
            suspicion = "its deployment marker could not be read (\(error.message))"
        }
        guard masters[index].generation == generation else { return }
        if let suspicion {
            masters[index].standing = .deciding(reason: suspicion)
            requestEvaluation()
        } else {
            admit(index)
        }
    }

    /// Nil when the marker shows that `connection`'s master kept every acknowledged write;
    /// otherwise why it may not have.
    private func whyDataMayBeLost(_ connection: RedisConnection, _ identity: ServerIdentity) async throws(RedisWireError) -> String? {
        let timeout = connectTimeout
        let marker = try await connection.sendWhileHeldOut([Array("GET".utf8), markerKey], timeout: timeout).string
        guard let marker else { return "restarted without its data, or new" }
        if marker == identity.runID { return nil }
        if identity.promotedFromReplica { return "promoted from a replica, which may lack writes its former master acknowledged" }
        let appendOnly = try? await connection.sendWhileHeldOut(["CONFIG", "GET", "appendonly"].map { Array($0.utf8) }, timeout: timeout)
        let fsync = try? await connection.sendWhileHeldOut(["CONFIG", "GET", "appendfsync"].map { Array($0.utf8) }, timeout: timeout)
        guard appendOnly?.array?.last?.string == "yes", fsync?.array?.last?.string == "always" else {
            return "restarted, and its persistence may have lost recent writes (not appendfsync always, or CONFIG refused)"
        }
        try await mark(connection, identity.runID)
        return nil
    }

    private func admit(_ index: Int) {
        masters[index].standing = .voting
        guard let connection = masters[index].connection else { return }
        let generation = masters[index].generation
        connection.eventLoop.execute { connection.admit(generation: generation) }
    }

    /// Runs ``evaluate()`` now, or once more after the evaluation under way.
    private func requestEvaluation() {
        evaluationWanted = true
        guard !evaluating else { return }
        evaluating = true
        Task {
            while evaluationWanted {
                evaluationWanted = false
                await evaluate()
            }
            evaluating = false
        }
    }

    /// What one master says about the others' hold-outs and its own grants.
    private struct Evidence {
        /// The run id its deployment marker names, if it has one.
        var marker: String?
        var hasMarker: Bool { marker != nil }
        /// Milliseconds left of its grant horizon; 0 when none.
        var horizon: Int64 = 0
        /// Milliseconds left of a recorded hold-out, per run id asked about.
        var recorded: [String: Int64] = [:]
    }

    /// Decides every master suspected of lost data, from one survey of every master.
    private func evaluate() async {
        // The others' standing matters (and a new deployment is decided for all its masters at
        // once): wait while any master is still being identified. Bounded: a master that does
        // not answer is reported unreachable once its dial fails, within the connect timeout.
        let waitUntil = ContinuousClock.now + connectTimeout
        while masters.contains(where: { $0.standing == .identifying }), ContinuousClock.now < waitUntil {
            try? await Task.sleep(for: .milliseconds(5))
        }
        // A client that finds these masters partly marked may be watching another start them
        // as new: before settling on the maximum, it looks again, a few times, 50 ms apart.
        for look in 1...4 {
            let deciding = masters.indices.filter { if case .deciding = masters[$0].standing { true } else { false } }
            guard !deciding.isEmpty else { return }
            let answered = await surveyAll(about: deciding.compactMap { masters[$0].runID })
            // Marked meanwhile under its current run id by another client (its hold-out ended,
            // or it started these masters as new): that client admitted it; so does this one.
            for index in deciding where answered[index]?.marker.map({ $0 == masters[index].runID }) == true {
                admit(index)
            }
            let decisions = deciding.compactMap { decide($0, answered) }
            if look < 4, decisions.contains(where: \.isMaximum), decisions.allSatisfy({ !$0.wasRecorded }) {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            for decision in decisions {
                await holdOut(
                    decision.index,
                    for: decision.duration,
                    reason: decision.reason,
                    recordOn: decision.wasRecorded ? [] : Array(answered.keys)
                )
            }
            return
        }
    }

    /// What one survey of every reachable master says, by master.
    private func surveyAll(about runIDs: [String]) async -> [Int: Evidence] {
        var evidence: [Int: Evidence] = [:]
        await withTaskGroup(of: (Int, Evidence?).self) { group in
            for (index, master) in masters.enumerated() {
                guard let connection = master.connection, master.standing != .identifying else { continue }
                if case .unreachable = master.standing { continue }
                group.addTask { [self] in (index, try? await survey(connection, runIDs: runIDs)) }
            }
            for await (index, answer) in group { evidence[index] = answer }
        }
        return evidence.compactMapValues { $0 }
    }

    /// How long one master suspected of lost data is held out, and why.
    private struct Decision {
        let index: Int
        let duration: Duration
        let reason: String
        /// Another client's decision, honoured: not recorded again.
        let wasRecorded: Bool
        /// Nothing bounded it better than the configured maximum.
        let isMaximum: Bool
    }

    /// The decision about master `index`, still deciding, from `answered`; nil once it is not.
    private func decide(_ index: Int, _ answered: [Int: Evidence]) -> Decision? {
        guard case .deciding(let reason) = masters[index].standing, let runID = masters[index].runID else { return nil }
        if let recorded = answered.values.compactMap({ $0.recorded[runID] }).filter({ $0 > 0 }).max() {
            return Decision(
                index: index,
                duration: .milliseconds(recorded),
                reason: reason + "; the hold-out was decided by another client",
                wasRecorded: true,
                isMaximum: false
            )
        }
        // No marker anywhere: no client with the hold-out has admitted these masters yet (or
        // every one of them lost its data, which nothing left can tell): trusted as they are.
        let isUnmarked =
            answered.count == masters.count
            && answered.values.allSatisfy { !$0.hasMarker && $0.recorded.values.allSatisfy { $0 <= 0 } }
            && masters.allSatisfy { $0.seenRunIDs.count <= 1 }
        if isUnmarked { return Decision(index: index, duration: .zero, reason: reason, wasRecorded: false, isMaximum: false) }
        let survivors = answered.filter { $0.key != index && masters[$0.key].standing == .voting }
        guard survivors.count >= masters.count - quorum + 1 else {
            return Decision(
                index: index,
                duration: maximumHoldOut ?? .zero,
                reason: reason + "; too few masters kept their data to bound the grants it forgot, so held out for the maximum TTL",
                wasRecorded: false,
                isMaximum: true
            )
        }
        let horizon = Duration.milliseconds(survivors.values.map(\.horizon).max() ?? 0)
        let bound = horizon > .zero ? horizon + Validity.drift(ttl: horizon, driftFactor: driftFactor) + instanceTimeout : .zero
        // The horizon's headroom can reach past the maximum, which bounds every grant.
        return Decision(
            index: index,
            duration: min(bound, maximumHoldOut ?? bound),
            reason: reason + "; held out until the latest grant the other masters recorded has expired",
            wasRecorded: false,
            isMaximum: false
        )
    }

    /// Reads a master's marker, grant horizon and the recorded hold-outs of `runIDs`.
    private func survey(_ connection: RedisConnection, runIDs: [String]) async throws(RedisWireError) -> Evidence {
        let timeout = connectTimeout
        var evidence = Evidence()
        evidence.marker = try await connection.sendWhileHeldOut([Array("GET".utf8), markerKey], timeout: timeout).string
        if case .integer(let left) = try await connection.sendWhileHeldOut([Array("PTTL".utf8), horizonKey], timeout: timeout) {
            evidence.horizon = max(left, 0)
        }
        for runID in runIDs {
            let key = Array((holdOutPrefix + runID).utf8)
            if case .integer(let left) = try await connection.sendWhileHeldOut([Array("PTTL".utf8), key], timeout: timeout) {
                evidence.recorded[runID] = left
            }
        }
        return evidence
    }

    /// Holds master `index` out for `duration` (records it on `recordOn` first), then marks it
    /// and lets it vote.
    private func holdOut(_ index: Int, for duration: Duration, reason: String, recordOn: [Int]) async {
        guard let connection = masters[index].connection, let runID = masters[index].runID else { return }
        let generation = masters[index].generation
        guard duration > .zero else {
            try? await mark(connection, runID)
            admit(index)
            return
        }
        let milliseconds = duration.millisecondsRoundedUp
        let record = ["SET", holdOutPrefix + runID, reason, "PX", String(milliseconds), "NX"].map { Array($0.utf8) }
        for other in recordOn {
            _ = try? await masters[other].connection?.sendWhileHeldOut(record, timeout: connectTimeout)
        }
        guard masters[index].generation == generation else { return }
        let until = ContinuousClock.now + duration
        masters[index].standing = .heldOut(until: until, reason: reason)
        let deadline = NIODeadline.now() + .nanoseconds(duration.nanoseconds)
        connection.eventLoop.execute { connection.holdOut(until: deadline, reason: reason, generation: generation) }
        onHoldOut(index)
        logger.warning(
            "master held out: it may have lost writes it acknowledged",
            metadata: ["redis.master": "\(labels[index])", "redlock.held_out_for": "\(duration)", "redlock.reason": "\(reason)"]
        )
        masters[index].release = Task { [self] in
            guard (try? await Task.sleep(until: until, clock: .continuous)) != nil else { return }
            await rejoin(index, generation: generation)
        }
    }

    private func rejoin(_ index: Int, generation: Int) async {
        guard masters[index].generation == generation, let connection = masters[index].connection, let runID = masters[index].runID else { return }
        do throws(RedisWireError) {
            try await mark(connection, runID)
        } catch {
            // Unmarked, its next identification suspects it again: the safe side.
            logger.warning("could not mark a master that rejoined", metadata: ["redis.master": "\(labels[index])", "error": "\(error.message)"])
        }
        guard masters[index].generation == generation else { return }
        logger.info("master rejoined the vote", metadata: ["redis.master": "\(labels[index])"])
        admit(index)
    }

    private func mark(_ connection: RedisConnection, _ runID: String) async throws(RedisWireError) {
        _ = try await connection.sendWhileHeldOut([Array("SET".utf8), markerKey, Array(runID.utf8)], timeout: connectTimeout)
    }
}
