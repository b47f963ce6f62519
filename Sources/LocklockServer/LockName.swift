import Redlock

/// A lock named in a request path: `uuid/{uuid}` or `key/{name}`.
public enum LockName: Sendable, Hashable {
    /// A UUID lock, lowercased canonical form.
    case uuid(String)
    /// A custom key name (Pro).
    case key(String)
    /// Permit `index` of the semaphore with the key name (Pro).
    case permit(String, index: Int)

    /// Parses the UUID segment; nil unless it is a canonical 8-4-4-4-12 hex UUID.
    public static func parseUUID(_ text: String) -> LockName? {
        let lower = text.lowercased()
        let bytes = Array(lower.utf8)
        guard bytes.count == 36 else { return nil }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return nil }
            } else {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) else {
                    return nil
                }
            }
        }
        return .uuid(lower)
    }

    /// Parses a key name: `^[A-Za-z0-9._~:-]{1,200}$`, and never `.`/`..` path segments.
    public static func parseKey(_ text: String) -> LockName? {
        let bytes = Array(text.utf8)
        guard (1...200).contains(bytes.count), !text.contains("..") else { return nil }
        for byte in bytes {
            let allowed =
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || Array("._~:-".utf8).contains(byte)
            guard allowed else { return nil }
        }
        guard text != "." else { return nil }
        return .key(text)
    }

    /// The path form, `uuid/...` or `key/...` (after `/v1/api/lock/`), or `key/.../N` for a
    /// permit (after `/v1/api/semaphore/`).
    public var path: String {
        switch self {
        case .uuid(let id): "uuid/\(id)"
        case .key(let name): "key/\(name)"
        case .permit(let name, let index): "key/\(name)/\(index)"
        }
    }

    /// What a secret is bound to: the lock itself, or for a permit its semaphore (the POST
    /// binds it before it knows which permit it gets).
    var secretScope: LockName {
        guard case .permit(let name, _) = self else { return self }
        return .key(name)
    }

    /// Parses a permit's index segment: 0 to ``Semaphore/maximumPermits`` - 1, in decimal.
    static func parsePermit(_ text: String) -> Int? {
        guard (1...4).contains(text.utf8.count), text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let index = Int(text), index < Semaphore.maximumPermits, text == String(index)
        else { return nil }
        return index
    }

    /// The Redlock resource: UUID locks are global; key locks live in their tenant's namespace,
    /// so two tenants never collide.
    func resource(tenant: String?) -> String {
        switch self {
        case .uuid(let id): "u:\(id)"
        case .key(let name): "k:\(tenant ?? "-"):\(name)"
        // The semaphore's slot resource (see `Semaphore.slot`): '#' is never part of a key
        // name, so a permit cannot be a lock's resource.
        case .permit(let name, let index): "k:\(tenant ?? "-"):\(name)#\(index)"
        }
    }
}
