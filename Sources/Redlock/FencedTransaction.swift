import RedisWire

/// A fenced acquisition of one resource as one transaction of plain commands rather than a
/// script: the masters spend a fraction of a script call's time on it.
///
/// `MULTI`, `SET lock value NX PX ttl`, `ZADD fences GT CH candidate lock`, `EXISTS watch`,
/// `PTTL lock`, `EXEC`. The master grants when the SET set the key and the ZADD raised the
/// resource's fence to the candidate (the candidate was above every token handed out for it
/// there). The ZADD runs also where the SET failed: it only burns a number. The value carries
/// the candidate in its trailer (see `StoredValue`), so the holder's token never moves with
/// the fence. Where the watch marker exists, the client announces the acquisition itself;
/// where the key is held, the PTTL says for how long.
enum FencedTransaction {
    /// What one master's replies amount to.
    enum Outcome: Equatable {
        /// The key is ours and the fence is the candidate; `watched`: somebody watches.
        case granted(watched: Bool)
        /// Another owner holds the key, for `ttl` more milliseconds (when it has a TTL).
        case held(ttl: Int64?)
        /// The key was set but the fence was already at or above the candidate.
        case candidateRefused
    }

    private static let zadd = Array("ZADD".utf8)
    private static let gt = Array("GT".utf8)
    private static let ch = Array("CH".utf8)
    private static let exists = Array("EXISTS".utf8)
    private static let pttl = Array("PTTL".utf8)

    /// The transaction for one attempt, encoded once for every master.
    static func command(
        lockKey: [UInt8],
        stored: [UInt8],
        ttl: [UInt8],
        fences: [UInt8],
        candidate: Int64,
        watchKey: [UInt8]
    ) throws(RedlockError) -> FanOutCommand {
        do {
            return .plain(
                try RedisCommand(transaction: [
                    [Redlock.set, lockKey, stored, Redlock.nx, Redlock.px, ttl],
                    [zadd, fences, gt, ch, Array(String(candidate).utf8), lockKey],
                    [exists, watchKey],
                    [pttl, lockKey],
                ])
            )
        } catch {
            throw RedlockError(.invalidArgument, "cannot encode command: \(error.message)")
        }
    }

    /// The outcome of one master's `EXEC` reply (the four commands' replies); nil when it is
    /// not what a working master answers.
    static func outcome(_ results: [RESPValue]) -> Outcome? {
        guard results.count == 4 else { return nil }
        switch (results[0], results[1]) {
        case (.null, _): return .held(ttl: results[3].integer.flatMap { $0 >= 0 ? $0 : nil })
        case (.simpleString, .integer(1)): return .granted(watched: results[2] == .integer(1))
        case (.simpleString, .integer(0)): return .candidateRefused
        default: return nil
        }
    }
}
