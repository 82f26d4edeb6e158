public import Logging
public import NovaClient
import NovaRESP
import Synchronization

/// A two-tier cache: an in-process memory tier in front of a Redis-protocol server (nova-cache-server or
/// Redis), that keeps answering from memory while the server is down.
///
/// - Reads look in memory, then in the remote tier (filling memory). Writes go to both.
/// - When the remote cannot be reached, one warning is logged (URL without password), a circuit opens so
///   that calls skip the remote at once, and writes and deletes are kept for replay. A background task
///   probes the remote every `recoveryInterval` (backing off to `maxRecoveryInterval`); when it answers, the
///   outage writes are replayed (latest per key, expired ones skipped, never over a newer remote value),
///   the memory tier is reconciled and normal service resumes.
/// - A server that answers but refuses the configuration (wrong or missing password, no permission for
///   the keys, a database out of range) is reported as an error once and in `remoteStatus`, and handled
///   like an outage until it accepts.
/// - Coherence: memory-tier entries are dropped when another process changes the key, through CLIENT
///   TRACKING (BCAST, prefixed by the namespace) on RESP3 servers, else through a pub/sub channel. The
///   server's invalidation on expiry keeps the (now stale) copy for fail-safe reads.
/// - Values are stored as the codec's bytes exactly (plain JSON by default), readable and writable by
///   other languages; see `StoredFormat`.
/// - No method throws because the remote is down; only encoding/decoding and loader errors are thrown.
///
/// ```swift
/// let cache = try CacheManager(url: "redis://localhost:6379/1", namespace: "crm")
/// let customers = try await cache.getOrLoad("search:\(query)", policy: .customerSearch) {
///     try await crm.search(query)
/// }
/// ```
public final class CacheManager: Sendable {
    /// What keeps memory tiers of several processes coherent.
    public enum Coherence: Sendable, Hashable {
        /// CLIENT TRACKING when the server speaks RESP3 and supports it, else pub/sub.
        case automatic
        case tracking
        case pubSub
        /// Nothing: memory entries live until their TTL (use `memoryTTL` to bound staleness).
        case disabled
    }

    /// Everything a manager can be told.
    public struct Configuration: Sendable {
        /// The server; on a cluster, the first seed node (credentials, TLS and timeouts for every node).
        public var url: RedisURL
        /// Set for a Redis/Valkey Cluster: its seeds and routing (nil: one server at `url`). Keys are
        /// spread over the cluster's primaries; the memory tier, fallback, replay, single-flight and
        /// coherence (tracking on every primary) work as with one server. `remoteTimeout` bounds how long a
        /// command waits for a failover before the manager falls back to memory.
        public var cluster: RedisClusterClient.Configuration?
        /// Prefix of every key (`crm` → `crm:key`); empty for none.
        public var namespace: String
        /// The policy of writes that name none.
        public var defaultPolicy = CachePolicy(name: "default", ttl: .seconds(3600))
        public var memory = MemoryTier.Configuration()
        /// The longest a memory entry is trusted without the remote confirming it; nil: its TTL.
        public var memoryTTL: Duration? = nil
        /// How long past its TTL a value may still be served by `getOrLoad` when the loader fails.
        public var maxStaleness: Duration = .seconds(3600)
        /// After a failing loader, how long the stale value is served as if fresh without calling the
        /// loader again (and without another warning); `.zero` retries the loader on every call. The value
        /// is never kept beyond its TTL plus `maxStaleness`.
        public var failSafeThrottle: Duration = .seconds(30)
        /// Each remote command's timeout; also the connect timeout.
        public var remoteTimeout: Duration = .milliseconds(500)
        /// The first wait between recovery probes; doubles (with jitter) up to `maxRecoveryInterval`.
        public var recoveryInterval: Duration = .milliseconds(200)
        /// The longest wait between recovery probes: a returning server is noticed within this interval
        /// plus one `remoteTimeout`. Also caps the connection pool's reconnect backoff.
        public var maxRecoveryInterval: Duration = .seconds(2)
        public var coherence = Coherence.automatic
        /// How values are laid out on the remote (default: the codec's bytes exactly).
        public var storedFormat = StoredFormat.plain
        public var pool = RedisConnectionPool.Configuration(minimumConnections: 1, maximumConnections: 4)
        public var codec: any CacheCodec = JSONCacheCodec()
        public var clock: any CacheClock = SystemCacheClock()
        /// The most outage writes kept for replay; later ones are dropped (and counted as skipped).
        public var maxPendingWrites = 100_000
        /// The label of this cache in metrics.
        public var metricsLabel = "default"
        /// With a stale value at hand, how long `getOrLoad` waits for its loader before serving the stale
        /// value (the loader finishes in the background and stores its value). Nil: as long as it takes.
        public var loaderSoftTimeout: Duration? = nil
        /// The longest `getOrLoad` waits for its loader: then it serves the stale value if there is one,
        /// else throws `CacheError.loaderTimedOut` (the loader still finishes in the background). Nil: no limit.
        public var loaderHardTimeout: Duration? = nil
        /// How long `run()` (the service's graceful shutdown) waits for writes in flight and the outage
        /// journal's replay before it closes the connections.
        public var shutdownFlushTimeout: Duration = .seconds(5)

