import InMemoryTracing
import RedlockTestSupport
import Testing
import Tracing

/// The only test of this target that bootstraps the process's tracer.
@Suite("Trace context over HTTP")
struct TraceContextTests {
    @Test func aRequestsTraceContextIsTheParentOfItsLockSpans() async throws {
        let tracer = InMemoryTracer()
        InstrumentationSystem.bootstrap(tracer)
        try await withLiveServer { server throws in
            // The in-memory tracer's own propagation headers stand in for W3C `traceparent`,
            // which an OpenTelemetry tracer reads the same way.
            let response = try await server.request(
                "POST",
                "/v1/api/lock/uuid/0b7e9a52-4c1d-4f7e-9a3b-1c2d3e4f5a6b",
                headers: [InMemoryTracer.traceIDKey: "trace-from-the-caller", InMemoryTracer.spanIDKey: "caller-span"]
            )
            #expect(response.status == 201)
        }
        // Other tests of this process record spans too once the tracer is bootstrapped.
        let acquire = try #require(
            tracer.finishedSpans.first { $0.operationName == "redlock.acquire" && $0.traceID == "trace-from-the-caller" },
            "the lock span joined the caller's trace"
        )
        let request = try #require(tracer.finishedSpans.first { $0.spanID == acquire.parentSpanID })
        #expect(request.parentSpanID == "caller-span", "through the request's own span")
    }
}
