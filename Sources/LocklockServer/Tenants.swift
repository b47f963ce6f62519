import Crypto
import Foundation

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

    /// Loads `{"tenants":[...]}`.
    public init(contentsOf url: URL) throws {
        struct File: Decodable { var tenants: [Tenant] }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        for tenant in file.tenants where Self.bytes(fromHex: tenant.keySHA256)?.count != 32 {
            throw TenantFileError(message: "tenant \(tenant.name): key_sha256 must be 64 hex characters")
        }
        self.init(file.tenants)
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
        SHA256.hash(data: Array(key.utf8)).map { String(format: "%02x", $0) }.joined()
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
    public var description: String { message }
}
