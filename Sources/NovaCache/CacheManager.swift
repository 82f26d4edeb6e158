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
        public var url: RedisURL
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
        /// `unix://`); throws when the URL cannot be parsed.
        public init(url: String, namespace: String = "") throws {
            self.init(url: try RedisURL(url), namespace: namespace)
        }
    }

    public let configuration: Configuration
    /// The memory tier (exposed for inspection and benchmarks).
    public let memory: MemoryTier
    /// The remote tier's client.
    public let client: RedisClient
    let logger: Logger
    private let stats: StatsRecorder
    private let flights = SingleFlight<[UInt8]>()
    private let listener: CoherenceListener?
    private let keyPrefix: String
    private let layout: KeyLayout
    /// The circuit and the journal under one lock: "the journal is empty" and "the circuit closes" are
    /// one step, so no write is journalled after the last replay.
    private let state: Mutex<ManagerState>
    /// This process's memory entries by tag, for `invalidate(tag:)` while the remote is away.
    private let localTags: LocalTagIndex
    /// Remote writes sent and not yet answered (`flush` waits for them).
    private let writesInFlight = Atomic<Int>(0)

    private struct ManagerState: Sendable {
        var circuit: RemoteCircuit
        var journal: OutageJournal
        var tasks: [Task<Void, Never>] = []
        var recovery: Task<Void, Never>?
        /// Journal entries taken by the replay running now.
        var replaying = 0
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
        self.configuration = configuration
        self.logger = logger
        let namespace = configuration.namespace
        keyPrefix = namespace.isEmpty || namespace.hasSuffix(":") ? namespace : namespace + ":"
        layout = KeyLayout(prefix: keyPrefix)
        localTags = LocalTagIndex(limit: configuration.memory.maxEntries)
        memory = MemoryTier(configuration: configuration.memory, clock: configuration.clock, maxStaleness: configuration.maxStaleness)
        client = RedisClient(url: configuration.url, pool: configuration.pool, logger: logger)
        stats = StatsRecorder(label: configuration.metricsLabel)
        state = Mutex(ManagerState(
            circuit: RemoteCircuit(firstProbeAfter: configuration.recoveryInterval, maximumProbeInterval: configuration.maxRecoveryInterval),
            journal: OutageJournal(capacity: configuration.maxPendingWrites)))
        listener = configuration.coherence == .disabled ? nil : CoherenceListener(
            url: configuration.url, coherence: configuration.coherence, keyPrefix: keyPrefix, clock: configuration.clock,
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
        if let record = await freshRecord(full, options: options), let value = try? configuration.codec.decode(type, from: record.payload) {
            if let threshold = policy.eagerRefresh {
                refreshEagerly(full, record, threshold: threshold, policy: policy, tags: tags, options: options, loader: loader)
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

    /// Runs `loader` for `full` within the configured timeouts, storing its value; serves the stale memory
    /// copy when the loader fails or is too slow.
    private func load<T: Codable & Sendable>(
        _ full: String, policy: CachePolicy, tags: Set<String>, options: CacheCallOptions, loader: @escaping @Sendable () async throws -> T
    ) async throws -> [UInt8] {
        stats.record(.loaderCall)
        let stale = options.contains(.skipMemory) ? nil : memory.lookup(full)
        let loading = Task { [self] () async throws -> [UInt8] in
            let payload = try configuration.codec.encode(try await loader())
            await store(full, payload, policy: policy, options: options, tags: tags)
            return payload
        }
        let soft = stale == nil ? nil : configuration.loaderSoftTimeout
        let hard = configuration.loaderHardTimeout
        do {
            guard let limit = [soft, hard].compactMap({ $0 }).min() else { return try await loading.value }
            if let payload = try await result(of: loading, within: limit) { return payload }
            if let remaining = hard.map({ $0 - limit }), remaining > .zero, stale == nil || soft == nil,
                let payload = try await result(of: loading, within: remaining) {
                return payload
            }
            // Too slow: the loader finishes in the background and stores its value then.
            Task { [logger] in
                if case .failure(let error) = await loading.result {
                    logger.warning("timed-out loader failed", metadata: ["key": "\(full)", "error": "\(error)"])
                }
            }
            guard let stale else { throw CacheError.loaderTimedOut(key: full, after: hard ?? limit) }
            logger.debug("loader slow; serving the stale value while it finishes", metadata: ["key": "\(full)"])
            stats.record(.staleServed)
            return stale.payload
        } catch let error as CacheError {
            throw error
        } catch {
            stats.record(.loaderFailure)
            if let stale = options.contains(.skipMemory) ? nil : memory.lookup(full) {
                let current = now
                let age = current - stale.freshUntil
                // Fail-safe throttle: the stale value stands in as fresh for a while, so that the
                // failing loader (and this warning) runs once per key per period, not per call.
                let throttle = configuration.failSafeThrottle.wholeMilliseconds
                if throttle > 0 { memory.extendFreshness(full, until: current + throttle) }
                logger.warning("loader failed; serving a stale value", metadata: [
                    "key": "\(full)", "staleForMs": "\(max(0, age))", "error": "\(error)",
                    "retryInMs": "\(throttle)",
                ])
                stats.record(.staleServed)
                return stale.payload
            }
            throw error
        }
    }

    /// Starts a background reload of `full` when `record` is past `threshold` of its TTL (one at a time:
    /// it runs as the key's single flight).
    private func refreshEagerly<T: Codable & Sendable>(
        _ full: String, _ record: MemoryTier.Record, threshold: Double, policy: CachePolicy, tags: Set<String>,
        options: CacheCallOptions, loader: @escaping @Sendable () async throws -> T
    ) {
        guard record.writtenAt > 0, record.expiresAt > record.writtenAt, record.slidingMilliseconds == 0 else { return }
        let due = record.writtenAt + Int64(Double(record.expiresAt - record.writtenAt) * threshold)
        guard now >= due, !flights.isRunning(full) else { return }
        stats.record(.eagerRefresh)
        Task { [self] in
            _ = try? await flights.run(full) { [self] in
                // Another refresh may have stored a newer value meanwhile.
                if let current = memory.lookup(full), current.writtenAt > record.writtenAt { return current.payload }
                return try await load(full, policy: policy, tags: tags, options: options, loader: loader)
            }
        }
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

    /// Stores `value` under `key` in both tiers for `ttl` (nil: no expiry), without naming a policy.
    public func set<T: Encodable>(
        _ key: String, _ value: T, ttl: Duration?, tags: Set<String> = [], options: CacheCallOptions = []
    ) async throws {
        try await set(key, value, policy: CachePolicy(name: "ttl", ttl: ttl), tags: tags, options: options)
    }

    /// Removes every entry tagged `tag` (by `set` or `getOrLoad` in any process) from the remote and from
    /// this memory tier; other processes drop their copies through coherence. During an outage the
    /// invalidation is journalled and replayed like a delete (never over a value written later).
    public func invalidate(tag: String) async {
        for key in localTags.remove(tag) { memory.remove(key) }
        let at = now
        if journalTagInvalidation(tag, at: at) { return }
        let index = layout.tagKey(tag)
        let layout = layout
        let removed = await remote { client -> [String] in
            try await client.pool.withConnection { connection -> [String] in
                for _ in 0..<5 {
                    try await connection.send(RedisCommand("WATCH", .string(index)))
                    let members = (try await connection.send(RedisCommand("ZRANGE", .string(index), 0, -1)).elements ?? []).compactMap(\.string)
                    var commands = [RedisCommand("MULTI")]
                    for start in stride(from: 0, to: members.count, by: 250) {
                        let chunk = members[start..<min(start + 250, members.count)]
                        commands.append(RedisCommand("UNLINK", arguments: chunk.flatMap { [RedisArgument.string($0), .string(layout.metaKey($0))] }))
                    }
                    commands += [RedisCommand("DEL", .string(index)), RedisCommand("EXEC")]
                    let replies = try Self.checked(try await connection.pipeline(commands))
                    if replies.last != .null { return members }
                }
                return []
            }
        }
        guard case .ok(let members) = removed else {
            if case .unavailable = removed { _ = journalTagInvalidation(tag, at: at, force: true) }
            return
        }
        for key in members {
            memory.remove(key)
            await listener?.announce(key: key, using: client)
        }
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
            for pattern in self.layout.patterns(clearing: prefix) {
                let keys = try await client.scanKeys(matching: Self.globEscaped(pattern) + "*")
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

    private func journalClear(prefix: String, at: Int64, force: Bool = false) -> Bool {
        let journalled = state.withLock { state -> Bool in
            guard state.circuit.journalsWrites || force else { return false }
            state.journal.recordClear(prefix: prefix, at: at)
            return true
        }
        if journalled { stats.setPending(pendingCount) }
        return journalled
    }

    private func journalTagInvalidation(_ tag: String, at: Int64, force: Bool = false) -> Bool {
        let journalled = state.withLock { state -> Bool in
            guard state.circuit.journalsWrites || force else { return false }
            state.journal.recordTagInvalidation(tag, at: at)
            return true
        }
        if journalled { stats.setPending(pendingCount) }
        return journalled
    }

    // MARK: Internals: tiers

    private var now: Int64 { configuration.clock.nowMilliseconds() }

    /// Journalled entries not yet on the remote (those a running replay took included).
    private var pendingCount: Int { state.withLock { $0.journal.count + $0.replaying } }

    private func freshRecord(_ full: String, options: CacheCallOptions = []) async -> MemoryTier.Record? {
        let current = now
        if !options.contains(.skipMemory) {
            if let record = memory.lookup(full, now: current), record.isFresh(at: current) {
                stats.record(.memoryHit)
                if record.slidingMilliseconds > 0 { await slide(full, record, now: current) }
                return record
            }
            stats.record(.memoryMiss)
        }
        if options.contains(.skipRemote) { return nil }
        let sequence = listener?.sequence ?? 0
        let replies = await remote { try Self.checked(try await $0.pipeline(RemoteEntry.readCommands(full, layout))) }
        guard case .ok(let values) = replies, let entry = RemoteEntry(value: values[0], meta: values[2]) else {
            if case .ok = replies { stats.record(.remoteMiss) }
            return nil
        }
        stats.record(.remoteHit)
        let remaining = (try? values[1].integer()) ?? -1
        var record = MemoryTier.Record(
            payload: entry.payload, freshUntil: remaining > 0 ? current + remaining : 0, writtenAt: entry.writtenAt,
            slidingMilliseconds: entry.slidingMilliseconds)
        if entry.slidingMilliseconds > 0 {
            record.freshUntil = current + entry.slidingMilliseconds
            record.expiresAt = record.freshUntil
            await touchRemote(full, milliseconds: entry.slidingMilliseconds)
        }
        let stillValid = !(listener?.invalidated(full, since: sequence) ?? false)
        if stillValid, !options.contains(.skipMemory) { memory.store(full, capped(record, now: current)) }
        return record
    }

    /// Restarts a sliding entry's TTL, at most once per 1% of its window (so that hot sessions do not turn
    /// every read into a remote write).
    private func slide(_ full: String, _ record: MemoryTier.Record, now current: Int64) async {
        let target = current + record.slidingMilliseconds
        guard target - record.freshUntil > max(1, record.slidingMilliseconds / 100) else { return }
        memory.refresh(full, freshUntil: target)
        await touchRemote(full, milliseconds: record.slidingMilliseconds)
    }

    private func touchRemote(_ full: String, milliseconds: Int64) async {
        listener?.noteOwnWrite(full)
        let result = await remote { try Self.checked(try await $0.pipeline(RemoteEntry.expireCommands(full, layout, milliseconds: milliseconds))) }
        if case .ok(let replies) = result, (try? replies[0].integer()) == 1 { return }
        listener?.undoOwnWrite(full)
    }

    private func capped(_ record: MemoryTier.Record, now current: Int64) -> MemoryTier.Record {
        guard let cap = configuration.memoryTTL?.wholeMilliseconds else { return record }
        var record = record
        if record.freshUntil == 0 || record.freshUntil > current + cap { record.freshUntil = current + cap }
        return record
    }

    private func store(_ full: String, _ payload: [UInt8], policy: CachePolicy, options: CacheCallOptions = [], tags: Set<String> = []) async {
        let current = now
        var generator = SystemRandomNumberGenerator()
        let ttl = policy.effectiveMilliseconds(using: &generator)
        let expireAt = ttl.map { current + $0 } ?? 0
        let sliding = policy.sliding ? (ttl ?? 0) : 0
        if !options.contains(.skipMemory) {
            memory.store(full, capped(MemoryTier.Record(payload: payload, freshUntil: expireAt, writtenAt: current, slidingMilliseconds: sliding), now: current))
            if !tags.isEmpty { localTags.add(full, to: tags) }
        }
        if options.contains(.skipRemote) { return }
        await writeRemote(full, .set(payload: payload, slidingMilliseconds: sliding, expireAt: expireAt, writtenAt: current, tags: tags.sorted()))
    }

    private func writeRemote(_ full: String, _ write: OutageJournal.Write) async {
        if journal(full, write) { return }
        writesInFlight.add(1, ordering: .relaxed)
        defer { writesInFlight.subtract(1, ordering: .relaxed) }
        listener?.noteOwnWrite(full)
        let format = configuration.storedFormat
        let result = await remote { client -> Bool in
            switch write {
            case .set(let payload, let sliding, let expireAt, let writtenAt, let tags):
                let entry = RemoteEntry(payload: payload, writtenAt: writtenAt, slidingMilliseconds: sliding)
                let current = self.now
                let ttl = expireAt == 0 ? nil : expireAt - current
                _ = try Self.checked(try await client.pipeline(
                    entry.writeCommands(full, self.layout, format: format, ttlMilliseconds: ttl, tags: tags, now: current)))
                return true
            case .delete:
                return try Self.checked(try await client.pipeline(RemoteEntry.deleteCommands(full, self.layout)))[0].integer() > 0
            }
        }
        switch result {
        case .ok(let changed):
            if !changed { listener?.undoOwnWrite(full) }  // nothing was deleted: no invalidation will come
            if changed { await listener?.announce(key: full, using: client) }
        case .unavailable:
            listener?.undoOwnWrite(full)
            _ = journal(full, write, force: true)
        case .failed:
            listener?.undoOwnWrite(full)
        }
    }

    /// While the circuit is open (or `force`: the write just failed to reach the remote), keeps `write` for
    /// replay; false when the remote is in use.
    private func journal(_ full: String, _ write: OutageJournal.Write, force: Bool = false) -> Bool {
        let outcome = state.withLock { state -> OutageJournal.Outcome? in
            guard state.circuit.journalsWrites || force else { return nil }
            return state.journal.record(full, write)
        }
        switch outcome {
        case nil:
            return false
        case .kept:
            stats.setPending(pendingCount)
        case .dropped(let firstTime):
            stats.record(.skippedReplay)
            if firstTime {
                logger.warning("outage write buffer full; further writes are kept in memory only", metadata: ["limit": "\(configuration.maxPendingWrites)"])
            }
        }
        return true
    }

    /// An invalidation from the listener: another writer changed `full`, or the server expired it. An
    /// expiry (the remote's copy was due to expire) leaves the memory copy as a stale value for fail-safe;
    /// any other change drops it.
    private func invalidated(_ full: String) {
        let current = now
        if let record = memory.lookup(full, now: current), record.expiresAt != 0,
            current + Self.expiryTolerance >= record.expiresAt {
            memory.markStale(full, at: current)
            return
        }
        if memory.remove(full) { stats.record(.invalidation) }
    }

    /// How early before its expiry time an invalidation still counts as the expiry (clock skew between
    /// this host and the server).
    static let expiryTolerance: Int64 = 250

    // MARK: Internals: the remote and its outages

    private enum RemoteResult<R: Sendable>: Sendable {
        case ok(R)
        /// The remote could not be reached, refused the configuration, or the circuit is open.
        case unavailable
        /// The server answered with an error about the command (WRONGTYPE, OOM …).
        case failed(RedisError)
    }

    private func remote<R: Sendable>(_ body: (RedisClient) async throws -> R) async -> RemoteResult<R> {
        guard state.withLock({ $0.circuit.allowsRemoteCalls }) else {
            stats.record(.remoteSkipped)
            return .unavailable
        }
        do {
            let result = try await body(client)
            state.withLock { $0.circuit.succeeded() }
            return .ok(result)
        } catch let error as RedisError {
            stats.record(.remoteError)
            if let failure = RemoteFailure(reply: error) {
                circuitFailed(failure)
                return .unavailable
            }
            logger.debug("remote error reply", metadata: ["error": "\(error)"])
            return .failed(error)
        } catch {
            stats.record(.remoteError)
            circuitFailed(.unreachable("\(error)"))
            return .unavailable
        }
    }

    /// `replies`, or the first error reply among them thrown as `RedisError`.
    private static func checked(_ replies: [RESPValue]) throws -> [RESPValue] {
        for reply in replies { if case .error(let text) = reply { throw RedisError(text) } }
        return replies
    }

    private func probeAtStart() async {
        if case .ok = await remote({ try await $0.send(RedisCommand("DBSIZE")) }) {
            logger.debug("remote cache reachable", metadata: ["url": "\(configuration.url)"])
        }
    }

    private func circuitFailed(_ failure: RemoteFailure) {
        var generator = SystemRandomNumberGenerator()
        let current = now
        let actions = state.withLock { $0.circuit.failed(failure, at: current, using: &generator) }
        perform(actions)
    }

    private func perform(_ actions: [RemoteCircuit.Action]) {
        for action in actions {
            switch action {
            case .startRecovery:
                let task = Task { [weak self] in await self?.recover() } as Task<Void, Never>
                let kept = state.withLock { state -> Bool in
                    guard state.circuit.phase != .shutDown else { return false }
                    state.recovery = task
                    return true
                }
                if !kept { task.cancel() }
                stats.setFallback(true)
            case .warnUnreachable(let reason):
                logger.warning("remote cache unreachable; serving from the memory tier until it returns", metadata: [
                    "url": "\(configuration.url)", "reason": "\(reason)",
                ])
            case .reportMisconfigured(let reason):
                stats.setMisconfigured(true)
                logger.error("remote cache refuses this configuration; serving from the memory tier until it is fixed", metadata: [
                    "url": "\(configuration.url)", "reason": "\(reason)",
                ])
            case .announceRecovery(let outage):
                stats.setFallback(false)
                stats.setMisconfigured(false)
                stats.setPending(0)
                let snapshot = stats.snapshot
                logger.notice("remote cache recovered; normal service resumed", metadata: [
                    "url": "\(configuration.url)", "outageMs": "\(outage)",
                    "replayed": "\(snapshot.replayedWrites)", "skipped": "\(snapshot.skippedReplays)",
                ])
            }
        }
    }

    /// Probes the remote on the circuit's schedule with a connection of its own (the pool's reconnect
    /// backoff does not delay it); when it answers, replays the journal until it is empty and closes the
    /// circuit.
    private func recover() async {
        var generator = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            // Sleeps in short steps: `flush` may move the next probe forward.
            let wait = state.withLock { $0.circuit.nextProbeAt } - now
            if wait > 0 {
                try? await Task.sleep(for: .milliseconds(min(wait, 50)))
                continue
            }
            if let failure = await probe() {
                let current = now
                perform(state.withLock { $0.circuit.probeFailed(failure, at: current, using: &generator) })
                continue
            }
            guard state.withLock({ $0.circuit.probeSucceeded() }) else { return }
            client.pool.resetBackoff()
            logger.notice("remote cache reachable again; replaying outage writes", metadata: [
                "url": "\(configuration.url)", "writes": "\(pendingCount)",
            ])
            if await replayUntilEmpty(using: &generator) { return }
        }
    }

    /// Replays until the journal stays empty (true: the circuit closed) or the remote fails again.
    private func replayUntilEmpty(using generator: inout SystemRandomNumberGenerator) async -> Bool {
        let replay = JournalReplay(client: client, format: configuration.storedFormat, layout: layout)
        while !Task.isCancelled {
            let batch = state.withLock { state in
                let batch = state.journal.take()
                state.replaying = batch.writes.count + batch.clears.count + batch.tagInvalidations.count
                return batch
            }
            let report = await replay.run(batch, now: now)
            stats.record(.replayed, count: report.replayed)
            stats.record(.skippedReplay, count: report.skipped)
            // Other processes may have changed anything meanwhile: keep only what the remote now holds from
            // this process and what is still to be replayed.
            let pending = state.withLock { state in
                if report.error != nil { state.journal.restore(report.remaining) }
                state.replaying = 0
                return Set(state.journal.writes.keys)
            }
            memory.removeAll(except: pending.union(report.stored))
            if let error = report.error {
                let failure = (error as? RedisError).flatMap { RemoteFailure(reply: $0) } ?? .unreachable("\(error)")
                if case .unreachable = failure { logger.warning("replay interrupted; will retry", metadata: ["error": "\(error)"]) }
                let current = now
                perform(state.withLock { $0.circuit.probeFailed(failure, at: current, using: &generator) })
                stats.setPending(pendingCount)
                return false
            }
            let current = now
            let actions = state.withLock { state in state.circuit.replayFinished(journalEmpty: state.journal.isEmpty, at: current) }
            if !actions.isEmpty {
                perform(actions)
                return true
            }
        }
        return false
    }

    /// Nil when the remote answers a keyspace command on a fresh connection (handshake included: AUTH,
    /// SELECT), else why not. DBSIZE, unlike PING, is refused while the server loads its data.
    private func probe() async -> RemoteFailure? {
        do {
            let connection = try await RedisConnection.connect(to: configuration.url)
            defer { connection.close() }
            _ = try await connection.send(RedisCommand("DBSIZE"))
            return nil
        } catch let error as RedisError {
            return RemoteFailure(reply: error)
        } catch {
            return .unreachable("\(error)")
        }
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
