/// A lock named in a request path: `uuid/{uuid}` or `key/{name}`.
public enum LockName: Sendable, Hashable {
    /// A UUID lock, lowercased canonical form.
    case uuid(String)
    /// A custom key name (Pro).
    case key(String)

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

    /// The path form, `uuid/...` or `key/...`.
    public var path: String {
        switch self {
        case .uuid(let id): "uuid/\(id)"
        case .key(let name): "key/\(name)"
        }
    }

    /// The Redlock resource: UUID locks are global; key locks live in their tenant's namespace,
    /// so two tenants never collide.
    func resource(tenant: String?) -> String {
        switch self {
        case .uuid(let id): "u:\(id)"
        case .key(let name): "k:\(tenant ?? "-"):\(name)"
        }
    }
}
