/// How a lock's value is laid out on the masters: the caller's (or the random) value, then a
/// fixed-length trailer that carries the acquisition's fencing token, so that whoever reads
/// the key learns the token it was issued with, whatever the resource's fence did since.
///
/// The trailer is 17 bytes: the unit separator (0x1F) and the token as 16 lowercase hex
/// digits, all zeros for an unfenced lock. Scripts compare the value without its trailer,
/// and read the token from it.
enum StoredValue {
    /// Bytes the trailer adds to every value.
    static let trailerLength = 17
    private static let marker = UInt8(0x1F)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// `value` with the trailer for `token` (nil: unfenced).
    static func encode(_ value: [UInt8], token: Int64?) -> [UInt8] {
        var stored = value
        stored.reserveCapacity(value.count + trailerLength)
        stored += trailer(token: token)
        return stored
    }

    /// The trailer for `token` alone (what a script compares with a stored value's end).
    static func trailer(token: Int64?) -> [UInt8] {
        let bits = UInt64(bitPattern: token ?? 0)
        var bytes = [marker]
        for shift in stride(from: 60, through: 0, by: -4) { bytes.append(hexDigits[Int((bits >> UInt64(shift)) & 0xF)]) }
        return bytes
    }

    /// The value and token in `stored`; a value without a well-formed trailer (written by
    /// something else) is returned whole, without a token.
    static func decode(_ stored: [UInt8]) -> (value: [UInt8], token: Int64?) {
        guard stored.count >= trailerLength, stored[stored.count - trailerLength] == marker else { return (stored, nil) }
        var bits: UInt64 = 0
        for byte in stored[(stored.count - trailerLength + 1)...] {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): bits = bits << 4 | UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): bits = bits << 4 | UInt64(byte - UInt8(ascii: "a") + 10)
            default: return (stored, nil)
            }
        }
        let token = Int64(bitPattern: bits)
        return (Array(stored.dropLast(trailerLength)), token == 0 ? nil : token)
    }
}
