import LocalRedis
import LocklockServer
import RealServerGate
import Redlock
import Testing

@Suite("Start-up checks of the masters' eviction and persistence settings", .serialized, .realRedisServers)
struct MasterSettingsChecksTests {
    @Test func aMasterThatMayEvictKeysIsReportedByGroupAndPolicy() async throws {
        try await withRedisServers(count: 2) { safe throws in
            try await withRedisServers(count: 1, options: .init(extraArguments: ["--maxmemory-policy", "allkeys-lru"])) { evicting throws in
                let groups = MasterGroups(
                    primary: Redlock(masters: safe.addresses),
                    regions: ["eu": Redlock(masters: safe.addresses.prefix(1) + evicting.addresses)]
                )
                let warnings = await evictionWarnings(groups: groups)
                #expect(warnings.count == 1, "\(warnings)")
                #expect(warnings.first?.contains("eu") == true && warnings.first?.contains("allkeys-lru") == true, "\(warnings)")
                #expect(warnings.allSatisfy { !$0.contains("127.0.0.1") }, "no addresses in the message")
                for redlock in groups.all { await redlock.shutdown() }
            }
        }
    }

    @Test func mastersWithNoevictionGiveNoWarning() async throws {
        try await withRedisServers(count: 3) { masters throws in
            let groups = MasterGroups(primary: Redlock(masters: masters.addresses))
            #expect(await evictionWarnings(groups: groups).isEmpty)
            await groups.primary.shutdown()
        }
    }

    @Test func aGroupWithoutTheDelayedRejoinOverMastersThatDoNotFsyncEveryWriteIsReported() async throws {
        try await withRedisServers(count: 3) { plain throws in
            try await withRedisServers(count: 1, options: .init(persistence: .appendOnlyEverySecond)) { everySecond throws in
                let groups = MasterGroups(
                    primary: Redlock(masters: plain.addresses.prefix(2) + everySecond.addresses),
                    regions: ["eu": Redlock(masters: plain.addresses, configuration: .init(maximumTTL: .seconds(60)))]
                )
                let warnings = await persistenceWarnings(groups: groups)
                #expect(warnings.count == 1, "the group with the delayed rejoin is protected: \(warnings)")
                #expect(warnings.first?.hasPrefix("primary: 3 of 3 masters do not fsync every write") == true, "\(warnings)")
                for redlock in groups.all { await redlock.shutdown() }
            }
        }
    }

    @Test func mastersThatFsyncEveryWriteGiveNoPersistenceWarning() async throws {
        try await withRedisServers(count: 3, options: .init(persistence: .appendOnlyAlways)) { masters throws in
            let groups = MasterGroups(primary: Redlock(masters: masters.addresses))
            #expect(await persistenceWarnings(groups: groups).isEmpty)
            await groups.primary.shutdown()
        }
    }
}
