/// The common lock request body, read without a `JSONDecoder`: one flat object whose members
/// are the known keys at most once each, with plain numbers (`expires_in`, `wait`,
/// `lock_delay`, integer `permits`) and an unescaped `secret`. Anything else (`data`, `null`,
/// escapes, exponents, unknown or repeated keys, and every malformed body) returns nil and
/// goes to the `JSONDecoder`, which gives the errors; so whatever this accepts, it reads as the
/// decoder does.
struct SimpleBodyParser {
    private let bytes: [UInt8]
    private var index = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The body `bytes` encode, or nil when they are outside the simple form.
    static func parse(_ bytes: [UInt8]) -> LockRequestBody? {
        var parser = SimpleBodyParser(bytes)
        return parser.object()
    }

    private mutating func object() -> LockRequestBody? {
        var body = LockRequestBody()
        var seen = Set<LockRequestBody.CodingKeys>()
        skipWhitespace()
        if index == bytes.count { return body }  // an empty body reads as `{}`
        guard take(UInt8(ascii: "{")) else { return nil }
        skipWhitespace()
        if !take(UInt8(ascii: "}")) {
            repeat {
                skipWhitespace()
                guard let name = plainString(), let key = LockRequestBody.CodingKeys(stringValue: name), seen.insert(key).inserted
                else { return nil }
                skipWhitespace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipWhitespace()
                switch key {
                case .secret:
                    guard let secret = plainString() else { return nil }
                    body.secret = secret
                case .expiresIn:
                    guard let value = number() else { return nil }
                    body.expiresIn = value
                case .wait:
                    guard let value = number() else { return nil }
                    body.wait = value
                case .lockDelay:
                    guard let value = number() else { return nil }
                    body.lockDelay = value
                case .permits:
                    guard let value = integer() else { return nil }
                    body.permits = value
                case .data:
                    return nil
                }
                skipWhitespace()
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")) else { return nil }
        }
        skipWhitespace()
        return index == bytes.count ? body : nil
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    /// A string with no escape and no control character, as valid UTF-8.
    private mutating func plainString() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
            guard bytes[index] >= 0x20, bytes[index] != UInt8(ascii: "\\") else { return nil }
            index += 1
        }
        guard index < bytes.count else { return nil }
        defer { index += 1 }
        return String(validating: bytes[start..<index], as: UTF8.self)
    }

    /// `-?(0|[1-9][0-9]*)`: the digits' span, at most 18 digits.
    private mutating func integerPart() -> Range<Int>? {
        let start = index
        _ = take(UInt8(ascii: "-"))
        let digits = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        guard index > digits, index - digits <= 18, bytes[digits] != UInt8(ascii: "0") || index - digits == 1 else { return nil }
        return start..<index
    }

    private mutating func integer() -> Int? {
        guard let span = integerPart(), !isNumberContinuation() else { return nil }
        return Int(String(decoding: bytes[span], as: UTF8.self))
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, read as `Double` reads it (correctly rounded, as the
    /// decoder does).
    private mutating func number() -> Double? {
        guard let span = integerPart() else { return nil }
        var end = span.upperBound
        if take(UInt8(ascii: ".")) {
            let fraction = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            guard index > fraction, index - fraction <= 18 else { return nil }
            end = index
        }
        guard !isNumberContinuation() else { return nil }
        return Double(String(decoding: bytes[span.lowerBound..<end], as: UTF8.self))
    }

    /// Whether the number goes on in a form left to the decoder (a fraction or an exponent).
    private func isNumberContinuation() -> Bool {
        index < bytes.count && [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[index])
    }
}
