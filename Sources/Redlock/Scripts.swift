import RedisWire

/// The Lua scripts Redlock runs on each master. Every one takes its lock keys as KEYS, so no
/// resource name is ever interpreted as anything but a key.
enum Scripts {
    /// Every script, loaded on each connection as it connects.
    static var all: [RedisScript] {
        [
            acquireFenced, acquireWaiting, markWatched, acquireMany, release, extend, reseed, inspect, relabel, pruneFences,
            acquireRead, acquireWrite, releaseRead, extendRead, forgetWriter,
        ]
    }

    /// KEYS[1..n] lock keys, KEYS[n+1..2n] watch markers, then the fences; ARGV: value, ttl
    /// ms, candidate token. All-or-nothing: if any lock key exists, returns that key's PTTL (an
    /// integer, so the caller learns when to retry); if the candidate is not above every
    /// resource's fence, refuses with `LOWFENCE <fence>`; otherwise sets every key, publishes
    /// `a` on each lock key's channel that has watchers, and raises each fence to the
    /// candidate. (A single resource's first attempt is ``FencedTransaction`` instead;
    /// this script serves several resources, and a retry after a fence refused the candidate.)
    static let acquireFenced = RedisScript(
        """
        local n = (#KEYS - 1) / 2
        for i = 1, n do
          if redis.call('exists', KEYS[i]) == 1 then return redis.call('pttl', KEYS[i]) end
        end
        \(refuseLowCandidate(fences: "KEYS[#KEYS]", candidate: "ARGV[3]"))
        for i = 1, n do redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
        \(announceAndFence(watchMarkersAt: "n", fences: "KEYS[#KEYS]", candidate: "ARGV[3]"))
        """
    )

    /// Refuses with `LOWFENCE <fence>` unless the candidate token (Lua expression `candidate`)
    /// is above the fence of every resource (the lock keys KEYS[1..n] are the fences' members).
    private static func refuseLowCandidate(fences: String, candidate: String) -> String {
        """
        for i = 1, n do
          local fence = redis.call('zscore', \(fences), KEYS[i])
          if fence and tonumber(fence) >= tonumber(\(candidate)) then return redis.error_reply('LOWFENCE ' .. fence) end
        end
        """
    }

    /// The tail of every acquisition script once the lock keys are set: publish `a` where
    /// somebody watches, raise each resource's fence to the candidate when the Lua expression
    /// `fenced` holds, and reply OK.
    private static func announceAndFence(watchMarkersAt offset: String, fences: String, candidate: String, fenced: String = "true") -> String {
        """
        for i = 1, n do
          if redis.call('exists', KEYS[\(offset) + i]) == 1 then redis.call('publish', KEYS[i], 'a') end
        end
        if \(fenced) then
          for i = 1, n do redis.call('zadd', \(fences), \(candidate), KEYS[i]) end
        end
        return redis.status_reply('OK')
        """
    }

