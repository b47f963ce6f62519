import Redlock

// Start-up checks of the masters' settings, which `serve` logs as warnings.

/// What `serve` warns about at start: masters that may evict keys under memory pressure.
/// An evicted lock key frees the lock while its holder still believes it holds it, so every
/// master must run with `maxmemory-policy noeviction`. A master whose policy cannot be read
/// (unreachable, or CONFIG refused) is not reported.
public func evictionWarnings(groups: MasterGroups) async -> [String] {
    var warnings: [String] = []
    for (name, redlock) in groups.named {
        await redlock.connect()
        let policies = await redlock.serverSetting("maxmemory-policy").compactMap { $0 }
        let evicting = policies.filter { $0 != "noeviction" }
        guard !evicting.isEmpty else { continue }
        let kinds = Set(evicting).sorted().joined(separator: ", ")
        warnings.append(
            "\(name): \(evicting.count) of \(redlock.masters.count) masters may evict keys (maxmemory-policy \(kinds)); "
                + "an evicted key frees a lock its holder still believes it holds: set maxmemory-policy noeviction"
        )
    }
    return warnings
}

/// What `serve` warns about at start when a group runs without the delayed rejoin
/// (``RedlockConfiguration/maximumTTL`` nil): masters that do not fsync every write. Such a
/// master forgets the locks it granted when it restarts, and a restart of a majority, or of
/// a minority that was part of a holder's bare majority, can then give a lock to a second
/// holder. A master whose settings cannot be read is not reported.
public func persistenceWarnings(groups: MasterGroups) async -> [String] {
    var warnings: [String] = []
    for (name, redlock) in groups.named where redlock.configuration.maximumTTL == nil {
        await redlock.connect()
        let appendOnly = await redlock.serverSetting("appendonly")
        let fsync = await redlock.serverSetting("appendfsync")
        let forgetful = zip(appendOnly, fsync).filter { pair in
            guard let appendOnly = pair.0, let fsync = pair.1 else { return false }
            return appendOnly != "yes" || fsync != "always"
        }
        guard !forgetful.isEmpty else { continue }
        warnings.append(
            "\(name): \(forgetful.count) of \(redlock.masters.count) masters do not fsync every write (appendfsync always) "
                + "and the delayed rejoin is off: a master that restarts forgets the locks it granted, and a second holder can get them; "
                + "turn the delayed rejoin on or set appendonly yes and appendfsync always"
        )
    }
    return warnings
}

/// Why `serve` must not start: with the hold-out of masters that may have lost data on, a
/// master that refuses `INFO` can never be checked after a restart, so it would never vote.
/// One line per such master; empty when every master that answered could be identified.
public func identificationFailures(groups: MasterGroups) async -> [String] {
    var failures: [String] = []
    for (name, redlock) in groups.named where redlock.configuration.maximumTTL != nil {
        await redlock.connect()
        for status in await redlock.masterStatus() {
            guard case .unreachable(let reason) = status.state, reason.hasPrefix("INFO ") else { continue }
            failures.append("\(name): master \(status.master): \(reason)")
        }
    }
    return failures
}
