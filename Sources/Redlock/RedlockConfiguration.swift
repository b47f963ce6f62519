import CoreMetrics
import RedisWire
import Tracing

/// Tunables of a ``Redlock`` client. Every value has a default that follows the Redlock
/// specification.
public struct RedlockConfiguration: @unchecked Sendable {
    // @unchecked: only `metricsFactory` is not declared Sendable (swift-metrics 2.x), and
    // factories are required to be thread-safe.
    /// How failed acquisitions are retried.
    public struct Retry: Sendable {
        /// Retries after the first attempt when no wait deadline is set.
        public var count: Int
        /// Mean delay between attempts.
        public var delay: Duration
        /// Uniform random jitter added to or taken from `delay`, so contenders desynchronise.
        public var jitter: Duration
        /// Overall deadline for one acquisition ("wait up to 5 s"); when set, attempts go on
        /// until it passes, whatever `count` says.
        public var maximumWait: Duration?
        /// When set, the delay doubles after each failed attempt up to this (the jitter grows
        /// in proportion), so a long wait costs the masters fewer attempts. Nil keeps it fixed.
        public var maximumDelay: Duration?

        /// Creates a retry policy; defaults: 3 retries, 200 ms ± 100 ms, no overall deadline,
        /// no backoff.
        public init(
            count: Int = 3,
            delay: Duration = .milliseconds(200),
            jitter: Duration = .milliseconds(100),
            maximumWait: Duration? = nil,
            maximumDelay: Duration? = nil
        ) {
            self.count = count
            self.delay = delay
            self.jitter = jitter
            self.maximumWait = maximumWait
            self.maximumDelay = maximumDelay
        }

        /// The mean delay and jitter after the `failures`-th failed attempt (1 for the first).
        package func delay(afterFailure failures: Int) -> (mean: Duration, jitter: Duration) {
            guard let maximumDelay, maximumDelay > delay, delay > .zero else { return (delay, jitter) }
            let doublings = min(max(failures - 1, 0), 62)
            let grown = delay.nanoseconds.multipliedReportingOverflow(by: Int64(1) << doublings)
            let mean = grown.overflow ? maximumDelay : min(.nanoseconds(grown.partialValue), maximumDelay)
            return (mean, jitter * (mean / delay))
        }

        /// Try once, never retry. (Not called `none`: where a `Retry?` is expected, `.none`
        /// would silently mean nil, that is "use the configuration's policy".)
        public static let never = Retry(count: 0)
    }

    /// How acquisitions that wait are woken when the lock is released, instead of polling.
    public struct WakeUpPolicy: Sendable {
        /// Whether waiters subscribe and sleep until a release is announced (the default), or
        /// poll at the retry policy's delay.
        public var isEnabled: Bool
        /// The longest a waiter sleeps without an announcement before it tries again (even
        /// when the retry policy's delay is longer): a safety net under wake-ups lost with a
        /// master or a connection. It also sizes a waiter's place in the masters' queues,
        /// which each attempt renews (see `Docs/redlock.md`).
        public var longestSleep: Duration
        /// After this many wake-ups in a row (by a release or by the fallback timer) whose
        /// attempt was refused, a waiter claims priority on the masters: the next release goes
        /// to it.
        public var priorityAfterLostWakeUps: Int
        /// How long a priority claim outlives the holder's key, so that a waiter that died
        /// holding it blocks the others no longer than this after the release.
        public var priorityClaimSlack: Duration

        /// Creates a policy; defaults: on, at most 5 s asleep, priority after 3 lost wake-ups,
        /// 1 s claim slack.
        public init(
            isEnabled: Bool = true,
            longestSleep: Duration = .seconds(5),
            priorityAfterLostWakeUps: Int = 3,
            priorityClaimSlack: Duration = .seconds(1)
        ) {
            self.isEnabled = isEnabled
            self.longestSleep = longestSleep
            self.priorityAfterLostWakeUps = priorityAfterLostWakeUps
            self.priorityClaimSlack = priorityClaimSlack
        }
    }

