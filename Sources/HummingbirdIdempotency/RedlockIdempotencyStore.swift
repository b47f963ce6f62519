import Foundation
import RedisWire
import Redlock

/// A store on the Redlock masters themselves, shared by every replica that uses them: each
/// response is written to every master with its retention as TTL, and counts as saved once a
/// quorum has it; a look-up asks every master and takes the copy any of them has. No other
/// database to run, and a master that restarts empty still leaves the others' copies.
public struct RedlockIdempotencyStore: IdempotencyResponseStore {
    /// The masters' keys are this prefix plus the middleware's key.
    public let keyPrefix: String
    private let redlock: Redlock

    /// A response could not be saved on a quorum of the masters, or looked up on enough of
    /// them to know it is absent.
    public struct Unavailable: Error, CustomStringConvertible {
        /// What went wrong.
        public var description: String
    }

    /// Keeps responses on `redlock`'s masters, under `keyPrefix` (the default lies inside the
    /// key pattern `~redlock:*` of the least ACL in Docs/operations.md).
    public init(redlock: Redlock, keyPrefix: String = "redlock:idempotency:") {
        self.redlock = redlock
        self.keyPrefix = keyPrefix
    }

    /// The copy any master has; nil when a quorum answered and none has one.
    public func response(for key: String) async throws -> StoredResponse? {
        let replies = await redlock.sendToEveryMaster([Array("GET".utf8), Array((keyPrefix + key).utf8)])
        for reply in replies {
            if let bytes = reply?.bytes, let stored = try? JSONDecoder().decode(StoredResponse.self, from: Data(bytes)) { return stored }
        }
        guard replies.count(where: { $0 != nil }) >= redlock.quorum else {
            throw Unavailable(description: "fewer than a quorum of the masters answered the look-up")
        }
        return nil
    }

    /// Writes `response` to every master for `retention`; throws unless a quorum took it.
    public func save(_ response: StoredResponse, for key: String, retention: Duration) async throws {
        let payload = Array(try JSONEncoder().encode(response))
        let milliseconds = max(retention.millisecondsRoundedUp, 1)
        let command = [Array("SET".utf8), Array((keyPrefix + key).utf8), payload, Array("PX".utf8), Array(String(milliseconds).utf8)]
        let saved = await redlock.sendToEveryMaster(command).count { $0?.string == "OK" }
        guard saved >= redlock.quorum else { throw Unavailable(description: "only \(saved) of the masters saved the response") }
    }
}
