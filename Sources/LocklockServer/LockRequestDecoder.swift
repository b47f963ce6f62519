import Foundation
import Hummingbird
import NIOCore

/// Decodes lock request bodies for `request.decode(as:context:)`, with the adapter's limits:
/// at most 64 KiB (413, and the connection is closed), declared `application/json` unless
/// empty (415), at most 32 levels of nesting, an empty body read as `{}`, and every failure a
/// problem that names the field.
public struct LockRequestDecoder: RequestDecoder {
    /// The largest body read, in bytes.
    static let bodyLimit = 64 * 1024
    /// The deepest nesting of objects and arrays accepted.
    static let maximumDepth = 32

    /// Decodes `type` from the body of `request`.
    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > Self.bodyLimit { throw Problem.tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: Self.bodyLimit)
        } catch {
            throw Problem.tooLarge
        }
        let bytes = buffer.readableBytesView
        let blank = bytes.allSatisfy { [0x20, 0x0A, 0x0D, 0x09].contains($0) }
        // A cross-site form can POST text/plain or form data without a preflight; only a
        // script allowed by CORS can declare JSON.
        if !blank, !Self.declaresJSON(request.headers[.contentType]) { throw Problem.unsupportedMediaType }
        if T.self == LockRequestBody.self, let body = SimpleBodyParser.parse(Array(bytes)) as? T { return body }
        try Self.checkDepth(bytes)
        do {
            return try JSONDecoder().decode(T.self, from: blank ? Data("{}".utf8) : Data(bytes))
        } catch let error as DecodingError {
            throw Self.problem(for: error)
        }
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
