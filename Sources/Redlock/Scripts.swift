import RedisWire

/// The Lua scripts Redlock runs on each master. Every one takes its lock keys as KEYS, so no
/// resource name is ever interpreted as anything but a key.
enum Scripts {
    /// Every script, loaded on each connection as it connects.
    static var all: [RedisScript] {
        [
            acquireFenced, acquireWaiting, markWatched, acquireMany, raiseCounters, release, extend, reseed, inspect, relabel,
            acquireRead, acquireWrite, releaseRead, extendRead, forgetWriter,
        ]
    }

    /// KEYS[1..n] lock keys, KEYS[n+1..2n] fencing counters, KEYS[2n+1..3n] watch markers;
    /// ARGV: value, ttl ms, counter retention ms, seed. All-or-nothing: if any lock key exists,
    /// returns that key's PTTL (an integer, so the caller learns when to retry); otherwise sets
    /// every key, publishes `a` on each lock key's channel that has watchers, and returns the
    /// incremented counters. A missing counter starts at the seed (the client's wall clock in
    /// microseconds, the same for every master of one attempt, so fresh counters agree across
    /// masters) and expires after the retention; a later seed is again higher than any token
    /// the expired counter handed out.
    static let acquireFenced = RedisScript(
        """
        local n = #KEYS / 3
        if n == 1 then
          if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return redis.call('pttl', KEYS[1]) end
        else
          for i = 1, n do
            if redis.call('exists', KEYS[i]) == 1 then return redis.call('pttl', KEYS[i]) end
          end
          for i = 1, n do redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
        end
        \(announceAndIssueTokens(watchMarkersAt: "2 * n", fenced: "true"))
        """
    )

    /// The tail of every acquisition script once the lock keys are set: publish `a` where
    /// somebody watches, then issue one fencing token per resource (KEYS[n+i] are the
    /// counters) when `fenced`, else reply OK.
    private static func announceAndIssueTokens(watchMarkersAt offset: String, fenced: String) -> String {
        """
        for i = 1, n do
          if redis.call('exists', KEYS[\(offset) + i]) == 1 then redis.call('publish', KEYS[i], 'a') end
        end
        if not (\(fenced)) then return redis.status_reply('OK') end
        local tokens = {}
        for i = 1, n do
          local counter = KEYS[n + i]
          local token = redis.call('incr', counter)
          if token == 1 then
            token = redis.call('incrby', counter, ARGV[4])
            redis.call('pexpire', counter, ARGV[3])
          end
          tokens[i] = token
        end
        return tokens
        """
    }

    /// An acquisition attempt by a caller that waits (see `WakeUpHub`). KEYS: lock keys (n),
    /// fencing counters (n, only when fenced), wait markers (n), watch markers (n), the first
    /// resource's priority claim and its waiter queue; ARGV: value, ttl ms, counter retention
    /// ms, seed, n, wait marker ms, waiter id, "1" to claim priority, claim slack ms, the wait
    /// marker ms still needed once this waiter has the lock (0 when nobody else here waits),
    /// the waiter's queue entry (`id:deadline-ms`), its arrival (the queue's order), and "1"
    /// once an earlier attempt of this waiter was refused (it may be queued).
    ///
    /// While another waiter's priority claim stands, or any lock key exists, it refuses with a
    /// PTTL (the holder's; or, when the lock is free, the claim's, at most the slack: the
    /// claimant is about to take it), makes sure every wait marker lives at least the given
    /// time, so that the release announces itself, and queues the waiter (once, at its
    /// arrival). A waiter that claims priority and finds no other claim records its id until
    /// the holder's key expires plus the slack. Otherwise it sets the keys, drops its claim and
    /// its queue entry, keeps the markers alive for the waiters behind it, and continues as
    /// ``acquireFenced`` (or replies OK when unfenced).
    static let acquireWaiting = RedisScript(
        """
        local n = tonumber(ARGV[5])
        local f = (#KEYS - 2 == 4 * n) and n or 0
        local first, queue = KEYS[#KEYS - 1], KEYS[#KEYS]
        local claimant = redis.call('get', first)
        local blocked = claimant and claimant ~= ARGV[7]
        local held = nil
        for i = 1, n do
          if redis.call('exists', KEYS[i]) == 1 then held = i break end
        end
        local function keepMarkers(lifetime)
          for i = 1, n do
            local marker = KEYS[n + f + i]
            if redis.call('pttl', marker) < lifetime then redis.call('set', marker, '1', 'PX', lifetime) end
          end
          if redis.call('exists', queue) == 1 and redis.call('pttl', queue) < lifetime then redis.call('pexpire', queue, lifetime) end
        end
        if held or blocked then
          redis.call('zadd', queue, 'NX', ARGV[12], ARGV[11])
          keepMarkers(tonumber(ARGV[6]))
          local left = held and redis.call('pttl', KEYS[held]) or math.min(redis.call('pttl', first), tonumber(ARGV[9]))
          if ARGV[8] == '1' and not blocked then
            redis.call('set', first, ARGV[7], 'PX', math.max(left, 0) + tonumber(ARGV[9]))
          end
          return left
        end
        for i = 1, n do redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
        if claimant then redis.call('del', first) end
        if ARGV[13] == '1' then redis.call('zrem', queue, ARGV[11]) end
        local others = tonumber(ARGV[10])
        if others > 0 then keepMarkers(others) end
        \(announceAndIssueTokens(watchMarkersAt: "2 * n + f", fenced: "f > 0"))
        """
    )

