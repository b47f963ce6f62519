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
