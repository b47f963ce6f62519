import Foundation
import Testing

@testable import LocklockServer

/// The adapter's own JSON reader: RFC 8259, no throwing per value, a hostile body costs one
/// pass; and the compact form it reads back.
@Suite("JSON reader")
struct JSONParserTests {
    @Test(arguments: [
        ("null", JSONValue.null), ("true", .bool(true)), (" false ", .bool(false)), ("0", .integer(0)), ("-12", .integer(-12)),
        ("9223372036854775807", .integer(.max)), ("9223372036854775808", .number(9_223_372_036_854_775_808)), ("1.5", .number(1.5)),
        ("-0.25e2", .number(-25)), ("1E3", .number(1000)), (#""a\"b\\c\/d\n""#, .string("a\"b\\c/d\n")), (#""\u00e9\ud83d\ude00""#, .string("é😀")),
        ("\"鍵\"", .string("鍵")), ("[]", .array([])), ("[1,[2]]", .array([.integer(1), .array([.integer(2)])])), ("{}", .object([:])),
        (#"{"a":{"b":null}}"#, .object(["a": .object(["b": .null])])),
    ])
    func readsWhatJSONSays(text: String, value: JSONValue) throws {
        #expect(try JSONParser.value(Array(text.utf8)).get() == value, "\(text)")
    }

    @Test(arguments: [
        "", "nul", "tru", "01", "1.", ".5", "-", "1e", "+1", "1e400", "\"a", "\"\u{1}\"", #""\x""#, #""\ud83d""#, #""\ude00""#, "[1,]", "[1 2]",
        "{\"a\"}", "{\"a\":1,}", "{a:1}", "[1]x", "NaN", "'a'",
    ])
    func refusesWhatIsNotJSON(text: String) {
        #expect(throws: JSONParser.Failure.malformed) { try JSONParser.value(Array(text.utf8)).get() }
    }

    @Test func refusesInvalidUTF8AndDuplicateMembersAndDeepNesting() {
        #expect(throws: JSONParser.Failure.malformed) { try JSONParser.value([0x22, 0xFF, 0x22]).get() }
        #expect(throws: JSONParser.Failure.duplicateMember("a")) { try JSONParser.value(Array(#"{"a":1,"a":2}"#.utf8)).get() }
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(throws: JSONParser.Failure.tooDeep) { try JSONParser.value(Array(deep.utf8)).get() }
        let atTheLimit = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        #expect((try? JSONParser.value(Array(atTheLimit.utf8)).get()) != nil)
    }

    @Test func agreesWithJSONSerializationOnRandomDocuments() throws {
        var generator = SystemRandomNumberGenerator()
        func random(depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 3 ? 5 : 7), using: &generator) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &generator))
            case 2: return .integer(Int64.random(in: -1_000_000...1_000_000, using: &generator))
            case 3: return .number(Double.random(in: -1e6...1e6, using: &generator))
            case 4:
                return .string(
                    String((0..<Int.random(in: 0...6, using: &generator)).map { _ in "aé\"\\\n\t\u{1}鍵😀/".randomElement(using: &generator)! })
                )
            case 5: return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in random(depth: depth + 1) })
            default:
                var object: [String: JSONValue] = [:]
                for index in 0..<Int.random(in: 0...4, using: &generator) { object["k\(index)\"é"] = random(depth: depth + 1) }
                return .object(object)
            }
        }
        for _ in 0..<500 {
            let value = random(depth: 0)
            let text = value.compact
            #expect(try JSONParser.value(text).get() == value, "round trip: \(String(decoding: text, as: UTF8.self))")
            // Foundation reads the compact form too (a throw fails the test).
            _ = try JSONSerialization.jsonObject(with: Data(text), options: [.fragmentsAllowed])
        }
    }

    @Test func aSkippedMemberIsCheckedButNotBuilt() throws {
        let body = Array(#"{"expires_in":30,"data":[{},{},{"a":[1,2]}]}"#.utf8)
        let skipped = try #require(try JSONParser.object(body, skipping: ["data"]).get())
        #expect(skipped.members.keys.sorted() == ["expires_in"])
        #expect(skipped.skipped == ["data"])
        #expect(try JSONParser.object(Array(#"{"data":null}"#.utf8), skipping: ["data"]).get()?.skipped == [], "null is no payload")
        #expect(throws: JSONParser.Failure.malformed) { try JSONParser.object(Array(#"{"data":[1,}"#.utf8), skipping: ["data"]).get() }
    }
}
