import NovaCache

/// How the connector cache treats one upstream operation (a CRM search, an ERP product lookup, an MCP
/// tool): whether its results are cached, for how long, which arguments form the key, who may share a
/// result, and how long an old result may stand in when the upstream fails.
public struct ConnectorPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Who may receive a cached result.
    public enum Scope: String, Sendable, Hashable, CaseIterable {
        /// Every caller: the result depends on the arguments only (reference data, a product catalogue).
        case shared
        /// The caller who asked: the key carries a hash of the caller's identity, so one user's results
        /// never reach another (results filtered by the user's permissions).
        case caller
    }

    /// A name for logs and statistics (a preset's name, or the operation's).
    public var name: String
    /// Whether results are cached at all; false passes every call through.
    public var cacheable: Bool
    /// How long a result is served from the cache.
    public var ttl: Duration
    /// The fraction of the TTL added or removed at random (0.05 = ±5%), so results cached together do not
    /// all expire together.
    public var jitter: Double
    /// The argument fields that identify a result (top-level names); nil: all of the arguments. Fields not
    /// named (a request id, a tracing flag) do not split the cache.
    public var keyFields: [String]?
    /// Who may receive a cached result.
    public var scope: Scope
    /// How long after its TTL a result may still be returned when the upstream fails (throws, or returns
    /// a result that is not cacheable, such as an MCP result with `isError`); `.zero`: never.
    public var staleOnError: Duration

    public init(
        name: String = "default", cacheable: Bool = true, ttl: Duration = .seconds(300), jitter: Double = 0.05,
        keyFields: [String]? = nil, scope: Scope = .shared, staleOnError: Duration = .zero
    ) {
        self.name = name
        self.cacheable = cacheable
        self.ttl = max(ttl, .milliseconds(1))
        self.jitter = min(max(jitter, 0), 1)
        self.keyFields = keyFields
        self.scope = scope
        self.staleOnError = max(staleOnError, .zero)
    }

    /// Customer searches against the CRM: 1 hour (the original deployment's Salesforce setting).
    public static let customerSearch = ConnectorPolicy(name: "customer-search", ttl: .seconds(3600))
    /// Products from the ERP: 1 hour.
    public static let products = ConnectorPolicy(name: "products", ttl: .seconds(3600))
    /// Reference data (countries, units, price lists): 24 hours.
    public static let referenceData = ConnectorPolicy(name: "reference-data", ttl: .seconds(86400))
    /// Not cached: every call reaches the upstream (writes, and anything not known to be side-effect free).
    public static let uncached = ConnectorPolicy(name: "uncached", cacheable: false)

    /// The presets by the names configuration files use.
    public static let presets: [String: ConnectorPolicy] = [
        "customer-search": .customerSearch, "products": .products, "reference-data": .referenceData, "uncached": .uncached,
    ]

    /// The CachePolicy the connector's entries are written with.
    var cachePolicy: CachePolicy {
        CachePolicy(name: name, ttl: ttl, jitter: jitter, maxStaleness: staleOnError)
    }

    public var description: String {
        guard cacheable else { return "\(name) (not cached)" }
        var parts = ["ttl \(ttl)", "scope \(scope.rawValue)"]
        if let keyFields { parts.append("key \(keyFields.joined(separator: ","))") }
        if staleOnError > .zero { parts.append("stale on error \(staleOnError)") }
        return "\(name) (\(parts.joined(separator: ", ")))"
    }
}
