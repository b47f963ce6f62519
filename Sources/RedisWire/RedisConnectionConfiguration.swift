/// How a ``RedisConnection`` dials, authenticates, times out and re-dials.
public struct RedisConnectionConfiguration: Sendable {
    /// Backoff for re-dialling a server that is down.
    public struct Reconnect: Sendable {
        /// Delay before the first re-dial after a failed attempt.
        public var initialDelay: Duration
        /// The longest delay between two re-dials.
        public var maximumDelay: Duration
        /// Creates a backoff policy; the delay doubles after each failure up to `maximumDelay`.
        public init(initialDelay: Duration = .milliseconds(25), maximumDelay: Duration = .seconds(1)) {
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
        }
    }

    /// Credentials sent with `AUTH` right after connecting. Never logged.
    public struct Authentication: Sendable {
        /// The ACL user name; nil for the `default` user (`requirepass`).
        public var username: String?
        /// The password.
        public var password: String
        /// Creates credentials.
        public init(username: String? = nil, password: String) {
            self.username = username
            self.password = password
        }
    }

    /// How long one TCP connect (plus `AUTH`/`SELECT`) may take.
    public var connectTimeout: Duration
    /// The deadline of a command when the caller gives none.
    public var commandTimeout: Duration
    /// How long the connection waits with commands outstanding and no reply at all before it
    /// takes the server for gone, drops the connection and re-dials (with backoff). A command
    /// that passes its own deadline only fails its caller: its late reply is read and thrown
    /// away, so a slow server costs timeouts, not reconnects.
    public var healthTimeout: Duration
    /// Most commands awaiting replies on the connection at once; past it (or while the
    /// socket's send buffer is full) new commands fail at once with
    /// ``RedisWireError/Code/unavailable`` instead of queuing behind a stalled server.
    public var maximumInFlight: Int
    /// Re-dial backoff while the server is down.
    public var reconnect: Reconnect
    /// TLS to the server; nil speaks plain TCP (or a Unix socket).
    public var tls: RedisTLSConfiguration?
    /// Optional credentials.
    public var authentication: Authentication?
    /// The logical database selected after connecting (0 sends no `SELECT`).
    public var database: Int
    /// Scripts loaded with `SCRIPT LOAD` on every (re)connect, so their first `EVALSHA`
    /// does not pay a NOSCRIPT round trip (after a restart, for instance).
    public var preloadedScripts: [RedisScript]
    /// Whether every (re)connect reads `INFO` and refuses a server that is not a master of a
    /// supported version (Redis 6.2 or later, Valkey 7.2 or later). A server that refuses
    /// `INFO` is still used, unchecked, unless an admission gate is set.
    public var identifiesServer: Bool
    /// Decides after every (re)connect whether the server may be used (see
    /// ``RedisAdmissionGate``); Redlock sets it to hold out masters that may have lost data.
    package var admissionGate: (any RedisAdmissionGate)?

    /// Creates a configuration; every value has a production default.
    public init(
        connectTimeout: Duration = .seconds(1),
        commandTimeout: Duration = .seconds(1),
        healthTimeout: Duration = .seconds(2),
        maximumInFlight: Int = 10_000,
        reconnect: Reconnect = .init(),
        authentication: Authentication? = nil,
        database: Int = 0,
        preloadedScripts: [RedisScript] = [],
        identifiesServer: Bool = true,
        tls: RedisTLSConfiguration? = nil
    ) {
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.healthTimeout = healthTimeout
        self.maximumInFlight = maximumInFlight
        self.reconnect = reconnect
        self.authentication = authentication
        self.database = database
        self.preloadedScripts = preloadedScripts
        self.identifiesServer = identifiesServer
    }
}
