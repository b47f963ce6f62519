#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NIOPosix
import RedisWire
import ServiceLifecycle
import Synchronization

/// A distributed lock over N independent Redis masters (the Redlock algorithm).
///
/// A lock is granted when a quorum (N/2 + 1) of masters accepted it and time is left after
/// subtracting the time the acquisition took and a clock-drift allowance. Every master's
/// connection lives on one event loop, so a lock operation fans out and in there.
///
/// Use it directly, or add it to a `ServiceGroup` (it conforms to `Service`): ``run()``
/// dials the masters and closes them on graceful shutdown.
///
/// ```swift
/// let redlock = Redlock(masters: [.hostname("10.0.0.1"), .hostname("10.0.0.2"), .hostname("10.0.0.3")])
/// try await redlock.withLock("invoice:42", ttl: .seconds(10)) { lock in
///     try await charge(invoice: 42, fencingToken: lock.fencingToken)
/// }
/// ```
public final class Redlock: Service, Sendable {
    /// The configuration the client was created with.
    public let configuration: RedlockConfiguration
    /// The masters, in the order given.
    public let masters: [RedisServerAddress]
    let group: MasterGroup
    /// An executor on the event loop that owns every master connection. Run latency-critical
    /// callers under `withTaskExecutorPreference(redlock.taskExecutor) { ... }` and a lock
    /// operation costs no thread hop at all (see `EventLoopTaskExecutor`).
    public let taskExecutor: EventLoopTaskExecutor
    let logger: Logger
    let metrics: RedlockMetrics
    private let lockPrefix: [UInt8]
    private let fencePrefix: [UInt8]
    /// The fencing counters' retention in milliseconds, as the scripts take it.
    private let retentionArgument: [UInt8]
    /// Operations running now, and whether shutdown has begun (see ``shutdown()``).
    private let inFlight = Atomic<Int>(0)
    private let closing = Atomic<Bool>(false)
    /// The longest TTL or wait an operation takes: ten years.
    static let longestDuration = Duration.seconds(10 * 365 * 24 * 3600)

    /// Creates a client. It dials lazily, or in ``run()`` / ``connect()``.
    /// - Parameters:
    ///   - masters: the independent masters; use an odd number (3 or 5).
    ///   - eventLoopGroup: where to pick the one event loop the connections live on.
    public init(
        masters: [RedisServerAddress],
        configuration: RedlockConfiguration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redlock")
    ) {
        precondition(!masters.isEmpty, "Redlock needs at least one master")
        // The same master twice would vote twice: a "quorum" that is not one.
        precondition(Set(masters).count == masters.count, "Redlock's masters must be distinct")
        let eventLoop = eventLoopGroup.next()
        var connectionConfiguration = configuration.connection
        connectionConfiguration.preloadedScripts += Scripts.all
        if let maximumTTL = configuration.maximumTTL {
            connectionConfiguration.restartQuarantine = maximumTTL + Validity.drift(ttl: maximumTTL, driftFactor: configuration.driftFactor)
        }
        self.configuration = configuration
        self.masters = masters
        self.logger = logger
        self.group = MasterGroup(
            connections: masters.map {
                RedisConnection(address: $0, configuration: connectionConfiguration, eventLoop: eventLoop, logger: logger)
            },
            eventLoop: eventLoop
        )
        self.taskExecutor = EventLoopTaskExecutor(eventLoop)
        self.metrics = RedlockMetrics(masters: masters.map(\.description), factory: configuration.metricsFactory)
        self.lockPrefix = Array((configuration.keyPrefix + "lock:").utf8)
        self.fencePrefix = Array((configuration.keyPrefix + "fence:").utf8)
        self.retentionArgument = Array(String(configuration.fencingCounterRetention.millisecondsRoundedUp).utf8)
    }

    /// How many masters must agree: N/2 + 1.
    public var quorum: Int { group.quorum }