    /// Per-master timeout of one command, much smaller than any TTL (default 50 ms).
    public var instanceTimeout: Duration
    /// How long an acquisition waits for the remaining masters once a quorum has answered
    /// without settling it (a split vote with a rival): the rest are then treated as not
    /// answered, the attempt fails and the caller retries. Without it a paused or
    /// partitioned minority would hold every contender for the full ``instanceTimeout``.
    /// Default 5 ms; nil waits for every master or the timeout.
    public var lateReplyGrace: Duration?
    /// Clock drift allowance as a fraction of the TTL (default 0.01); 2 ms are always added.
    public var driftFactor: Double
    /// Default retry policy of `Redlock.acquire` (and so of `withLock`).
    public var retry: Retry
    /// How waiting acquisitions are woken (see ``WakeUpPolicy``).
    public var wakeUps = WakeUpPolicy()
    /// How often ``Redlock/withLock(_:ttl:wait:retry:fencing:lockDelay:_:)-(String,_,_,_,_,_,_)`` extends its lock; nil means ttl / 3.
    public var autoExtendInterval: Duration?
    /// Prefix of every key this client writes (`<prefix>lock:<resource>`,
    /// `<prefix>fences`, and the markers and queues of waiters).
    public var keyPrefix: String
    /// Whether acquisitions hand out fencing tokens (default true). A fenced acquisition is
    /// one transaction per master that also raises the resource's fence; an unfenced one a
    /// plain `SET NX PX`. Per call, `acquire(..., fencing:)` overrides it.
    public var fencing: Bool
    /// Where lock operations' spans go; nil (the default) uses the process's
    /// `InstrumentationSystem.tracer`, a no-op until the application bootstraps one.
    public var tracer: (any Tracer)?
    /// How long a resource's fence (the highest token handed out for it, kept on each master)
    /// stays after its last fenced acquisition. A resource whose fence was dropped starts
    /// again from the acquiring client's wall clock in microseconds, which is higher than any
    /// token it handed out unless that client's clock is behind the masters' by more than
    /// this retention. Bounds the memory fencing costs per resource.
    public var fencingCounterRetention: Duration
    /// Where metrics go; the process-wide `MetricsSystem` factory when nil. Metrics:
    /// `redlock_acquire_attempts_total`, `redlock_outcomes_total{operation,outcome}`,
    /// `redlock_acquire_duration_seconds`, `redlock_master_errors_total{master,code}`.
    public var metricsFactory: (any MetricsFactory)?
    /// Dimensions added to every metric of this client, such as `[("group", "eu")]` for one
    /// of several clients in a process.
    public var metricsDimensions: [(String, String)] = []
    /// Connection settings used for every master (connect timeout, reconnect backoff, AUTH).
    public var connection: RedisConnectionConfiguration
    /// The longest TTL any client of these masters uses, when known. Turns on the delayed
    /// rejoin of restarted masters: a master this client sees restart (its `run_id` changes
    /// across a reconnect) is counted as unreachable until it has been up this long plus the
    /// drift allowance, so a master that lost its locks in the restart (no persistence) votes
    /// again only once every one of them has expired. Acquire and extend then reject longer
    /// TTLs. Nil (the default) turns both off.
    public var maximumTTL: Duration?

    /// Creates a configuration.
    public init(
        instanceTimeout: Duration = .milliseconds(50),
        lateReplyGrace: Duration? = .milliseconds(5),
        driftFactor: Double = 0.01,
        retry: Retry = .init(),
        autoExtendInterval: Duration? = nil,
        keyPrefix: String = "redlock:",
        fencing: Bool = true,
        fencingCounterRetention: Duration = .seconds(24 * 3600),
        metricsFactory: (any MetricsFactory)? = nil,
        connection: RedisConnectionConfiguration = .init(
            connectTimeout: .milliseconds(500),
            reconnect: .init(initialDelay: .milliseconds(25), maximumDelay: .seconds(1))
        ),
        maximumTTL: Duration? = nil
    ) {
        self.instanceTimeout = instanceTimeout
        self.lateReplyGrace = lateReplyGrace
        self.driftFactor = driftFactor
        self.retry = retry
        self.autoExtendInterval = autoExtendInterval
        self.keyPrefix = keyPrefix
        self.fencing = fencing
        self.metricsFactory = metricsFactory
        self.fencingCounterRetention = fencingCounterRetention
        self.connection = connection
        self.maximumTTL = maximumTTL
    }
}
