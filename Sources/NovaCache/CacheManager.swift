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
///   probes the remote; when it answers, the outage writes are replayed (latest per key, expired ones
///   skipped, never over a newer remote value), the memory tier is reconciled and normal service resumes.
/// - Coherence: memory-tier entries are dropped when another process changes the key, through CLIENT
///   TRACKING (BCAST, prefixed by the namespace) on RESP3 servers, else through a pub/sub channel.
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
        public var maxRecoveryInterval: Duration = .seconds(2)
        public var coherence = Coherence.automatic
        public var pool = RedisConnectionPool.Configuration(minimumConnections: 1, maximumConnections: 4)
        public var codec: any CacheCodec = JSONCacheCodec()
        public var clock: any CacheClock = SystemCacheClock()
        /// The most outage writes kept for replay; later ones are dropped (and counted as skipped).
        public var maxPendingWrites = 100_000
        /// The label of this cache in metrics.
        public var metricsLabel = "default"

        public init(url: RedisURL, namespace: String = "") {
            self.url = url
            self.namespace = namespace
        }
    }

    public let configuration: Configuration
    /// The memory tier (exposed for inspection and benchmarks).
    public let memory: MemoryTier
    /// The remote tier's client.
    public let client: RedisClient
    private let logger: Logger
    private let stats: StatsRecorder
    private let flights = SingleFlight<[UInt8]>()
    private let state = Mutex(ManagerState())
    private let keyPrefix: String
    private let instanceID = UInt64.random(in: 1...UInt64.max)
    static let invalidationChannel = "__novacache__:invalidate"

    private enum PendingWrite: Sendable {
        case set(envelope: [UInt8], expireAt: Int64, writtenAt: Int64)
        case delete(at: Int64)

        var time: Int64 {
            switch self {
            case .set(_, _, let writtenAt): return writtenAt
            case .delete(let at): return at
            }
        }
    }

    private enum ActiveCoherence: Sendable { case none, tracking, pubSub }

    private struct ManagerState: Sendable {
        var outage = false
        var outbox: [String: PendingWrite] = [:]
        var clears: [(prefix: String, at: Int64)] = []
        var droppedWarningLogged = false
        /// Own remote writes whose tracking invalidation has not arrived yet (key → count, last time).
        var ownWrites: [String: (count: Int, at: Int64)] = [:]
        /// Counts invalidations; `invalidatedAt` remembers the count at each key's last one and `flushedAt`
        /// at the last whole-namespace one, so that a remote read racing an invalidation of its key does not
        /// put the old value back into memory.
        var invalidationSequence: UInt64 = 0
        var invalidatedAt: [String: UInt64] = [:]
        var flushedAt: UInt64 = 0

        mutating func noteInvalidation(of key: String?) {
            invalidationSequence &+= 1
            if let key, invalidatedAt.count < 10_000 {
                invalidatedAt[key] = invalidationSequence
            } else {
                invalidatedAt = [:]
                flushedAt = invalidationSequence
            }
        }

        func invalidated(_ key: String, since sequence: UInt64) -> Bool {
            flushedAt > sequence || (invalidatedAt[key] ?? 0) > sequence
        }
        var coherence = ActiveCoherence.none
        var listenerConnection: RedisConnection?
        var tasks: [Task<Void, Never>] = []
        var recovery: Task<Void, Never>?
        var listenerReady = false
        var shutDown = false
    }

    /// A manager for `configuration`; connects in the background and never fails because the remote is
    /// unreachable.
    public init(configuration: Configuration, logger: Logger = Logger(label: "nova.cache")) {
        var configuration = configuration
        configuration.url.commandTimeout = configuration.remoteTimeout
        configuration.url.connectTimeout = configuration.remoteTimeout
        self.configuration = configuration
        self.logger = logger
        let namespace = configuration.namespace
        keyPrefix = namespace.isEmpty || namespace.hasSuffix(":") ? namespace : namespace + ":"
        memory = MemoryTier(configuration: configuration.memory, clock: configuration.clock, maxStaleness: configuration.maxStaleness)
        client = RedisClient(url: configuration.url, pool: configuration.pool, logger: logger)
        stats = StatsRecorder(label: configuration.metricsLabel)
        var tasks: [Task<Void, Never>] = [Task { [weak self] in await self?.probeAtStart() }]
        let recorder = stats
        tasks.append(Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                recorder.publishMetrics()
            }
        })
        if configuration.coherence != .disabled {
            tasks.append(Task { [weak self] in await self?.runListener() })
        }
        state.withLock { $0.tasks = tasks }
    }

    /// A manager for a URL (`redis://[[user]:password@]host[:port][/db]`, `rediss://`, `unix://`).
    public convenience init(url: String, namespace: String = "", logger: Logger = Logger(label: "nova.cache")) throws {
        self.init(configuration: Configuration(url: try RedisURL(url), namespace: namespace), logger: logger)
    }

    /// A manager for `REDIS_URL`, else `redis://127.0.0.1:6379/0`.
    public convenience init(namespace: String = "", logger: Logger = Logger(label: "nova.cache")) throws {
        self.init(configuration: Configuration(url: try RedisURL.fromEnvironment(), namespace: namespace), logger: logger)
    }

    /// Stops the background tasks and closes the connections.
    public func shutdown() {
        let (tasks, listener) = state.withLock { state in
            state.shutDown = true
            defer { state.tasks = []; state.recovery = nil }
            return (state.tasks + (state.recovery.map { [$0] } ?? []), state.listenerConnection)
        }
        for task in tasks { task.cancel() }
        stats.publishMetrics()
        listener?.close()
        client.shutdown()
    }

    /// Waits (up to `timeout`) until the remote has been tried once and, when it is up, the invalidation
    /// listener is in place. Optional: the manager works without it.
    public func waitUntilReady(timeout: Duration = .seconds(2)) async {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let ready = state.withLock { state in
                state.outage || state.listenerReady || configuration.coherence == .disabled
            }
            if ready { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Counters since start.
    public var statistics: CacheStats {
        var snapshot = stats.snapshot
        snapshot.memoryEntries = memory.count
        snapshot.memoryBytes = memory.bytes
        snapshot.memoryEvictions = memory.evictions
        return snapshot
    }

    /// Whether the remote is considered reachable (false during an outage).
    public var isRemoteAvailable: Bool { !state.withLock { $0.outage } }

    /// The key as stored: the namespace prefix, then `key`.
    public func storedKey(_ key: String) -> String { keyPrefix + key }

    // MARK: Reading

    /// The value under `key`, decoded; nil when absent in both tiers (or the remote is down and memory has
    /// no fresh copy).
    public func get<T: Decodable>(_ key: String, as type: T.Type = T.self) async throws -> T? {
        guard let value = await getValue(key) else { return nil }
        return try configuration.codec.decode(type, from: value.bytes)
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
        if case .ok(let count) = await remote({ try await $0.send(RedisCommand("EXISTS", .string(full))).integer() }) {
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
    /// Concurrent callers for one missing key share one loader run (single flight); a caller that arrives
    /// just after a run stored the value takes it rather than loading again. When the loader throws and a
    /// value that expired less than `maxStaleness` ago is still in memory, that value is returned
    /// (fail-safe) and a warning logged; for `failSafeThrottle` after that the stale value is served
    /// without calling the loader. Otherwise the loader's error is thrown.
    public func getOrLoad<T: Codable & Sendable>(
        _ key: String, policy: CachePolicy? = nil, as type: T.Type = T.self,
        loader: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let full = storedKey(key)
        if let record = await freshRecord(full), let value = try? configuration.codec.decode(type, from: record.payload) {
            return value
        }
        let payload = try await flights.run(full) { [self] in
            // A caller that missed just before the previous flight for this key stored its value and
            // ended starts a flight of its own: it takes that value instead of loading again.
            if let record = memory.lookup(full), record.isFresh(at: now) { return record.payload }
            stats.record(.loaderCall)
            do {
                let value = try await loader()
                let payload = try configuration.codec.encode(value)
                await store(full, payload, policy: policy ?? configuration.defaultPolicy)
                return payload
            } catch {
                stats.record(.loaderFailure)
                if let stale = memory.lookup(full) {
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
        return try configuration.codec.decode(type, from: payload)
    }

    // MARK: Writing

    /// Stores `value` under `key` in both tiers with `policy` (the default policy when nil).
    public func set<T: Encodable>(_ key: String, _ value: T, policy: CachePolicy? = nil) async throws {
        let payload = try configuration.codec.encode(value)
        await store(storedKey(key), payload, policy: policy ?? configuration.defaultPolicy)
    }

    /// Stores raw bytes.
    public func setBytes(_ key: String, _ bytes: [UInt8], policy: CachePolicy? = nil) async {
        await store(storedKey(key), bytes, policy: policy ?? configuration.defaultPolicy)
    }

    /// Removes `key` from both tiers.
    public func delete(_ key: String) async {
        let full = storedKey(key)
        memory.remove(full)
        await writeRemote(full, .delete(at: now))
    }

    /// Removes every key of `namespace` (a sub-namespace of this manager's), or all of this manager's keys
    /// when nil. On the remote this is SCAN + UNLINK, never KEYS or FLUSHDB.
    public func clear(namespace: String? = nil) async {
        var prefix = keyPrefix
        if let namespace, !namespace.isEmpty { prefix += namespace.hasSuffix(":") ? namespace : namespace + ":" }
        memory.removeAll(prefix: prefix)
        let at = now
        let recorded = state.withLock { state -> Bool in
            guard state.outage else { return false }
            state.clears.append((prefix, at))
            state.outbox = state.outbox.filter { !$0.key.hasPrefix(prefix) }
            return true
        }
        if recorded { stats.setPending(pendingCount); return }
        let removed = await remote { client -> Int in
            let keys = try await client.scanKeys(matching: Self.globEscaped(prefix) + "*")
            var removed = 0
            for start in stride(from: 0, to: keys.count, by: 500) {
                removed += try await client.unlink(keys[start..<min(start + 500, keys.count)].map { .buffer($0) })
            }
            return removed
        }
        if case .ok = removed, currentCoherence == .pubSub { await publishInvalidation(prefix: prefix) }
    }

    // MARK: Internals: tiers

    private var now: Int64 { configuration.clock.nowMilliseconds() }

    private var pendingCount: Int { state.withLock { $0.outbox.count + $0.clears.count } }

    private var currentCoherence: ActiveCoherence { state.withLock { $0.coherence } }

    private func freshRecord(_ full: String) async -> MemoryTier.Record? {
        let current = now
        if let record = memory.lookup(full, now: current), record.isFresh(at: current) {
            stats.record(.memoryHit)
            if record.slidingMilliseconds > 0 { await slide(full, record, now: current) }
            return record
        }
        stats.record(.memoryMiss)
        let sequence = state.withLock { $0.invalidationSequence }
        let replies = await remote { try await $0.pipeline([RedisCommand("GET", .string(full)), RedisCommand("PTTL", .string(full))]) }
        guard case .ok(let values) = replies, values.count == 2, case .bulkString(let bytes) = values[0] else {
            if case .ok = replies { stats.record(.remoteMiss) }
            return nil
        }
        stats.record(.remoteHit)
        let envelope = CacheEnvelope(decoding: bytes.readableBytesView)
        let remaining = (try? values[1].integer()) ?? -1
        var record = MemoryTier.Record(
            payload: envelope.payload, freshUntil: remaining > 0 ? current + remaining : 0, writtenAt: envelope.writtenAt,
            slidingMilliseconds: envelope.slidingMilliseconds)
        if envelope.slidingMilliseconds > 0 {
            record.freshUntil = current + envelope.slidingMilliseconds
            await touchRemote(full, milliseconds: envelope.slidingMilliseconds)
        }
        let stillValid = state.withLock { !$0.invalidated(full, since: sequence) }
        if stillValid { memory.store(full, capped(record, now: current)) }
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
        noteOwnWrite(full)
        let result = await remote { try await $0.expire(.string(full), in: .milliseconds(milliseconds)) }
        if case .ok(true) = result { return }
        undoOwnWrite(full)
    }

    private func capped(_ record: MemoryTier.Record, now current: Int64) -> MemoryTier.Record {
        guard let cap = configuration.memoryTTL?.wholeMilliseconds else { return record }
        var record = record
        if record.freshUntil == 0 || record.freshUntil > current + cap { record.freshUntil = current + cap }
        return record
    }

    private func store(_ full: String, _ payload: [UInt8], policy: CachePolicy) async {
        let current = now
        var generator = SystemRandomNumberGenerator()
        let ttl = policy.effectiveMilliseconds(using: &generator)
        let expireAt = ttl.map { current + $0 } ?? 0
        let sliding = policy.sliding ? (ttl ?? 0) : 0
        memory.store(full, capped(MemoryTier.Record(payload: payload, freshUntil: expireAt, writtenAt: current, slidingMilliseconds: sliding), now: current))
        let envelope = CacheEnvelope(writtenAt: current, slidingMilliseconds: sliding, payload: payload).encoded
        await writeRemote(full, .set(envelope: envelope, expireAt: expireAt, writtenAt: current))
    }

    private func writeRemote(_ full: String, _ write: PendingWrite) async {
        if recordForReplay(full, write) { return }
        noteOwnWrite(full)
        let result = await remote { client -> Bool in
            switch write {
            case .set(let envelope, let expireAt, _):
                var arguments: [RedisArgument] = [.string(full), .bytes(envelope)]
                if expireAt != 0 { arguments += ["PX", .integer(max(1, expireAt - self.now))] }
                try await client.send(RedisCommand("SET", arguments: arguments))
                return true
            case .delete:
                return try await client.delete(.string(full)) > 0
            }
        }
        switch result {
        case .ok(let changed):
            if !changed { undoOwnWrite(full) }  // nothing was deleted: no invalidation will come
            if changed, currentCoherence == .pubSub { await publishInvalidation(key: full) }
        case .unavailable:
            undoOwnWrite(full)
            _ = recordForReplay(full, write, force: true)
        case .failed:
            undoOwnWrite(full)
        }
    }

    /// During an outage, keeps `write` as the latest for `full`; false when the remote is up.
    private func recordForReplay(_ full: String, _ write: PendingWrite, force: Bool = false) -> Bool {
        let (recorded, dropped) = state.withLock { state -> (Bool, Bool) in
            guard state.outage || force else { return (false, false) }
            if state.outbox[full] == nil && state.outbox.count >= configuration.maxPendingWrites { return (true, true) }
            state.outbox[full] = write
            return (true, false)
        }
        if dropped {
            stats.record(.skippedReplay)
            let first = state.withLock { state -> Bool in
                defer { state.droppedWarningLogged = true }
                return !state.droppedWarningLogged
            }
            if first { logger.warning("outage write buffer full; further writes are kept in memory only", metadata: ["limit": "\(configuration.maxPendingWrites)"]) }
        }
        if recorded { stats.setPending(pendingCount) }
        return recorded
    }

    // MARK: Internals: the remote and its outages

    private enum RemoteResult<R: Sendable>: Sendable {
        case ok(R)
        /// The remote could not be reached (or the circuit is open).
        case unavailable
        /// The server answered with an error.
        case failed(RedisError)
    }

    private func remote<R: Sendable>(_ body: (RedisClient) async throws -> R) async -> RemoteResult<R> {
        if state.withLock({ $0.outage || $0.shutDown }) {
            stats.record(.remoteSkipped)
            return .unavailable
        }
        do {
            return .ok(try await body(client))
        } catch let error as RedisError {
            logger.debug("remote error reply", metadata: ["error": "\(error)"])
            return .failed(error)
        } catch {
            stats.record(.remoteError)
            enterOutage(because: "\(error)")
            return .unavailable
        }
    }

    private func probeAtStart() async {
        if case .ok = await remote({ try await $0.ping() }) {
            logger.debug("remote cache reachable", metadata: ["url": "\(configuration.url)"])
        }
    }

    private func enterOutage(because reason: String) {
        let started = state.withLock { state -> Bool in
            guard !state.outage, !state.shutDown else { return false }
            state.outage = true
            state.recovery = Task { [weak self] in await self?.recover() } as Task<Void, Never>
            return true
        }
        guard started else { return }
        stats.setFallback(true)
        logger.warning("remote cache unreachable; serving from the memory tier until it returns", metadata: [
            "url": "\(configuration.url)", "reason": "\(reason)",
        ])
    }

    private func recover() async {
        var attempts = 0
        let backoff = Backoff(base: configuration.recoveryInterval, maximum: configuration.maxRecoveryInterval)
        while !Task.isCancelled {
            attempts += 1
            try? await Task.sleep(for: backoff.delay(afterFailures: attempts))
            if Task.isCancelled { return }
            do {
                _ = try await client.pool.send(RedisCommand("PING"))
            } catch {
                continue
            }
            let pending = pendingCount
            logger.notice("remote cache reachable again; replaying outage writes", metadata: [
                "url": "\(configuration.url)", "writes": "\(pending)",
            ])
            guard let replayed = await replayOutbox() else { continue }
            let keep = state.withLock { Set($0.outbox.keys) }.union(replayed)
            memory.removeAll(except: keep)
            let resumed = state.withLock { state -> Bool in
                guard state.outbox.isEmpty, state.clears.isEmpty else { return false }
                state.outage = false
                state.recovery = nil
                return true
            }
            if resumed {
                stats.setFallback(false)
                stats.setPending(0)
                let snapshot = stats.snapshot
                logger.notice("remote cache recovered; normal service resumed", metadata: [
                    "url": "\(configuration.url)", "replayed": "\(snapshot.replayedWrites)", "skipped": "\(snapshot.skippedReplays)",
                ])
                return
            }
            attempts = 0
        }
    }

    /// Replays the outage writes; the keys whose memory entries are now the remote's value, or nil when
    /// the remote failed again (what was not replayed is back in the outbox).
    private func replayOutbox() async -> Set<String>? {
        let (writes, clears) = state.withLock { state in
            defer { state.outbox = [:]; state.clears = [] }
            return (state.outbox, state.clears)
        }
        var replayed = Set<String>()
        var remaining = writes
        do {
            for clear in clears {
                let keys = try await client.scanKeys(matching: Self.globEscaped(clear.prefix) + "*")
                for key in keys {
                    _ = try await compareAndWrite(String(buffer: key), notNewerThan: clear.at, [RedisCommand("DEL", .buffer(key))])
                }
            }
            let current = now
            for (key, write) in writes {
                switch write {
                case .set(let envelope, let expireAt, let writtenAt):
                    if expireAt != 0 && expireAt <= current {
                        stats.record(.skippedReplay)
                    } else {
                        var arguments: [RedisArgument] = [.string(key), .bytes(envelope)]
                        if expireAt != 0 { arguments += ["PX", .integer(expireAt - current)] }
                        let done = try await compareAndWrite(key, notNewerThan: writtenAt, [RedisCommand("SET", arguments: arguments)])
                        stats.record(done ? .replayed : .skippedReplay)
                        if done { replayed.insert(key) }
                    }
                case .delete(let at):
                    let done = try await compareAndWrite(key, notNewerThan: at, [RedisCommand("DEL", .string(key))])
                    stats.record(done ? .replayed : .skippedReplay)
                }
                remaining[key] = nil
            }
            return replayed
        } catch {
            state.withLock { state in
                for (key, write) in remaining where state.outbox[key] == nil { state.outbox[key] = write }
                state.clears = clears + state.clears
            }
            logger.warning("replay interrupted; will retry", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Runs `commands` in MULTI/EXEC unless the remote holds a value newer than `time` (or one not written by
    /// a CacheManager); WATCH makes the check and the write atomic. Returns whether the commands ran.
    private func compareAndWrite(_ key: String, notNewerThan time: Int64, _ commands: [RedisCommand]) async throws -> Bool {
        try await client.pool.withConnection { connection -> Bool in
            for _ in 0..<5 {
                try await connection.send(RedisCommand("WATCH", .string(key)))
                let current = try await connection.sendRaw(RedisCommand("GET", .string(key)))
                switch current {
                case .bulkString(let bytes):
                    let envelope = CacheEnvelope(decoding: bytes.readableBytesView)
                    if !envelope.isOurs || envelope.writtenAt > time {
                        try await connection.send(RedisCommand("UNWATCH"))
                        return false
                    }
                case .null:
                    if commands.allSatisfy({ $0.name == "DEL" }) {
                        try await connection.send(RedisCommand("UNWATCH"))
                        return true  // already gone
                    }
                default:
                    try await connection.send(RedisCommand("UNWATCH"))
                    return false  // another type: not ours
                }
                let replies = try await connection.pipeline([RedisCommand("MULTI")] + commands + [RedisCommand("EXEC")])
                if replies.last != .null { return true }
            }
            return false
        }
    }

    // MARK: Internals: coherence

    private func noteOwnWrite(_ full: String) {
        let current = now
        state.withLock { state in
            guard state.coherence == .tracking else { return }
            if state.ownWrites.count > 10_000 { state.ownWrites = state.ownWrites.filter { current - $0.value.at < 10_000 } }
            state.ownWrites[full, default: (0, current)].count += 1
            state.ownWrites[full]!.at = current
        }
    }

    private func undoOwnWrite(_ full: String) {
        state.withLock { state in
            guard let entry = state.ownWrites[full] else { return }
            if entry.count <= 1 { state.ownWrites[full] = nil } else { state.ownWrites[full]!.count -= 1 }
        }
    }

    /// Drops `full` from memory unless the invalidation is the echo of this process's own write.
    private func invalidate(_ full: String) {
        let current = now
        let own = state.withLock { state -> Bool in
            if let entry = state.ownWrites[full], entry.count > 0, current - entry.at < 10_000 {
                if entry.count == 1 { state.ownWrites[full] = nil } else { state.ownWrites[full]!.count -= 1 }
                return true
            }
            state.ownWrites[full] = nil
            state.noteInvalidation(of: full)
            return false
        }
        guard !own else { return }
        if memory.remove(full) { stats.record(.invalidation) }
    }

    private func invalidateAll(prefix: String) {
        state.withLock { $0.noteInvalidation(of: nil); $0.ownWrites = [:] }
        memory.removeAll(prefix: prefix)
        stats.record(.invalidation)
    }

    private func handlePush(_ frame: RESPValue) {
        guard let items = frame.elements, let kind = items.first?.string else { return }
        switch kind {
        case "invalidate" where items.count == 2:
            if let keys = items[1].elements {
                for key in keys { if let text = key.string { invalidate(text) } }
            } else {
                invalidateAll(prefix: keyPrefix)  // FLUSHDB/FLUSHALL: a null key list
            }
        case "message" where items.count == 3:
            guard let payload = try? items[2].bulk() else { return }
            let text = String(buffer: payload)
            let parts = text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, UInt64(parts[0]) != instanceID else { return }
            if parts[1] == "k" { invalidate(String(parts[2])) } else if parts[1] == "p" { invalidateAll(prefix: String(parts[2])) }
        default:
            break
        }
    }

    private func publishInvalidation(key: String) async {
        _ = await remote { try await $0.publish(.string("\(self.instanceID)\nk\n\(key)"), to: Self.invalidationChannel) }
    }

    private func publishInvalidation(prefix: String) async {
        _ = await remote { try await $0.publish(.string("\(self.instanceID)\np\n\(prefix)"), to: Self.invalidationChannel) }
    }

    /// Keeps one connection that receives invalidations; re-established after every loss. A loss counts as
    /// an outage (invalidations may have been missed), so recovery reconciles the memory tier.
    private func runListener() async {
        var failures = 0
        let backoff = Backoff(base: configuration.recoveryInterval, maximum: configuration.maxRecoveryInterval)
        while !Task.isCancelled {
            do {
                let connection = try await RedisConnection.connect(to: configuration.url) { [weak self] frame in
                    self?.handlePush(frame)
                }
                var mode = ActiveCoherence.none
                if configuration.coherence != .pubSub, connection.protocolVersion == 3 {
                    var arguments: [RedisArgument] = ["TRACKING", "ON", "BCAST"]
                    if !keyPrefix.isEmpty { arguments += ["PREFIX", .string(keyPrefix)] }
                    if case .simpleString = try await connection.sendRaw(RedisCommand("CLIENT", arguments: arguments)) {
                        mode = .tracking
                    }
                }
                if mode == .none && configuration.coherence != .tracking {
                    if connection.protocolVersion == 2 { try await connection.enterSubscriberMode() }
                    connection.sendWithoutReply(RedisCommand("SUBSCRIBE", .string(Self.invalidationChannel)))
                    mode = .pubSub
                }
                if mode == .none {
                    logger.warning("server does not support CLIENT TRACKING; memory tier is not kept coherent")
                    connection.close()
                    state.withLock { $0.listenerReady = true }
                    return
                }
                let cancelled = state.withLock { state -> Bool in
                    state.coherence = mode
                    state.listenerConnection = connection
                    state.listenerReady = true
                    return state.shutDown
                }
                if cancelled { connection.close(); return }
                failures = 0
                logger.debug("invalidation listener connected", metadata: ["mode": "\(mode)"])
                try? await connection.closeFuture.get()
                state.withLock { state in
                    state.coherence = .none
                    state.listenerConnection = nil
                    state.ownWrites = [:]
                }
                if Task.isCancelled || state.withLock({ $0.shutDown }) { return }
                enterOutage(because: "invalidation connection lost")
            } catch {
                failures += 1
            }
            try? await Task.sleep(for: backoff.delay(afterFailures: max(1, failures)))
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
