import Redlock

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