    /// Dials every master and waits until each is connected or has failed once; masters that
    /// failed keep re-dialling in the background. Returns how many are connected.
    @discardableResult
    public func connect() async -> Int {
        await withTaskGroup(of: Bool.self) { tasks in
            for connection in group.connections {
                tasks.addTask { (try? await connection.connect()) != nil }
            }
            return await tasks.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
    }

    /// How many masters are connected right now.
    public func reachableMasters() async -> Int {
        var count = 0
        for connection in group.connections where await connection.isConnected { count += 1 }
        return count
    }

    /// Runs until graceful shutdown or cancellation, then closes every connection.
    public func run() async throws {
        await connect()
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Lets the operations already running finish (each is bounded by its instance timeouts;
    /// an acquisition makes no further retry), then closes every connection. Later calls fail
    /// with ``RedlockError/Code/shutdown``.
    public func shutdown() async {
        closing.store(true, ordering: .sequentiallyConsistent)
        let clock = ContinuousClock()
        let limit = clock.now + configuration.instanceTimeout * 4 + .seconds(1)
        while inFlight.load(ordering: .sequentiallyConsistent) > 0, clock.now < limit {
            try? await Task.sleep(for: .milliseconds(1))
        }
        for connection in group.connections { await connection.close() }
    }

    /// Runs one operation: refused once shutdown has begun, and counted so that shutdown
    /// waits for it.
    private func tracked<T>(_ body: () async throws(RedlockError) -> T) async throws(RedlockError) -> T {
        // Count first, then check: shutdown sets `closing` before it waits for the count.
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer { inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        guard !closing.load(ordering: .sequentiallyConsistent) else { throw RedlockError(.shutdown, "the client has been shut down") }
        return try await body()
    }

    private var isClosing: Bool { closing.load(ordering: .relaxed) }

    // MARK: - Acquire

    /// Acquires a lock on one resource.
    ///
    /// - Parameters:
    ///   - resource: any non-empty name; it reaches Redis only as one key argument.
    ///   - ttl: how long the masters keep the lock if it is never released (>= 1 ms).
    ///   - value: the value stored on the masters; by default 128 random bits from the
    ///     system CSPRNG. Supply your own only if it is unique per acquisition.
    ///   - wait: overall deadline for this acquisition, overriding the retry policy's.
    ///   - retry: the retry policy for this call; the configuration's when nil
    ///     (``RedlockConfiguration/Retry/never`` tries once).
    ///   - fencing: whether to hand out fencing tokens; the configuration's when nil.
    /// - Throws: ``RedlockError`` with code ``RedlockError/Code/lockHeld``,
    ///   ``RedlockError/Code/quorumUnreachable``, ``RedlockError/Code/validityExhausted``,
    ///   ``RedlockError/Code/invalidArgument`` or ``RedlockError/Code/cancelled``.
    public func acquire(
        _ resource: String, ttl: Duration, value: [UInt8]? = nil, wait: Duration? = nil, retry: RedlockConfiguration.Retry? = nil,
        fencing: Bool? = nil
    ) async throws(RedlockError) -> Lock {
        try await acquire([resource], ttl: ttl, value: value, wait: wait, retry: retry, fencing: fencing)
    }

    /// Acquires one lock over several resources, all or nothing on each master: either every
    /// resource is locked on a master or none is. Two multi-resource locks that share any
    /// resource never both succeed.
    public func acquire(
        _ resources: [String], ttl: Duration, value: [UInt8]? = nil, wait: Duration? = nil, retry: RedlockConfiguration.Retry? = nil,
        fencing: Bool? = nil
    ) async throws(RedlockError) -> Lock {
        try await tracked { () async throws(RedlockError) -> Lock in
            try await acquireUntracked(resources, ttl: ttl, value: value, wait: wait, retry: retry, fencing: fencing)
        }
    }

    private func acquireUntracked(
        _ resources: [String], ttl: Duration, value: [UInt8]?, wait: Duration?, retry: RedlockConfiguration.Retry?, fencing: Bool?
    ) async throws(RedlockError) -> Lock {
        let retry = retry ?? configuration.retry
        let fenced = fencing ?? configuration.fencing
        try validate(resources: resources, ttl: ttl)
        guard value?.isEmpty != true else { throw RedlockError(.invalidArgument, "lock value must not be empty") }
        let suppliedValue = value
        let clock = ContinuousClock()
        let maximumWait = wait ?? retry.maximumWait
        if let maximumWait, !(Duration.zero...Self.longestDuration).contains(maximumWait) {
            throw RedlockError(.invalidArgument, "wait must be between 0 and ten years")
        }
        let deadline = maximumWait.map { clock.now + $0 }
        let lockKeys = resources.map(lockKey)
        let fenceKeys = fenced ? resources.map(fenceKey) : []
        var attempt = 0
        while true {
            attempt += 1
            metrics.attempts.increment()
            let started = clock.now
            // A fresh value for every attempt: a late SET of an earlier attempt, which no release
            // can be sure to have followed, then never counts as this attempt's grant.
            let value = suppliedValue ?? Self.randomValue()
            let outcome = await onLoop { self.attempt(resources: resources, lockKeys: lockKeys, fenceKeys: fenceKeys, value: value, ttl: ttl, completion: $0) }
            metrics.acquireLatency.recordNanoseconds((clock.now - started).nanoseconds)
            switch outcome {
            case .success(let lock):
                metrics.acquired.increment()
                logger.debug("lock acquired", metadata: ["redlock.resource": "\(resources.joined(separator: ","))", "redlock.attempt": "\(attempt)"])
                return lock
            case .failure(let error):
                record(error)
                let retriesLeft = deadline == nil ? attempt <= retry.count : true
                guard retriesLeft, !isClosing else { throw error }
                var delay = retryDelay(retry)
                if let deadline {
                    // The last attempt is made at the deadline rather than skipped.
                    let left = deadline - clock.now
                    guard left > .milliseconds(1) else { throw error }
                    delay = min(delay, left)
                }
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw RedlockError(.cancelled, "cancelled while waiting to retry the acquisition")
                }
            }
        }
    }

    /// One attempt, entirely on the event loop: SET-with-fence on every master, raise lagging
    /// fencing counters, compute the validity, and on failure release everywhere. Calls
    /// `completion` once, on the loop.
    private func attempt(
        resources: [String], lockKeys: [[UInt8]], fenceKeys: [[UInt8]], value: [UInt8], ttl: Duration,
        completion: @escaping @Sendable (Result<Lock, RedlockError>) -> Void
    ) {
        let start = ContinuousClock.now
        let quorum = group.quorum
        let count = group.count
        let ttlArgument = Array(String(ttl.millisecondsRoundedUp).utf8)
        let deadline = instanceDeadline()
        let command: FanOutCommand
        do throws(RedlockError) {
            if !fenceKeys.isEmpty {
                let seed = Array(String(Self.fencingSeed()).utf8)
                command = try .script(Scripts.acquireFenced, keys: lockKeys + fenceKeys, arguments: [value, ttlArgument, retentionArgument, seed])
            } else if lockKeys.count == 1 {
                command = try .plain([Self.set, lockKeys[0], value, Self.nx, Self.px, ttlArgument])
            } else {
                command = try .script(Scripts.acquireMany, keys: lockKeys, arguments: [value, ttlArgument])
            }
        } catch {
            completion(.failure(error))
            return
        }
        // Decided as soon as a quorum granted or too few masters are left that could: a split
        // vote (a rival holds some masters) is otherwise settled only by the last masters, and
        // when those are paused or partitioned every contender would wait for the instance
        // timeout before retrying.
        group.fanOut(
            command, shuffled: true, deadline: deadline, lateReplyGrace: configuration.lateReplyGrace,
            until: QuorumTally.isDecided(acquisitionReplies:)
        ) { replies in
            let tally = QuorumTally(acquisitionReplies: replies)
            var granted: [(index: Int, tokens: [Int64])] = []
            for (index, reply) in replies.enumerated() {
                switch reply {
                case .failure(let error)?:
                    self.metrics.masterError(index, code: error.code.description)
                case .success(let value)? where tally.votes[index] == .granted:
                    granted.append((index, value.array?.map { $0.integer ?? 0 } ?? []))
                default:
                    break
                }
            }
            guard tally.outcome == .acquired else {
                let error = tally.outcome == .held
                    ? RedlockError(.lockHeld, "resource is held by another owner", retryAfter: tally.retryAfter, votes: tally.votes)
                    : RedlockError(
                        .quorumUnreachable, "\(tally.number(of: .failed)) of \(count) masters failed; \(quorum) needed", votes: tally.votes
                    )
                self.releaseAfterFailure(lockKeys: lockKeys, value: value, votes: tally.votes) { completion(.failure(error)) }
                return
            }
            var tokens = [Int64](repeating: 0, count: fenceKeys.count)
            for entry in granted {
                for (slot, token) in entry.tokens.enumerated() where slot < tokens.count { tokens[slot] = max(tokens[slot], token) }
            }
            let finalTokens = tokens
            let conclude: @Sendable (Int) -> Void = { confirmed in
                let elapsed = ContinuousClock.now - start
                let validity = Validity.remaining(ttl: ttl, elapsed: elapsed, driftFactor: self.configuration.driftFactor)
                if confirmed < quorum {
                    let error = RedlockError(.quorumUnreachable, "fencing counters could not be raised on a quorum", votes: tally.votes)
                    self.releaseAfterFailure(lockKeys: lockKeys, value: value, votes: tally.votes) { completion(.failure(error)) }
                    return
                }
                guard validity > .zero else {
                    let error = RedlockError(.validityExhausted, "acquisition took \(elapsed), no validity left of a \(ttl) TTL", votes: tally.votes)
                    self.releaseAfterFailure(lockKeys: lockKeys, value: value, votes: tally.votes) { completion(.failure(error)) }
                    return
                }
                let validUntil = start + ttl - Validity.drift(ttl: ttl, driftFactor: self.configuration.driftFactor)
                completion(.success(Lock(resources: resources, fencingTokens: finalTokens, ttl: ttl, validity: validity, validUntil: validUntil, value: value)))
            }
            let lagging = fenceKeys.isEmpty ? [] : granted.filter { $0.tokens != finalTokens }.map(\.index)
            if lagging.isEmpty {
                conclude(granted.count)
                return
            }
            // Masters of the quorum whose counters are behind the token we hand out must catch
            // up, or a later quorum that overlaps only them could hand out a lower one.
            let raiseArguments = tokens.map { Array(String($0).utf8) } + [self.retentionArgument]
            guard let raise = try? FanOutCommand.script(Scripts.raiseCounters, keys: fenceKeys, arguments: raiseArguments) else {
                completion(.failure(RedlockError(.invalidArgument, "cannot encode command")))
                return
            }
            let grantedCount = granted.count
            self.group.fanOut(raise, to: lagging, deadline: self.instanceDeadline()) { raiseReplies in
                conclude(grantedCount - lagging.count + lagging.filter { if case .success? = raiseReplies[$0] { true } else { false } }.count)
            }
        }
    }

    /// Releases on every master that may hold our value: those that granted it, and those
    /// that failed or have not answered yet (the SET may have landed). A master that refused
    /// provably did not set it. Calls `then` once the masters that granted (which are
    /// responsive) have answered the release.
    private func releaseAfterFailure(lockKeys: [[UInt8]], value: [UInt8], votes: [RedlockError.Vote], then: @escaping @Sendable () -> Void) {
        var targets: [Int] = []
        var responsive: [Int] = []
        for (index, vote) in votes.enumerated() {
            switch vote {
            case .heldByAnother: continue
            case .granted: targets.append(index); responsive.append(index)
            case .failed, .pending: targets.append(index)
            }
        }
        guard !targets.isEmpty, let release = try? FanOutCommand.script(Scripts.release, keys: lockKeys, arguments: [value, Self.exactMode]) else {
            then()
            return
        }
        let awaited = responsive
        group.fanOut(release, to: targets, deadline: instanceDeadline(), until: { replies in awaited.allSatisfy { replies[$0] != nil } }) { _ in
            if !awaited.isEmpty { then() }
        }
        if awaited.isEmpty { then() }
    }

    // MARK: - Extend

    /// Extends a lock to a new TTL from now, on a quorum of masters. Masters that lost the key
    /// (restarted) are re-seeded only when the quorum still holds our value.
    ///
    /// - Throws: ``RedlockError/Code/lockLost`` when a quorum no longer holds our value or no
    ///   validity would be left; ``RedlockError/Code/quorumUnreachable`` when too few masters
    ///   answered to tell.
    public func extend(_ lock: Lock, ttl: Duration) async throws(RedlockError) -> Lock {
        try await extend(lock, match: .exact(lock.value), ttl: ttl)
    }

    /// Extends the lock on `resources` whose stored value matches `match` to a new TTL from
    /// now; returns the new validity. A master that lost the key is re-seeded only for an
    /// exact match (a prefix does not say what to write back).
    public func extend(_ resources: [String], matching match: ValueMatch, ttl: Duration) async throws(RedlockError) -> Duration {
        let probe = Lock(resources: resources, fencingTokens: [], ttl: ttl, validity: .zero, validUntil: .now, value: match.bytes)
        return try await extend(probe, match: match, ttl: ttl).validity
    }

    private func extend(_ lock: Lock, match: ValueMatch, ttl: Duration) async throws(RedlockError) -> Lock {
        try await tracked { () async throws(RedlockError) -> Lock in try await extendUntracked(lock, match: match, ttl: ttl) }
    }

    private func extendUntracked(_ lock: Lock, match: ValueMatch, ttl: Duration) async throws(RedlockError) -> Lock {
        try validate(resources: lock.resources, ttl: ttl)
        let result = await onLoop { self.extendOnLoop(lock, match: match, ttl: ttl, completion: $0) }
        switch result {
        case .success(let lock):
            metrics.extended.increment()
            return lock
        case .failure(let error):
            if error.code == .lockLost { metrics.extendLost.increment() }
            throw error
        }
    }

    private func extendOnLoop(_ lock: Lock, match: ValueMatch, ttl: Duration, completion: @escaping @Sendable (Result<Lock, RedlockError>) -> Void) {
        let start = ContinuousClock.now
        let quorum = group.quorum
        let keys = lock.resources.map(lockKey)
        let ttlArgument = Array(String(ttl.millisecondsRoundedUp).utf8)
        let command: FanOutCommand
        do throws(RedlockError) {
            command = try .script(Scripts.extend, keys: keys, arguments: [match.bytes, ttlArgument, match.mode])
        } catch {
            completion(.failure(error))
            return
        }
        // Decided once a quorum extended, or too many refused or failed for a quorum to.
        let decided: @Sendable (Replies) -> Bool = { replies in
            var extended = 0
            var refused = 0
            for case let reply? in replies {
                if case .success(.integer(1)) = reply { extended += 1 } else { refused += 1 }
            }
            return extended >= quorum || refused > replies.count - quorum
        }
        group.fanOut(command, deadline: instanceDeadline(), until: decided) { replies in
            var extended = 0
            var answered = 0
            var missing: [Int] = []
            for (index, reply) in replies.enumerated() {
                guard case .success(let value)? = reply else {
                    if case .failure(let error)? = reply { self.metrics.masterError(index, code: error.code.description) }
                    continue
                }
                answered += 1
                switch value.integer {
                case .some(1): extended += 1
                case .some(-1): missing.append(index)
                default: break
                }
            }
            let elapsed = ContinuousClock.now - start
            let validity = Validity.remaining(ttl: ttl, elapsed: elapsed, driftFactor: self.configuration.driftFactor)
            guard extended >= quorum else {
                let error = answered >= quorum
                    ? RedlockError(.lockLost, "only \(extended) of \(replies.count) masters still hold the lock")
                    : RedlockError(.quorumUnreachable, "only \(answered) of \(replies.count) masters answered the extension")
                completion(.failure(error))
                return
            }
            guard validity > .zero else {
                completion(.failure(RedlockError(.lockLost, "extension took \(elapsed), no validity left")))
                return
            }
            let extendedLock = lock.with(validity: validity, validUntil: start + ttl - Validity.drift(ttl: ttl, driftFactor: self.configuration.driftFactor), ttl: ttl)
            guard !missing.isEmpty, case .exact = match,
                let reseed = try? FanOutCommand.script(Scripts.reseed, keys: keys, arguments: [lock.value, ttlArgument])
            else {
                completion(.success(extendedLock))
                return
            }
            self.group.fanOut(reseed, to: missing, deadline: self.instanceDeadline()) { _ in completion(.success(extendedLock)) }
        }
    }

    // MARK: - Release

    /// Releases a lock: compare-and-delete on every master, so a key holding another owner's
    /// value is never deleted.
    ///
    /// - Returns: ``ReleaseOutcome/released``, or ``ReleaseOutcome/notHeld`` when the lock had
    ///   already expired: whatever ran after its validity was not protected.
    /// - Throws: ``RedlockError/Code/quorumUnreachable`` when too few masters answered to tell.
    @discardableResult
    public func release(_ lock: Lock) async throws(RedlockError) -> ReleaseOutcome {
        let outcome = try await release(lock.resources, value: lock.value)
        return outcome == .released && lock.remainingValidity <= .zero ? .releasedAfterValidity : outcome
    }

    /// Releases the lock on `resources` if it holds `value` (for callers that supply their own
    /// values, such as the HTTP adapter).
    @discardableResult
    public func release(_ resources: [String], value: [UInt8]) async throws(RedlockError) -> ReleaseOutcome {
        try await release(resources, matching: .exact(value))
    }

    /// Releases the lock on `resources` where the stored value matches `match`.
    @discardableResult
    public func release(_ resources: [String], matching match: ValueMatch) async throws(RedlockError) -> ReleaseOutcome {
        try await tracked { () async throws(RedlockError) -> ReleaseOutcome in try await releaseUntracked(resources, matching: match) }
    }

    private func releaseUntracked(_ resources: [String], matching match: ValueMatch) async throws(RedlockError) -> ReleaseOutcome {
        let value = match.bytes
        let mode = match.mode
        guard !resources.isEmpty, !resources.contains(where: \.isEmpty) else {
            throw RedlockError(.invalidArgument, "resource names must not be empty")
        }
        let keys = resources.map(lockKey)
        let quorum = group.quorum
        let result: Result<ReleaseOutcome, RedlockError> = await onLoop { completion in
            guard let release = try? FanOutCommand.script(Scripts.release, keys: keys, arguments: [value, mode]) else {
                completion(.failure(RedlockError(.invalidArgument, "cannot encode command")))
                return
            }
            // Decided as soon as a quorum deleted it or too few can still have: a paused or
            // black-holed master costs the caller nothing (the command still reaches it).
            let decided: @Sendable (Replies) -> Bool = { replies in
                var deleted = 0
                var kept = 0
                for case .success(let value)? in replies {
                    if (value.integer ?? 0) > 0 { deleted += 1 } else { kept += 1 }
                }
                return deleted >= quorum || kept > replies.count - quorum
            }
            self.group.fanOut(release, deadline: self.instanceDeadline(), until: decided) { replies in
                var deleted = 0
                var answered = 0
                for reply in replies {
                    guard case .success(let value)? = reply else { continue }
                    answered += 1
                    if (value.integer ?? 0) > 0 { deleted += 1 }
                }
                if deleted >= quorum {
                    completion(.success(.released))
                } else if answered >= quorum {
                    completion(.success(.notHeld))
                } else {
                    completion(.failure(RedlockError(.quorumUnreachable, "only \(answered) of \(replies.count) masters answered the release")))
                }
            }
        }
        switch result {
        case .success(let outcome):
            (outcome == .released ? metrics.released : metrics.releaseNotHeld).increment()
            return outcome
        case .failure(let error):
            throw error
        }
    }

    /// Replaces the value of a lock we hold with `newValue`, keeping its TTL (for markers that
    /// record a state, as ``IdempotencyGuard`` does). Throws ``RedlockError/Code/lockLost``
    /// when fewer than a quorum still held `lock`'s value.
    func relabel(_ lock: Lock, to newValue: [UInt8]) async throws(RedlockError) -> Lock {
        try await tracked { () async throws(RedlockError) -> Lock in try await relabelUntracked(lock, to: newValue) }
    }

    private func relabelUntracked(_ lock: Lock, to newValue: [UInt8]) async throws(RedlockError) -> Lock {
        let key = lockKey(lock.resource)
        let quorum = group.quorum
        let result: Result<Int, RedlockError> = await onLoop { completion in
            guard let relabel = try? FanOutCommand.script(Scripts.relabel, keys: [key], arguments: [lock.value, newValue]) else {
                completion(.failure(RedlockError(.invalidArgument, "cannot encode command")))
                return
            }
            self.group.fanOut(relabel, deadline: self.instanceDeadline()) { replies in
                completion(.success(replies.reduce(0) { count, reply in
                    if case .success(.integer(1))? = reply { return count + 1 }
                    return count
                }))
            }
        }
        guard try result.get() >= quorum else {
            throw RedlockError(.lockLost, "fewer than a quorum still held the marker")
        }
        return Lock(resources: lock.resources, fencingTokens: lock.fencingTokens, ttl: lock.ttl, validity: lock.validity, validUntil: lock.validUntil, value: newValue)
    }

    // MARK: - Inspect

    /// Asks every master who holds `resource`; held only if a quorum agrees on one value.
    public func inspect(_ resource: String) async throws(RedlockError) -> LockState {
        try await tracked { () async throws(RedlockError) -> LockState in try await inspectUntracked(resource) }
    }

    private func inspectUntracked(_ resource: String) async throws(RedlockError) -> LockState {
        guard !resource.isEmpty else { throw RedlockError(.invalidArgument, "resource name must not be empty") }
        let key = lockKey(resource)
        let counter = fenceKey(resource)
        let quorum = group.quorum
        let driftFactor = configuration.driftFactor
        let result: Result<LockState, RedlockError> = await onLoop { completion in
            guard let inspect = try? FanOutCommand.script(Scripts.inspect, keys: [key, counter], arguments: []) else {
                completion(.failure(RedlockError(.invalidArgument, "cannot encode command")))
                return
            }
            self.group.fanOut(inspect, deadline: self.instanceDeadline(), until: { Self.inspectionIsDecided($0, quorum: quorum) }) { replies in
                completion(Self.lockState(replies, quorum: quorum, driftFactor: driftFactor))
            }
        }
        return try result.get()
    }

    /// Whether the inspect replies so far settle the state: a quorum agrees on a holder and on
    /// its token, or no holder can reach a quorum whatever the others answer.
    static func inspectionIsDecided(_ replies: Replies, quorum: Int) -> Bool {
        var holders: [[UInt8]: (count: Int, tokens: [Int64: Int])] = [:]
        var pending = 0
        var answered = 0
        for reply in replies {
            guard let reply else {
                pending += 1
                continue
            }
            if case .success = reply { answered += 1 }
            guard case .success(let value) = reply, let triple = value.array, triple.count == 3,
                let holder = triple[0].bytes, let ttl = triple[1].integer, ttl > 0
            else { continue }
            var entry = holders[holder] ?? (0, [:])
            entry.count += 1
            if let token = triple[2].string.flatMap({ Int64($0) }) { entry.tokens[token, default: 0] += 1 }
            holders[holder] = entry
        }
        if holders.values.contains(where: { $0.count >= quorum && $0.tokens.values.contains { $0 >= quorum } }) { return true }
        let largest = holders.values.map(\.count).max() ?? 0
        return largest + pending < quorum && (answered >= quorum || pending == 0)
    }

    /// What a quorum of inspect replies says about the lock.
    ///
    /// The fencing token reported is the counter value that a quorum of the holder's masters
    /// agree on. Every master of the quorum that decided the acquisition holds exactly the
    /// issued token (lagging ones were raised to it before the grant), and a counter moves
    /// only when an acquisition succeeds on its master, which cannot happen there while our
    /// value is held. A master that granted after the decision keeps its own counter, which may
    /// be higher; it is outvoted. When no quorum of holders agrees (a master of the deciding
    /// quorum is unreachable now), the token is not reported rather than guessed.
    static func lockState(_ replies: Replies, quorum: Int, driftFactor: Double) -> Result<LockState, RedlockError> {
        var answered = 0
        var holders: [[UInt8]: [(ttl: Int64, token: Int64?)]] = [:]
        for reply in replies {
            guard case .success(let value)? = reply, let triple = value.array, triple.count == 3 else { continue }
            answered += 1
            if let holder = triple[0].bytes, let ttl = triple[1].integer, ttl > 0 {
                holders[holder, default: []].append((ttl, triple[2].string.flatMap { Int64($0) }))
            }
        }
        guard answered >= quorum else {
            return .failure(RedlockError(.quorumUnreachable, "only \(answered) of \(replies.count) masters answered"))
        }
        guard let (holder, entries) = holders.first(where: { $0.value.count >= quorum }) else {
            return .success(LockState(isHeld: false, remaining: nil, holder: nil))
        }
        // The quorum-th largest TTL: the lock is held on a quorum at least that long.
        let sorted = entries.map(\.ttl).sorted(by: >)
        let ttl = Duration.milliseconds(sorted[quorum - 1])
        let remaining = ttl - Validity.drift(ttl: ttl, driftFactor: driftFactor)
        var votesPerToken: [Int64: Int] = [:]
        for case let token? in entries.map(\.token) { votesPerToken[token, default: 0] += 1 }
        let token = votesPerToken.first { $0.value >= quorum }?.key
        return .success(LockState(isHeld: true, remaining: max(remaining, .zero), holder: holder, fencingToken: token))
    }

    // MARK: - Helpers

    func lockKey(_ resource: String) -> [UInt8] { lockPrefix + Array(resource.utf8) }
    func fenceKey(_ resource: String) -> [UInt8] { fencePrefix + Array(resource.utf8) }

    private func instanceDeadline() -> NIODeadline {
        .now() + .nanoseconds(configuration.instanceTimeout.nanoseconds)
    }

    /// Runs `body` on the masters' event loop and awaits the result it passes to its completion
    /// (which must be called exactly once, on the loop): one hop in, one out, none when the
    /// caller already runs on that loop. No promise or future on this path.
    private func onLoop<T: Sendable>(
        _ body: @escaping @Sendable (@escaping @Sendable (Result<T, RedlockError>) -> Void) -> Void
    ) async -> Result<T, RedlockError> {
        let eventLoop = group.eventLoop
        return await withUnsafeContinuation { continuation in
            let start: @Sendable () -> Void = { body { continuation.resume(returning: $0) } }
            if eventLoop.inEventLoop { start() } else { eventLoop.execute(start) }
        }
    }

    private func validate(resources: [String], ttl: Duration) throws(RedlockError) {
        guard !resources.isEmpty else { throw RedlockError(.invalidArgument, "at least one resource is needed") }
        guard !resources.contains(where: \.isEmpty) else { throw RedlockError(.invalidArgument, "resource names must not be empty") }
        guard resources.count == 1 || Set(resources).count == resources.count else { throw RedlockError(.invalidArgument, "resources must be distinct") }
        guard ttl >= .milliseconds(1) else { throw RedlockError(.invalidArgument, "ttl must be at least 1 ms") }
        guard ttl <= Self.longestDuration else { throw RedlockError(.invalidArgument, "ttl must be at most ten years") }
        if let maximumTTL = configuration.maximumTTL, ttl > maximumTTL {
            throw RedlockError(.invalidArgument, "ttl \(ttl) is longer than the configured maximum TTL \(maximumTTL)")
        }
        guard Validity.drift(ttl: ttl, driftFactor: configuration.driftFactor) < ttl else {
            throw RedlockError(.invalidArgument, "ttl \(ttl) is shorter than its drift allowance")
        }
    }

    private func record(_ error: RedlockError) {
        switch error.code {
        case .lockHeld: metrics.held.increment()
        case .quorumUnreachable: metrics.unreachable.increment()
        case .validityExhausted: metrics.validityExhausted.increment()
        default: break
        }
        if error.code != .lockHeld {
            logger.debug("acquisition attempt failed", metadata: ["redlock.reason": "\(error.code)"])
        }
    }

    private func retryDelay(_ retry: RedlockConfiguration.Retry) -> Duration {
        let base = retry.delay.nanoseconds
        let jitter = max(retry.jitter.nanoseconds, 0)
        let delay = base + (jitter > 0 ? Int64.random(in: -jitter...jitter) : 0)
        return .nanoseconds(max(delay, 1_000_000))
    }

    private static let exactMode = Array("exact".utf8)
    private static let set = Array("SET".utf8)
    private static let nx = Array("NX".utf8)
    private static let px = Array("PX".utf8)

    /// The wall clock in microseconds: where a new fencing counter starts.
    static func fencingSeed() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1_000 - 1
    }

    /// 128 bits from the system CSPRNG (getrandom on Linux), as 32 hex characters: the
    /// default lock value, and a fresh value for callers that build their own.
    public static func randomValue() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var value = [UInt8]()
        value.reserveCapacity(32)
        for _ in 0..<2 {
            let word = generator.next() as UInt64
            for shift in stride(from: 60, through: 0, by: -4) { value.append(digits[Int((word >> UInt64(shift)) & 0xF)]) }
        }
        return value
    }
}

