import Foundation
import HTTPTypes
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 network in CIDR form (`10.0.0.0/8`, `2001:db8::/32`; a bare address is
/// one host).
public struct IPNetwork: Sendable, Hashable {
    /// The network's address bytes (4 or 16).
    let bytes: [UInt8]
    /// The number of leading bits that must match.
    public let prefixLength: Int

    /// Parses `address/prefix` or a bare address; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let bytes = Self.bytes(of: String(parts[0])) else { return nil }
        let length = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
        guard let length, (0...bytes.count * 8).contains(length) else { return nil }
        self.bytes = bytes
        self.prefixLength = length
    }

    /// Whether `address` lies in this network (an IPv4-mapped IPv6 address as its IPv4 one).
    public func contains(_ address: SocketAddress) -> Bool {
        guard let text = address.ipAddress, let candidate = Self.bytes(of: text).map(Self.unmapped), candidate.count == bytes.count else {
            return false
        }
        let whole = prefixLength / 8
        guard candidate[0..<whole] == bytes[0..<whole] else { return false }
        let rest = prefixLength % 8
        guard rest > 0 else { return true }
        let mask = UInt8(0xFF) << (8 - rest)
        return candidate[whole] & mask == bytes[whole] & mask
    }

    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its 4 IPv4 bytes; other bytes as they are.
    static func unmapped(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count == 16, bytes[0..<12].elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) else { return bytes }
        return Array(bytes[12...])
    }

    /// The 4 or 16 bytes of a textual IPv4 or IPv6 address.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, text, &v4) == 1 { return v4 }
        var v6 = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET6, text, &v6) == 1 { return v6 }
        return nil
    }
}

/// The client behind trusted proxies: the nearest address in the forwarding chain that is
/// not itself a trusted proxy.
enum ForwardedClient {
    /// The client's address: `peer` itself unless `peer` is trusted; then, walking `header`'s
    /// chain right to left past trusted proxies, the first address that is not one. The other
    /// header is never read: the client wrote it. A chain entry that is not an address
    /// (`unknown`, an obfuscated name) stops the walk at the last trusted hop.
    static func address(
        peer: SocketAddress?,
        headers: HTTPFields,
        trusted: [IPNetwork],
        header: LocklockServerConfiguration.ForwardedHeader
    ) -> SocketAddress? {
        guard let peer, !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        let chain: [String]
        switch header {
        case .forwarded:
            chain = headers[values: .forwarded].joined(separator: ",").split(separator: ",").compactMap { element in
                element.split(separator: ";").lazy.map { $0.trimmingCharacters(in: .whitespaces) }
                    .first { $0.lowercased().hasPrefix("for=") }
                    .map { node(String($0.dropFirst(4))) }
            }
        case .xForwardedFor:
            chain = headers[values: .xForwardedFor].joined(separator: ",").split(separator: ",").map {
                node($0.trimmingCharacters(in: .whitespaces))
            }
        }
        var client = peer
        for entry in chain.reversed() {
            guard let address = try? SocketAddress(ipAddress: entry, port: 0) else { return client }
            client = address
            guard trusted.contains(where: { $0.contains(address) }) else { return address }
        }
        return client
    }

    /// `"[2001:db8::1]:4711"` → `2001:db8::1`, `192.0.2.1:80` → `192.0.2.1`.
    private static func node(_ text: String) -> String {
        var node = Substring(text)
        if node.hasPrefix("\""), node.hasSuffix("\""), node.count >= 2 { node = node.dropFirst().dropLast() }
        if node.hasPrefix("["), let close = node.firstIndex(of: "]") { return String(node[node.index(after: node.startIndex)..<close]) }
        if node.filter({ $0 == ":" }).count == 1, let colon = node.firstIndex(of: ":") { return String(node[..<colon]) }
        return String(node)
    }
}

extension HTTPField.Name {
    static let forwarded = Self("Forwarded")!
    static let xForwardedFor = Self("X-Forwarded-For")!
}
