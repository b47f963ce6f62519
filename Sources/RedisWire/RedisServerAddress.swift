/// Where a Redis server listens.
public struct RedisServerAddress: Sendable, Hashable, CustomStringConvertible {
    enum Base: Sendable, Hashable {
        case hostname(String, port: Int)
        case unixDomainSocket(path: String)
    }
    let base: Base

    /// A TCP address.
    public static func hostname(_ host: String, port: Int = 6379) -> Self {
        .init(base: .hostname(host, port: port))
    }

    /// A Unix domain socket path.
    public static func unixDomainSocket(path: String) -> Self {
        .init(base: .unixDomainSocket(path: path))
    }

    /// Parses `host:port`, `[v6]:port`, `host` (port 6379) or `unix:/path`.
    /// Returns nil for anything else, including ports outside 1...65535.
    public init?(parsing text: String) {
        let text = text.trimmingSpaces()
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { return nil }
            self = .unixDomainSocket(path: path)
            return
        }
        var host = Substring(text)
        var port = 6379
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let parsed = Int(rest.dropFirst()) else { return nil }
                port = parsed
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard host.firstIndex(of: ":") == colon, let parsed = Int(host[host.index(after: colon)...]) else {
                return nil
            }
            port = parsed
            host = host[..<colon]
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self = .hostname(String(host), port: port)
    }

    /// Parses a comma-separated list of independent masters, as every command line takes it.
    ///
    /// - Throws: ``ListError`` for an empty list, an entry that does not parse, or a master
    ///   listed twice (it would vote twice: a "quorum" that is not one).
    public static func list(parsing text: String) throws(ListError) -> [RedisServerAddress] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard !text.trimmingSpaces().isEmpty else { throw ListError(description: "no master given") }
        var addresses: [RedisServerAddress] = []
        var seen = Set<RedisServerAddress>()
        for part in parts {
            guard let address = RedisServerAddress(parsing: String(part)) else {
                throw ListError(description: "bad master address '\(part)'")
            }
            guard seen.insert(address).inserted else { throw ListError(description: "master \(address) is listed twice") }
            addresses.append(address)
        }
        return addresses
    }

    /// A master list that ``list(parsing:)`` refused.
    public struct ListError: Error, Sendable, CustomStringConvertible {
        /// What is wrong with the list, for people.
        public let description: String
    }

    private init(base: Base) { self.base = base }

    /// A readable summary, for logs and messages.
    public var description: String {
        switch base {
        case .hostname(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unixDomainSocket(let path): "unix:\(path)"
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var view = Substring(self)
        while view.first == " " { view.removeFirst() }
        while view.last == " " { view.removeLast() }
        return String(view)
    }
}