        public init(url: RedisURL, namespace: String = "") {
            self.url = url
            self.namespace = namespace
        }

        /// A configuration for a URL (`redis://[[user]:password@]host[:port][/db]`, `rediss://`,
        /// `unix://`); a URL naming several hosts (`redis://h1:7000,h2:7000`) is a cluster's seeds. Throws
        /// when the URL cannot be parsed.
        public init(url: String, namespace: String = "") throws {
            if Self.namesSeveralHosts(url) {
                let cluster = try RedisClusterClient.Configuration(url)
                self.init(cluster: cluster, namespace: namespace)
            } else {
                self.init(url: try RedisURL(url), namespace: namespace)
            }
        }

        /// A configuration for a Redis/Valkey Cluster.
        public init(cluster: RedisClusterClient.Configuration, namespace: String = "") {
            self.init(url: cluster.seeds.first ?? RedisURL(), namespace: namespace)
            self.cluster = cluster
        }

        /// Whether the authority part of a URL lists several hosts.
        static func namesSeveralHosts(_ url: String) -> Bool {
            guard let schemeEnd = url.range(of: "://") else { return false }
            let rest = url[schemeEnd.upperBound...]
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            return authority.split(separator: "@").last?.contains(",") ?? false
        }
    }

    public let configuration: Configuration
    /// The memory tier (exposed for inspection and benchmarks).
    public let memory: MemoryTier
    /// The remote tier's client: a `RedisClient`, or a `RedisClusterClient` for a cluster.
    public let client: any RedisCommandClient
    let logger: Logger
    let stats: StatsRecorder
    let flights = SingleFlight<[UInt8]>()
    let listener: CoherenceListener?
    let keyPrefix: String
    let layout: KeyLayout
    /// The circuit and the journal under one lock: "the journal is empty" and "the circuit closes" are
    /// one step, so no write is journalled after the last replay.
    let state: Mutex<ManagerState>
    /// This process's memory entries by tag, for `invalidate(tag:)` while the remote is away.
    let localTags: LocalTagIndex
    /// Remote writes sent and not yet answered (`flush` waits for them).
    let writesInFlight = Atomic<Int>(0)

    struct ManagerState: Sendable {
        var circuit: RemoteCircuit
        var journal: OutageJournal
        var tasks: [Task<Void, Never>] = []
        var recovery: Task<Void, Never>?
        /// Journal entries taken by the replay running now.
        var replaying = 0
        /// Keys whose memory copy is being checked against the remote after an echo of our own write;
        /// true when another echo came meanwhile (the check then runs once more).
        var verifying: [String: Bool] = [:]
    }

