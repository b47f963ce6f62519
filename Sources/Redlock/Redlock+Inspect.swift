import NIOCore
import RedisWire

extension Redlock {

    /// Asks every master who holds `resource`; held only if a quorum agrees on one value.
    public func inspect(_ resource: String) async throws(RedlockError) -> LockState {
        try await traced("inspect", [resource]) { () async throws(RedlockError) -> LockState in
            try await tracked { () async throws(RedlockError) -> LockState in try await inspectUntracked(resource) }
        }
    }

    func inspectUntracked(_ resource: String) async throws(RedlockError) -> LockState {
        guard !resource.isEmpty else { throw RedlockError(.invalidArgument, "resource name must not be empty") }
        let key = lockKey(resource)
        let fences = fencesKey
        let quorum = group.quorum
        let driftFactor = configuration.driftFactor
        let result: Result<LockState, RedlockError> = await onLoop { completion in
            guard let inspect = try? FanOutCommand.script(Scripts.inspect, keys: [key, fences], arguments: []) else {
                completion(.failure(RedlockError(.invalidArgument, "cannot encode command")))
                return
            }
            let asked = ContinuousClock.now
            self.group.fanOut(inspect, deadline: self.instanceDeadline(), until: { Self.inspectionIsDecided($0, quorum: quorum) }) { replies in
                completion(Self.lockState(replies, quorum: quorum, driftFactor: driftFactor, elapsed: ContinuousClock.now - asked))
            }
        }
        return try result.get()
    }

    /// Whether the inspect replies so far settle the state: a quorum agrees on a holder (and,
    /// for an unfenced holder, on the resource's fence), or no holder can reach a quorum
    /// whatever the others answer.
    static func inspectionIsDecided(_ replies: Replies, quorum: Int) -> Bool {
        var holders: [[UInt8]: (count: Int, tokens: [Int64: Int])] = [:]
        var pending = 0
        var answered = 0
        for reply in replies {
            guard let reply else {
                pending += 1
                continue
            }
            guard case .success(let value) = reply else { continue }
            answered += 1
            guard let entry = InspectReply(value), let holder = entry.holder else { continue }
            var tally = holders[holder] ?? (0, [:])
            tally.count += 1
            if let fence = entry.fence { tally.tokens[fence, default: 0] += 1 }
            holders[holder] = tally
        }
        let settled = holders.contains { holder, tally in
            tally.count >= quorum && (StoredValue.decode(holder).token != nil || tally.tokens.values.contains { $0 >= quorum })
        }
        if settled { return true }
        let largest = holders.values.map(\.count).max() ?? 0
        return largest + pending < quorum && (answered >= quorum || pending == 0)
    }

    /// What a quorum of inspect replies says about the lock.
    ///
    /// The fencing token reported is the one the holder's value carries (see `StoredValue`):
    /// the token its acquisition was issued, whatever the fence did since. For an unfenced
    /// holder it is the resource's fence that a quorum of the holder's masters agree on, if
    /// they do. `remaining` is counted from when the inspection was sent: a master may have
    /// read its TTL right then, so the `elapsed` time since is taken off.
    static func lockState(_ replies: Replies, quorum: Int, driftFactor: Double, elapsed: Duration = .zero) -> Result<LockState, RedlockError> {
        var answered = 0
        var holders: [[UInt8]: [(ttl: Int64, fence: Int64?)]] = [:]
        for reply in replies {
            guard case .success(let value)? = reply, let entry = InspectReply(value) else { continue }
            answered += 1
            if let holder = entry.holder { holders[holder, default: []].append((entry.ttl, entry.fence)) }
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
        let remaining = ttl - Validity.drift(ttl: ttl, driftFactor: driftFactor) - elapsed
        let (value, issued) = StoredValue.decode(holder)
        var votesPerFence: [Int64: Int] = [:]
        for case let fence? in entries.map(\.fence) { votesPerFence[fence, default: 0] += 1 }
        let token = issued ?? votesPerFence.first { $0.value >= quorum }?.key
        return .success(LockState(isHeld: true, remaining: max(remaining, .zero), holder: value, fencingToken: token, timeToLive: ttl))
    }
}

/// One master's answer to the inspect script: `{stored value, pttl, fence}`.
struct InspectReply {
    /// The stored value (with its trailer), when the key exists with time left; nil when the
    /// master holds nothing.
    let holder: [UInt8]?
    /// Milliseconds left on the key (meaningful only with a holder).
    let ttl: Int64
    /// The resource's fence, if there is one.
    let fence: Int64?

    /// Nil for a reply that is not the script's triple.
    init?(_ value: RESPValue) {
        guard let triple = value.array, triple.count == 3 else { return nil }
        let ttl = triple[1].integer ?? 0
        self.holder = ttl > 0 ? triple[0].bytes : nil
        self.ttl = ttl
        self.fence = triple[2].string.flatMap { Int64($0) }
    }
}
