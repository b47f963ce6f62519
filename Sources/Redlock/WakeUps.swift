import Logging
import NIOCore
import RedisWire
import Synchronization

/// Wakes callers that wait for a lock when it is released, instead of letting them poll.
///
/// One subscriber connection per master, shared by every waiter of the client; one channel
/// per lock key (the key's own name), subscribed while somebody here waits on it. A release
/// publishes `r` on the channel of each key it deleted, but only while a wait marker or a
/// watch marker exists for it (so a lock nobody waits for costs one `EXISTS` inside the
/// release script); a fenced acquisition publishes `a` where somebody watches.
///
/// Waiters for the same resources queue here in arrival order and only the head of each
/// queue makes attempts: a hand-over costs the masters one acquisition, however many wait in
/// this process. A release by this process wakes its own head at once, without the round trip
/// through a master.
///
/// Wake-ups can be lost (a master restarts, a subscriber connection drops, a key expires),
/// so every sleep has a fallback timer, and every (re)connect of a subscriber wakes every
/// head and watcher. Confined to the masters' event loop.
final class WakeUpHub: @unchecked Sendable {
    // @unchecked: every stored var is read and written only on `eventLoop`; the public
    // entry points hop there first.

    /// Why a sleeping waiter was resumed.
    enum Wake: Sendable, Equatable {
        /// A release (or, for a watcher, any change) was announced, or the queue moved.
        case woken
        /// Its fallback timer or deadline fired.
        case timer
        /// Its task was cancelled.
        case cancelled
    }

    /// A waiter's place: its id, and whether it is first in its queue.
    struct Membership: Sendable {
        let id: Int
        /// A random id the masters know this waiter by, for its priority claim.
        let token: [UInt8]
        /// Its place in the masters' queue: the wall clock (µs) when it joined, the same on
        /// every master.
        let arrival: [UInt8]
        /// When it gives up.
        let deadline: NIODeadline

        init(id: Int, deadline: NIODeadline) {
            self.id = id
            self.deadline = deadline
            token = Redlock.randomValue()
            arrival = Array(String(Redlock.wallClockMicroseconds()).utf8)
        }

        /// How long its place in the masters' queue lasts from an attempt: `lease` (long enough
        /// to reach its next attempt), but never past its deadline.
        func queueLease(_ lease: Duration) -> Duration {
            let untilDeadline = Duration.nanoseconds(max((deadline - .now()).nanoseconds, 1_000_000))
            return min(lease, untilDeadline)
        }
    }

    private final class Waiter {
        let id: Int
        let channels: [[UInt8]]
        let watcher: Bool
        let deadline: NIODeadline
        var continuation: UnsafeContinuation<Wake, Never>?
        var pendingWake = false
        var cancelled = false
        /// When a head sleeps at most until, once promoted after the one before it acquired.
        var fallback: NIODeadline?
        var timer: Scheduled<Void>?
        /// The id the masters know it by.
        let token: [UInt8]

        init(id: Int, token: [UInt8], channels: [[UInt8]], watcher: Bool, deadline: NIODeadline) {
            self.id = id
            self.token = token
            self.channels = channels
            self.watcher = watcher
            self.deadline = deadline
        }
    }

    private struct ChannelState {
        var members: Set<Int> = []
        /// Set while nobody waits on it: unsubscribes when it fires.
        var linger: Scheduled<Void>?
        var confirmed: Set<Int> = []
        var outstanding = 0
        var readiness: [ReadyLatch] = []
        var isReady: Bool { !confirmed.isEmpty || outstanding == 0 }
    }

    /// Runs its action once, when each of a joiner's channels is subscribed somewhere (or
    /// could not be), or at its timer.
    private final class ReadyLatch {
        var remaining: Int
        var action: (() -> Void)?
        var timer: Scheduled<Void>?
        init(remaining: Int, action: @escaping () -> Void) {
            self.remaining = remaining
            self.action = action
        }

        func countDown() {
            remaining -= 1
            if remaining <= 0 { open() }
        }

        func open() {
            timer?.cancel()
            let action = self.action
            self.action = nil
            action?()
        }
    }

    let eventLoop: any EventLoop
    private let makeSubscriber: (Int, WakeUpHub) -> RedisConnection
    private let masterCount: Int
    private let subscribeTimeout: TimeAmount
    private let longestSleep: Duration
    private let logger: Logger
    private var subscribers: [RedisConnection] = []
    private var channels: [[UInt8]: ChannelState] = [:]
    private var waiters: [Int: Waiter] = [:]
    /// Waiters (not watchers) in arrival order, per set of channels.
    private var queues: [[[UInt8]]: [Int]] = [:]
    private var nextID = 0
    private var closed = false
    /// How many channels are subscribed (or lingering), readable from any thread: an
    /// acquisition checks it before its first attempt, and hops to the loop only when it is
    /// not zero.
    private let subscribed = Atomic<Int>(0)
    /// How long a channel stays subscribed after its last waiter left: a waiter that comes
    /// back soon (a worker taking the next job) finds it ready.
    static let linger = TimeAmount.seconds(5)

