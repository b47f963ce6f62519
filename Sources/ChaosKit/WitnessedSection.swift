import RedisWire

/// One critical section as the witness sees it: the holder's pid set on entry, a
/// read-sleep-write of the lane's counter (a reader's section only reads it), the holder
/// cleared on exit. Shared by the in-process clients and the commands `locklock run` starts.
struct WitnessedSection: Sendable {
    let client: Int
    /// When the attempt that led here started, and when the section was entered.
    let started: Int64
    let enter: Int64
    let pid: String
    let lane: String

    /// Runs the section; returns its record (not yet pushed).
    func run(validUntil: Int64, token: Int64, hold: Duration, fenced: Bool, witness: RedisConnection) async throws -> AttemptRecord {
        _ = try await witness.send("SET", WitnessKeys.holder, pid)
        let counter = WitnessKeys.key(WitnessKeys.counter, lane: lane)
        let value = Int(try await witness.send("GET", counter).string ?? "0") ?? 0
        // Not `try`: a cancelled sleep (the lock was lost) still goes on to write.
        try? await Task.sleep(for: hold)
        var reply = RESPValue.integer(0)
        if lane != AttemptRecord.readerLane {
            let script = fenced ? WitnessScripts.fencedWrite : WitnessScripts.unfencedWrite
            reply = try await witness.evaluate(
                script,
                keys: [counter, WitnessKeys.key(WitnessKeys.lastToken, lane: lane), WitnessKeys.key(WitnessKeys.acceptedTokens, lane: lane)].map {
                    Array($0.utf8)
                },
                arguments: [Array(String(value + 1).utf8), Array(String(token).utf8)]
            )
        }
        let exit = monotonicNanoseconds()
        _ = try await witness.send(
            "EVAL",
            "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end",
            "1",
            WitnessKeys.holder,
            pid
        )
        return AttemptRecord(
            client: client,
            started: started,
            outcome: "ok",
            acquireNanoseconds: enter - started,
            enter: enter,
            validUntil: validUntil,
            exit: exit,
            token: token,
            writeAccepted: reply == .integer(1),
            lane: lane
        )
    }
}
