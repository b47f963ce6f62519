import HTTPTypes
import Hummingbird

/// Answers 421 to a request whose host name (`Host`, or HTTP/2's `:authority`) is not one of
/// ``LocklockServerConfiguration/allowedHosts``: a browser page whose DNS an attacker rebinds
/// to a private server still sends the attacker's name, and is turned away.
struct AllowedHostsMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Exact names, lowercased, and the suffixes (`.example.com`) of `*.example.com` entries.
    let names: Set<String>
    let suffixes: [String]

    init(_ allowed: [String]) {
        let lowered = allowed.map { $0.lowercased() }
        names = Set(lowered.filter { !$0.hasPrefix("*.") })
        suffixes = lowered.filter { $0.hasPrefix("*.") }.map { String($0.dropFirst()) }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let host = request.headers[HTTPField.Name("Host")!] ?? request.head.authority ?? ""
        guard allows(host) else { throw Problem(.misdirectedRequest, "Misdirected Request", "this server does not serve that host name") }
        return try await next(request, context)
    }

    /// Whether `authority` (`name[:port]`, an IPv6 literal in brackets) names an allowed host.
    func allows(_ authority: String) -> Bool {
        var name = Substring(authority.lowercased())
        if name.hasPrefix("["), let close = name.firstIndex(of: "]") {
            name = name[name.index(after: name.startIndex)..<close]
        } else if let colon = name.lastIndex(of: ":") {
            name = name[..<colon]
        }
        guard !name.isEmpty else { return false }
        let host = String(name)
        return names.contains(host) || suffixes.contains { host.hasSuffix($0) && host.count > $0.count }
    }
}
