import NIOCore

/// Writes one flat JSON object straight into a buffer, fields in the order given: the REST
/// adapter's lock responses and every problem body, without a `JSONEncoder` (which was the
/// largest share of a request's CPU in the server after the Redis I/O). The output is byte for
/// byte what a `JSONEncoder` with sorted keys and unescaped slashes makes, when the fields come
/// in sorted order.
package struct JSONObjectWriter {
    private var buffer: ByteBuffer
    private var empty = true

    /// An empty object, in a buffer of `capacity` bytes to start with.
    package init(capacity: Int = 192) {
        buffer = ByteBuffer()
        buffer.reserveCapacity(capacity)
        buffer.writeInteger(UInt8(ascii: "{"))
    }

    /// The finished object.
    package consuming func finish() -> ByteBuffer {
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// A string member, escaped as JSON requires.
    package mutating func field(_ key: StaticString, _ value: String) {
        name(key)
        writeString(value)
    }

    /// An integer member.
    package mutating func field(_ key: StaticString, _ value: Int64) {
        name(key)
        buffer.writeString(String(value))
    }

    /// A boolean member.
    package mutating func field(_ key: StaticString, _ value: Bool) {
        name(key)
        buffer.writeStaticString(value ? "true" : "false")
    }

    /// A finite number, as `JSONEncoder` writes it: the shortest form that reads back the
    /// same, without a trailing `.0`.
    package mutating func field(_ key: StaticString, _ value: Double) {
        name(key)
        let text = value.description
        buffer.writeString(text.hasSuffix(".0") ? String(text.dropLast(2)) : text)
    }

    /// A value already encoded as JSON.
    package mutating func field(_ key: StaticString, json: [UInt8]) {
        name(key)
        buffer.writeBytes(json)
    }

    private mutating func name(_ key: StaticString) {
        if !empty { buffer.writeInteger(UInt8(ascii: ",")) }
        empty = false
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeStaticString(key)
        buffer.writeStaticString("\":")
    }

    private mutating func writeString(_ value: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var clean = value.utf8.startIndex
        for index in value.utf8.indices {
            let byte = value.utf8[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            buffer.writeBytes(value.utf8[clean..<index])
            clean = value.utf8.index(after: index)
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case 0x08: buffer.writeStaticString("\\b")
            case 0x0C: buffer.writeStaticString("\\f")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            case 0x09: buffer.writeStaticString("\\t")
            default:
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(Self.hexDigits[Int(byte >> 4)])
                buffer.writeInteger(Self.hexDigits[Int(byte & 0xF)])
            }
        }
        buffer.writeBytes(value.utf8[clean...])
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
