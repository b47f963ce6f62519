import Hummingbird
import Redlock

/// The JSON body of a POST, PATCH or DELETE on a lock. Reading checks types (400), and refuses
/// `data` from a caller whose plan has none (403) before reading it; `validate` checks the
/// ranges that depend on the caller (422).
struct LockRequestBody: Sendable {
    /// The shortest `expires_in` the adapter can honour, in seconds: below it the drift
    /// allowance and a few round trips leave no validity to hand out.
    static let minimumExpiresIn = 0.1
    /// The largest Pro `data` payload, as compact JSON.
    static let dataLimit = 16 * 1024

    /// The holder's secret (the `Lock-Secret` header is the other way to send it).
    var secret: String?
    /// The requested TTL in seconds.
    var expiresIn: Double?
    /// The Pro data payload stored with the lock.
    var data: JSONValue?
    /// How long a POST may wait for a held lock, in seconds.
    var wait: Double?
    /// How long, in seconds, the lock stays unusable after its expiry when its holder neither
    /// releases nor extends it (on POST and PATCH).
    var lockDelay: Double?
    /// How many holders a semaphore admits (a semaphore's POST only).
    var permits: Int?

    enum CodingKeys: String, CodingKey {
        case secret
        case expiresIn = "expires_in"
        case data
        case wait
        case lockDelay = "lock_delay"
        case permits
    }

    init() {}

    /// Reads a body (blank reads as `{}`). Without `allowsData`, a `data` member other than
    /// `null` is refused with 403 having only been scanned: a caller without the plan cannot
    /// make the server build it. Unknown members are ignored.
    init(parsing bytes: [UInt8], allowsData: Bool) throws(Problem) {
        if bytes.allSatisfy({ [0x20, 0x0A, 0x0D, 0x09].contains($0) }) { return }
        let object: JSONParser.Object
        switch JSONParser.object(bytes, skipping: allowsData ? [] : [CodingKeys.data.stringValue]) {
        case .failure(.malformed): throw .badRequest("malformed JSON")
        case .failure(.tooDeep): throw .badRequest("JSON nested deeper than \(LockRequestDecoder.maximumDepth) levels")
        case .failure(.duplicateMember(let name)): throw .badRequest("a member is named twice: \(Self.printable(name))")
        case .success(nil): throw .badRequest("the body must be a JSON object")
        case .success(let parsed?): object = parsed
        }
        if object.skipped.contains(CodingKeys.data.stringValue) { throw .forbidden("data payloads need a Pro plan") }
        func number(_ key: CodingKeys) throws(Problem) -> Double? {
            switch object.members[key.stringValue] {
            case nil, .null?: return nil
            case .integer(let value)?: return Double(value)
            case .number(let value)?: return value
            default: throw .badRequest("\(key.stringValue) must be a number")
            }
        }
        switch object.members[CodingKeys.secret.stringValue] {
        case nil, .null?: break
        case .string(let value)?: secret = value
        default: throw .badRequest("secret must be a string")
        }
        expiresIn = try number(.expiresIn)
        wait = try number(.wait)
        lockDelay = try number(.lockDelay)
        switch object.members[CodingKeys.permits.stringValue] {
        case nil, .null?: break
        case .integer(let value)?: permits = Int(clamping: value)
        // A whole number written as one (`-0`, `8.0`, `1e2`).
        case .number(let value)? where value.rounded(.towardZero) == value && abs(value) < 9e15: permits = Int(value)
        default: throw .badRequest("permits must be a whole number")
        }
        // `"data": null` is the same as no data.
        data = object.members[CodingKeys.data.stringValue].flatMap { $0 == .null ? nil : $0 }
    }

    /// A member's name as a problem may quote it: printable ASCII, at most 40 characters.
    private static func printable(_ name: String) -> String {
        String(name.unicodeScalars.prefix(40).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
    }

    /// `permits` is required on a semaphore's POST (1 to ``Semaphore/maximumPermits``) and
    /// refused anywhere else.
    func validate(permitsExpected: Bool) throws {
        guard permitsExpected else {
            if permits != nil { throw Problem.unprocessable("permits applies to a semaphore's POST only") }
            return
        }
        guard let permits, (1...Semaphore.maximumPermits).contains(permits) else {
            throw Problem.unprocessable("permits must be between 1 and \(Semaphore.maximumPermits)")
        }
    }

    /// A secret, from the body or the `Lock-Secret` header, is 1 to 256 bytes of UTF-8.
    static func validate(secret: String) throws {
        guard (1...256).contains(secret.utf8.count) else { throw Problem.unprocessable("secret must be 1 to 256 bytes") }
    }

    /// A wait, in a body or a watch's query, is 0 to the server's maximum seconds.
    static func validate(wait: Double, maximumWait: Double) throws {
        guard (0...maximumWait).contains(wait) else { throw Problem.unprocessable("wait must be between 0 and \(maximumWait) seconds") }
    }

    /// The lock delay as a duration (zero when absent).
    var lockDelayDuration: Duration { .milliseconds(Int64((lockDelay ?? 0) * 1000)) }

    /// Checks the body against the caller's limits; returns `data` in its stored encoding.
    func validate(maximumExpiresIn: Double, maximumWait: Double, allowData: Bool) throws -> [UInt8]? {
        if let secret { try Self.validate(secret: secret) }
        if let expiresIn, !(Self.minimumExpiresIn...maximumExpiresIn).contains(expiresIn) {
            throw Problem.unprocessable("expires_in must be between \(Self.minimumExpiresIn) and \(Int(maximumExpiresIn)) seconds")
        }
        if let wait { try Self.validate(wait: wait, maximumWait: maximumWait) }
        if let lockDelay, !(0...maximumExpiresIn).contains(lockDelay) {
            throw Problem.unprocessable("lock_delay must be between 0 and \(Int(maximumExpiresIn)) seconds")
        }
        guard let data else { return nil }
        guard allowData else { throw Problem.forbidden("data payloads need a Pro plan") }
        let encoded = data.compact
        guard encoded.count <= Self.dataLimit else { throw Problem.unprocessable("data must be at most 16 KiB of JSON") }
        return encoded
    }
}
