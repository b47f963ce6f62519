import RedisWire

#if canImport(Glibc)
import Glibc
#endif

/// The keys on the witness Redis, which is never faulted: the shared counter the clients
/// read-sleep-write, the accepted fencing tokens, the current holder, and one event line per
/// acquisition attempt.
package enum WitnessKeys {
    /// The counter incremented by every critical section.
    package static let counter = "chaos:counter"
    /// The highest fencing token the fenced resource accepted.
    package static let lastToken = "chaos:counter:token"
    /// Every accepted write's token, in order.
    package static let acceptedTokens = "chaos:accepted"
    /// `pid` of the client in its critical section (set on enter, cleared on exit).
    package static let holder = "chaos:holder"
    /// One line per attempt (see ``AttemptRecord``).
    package static let events = "chaos:events"
    /// One entry per critical section whose lock status reported another fencing token than
    /// the one its acquisition was issued.
    package static let tokenMismatches = "chaos:token-mismatches"

    /// `key` for one lane (see ``AttemptRecord/lane``): each semaphore slot protects a
    /// resource of its own, with its own counter and fencing order; the mutex's lane is
    /// the plain key.
    package static func key(_ key: String, lane: String) -> String {
        lane.isEmpty || lane == AttemptRecord.readerLane || lane == AttemptRecord.writerLane ? key : "\(key):\(lane)"
    }
}

/// Writes to the witness: unfenced (plain SET, whatever the token) or fenced (rejected unless
/// the token is higher than the last accepted one). Both record the token of an accepted
/// write in the same script, so the checker sees exactly what the resource accepted.
enum WitnessScripts {
    static let unfencedWrite = RedisScript(
        """
        redis.call('set', KEYS[1], ARGV[1])
        redis.call('rpush', KEYS[3], ARGV[2])
        return 1
        """
    )
    static let fencedWrite = RedisScript(
        """
        local last = tonumber(redis.call('get', KEYS[2]) or '-1')
        if tonumber(ARGV[2]) <= last then return 0 end
        redis.call('set', KEYS[1], ARGV[1])
        redis.call('set', KEYS[2], ARGV[2])
        redis.call('rpush', KEYS[3], ARGV[2])
        return 1
        """
    )
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine, so the
/// enter/exit times of different clients compare.
package func monotonicNanoseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
}

/// One acquisition attempt as a client records it on the witness.
package struct AttemptRecord: Sendable, Equatable {
    /// Which client.
    package var client: Int
    /// When the attempt started.
    package var started: Int64
    /// How the attempt ended: "ok" or a ``Redlock/RedlockError`` code.
    package var outcome: String
    /// Acquisition latency (ns) for "ok".
    package var acquireNanoseconds: Int64
    /// Entry into the critical section, validity end as the client computed it, exit.
    package var enter: Int64
    package var validUntil: Int64
    package var exit: Int64
    /// The fencing token and whether the witness accepted the write.
    package var token: Int64
    package var writeAccepted: Bool
    /// What the section held: "" the mutex or the election's role, "s3" a semaphore's slot 3,
    /// ``readerLane`` or ``writerLane`` a read-write lock's side. Sections conflict when they
    /// share a lane other than the readers', or when either is a writer's.
    package var lane = ""

    /// A reader's section: it reads the counter and writes nothing.
    package static let readerLane = "r"
    /// A writer's section of a read-write lock.
    package static let writerLane = "w"

    /// Whether two sections may not overlap.
    package func conflicts(with other: AttemptRecord) -> Bool {
        (lane == other.lane && lane != Self.readerLane) || lane == Self.writerLane || other.lane == Self.writerLane
    }

    /// Whether the section writes the witness (readers only read).
    package var writes: Bool { lane != Self.readerLane }

    /// Creates a record.
    package init(
        client: Int,
        started: Int64,
        outcome: String,
        acquireNanoseconds: Int64 = 0,
        enter: Int64 = 0,
        validUntil: Int64 = 0,
        exit: Int64 = 0,
        token: Int64 = 0,
        writeAccepted: Bool = false,
        lane: String = ""
    ) {
        self.lane = lane
        self.client = client
        self.started = started
        self.outcome = outcome
        self.acquireNanoseconds = acquireNanoseconds
        self.enter = enter
        self.validUntil = validUntil
        self.exit = exit
        self.token = token
        self.writeAccepted = writeAccepted
    }

    /// The space-separated line stored on the witness.
    package var line: String {
        "\(client) \(started) \(outcome) \(acquireNanoseconds) \(enter) \(validUntil) \(exit) \(token) \(writeAccepted ? 1 : 0) \(lane.isEmpty ? "-" : lane)"
    }

    /// Parses ``line``.
    package init?(line: String) {
        let f = line.split(separator: " ").map(String.init)
        guard f.count == 10, let client = Int(f[0]), let started = Int64(f[1]), let acquire = Int64(f[3]), let enter = Int64(f[4]),
            let valid = Int64(f[5]), let exit = Int64(f[6]), let token = Int64(f[7])
        else { return nil }
        self.init(
            client: client,
            started: started,
            outcome: f[2],
            acquireNanoseconds: acquire,
            enter: enter,
            validUntil: valid,
            exit: exit,
            token: token,
            writeAccepted: f[8] == "1",
            lane: f[9] == "-" ? "" : f[9]
        )
    }
}