    /// Whether any channel is subscribed here now (a hint: it may change at once).
    var hasSubscriptions: Bool { subscribed.load(ordering: .relaxed) > 0 }

    /// - Parameter makeSubscriber: makes master `index`'s subscriber connection, whose
    ///   messages and connects it reports to this hub.
    init(
        masterCount: Int,
        eventLoop: any EventLoop,
        subscribeTimeout: Duration,
        longestSleep: Duration,
        logger: Logger,
        makeSubscriber: @escaping (Int, WakeUpHub) -> RedisConnection
    ) {
        self.masterCount = masterCount
        self.eventLoop = eventLoop
        self.subscribeTimeout = .nanoseconds(subscribeTimeout.nanoseconds)
        self.longestSleep = longestSleep
        self.logger = logger
        self.makeSubscriber = makeSubscriber
    }

    // MARK: Joining and leaving

    /// Joins the queue for `channels` (or, as a `watcher`, only listens) and returns once each
    /// channel is subscribed on at least one master, or could not be within the timeout.
    func join(channels: [[UInt8]], watcher: Bool, deadline: NIODeadline) async -> Membership {
        await enroll(channels: channels, watcher: watcher, deadline: deadline, onlyIfSubscribed: false)!
    }

    /// Joins the queue for `channels` before the first attempt, if every one of them is
    /// subscribed already (somebody here waits, or waited moments ago): the first attempt can
    /// then be a waiter's, and a caller lines up behind this client's waiters instead of
    /// overtaking them. Nil when a channel is not subscribed.
    func joinIfSubscribed(channels: [[UInt8]], deadline: NIODeadline) async -> Membership? {
        await enroll(channels: channels, watcher: false, deadline: deadline, onlyIfSubscribed: true)
    }

