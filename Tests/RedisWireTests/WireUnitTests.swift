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
        let masters = try RedisEndpoint.list(parsing: "127.0.0.1:7001, redis://127.0.0.1:7002/1,rediss://cache.example.com,unix:///tmp/r.sock")
        #expect(
            masters.map(\.description) == ["127.0.0.1:7001", "redis://127.0.0.1:7002/1", "rediss://cache.example.com:6379", "unix:///tmp/r.sock"]
        )
    }

    @Test(arguments: [
        ("", "no master given"),
        ("127.0.0.1:7001,,127.0.0.1:7002", "master 2 of the list is not host:port, redis://, rediss:// or unix:// (see --help)"),
        ("127.0.0.1:7001,redis://u:hunter2@host:port", "master 2 of the list is not host:port, redis://, rediss:// or unix:// (see --help)"),
        ("127.0.0.1:7001,127.0.0.1:7001", "master 127.0.0.1:7001 is listed twice"),
        ("localhost,localhost:6379", "master localhost:6379 is listed twice"),
        ("redis://h:7001/0,rediss://h:7001/1", "master h:7001 is listed twice"),
    ])
    func refusesAListThatIsNotOneOfDistinctMasters(text: String, message: String) {
        #expect(throws: RedisEndpoint.ListError.self) { try RedisEndpoint.list(parsing: text) }
        do {
            _ = try RedisEndpoint.list(parsing: text)
        } catch {
            #expect(error.description == message)
            #expect(!error.description.contains("hunter2"), "a refused entry is not echoed: it may hold a password")
        }
    }
}

@Suite struct EndpointURLTests {
    @Test func aURLCarriesTLSUserPasswordAndDatabase() throws {
        let endpoint = try #require(RedisEndpoint(parsing: "rediss://locker:p%40ss%3Aword@redis.example.com:6380/3"))
        #expect(endpoint.address == .hostname("redis.example.com", port: 6380))
        #expect(endpoint.usesTLS == true)
        #expect(endpoint.username == "locker")
        #expect(endpoint.password == "p@ss:word", "percent escapes are decoded")
        #expect(endpoint.database == 3)
        #expect(endpoint.description == "rediss://locker:***@redis.example.com:6380/3", "the password never shows")
        let configuration = endpoint.configuration(from: .init())
        #expect(configuration.tls != nil)
        #expect(configuration.authentication?.username == "locker" && configuration.authentication?.password == "p@ss:word")
        #expect(configuration.database == 3)
    }

    @Test(arguments: [
        ("redis://127.0.0.1", RedisServerAddress.hostname("127.0.0.1", port: 6379), false),
        ("redis://:secret@[::1]:7000", .hostname("::1", port: 7000), false),
        ("REDISS://host:1/", .hostname("host", port: 1), true),
        ("unix:///var/run/redis.sock?db=2", .unixDomainSocket(path: "/var/run/redis.sock"), false),
    ])
    func parsesEveryForm(text: String, address: RedisServerAddress, tls: Bool) throws {
        let endpoint = try #require(RedisEndpoint(parsing: text))
        #expect(endpoint.address == address)
        #expect(endpoint.usesTLS == tls)
    }

    @Test(arguments: [
        "http://host:6379", "redis://", "redis://host:0", "redis://host/x", "redis://host/-1", "redis://user@", "redis://u:%zz@host",
        "unix://relative.sock", "unix:///s?db=x", "rediss://unix:/tmp/s",
    ])
    func refusesMalformedURLs(text: String) {
        #expect(RedisEndpoint(parsing: text) == nil)
    }

    @Test func aShortFormFollowsTheConfigurationAndRedisURLsTurnTLSOff() {
        let tls = RedisConnectionConfiguration(tls: .init())
        #expect(RedisEndpoint(parsing: "host:6380")!.configuration(from: tls).tls != nil)
        #expect(RedisEndpoint(parsing: "redis://host:6380")!.configuration(from: tls).tls == nil)
        #expect(RedisEndpoint(parsing: "rediss://host:6380")!.configuration(from: .init()).tls != nil)
    }
}