    /// An acquisition attempt by a caller that waits (see `WakeUpHub`). KEYS: lock keys (n),
    /// wait markers (n), watch markers (n), the first resource's priority claim and its waiter
    /// queue, then (only when fenced) the fences; ARGV: value, ttl ms, candidate token, n, wait
    /// marker ms, waiter id, "1" to claim priority, claim slack ms, the wait marker ms still
    /// needed once this waiter has the lock (0 when nobody else here waits), how long (ms) the
    /// waiter's place in the queue lasts unless a later attempt renews it, its arrival (the
    /// queue's order), and "1" once an earlier attempt of this waiter was refused (it may be
    /// queued).
    ///
    /// While another waiter's priority claim stands, or any lock key exists, it refuses with a
    /// PTTL (the holder's; or, when the lock is free, the claim's, at most the slack: the
    /// claimant is about to take it), makes sure every wait marker lives at least the given
    /// time, so that the release announces itself, and queues the waiter at its arrival, as
    /// the entry `id:lapse` (the master's clock, ms), replacing any earlier entry of its own: a
    /// waiter that stops attempting (its process died) lapses, and releases pass it by. A waiter that claims priority and finds no other claim records its id until
    /// the holder's key expires plus the slack. Otherwise it sets the keys, drops its claim and
    /// its queue entry, keeps the markers alive for the waiters behind it, and continues as
    /// ``acquireFenced`` (a fenced attempt whose candidate is too low is refused before any of
    /// that).
    static let acquireWaiting = RedisScript(
        """
        local n = tonumber(ARGV[4])
        local fenced = #KEYS == 3 * n + 3
        local first, queue = KEYS[3 * n + 1], KEYS[3 * n + 2]
        local claimant = redis.call('get', first)
        local blocked = claimant and claimant ~= ARGV[6]
        local held = nil
        for i = 1, n do
          if redis.call('exists', KEYS[i]) == 1 then held = i break end
        end
        local function keepMarkers(lifetime)
          for i = 1, n do
            local marker = KEYS[n + i]
            if redis.call('pttl', marker) < lifetime then redis.call('set', marker, '1', 'PX', lifetime) end
          end
          if redis.call('exists', queue) == 1 and redis.call('pttl', queue) < lifetime then redis.call('pexpire', queue, lifetime) end
        end
        \(dropQueueEntry)
        if held or blocked then
          dropQueueEntry(queue, ARGV[6], ARGV[11])
          local clock = redis.call('time')
          local lapse = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) + tonumber(ARGV[10])
          redis.call('zadd', queue, ARGV[11], string.format('%s:%d', ARGV[6], lapse))
          keepMarkers(tonumber(ARGV[5]))
          local left = held and redis.call('pttl', KEYS[held]) or math.min(redis.call('pttl', first), tonumber(ARGV[8]))
          if ARGV[7] == '1' and not blocked then
            redis.call('set', first, ARGV[6], 'PX', math.max(left, 0) + tonumber(ARGV[8]))
          end
          return left
        end
        if fenced then
          \(refuseLowCandidate(fences: "KEYS[#KEYS]", candidate: "ARGV[3]"))
        end
        for i = 1, n do redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
        if claimant then redis.call('del', first) end
        if ARGV[12] == '1' then dropQueueEntry(queue, ARGV[6], ARGV[11]) end
        local others = tonumber(ARGV[9])
        if others > 0 then keepMarkers(others) end
        \(announceAndFence(watchMarkersAt: "2 * n", fences: "KEYS[#KEYS]", candidate: "ARGV[3]", fenced: "fenced"))
        """
    )

    /// KEYS[1] a priority claim, KEYS[2] a waiter queue; ARGV[1] a waiter id, ARGV[2] its
    /// arrival. Forgets a waiter that won elsewhere or gave up: drops its claim, if it holds
    /// it, and its queue entry.
    static let forgetWaiter = RedisScript(
        """
        \(dropQueueEntry)
        if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
        dropQueueEntry(KEYS[2], ARGV[1], ARGV[2])
        return 1
        """
    )

    /// Lua `dropQueueEntry(queue, id, arrival)`: removes the entry (`id:lapse`) of the waiter
    /// `id` that queued at `arrival`, whatever its lapse; only the entries of that arrival are
    /// read.
    private static let dropQueueEntry = """
        local function dropQueueEntry(queue, id, arrival)
          for _, entry in ipairs(redis.call('zrangebyscore', queue, arrival, arrival)) do
            if string.sub(entry, 1, #id + 1) == id .. ':' then redis.call('zrem', queue, entry) end
          end
        end
        """

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

