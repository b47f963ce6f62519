import Redlock

/// Settings of the HTTP adapter.
public struct LocklockServerConfiguration: Sendable {
    /// Bind address.
    public var host: String
    /// Port.
    public var port: Int
    /// The largest `expires_in` accepted, in seconds (default 30 days).
    public var maximumExpiresIn: Double
    /// The longest `wait` accepted, in seconds (default 60).
    public var maximumWait: Double
    /// Requests per second per client address for calls without a key (0: off).
    public var anonymousRate: Int
    /// Requests per second per tenant for Developer keys (0: off).
    public var developerRate: Int
    /// Requests per second per tenant for Pro keys (0: off).
    public var proRate: Int
    /// With `example.com`, a request to `acme.example.com` is served in tenant `acme`'s
    /// namespace and needs `acme`'s key.
    public var baseDomain: String?
    /// The tenants.
    public var tenants: TenantDirectory
    /// The largest `expires_in` for a caller without a key, in seconds (default 1 hour): it
    /// bounds what anonymous callers can keep on the masters, about rate × this many keys per
    /// address. Never above ``maximumExpiresIn``.
    public var anonymousMaximumExpiresIn: Double = 3_600
    /// Distinct lock names one caller without a key may use per fence retention (the primary
    /// group's ``Redlock/RedlockConfiguration/fencingCounterRetention``); 0 is no limit. Each
    /// name leaves a lock key on every master and a fence for the retention: this bounds what
    /// one address can make the masters hold.
    public var anonymousNamesPerRetention = 200
    /// The key of the keyed hash (HMAC-SHA-256) under which lock secrets are stored, shared by
    /// every replica; nil stores a plain SHA-256, which a dump of the masters exposes to an
    /// offline guess of weak secrets.
    public var secretKey: [UInt8]?
    /// Peers whose ``forwardedHeader`` names the client (the proxies in front of the server);
    /// from any other peer it is ignored.
    public var trustedProxies: [IPNetwork] = []
    /// The header the trusted proxies write: only it is read, never the other one, which a
    /// proxy that does not write it passes through from the client untouched.
    public var forwardedHeader = ForwardedHeader.xForwardedFor
    /// A header that carries the forwarding chain.
    public enum ForwardedHeader: Sendable {
        /// `X-Forwarded-For`, which nginx, AWS ALB, Envoy and Traefik append to.
        case xForwardedFor
        /// `Forwarded` (RFC 7239), its `for=` parameters.
        case forwarded
    }
    /// Whether `/metrics` is served on the API's address (false when it has one of its own,
    /// see ``buildMetricsApplication(prometheus:host:port:logger:)``).
    public var servesMetrics = true
    /// Where throttling state lives.
    public enum Throttle: Sendable {
        /// On the primary masters (one master per identity, picked by hash), so that every
        /// replica counts the same requests; the local limiter when that master is unreachable.
        case shared
        /// In this process only: each replica gives a client its full rate.
        case local
    }

    /// Where throttling state lives (default: shared by every replica, on the masters).
    public var throttle = Throttle.shared
    /// With ``tlsKeyPath``: the server's certificate chain (PEM), to serve HTTPS directly.
    public var tlsCertificatePath: String?
    /// With ``tlsCertificatePath``: the server's private key (PEM).
    public var tlsKeyPath: String?
    /// Requests with a `wait` that may wait at once per client address without a key.
    public var anonymousWaiters: Int = 20
    /// Requests with a `wait` that may wait at once per Developer tenant.
    public var developerWaiters: Int = 50
    /// Requests with a `wait` that may wait at once per Pro tenant.
    public var proWaiters: Int = 500
    /// A connection with no request in progress is closed after this.
    public var idleTimeout: Duration = .seconds(60)
    /// A request's head must arrive in full within this of the connection opening or the
    /// previous response.
    public var headerTimeout: Duration = .seconds(10)
    /// A request's body must arrive in full within this of its head.
    public var bodyTimeout: Duration = .seconds(30)
    /// The host names requests may name in `Host` (a port aside, case ignored; `*.example.com`
    /// allows every name under it); any other gets 421, so a page whose DNS an attacker
    /// rebinds to this server cannot use it. Nil serves any name.
    public var allowedHosts: [String]?
    /// Connections open at once; past it, new ones are closed as soon as they are accepted.
    public var maximumConnections: Int = 10_000
    /// Connections one client (an IPv4 address, an IPv6 /64) may hold open at once; nil is a
    /// tenth of ``maximumConnections``. A trusted proxy carries many clients and is held to
    /// the total only.
    public var maximumConnectionsPerClient: Int?

    /// ``maximumConnectionsPerClient`` as it applies.
    var connectionsPerClient: Int { max(1, maximumConnectionsPerClient ?? maximumConnections / 10) }

    /// Creates a configuration with the contract's defaults.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        maximumExpiresIn: Double = 2_592_000,
        maximumWait: Double = 60,
        anonymousRate: Int = 100,
        developerRate: Int = 100,
        proRate: Int = 1_000,
        baseDomain: String? = nil,
        tenants: TenantDirectory = TenantDirectory([])
    ) {
        self.host = host
        self.port = port
        self.maximumExpiresIn = maximumExpiresIn
        self.maximumWait = maximumWait
        self.anonymousRate = anonymousRate
        self.developerRate = developerRate
        self.proRate = proRate
        self.baseDomain = baseDomain
        self.tenants = tenants
    }
}

/// The master groups the server locks on: the default one (`--masters`) and named regions.
public struct MasterGroups: Sendable {
    /// The default group.
    public let primary: Redlock
    /// Named regions (`--region NAME=h:p,...`).
    public let regions: [String: Redlock]

    /// Creates the groups.
    public init(primary: Redlock, regions: [String: Redlock] = [:]) {
        self.primary = primary
        self.regions = regions
    }

    /// Every client, default first.
    public var all: [Redlock] { named.map(\.redlock) }

    /// Every group with its name: `primary`, then the regions by name.
    public var named: [(name: String, redlock: Redlock)] {
        [("primary", primary)] + regions.keys.sorted().compactMap { name in regions[name].map { (name, $0) } }
    }

    func redlock(for tenant: Tenant?) -> Redlock {
        tenant?.region.flatMap { regions[$0] } ?? primary
    }
}