    /// KEYS[1] a priority claim, KEYS[2] a waiter queue; ARGV[1] a waiter id, ARGV[2] its
    /// queue entry. Forgets a waiter that won elsewhere or gave up: drops its claim, if it holds
    /// it, and its queue entry.
    static let forgetWaiter = RedisScript(
        """
        if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
        redis.call('zrem', KEYS[2], ARGV[2])
        return 1
        """
    )

    /// KEYS watch markers; ARGV ms. Makes each marker live at least that long, so that the
    /// lock's acquisitions and releases are announced.
    static let markWatched = RedisScript(
        """
        for i = 1, #KEYS do
          if redis.call('pttl', KEYS[i]) < tonumber(ARGV[1]) then redis.call('set', KEYS[i], '1', 'PX', ARGV[1]) end
        end
        return 1
        """
    )

    /// KEYS lock keys; ARGV value, ttl ms. All-or-nothing SET of several keys, without
    /// fencing: OK if set; if any key exists, that key's PTTL (an integer). (One unfenced key
    /// is a plain SET NX PX, whose refusal is nil.)
    static let acquireMany = RedisScript(
        """
        for i = 1, #KEYS do
          if redis.call('exists', KEYS[i]) == 1 then return redis.call('pttl', KEYS[i]) end
        end
        for i = 1, #KEYS do redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
        return redis.status_reply('OK')
        """
    )

    /// KEYS fencing counters; ARGV[1..n] tokens, ARGV[n+1] retention ms. Raises each counter to
    /// at least its token so that every master of the winning quorum has seen it (needed only
    /// when the quorum's counters disagreed).
    static let raiseCounters = RedisScript(
        """
        local n = #KEYS
        for i = 1, n do
          local current = tonumber(redis.call('get', KEYS[i]) or '0')
          if current < tonumber(ARGV[i]) then
            redis.call('set', KEYS[i], ARGV[i], 'PX', ARGV[n + 1])
          end
        end
        return 1
        """
    )

