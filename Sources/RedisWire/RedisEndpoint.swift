/// A master as a user names it: where it listens, and what may differ from one master to
/// the next (TLS, the ACL user and password, the database). Parsed from
/// `redis://[user[:password]@]host[:port][/db]`, `rediss://...` (TLS), `unix:///path[?db=N]`,
/// or the short forms `host:port`, `[v6]:port`, `host` and `unix:/path`.
///
/// Its description never shows the password.
public struct RedisEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Where the server listens.
    public var address: RedisServerAddress
    /// Whether to speak TLS: true for `rediss://`, false for `redis://`, nil (the short forms)
    /// to follow the connection configuration's ``RedisConnectionConfiguration/tls``.
    public var usesTLS: Bool?
    /// The ACL user from the URL, if any.
    public var username: String?
    /// The password from the URL, if any. Prefer a file or an environment variable: a URL on a
    /// command line shows in `ps`.
    public var password: String?
    /// The database from the URL's path, if any.
    public var database: Int?

    /// An endpoint with nothing set beyond its address.
    public init(_ address: RedisServerAddress, usesTLS: Bool? = nil, username: String? = nil, password: String? = nil, database: Int? = nil) {
        self.address = address
        self.usesTLS = usesTLS
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses one endpoint; nil for anything malformed (an unknown scheme, a bad port, a
    /// database that is not a number, a password without a URL).
    public init?(parsing text: String) {
        let text = text.trimmingSpaces()
        let lowercased = text.lowercased()
        for (scheme, tls) in [("redis://", false), ("rediss://", true)] where lowercased.hasPrefix(scheme) {
            self.init(url: Substring(text.dropFirst(scheme.count)), usesTLS: tls)
            return
        }
        if lowercased.hasPrefix("unix://") {
            var rest = Substring(text.dropFirst("unix://".count))
            var database: Int?
            if let query = rest.firstIndex(of: "?") {
                let parameters = rest[rest.index(after: query)...]
                rest = rest[..<query]
                guard parameters.hasPrefix("db="), let number = Int(parameters.dropFirst(3)), number >= 0 else { return nil }
                database = number
            }
            guard rest.hasPrefix("/"), let path = Self.percentDecoded(rest), path.count > 1 else { return nil }
            self.init(.unixDomainSocket(path: path), usesTLS: false, database: database)
            return
        }
        guard !text.contains("://"), let address = RedisServerAddress(parsing: text) else { return nil }
        self.init(address)
    }

    /// `[user[:password]@]host[:port][/db]`, after the scheme.
    private init?(url: Substring, usesTLS: Bool) {
        var rest = url
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                guard let decoded = Self.percentDecoded(userInfo[userInfo.index(after: colon)...]) else { return nil }
                password = decoded
                let user = userInfo[..<colon]
                if !user.isEmpty {
                    guard let decoded = Self.percentDecoded(user) else { return nil }
                    username = decoded
                }
            } else {
                guard !userInfo.isEmpty, let decoded = Self.percentDecoded(userInfo) else { return nil }
                username = decoded
            }
        }
        var database: Int?
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else { return nil }
                database = number
            }
        }
        guard !rest.isEmpty, !rest.hasPrefix("unix:"), let address = RedisServerAddress(parsing: String(rest)) else { return nil }
        self.init(address, usesTLS: usesTLS, username: username, password: password, database: database)
    }

    /// Parses a comma-separated list of independent masters, as every command line takes it.
    ///
    /// - Throws: ``ListError`` for an empty list, an entry that does not parse, or a server
    ///   listed twice (whatever its database: it would vote twice).
    public static func list(parsing text: String) throws(ListError) -> [RedisEndpoint] {
        guard !text.trimmingSpaces().isEmpty else { throw .init(description: "no master given") }
        var endpoints: [RedisEndpoint] = []
        var seen = Set<RedisServerAddress>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let endpoint = RedisEndpoint(parsing: String(part)) else {
                // The entry is not echoed: it may hold a password.
                throw .init(description: "master \(endpoints.count + 1) of the list is not host:port, redis://, rediss:// or unix:// (see --help)")
            }
            guard seen.insert(endpoint.address).inserted else { throw .init(description: "master \(endpoint.address) is listed twice") }
            endpoints.append(endpoint)
        }
        return endpoints
    }

    /// A master list that ``list(parsing:)`` refused.
    public struct ListError: Error, Sendable, CustomStringConvertible {
        /// What is wrong with the list, for people. It never repeats an entry that failed to
        /// parse (it may hold a password).
        public let description: String
    }

    /// `base` with this endpoint's settings applied: TLS on (with `base`'s TLS settings, or
    /// the system's trust store) or off, the user and password, the database.
    public func configuration(from base: RedisConnectionConfiguration) -> RedisConnectionConfiguration {
        var configuration = base
        switch usesTLS {
        case true?: if configuration.tls == nil { configuration.tls = RedisTLSConfiguration() }
        case false?: configuration.tls = nil
        case nil: break
        }
        if let password {
            configuration.authentication = .init(username: username ?? base.authentication?.username, password: password)
        } else if let username, let base = base.authentication {
            configuration.authentication = .init(username: username, password: base.password)
        }
        if let database { configuration.database = database }
        return configuration
    }

    /// The URL without its password.
    public var description: String {
        var user = username ?? ""
        if password != nil { user += ":***" }
        if !user.isEmpty { user += "@" }
        let db = database.map { "/\($0)" } ?? ""
        switch address.base {
        case .unixDomainSocket(let path): return "unix://\(path)" + (database.map { "?db=\($0)" } ?? "")
        case .hostname:
            guard let usesTLS else { return address.description }
            return (usesTLS ? "rediss://" : "redis://") + user + address.description + db
        }
    }

    /// `%XX` escapes decoded as UTF-8; nil for a malformed escape.
    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
