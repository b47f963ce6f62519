import Foundation
import LocklockServer
import Testing

@Suite("The tenants file is checked at start")
struct TenantsFileTests {
    static let keyA = String(repeating: "a", count: 64)
    static let keyB = String(repeating: "b", count: 64)

    static func load(_ json: String) throws -> TenantDirectory {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("locklock-tenants-\(UUID().uuidString).json")
        try json.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        return try TenantDirectory(contentsOf: file)
    }

    @Test(arguments: [
        (#"{"tenants":[{"name":"ac:me","plan":"pro","key_sha256":"\#(keyA)"}]}"#, "lower-case DNS labels"),
        (#"{"tenants":[{"name":"Acme","plan":"pro","key_sha256":"\#(keyA)"}]}"#, "lower-case DNS labels"),
        (
            #"{"tenants":[{"name":"acme","plan":"pro","key_sha256":"\#(keyA)"},{"name":"acme","plan":"developer","key_sha256":"\#(keyB)"}]}"#,
            "listed twice"
        ),
        (#"{"tenants":[{"name":"acme","plan":"pro","key_sha256":"\#(keyA)"},{"name":"globex","plan":"pro","key_sha256":"\#(keyA)"}]}"#, "same key"),
        (#"{"tenants":[{"name":"acme","plan":"pro","key_sha256":"\#(keyA)","regoin":"eu"}]}"#, "unknown field regoin"),
        (#"{"tenants":[],"extra":1}"#, "unknown field extra"),
        (#"{"tenants":[{"name":"acme","plan":"pro","key_sha256":"abc"}]}"#, "64 hex characters"),
    ])
    func aFileThatWouldNeedGuessingIsRefused(json: String, message: String) {
        #expect {
            _ = try Self.load(json)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func aValidFileLoads() throws {
        let directory = try Self.load(#"{"tenants":[{"name":"acme-eu","plan":"pro","key_sha256":"\#(Self.keyA)","region":"eu"}]}"#)
        #expect(directory.regions == ["eu"])
    }
}
