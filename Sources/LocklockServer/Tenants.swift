import Crypto
import Foundation
import RedisWire

/// A customer plan.
public enum Plan: String, Sendable, Codable {
    /// Public API, UUID locks.
    case developer
    /// Custom key names, data payloads, higher limits, subdomain, regions.
    case pro
}

/// One tenant of the tenants file.
public struct Tenant: Sendable, Codable, Hashable {
    /// The tenant's name: its namespace and its subdomain.
    public var name: String
    /// Its plan.
    public var plan: Plan
    /// Lowercase hex SHA-256 of its API key.
    public var keySHA256: String
    /// The master group it uses (`--region NAME=...`); the default group when nil.
    public var region: String?

    enum CodingKeys: String, CodingKey {
        case name, plan, region
        case keySHA256 = "key_sha256"
    }

    /// Creates a tenant.
    public init(name: String, plan: Plan, keySHA256: String, region: String? = nil) {
        self.name = name
        self.plan = plan
        self.keySHA256 = keySHA256.lowercased()
        self.region = region
    }
}

/// The tenants known to the server, from `--tenants FILE`. Keys are held only as hashes and
/// compared in constant time.
public struct TenantDirectory: Sendable {
    private let tenants: [Tenant]
    private let digests: [[UInt8]]

    /// Creates a directory.
    public init(_ tenants: [Tenant]) {
        self.tenants = tenants
        self.digests = tenants.map { Self.bytes(fromHex: $0.keySHA256) ?? [] }
    }

    /// Loads `{"tenants":[...]}`, refusing anything it would otherwise have to guess about:
    /// unknown fields, names that are not lower-case DNS labels (they become subdomains and
    /// key namespaces), and a name or key hash given twice.
    public init(contentsOf url: URL) throws {
        let data = try Data(contentsOf: url)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let entries = object["tenants"] as? [[String: Any]] else {
            throw TenantFileError(message: "the tenants file must be {\"tenants\":[...]}")
        }
        let unknownTop = Set(object.keys).subtracting(["tenants"])
        guard unknownTop.isEmpty else {
            throw TenantFileError(message: "unknown field \(unknownTop.sorted().joined(separator: ", ")) in the tenants file")
        }
        let known: Set<String> = ["name", "plan", "key_sha256", "region"]
        for (index, entry) in entries.enumerated() {
            let unknown = Set(entry.keys).subtracting(known)
            guard unknown.isEmpty else {
                throw TenantFileError(message: "tenant \(index + 1): unknown field \(unknown.sorted().joined(separator: ", "))")
            }
        }
        struct File: Decodable { var tenants: [Tenant] }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw TenantFileError(message: "the tenants file is malformed: \(error)")
        }
        var names = Set<String>()
        var hashes = Set<String>()
        for tenant in file.tenants {
            guard Self.isDNSLabel(tenant.name) else {
                throw TenantFileError(message: "tenant \(tenant.name): names are lower-case DNS labels (a-z, 0-9, '-', at most 63)")
            }
            if let region = tenant.region, !Self.isDNSLabel(region) {
                throw TenantFileError(message: "tenant \(tenant.name): region names are lower-case DNS labels")
            }
            guard Self.bytes(fromHex: tenant.keySHA256)?.count == 32 else {
                throw TenantFileError(message: "tenant \(tenant.name): key_sha256 must be 64 hex characters")
            }
            guard names.insert(tenant.name).inserted else { throw TenantFileError(message: "tenant \(tenant.name) is listed twice") }
            guard hashes.insert(tenant.keySHA256.lowercased()).inserted else {
                throw TenantFileError(message: "tenant \(tenant.name) has the same key as another tenant")
            }
        }
        self.init(file.tenants)
    }

    /// A lower-case DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'.
    static func isDNSLabel(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...63).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else { return false }
        return bytes.allSatisfy {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-")
        }
    }

    /// The tenant whose key is `key`, comparing against every tenant in constant time.
    public func authenticate(key: String) -> Tenant? {
        let digest = Array(SHA256.hash(data: Array(key.utf8)))
        var found: Int?
        for (index, candidate) in digests.enumerated() where candidate.count == digest.count {
            var difference: UInt8 = 0
            for byte in 0..<digest.count { difference |= candidate[byte] ^ digest[byte] }
            if difference == 0 { found = index }
        }
        return found.map { tenants[$0] }
    }

    /// Every region a tenant names.
    public var regions: Set<String> { Set(tenants.compactMap(\.region)) }

    /// Lowercase hex SHA-256 of `key`, as the tenants file stores it.
    public static func hash(key: String) -> String {
        SHA256.hash(data: Array(key.utf8)).hexString
    }

    static func bytes(fromHex hex: String) -> [UInt8]? {
        let characters = Array(hex.lowercased().utf8)
        guard characters.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: characters.count, by: 2) {
            guard let high = nibble(characters[index]), let low = nibble(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

/// A tenants file that cannot be used.
public struct TenantFileError: Error, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// A readable summary, for logs and messages.
    public var description: String { message }
}
