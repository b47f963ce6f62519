/// Decides whether the server behind a connection may be used, every time the connection is
/// made anew: Redlock's hold-out of masters that may have lost acknowledged writes.
///
/// With a gate, a connection reads `INFO` after every (re)connect; with ``requiresIdentity``
/// it fails closed (the dial fails, and is retried with backoff) when `INFO` is refused, times
/// out or names no run id. An identified server then stays held out, every command failing at once with
/// ``RedisWireError/Code/heldOut``, until the gate calls
/// ``RedisConnection/admit(generation:)`` or ``RedisConnection/holdOut(until:reason:generation:)``.
/// The gate talks to the held-out server with ``RedisConnection/sendWhileHeldOut(_:timeout:)``.
package protocol RedisAdmissionGate: Sendable {
    /// Whether a server that cannot be identified is refused (the dial fails) rather than used
    /// unchecked.
    var requiresIdentity: Bool { get }

    /// The connection reached `identity`'s server; `generation` numbers the connection's dials,
    /// so that a decision about an earlier one is ignored. Called on the connection's loop.
    func identified(_ identity: ServerIdentity, connection: RedisConnection, generation: Int)
    /// A dial failed (the server is down, or could not be identified). Called on the loop.
    func unreachable(_ connection: RedisConnection, error: RedisWireError)
}
