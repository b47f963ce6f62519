import Crypto
import RedisWire
import Redlock

/// How the adapter lays out a lock's value on the masters, in one place: an owner part,
/// `s:<HMAC-SHA-256 hex of lock and secret under the server key>#<random>` (a plain SHA-256
/// without a server key) for a lock taken with a secret or
/// `a:<random>` for an anonymous one, then a newline, then the Pro data payload: the name of
/// the tenant that stored it, a newline and the JSON (both empty when there is none), so that
/// only that tenant reads it back. The random part makes every acquisition's value unique, so the
/// clean-up of a failed attempt (an exact-value delete) never removes the keys of an earlier
/// acquisition with the same secret. DELETE and PATCH match the owner part by prefix; the
/// secret itself is never stored.
enum StoredLockValue {
    private static let separator = UInt8(ascii: "\n")
    private static let secretPrefix = Array("s:".utf8)
    private static let anonymousPrefix = Array("a:".utf8)
    private static let nonceSeparator = UInt8(ascii: "#")

    /// The owner part for a lock taken on `resource` with `secret`: keyed under `key` so that
    /// a dump of the masters does not let anyone test guesses of the secret offline.
    static func owner(resource: String, secret: String, key: [UInt8]?) -> [UInt8] {
        let message = Array((resource + "\n" + secret).utf8)
        guard let key else { return secretPrefix + SHA256.hash(data: message).hexDigits }
        return secretPrefix + HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)).hexDigits
    }

    /// The value to store: `owner` (or a fresh anonymous owner), the separator, then `data`
    /// with the tenant that stored it.
    static func make(owner: [UInt8]?, data: [UInt8]?, tenant: String?) -> [UInt8] {
        let unique = owner.map { $0 + [nonceSeparator] + Redlock.randomValue() } ?? anonymousPrefix + Redlock.randomValue()
        guard let data, !data.isEmpty, let tenant else { return unique + [separator] }
        return unique + [separator] + Array(tenant.utf8) + [separator] + data
    }

    /// What release and extend match: this secret's owner part, or any anonymous lock.
    static func match(owner: [UInt8]?) -> ValueMatch {
        .prefix(owner.map { $0 + [nonceSeparator] } ?? anonymousPrefix)
    }

    /// Whether `holder` was stored by `owner`.
    static func isHeld(_ holder: [UInt8], by owner: [UInt8]) -> Bool {
        holder.starts(with: owner + [nonceSeparator])
    }

    /// Whether `holder` was taken with a secret.
    static func hasSecret(_ holder: [UInt8]) -> Bool {
        holder.starts(with: secretPrefix)
    }

    /// The data payload stored in `holder`, if any and if `tenant` stored it.
    static func data(in holder: [UInt8], visibleTo tenant: String?) -> [UInt8]? {
        guard let tenant, let first = holder.firstIndex(of: separator) else { return nil }
        let payload = holder[(first + 1)...]
        guard let second = payload.firstIndex(of: separator), payload[..<second].elementsEqual(tenant.utf8) else { return nil }
        let data = Array(payload[(second + 1)...])
        return data.isEmpty ? nil : data
    }
}
