import RedisWire
import Redlock

/// State kept per caller identity on one master of the primary group, the same one for the
/// identity in every replica (a stable hash picks it): throttling, waiter counts, the quota
/// of anonymous names.
struct IdentityMaster: Sendable {
    let redlock: Redlock
    /// Prefix of the identity's key on its master.
    let keyPrefix: String

    /// Runs `script` with the identity's key as KEYS[1] on the identity's master; nil when it
    /// did not answer within the instance timeout.
    func evaluate(_ script: RedisScript, for identity: String, arguments: [[UInt8]]) async -> RESPValue? {
        let master = Int(Self.stableHash(identity) % UInt64(redlock.masters.count))
        return try? await redlock.evaluate(onMaster: master, script, keys: [Array((keyPrefix + identity).utf8)], arguments: arguments)
    }

    /// FNV-1a: the same master for an identity in every replica (Swift's `Hasher` is seeded
    /// per process).
    static func stableHash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }
}
