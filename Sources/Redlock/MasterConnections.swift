import NIOCore
import RedisWire

/// One reply per master of a fan-out; nil where the master has not answered yet.
typealias Replies = [Result<RESPValue, RedisWireError>?]

/// N independent masters whose connections all live on one event loop, so a lock operation
/// fans out and in on that loop: one hop in, one hop out, whatever N is.
struct MasterConnections: Sendable {
    let connections: [RedisConnection]
    let eventLoop: any EventLoop
    /// How far each master's record of its latest grant reaches (see ``GrantHorizon``).
    let horizon: GrantHorizon

    var count: Int { connections.count }
    var quorum: Int { QuorumTally.quorum(of: connections.count) }

    /// Sends one command, encoded once, to every master (or to `indices`) at once and calls
    /// `done` once: when `decided` says the replies so far settle the question, when every
    /// addressed master has answered or failed, or (with `lateReplyGrace`) that long after a
    /// quorum has answered without settling it. Must be called on ``eventLoop``; `done` runs
    /// there, possibly before this returns (when every master fails at once).
    ///
    /// Nothing is decided before the command is queued on every addressed master: a master
    /// known to be down fails inside the send loop, and deciding then would queue a follow-up
    /// (the release of a failed acquisition) ahead of the command on the masters not yet sent
    /// to. `shuffled` sends in a random order, so that no master is systematically first.
    /// `granting` is the lifetime of the keys the command may grant, which each master's grant
    /// horizon must cover first.
    func fanOut(
        _ command: FanOutCommand,
        to indices: [Int]? = nil,
        shuffled: Bool = false,
        granting: Duration? = nil,
        deadline: NIODeadline,
        lateReplyGrace: Duration? = nil,
        until decided: (@Sendable (Replies) -> Bool)? = nil,
        then done: @escaping @Sendable (Replies) -> Void
    ) {
        eventLoop.preconditionInEventLoop()
        let expected = indices?.count ?? connections.count
        let collector = FanIn(count: connections.count, expected: expected, decided: decided, done: done)
        if let lateReplyGrace {
            collector.grace = (quorum, .nanoseconds(lateReplyGrace.nanoseconds), eventLoop)
        }
        // One clock read serves the send order and every master's horizon check.
        let now = shuffled || granting != nil ? NIODeadline.now() : .uptimeNanoseconds(0)
        let grant = granting.map { (lifetime: $0, now: now) }
        if let indices {
            for index in indices { send(command, to: index, granting: grant, deadline: deadline, collector) }
        } else if shuffled {
            var order = SendOrder(seed: now.uptimeNanoseconds)
            for index in connections.indices.shuffled(using: &order) {
                send(command, to: index, granting: grant, deadline: deadline, collector)
            }
        } else {
            for index in connections.indices { send(command, to: index, granting: grant, deadline: deadline, collector) }
        }
        collector.allSent()
    }

    private func send(
        _ command: FanOutCommand,
        to index: Int,
        granting: (lifetime: Duration, now: NIODeadline)?,
        deadline: NIODeadline,
        _ collector: FanIn
    ) {
        if let granting {
            horizon.cover(granting.lifetime, master: index, on: connections[index], now: granting.now, deadline: deadline)
        }
        switch command {
        case .plain(let plain): connections[index].send(plain, deadline: deadline, receiver: collector, tag: index)
        case .script(let call): connections[index].evaluate(call, deadline: deadline, receiver: collector, tag: index)
        }
    }
}

/// The random order of a shuffled fan-out (SplitMix64 seeded from the monotonic clock). The
/// order only keeps any master from being always first, so it needs no CSPRNG: the system
/// generator cost a `getrandom` call per acquisition.
struct SendOrder: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

/// What a fan-out sends: a plain command or a script call, encoded once for all masters.
enum FanOutCommand: Sendable {
    case plain(RedisCommand)
    case script(RedisScriptCall)

    static func script(_ script: RedisScript, keys: [[UInt8]], arguments: [[UInt8]]) throws(RedlockError) -> FanOutCommand {
        do {
            return .script(try RedisScriptCall(script, keys: keys, arguments: arguments))
        } catch {
            throw RedlockError(.invalidArgument, "cannot encode command: \(error.message)")
        }
    }

    static func plain(_ arguments: [[UInt8]]) throws(RedlockError) -> FanOutCommand {
        do {
            return .plain(try RedisCommand(arguments))
        } catch {
            throw RedlockError(.invalidArgument, "cannot encode command: \(error.message)")
        }
    }
}

/// Collects the replies of one fan-out: the one receiver every master's connection answers,
/// tagged with the master's index. Confined to the group's event loop.
private final class FanIn: RedisReplyReceiver, @unchecked Sendable {
    // @unchecked: created and completed on the event loop; every callback runs there.
    var replies: Replies
    var outstanding: Int
    var done = false
    /// True while the fan-out is still queuing its sends: replies are recorded, not acted on.
    var sending = true
    var answered = 0
    /// After `quorum` answers without a decision, complete `after` later on `loop`.
    var grace: (quorum: Int, after: TimeAmount, loop: any EventLoop)?
    var graceTimer: Scheduled<Void>?
    let decided: (@Sendable (Replies) -> Bool)?
    let completion: @Sendable (Replies) -> Void

    init(count: Int, expected: Int, decided: (@Sendable (Replies) -> Bool)?, done: @escaping @Sendable (Replies) -> Void) {
        self.replies = Replies(repeating: nil, count: count)
        self.outstanding = expected
        self.decided = decided
        self.completion = done
    }

    func receive(_ reply: Result<RESPValue, RedisWireError>, tag index: Int) {
        guard !done else { return }
        replies[index] = reply
        outstanding -= 1
        if case .success = reply { answered += 1 }
        if !sending { settle() }
    }

    /// Called once every send is queued: from now on, replies may decide.
    func allSent() {
        sending = false
        if !done { settle() }
    }

    private func settle() {
        if outstanding == 0 || decided?(replies) == true {
            finish()
        } else if let grace, graceTimer == nil, answered >= grace.quorum {
            graceTimer = grace.loop.scheduleTask(in: grace.after) { self.finish() }
        }
    }

    func finish() {
        guard !done else { return }
        done = true
        graceTimer?.cancel()
        completion(replies)
    }
}