    /// KEYS: lock keys (n), their wait markers (n), their watch markers (n), the first
    /// resource's waiter queue and priority claim; ARGV: value, "prefix" to match values that start with it, n,
    /// "1" to announce. Compare-and-delete: deletes only keys holding our value and returns how
    /// many it deleted. When announcing, each deleted key that has a waiter or a watcher gets
    /// `r` published on its channel, followed (for the first resource) by the id of the waiter
    /// that claimed priority, or else the entry of the queue's first waiter whose deadline has
    /// not passed: only that waiter is woken (entries past their deadline are dropped on the
    /// way). With ARGV[5], a fencing token, the last key
    /// is the resource's counter, and a key is deleted only while the counter still equals the
    /// token: -2 when it does not.
    static let release = RedisScript(
        """
        local n = tonumber(ARGV[3])
        local deleted = 0
        for i = 1, n do
          local current = redis.call('get', KEYS[i])
          if current == ARGV[1] or (ARGV[2] == 'prefix' and current and string.sub(current, 1, #ARGV[1]) == ARGV[1]) then
            if ARGV[5] and redis.call('get', KEYS[#KEYS]) ~= ARGV[5] then return -2 end
            redis.call('del', KEYS[i])
            deleted = deleted + 1
            if ARGV[4] == '1' and redis.call('exists', KEYS[n + i], KEYS[2 * n + i]) > 0 then
              local payload = 'r'
              local claimant = i == 1 and redis.call('get', KEYS[3 * n + 2])
              if claimant then
                payload = 'r' .. claimant
              elseif i == 1 then
                local now = nil
                for _ = 1, 16 do
                  local head = redis.call('zrange', KEYS[3 * n + 1], 0, 0)[1]
                  if not head then break end
                  if not now then
                    local clock = redis.call('time')
                    now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
                  end
                  if (tonumber(string.match(head, ':(%d+)$')) or 0) >= now then
                    payload = 'r' .. head
                    break
                  end
                  redis.call('zrem', KEYS[3 * n + 1], head)
                end
              end
              redis.call('publish', KEYS[i], payload)
            end
          end
        end
        return deleted
        """
    )

    /// KEYS lock keys; ARGV value, ttl ms, ARGV[3] "prefix" to match by prefix.
    /// Compare-and-pexpire, all-or-nothing: 1 extended, -1 every key is missing (the master
    /// lost it: candidate for re-seeding), 0 otherwise. With ARGV[4], a fencing token, the
    /// last key is the resource's counter, and a held lock is extended only while the counter
    /// still equals the token: -2 when it does not.
    static let extend = RedisScript(
        """
        local n = #KEYS
        if ARGV[4] then n = n - 1 end
        local missing = 0
        for i = 1, n do
          local current = redis.call('get', KEYS[i])
          if current == false then
            missing = missing + 1
          elseif current ~= ARGV[1] and not (ARGV[3] == 'prefix' and string.sub(current, 1, #ARGV[1]) == ARGV[1]) then
            return 0
          end
        end
        if missing == n then return -1 end
        if missing > 0 then return 0 end
        if ARGV[4] and redis.call('get', KEYS[#KEYS]) ~= ARGV[4] then return -2 end
        for i = 1, n do redis.call('pexpire', KEYS[i], ARGV[2]) end
        return 1
        """
    )

    /// KEYS lock keys; ARGV value, ttl ms. Writes our value back on a master that lost every
    /// key (restarted), only if none of them exists now.
    static let reseed = RedisScript(
        """
        for i = 1, #KEYS do
          if redis.call('exists', KEYS[i]) == 1 then return 0 end
        end
        for i = 1, #KEYS do redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
        return 1
        """
    )

    /// KEYS[1] lock key, KEYS[2] fencing counter: the value, remaining time to live in ms,
    /// and the counter (the token of the latest acquisition).
    static let inspect = RedisScript(
        """
        return {redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1]), redis.call('get', KEYS[2])}
        """
    )

    /// KEYS lock key; ARGV old value, new value. Compare-and-set that keeps the key's TTL: 1 if
    /// the key held the old value and now holds the new one, 0 otherwise.
    static let relabel = RedisScript(
        """
        if redis.call('get', KEYS[1]) == ARGV[1] then
          redis.call('set', KEYS[1], ARGV[2], 'KEEPTTL')
          return 1
        end
        return 0
        """
    )

    // MARK: Read-write locks (see `ReadWriteLock`)
    //
    // Per master: the writer is the ordinary lock key; readers are entries of a sorted set
    // scored by their expiry on the master's clock (each expires on its own); a waiting
    // writer's marker stops new readers.

    /// The master's clock in ms, and the readers' set without its expired entries.
    private static let readersNow = """
        local clock = redis.call('time')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        redis.call('zremrangebyscore', READERS, '-inf', now)
        """

    /// Keeps the readers' set alive exactly as long as its last entry (after `readersNow`).
    private static let readersLiveUntilTheLast = """
        local last = redis.call('zrange', READERS, -1, -1, 'WITHSCORES')[2]
        redis.call('pexpire', READERS, math.max(tonumber(last) - now, 1))
        """

