import Foundation
import Hummingbird
import NIOCore
import ProblemDetails
import Testing

@testable import LocklockServer

/// The lock responses' and problems' bodies are written by hand; these check them byte for
/// byte against the `JSONEncoder` settings the API's contract was written with.
@Suite("Response bodies")
struct ResponseBodyTests {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static let names = [
        "uuid/0b7e9a52-4c1d-4f7e-9a3b-1c2d3e4f5a6b", "key/orders:42", "key/a.b~c_d-e/7", "quote\"back\\slash/slash",
        "controls \u{0}\u{1}\u{8}\u{9}\u{A}\u{B}\u{C}\u{D}\u{1F} end", "non-ASCII é 鍵 🔒", "",
    ]

    @Test func lockResponsesAreWhatTheEncoderWrites() throws {
        var generator = SystemRandomNumberGenerator()
        let data: [JSONValue?] = [nil, .object(["b": .integer(1), "a": .array([.string("x/y"), .number(0.5), .null, .bool(true)])])]
        for round in 0..<2_000 {
            let seconds = Double.random(in: 0...(10 * 365 * 86_400), using: &generator)
            let expiresIn = [0, 0.01, 0.1, 29.99, 30, 1e7, (seconds * 100).rounded() / 100][round % 7]
            let response = LockResponse(
                status: .created,
                lock: Self.names[round % Self.names.count],
                expiresIn: expiresIn,
                expiresAt: "2026-12-04T05:17:15.123Z",
                hasSecret: round % 3 == 0,
                fencingToken: round % 5 == 0 ? nil : Int64.random(in: 1...Int64.max, using: &generator),
                data: data[round % 2],
                permit: round % 4 == 0 ? Int.random(in: 0..<1000, using: &generator) : nil
            )
            let written = Array(buffer: try response.body())
            let encoded = Array(try Self.encoder.encode(response))
            #expect(written == encoded, "\(String(decoding: written, as: UTF8.self)) != \(String(decoding: encoded, as: UTF8.self))")
        }
    }

    /// RFC 9457's members, as the encoder writes a problem.
    struct EncodedProblem: Encodable {
        var type: String
        var title: String
        var status: Int
        var detail: String
    }

    @Test func problemBodiesAreWhatTheEncoderWrites() throws {
        for (index, text) in Self.names.enumerated() {
            let status: HTTPResponse.Status = [.badRequest, .conflict, .tooManyRequests, .serviceUnavailable][index % 4]
            let problem = ProblemDetails(
                type: "https://locklock.dev/problems/" + text,
                title: index % 2 == 0 ? nil : text,
                status: status,
                detail: text
            )
            let encoded = try Self.encoder.encode(EncodedProblem(type: problem.type, title: problem.title, status: status.code, detail: text))
            let written = Array(buffer: problem.body())
            #expect(written == Array(encoded), "\(String(decoding: written, as: UTF8.self))")
            #expect(problem.response().headers[.contentType] == "application/problem+json")
        }
    }

    @Test func releaseResponsesAreWhatTheEncoderWrites() throws {
        for name in Self.names {
            let response = ReleaseResponse(lock: name)
            #expect(Array(buffer: response.body()) == Array(try Self.encoder.encode(response)))
        }
    }
}