    /// A manager for `configuration`; connects in the background and never fails because the remote is
    /// unreachable.
    public init(configuration: Configuration, logger: Logger = Logger(label: "nova.cache")) {
        var configuration = configuration
        configuration.url.commandTimeout = configuration.remoteTimeout
        configuration.url.connectTimeout = configuration.remoteTimeout
        if configuration.maxRecoveryInterval < configuration.pool.backoff.maximum {
            configuration.pool.backoff.maximum = configuration.maxRecoveryInterval
        }
        if var cluster = configuration.cluster {
            for index in cluster.seeds.indices {
                cluster.seeds[index].commandTimeout = configuration.remoteTimeout
                cluster.seeds[index].connectTimeout = configuration.remoteTimeout
            }
            cluster.pool = configuration.pool
            // A command waits for a failover at most this long; then the manager serves from memory.
            cluster.retryTimeout = min(cluster.retryTimeout, max(configuration.remoteTimeout, configuration.maxRecoveryInterval))
            configuration.cluster = cluster
            configuration.url = cluster.seeds.first ?? configuration.url
        }
        self.configuration = configuration
        self.logger = logger
        let namespace = configuration.namespace
        keyPrefix = namespace.isEmpty || namespace.hasSuffix(":") ? namespace : namespace + ":"
        layout = KeyLayout(prefix: keyPrefix, slotTagged: configuration.cluster != nil)
        localTags = LocalTagIndex(limit: configuration.memory.maxEntries)
        memory = MemoryTier(configuration: configuration.memory, clock: configuration.clock, maxStaleness: configuration.maxStaleness)
        if let cluster = configuration.cluster {
            client = RedisClusterClient(configuration: cluster, logger: logger)
        } else {
            client = RedisClient(url: configuration.url, pool: configuration.pool, logger: logger)
        }
        stats = StatsRecorder(label: configuration.metricsLabel)
        state = Mutex(ManagerState(
            circuit: RemoteCircuit(firstProbeAfter: configuration.recoveryInterval, maximumProbeInterval: configuration.maxRecoveryInterval),
            journal: OutageJournal(capacity: configuration.maxPendingWrites)))
        listener = configuration.coherence == .disabled ? nil : CoherenceListener(
            url: configuration.url, cluster: client as? RedisClusterClient, coherence: configuration.coherence, keyPrefix: keyPrefix, clock: configuration.clock,
            backoff: Backoff(base: configuration.recoveryInterval, maximum: configuration.maxRecoveryInterval), logger: logger)
        var tasks: [Task<Void, Never>] = [Task { [weak self] in await self?.probeAtStart() }]
        let recorder = stats
        tasks.append(Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                recorder.publishMetrics()
            }
        })
        if let listener {
            let events = CoherenceListener.Events(
                keyInvalidated: { [weak self] key in self?.invalidated(key) },
                ownWriteEchoed: { [weak self] key in self?.ownWriteEchoed(key) },
                prefixInvalidated: { [weak self] prefix in
                    self?.memory.removeAll(prefix: prefix)
                    self?.stats.record(.invalidation)
                },
                connectionLost: { [weak self] in self?.circuitFailed(.unreachable("invalidation connection lost")) },
                connectFailed: { [weak self] failure in if let failure { self?.circuitFailed(failure) } })
            tasks.append(Task { await listener.run(events) })
        }
        state.withLock { $0.tasks = tasks }
    }

    /// A manager for a URL (`redis://[[user]:password@]host[:port][/db]`, `rediss://`, `unix://`).
    public convenience init(url: String, namespace: String = "", logger: Logger = Logger(label: "nova.cache")) throws {
        self.init(configuration: try Configuration(url: url, namespace: namespace), logger: logger)
    }

    /// A manager for `REDIS_URL`, else `redis://127.0.0.1:6379/0`.
    public convenience init(namespace: String = "", logger: Logger = Logger(label: "nova.cache")) throws {
        self.init(configuration: Configuration(url: try RedisURL.fromEnvironment(), namespace: namespace), logger: logger)
    }

    /// Stops the background tasks and closes the connections.
    public func shutdown() {
        let tasks = state.withLock { state in
            state.circuit.shutDown()
            defer { state.tasks = []; state.recovery = nil }
            return state.tasks + (state.recovery.map { [$0] } ?? [])
        }
        for task in tasks { task.cancel() }
        stats.publishMetrics()
        listener?.stop()
        client.shutdown()
    }

    /// Waits (up to `timeout`) until the remote has been tried once and, when it is up, the invalidation
    /// listener is in place; returns what was found. Optional: the manager works without it, but an
    /// application that cannot live with `.misconfigured` should check.
    @discardableResult
    public func waitUntilReady(timeout: Duration = .seconds(2)) async -> RemoteStatus {
        let deadline = ContinuousClock.now + timeout
        while true {
            let status = remoteStatus
            switch status {
            case .available where listener?.isReady ?? true: return status
            case .unavailable, .misconfigured, .shutDown: return status
            default: break
            }
            if ContinuousClock.now >= deadline { return status }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// The remote's health now: available, unavailable (an outage: memory answers), misconfigured (the
    /// server refuses the password, database or permissions; logged as an error once) …
    public var remoteStatus: RemoteStatus { state.withLock { $0.circuit.status } }

    /// Whether the remote is in use (false during an outage, while misconfigured and until first reached).
    public var isRemoteAvailable: Bool { state.withLock { $0.circuit.allowsRemoteCalls } }

    /// Counters since start.
    public var statistics: CacheStats {
        var snapshot = stats.snapshot
        snapshot.memoryEntries = memory.count
        snapshot.memoryBytes = memory.bytes
        snapshot.memoryEvictions = memory.evictions
        return snapshot
    }

    /// The key as stored: the namespace prefix, then `key`.
    public func storedKey(_ key: String) -> String { keyPrefix + key }

    // MARK: Reading

    /// The value under `key`, decoded; nil when absent in both tiers (or the remote is down and memory has
    /// no fresh copy). `options` can bypass a tier.
    public func get<T: Decodable>(_ key: String, as type: T.Type = T.self, options: CacheCallOptions = []) async throws -> T? {
        if options.isEmpty {
            guard let value = await getValue(key) else { return nil }
            return try configuration.codec.decode(type, from: value.bytes)
        }
        guard let record = await freshRecord(storedKey(key), options: options) else { return nil }
        return try configuration.codec.decode(type, from: record.payload)
    }

    /// The value under `key`, decoded; nil when absent in both tiers. For `Sendable` types the memory tier
    /// keeps the decoded value beside the bytes: a later read as the same type returns it without decoding
    /// (a memory hit in about the time of a byte hit). A value type is copied out as usual; a class
    /// instance is shared by every reader of the key, so it should be immutable.
    @inlinable
    nonisolated(nonsending) public func get<T: Decodable & Sendable>(_ key: String, as type: T.Type = T.self, options: CacheCallOptions = []) async throws -> T? {
        // Inlinable so that the caller's specialisation makes the typed hit cost no type-metadata lookups.
        if options.isEmpty, let hit = typedMemoryHit(key, type: ObjectIdentifier(type)) {
            return unsafeDowncast(hit.box, to: DecodedBox<T>.self).value
        }
        return try await getDecoding(key, as: type, options: options)
    }

    /// A typed memory hit for `key` (counted), or nil.
    @usableFromInline
    func typedMemoryHit(_ key: String, type: ObjectIdentifier) -> MemoryTier.DecodedHit? {
        guard let hit = memory.decodedHit(prefix: keyPrefix, key: key, now: now, type: type) else { return nil }
        stats.record(.memoryHit)
        return hit
    }

    /// The typed read without a kept decoded value: the bytes, decoded, and the decoding kept.
    @usableFromInline
    func getDecoding<T: Decodable & Sendable>(_ key: String, as type: T.Type, options: CacheCallOptions) async throws -> T? {
        guard options.isEmpty else {
            guard let record = await freshRecord(storedKey(key), options: options) else { return nil }
            return try configuration.codec.decode(type, from: record.payload)
        }
        guard let value = await getValue(key) else { return nil }
        let decoded = try configuration.codec.decode(type, from: value.bytes)
        if value.slidingMilliseconds == 0 { memory.keep(decoded: decoded, for: storedKey(key), decodedFrom: value) }
        return decoded
    }

    /// The bytes under `key` without a copy when the memory tier has them (the fastest read); a remote hit
    /// is copied in.
    nonisolated(nonsending) public func getValue(_ key: String) async -> MemoryTier.CachedValue? {
        let current = now
        if let value = memory.value(prefix: keyPrefix, key: key, now: current), value.isFresh(at: current),
            value.slidingMilliseconds == 0 {
            stats.record(.memoryHit)
            return value
        }
        // Sliding entries and misses take the general path (it restarts TTLs and asks the remote).
        return await freshRecord(storedKey(key)).map { MemoryTier.CachedValue($0) }
    }

    /// The raw bytes under `key`.
    public func getBytes(_ key: String) async -> [UInt8]? {
        await getValue(key)?.bytes
    }

    /// Whether `key` exists (in memory, fresh, or on the remote).
    public func exists(_ key: String) async -> Bool {
        let full = storedKey(key)
        if let record = memory.lookup(full), record.isFresh(at: now) { return true }
        if case .ok(let count) = await remote({ try await $0.exists(.string(full)) }) {
            return count > 0
        }
        return false
    }

    /// How long `key` has left.
    public func ttl(_ key: String) async -> RedisClient.TimeToLive {
        let full = storedKey(key)
        if case .ok(let remaining) = await remote({ try await $0.ttl(.string(full)) }) { return remaining }
        let current = now
        guard let record = memory.lookup(full), record.isFresh(at: current) else { return .missing }
        return record.freshUntil == 0 ? .persistent : .expiresIn(.milliseconds(record.freshUntil - current))
    }

    /// The value under `key`; when absent, the result of `loader`, stored with `policy`.
    ///
    /// - Single flight: concurrent callers for one missing key share one loader run; a caller that arrives
    ///   just after a run stored the value takes it rather than loading again.
    /// - Fail-safe: when the loader throws and a value that expired less than `maxStaleness` ago is still
    ///   in memory, that value is returned and a warning logged; for `failSafeThrottle` after that the stale
    ///   value is served without calling the loader. Otherwise the loader's error is thrown.
    /// - Timeouts: with a stale value at hand, a loader slower than `loaderSoftTimeout` is left to finish in
    ///   the background (it stores its value when it ends) and the stale value is returned; after
    ///   `loaderHardTimeout` the call returns the stale value or throws `CacheError.loaderTimedOut`.
    /// - Eager refresh: with `policy.eagerRefresh`, a hit late in the value's TTL starts a background reload.
    public func getOrLoad<T: Codable & Sendable>(
        _ key: String, policy: CachePolicy? = nil, as type: T.Type = T.self, tags: Set<String> = [], options: CacheCallOptions = [],
        loader: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let full = storedKey(key)
        let policy = policy ?? configuration.defaultPolicy
        if options.isEmpty {
            // The typed memory hit, then a byte hit (memory or remote) decoded and kept for the next one.
            if let hit = typedMemoryHit(key, type: ObjectIdentifier(type)) {
                if let threshold = policy.eagerRefresh {
                    refreshEagerly(full, writtenAt: hit.writtenAt, expiresAt: hit.expiresAt, sliding: 0,
                                   threshold: threshold, policy: policy, tags: tags, options: options, loader: loader)
                }
                return unsafeDowncast(hit.box, to: DecodedBox<T>.self).value
            }
            if let cached = await getValue(key), let value = try? configuration.codec.decode(type, from: cached.bytes) {
                if cached.slidingMilliseconds == 0 { memory.keep(decoded: value, for: full, decodedFrom: cached) }
                if let threshold = policy.eagerRefresh {
                    refreshEagerly(full, writtenAt: cached.writtenAt, expiresAt: cached.expiresAt, sliding: cached.slidingMilliseconds,
                                   threshold: threshold, policy: policy, tags: tags, options: options, loader: loader)
                }
                return value
            }
        } else if let record = await freshRecord(full, options: options), let value = try? configuration.codec.decode(type, from: record.payload) {
            if let threshold = policy.eagerRefresh {
                refreshEagerly(full, writtenAt: record.writtenAt, expiresAt: record.expiresAt, sliding: record.slidingMilliseconds,
                               threshold: threshold, policy: policy, tags: tags, options: options, loader: loader)
            }
            return value
        }
        let payload = try await flights.run(full) { [self] in
            // A caller that missed just before the previous flight for this key stored its value and
            // ended starts a flight of its own: it takes that value instead of loading again.
            if !options.contains(.skipMemory), let record = memory.lookup(full), record.isFresh(at: now) { return record.payload }
            return try await load(full, policy: policy, tags: tags, options: options, loader: loader)
        }
        return try configuration.codec.decode(type, from: payload)
    }

    // MARK: Writing

    /// Stores `value` under `key` in both tiers with `policy` (the default policy when nil).
    /// `tags` name groups the entry belongs to, for `invalidate(tag:)`.
    public func set<T: Encodable>(
        _ key: String, _ value: T, policy: CachePolicy? = nil, tags: Set<String> = [], options: CacheCallOptions = []
    ) async throws {
        let payload = try configuration.codec.encode(value)
        await store(storedKey(key), payload, policy: policy ?? configuration.defaultPolicy, options: options, tags: tags)
    }

    /// Stores `value` under `key` in both tiers with `policy`; the memory tier also keeps `value` itself, so
    /// typed reads of the key return it without decoding (as written: a codec that loses precision, such
    /// as ISO 8601 dates, gives other processes the rounded value).
    public func set<T: Encodable & Sendable>(
        _ key: String, _ value: T, policy: CachePolicy? = nil, tags: Set<String> = [], options: CacheCallOptions = []
    ) async throws {
        let payload = try configuration.codec.encode(value)
        await store(storedKey(key), payload, policy: policy ?? configuration.defaultPolicy, options: options, tags: tags, decoded: DecodedBox(value))
    }

    /// Stores `value` under `key` in both tiers for `ttl` (nil: no expiry), without naming a policy; the
    /// memory tier keeps `value` itself for typed reads.
    public func set<T: Encodable & Sendable>(
        _ key: String, _ value: T, ttl: Duration?, tags: Set<String> = [], options: CacheCallOptions = []
    ) async throws {
        try await set(key, value, policy: CachePolicy(name: "ttl", ttl: ttl), tags: tags, options: options)
    }

    /// Stores `value` under `key` in both tiers for `ttl` (nil: no expiry), without naming a policy.
    public func set<T: Encodable>(
        _ key: String, _ value: T, ttl: Duration?, tags: Set<String> = [], options: CacheCallOptions = []
    ) async throws {
        try await set(key, value, policy: CachePolicy(name: "ttl", ttl: ttl), tags: tags, options: options)
    }

    /// Stores raw bytes.
    public func setBytes(_ key: String, _ bytes: [UInt8], policy: CachePolicy? = nil) async {
        await store(storedKey(key), bytes, policy: policy ?? configuration.defaultPolicy)
    }

    /// Removes `key` from both tiers (or the one `options` leaves).
    public func delete(_ key: String, options: CacheCallOptions = []) async {
        let full = storedKey(key)
        if !options.contains(.skipMemory) { memory.remove(full) }
        if !options.contains(.skipRemote) { await writeRemote(full, .delete(at: now)) }
    }

    /// Removes every key of `namespace` (a sub-namespace of this manager's), or all of this manager's keys
    /// when nil. On the remote this is SCAN + UNLINK, never KEYS or FLUSHDB.
    public func clear(namespace: String? = nil) async {
        var prefix = keyPrefix
        if let namespace, !namespace.isEmpty { prefix += namespace.hasSuffix(":") ? namespace : namespace + ":" }
        memory.removeAll(prefix: prefix)
        let at = now
        if journalClear(prefix: prefix, at: at) { return }
        let removed = await remote { client -> Int in
            var removed = 0
            for pattern in self.layout.scanPatterns(clearing: prefix) {
                let keys = try await client.scanKeys(matching: pattern).filter { self.layout.clears(String(buffer: $0), prefix: prefix) }
                for start in stride(from: 0, to: keys.count, by: 500) {
                    removed += try await client.unlink(keys[start..<min(start + 500, keys.count)].map { .buffer($0) })
                }
            }
            return removed
        }
        switch removed {
        case .ok: await listener?.announce(prefix: prefix, using: client)
        case .unavailable: _ = journalClear(prefix: prefix, at: at, force: true)
        case .failed: break
        }
    }

    func journalClear(prefix: String, at: Int64, force: Bool = false) -> Bool {
        let journalled = state.withLock { state -> Bool in
            guard state.circuit.journalsWrites || force else { return false }
            state.journal.recordClear(prefix: prefix, at: at)
            return true
        }
        if journalled { stats.setPending(pendingCount) }
        return journalled
    }

    /// Waits (up to `timeout`) until the writes in flight are answered and the outage journal is replayed
    /// (probing at once if the remote was down); returns the writes the remote still lacks (0: all there).
    @discardableResult
    public func flush(timeout: Duration = .seconds(5)) async -> Int {
        let deadline = ContinuousClock.now + timeout
        let current = now
        state.withLock { $0.circuit.probeSoon(at: current) }
        while true {
            let left = pendingCount + writesInFlight.load(ordering: .relaxed)
            if left == 0 || ContinuousClock.now >= deadline || Task.isCancelled || remoteStatus == .shutDown { return left }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    static func globEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
