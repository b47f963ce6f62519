import NIOCore
import RedisWire
import Synchronization

/// Token buckets per client address or tenant: `rate` requests per second with a burst of
/// twice that. A rate of 0 turns throttling off.
///
/// Memory is bounded: at most `maximumKeys` buckets, kept in least-recently-used order. Each
/// check evicts up to two buckets at the old end that have refilled completely (forgetting
/// one changes nothing: a new bucket starts full), and past the bound the least recently used
/// bucket goes whatever its state. Every check is O(1).
public final class RateLimiter: Sendable {
    private let table: Mutex<BucketTable>

    /// Creates a limiter that keeps at most `maximumKeys` buckets.
    public init(maximumKeys: Int = 100_000) {
        table = Mutex(BucketTable(maximumKeys: max(maximumKeys, 1)))
    }

    /// Outcome of one check.
    public struct Decision: Sendable {
        /// Whether the request may go ahead.
        public var allowed: Bool
        /// Tokens left (rounded down).
        public var remaining: Int
        /// Seconds until a token is available, when refused.
        public var retryAfter: Int
    }

    /// How many buckets the limiter keeps now.
    package var keyCount: Int { table.withLock { $0.count } }

    /// Takes one token from `key`'s bucket.
    public func check(_ key: String, rate: Int, now: ContinuousClock.Instant = .now) -> Decision {
        guard rate > 0 else { return Decision(allowed: true, remaining: Int.max, retryAfter: 0) }
        return table.withLock { $0.take(key, rate: rate, now: now) }
    }

    /// The bucket key of an anonymous client: its IPv4 address, or the /64 of its IPv6
    /// address (one site's allocation; keying per /128 would give one client 2^64 buckets).
    /// An IPv4-mapped IPv6 address is its IPv4 address.
    package static func clientKey(for address: SocketAddress?) -> String {
        guard let text = address?.ipAddress else { return "a:unknown" }
        guard let bytes = IPNetwork.bytes(of: text).map(IPNetwork.unmapped) else { return "a:" + text }
        if bytes.count == 4 { return "a:" + bytes.map(String.init).joined(separator: ".") }
        return "a:" + bytes[0..<8].hexString + "::/64"
    }
}

/// The buckets, in a doubly linked list over an array (most recently used at `head`), with a
/// dictionary from key to slot.
private struct BucketTable {
    struct Node {
        var key: String
        var tokens: Double
        var updated: ContinuousClock.Instant
        /// When the bucket is full again if nothing takes from it.
        var fullAt: ContinuousClock.Instant
        var newer: Int?
        var older: Int?
    }

    let maximumKeys: Int
    var nodes: [Node] = []
    var slots: [String: Int] = [:]
    var free: [Int] = []
    var head: Int?
    var tail: Int?

    init(maximumKeys: Int) { self.maximumKeys = maximumKeys }

    var count: Int { slots.count }

    mutating func take(_ key: String, rate: Int, now: ContinuousClock.Instant) -> RateLimiter.Decision {
        let capacity = Double(rate * 2)
        let slot: Int
        if let existing = slots[key] {
            slot = existing
            unlink(slot)
        } else {
            slot = allocate(Node(key: key, tokens: capacity, updated: now, fullAt: now))
            slots[key] = slot
        }
        linkAtHead(slot)
        var node = nodes[slot]
        node.tokens = min(capacity, node.tokens + (now - node.updated).seconds * Double(rate))
        node.updated = now
        let decision: RateLimiter.Decision
        if node.tokens >= 1 {
            node.tokens -= 1
            decision = .init(allowed: true, remaining: Int(node.tokens), retryAfter: 0)
        } else {
            let wait = (1 - node.tokens) / Double(rate)
            decision = .init(allowed: false, remaining: 0, retryAfter: max(1, Int(wait.rounded(.up))))
        }
        node.fullAt = now + .milliseconds(Int64(((capacity - node.tokens) / Double(rate) * 1000).rounded(.up)))
        nodes[slot] = node
        evict(now: now)
        return decision
    }

    /// Up to two full (idle) buckets from the old end, then any past the bound.
    private mutating func evict(now: ContinuousClock.Instant) {
        for _ in 0..<2 {
            guard let oldest = tail, oldest != head, nodes[oldest].fullAt <= now else { break }
            remove(oldest)
        }
        while slots.count > maximumKeys, let oldest = tail { remove(oldest) }
    }

    private mutating func allocate(_ node: Node) -> Int {
        if let slot = free.popLast() {
            nodes[slot] = node
            return slot
        }
        nodes.append(node)
        return nodes.count - 1
    }

    private mutating func remove(_ slot: Int) {
        unlink(slot)
        slots[nodes[slot].key] = nil
        nodes[slot].key = ""
        free.append(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (nodes[slot].newer, nodes[slot].older)
        if let newer { nodes[newer].older = older } else { head = older }
        if let older { nodes[older].newer = newer } else { tail = newer }
        nodes[slot].newer = nil
        nodes[slot].older = nil
    }

    private mutating func linkAtHead(_ slot: Int) {
        nodes[slot].older = head
        if let head { nodes[head].newer = slot }
        head = slot
        if tail == nil { tail = slot }
    }
}
