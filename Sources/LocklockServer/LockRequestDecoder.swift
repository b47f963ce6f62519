import Foundation
import Hummingbird
import NIOCore

/// Reads request bodies with the adapter's limits: at most 64 KiB (413, and the connection is
/// closed), declared `application/json` unless empty (415), at most 32 levels of nesting, an
/// empty body read as `{}`, and every failure a problem that names the field. A lock's body
/// goes through ``lockBody(of:allowsData:)``, which never throws its way through a decoder;
/// `request.decode(as:context:)` serves any other type.
public struct LockRequestDecoder: RequestDecoder {
    /// The largest body read, in bytes.
    static let bodyLimit = 64 * 1024
    /// The deepest nesting of objects and arrays accepted.
    static let maximumDepth = 32

    /// Decodes `type` from the body of `request`.
    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let bytes = try await Self.bytes(of: request)
        try Self.checkDepth(bytes)
        do {
            return try JSONDecoder().decode(T.self, from: bytes.isEmpty ? Data("{}".utf8) : Data(bytes))
        } catch let error as DecodingError {
            throw Self.problem(for: error)
        }
    }

    /// A lock's body. Without `allowsData` (a caller whose plan has no payloads), a `data`
    /// member is refused before it is built.
    // Not inlined: inlined into the controller's handler, it crashes the Swift 6.3 release
    // compiler (signal 11 while splitting the handler's coroutine).
    @inline(never)
    static func lockBody(of request: Request, allowsData: Bool) async throws -> LockRequestBody {
        let bytes = try await bytes(of: request)
        if let body = SimpleBodyParser.parse(bytes) { return body }
        return try LockRequestBody(parsing: bytes, allowsData: allowsData)
    }

    /// The body's bytes (none when it is only whitespace), within the size limit and declared JSON.
    private static func bytes(of request: Request) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > Self.bodyLimit { throw Problem.tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.bodyLimit)
        } catch {
            throw Problem.tooLarge
        }
        let bytes = Array(buffer.readableBytesView)
        if bytes.allSatisfy({ [0x20, 0x0A, 0x0D, 0x09].contains($0) }) { return [] }
        // A cross-site form can POST text/plain or form data without a preflight; only a
        // script allowed by CORS can declare JSON.
        guard Self.declaresJSON(request.headers[.contentType]) else { throw Problem.unsupportedMediaType }
        return bytes
    }

    /// Whether `contentType` is `application/json`, parameters (a charset) aside.
    static func declaresJSON(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return mediaType.lowercased() == "application/json"
    }

    /// Refuses deep nesting before the decoder recurses into it.
    static func checkDepth(_ bytes: some Sequence<UInt8>) throws {
        var depth = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > maximumDepth { throw Problem.badRequest("JSON nested deeper than \(maximumDepth) levels") }
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            default: break
            }
        }
    }

    /// A 400 that says which field was wrong, never echoing its value.
    static func problem(for error: DecodingError) -> Problem {
        let path: [any CodingKey]
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context): path = context.codingPath
        case .keyNotFound(_, let context): path = context.codingPath
        @unknown default: return .badRequest("malformed JSON")
        }
        guard let field = path.first?.stringValue else {
            if case .typeMismatch = error { return .badRequest("the body must be a JSON object") }
            return .badRequest("malformed JSON")
        }
        switch field {
        case LockRequestBody.CodingKeys.secret.stringValue: return .badRequest("secret must be a string")
        case LockRequestBody.CodingKeys.data.stringValue: return .badRequest("data is not valid JSON")
        default: return .badRequest("\(field) must be a number")
        }
    }
}