    private func enroll(channels: [[UInt8]], watcher: Bool, deadline: NIODeadline, onlyIfSubscribed: Bool) async -> Membership? {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Membership?, Never>) in
            self.onLoop {
                if onlyIfSubscribed, !channels.allSatisfy({ self.channels[$0] != nil }) { return continuation.resume(returning: nil) }
                let membership = self.register(channels: channels, watcher: watcher, deadline: deadline)
                self.whenSubscribed(channels) { continuation.resume(returning: membership) }
            }
        }
    }

    /// Leaves the queue. `holding`: this waiter acquired a lock that lives that long, so the
    /// next in the queue sleeps until a release (or that long) instead of trying at once.
    func leave(_ membership: Membership, holding: Duration?) {
        onLoop { self.remove(membership.id, holding: holding) }
    }

    /// Whether `membership` is first in its queue: only the head makes attempts.
    func isHead(_ membership: Membership) async -> Bool {
        await withUnsafeContinuation { continuation in
            self.onLoop {
                continuation.resume(returning: self.waiters[membership.id].map(self.leads) ?? true)
            }
        }
    }

    /// How long the wait markers must live for this queue: until its last waiter's deadline
    /// (`others` leaves this waiter out; nil when nobody else waits).
    func markerLifetime(_ membership: Membership, others: Bool = false) -> Duration? {
        guard let waiter = waiters[membership.id] else { return others ? nil : .seconds(1) }
        let queue = (queues[waiter.channels] ?? []).filter { !others || $0 != membership.id }
        guard let last = queue.compactMap({ waiters[$0]?.deadline }).max() ?? (others ? nil : waiter.deadline) else { return nil }
        return .nanoseconds(max((last - .now()).nanoseconds, 0)) + .seconds(1)
    }

    // MARK: Sleeping

    /// Sleeps until woken, until `fallback` (heads and watchers only) or `deadline`, or until
    /// the task is cancelled. A wake that arrived since the last sleep returns at once.
    func sleep(_ membership: Membership, fallback: NIODeadline) async -> Wake {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Wake, Never>) in
                self.onLoop { self.park(membership.id, fallback: fallback, continuation) }
            }
        } onCancel: {
            self.onLoop { self.cancel(membership.id) }
        }
    }

    /// ``sleep(_:fallback:)`` for a caller that stops when cancelled: throws
    /// ``RedlockError/Code/cancelled``, saying it was cancelled while `activity`.
    func sleepUnlessCancelled(_ membership: Membership, fallback: NIODeadline, while activity: String) async throws(RedlockError) -> Wake {
        let wake = await sleep(membership, fallback: fallback)
        if wake == .cancelled || Task.isCancelled { throw RedlockError(.cancelled, "cancelled while \(activity)") }
        return wake
    }

    private func park(_ id: Int, fallback: NIODeadline, _ continuation: UnsafeContinuation<Wake, Never>) {
        guard let waiter = waiters[id], !waiter.cancelled else { return continuation.resume(returning: .cancelled) }
        if waiter.pendingWake {
            waiter.pendingWake = false
            return continuation.resume(returning: .woken)
        }
        waiter.continuation = continuation
        // A promotion to head since the last sleep set a shorter fallback (the holder's lock):
        // the caller, which asked before it knew, must not stretch it.
        waiter.fallback = min(waiter.fallback ?? fallback, fallback)
        armTimer(waiter)
    }

    private func armTimer(_ waiter: Waiter) {
        waiter.timer?.cancel()
        guard waiter.continuation != nil else { return }
        let until = leads(waiter) ? min(waiter.deadline, waiter.fallback ?? waiter.deadline) : waiter.deadline
        let confined = NIOLoopBound(waiter, eventLoop: eventLoop)
        waiter.timer = eventLoop.scheduleTask(deadline: until) { self.resume(confined.value, .timer) }
    }

    private func resume(_ waiter: Waiter, _ wake: Wake) {
        waiter.timer?.cancel()
        waiter.timer = nil
        if waiter.continuation != nil { waiter.fallback = nil }  // each sleep sets its own
        guard let continuation = waiter.continuation else {
            if wake == .woken { waiter.pendingWake = true }
            return
        }
        waiter.continuation = nil
        continuation.resume(returning: wake)
    }

    private func cancel(_ id: Int) {
        guard let waiter = waiters[id] else { return }
        waiter.cancelled = true
        resume(waiter, .cancelled)
    }

    // MARK: Announcements

    /// A lock on `channels` was released (here, or announced by a master): wake the head of
    /// every queue on them, and their watchers.
    func released(_ channels: [[UInt8]]) {
        guard !self.channels.isEmpty else { return }
        var woken = Set<Int>()
        for channel in channels {
            for id in self.channels[channel]?.members ?? [] where !woken.contains(id) {
                guard let waiter = waiters[id] else { continue }
                if leads(waiter) {
                    woken.insert(id)
                    resume(waiter, .woken)
                }
            }
        }
    }

    /// A lock on `channels` was acquired: wake their watchers.
    func acquired(_ channels: [[UInt8]]) {
        guard !self.channels.isEmpty else { return }
        for channel in channels {
            for id in self.channels[channel]?.members ?? [] {
                if let waiter = waiters[id], waiter.watcher { resume(waiter, .woken) }
            }
        }
    }

    /// A subscriber's message (on the loop): `a` (acquired), `r` (released, nobody named) or
    /// `r` and a queue entry: the release names the masters' first waiter, and only that
    /// waiter (if it is here) is woken; watchers always are.
    func received(channel: [UInt8], payload: [UInt8]) {
        switch payload.first {
        case UInt8(ascii: "r") where payload.count > 1:
            let token = payload.dropFirst().prefix { $0 != UInt8(ascii: ":") }
            for id in channels[channel]?.members ?? [] {
                guard let waiter = waiters[id] else { continue }
                if waiter.watcher || waiter.token.elementsEqual(token) { resume(waiter, .woken) }
            }
        case UInt8(ascii: "r"): released([channel])
        case UInt8(ascii: "a"): acquired([channel])
        default: break
        }
    }

    /// Master `index`'s subscriber (re)connected: subscribe again to every channel, and wake
    /// every head and watcher, which may have missed a release while it was away.
    func connected(master index: Int) {
        for channel in channels.keys { subscribe(channel, on: index) }
        for waiter in waiters.values where leads(waiter) {
            resume(waiter, .woken)
        }
    }

    /// Closes the subscriber connections and wakes every sleeper (to find the client closed).
    func close() async {
        let connections: [RedisConnection] = await withUnsafeContinuation { continuation in
            self.onLoop {
                self.closed = true
                for waiter in self.waiters.values { self.resume(waiter, .woken) }
                continuation.resume(returning: self.subscribers)
            }
        }
        for connection in connections { await connection.close() }
    }

    // MARK: Subscriptions

    /// Whether `waiter` is woken by releases and wakes at its fallback: a watcher, or the
    /// first waiter of its queue (the others wait for their turn).
    private func leads(_ waiter: Waiter) -> Bool {
        waiter.watcher || queues[waiter.channels]?.first == waiter.id
    }

    private func register(channels: [[UInt8]], watcher: Bool, deadline: NIODeadline) -> Membership {
        if subscribers.isEmpty && !closed {
            subscribers = (0..<masterCount).map { makeSubscriber($0, self) }
        }
        nextID += 1
        let id = nextID
        let membership = Membership(id: id, deadline: deadline)
        waiters[id] = Waiter(id: id, token: membership.token, channels: channels, watcher: watcher, deadline: deadline)
        if !watcher { queues[channels, default: []].append(id) }
        for channel in channels {
            let isNew = self.channels[channel] == nil
            self.channels[channel, default: ChannelState()].members.insert(id)
            self.channels[channel]?.linger?.cancel()
            self.channels[channel]?.linger = nil
            if isNew {
                subscribed.add(1, ordering: .relaxed)
                for index in subscribers.indices { subscribe(channel, on: index) }
            }
        }
        return membership
    }

    private func remove(_ id: Int, holding: Duration?) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        waiter.timer?.cancel()
        if let continuation = waiter.continuation {
            waiter.continuation = nil
            continuation.resume(returning: .cancelled)
        }
        if !waiter.watcher, var queue = queues[waiter.channels] {
            let wasHead = queue.first == id
            queue.removeAll { $0 == id }
            queues[waiter.channels] = queue.isEmpty ? nil : queue
            if wasHead, let next = queue.first.flatMap({ waiters[$0] }) {
                if let holding {
                    // The lock was just taken here: the next waits for its release.
                    next.fallback = .now() + .nanoseconds(min(holding, longestSleep).nanoseconds)
                    armTimer(next)
                } else {
                    resume(next, .woken)
                }
            }
        }
        for channel in waiter.channels {
            self.channels[channel]?.members.remove(id)
            if self.channels[channel]?.members.isEmpty == true, self.channels[channel]?.linger == nil {
                self.channels[channel]?.linger = eventLoop.scheduleTask(in: Self.linger) { self.unsubscribeIfIdle(channel) }
            }
        }
    }

    private func unsubscribeIfIdle(_ channel: [UInt8]) {
        guard let state = channels[channel], state.members.isEmpty else { return }
        channels[channel] = nil
        subscribed.subtract(1, ordering: .relaxed)
        for subscriber in subscribers { command([Array("UNSUBSCRIBE".utf8), channel], on: subscriber) { _ in } }
    }

    private func whenSubscribed(_ channels: [[UInt8]], then ready: @escaping () -> Void) {
        let unready = channels.filter { self.channels[$0]?.isReady == false }
        guard !unready.isEmpty else { return ready() }
        let latch = ReadyLatch(remaining: unready.count, action: ready)
        for channel in unready { self.channels[channel]?.readiness.append(latch) }
        let confined = NIOLoopBound(latch, eventLoop: eventLoop)
        latch.timer = eventLoop.scheduleTask(in: subscribeTimeout) { confined.value.open() }
    }

    private func subscribe(_ channel: [UInt8], on index: Int) {
        guard index < subscribers.count else { return }
        channels[channel]?.outstanding += 1
        command([Array("SUBSCRIBE".utf8), channel], on: subscribers[index]) { succeeded in
            guard var state = self.channels[channel] else { return }
            state.outstanding -= 1
            if succeeded { state.confirmed.insert(index) }
            var latches: [ReadyLatch] = []
            if state.isReady {
                latches = state.readiness
                state.readiness = []
            }
            self.channels[channel] = state
            for latch in latches { latch.countDown() }
        }
    }

    private func command(_ arguments: [[UInt8]], on connection: RedisConnection, then done: @escaping (Bool) -> Void) {
        guard let command = try? RedisCommand(arguments) else { return done(false) }
        let deadline = NIODeadline.now() + subscribeTimeout
        let finish = LoopConfined(done)
        connection.send(command, deadline: deadline) { result in
            if case .failure(let error) = result {
                self.logger.debug("subscriber command failed", metadata: ["error": "\(error.message)"])
            }
            if case .success = result { finish.value(true) } else { finish.value(false) }
        }
    }

    private func onLoop(_ body: @escaping () -> Void) {
        let work = LoopConfined(body)
        if eventLoop.inEventLoop { work.value() } else { eventLoop.execute { work.value() } }
    }
}

/// Carries a value (a closure) that is used only on the event loop across a `@Sendable`
/// boundary (`execute`, a completion).
private struct LoopConfined<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
