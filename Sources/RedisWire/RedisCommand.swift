import NIOCore

/// A command encoded once (by hiredis) and sendable to any number of connections, as a
/// Redlock fan-out sends the same bytes to every master.
public struct RedisCommand: Sendable {
    /// The RESP bytes.
    public let encoded: ByteBuffer
    /// How many replies the bytes ask for: 1, or a transaction's commands plus `MULTI` and
    /// `EXEC`. The caller gets only the last.
    public let replies: Int

    /// Encodes `arguments` (each one binary-safe bulk string).
    public init(_ arguments: [[UInt8]]) throws(RedisWireError) {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        try HiredisEncoder.encode(arguments, into: &buffer)
        self.encoded = buffer
        self.replies = 1
    }

    /// Encodes `MULTI`, the commands, `EXEC`: the server runs them as one, with no other
    /// client's command in between. The caller gets only `EXEC`'s reply: the array of the
    /// commands' replies, or an error (`EXECABORT` when a command was refused as it queued).
    public init(transaction commands: [[[UInt8]]]) throws(RedisWireError) {
        var buffer = ByteBufferAllocator().buffer(capacity: 64 * (commands.count + 2))
        buffer.writeBytes(Self.multi)
        for arguments in commands { try HiredisEncoder.encode(arguments, into: &buffer) }
        buffer.writeBytes(Self.exec)
        self.encoded = buffer
        self.replies = commands.count + 2
    }

    private static let multi = Array("*1\r\n$5\r\nMULTI\r\n".utf8)
    private static let exec = Array("*1\r\n$4\r\nEXEC\r\n".utf8)

    /// `EVALSHA sha numkeys keys... args...` for `script`.
    public static func evalsha(_ script: RedisScript, keys: [[UInt8]], arguments: [[UInt8]]) throws(RedisWireError) -> RedisCommand {
        try RedisCommand([evalshaName, script.sha1Bytes, Array(String(keys.count).utf8)] + keys + arguments)
    }

    /// `EVAL source numkeys keys... args...` for `script`.
    public static func eval(_ script: RedisScript, keys: [[UInt8]], arguments: [[UInt8]]) throws(RedisWireError) -> RedisCommand {
        try RedisCommand([evalName, script.sourceBytes, Array(String(keys.count).utf8)] + keys + arguments)
    }

    private static let evalshaName = Array("EVALSHA".utf8)
    private static let evalName = Array("EVAL".utf8)
}

/// A script invocation encoded once as EVALSHA; the EVAL form is encoded only while a
/// connection does not know its server has the script cached.
///
/// A class, not a struct: a fan-out hands one call to every master's completion closure, and
/// copying the script, keys and arguments each time showed up in profiles.
package final class RedisScriptCall: Sendable {
    /// The script.
    package let script: RedisScript
    /// Its keys.
    package let keys: [[UInt8]]
    /// Its arguments.
    package let arguments: [[UInt8]]
    /// The encoded EVALSHA.
    package let evalsha: RedisCommand

    /// Encodes the EVALSHA form.
    package init(_ script: RedisScript, keys: [[UInt8]], arguments: [[UInt8]]) throws(RedisWireError) {
        self.script = script
        self.keys = keys
        self.arguments = arguments
        self.evalsha = try .evalsha(script, keys: keys, arguments: arguments)
    }
}
