import NIOCore

/// Writes one flat JSON object straight into a buffer, fields in the order given: the lock
/// responses' bodies without a `JSONEncoder` (which was the largest share of a lock request's
/// CPU in the server after the Redis I/O). The output is byte for byte what the responses'
/// encoder (sorted keys, slashes unescaped) makes, when the fields come in sorted order.
struct JSONObjectWriter {
    private(set) var buffer: ByteBuffer
    private var empty = true

    init(capacity: Int = 192) {
        buffer = ByteBuffer()
        buffer.reserveCapacity(capacity)
        buffer.writeInteger(UInt8(ascii: "{"))
    }

    /// The finished object.
    consuming func finish() -> ByteBuffer {
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    mutating func field(_ key: StaticString, _ value: String) {
        name(key)
        writeString(value)
    }

    mutating func field(_ key: StaticString, _ value: Int64) {
        name(key)
        buffer.writeString(String(value))
    }

    mutating func field(_ key: StaticString, _ value: Bool) {
        name(key)
        buffer.writeStaticString(value ? "true" : "false")
    }

    /// A finite number, as `JSONEncoder` writes it: the shortest form that reads back the
    /// same, without a trailing `.0`.
    mutating func field(_ key: StaticString, _ value: Double) {
        name(key)
        let text = value.description
        buffer.writeString(text.hasSuffix(".0") ? String(text.dropLast(2)) : text)
    }

    /// A value already encoded as JSON.
    mutating func field(_ key: StaticString, json: [UInt8]) {
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
