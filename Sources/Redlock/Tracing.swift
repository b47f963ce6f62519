import RedisWire
import Tracing

/// Spans of lock operations (swift-distributed-tracing): `redlock.acquire`, `redlock.extend`,
/// `redlock.release`, `redlock.inspect`, each with the resource, the outcome and, for an
/// acquisition, the attempt count and one `redlock.vote` event per master. Never a lock value
/// or a secret. Nothing is built when no tracer records (the default no-op tracer).
extension Redlock {
    /// Runs `body` as operation `name` on `resources`, in a span when a tracer records.
    func traced<T>(
        _ name: String,
        _ resources: [String],
        _ body: () async throws(RedlockError) -> T
    ) async throws(RedlockError) -> T {
        let tracer = configuration.tracer ?? InstrumentationSystem.tracer
        let span = tracer.startSpan("redlock." + name, ofKind: .client)
        guard span.isRecording else {
            span.end()
            return try await body()
        }
        span.attributes["redlock.resource"] = resources.joined(separator: ",")
        span.attributes["redlock.masters"] = masters.count
        defer { span.end() }
        do {
            let result = try await body()
            (result as? any TracedResult)?.record(on: span, operation: name, masters: masters)
            return result
        } catch {
            span.attributes["redlock.outcome"] = error.code.description
            recordVotes(error.votes, of: masters, on: span)
            span.setStatus(SpanStatus(code: .error, message: error.code.description))
            throw error
        }
    }

}

/// One `redlock.vote` event per master: the master and how it voted.
func recordVotes(_ votes: [RedlockError.Vote], of masters: [RedisServerAddress], on span: any Span) {
    for (master, vote) in zip(masters, votes) {
        span.addEvent(SpanEvent(name: "redlock.vote", attributes: ["redlock.master": "\(master)", "redlock.vote": "\(vote)"]))
    }
}

/// What a successful operation adds to its span.
protocol TracedResult {
    func record(on span: any Span, operation: String, masters: [RedisServerAddress])
}

extension Lock: TracedResult {
    func record(on span: any Span, operation: String, masters: [RedisServerAddress]) {
        guard operation == "acquire" else {
            span.attributes["redlock.outcome"] = "extended"
            return
        }
        span.attributes["redlock.outcome"] = "granted"
        span.attributes["redlock.attempts"] = attempts
        recordVotes(votes, of: masters, on: span)
    }
}

extension LockState: TracedResult {
    func record(on span: any Span, operation: String, masters: [RedisServerAddress]) {
        span.attributes["redlock.outcome"] = isHeld ? "held" : "free"
    }
}

extension ReleaseOutcome: TracedResult {
    func record(on span: any Span, operation: String, masters: [RedisServerAddress]) {
        span.attributes["redlock.outcome"] = "\(self)"
    }
}
