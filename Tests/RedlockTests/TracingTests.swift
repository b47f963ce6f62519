import InMemoryTracing
import LocalRedis
import RealServerGate
import Redlock
import Testing
import Tracing

/// Lock operations' spans, recorded by an in-memory tracer, against 5 real masters.
@Suite("Tracing", .realRedisServers)
struct TracingTests {
    @Test func everyOperationIsASpanWithItsOutcomeAndEachMastersVoteButNoValue() async throws {
        let tracer = InMemoryTracer()
        var configuration = RedlockConfiguration(retry: .never)
        configuration.tracer = tracer
        try await withRedlock(configuration: configuration) { redlock, _ in
            let value = Array("secret-lock-value".utf8)
            let lock = try await redlock.acquire("traced", ttl: .seconds(10), value: value)
            _ = try await redlock.extend(lock, ttl: .seconds(10))
            _ = try await redlock.inspect("traced")
            await #expect(throws: RedlockError.self) { try await redlock.acquire("traced", ttl: .seconds(10)) }
            try await redlock.release(lock)

            let spans = tracer.finishedSpans
            #expect(spans.map(\.operationName) == ["redlock.acquire", "redlock.extend", "redlock.inspect", "redlock.acquire", "redlock.release"])
            #expect(spans.allSatisfy { $0.attributes["redlock.resource"]?.toSpanAttribute() == "traced" })
            #expect(spans.map { $0.attributes["redlock.outcome"]?.toSpanAttribute() } == ["granted", "extended", "held", "lockHeld", "released"])
            let granted = spans[0]
            #expect(granted.attributes["redlock.attempts"]?.toSpanAttribute() == 1)
            #expect(granted.events.filter { $0.name == "redlock.vote" }.count == 5, "one event per master")
            #expect(granted.events.contains { $0.attributes["redlock.vote"]?.toSpanAttribute() == "granted" })
            let refused = spans[3]
            #expect(refused.status?.code == .error)
            #expect(refused.events.contains { $0.attributes["redlock.vote"]?.toSpanAttribute() == "heldByAnother" })
            let everything = spans.map { "\($0.attributes) \($0.events)" }.joined()
            #expect(!everything.contains("secret-lock-value"), "a lock value never reaches a span")
        }
    }
}