    /// KEYS: lock keys (n), their wait markers (n), their watch markers (n), the first
    /// resource's waiter queue and priority claim; ARGV: value, "prefix" to match values that
    /// start with it, n, "1" to announce. Compare-and-delete: deletes only keys holding our
    /// value (compared without its trailer, see `StoredValue`) and returns how many it deleted. When announcing, each deleted key that has a waiter or a watcher gets
    /// `r` published on its channel, followed (for the first resource) by the id of the waiter
    /// that claimed priority, or else the entry of the queue's first waiter whose place has
    /// not lapsed: only that waiter is woken (lapsed entries are dropped on the way). With ARGV[5], a fencing token's trailer, a key is deleted only while its value
    /// carries that token: -2 when it does not.
    static let release = RedisScript(
        """
        local n = tonumber(ARGV[3])
        local deleted = 0
        \(ours)
        for i = 1, n do
          local current = redis.call('get', KEYS[i])
          if ours(current, ARGV[1], ARGV[2]) then
            if ARGV[5] and string.sub(current, -\(StoredValue.trailerLength)) ~= ARGV[5] then return -2 end
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
    /// lost it: candidate for re-seeding), 0 otherwise. With ARGV[4], a fencing token's
    /// trailer, a held lock is extended only while its value carries that token: -2 when it
    /// does not.
    static let extend = RedisScript(
        """
        local n = #KEYS
        local missing = 0
        \(ours)
        for i = 1, n do
          local current = redis.call('get', KEYS[i])
          if current == false then
            missing = missing + 1
          elseif not ours(current, ARGV[1], ARGV[3]) then
            return 0
          elseif ARGV[4] and string.sub(current, -\(StoredValue.trailerLength)) ~= ARGV[4] then
            return -2
          end
        end
        if missing == n then return -1 end
        if missing > 0 then return 0 end
        for i = 1, n do redis.call('pexpire', KEYS[i], ARGV[2]) end
        return 1
        """
    )

    /// Whether a stored value (`current`, false when the key is missing) is ours: without its
    /// trailer it equals `value`, or with `mode` "prefix" starts with it.
    private static let ours = """
        local function ours(current, value, mode)
          if not current or #current < \(StoredValue.trailerLength) then return false end
          local body = string.sub(current, 1, -\(StoredValue.trailerLength + 1))
          return body == value or (mode == 'prefix' and string.sub(body, 1, #value) == value)
        end
        """

    /// KEYS lock keys, then (when fenced) the fences; ARGV stored value, ttl ms, and when
    /// fenced the lock's token. Writes our value back on a master that lost every key
    /// (restarted), only if none of them exists now, and raises the fences it lost to the token.
    static let reseed = RedisScript(
        """
        local n = ARGV[3] and #KEYS - 1 or #KEYS
        for i = 1, n do
          if redis.call('exists', KEYS[i]) == 1 then return 0 end
        end
        for i = 1, n do redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
        if ARGV[3] then
          for i = 1, n do redis.call('zadd', KEYS[#KEYS], 'GT', ARGV[3], KEYS[i]) end
        end
        return 1
        """
    )

    /// KEYS[1] lock key, KEYS[2] the fences: the stored value, remaining time to live in ms,
    /// and the resource's fence (the highest token handed out for it, or burned).
    static let inspect = RedisScript(
        """
        return {redis.call('get', KEYS[1]), redis.call('pttl', KEYS[1]), redis.call('zscore', KEYS[2], KEYS[1])}
        """
    )

    /// KEYS lock key; ARGV old value, new value. Compare-and-set that keeps the key's TTL and
    /// its token: 1 if the key held the old value and now holds the new one, 0 otherwise.
    static let relabel = RedisScript(
        """
        \(ours)
        local current = redis.call('get', KEYS[1])
        if ours(current, ARGV[1], 'exact') then
          redis.call('set', KEYS[1], ARGV[2] .. string.sub(current, -\(StoredValue.trailerLength)), 'KEEPTTL')
          return 1
        end
        return 0
        """
    )

    /// KEYS the fences; ARGV retention ms, most entries to drop. Drops the fences of resources
    /// that nobody acquired for the retention (by the master's clock; a fence's score is a
    /// token, which is microseconds of a client's wall clock or a little above it) and returns
    /// how many it dropped.
    static let pruneFences = RedisScript(
        """
        local clock = redis.call('time')
        local cutoff = (tonumber(clock[1]) - tonumber(ARGV[1]) / 1000) * 1000000
        local stale = redis.call('zrangebyscore', KEYS[1], '-inf', '(' .. string.format('%.0f', cutoff), 'LIMIT', 0, tonumber(ARGV[2]))
        if #stale > 0 then redis.call('zrem', KEYS[1], unpack(stale)) end
        return #stale
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

    /// A writer's acquisition. KEYS: writer key, readers' set, writer-waiting marker, wait
    /// marker, watch marker, then (only when fenced) the fences; ARGV: value, ttl ms,
    /// candidate token, wait marker ms, writer id, writer-waiting marker ms (0 when the writer
    /// will not wait). Refused while the writer key exists or a reader's entry lives: it
    /// returns the PTTL of the holder (the last reader's), keeps the wait marker, and marks
    /// the writer as waiting unless another writer already is. Otherwise sets the writer key,
    /// drops its own waiting marker and continues as ``acquireFenced``.
    static let acquireWrite = RedisScript(
        """
        local n = 1
        local fenced = #KEYS == 6
        local READERS, intent = KEYS[2], KEYS[3]
        local left = nil
        if redis.call('exists', KEYS[1]) == 1 then
          left = redis.call('pttl', KEYS[1])
        else
          \(readersNow)
          local last = redis.call('zrange', READERS, -1, -1, 'WITHSCORES')[2]
          if last then left = tonumber(last) - now end
        end
        if left then
          \(markWaiting("KEYS[4]", "ARGV[4]"))
          local waiting = redis.call('get', intent)
          if tonumber(ARGV[6]) > 0 and (not waiting or waiting == ARGV[5]) then redis.call('set', intent, ARGV[5], 'PX', ARGV[6]) end
          return left
        end
        if fenced then
          \(refuseLowCandidate(fences: "KEYS[6]", candidate: "ARGV[3]"))
        end
        redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
        if redis.call('get', intent) == ARGV[5] then redis.call('del', intent) end
        \(announceAndFence(watchMarkersAt: "4", fences: "KEYS[6]", candidate: "ARGV[3]", fenced: "fenced"))
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
