public import Logging
public import NovaCache
import Synchronization

/// Read-through caching of upstream calls — a CRM search, an ERP lookup, an MCP tool — in NovaCache, with
/// a policy per operation.
///
/// A call is answered from the cache manager's memory tier, then the shared server, and reaches the
/// upstream only on a miss; concurrent identical misses share one upstream call (single flight), and a
/// failing upstream is answered with the last result for the policy's `staleOnError` window. Results the
/// `cacheable` predicate rejects (an MCP result with `isError`) are returned but never stored. Several
/// processes using the same server and namespace share results, and an invalidation in one reaches the
/// memory tiers of all (the manager's coherence).
///
/// ```swift
/// let connector = ConnectorCache(cache: try CacheManager(url: "redis://127.0.0.1:6379/0", namespace: "crm"))
/// let customers = try await connector.call(
///     source: "salesforce", operation: "searchCustomers", arguments: ["query": query],
///     policy: .customerSearch
/// ) { try await salesforce.searchCustomers(query) }
/// ```
public final class ConnectorCache: Sendable {
    /// The cache manager results are kept in (its namespace prefixes every key).
    public let cache: CacheManager
    private let logger: Logger
    private let counters = Mutex<[Operation: ConnectorStatistics.Counters]>([:])

    private struct Operation: Hashable {
        let source: String
        let operation: String
    }

    /// - Parameters:
    ///   - cache: where results are kept; its namespace prefixes every key.
    ///   - logger: where bypassed calls (a caller-scoped operation without a caller) are reported.
    public init(cache: CacheManager, logger: Logger = Logger(label: "nova.connector")) {
        self.cache = cache
        self.logger = logger
    }

    /// The result of `operation` on `source` for `arguments`: cached, or from `upstream`.
    ///
    /// - Parameters:
    ///   - arguments: what identifies the result (with `policy.keyFields`, only those fields of it).
    ///   - caller: the caller's identity, required for `caller`-scoped policies (a call without one passes
    ///     through uncached, with a warning).
    ///   - cacheable: whether a result may be stored; a rejected result is returned to this caller only
    ///     (and, with a stale result at hand within `staleOnError`, that stale result is returned instead).
    ///   - upstream: the call itself.
    public func call<Result: Codable & Sendable>(
        source: String, operation: String, arguments: some Encodable = [String: String](), caller: String? = nil,
        policy: ConnectorPolicy, as type: Result.Type = Result.self,
        cacheable: @escaping @Sendable (Result) -> Bool = { _ in true },
        upstream: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let operationID = Operation(source: source, operation: operation)
        count(operationID) { $0.calls += 1 }
        guard policy.cacheable else { return try await callUpstream(operationID, upstream, cacheable: { _ in true }) }
        let key: ConnectorKey
        do {
            key = try ConnectorKey(source: source, operation: operation, arguments: arguments, caller: caller, policy: policy)
        } catch let error as ConnectorError {
            logger.warning("call passed through uncached", metadata: ["reason": "\(error)"])
            count(operationID) { $0.bypassed += 1 }
            return try await callUpstream(operationID, upstream, cacheable: { _ in true })
        }
        do {
            return try await cache.getOrLoad(key.key, policy: policy.cachePolicy, as: type, tags: Self.tags(source: source, operation: operation)) {
                let result = try await self.callUpstream(operationID, upstream, cacheable: cacheable)
                guard cacheable(result) else { throw NotCacheable(result: result) }
                return result
            }
        } catch let rejected as NotCacheable<Result> {
            return rejected.result
        }
    }

    /// Runs `upstream`, counting the call and its failures.
    private func callUpstream<Result: Sendable>(
        _ operation: Operation, _ upstream: @Sendable () async throws -> Result, cacheable: (Result) -> Bool
    ) async throws -> Result {
        count(operation) { $0.upstreamCalls += 1 }
        do {
            let result = try await upstream()
            if !cacheable(result) { count(operation) { $0.upstreamErrors += 1 } }
            return result
        } catch {
            count(operation) { $0.upstreamErrors += 1 }
            throw error
        }
    }

    /// A result the predicate rejected, carried out of `getOrLoad` (which stores only what loaders return).
    private struct NotCacheable<Result: Sendable>: Error {
        let result: Result
    }

    // MARK: Invalidation

    /// Drops every cached result of `source` (in every process sharing the server).
    public func invalidate(source: String) async {
        await cache.invalidate(tag: Self.sourceTag(source))
    }

    /// Drops every cached result of `operation` on `source`.
    public func invalidate(source: String, operation: String) async {
        await cache.invalidate(tag: Self.operationTag(source: source, operation: operation))
    }

    /// Drops the cached result under `key` (a key `ConnectorKey` built, without the manager's namespace).
    public func invalidate(key: String) async {
        await cache.delete(key)
    }

    static func sourceTag(_ source: String) -> String { "connector:" + ConnectorKey.escape(source) }

    static func operationTag(source: String, operation: String) -> String {
        "connector:" + ConnectorKey.escape(source) + ":" + ConnectorKey.escape(operation)
    }

    static func tags(source: String, operation: String) -> Set<String> {
        [sourceTag(source), operationTag(source: source, operation: operation)]
    }

    // MARK: Statistics

    /// Calls, upstream calls and errors per operation since this cache was created (this process only).
    public var statistics: ConnectorStatistics {
        let snapshot = counters.withLock { $0 }
        return ConnectorStatistics(operations: snapshot.map { ConnectorStatistics.OperationCounters(source: $0.key.source, operation: $0.key.operation, counters: $0.value) }
            .sorted { ($0.source, $0.operation) < ($1.source, $1.operation) })
    }

    private func count(_ operation: Operation, _ update: (inout ConnectorStatistics.Counters) -> Void) {
        counters.withLock { update(&$0[operation, default: ConnectorStatistics.Counters()]) }
    }
}

/// What a `ConnectorCache` counted, per operation.
public struct ConnectorStatistics: Sendable, Hashable {
    /// The counts of one operation.
    public struct Counters: Sendable, Hashable {
        /// Calls made through the cache.
        public var calls = 0
        /// Calls that reached the upstream.
        public var upstreamCalls = 0
        /// Upstream calls that threw or returned a result that was not cacheable.
        public var upstreamErrors = 0
        /// Calls passed through uncached because a caller-scoped operation named no caller.
        public var bypassed = 0

        /// Calls answered without the upstream (cache hits, and callers that shared another's call).
        public var upstreamCallsAvoided: Int { max(0, calls - upstreamCalls) }
    }

    /// One operation's counts.
    public struct OperationCounters: Sendable, Hashable {
        public let source: String
        public let operation: String
        public let counters: Counters
    }

    /// Every operation called so far, ordered by source then operation.
    public let operations: [OperationCounters]

    /// The sums over all operations.
    public var total: Counters {
        operations.reduce(into: Counters()) {
            $0.calls += $1.counters.calls
            $0.upstreamCalls += $1.counters.upstreamCalls
            $0.upstreamErrors += $1.counters.upstreamErrors
            $0.bypassed += $1.counters.bypassed
        }
    }
}
