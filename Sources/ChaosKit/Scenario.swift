import LocalRedis

/// A fault injected for the fault phase of a scenario and removed at healing.
package enum Fault: Sendable {
    /// Contention only.
    case none
    /// kill -9 these masters; restart them (empty) at healing.
    case kill([Int])
    /// SIGSTOP these masters; SIGCONT at healing.
    case pause([Int])
    /// Set this fault on these masters' proxies (for every client).
    case proxy([Int], ProxyFault)
    /// Clients of group 0 reach only masters 0, 1, 2; clients of group 1 only 2, 3, 4.
    case splitPartition
    /// Whenever a client is in its critical section, kill -9 these masters and restart
    /// them, after `delay` (nil: at once), `times` times.
    case restartWhileHeld([Int], delay: Duration?, times: Int)
    /// These masters (started under libfaketime) jump this far ahead, `times` times, each
    /// while a client holds the lock.
    case clockJump([Int], by: Duration, times: Int)
    /// One master jumps this far ahead, `times` times, each while the holder's value is on
    /// exactly a quorum of masters (a bare majority) and that master is one of them.
    case clockJumpOnBareQuorum(by: Duration, times: Int)
    /// SIGSTOP the client in its critical section for `pause`, `times` times.
    case pauseHolder(pause: Duration, times: Int)
    /// What operators do every week: restart every master in turn (kill -9 and start again,
    /// each while a client holds the lock), `gap` apart; with `clockStep`, each restarted
    /// master's clock then steps that far ahead, as NTP does after a boot with a wrong clock.
    case rollingRestart(gap: Duration, clockStep: Duration?)
    /// While a client holds the lock, kill -9 these masters and restart them empty (held out
    /// by every client), then kill -9 every other client process and start it again: the new
    /// processes must honour the hold-out they never saw begin. `times` times.
    case restartClientsDuringHoldOut([Int], times: Int)
    /// kill -9 the `locklock run` whose command is in its critical section, `times` times: the
    /// command (a shell's child) must die with it.
    case killRunWrappers(times: Int)
}

extension Fault {
    /// Whether injecting the fault waits for a state the contending clients reach only by
    /// chance (a split vote that leaves the holder on a bare majority), so that a phase may
    /// end without it.
    package var injectionWaitsOnChance: Bool {
        if case .clockJumpOnBareQuorum = self { return true }
        return false
    }
}

/// What a scenario must show.
package enum Expectation: Sendable {
    /// Redlock's assumptions hold: no violation, no lost update, no stale token accepted,
    /// and (when given) the fault phase's rate of critical sections at least this share of
    /// the fault-free phase's.
    case safe(availabilityFloor: Double?)
    /// They do not: the checker must see the damage (overlap, lost update, or a stale or late
    /// write accepted) in the unfenced variant, and no stale token accepted when fenced.
    case unsafe
}

/// How the masters run for a scenario.
package enum MasterSetup: Sendable {
    /// No persistence.
    case plain
    /// AOF with `appendfsync always`.
    case appendOnlyAlways
    /// Under libfaketime, each master with its own clock file the runner can move.
    case jumpableClock
    /// Under libfaketime, these masters' clocks run this much fast (1.005 = 0.5 %).
    case fastClock([Int], rate: Double)
    /// TLS only (certificates from a CA the runner makes): the clients dial the TLS ports.
    case tls
}

/// What the clients contend for.
package enum Primitive: Sendable, Equatable, CustomStringConvertible {
    /// One Redlock lock (`withLock`).
    case mutex
    /// A ``Redlock/Semaphore`` of that many permits (`withPermit`): at most that many holders.
    case semaphore(permits: Int)
    /// A ``Redlock/ReadWriteLock``: each client writes every third section and reads otherwise.
    case readWrite
    /// A ``Redlock/LeaderElection``: each section is one term (`lead`), resigned at its end.
    case election

    /// The client's `--primitive` argument.
    package var description: String {
        switch self {
        case .mutex: "mutex"
        case .semaphore(let permits): "semaphore:\(permits)"
        case .readWrite: "rw"
        case .election: "election"
        }
    }

    /// Parses ``description``.
    package init?(_ text: String) {
        switch text {
        case "mutex": self = .mutex
        case "rw": self = .readWrite
        case "election": self = .election
        default:
            guard text.hasPrefix("semaphore:"), let permits = Int(text.dropFirst(10)), permits >= 1 else { return nil }
            self = .semaphore(permits: permits)
        }
    }
}

