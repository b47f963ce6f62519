import Foundation

/// A JSON reader (RFC 8259) that never throws: a malformed byte ends the parse with nil, so a
/// hostile body costs one pass over its bytes. Objects and arrays nest at most
/// ``LockRequestDecoder/maximumDepth`` levels; a member named twice in one object is refused.
///
/// `skipping` names top-level members whose values are only checked, never built: the
/// adapter refuses a `data` payload from a caller whose plan has none without materialising
/// it (see ``LockRequestBody``).
struct JSONParser {
    /// Why a parse failed.
    enum Failure: Error, Equatable {
        case malformed
        case tooDeep
        case duplicateMember(String)
    }

    /// A top-level object: its members, and the names of the skipped ones that were present
    /// (and not `null`).
    struct Object {
        var members: [String: JSONValue] = [:]
        var skipped: Set<String> = []
    }

    private let bytes: [UInt8]
    private var index = 0
    private let maximumDepth: Int

    private init(_ bytes: [UInt8], maximumDepth: Int) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
    }

    /// The value `bytes` hold, whole (whitespace around it aside).
    static func value(_ bytes: [UInt8], maximumDepth: Int = LockRequestDecoder.maximumDepth) -> Result<JSONValue, Failure> {
        whole(JSONParser(bytes, maximumDepth: maximumDepth)) { parser throws(Failure) in try parser.value(depth: 0) }
    }

    /// The object `bytes` hold; nil inside the result when they hold another kind of value.
    static func object(_ bytes: [UInt8], skipping: Set<String> = []) -> Result<Object?, Failure> {
        whole(JSONParser(bytes, maximumDepth: LockRequestDecoder.maximumDepth)) { parser throws(Failure) in
            parser.skipWhitespace()
            guard parser.peek == UInt8(ascii: "{") else {
                _ = try parser.value(depth: 0)
                return nil
            }
            var object = Object()
            try parser.members(depth: 1) { parser, name throws(Failure) in
                if skipping.contains(name) {
                    if try !parser.skipValue(depth: 1) { object.skipped.insert(name) }
                } else {
                    object.members[name] = try parser.value(depth: 1)
                }
            }
            return object
        }
    }

    /// What `body` reads from `parser`, provided nothing but whitespace follows it.
    private static func whole<T>(_ parser: JSONParser, _ body: (inout JSONParser) throws(Failure) -> T) -> Result<T, Failure> {
        var parser = parser
        do throws(Failure) {
            let result = try body(&parser)
            parser.skipWhitespace()
            guard parser.index == parser.bytes.count else { throw .malformed }
            return .success(result)
        } catch {
            return .failure(error)
        }
    }

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws(Failure) {
        skipWhitespace()
        guard peek == byte else { throw .malformed }
        index += 1
    }

    private mutating func value(depth: Int) throws(Failure) -> JSONValue {
        skipWhitespace()
        switch peek {
        case UInt8(ascii: "{"):
            var object: [String: JSONValue] = [:]
            try members(depth: depth + 1) { parser, name throws(Failure) in object[name] = try parser.value(depth: depth + 1) }
            return .object(object)
        case UInt8(ascii: "["):
            var array: [JSONValue] = []
            try elements(depth: depth + 1) { parser throws(Failure) in array.append(try parser.value(depth: depth + 1)) }
            return .array(array)
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        default:
            return try number()
        }
    }

    /// Checks one value without building it; true when it is `null`.
    private mutating func skipValue(depth: Int) throws(Failure) -> Bool {
        skipWhitespace()
        switch peek {
        case UInt8(ascii: "{"):
            try members(depth: depth + 1) { parser, _ throws(Failure) in _ = try parser.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            try elements(depth: depth + 1) { parser throws(Failure) in _ = try parser.skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""):
            _ = try string()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"):
            try literal("null")
            return true
        default:
            _ = try number()
        }
        return false
    }

    /// Reads `{ "name": value, ... }`, handing each member's name to `member`, which reads its value.
    private mutating func members(depth: Int, _ member: (inout JSONParser, String) throws(Failure) -> Void) throws(Failure) {
        guard depth <= maximumDepth else { throw .tooDeep }
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            index += 1
            return
        }
        var seen = Set<String>()
        repeat {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw .malformed }
            let name = try string()
            guard seen.insert(name).inserted else { throw .duplicateMember(name) }
            try expect(UInt8(ascii: ":"))
            try member(&self, name)
            skipWhitespace()
        } while take(UInt8(ascii: ","))
        try expect(UInt8(ascii: "}"))
    }

    private mutating func elements(depth: Int, _ element: (inout JSONParser) throws(Failure) -> Void) throws(Failure) {
        guard depth <= maximumDepth else { throw .tooDeep }
        try expect(UInt8(ascii: "["))
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
            index += 1
            return
        }
        repeat {
            try element(&self)
            skipWhitespace()
        } while take(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        index += 1
        return true
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw .malformed }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw .malformed }
        index += count
    }

    /// A number: an integer when it has neither fraction nor exponent and fits 64 bits.
    private mutating func number() throws(Failure) -> JSONValue {
        let start = index
        _ = take(UInt8(ascii: "-"))
        guard let first = peek, isDigit(first) else { throw .malformed }
        index += 1
        if first != UInt8(ascii: "0") { while let byte = peek, isDigit(byte) { index += 1 } }
        var integral = true
        if take(UInt8(ascii: ".")) {
            integral = false
            try digits()
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            integral = false
            index += 1
            if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
            try digits()
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        // "-0" is the number -0.0, which an integer would lose.
        if integral, text != "-0", let value = Int64(text) { return .integer(value) }
        guard let value = Double(text), value.isFinite else { throw .malformed }
        return .number(value)
    }

    private mutating func digits() throws(Failure) {
        guard let byte = peek, isDigit(byte) else { throw .malformed }
        while let byte = peek, isDigit(byte) { index += 1 }
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// A string, escapes resolved; its raw bytes must be UTF-8 with no control characters.
    private mutating func string() throws(Failure) -> String {
        index += 1  // the opening quote
        var scalars: [UInt8] = []
        var runStart = index
        while true {
            guard let byte = peek else { throw .malformed }
            if byte == UInt8(ascii: "\"") {
                scalars.append(contentsOf: bytes[runStart..<index])
                index += 1
                break
            }
            guard byte >= 0x20 else { throw .malformed }
            guard byte == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            scalars.append(contentsOf: bytes[runStart..<index])
            index += 1
            guard let escaped = peek else { throw .malformed }
            index += 1
            switch escaped {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escaped)
            case UInt8(ascii: "b"): scalars.append(0x08)
            case UInt8(ascii: "f"): scalars.append(0x0C)
            case UInt8(ascii: "n"): scalars.append(0x0A)
            case UInt8(ascii: "r"): scalars.append(0x0D)
            case UInt8(ascii: "t"): scalars.append(0x09)
            case UInt8(ascii: "u"): scalars.append(contentsOf: Array(String(try unicodeEscape()).utf8))
            default: throw .malformed
            }
            runStart = index
        }
        guard let text = String(validating: scalars, as: UTF8.self) else { throw .malformed }
        return text
    }

    /// After `\u`: one scalar, a surrogate pair taking both escapes.
    private mutating func unicodeEscape() throws(Failure) -> Unicode.Scalar {
        let high = try hexQuad()
        if (0xD800...0xDBFF).contains(high) {
            guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")) else { throw .malformed }
            let low = try hexQuad()
            guard (0xDC00...0xDFFF).contains(low), let scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)) else {
                throw .malformed
            }
            return scalar
        }
        guard let scalar = Unicode.Scalar(high) else { throw .malformed }
        return scalar
    }

    private mutating func hexQuad() throws(Failure) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .malformed }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .malformed
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }
}
