import Testing

@testable import RedisWire

@Suite struct ServerIdentityTests {
    @Test func readsTheRunIDAndUptimeFromCRLFSeparatedInfo() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:9f2c1a\r\ntcp_port:6379\r\nuptime_in_seconds:42\r\nuptime_in_days:0\r\n"
        #expect(ServerIdentity(info: info) == ServerIdentity(runID: "9f2c1a", uptimeSeconds: 42))
    }

    @Test func infoWithoutARunIDIdentifiesNothing() {
        #expect(ServerIdentity(info: "# Server\r\nuptime_in_seconds:42\r\n") == nil)
        #expect(ServerIdentity(info: "run_id:abc\r\n") == nil)
        #expect(ServerIdentity(info: "") == nil)
    }
}