/// One scenario of the fault-injection suite.
package struct Scenario: Sendable {
    /// A short name, printed in the summary.
    package var name: String
    /// The fault.
    package var fault: Fault
    /// How the masters run.
    package var masters: MasterSetup
    /// What it must show.
    package var expectation: Expectation
    /// Whether the witness enforces fencing tokens.
    package var fenced: Bool
    /// Lock TTL and time spent inside the critical section.
    package var ttl: Duration
    package var hold: Duration
    /// Each client's pause between attempts, when the scenario needs its own (the runner's
    /// otherwise).
    package var think: Duration?
    /// The clients' maximum TTL, which turns on the delayed rejoin of restarted masters
    /// (``Redlock/RedlockConfiguration/maximumTTL``); nil leaves it off.
    package var maximumTTL: Duration?
    /// Whether each client also reads its fencing token back from the lock's status inside its
    /// section; a status token other than the issued one fails the scenario.
    package var tokenFromStatus: Bool
    /// How long the clients' keys outlive their TTL when not released (lock-delay).
    package var lockDelay: Duration = .zero
    /// Whether the clients poll instead of being woken by releases (wake-ups hand the lock to
    /// one named waiter at a time, so split votes, which some faults need, become rare).
    package var polls = false
    /// Whether missed hand-overs are counted under the fault too (by default only in the
    /// fault-free phase, since most faults legitimately keep a free lock out of reach).
    package var checksHandOversThroughout = false
    /// What the clients contend for.
    package var primitive = Primitive.mutex
    /// How many `locklock run` loops (``RunWrapperClient``) contend besides the clients, and
    /// how long each of their sections lasts.
    package var runWrappers = 0
    package var runWrapperHold = Duration.milliseconds(1500)

    /// Creates a scenario.
    package init(
        name: String,
        fault: Fault,
        masters: MasterSetup = .plain,
        expectation: Expectation,
        fenced: Bool = false,
        ttl: Duration = .seconds(1),
        hold: Duration = .milliseconds(5),
        think: Duration? = nil,
        maximumTTL: Duration? = nil,
        tokenFromStatus: Bool = false
    ) {
        self.name = name
        self.fault = fault
        self.masters = masters
        self.expectation = expectation
        self.fenced = fenced
        self.ttl = ttl
        self.hold = hold
        self.think = think
        self.maximumTTL = maximumTTL
        self.tokenFromStatus = tokenFromStatus
    }

    /// Whether the fault takes at most a minority of masters away from the clients: no
    /// acquisition may then be reported as unreachable.
    var minorityFaulted: Bool {
        switch fault {
        case .kill(let indexes), .pause(let indexes), .proxy(let indexes, _): indexes.count <= 2
        default: false
        }
    }

    /// The masters a fault kills for the whole fault phase, when they are a majority: their
    /// survivors must then hold no key a failed acquisition left behind.
    var killedMajority: [Int]? {
        if case .kill(let indexes) = fault, indexes.count >= 3 { return indexes }
        return nil
    }

    /// The suite. `random` picks which masters a fault hits (seeded, reproducible).
    package static func suite(random: inout SplitMix64) -> [Scenario] {
        var order = Array(0..<5)
        order.shuffle(using: &random)
        let minority = Array(order.prefix(2)).sorted()
        let majority = Array(order.prefix(3)).sorted()
        let longHold = Duration.milliseconds(700)
        return [
            Scenario(name: "contention only", fault: .none, expectation: .safe(availabilityFloor: nil)),
            Scenario(name: "minority killed", fault: .kill(minority), expectation: .safe(availabilityFloor: 0.9)),
            Scenario(name: "minority killed, over TLS", fault: .kill(minority), masters: .tls, expectation: .safe(availabilityFloor: 0.9)),
            Scenario(name: "minority paused", fault: .pause(minority), expectation: .safe(availabilityFloor: 0.9)),
            Scenario(name: "minority black-holed", fault: .proxy(minority, .blackHole), expectation: .safe(availabilityFloor: 0.9)),
            Scenario(
                name: "minority delayed 20 ms",
                fault: .proxy(minority, .latency(.milliseconds(20))),
                expectation: .safe(availabilityFloor: 0.9)
            ),
            Scenario(name: "minority drops replies", fault: .proxy(minority, .dropReplies), expectation: .safe(availabilityFloor: 0.9)),
            Scenario(name: "minority connections reset", fault: .proxy(minority, .reset), expectation: .safe(availabilityFloor: 0.9)),
            Scenario(name: "split partition {A,B,C} / {C,D,E}", fault: .splitPartition, expectation: .safe(availabilityFloor: nil)),
            Scenario(
                name: "majority restarted, AOF always",
                fault: .restartWhileHeld(majority, delay: nil, times: 3),
                masters: .appendOnlyAlways,
                expectation: .safe(availabilityFloor: nil),
                ttl: .seconds(2),
                hold: longHold
            ),
            Scenario(
                name: "majority restarted after the max TTL",
                fault: .restartWhileHeld(majority, delay: .milliseconds(2300), times: 1),
                expectation: .safe(availabilityFloor: nil),
                ttl: .seconds(2),
                hold: longHold
            ),
            Scenario(
                name: "clock skew 0.5 % within the drift budget",
                fault: .none,
                masters: .fastClock(majority, rate: 1.005),
                expectation: .safe(availabilityFloor: nil)
            ),
            Scenario(
                name: "majority restarted at once, no persistence",
                fault: .restartWhileHeld(majority, delay: nil, times: 4),
                expectation: .unsafe,
                ttl: .seconds(2),
                hold: longHold
            ),
            Scenario(
                name: "majority restarted at once, no persistence, delayed rejoin",
                fault: .restartWhileHeld(majority, delay: nil, times: 4),
                expectation: .safe(availabilityFloor: nil),
                ttl: .seconds(2),
                hold: longHold,
                maximumTTL: .seconds(2)
            ),
            // The first three masters: were the attempt decided by their synchronous failures
            // before every SET was queued, the survivors would keep the SETs queued after it.
            Scenario(
                name: "majority killed, survivors keep nothing of failed attempts",
                fault: .kill([0, 1, 2]),
                expectation: .safe(availabilityFloor: nil),
                ttl: .seconds(30)
            ),
            Scenario(
                name: "minority delayed 20 ms, tokens read back from status (fenced)",
                fault: .proxy(minority, .latency(.milliseconds(20))),
                expectation: .safe(availabilityFloor: nil),
                fenced: true,
                tokenFromStatus: true
            ),
            Scenario(
                name: "majority restarted at once, no persistence (fenced)",
                fault: .restartWhileHeld(majority, delay: nil, times: 4),
                expectation: .unsafe,
                fenced: true,
                ttl: .seconds(2),
                hold: longHold
            ),
            // Clients that do not pause, and poll rather than wait to be woken, split votes
            // often, which is what leaves a holder on a bare majority; a rival tries again at
            // once after the jump. (Woken waiters take turns, and a bare majority is rare.)
            {
                var scenario = Scenario(
                    name: "clock jump on one master of a bare majority",
                    fault: .clockJumpOnBareQuorum(by: .seconds(5), times: 3),
                    masters: .jumpableClock,
                    expectation: .unsafe,
                    ttl: .seconds(2),
                    hold: longHold,
                    think: .milliseconds(5)
                )
                scenario.polls = true
                return scenario
            }(),
            Scenario(
                name: "clock jump beyond the drift on a majority",
                fault: .clockJump(majority, by: .seconds(5), times: 3),
                masters: .jumpableClock,
                expectation: .unsafe,
                ttl: .seconds(2),
                hold: longHold
            ),
            Scenario(
                name: "clock jump beyond the drift on a majority (fenced)",
                fault: .clockJump(majority, by: .seconds(5), times: 3),
                masters: .jumpableClock,
                expectation: .unsafe,
                fenced: true,
                ttl: .seconds(2),
                hold: longHold
            ),
            Scenario(
                name: "client paused past its validity",
                fault: .pauseHolder(pause: .milliseconds(1500), times: 2),
                expectation: .unsafe,
                ttl: .seconds(1),
                hold: .milliseconds(300)
            ),
            {
                var scenario = Scenario(
                    name: "client paused past its validity, lock-delay longer than the pause",
                    fault: .pauseHolder(pause: .milliseconds(1500), times: 2),
                    expectation: .safe(availabilityFloor: nil),
                    ttl: .seconds(1),
                    hold: .milliseconds(300)
                )
                scenario.lockDelay = .seconds(2)
                return scenario
            }(),
            {
                // Restarted masters lose their markers, queues and subscribers: the waiters'
                // fallback timers and re-subscriptions must still hand every release over.
                // Safe only with the delayed rejoin: a holder left on a bare majority by a
                // split vote can hold the lock on restarted masters, and a minority restart
                // then leaves it on fewer than a quorum (KnownLimitsTests).
                var scenario = Scenario(
                    name: "minority restarted under waiters, delayed rejoin",
                    fault: .restartWhileHeld(minority, delay: nil, times: 4),
                    expectation: .safe(availabilityFloor: nil),
                    ttl: .seconds(2),
                    hold: .milliseconds(200),
                    think: .zero,
                    maximumTTL: .seconds(2)
                )
                scenario.checksHandOversThroughout = true
                return scenario
            }(),
            // Operations: the hold-out is sized by the grants the other masters recorded, so a
            // restart costs a master about its TTL, not the 30 s maximum.
            Scenario(
                name: "operations: rolling restart of every master, no persistence",
                fault: .rollingRestart(gap: .milliseconds(2500), clockStep: nil),
                expectation: .safe(availabilityFloor: 0.8),
                ttl: .seconds(1),
                hold: .milliseconds(100),
                maximumTTL: .seconds(30)
            ),
            Scenario(
                name: "operations: rolling restart of every master, appendfsync always",
                fault: .rollingRestart(gap: .milliseconds(1000), clockStep: nil),
                masters: .appendOnlyAlways,
                expectation: .safe(availabilityFloor: 0.8),
                ttl: .seconds(1),
                hold: .milliseconds(100),
                maximumTTL: .seconds(30)
            ),
            Scenario(
                name: "operations: rolling restart, each clock stepped an hour ahead after its restart",
                fault: .rollingRestart(gap: .milliseconds(2500), clockStep: .seconds(3600)),
                masters: .jumpableClock,
                expectation: .safe(availabilityFloor: 0.8),
                ttl: .seconds(1),
                hold: .milliseconds(100),
                maximumTTL: .seconds(30)
            ),
            Scenario(
                name: "operations: clients restarted while a restarted majority is held out",
                fault: .restartClientsDuringHoldOut(majority, times: 2),
                expectation: .safe(availabilityFloor: nil),
                ttl: .seconds(1),
                hold: .milliseconds(700),
                maximumTTL: .seconds(2)
            ),
            {
                var scenario = Scenario(
                    name: "operations: locklock run wrappers killed in their sections",
                    fault: .killRunWrappers(times: 2),
                    expectation: .safe(availabilityFloor: nil),
                    ttl: .seconds(1),
                    hold: .milliseconds(100),
                    maximumTTL: .seconds(30)
                )
                scenario.runWrappers = 2
                return scenario
            }(),
            Scenario(
                name: "client paused past its validity (fenced)",
                fault: .pauseHolder(pause: .milliseconds(1500), times: 2),
                expectation: .unsafe,
                fenced: true,
                ttl: .seconds(1),
                hold: .milliseconds(300)
            ),
        ] + [Primitive.semaphore(permits: 2), .readWrite, .election].flatMap { beyondTheMutex($0, minority: minority) }
    }

    /// The faults the mutex is proven under, for a semaphore, a read-write lock or an
    /// election: a minority killed, paused and partitioned away (safe), and a holder paused
    /// past its validity, whose stale writes the fenced resource must refuse.
    static func beyondTheMutex(_ primitive: Primitive, minority: [Int]) -> [Scenario] {
        let label: String =
            switch primitive {
            case .mutex: "mutex"
            case .semaphore(let permits): "semaphore of \(permits)"
            case .readWrite: "read-write lock"
            case .election: "election"
            }
        var scenarios = [
            Scenario(name: "\(label): minority killed", fault: .kill(minority), expectation: .safe(availabilityFloor: 0.9), fenced: true),
            Scenario(name: "\(label): minority paused", fault: .pause(minority), expectation: .safe(availabilityFloor: 0.9), fenced: true),
            Scenario(
                name: "\(label): minority partitioned away",
                fault: .proxy(minority, .blackHole),
                expectation: .safe(availabilityFloor: 0.9),
                fenced: true
            ),
            Scenario(
                name: "\(label): client paused past its validity (fenced)",
                fault: .pauseHolder(pause: .milliseconds(1500), times: 2),
                expectation: .unsafe,
                fenced: true,
                ttl: .seconds(1),
                hold: .milliseconds(300)
            ),
        ]
        for index in scenarios.indices { scenarios[index].primitive = primitive }
        return scenarios
    }
}

/// A small seeded generator (SplitMix64), so a seed reproduces the fault schedule.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator from `seed`.
    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
