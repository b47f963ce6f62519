import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import RedisWire
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    let group: MasterConnections
    /// An executor on the event loop that owns every master connection. Run latency-critical
    /// callers under `withTaskExecutorPreference(redlock.taskExecutor) { ... }` and a lock
    /// operation costs no thread hop at all (see `EventLoopTaskExecutor`).
    public let taskExecutor: EventLoopTaskExecutor
    let logger: Logger
    let metrics: RedlockMetrics
    let lockPrefix: [UInt8]
    /// Every resource's fence on a master, in one sorted set: member the lock key, score the
    /// highest token handed out for it (see `Docs/redlock.md`, "Fencing tokens").
    let fencesKey: [UInt8]
    /// Markers next to a lock (see ``WakeUpHub``): somebody waits, somebody watches, a
    /// waiter's priority claim, the waiters' queue.
    let waitPrefix: [UInt8]
    let watchPrefix: [UInt8]
    let priorityPrefix: [UInt8]
    let queuePrefix: [UInt8]
    /// A read-write lock's readers and its waiting writer (see ``ReadWriteLock``).
    let readersPrefix: [UInt8]
    let writerWaitingPrefix: [UInt8]
    /// Which masters vote (see ``MasterAdmission``).
    let admission: MasterAdmission
    /// Why this client cannot lock at all (the same master named twice), once known.
    let misconfiguration: Misconfiguration
    /// Wake-ups for the acquisitions that wait (see ``WakeUpHub``).
    let wakeUps: WakeUpHub
    /// The fences' retention in milliseconds, as the scripts take it.
    let retentionArgument: [UInt8]
    /// The highest fencing token this client handed out or saw refused: every candidate is
    /// above it.
    private let fencingFloor = Atomic<Int64>(0)
    /// When (the wall clock in microseconds) the fences are next pruned of resources that
    /// nobody acquired for the retention.
    let nextFencePrune = Atomic<Int64>(0)
    /// Operations running now, and whether shutdown has begun (see ``shutdown()``).
    private let inFlight = Atomic<Int>(0)
    private let closing = Atomic<Bool>(false)
    /// The longest TTL or wait an operation takes: ten years.
    static let longestDuration = Duration.seconds(10 * 365 * 24 * 3600)

    /// Creates a client. It dials lazily, or in ``run()`` / ``connect()``.
    /// - Parameters:
    ///   - masters: the independent masters; use an odd number (3 or 5).
    ///   - configuration: timeouts, retries, fencing and the connections' settings.
    ///   - eventLoopGroup: where to pick the one event loop the connections live on.
    ///   - logger: where the client logs; it never logs lock values.
    public convenience init(
        masters: [RedisServerAddress],
        configuration: RedlockConfiguration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redlock")
    ) {
        self.init(endpoints: masters.map { RedisEndpoint($0) }, configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
    }

    /// Creates a client over masters named with their own settings (URLs such as
    /// `rediss://user:password@host:6380/2`): each endpoint's TLS, user, password and database
    /// apply over `configuration.connection`.
    /// - Parameters:
    ///   - endpoints: the independent masters; use an odd number (3 or 5).
    ///   - configuration: timeouts, retries, fencing and the connections' shared settings.
    ///   - eventLoopGroup: where to pick the one event loop the connections live on.
    ///   - logger: where the client logs; it never logs lock values or passwords.
    public init(
        endpoints: [RedisEndpoint],
        configuration: RedlockConfiguration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "redlock")
    ) {
        let masters = endpoints.map(\.address)
        precondition(!masters.isEmpty, "Redlock needs at least one master")
        let eventLoop = eventLoopGroup.next()
        var connectionConfiguration = configuration.connection
        connectionConfiguration.preloadedScripts += Scripts.all
        self.configuration = configuration
        self.masters = masters
        self.logger = logger
        let metrics = RedlockMetrics(
            masters: masters.map(\.description),
            factory: configuration.metricsFactory,
            dimensions: configuration.metricsDimensions
        )
        self.metrics = metrics
        // The same master twice would vote twice: a "quorum" that is not one. Refused by every
        // operation, as is one server reached under two addresses once identified.
        let misconfiguration = Misconfiguration(Self.duplicate(in: masters))
        self.misconfiguration = misconfiguration
        let horizon = GrantHorizon(
            masters: masters.count,
            key: Array((configuration.keyPrefix + "horizon").utf8),
            driftFactor: configuration.driftFactor,
            eventLoop: eventLoop
        )
        let admission = MasterAdmission(
            masters: masters.map(\.description),
            keyPrefix: configuration.keyPrefix,
            maximumHoldOut: configuration.maximumTTL.map { $0 + Validity.drift(ttl: $0, driftFactor: configuration.driftFactor) },
            driftFactor: configuration.driftFactor,
            instanceTimeout: configuration.instanceTimeout,
            connectTimeout: connectionConfiguration.connectTimeout,
            logger: logger,
            onHoldOut: { metrics.heldOut($0) },
            onDuplicate: { misconfiguration.record($0) }
        )
        self.admission = admission
        self.group = MasterConnections(
            connections: endpoints.enumerated().map { index, endpoint in
                var settings = endpoint.configuration(from: connectionConfiguration)
                settings.admissionGate = admission.gate(master: index, horizon: horizon)
                return RedisConnection(address: endpoint.address, configuration: settings, eventLoop: eventLoop, logger: logger)
            },
            eventLoop: eventLoop,
            horizon: horizon
        )
        self.taskExecutor = EventLoopTaskExecutor(eventLoop)
        self.wakeUps = WakeUpHub(
            masterCount: endpoints.count,
            eventLoop: eventLoop,
            subscribeTimeout: connectionConfiguration.connectTimeout + configuration.instanceTimeout,
            longestSleep: configuration.wakeUps.longestSleep,
            logger: logger
        ) { index, hub in
            RedisConnection(
                subscriberTo: endpoints[index].address,
                configuration: endpoints[index].configuration(from: connectionConfiguration),
                eventLoop: eventLoop,
                logger: logger,
                onMessage: { channel, payload in hub.received(channel: channel, payload: payload) },
                onConnected: { hub.connected(master: index) }
            )
        }
        self.lockPrefix = Array((configuration.keyPrefix + "lock:").utf8)
        self.fencesKey = Array((configuration.keyPrefix + "fences").utf8)
        self.waitPrefix = Array((configuration.keyPrefix + "wait:").utf8)
        self.watchPrefix = Array((configuration.keyPrefix + "watch:").utf8)
        self.priorityPrefix = Array((configuration.keyPrefix + "first:").utf8)
        self.queuePrefix = Array((configuration.keyPrefix + "queue:").utf8)
        self.readersPrefix = Array((configuration.keyPrefix + "readers:").utf8)
        self.writerWaitingPrefix = Array((configuration.keyPrefix + "writer:").utf8)
        self.retentionArgument = Array(String(configuration.fencingCounterRetention.millisecondsRoundedUp).utf8)
    }

    /// How many masters must agree: N/2 + 1.
    public var quorum: Int { group.quorum }

    /// Dials every master and waits until each is connected or has failed once; masters that
    /// failed keep re-dialling in the background. Returns how many are connected.
    /// Also waits (at most three connect timeouts) until every connected master has been
    /// identified and admitted or held out (see ``masterStatus()``).
    @discardableResult
    public func connect() async -> Int {
        let connected = await askEveryMaster { (try? await $0.connect()) != nil }.count { $0 }
        // Bounded: a decision reads every master once, each within the connect timeout.
        let deadline = ContinuousClock.now + configuration.connection.connectTimeout * 3
        while ContinuousClock.now < deadline {
            var awaiting = false
            for connection in group.connections where await connection.isAwaitingAdmission { awaiting = true }
            guard awaiting else { break }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return connected
    }

    /// Each master's standing in the vote, in the masters' order: voting, held out (until when
    /// and why), or unreachable (and why).
    public func masterStatus() async -> [MasterStatus] {
        let standings = await admission.standings()
        var statuses: [MasterStatus] = []
        for (index, connection) in group.connections.enumerated() {
            let connected = await connection.isConnected
            let state: MasterStatus.State
            switch standings[index] {
            case .voting, .identifying:
                // Identifying and connected: a server that refused INFO, used unchecked.
                state = connected ? .voting : .unreachable(reason: "not connected")
            case .heldOut(let until, let reason): state = .heldOut(until: until, reason: reason)
            case .deciding(let reason): state = .heldOut(until: nil, reason: reason)
            case .unreachable(let reason): state = .unreachable(reason: reason)
            }
            statuses.append(MasterStatus(master: masters[index], state: state))
        }
        return statuses
    }

    /// How long until enough masters vote for a quorum: zero when they do now, nil when that
    /// depends on masters that are unreachable or still being decided.
    public func timeUntilQuorum() async -> Duration? {
        MasterStatus.timeUntilQuorum(await masterStatus(), quorum: quorum)
    }

    /// Throws what keeps this client from locking at all (one master named twice, or one
    /// server reached under two addresses), after ``connect()``.
    public func verifyMasters() async throws(RedlockError) {
        await connect()
        if let error = misconfiguration.error { throw error }
    }

    /// How many masters are connected right now.
    public func reachableMasters() async -> Int {
        var count = 0
        for connection in group.connections where await connection.isConnected { count += 1 }
        return count
    }

    /// How many masters answer a `PING` within the instance timeout now: a health check that,
    /// unlike ``reachableMasters()``, also catches a master that is connected but stalled.
    public func answeringMasters() async -> Int {
        let timeout = configuration.instanceTimeout
        return await askEveryMaster { (try? await $0.send("PING", timeout: timeout))?.string == "PONG" }.count { $0 }
    }

    /// Each master's value of a server setting (`CONFIG GET parameter`), in the masters'
    /// order; nil where it could not be read (unreachable, or CONFIG refused by an ACL).
    public func serverSetting(_ parameter: String) async -> [String?] {
        let timeout = max(configuration.instanceTimeout, .seconds(1))
        return await askEveryMaster { connection -> String? in
            let pair = (try? await connection.send("CONFIG", "GET", parameter, timeout: timeout))?.array ?? []
            return pair.count == 2 ? pair[1].string : nil
        }
    }

    /// `command`'s reply from every master at once, in the masters' order; nil where a master
    /// failed or took longer than `timeout` (at least the instance timeout): for state kept
    /// beside the locks, such as stored idempotent responses.
    package func sendToEveryMaster(_ command: [[UInt8]], timeout: Duration = .seconds(1)) async -> [RESPValue?] {
        let timeout = max(configuration.instanceTimeout, timeout)
        return await askEveryMaster { try? await $0.send(command, timeout: timeout) }
    }

    /// `question`'s answer from every master at once, in the masters' order.
    private func askEveryMaster<Answer: Sendable>(_ question: @escaping @Sendable (RedisConnection) async -> Answer) async -> [Answer] {
        await withTaskGroup(of: (Int, Answer).self) { tasks in
            for (index, connection) in group.connections.enumerated() {
                tasks.addTask { (index, await question(connection)) }
            }
            var answers: [(Int, Answer)] = []
            for await answer in tasks { answers.append(answer) }
            return answers.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// Runs `script` on master `index` alone, within the instance timeout: for state one
    /// master keeps, such as a rate limit shared by the server's replicas.
    package func evaluate(
        onMaster index: Int,
        _ script: RedisScript,
        keys: [[UInt8]],
        arguments: [[UInt8]]
    ) async throws(RedisWireError) -> RESPValue {
        try await group.connections[index].evaluate(script, keys: keys, arguments: arguments, timeout: configuration.instanceTimeout)
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
        await wakeUps.close()
        for connection in group.connections { await connection.close() }
    }

    /// Runs one operation: refused once shutdown has begun, and counted so that shutdown
    /// waits for it.
    func tracked<T>(_ body: () async throws(RedlockError) -> T) async throws(RedlockError) -> T {
        // Count first, then check: shutdown sets `closing` before it waits for the count.
        inFlight.add(1, ordering: .sequentiallyConsistent)
        defer { inFlight.subtract(1, ordering: .sequentiallyConsistent) }
        guard !closing.load(ordering: .sequentiallyConsistent) else { throw RedlockError(.shutdown, "the client has been shut down") }
        return try await body()
    }

    var isClosing: Bool { closing.load(ordering: .relaxed) }

    // MARK: - Helpers

    func lockKey(_ resource: String) -> [UInt8] { key(lockPrefix, resource) }
    /// `resource`'s key of the kind `prefix` names.
    func key(_ prefix: [UInt8], _ resource: String) -> [UInt8] { prefix + Array(resource.utf8) }

    /// How long a waiter's place in the masters' queues lasts after each of its attempts: its
    /// longest sleep, then the next attempt's round trip, with a second to spare. A waiter that
    /// stops attempting (its process died) lapses this soon after its last attempt, and
    /// releases pass it by instead of naming it until its deadline.
    package var queueLease: Duration { configuration.wakeUps.longestSleep + configuration.instanceTimeout + .seconds(1) }

    func instanceDeadline() -> NIODeadline {
        .now() + .nanoseconds(configuration.instanceTimeout.nanoseconds)
    }

    /// Runs `body` on the masters' event loop and awaits the result it passes to its completion
    /// (which must be called exactly once, on the loop): one hop in, one out, none when the
    /// caller already runs on that loop. No promise or future on this path.
    func onLoop<T: Sendable>(
        _ body: @escaping @Sendable (@escaping @Sendable (Result<T, RedlockError>) -> Void) -> Void
    ) async -> Result<T, RedlockError> {
        let eventLoop = group.eventLoop
        return await withUnsafeContinuation { continuation in
            let start: @Sendable () -> Void = { body { continuation.resume(returning: $0) } }
            if eventLoop.inEventLoop { start() } else { eventLoop.execute(start) }
        }
    }

    func validate(resources: [String], ttl: Duration, lockDelay: Duration = .zero) throws(RedlockError) {
        if let misconfigured = misconfiguration.error { throw misconfigured }
        guard !resources.isEmpty else { throw RedlockError(.invalidArgument, "at least one resource is needed") }
        guard !resources.contains(where: \.isEmpty) else { throw RedlockError(.invalidArgument, "resource names must not be empty") }
        guard resources.count == 1 || Set(resources).count == resources.count else {
            throw RedlockError(.invalidArgument, "resources must be distinct")
        }
        guard ttl >= .milliseconds(1) else { throw RedlockError(.invalidArgument, "ttl must be at least 1 ms") }
        guard ttl <= Self.longestDuration else { throw RedlockError(.invalidArgument, "ttl must be at most ten years") }
        if let maximumTTL = configuration.maximumTTL, ttl + lockDelay > maximumTTL {
            let asked = lockDelay == .zero ? "ttl \(ttl)" : "ttl \(ttl) plus lock delay \(lockDelay)"
            throw RedlockError(.invalidArgument, "\(asked) is longer than the configured maximum TTL \(maximumTTL)")
        }
        guard Validity.drift(ttl: ttl, driftFactor: configuration.driftFactor) < ttl else {
            throw RedlockError(.invalidArgument, "ttl \(ttl) is shorter than its drift allowance")
        }
    }

    func record(_ error: RedlockError) {
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

    func retryDelay(_ retry: RedlockConfiguration.Retry, afterFailure failures: Int = 1) -> Duration {
        let (mean, spread) = retry.delay(afterFailure: failures)
        let base = mean.nanoseconds
        let jitter = max(spread.nanoseconds, 0)
        let delay = base + (jitter > 0 ? Int64.random(in: -jitter...jitter) : 0)
        return .nanoseconds(max(delay, 1_000_000))
    }

    static let exactMode = Array("exact".utf8)
    static let set = Array("SET".utf8)
    static let nx = Array("NX".utf8)
    static let px = Array("PX".utf8)

    /// A fencing token to try: the wall clock in microseconds, or just above the highest token
    /// this client handed out or saw a fence hold, whichever is higher; never the same twice.
    func nextFencingCandidate() -> Int64 {
        var floor = fencingFloor.load(ordering: .relaxed)
        while true {
            let candidate = max(Self.wallClockMicroseconds(), floor + 1)
            let (exchanged, current) = fencingFloor.compareExchange(expected: floor, desired: candidate, ordering: .relaxed)
            if exchanged { return candidate }
            floor = current
        }
    }

    /// Makes every later candidate higher than `fence`, a fence a master reported.
    func raiseFencingFloor(to fence: Int64) {
        var floor = fencingFloor.load(ordering: .relaxed)
        while floor < fence {
            let (exchanged, current) = fencingFloor.compareExchange(expected: floor, desired: fence, ordering: .relaxed)
            if exchanged { return }
            floor = current
        }
    }

    /// Fences dropped per prune call: bounds the time one call holds a master.
    static let pruneBatch = Array("1000".utf8)

    /// Drops, now and then, the fences of resources that nobody acquired for the retention:
    /// at most every second while this client acquires fenced locks, and again at once while a
    /// call finds a full batch.
    func pruneFencesIfDue() {
        let now = Self.wallClockMicroseconds()
        let due = nextFencePrune.load(ordering: .relaxed)
        guard now >= due, nextFencePrune.compareExchange(expected: due, desired: now + 1_000_000, ordering: .relaxed).exchanged,
            let prune = try? FanOutCommand.script(Scripts.pruneFences, keys: [fencesKey], arguments: [retentionArgument, Self.pruneBatch])
        else { return }
        group.fanOut(prune, deadline: instanceDeadline()) { replies in
            if replies.contains(where: { if case .success(.integer(1000))? = $0 { true } else { false } }) {
                self.nextFencePrune.store(0, ordering: .relaxed)
            }
        }
    }

    /// The wall clock in microseconds.
    static func wallClockMicroseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1_000 - 1
    }

    /// 128 bits from the system CSPRNG (getrandom on Linux), as 32 hex characters: the
    /// default lock value, and a fresh value for callers that build their own.
    public static func randomValue() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        // Two draws, not sixteen: each draw is a getrandom call.
        let words: [UInt64] = [generator.next(), generator.next()]
        return words.flatMap { word in withUnsafeBytes(of: word, Array.init) }.hexDigits
    }
}

extension Redlock {
    /// The first master named twice, as the error every operation then throws.
    static func duplicate(in masters: [RedisServerAddress]) -> RedlockError? {
        var seen: Set<RedisServerAddress> = []
        for master in masters where !seen.insert(master).inserted {
            return RedlockError(.invalidArgument, "master \(master) is listed twice: one server must not vote twice")
        }
        return nil
    }

    /// For an unreachable quorum: when enough masters held out rejoin, with those that
    /// answered, for a quorum; nil when that depends on masters that failed otherwise.
    static func timeUntilHeldOutMastersRestoreAQuorum(_ replies: Replies, quorum: Int) -> Duration? {
        var answered = 0
        var rejoining: [Duration] = []
        for reply in replies {
            switch reply {
            case .success?: answered += 1
            case .failure(let error)?: if let left = error.heldOutFor { rejoining.append(left) }
            case nil: break
            }
        }
        guard answered < quorum else { return nil }
        return MasterStatus.timeUntil(quorum, voting: answered, rejoiningIn: rejoining)
    }

    /// For an unreachable quorum: which masters are held out, unidentified or unsupported, and
    /// why (empty when none is).
    func whyMastersAreOut(_ replies: Replies) -> String {
        var reasons: [String] = []
        for (index, reply) in replies.enumerated() {
            guard case .failure(let error)? = reply, [.heldOut, .unidentified, .unsupportedServer].contains(error.code) else { continue }
            reasons.append("\(masters[index]): \(error.message)")
        }
        return reasons.isEmpty ? "" : " (" + reasons.joined(separator: "; ") + ")"
    }
}

/// Why a client cannot lock at all, once known: the first error recorded stays.
final class Misconfiguration: Sendable {
    private let recorded: Mutex<RedlockError?>
    /// Read on every operation: a plain load while nothing is recorded.
    private let isRecorded: Atomic<Bool>

    init(_ error: RedlockError?) {
        recorded = Mutex(error)
        isRecorded = Atomic(error != nil)
    }

    /// The error every operation throws; nil while the client is usable.
    var error: RedlockError? {
        guard isRecorded.load(ordering: .acquiring) else { return nil }
        return recorded.withLock { $0 }
    }

    func record(_ error: RedlockError) {
        recorded.withLock { $0 = $0 ?? error }
        isRecorded.store(true, ordering: .releasing)
    }
}
