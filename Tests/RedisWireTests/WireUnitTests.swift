import RedisWire
import Testing

@Suite struct WireUnitTests {
    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
    ])
    func scriptNamesAreTheSHA1RedisUses(source: String, expected: String) {
        #expect(RedisScript(source).sha1 == expected)
    }

    @Test(arguments: [
        ("127.0.0.1:6380", "127.0.0.1:6380"),
        ("localhost", "localhost:6379"),
        ("[::1]:7000", "[::1]:7000"),
        (" redis.internal:6379 ", "redis.internal:6379"),
        ("unix:/tmp/redis.sock", "unix:/tmp/redis.sock"),
    ])
    func parsesServerAddresses(text: String, expected: String) {
        #expect(RedisServerAddress(parsing: text)?.description == expected)
    }

    @Test(arguments: ["", ":6379", "host:0", "host:70000", "host:port", "a:b:c", "[::1", "unix:"])
    func rejectsBadServerAddresses(text: String) {
        #expect(RedisServerAddress(parsing: text) == nil)
    }
}

@Suite struct MasterListTests {
    @Test func parsesACommaSeparatedList() throws {
        let masters = try RedisServerAddress.list(parsing: "127.0.0.1:7001, 127.0.0.1:7002,unix:/tmp/r.sock")
        #expect(masters.map(\.description) == ["127.0.0.1:7001", "127.0.0.1:7002", "unix:/tmp/r.sock"])
    }

    @Test(arguments: [
        ("", "no master given"),
        ("127.0.0.1:7001,,127.0.0.1:7002", "bad master address ''"),
        ("127.0.0.1:7001,host:port", "bad master address 'host:port'"),
        ("127.0.0.1:7001,127.0.0.1:7001", "master 127.0.0.1:7001 is listed twice"),
        ("localhost,localhost:6379", "master localhost:6379 is listed twice"),
    ])
    func refusesAListThatIsNotOneOfDistinctMasters(text: String, message: String) {
        #expect(throws: RedisServerAddress.ListError.self) { try RedisServerAddress.list(parsing: text) }
        do {
            _ = try RedisServerAddress.list(parsing: text)
        } catch {
            #expect(error.description == message)
        }
    }
}
