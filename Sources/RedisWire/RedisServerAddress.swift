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
