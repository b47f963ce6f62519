import ServiceLifecycle
import Synchronization

/// One leader for a named role across every process that campaigns for it.
///
/// Leadership is a fenced Redlock lock on the role, kept alive by extensions as
/// ``Redlock/withLock(_:ttl:wait:retry:fencing:lockDelay:_:)-(String,_,_,_,_,_,_)`` keeps its
/// lock. Its term is the lock's fencing token: every election hands out a higher term than
/// any before it, so the work of a deposed leader can be refused by the term it carries.
///
/// Use it as a swift-service-lifecycle `Service` and follow ``events``:
///
/// ```swift
/// let election = try LeaderElection("scheduler", on: redlock)
/// let group = ServiceGroup(services: [redlock, election], logger: logger)
/// for await event in election.events {
///     switch event {
///     case .elected(let term): startScheduling(term: term)
///     case .lost: stopScheduling()
///     }
/// }
/// ```
///
/// or run one piece of work while leading, cancelled if the leadership is lost:
///
/// ```swift
/// try await election.lead { leadership in
///     try await schedule(term: leadership.fencingToken!)
/// }
/// ```
public final class LeaderElection: Service, Sendable {
    /// A change of this process's leadership.
    public enum Event: Sendable, Hashable {
        /// This process leads, in the given term (the leadership lock's fencing token).
        case elected(term: Int64)
        /// This process no longer leads: the leadership was lost, or it resigned.
        case lost
    }

    /// The role's name: the resource of the leadership lock.
    public let role: String
    /// The leadership lock's TTL: a leader that dies is replaced at most this long (and the
    /// drift allowance) after its last extension.
    public let ttl: Duration
    let redlock: Redlock
    private let listeners = Mutex(Listeners())

    private struct Listeners {
        var nextID = 0
        var streams: [Int: AsyncStream<Event>.Continuation] = [:]
        var term: Int64?
        var finished = false
    }

    /// An election for `role` over `redlock`'s masters.
    /// - Throws: ``RedlockError/Code/invalidArgument`` for an empty role or a TTL the client
    ///   refuses.
    public init(_ role: String, on redlock: Redlock, ttl: Duration = .seconds(10)) throws(RedlockError) {
        try redlock.validate(resources: [role], ttl: ttl)
        self.role = role
        self.ttl = ttl
        self.redlock = redlock
    }

    /// The term this process leads in now; nil while it does not lead.
    public var term: Int64? { listeners.withLock { $0.term } }

    /// This process's leadership changes from now on, starting with ``Event/elected(term:)``
    /// if it leads already. Each call makes a new sequence; all of them finish when ``run()``
    /// returns.
    public var events: AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .unbounded)
        let id: Int? = listeners.withLock { listeners in
            guard !listeners.finished else { return nil }
            listeners.nextID += 1
            listeners.streams[listeners.nextID] = continuation
            if let term = listeners.term { continuation.yield(.elected(term: term)) }
            return listeners.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.listeners.withLock { $0.streams.removeValue(forKey: id) }
        }
        return stream
    }

    /// Campaigns for the role and keeps it until the task is cancelled or a graceful shutdown
    /// begins; then resigns (releases the role at once, so that another process is elected
    /// without waiting for the TTL). A lost leadership is reported and campaigned for again.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.lead { _ in
                        while true { try await Task.sleep(for: .seconds(3_600)) }
                    }
                } catch {
                    // Lost (campaign again), cancelled (the loop ends), or the masters failed
                    // too long for this round (campaign again).
                }
            }
        }
        let streams = listeners.withLock { listeners in
            listeners.finished = true
            defer { listeners.streams = [:] }
            return listeners.streams.values
        }
        // Outside the mutex: finishing calls each stream's termination handler, which takes it.
        for stream in streams { stream.finish() }
    }

    /// Campaigns until elected, runs `body` while leading, and resigns when it returns or
    /// throws. The body is cancelled if the leadership is lost (then this throws
    /// ``RedlockError/Code/lockLost`` once the body has returned), as in `withLock`.
    ///
    /// - Parameters:
    ///   - wait: how long to campaign; nil campaigns until elected or cancelled.
    ///   - body: the leader's work; the handle's fencing token is the term.
    /// - Throws: ``RedlockError/Code/lockHeld`` when `wait` ran out, ``RedlockError/Code/lockLost``,
    ///   ``RedlockError/Code/cancelled``, or what the body throws.
    public func lead<Value: Sendable>(
        wait: Duration? = nil,
        _ body: @escaping @Sendable (LockHandle) async throws -> Value
    ) async throws -> Value {
        let leadership = try await campaign(wait: wait)
        publish(term: leadership.fencingToken)
        defer { publish(term: nil) }
        return try await redlock.withLock(holding: leadership, body)
    }

    /// Acquires the role, waiting in rounds (each a waiter's wait, woken by the leader's
    /// release), until elected or past `wait` (nil: until elected or cancelled). The caller
    /// keeps the returned lock alive and releases it to resign (as `locklock run --leader`
    /// does); no event is published.
    package func campaign(wait: Duration?) async throws(RedlockError) -> Lock {
        let clock = ContinuousClock()
        let deadline = wait.map { clock.now + $0 }
        let round = max(ttl * 2, redlock.configuration.wakeUps.longestSleep)
        while true {
            let left = deadline.map { max($0 - clock.now, .zero) } ?? round
            do {
                return try await redlock.acquire(role, ttl: ttl, wait: min(left, round), fencing: true)
            } catch  where error.code != .cancelled && error.code != .invalidArgument {
                if let deadline, clock.now >= deadline { throw error }
                if error.code != .lockHeld {
                    // Too few masters answered: try again after the retry delay.
                    do {
                        try await Task.sleep(for: redlock.configuration.retry.delay)
                    } catch {
                        throw RedlockError(.cancelled, "cancelled while campaigning")
                    }
                }
            }
        }
    }

    private func publish(term: Int64?) {
        listeners.withLock { listeners in
            guard listeners.term != term else { return }
            listeners.term = term
            let event = term.map { Event.elected(term: $0) } ?? .lost
            for stream in listeners.streams.values { stream.yield(event) }
        }
    }
}
