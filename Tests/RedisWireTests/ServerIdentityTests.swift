import Foundation
import Testing

@testable import RedisWire

@Suite struct ServerIdentityTests {
    let redis =
        "# Server\r\nredis_version:7.0.15\r\nrun_id:9f2c1a\r\ntcp_port:6379\r\nuptime_in_seconds:42\r\n"
        + "# Replication\r\nrole:master\r\nmaster_replid:8a1e\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n"

    @Test func readsTheRunIDVersionAndRoleFromCRLFSeparatedInfo() {
        #expect(ServerIdentity(info: redis) == ServerIdentity(runID: "9f2c1a", version: "7.0.15"))
    }

    @Test func infoWithoutARunIDOrVersionIdentifiesNothing() {
        #expect(ServerIdentity(info: "# Server\r\nredis_version:7.0.15\r\n") == nil)
        #expect(ServerIdentity(info: "run_id:abc\r\n") == nil)
        #expect(ServerIdentity(info: "") == nil)
    }

    @Test func aPromotedReplicaIsToldFromARestartedMaster() {
        let promoted = redis.replacingOccurrences(of: "master_replid2:0000000000000000000000000000000000000000", with: "master_replid2:77c1")
        #expect(ServerIdentity(info: promoted)?.promotedFromReplica == true)
        #expect(ServerIdentity(info: redis)?.promotedFromReplica == false)
    }

    @Test func valkeyIsNamedByItsOwnVersion() {
        let valkey = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\nrun_id:ab\r\n"
        let identity = ServerIdentity(info: valkey)
        #expect(identity?.product == "valkey")
        #expect(identity?.version == "8.0.1")
        #expect(identity?.unsupportedReason == nil)
    }

    @Test(arguments: [
        ("redis", "6.0.16", "Redis 6.0.16 is not supported: Locklock needs Redis 6.2 or later, or Valkey 7.2 or later"),
        ("redis", "5.0.7", "Redis 5.0.7 is not supported: Locklock needs Redis 6.2 or later, or Valkey 7.2 or later"),
        ("redis", "6.2.0", nil),
        ("redis", "6.2", nil),
        ("redis", "7.0.15", nil),
        ("redis", "10.0.0", nil),
        ("valkey", "7.2.5", nil),
    ])
    func versionsOlderThanTheOldestSupportedAreRefusedByName(product: String, version: String, reason: String?) {
        #expect(ServerIdentity(runID: "r", product: product, version: version).unsupportedReason == reason)
    }

    @Test func aReplicaIsNotAMaster() {
        let replica = ServerIdentity(runID: "r", version: "7.0.15", role: "slave")
        #expect(replica.unsupportedReason == "the server is a replica, not a master: name the master, or promote it")
    }
}
