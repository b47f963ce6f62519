/// What `INFO` says about the server process a connection reached: which process it is, what
/// it runs, and how it came to be a master.
package struct ServerIdentity: Sendable, Equatable {
    /// Random per server start: a different one means the server restarted (or another server
    /// answers at this address).
    package var runID: String
    /// The product: "redis", or "valkey" for Valkey (which also reports a `redis_version`).
    package var product: String
    /// The product's own version, such as "7.0.15".
    package var version: String
    /// "master", or "slave" for a replica.
    package var role: String
    /// Whether the server was promoted from a replica since it started (`master_replid2` is
    /// set): it holds what replication had copied, which may lack the last writes its former
    /// master acknowledged.
    package var promotedFromReplica: Bool

    package init(runID: String, product: String = "redis", version: String, role: String = "master", promotedFromReplica: Bool = false) {
        self.runID = runID
        self.product = product
        self.version = version
        self.role = role
        self.promotedFromReplica = promotedFromReplica
    }

    /// Parses the reply of `INFO` (its server and replication sections); nil when it names no
    /// run id or version.
    package init?(info: String) {
        var fields: [Substring: Substring] = [:]
        for line in info.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon]] = line[line.index(after: colon)...]
        }
        guard let runID = fields["run_id"], !runID.isEmpty, let redisVersion = fields["redis_version"] else { return nil }
        self.runID = String(runID)
        if let valkey = fields["valkey_version"] {
            product = "valkey"
            version = String(valkey)
        } else {
            product = String(fields["server_name"] ?? "redis")
            version = String(redisVersion)
        }
        role = String(fields["role"] ?? "master")
        let noReplicationID = "0000000000000000000000000000000000000000"
        promotedFromReplica = fields["master_replid2"].map { !$0.isEmpty && $0 != noReplicationID[...] } ?? false
    }

    /// The oldest supported version of each product: Redis 6.2 brought `ZADD ... GT`, which
    /// fencing needs; Valkey began at 7.2.
    package static let oldestSupported: [String: [Int]] = ["redis": [6, 2], "valkey": [7, 2]]

    /// Why this server cannot serve as a master, or nil when it can.
    package var unsupportedReason: String? {
        if role != "master" {
            return "the server is a \(role == "slave" ? "replica" : role), not a master: name the master, or promote it"
        }
        let oldest = Self.oldestSupported[product] ?? [6, 2]
        let numbers = version.split(separator: ".").map { Int($0) ?? 0 }
        for (have, need) in zip(numbers + [0, 0], oldest) where have != need {
            if have > need { return nil }
            return "\(Self.name(product)) \(version) is not supported: Locklock needs Redis 6.2 or later, or Valkey 7.2 or later"
        }
        return nil
    }

    private static func name(_ product: String) -> String {
        product == "valkey" ? "Valkey" : product == "redis" ? "Redis" : product
    }
}
