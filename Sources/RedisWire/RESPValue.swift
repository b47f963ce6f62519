/// One decoded Redis reply (RESP2), binary-safe.
///
/// Top-level error replies (`-ERR ...`) are not values: ``RedisConnection/send(_:timeout:)``
/// throws them as ``RedisWireError`` with code ``RedisWireError/Code/serverError``.
/// Errors nested inside an array (for example in an `EXEC` reply) stay values.
public enum RESPValue: Sendable, Hashable {
    /// A simple string reply such as `+OK`.
    case simpleString(String)
    /// A bulk string reply; may hold any bytes, including NUL and CR/LF.
    case bulkString([UInt8])
    /// An integer reply.
    case integer(Int64)
    /// An array reply.
    case array([RESPValue])
    /// The nil bulk string or nil array.
    case null
    /// An error reply nested inside an array.
    case error(String)

    /// The reply as UTF-8 text when it is a simple or bulk string.
    public var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulkString(let bytes): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    /// The reply's bytes when it is a bulk or simple string.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): return bytes
        case .simpleString(let text): return Array(text.utf8)
        default: return nil
        }
    }

    /// The reply as an integer when it is an integer reply.
    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The reply's elements when it is an array reply.
    public var array: [RESPValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// Whether the reply is nil.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
