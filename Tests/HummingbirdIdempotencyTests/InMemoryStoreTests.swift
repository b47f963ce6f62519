import Foundation
import HummingbirdIdempotency
import Testing

@Suite struct InMemoryStoreTests {
    func response(_ size: Int) -> StoredResponse {
        StoredResponse(status: 201, headers: [], body: Data(repeating: 0x61, count: size), requestFingerprint: "f")
    }

    @Test func theStoreKeepsAtMostItsMaximumEntriesDroppingTheOldest() async {
        let store = InMemoryIdempotencyStore(maximumEntries: 2, maximumBytes: 1 << 20)
        for key in ["a", "b", "c"] { await store.save(response(10), for: key, retention: .seconds(60)) }
        #expect(await store.response(for: "a") == nil, "the oldest went first")
        #expect(await store.response(for: "b") != nil)
        #expect(await store.response(for: "c") != nil)
    }

    @Test func theStoreKeepsAtMostItsMaximumBytes() async {
        let store = InMemoryIdempotencyStore(maximumEntries: 100, maximumBytes: 250)
        for key in ["a", "b", "c"] { await store.save(response(100), for: key, retention: .seconds(60)) }
        #expect(await store.response(for: "a") == nil)
        #expect(await store.response(for: "c") != nil)
        #expect(await store.storedBytes <= 250)
    }
}
