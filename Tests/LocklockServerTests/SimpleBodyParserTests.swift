import Foundation
import Testing

@testable import LocklockServer

/// The request body's fast reader against the full reader (``JSONParser``): whatever it
/// accepts, it must read exactly as the full reader does; everything else is left to it.
@Suite("Request bodies read without the decoder")
struct SimpleBodyParserTests {
    static let keys = ["expires_in", "wait", "lock_delay", "permits", "secret", "data", "other", "expires_in"]
    static let values = [
        "30", "30.5", "0.1", "-0", "0", "00", "012", "1e3", "1E-2", "1.", ".5", "2.0", "-7", "99999999999999999999",
        "1.123456789012345678901", "123456789012345678", "0.30000000000000004", "\"abc\"", "\"é 鍵\"", "\"a\\\"b\"",
        "\"\u{1}\"", "\"\"", "null", "true", "{}", "[1]", "\"30\"", "3 0", "-", "",
    ]
    static let spaces = ["", " ", "\n\t", "\r\n  "]

    static func decoded(_ bytes: [UInt8]) -> LockRequestBody? {
        try? LockRequestBody(parsing: bytes, allowsData: true)
    }

    static func same(_ a: LockRequestBody, _ b: LockRequestBody) -> Bool {
        a.secret == b.secret && a.data == b.data && a.permits == b.permits
            && [a.expiresIn, a.wait, a.lockDelay].map { $0?.bitPattern } == [b.expiresIn, b.wait, b.lockDelay].map { $0?.bitPattern }
    }

    @Test func whatItAcceptsItReadsAsTheDecoderDoes() {
        var generator = SystemRandomNumberGenerator()
        var accepted = 0
        for _ in 0..<20_000 {
            let space = { Self.spaces.randomElement(using: &generator)! }
            let members = (0..<Int.random(in: 0...3, using: &generator)).map { _ in
                "\"\(Self.keys.randomElement(using: &generator)!)\"\(space()):\(space())\(Self.values.randomElement(using: &generator)!)"
            }
            var text = space() + "{" + space() + members.joined(separator: space() + "," + space()) + space() + "}" + space()
            if Int.random(in: 0..<20, using: &generator) == 0 { text.removeLast(Int.random(in: 0...text.count, using: &generator)) }
            let bytes = Array(text.utf8)
            guard let fast = SimpleBodyParser.parse(bytes) else { continue }
            accepted += 1
            let slow = Self.decoded(bytes)
            #expect(slow != nil, "accepted what the full reader refuses: \(text)")
            if let slow { #expect(Self.same(fast, slow), "read differently: \(text)") }
        }
        #expect(accepted > 2_000, "the common bodies take the fast path")
    }

    @Test func theBenchmarksAndDocumentedBodiesTakeTheFastPath() throws {
        for text in ["", "  ", "{}", #"{"expires_in":30}"#, #"{"expires_in": 30, "secret": "s3cr3t"}"#, #"{"permits":8,"wait":2.5}"#] {
            let fast = try #require(SimpleBodyParser.parse(Array(text.utf8)), "\(text)")
            #expect(Self.same(fast, try #require(Self.decoded(Array(text.utf8)))))
        }
        for text in [#"{"data":{"a":1}}"#, #"{"secret":"a\u0041"}"#, #"{"expires_in":3e1}"#, #"{"wait":1,"wait":2}"#, "{", #"{"x":1}"#] {
            #expect(SimpleBodyParser.parse(Array(text.utf8)) == nil, "left to the decoder: \(text)")
        }
    }
}
