/// How long an entry lives: a named TTL with optional jitter and sliding expiry.
///
/// Jitter spreads the expiry of entries written together (a warm-up, a catalogue import) so that they do not
/// all miss at the same moment. Sliding expiry restarts the TTL on every read (sessions).
public struct CachePolicy: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// Time to live; nil keeps the entry until it is deleted or evicted.
    public var ttl: Duration?
    /// The fraction of the TTL added or removed at random, 0...1 (0.1 = ±10%).
    public var jitter: Double
    /// Whether every read restarts the TTL.
    public var sliding: Bool
    /// Eager refresh for `getOrLoad`: a hit after this fraction of the TTL has passed (0.9: the last 10%)
    /// returns the cached value and reloads it in the background, so that hot keys never miss. Nil: off.
    public var eagerRefresh: Double?
    /// How long after its TTL a value may still stand in when `getOrLoad`'s loader fails or is too slow
    /// (fail-safe). Nil: the manager's `maxStaleness`; `.zero`: never serve this policy's values stale.
    /// The memory tier keeps values for the manager's `maxStaleness` only, so a longer window is cut to it.
    public var maxStaleness: Duration?

    public init(
        name: String, ttl: Duration?, jitter: Double = 0, sliding: Bool = false, eagerRefresh: Double? = nil, maxStaleness: Duration? = nil
    ) {
        self.name = name
        self.ttl = ttl
        self.jitter = min(max(jitter, 0), 1)
        self.sliding = sliding
        self.eagerRefresh = eagerRefresh.map { min(max($0, 0), 1) }
        self.maxStaleness = maxStaleness.map { max($0, .zero) }
    }

    /// Customer search results from the CRM: 1 hour.
    public static let customerSearch = CachePolicy(name: "customer-search", ttl: .seconds(3600), jitter: 0.05)
    /// Product catalogue from the ERP: 1 hour.
    public static let productCatalogue = CachePolicy(name: "product-catalogue", ttl: .seconds(3600), jitter: 0.05)
    /// User sessions: 30 minutes after the last read or write.
    public static let userSession = CachePolicy(name: "user-session", ttl: .seconds(1800), sliding: true)
    /// Reference data (countries, units, price lists): 24 hours.
    public static let referenceData = CachePolicy(name: "reference-data", ttl: .seconds(86400), jitter: 0.05)
    /// No expiry.
    public static let persistent = CachePolicy(name: "persistent", ttl: nil)

    /// The TTL to apply to one write, jitter included (at least 1 ms); nil for no expiry.
    public func effectiveMilliseconds(using generator: inout some RandomNumberGenerator) -> Int64? {
        guard let ttl else { return nil }
        let base = Double(ttl.wholeMilliseconds)
        let spread = jitter > 0 ? Double.random(in: -jitter...jitter, using: &generator) : 0
        return max(1, Int64((base * (1 + spread)).rounded()))
    }

    public var description: String {
        "\(name) (ttl \(ttl.map { "\($0)" } ?? "none")\(jitter > 0 ? ", jitter ±\(Int(jitter * 100))%" : "")\(sliding ? ", sliding" : "")\(eagerRefresh.map { ", eager refresh at \(Int($0 * 100))%" } ?? "")\(maxStaleness.map { ", stale for \($0) at most" } ?? ""))"
    }
}
