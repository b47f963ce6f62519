import NIOCore
import RedisWire

/// Keeps on each master a record of the latest expiry of any key it granted: the key
/// `<prefix>horizon`, whose TTL is at least the longest lifetime (TTL plus lock-delay) of a
/// grant still live there. A master that lost its data is held out until that horizon, read
/// from the masters that kept theirs (see ``MasterAdmission``), instead of the configured
/// maximum.
///
/// The record is raised before a grant's command on the same connection, so a master that
/// applied the grant had applied the record first. It is raised with headroom (a quarter of
/// the lifetime, at least a second), and this client remembers, on its monotonic clock, how
/// far each master's record reaches: most grants find it covered and send nothing more.
/// Confined to the masters' event loop.
final class GrantHorizon: @unchecked Sendable {
    // @unchecked: created once, then read and written only on `eventLoop`.
    private var coveredUntil: [NIODeadline]
    private let eventLoop: any EventLoop
    private let key: [UInt8]
    private let driftFactor: Double

    /// Raises the record's TTL to ARGV[1] ms unless it already reaches that far.
    static let raiseSource =
        "local t = redis.call('PTTL', KEYS[1]) if t < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end return 1"

    init(masters: Int, key: [UInt8], driftFactor: Double, eventLoop: any EventLoop) {
        coveredUntil = Array(repeating: .uptimeNanoseconds(0), count: masters)
        self.key = key
        self.driftFactor = driftFactor
        self.eventLoop = eventLoop
    }

    /// The record as it stands is unknown (the master was reached anew): raise it with the
    /// next grant.
    func forget(master index: Int) {
        eventLoop.preconditionInEventLoop()
        coveredUntil[index] = .uptimeNanoseconds(0)
    }

    /// Before a grant of `lifetime` on master `index`, sent at `now`: sends the raise on
    /// `connection` when the record may not reach past the grant's expiry. Must be called on
    /// the loop, right before the grant's own command on the same connection.
    func cover(_ lifetime: Duration, master index: Int, on connection: RedisConnection, now: NIODeadline, deadline: NIODeadline) {
        let needed = now + .nanoseconds(lifetime.nanoseconds)
        guard needed > coveredUntil[index] else { return }
        let raised = lifetime + max(lifetime / 4, .seconds(1))
        let milliseconds = raised.millisecondsRoundedUp
        guard
            let command = try? RedisCommand([
                Array("EVAL".utf8), Array(Self.raiseSource.utf8), Array("1".utf8), key, Array(String(milliseconds).utf8),
            ])
        else { return }
        // The master's own clock may run fast by the drift factor: count on a little less.
        let counted = raised - Validity.drift(ttl: raised, driftFactor: driftFactor)
        coveredUntil[index] = now + .nanoseconds(counted.nanoseconds)
        connection.send(command, deadline: deadline) { [self] result in
            if case .failure = result { forget(master: index) }
        }
    }
}