    /// Makes the wait marker (KEYS[WAIT]) live at least ARGV[LIFETIME] ms, so that the release
    /// that frees the lock is announced.
    private static func markWaiting(_ marker: String, _ lifetime: String) -> String {
        """
        local lifetime = tonumber(\(lifetime))
        if lifetime > 0 and redis.call('pttl', \(marker)) < lifetime then redis.call('set', \(marker), '1', 'PX', lifetime) end
        """
    }

    /// A reader's acquisition. KEYS: writer key, readers' set, writer-waiting marker, wait
    /// marker; ARGV: value, ttl ms, wait marker ms (0 for none). Refused (the PTTL of what
    /// refuses it) while a writer holds the lock or waits for it; otherwise adds the reader's
    /// entry, expiring ttl from now, and keeps the set alive as long as its last entry.
    static let acquireRead = RedisScript(
        """
        local READERS = KEYS[2]
        local blocker = redis.call('exists', KEYS[1]) == 1 and KEYS[1] or (redis.call('exists', KEYS[3]) == 1 and KEYS[3])
        if blocker then
          \(markWaiting("KEYS[4]", "ARGV[3]"))
          return redis.call('pttl', blocker)
        end
        \(readersNow)
        redis.call('zadd', READERS, now + tonumber(ARGV[2]), ARGV[1])
        \(readersLiveUntilTheLast)
        return redis.status_reply('OK')
        """
    )

    /// A writer's acquisition. KEYS: writer key, [fencing counter,] readers' set,
    /// writer-waiting marker, wait marker, watch marker; ARGV: value, ttl ms, counter
    /// retention ms, seed, wait marker ms, writer id, writer-waiting marker ms (0 when the
    /// writer will not wait). Refused while the writer key exists or a reader's entry lives: it
    /// returns the PTTL of the holder (the last reader's), keeps the wait marker, and marks
    /// the writer as waiting unless another writer already is. Otherwise sets the writer key,
    /// drops its own waiting marker and continues as ``acquireFenced``.
    static let acquireWrite = RedisScript(
        """
        local n = 1
        local f = #KEYS == 6 and 1 or 0
        local READERS, intent = KEYS[2 + f], KEYS[3 + f]
        local left = nil
        if redis.call('exists', KEYS[1]) == 1 then
          left = redis.call('pttl', KEYS[1])
        else
          \(readersNow)
          local last = redis.call('zrange', READERS, -1, -1, 'WITHSCORES')[2]
          if last then left = tonumber(last) - now end
        end
        if left then
          \(markWaiting("KEYS[4 + f]", "ARGV[5]"))
          local waiting = redis.call('get', intent)
          if tonumber(ARGV[7]) > 0 and (not waiting or waiting == ARGV[6]) then redis.call('set', intent, ARGV[6], 'PX', ARGV[7]) end
          return left
        end
        redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
        if redis.call('get', intent) == ARGV[6] then redis.call('del', intent) end
        \(announceAndIssueTokens(watchMarkersAt: "#KEYS - 1", fenced: "f > 0"))
        """
    )

    /// KEYS: writer key, readers' set, wait marker, watch marker; ARGV: value, "1" to announce.
    /// Removes the reader's entry: 1 if it was live, 0 if it had expired or was never there.
    /// Announces the release where somebody waits or watches.
    static let releaseRead = RedisScript(
        """
        local READERS = KEYS[2]
        \(readersNow)
        if redis.call('zrem', READERS, ARGV[1]) == 0 then return 0 end
        if ARGV[2] == '1' and redis.call('exists', KEYS[3], KEYS[4]) > 0 then redis.call('publish', KEYS[1], 'r') end
        return 1
        """
    )

    /// KEYS: readers' set; ARGV: value, ttl ms. Extends a live reader's entry to ttl from
    /// now: 1 extended, 0 not held (expired or never there; a reader is never re-seeded, as a
    /// writer may hold the master now).
    static let extendRead = RedisScript(
        """
        local READERS = KEYS[1]
        \(readersNow)
        if not redis.call('zscore', READERS, ARGV[1]) then return 0 end
        redis.call('zadd', READERS, 'XX', now + tonumber(ARGV[2]), ARGV[1])
        \(readersLiveUntilTheLast)
        return 1
        """
    )

    /// KEYS: writer-waiting marker; ARGV: writer id. A writer that gave up stops blocking
    /// new readers.
    static let forgetWriter = RedisScript(
        """
        if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
        return 1
        """
    )
}
