/// Counters the engine keeps for INFO.
public struct KeyspaceStats: Sendable, Equatable {
    public var keyspaceHits = 0
    public var keyspaceMisses = 0
    public var expiredKeys = 0
    public var evictedKeys = 0
    /// Keys whose expiry the active cycle found while sweeping, over keys it examined (last cycle).
    public var expiredStalePercent = 0.0
    /// Active expire cycles that stopped at their time budget.
    public var expiredTimeCapReachedCount = 0

    public init() {}
}

/// Why a key left the keyspace without a client deleting it.
public enum RemovalReason: Sendable {
    case expired
    case evicted
}

/// All databases of a server with the rules that apply across them: lazy and active expiry, access
/// clocks for eviction, eviction itself, and statistics. No networking, no clock of its own: the caller
/// sets `now` before running commands.
///
/// Not thread-safe: the server runs every command under one lock.
public final class Keyspace {
    /// The databases, numbered from 0. Fixed for the keyspace's life (SWAPDB swaps their contents), which
    /// lets the hot path reach a database without reference counting.
    public let databases: [Database]
    /// The current time, Unix milliseconds. Set by the caller; tests move it freely.
    public var now: Int64
    /// INFO counters.
    public var stats = KeyspaceStats()
    /// The `maxmemory-policy`.
    public var evictionPolicy: EvictionPolicy = .noeviction
    /// False while new small integers get objects of their own, as Redis does when `maxmemory` is set with
    /// an LRU/LFU policy (OBJECT REFCOUNT tells).
    public var sharesIntegers = true
    /// Keys sampled per eviction (`maxmemory-samples`).
    public var evictionSamples = 5
    /// `lfu-log-factor`.
    public var lfuLogFactor = 10
    /// `lfu-decay-time`, minutes.
    public var lfuDecayTime = 1
    /// Called for every key that expires or is evicted, after it is removed.
    public var removalObserver: ((_ database: Int, _ key: Bytes, _ reason: RemovalReason) -> Void)?
    /// Called for every key added through `set` or `insert` (Redis's `new` keyspace event); nil when
    /// nobody listens, which keeps insertion free of it.
    public var insertionObserver: ((_ database: Int, _ key: Bytes) -> Void)?

    /// While true (replaying an append-only file) expired keys are treated as live, as Redis does while
    /// loading, so that replayed commands see the keys they saw when first run.
    public var expiryPaused = false

    /// Where values too big to free on the command path go (the server frees them on another thread);
    /// nil frees everything at once.
    public var deferredRelease: ((ReleasedData) -> Void)?
    /// Which removals free big values through `deferredRelease` (the `lazyfree-lazy-*` settings).
    public var lazyFreeing: LazyFreeing = []
    /// Values freeing more elements than this are freed lazily (Redis's LAZYFREE_THRESHOLD).
    public static let lazyFreeThreshold = 64

    /// While true (CLIENT PAUSE) keys whose TTL passed read as missing but are not deleted, as Redis
    /// keeps them during a pause so that nothing changes the data. Only set while no write command runs.
    public var deletionsPaused = false

    private var random = FastRandom()
    private var sweepDatabase = 0
    private var sweepSegment = 0

    /// Creates `databaseCount` empty databases.
    public init(databaseCount: Int = 16, now: Int64 = 0) {
        databases = (0..<databaseCount).map { _ in Database() }
        self.now = now
    }

    // MARK: Access clocks

    /// The access clock value for a key created or touched now.
    public var freshAccess: UInt32 {
        evictionPolicy.usesLFU ? LFU.initial(nowMs: now) : LRU.clock(nowMs: now)
    }

    /// Updates the access clock (`database` is the caller's reference, so that a read loads it once).
    private func touch(_ database: Database, _ ref: EntryRef) {
        let access = database.access(ref)  // no copy of the entry
        let state: UInt32
        if evictionPolicy.usesLFU {
            state = LFU.touched(access, nowMs: now, logFactor: lfuLogFactor, decayTime: lfuDecayTime, using: &random)
        } else {
            state = LRU.clock(nowMs: now)
        }
        // Most reads leave the clock as it was (same second, counter not incremented): no write then.
        if state != access { database.setAccess(ref, state) }
    }

    /// Seconds since the key was last accessed (OBJECT IDLETIME).
    public func idleSeconds(of entry: Entry) -> Int64 { idleSeconds(access: entry.access) }

    func idleSeconds(access: UInt32) -> Int64 { LRU.idleSeconds(since: access, nowMs: now) }

    /// The key's LFU counter after decay (OBJECT FREQ).
    public func frequency(of entry: Entry) -> Int { frequency(access: entry.access) }

    func frequency(access: UInt32) -> Int { Int(LFU.decayedCounter(access, nowMs: now, decayTime: lfuDecayTime)) }

    // MARK: Lookup

    /// How a lookup treats the key it finds.
    public struct LookupOptions: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// Do not update the access clock (OBJECT, TOUCH semantics, CLIENT NO-TOUCH).
        public static let noTouch = LookupOptions(rawValue: 1)
        /// Do not count a hit or a miss.
        public static let noStats = LookupOptions(rawValue: 2)
        /// Do not delete the key if it has expired (only report it as missing).
        public static let noExpire = LookupOptions(rawValue: 4)
    }

    /// Whether the key at `ref` has expired at `now` (Redis: expired when now > expiry).
    public func isExpired(_ entry: Entry) -> Bool { isExpired(expireAt: entry.expireAt) }

    /// Whether a key with expiry `expireAt` (0: none) has expired at `now`: read from the key's record
    /// without materialising its entry (sweeps and eviction samples).
    func isExpired(expireAt: Int64) -> Bool { expireAt != 0 && now > expireAt && !expiryPaused }

    /// Finds `key` for reading: expires it if due, updates its access clock, counts a hit or a miss.
    @inlinable
    public func lookupRead(_ db: Int, _ key: some ContiguousBytes, _ options: LookupOptions = []) -> EntryRef? {
        key.withBytes { lookupRead(db, raw: $0, options) }
    }

    /// `lookupRead` for bytes in hand: not generic, so callers in other modules pay no generic dispatch.
    public func lookupRead(_ db: Int, raw key: UnsafeRawBufferPointer, _ options: LookupOptions = []) -> EntryRef? {
        let ref = lookup(db, key, options)
        if !options.contains(.noStats) {
            if ref != nil { stats.keyspaceHits += 1 } else { stats.keyspaceMisses += 1 }
        }
        return ref
    }

    /// Calls `body` with database `db`, its reference not counted: `databases` is immutable and holds
    /// every database for the keyspace's life, and a counted local reference was a retain and a release
    /// on every lookup (found by counting them, docs/performance.md).
    @inlinable
    func withDatabase<R>(_ db: Int, _ body: (Database) throws -> R) rethrows -> R {
        try Unmanaged.passUnretained(databases[db])._withUnsafeGuaranteedRef(body)
    }

    /// Prefetches what looking up keys with these hashes in database `db` will read (see
    /// `Database.prefetch`): for a pipeline, before its commands run.
    public func prefetch(_ db: Int, hashes: UnsafeBufferPointer<UInt64>) {
        withDatabase(db) { $0.prefetch(hashes: hashes) }
    }

    /// Whether prefetching lookups in database `db` is worth its hashing: not for a database small enough
    /// to stay in the CPU's caches (measured: +4% per SET over 1,024 keys; -35% user CPU per GET over
    /// 1,000,000).
    public func prefetchPays(_ db: Int) -> Bool {
        withDatabase(db) { $0.count >= Self.prefetchMinimumKeys }
    }

    /// The smallest database whose lookups are prefetched: 8,192 entries of 64 bytes fill half of a 1 MB
    /// L2 cache, before their keys' and values' blocks.
    public static let prefetchMinimumKeys = 8192

    /// Finds `key` for reading (as `lookupRead`) and calls `body` with its value in place: one hash, one
    /// load of the database, no copy of the entry. Nil when the key is missing or expired.
    @inlinable
    public func withReadValue<R>(_ db: Int, raw key: UnsafeRawBufferPointer, _ body: (borrowing Value) throws -> R) rethrows -> R? {
        try withDatabase(db) { database in
            guard let ref = findForRead(database, db, raw: key) else { return nil }
            return try database.withValue(ref, body)
        }
    }

    @usableFromInline
    func findForRead(_ database: Database, _ db: Int, raw key: UnsafeRawBufferPointer) -> EntryRef? {
        guard let ref = database.find(raw: key, hash: KeyHashing.hash(key)) else {
            stats.keyspaceMisses += 1
            return nil
        }
        let expireAt = database.expireAt(ref)
        if expireAt != 0 && now > expireAt && !expiryPaused {
            expire(db, ref)
            stats.keyspaceMisses += 1
            return nil
        }
        touch(database, ref)
        stats.keyspaceHits += 1
        return ref
    }

    /// Finds `key` for writing: expires it if due and updates its access clock; no hit/miss counting.
    public func lookupWrite(_ db: Int, _ key: some ContiguousBytes, _ options: LookupOptions = []) -> EntryRef? {
        lookup(db, key, options)
    }

    private func lookup(_ db: Int, _ key: some ContiguousBytes, _ options: LookupOptions) -> EntryRef? {
        withDatabase(db) { database -> EntryRef? in
            guard let ref = database.find(key) else { return nil }
            let expireAt = database.expireAt(ref)
            if expireAt != 0 && now > expireAt && !expiryPaused {
                if !options.contains(.noExpire) { expire(db, ref) }
                return nil
            }
            if !options.contains(.noTouch) { touch(database, ref) }
            return ref
        }
    }

    /// The entry at `ref` in database `db` (its key copied: for the key itself, or the whole entry).
    @inlinable
    public func entry(_ db: Int, _ ref: EntryRef) -> Entry { databases[db][ref] }

    /// The value at `ref` in database `db`, read from the key's record without copying the key.
    public func value(_ db: Int, _ ref: EntryRef) -> Value { withDatabase(db) { $0.value(at: ref) } }

    /// The expiry (Unix ms, 0 when persistent) of the key at `ref` in database `db`.
    public func expireAt(_ db: Int, _ ref: EntryRef) -> Int64 { withDatabase(db) { $0.expireAt(ref) } }

    // MARK: Mutation

    /// When SET-like writes apply (NX / XX).
    public enum SetCondition: Sendable {
        case always, ifAbsent, ifPresent
    }

    /// Stores `value` under `key`, replacing any previous value. The expiry becomes `expireAt` (0: none)
    /// unless `keepTTL` is set and the key existed. One hash and one probe, whatever happens.
    /// - Returns: where the key now lives, or nil when `condition` prevented the write.
    @discardableResult
    public func set(
        _ db: Int, _ key: some ContiguousBytes, _ value: Value, expireAt: Int64 = 0, keepTTL: Bool = false,
        condition: SetCondition = .always
    ) -> EntryRef? {
        withDatabase(db) { database in key.withBytes { raw in
            store(db, database, raw, expireAt: expireAt, keepTTL: keepTTL, condition: condition,
                  replace: { database.setValue($0, value) },
                  insert: { database.insert(key: raw, value: value, expireAt: expireAt, access: freshAccess, hash: $0) })
        } }
    }

    /// Stores the string `bytes` under `key` as SET does (see `set`): an integer's digits become an
    /// integer value (`Value.string(from:sharesIntegers:)`), and a longer string is copied once, from
    /// `bytes` straight into the key's record, rather than first into a value of its own.
    @discardableResult
    public func setString(
        _ db: Int, _ key: some ContiguousBytes, _ bytes: some ContiguousBytes, sharesIntegers: Bool = true,
        expireAt: Int64 = 0, keepTTL: Bool = false, condition: SetCondition = .always
    ) -> EntryRef? {
        bytes.withBytes { string in
            // Short strings (integers among them) are values without an allocation of their own.
            if string.count <= Bytes.inlineCapacity {
                return set(db, key, Value.string(from: string, sharesIntegers: sharesIntegers), expireAt: expireAt,
                           keepTTL: keepTTL, condition: condition)
            }
            return withDatabase(db) { database in key.withBytes { raw in
                store(db, database, raw, expireAt: expireAt, keepTTL: keepTTL, condition: condition,
                      replace: { database.setString($0, string) },
                      insert: { database.insert(key: raw, string: string, expireAt: expireAt, access: freshAccess, hash: $0) })
            } }
        }
    }

    /// SET's rules around the two ways of writing a value: `replace` (the value of the key at a ref)
    /// and `insert` (a new key, given its hash).
    @inline(__always)
    private func store(
        _ db: Int, _ database: Database, _ raw: UnsafeRawBufferPointer, expireAt: Int64, keepTTL: Bool,
        condition: SetCondition, replace: (EntryRef) -> Void, insert: (UInt64) -> EntryRef
    ) -> EntryRef? {
        let hash = KeyHashing.hash(raw)
        var found = database.find(raw: raw, hash: hash)
        if let ref = found {
            let expiry = database.expireAt(ref)
            if expiry != 0 && now > expiry && !expiryPaused {
                if deletionsPaused {
                    // The dead key keeps its slot: overwrite it as a new key.
                    guard condition != .ifPresent else { return nil }
                    replace(ref)
                    database.setExpire(ref, expireAt)
                    touch(database, ref)
                    return ref
                }
                expire(db, ref)
                found = nil
            }
        }
        if let ref = found {
            guard condition != .ifAbsent else { return nil }
            replace(ref)
            if !keepTTL { database.setExpire(ref, expireAt) }
            touch(database, ref)
            return ref
        }
        guard condition != .ifPresent else { return nil }
        let ref = insert(hash)
        insertionObserver?(db, Bytes(raw))
        return ref
    }

    /// Calls `body` with the value at `ref` without copying it.
    @inlinable
    public func withValue<R>(_ db: Int, _ ref: EntryRef, _ body: (borrowing Value) throws -> R) rethrows -> R {
        try withDatabase(db) { try $0.withValue(ref, body) }
    }

    /// Adds a key known to be absent (after a failed lookup).
    @discardableResult
    public func insert(_ db: Int, _ key: Bytes, _ value: Value, expireAt: Int64 = 0) -> EntryRef {
        defer { insertionObserver?(db, key) }
        return databases[db].insert(Entry(key: key, value: value, expireAt: expireAt, access: freshAccess))
    }

    /// Adds an entry exactly as given (loading a snapshot, COPY, MOVE), keeping its access clock.
    @discardableResult
    public func insert(_ db: Int, entry: Entry) -> EntryRef {
        defer { insertionObserver?(db, entry.key) }
        return databases[db].insert(entry)
    }

    /// Replaces the value at `ref`, keeping its expiry.
    public func setValue(_ db: Int, _ ref: EntryRef, _ value: Value) {
        withDatabase(db) { $0.setValue(ref, value) }
    }

    /// Mutates the value at `ref` in place.
    ///
    /// Inlined into the caller around a non-generic core: called across modules, a generic chain down to
    /// the table was run unspecialised and looked up type metadata at run time (~3% of an LPUSH).
    @inlinable
    public func modifyValue<R>(_ db: Int, _ ref: EntryRef, _ body: (inout Value) throws -> R) rethrows -> R {
        var result: R? = nil
        try modifyValueInPlace(db, ref) { result = try body(&$0) }
        return result!
    }

    @usableFromInline
    func modifyValueInPlace(_ db: Int, _ ref: EntryRef, _ body: (inout Value) throws -> Void) rethrows {
        try withDatabase(db) { try $0.modifyValue(ref, body) }
    }

    /// Sets the expiry of the key at `ref` (Unix ms, 0 for none).
    public func setExpire(_ db: Int, _ ref: EntryRef, _ expireAt: Int64) {
        databases[db].setExpire(ref, expireAt)
    }

    /// Removes the key at `ref` and returns its entry.
    @discardableResult
    public func remove(_ db: Int, _ ref: EntryRef) -> Entry {
        databases[db].remove(ref)
    }

    /// Removes `key` if present (expired keys count as absent). Returns whether a live key was removed.
    /// With `lazily` (UNLINK) a big value is freed off the command path.
    @discardableResult
    public func delete(_ db: Int, _ key: some ContiguousBytes, lazily: Bool = false) -> Bool {
        guard let ref = lookupWrite(db, key, [.noTouch]) else { return false }
        release(databases[db].remove(ref), lazily: lazily)
        return true
    }

    /// Drops a removed entry: through `deferredRelease` when asked and worth it, else here.
    @inline(__always)
    func release(_ entry: consuming Entry, lazily: Bool) {
        if lazily, let deferredRelease, entry.value.freeEffort > Self.lazyFreeThreshold {
            deferredRelease(ReleasedData(entry))
        }
    }

    /// Removes the key at `ref` as expired: counted in `expired_keys` and reported to the observer.
    public func expire(_ db: Int, _ ref: EntryRef) {
        if deletionsPaused { return }
        let entry = databases[db].remove(ref)
        stats.expiredKeys += 1
        removalObserver?(db, entry.key, .expired)
        release(entry, lazily: lazyFreeing.contains(.expire))
    }

    /// Empties database `db`; returns how many keys it held. With `lazily` (FLUSHDB ASYNC) the keys are
    /// freed off the command path.
    @discardableResult
    public func flush(_ db: Int, lazily: Bool = false) -> Int {
        let count = databases[db].count
        if lazily, let deferredRelease, count > 0 {
            let old = Database()
            old.swapContents(with: databases[db])
            deferredRelease(ReleasedData(old))
        } else {
            databases[db].removeAll()
        }
        return count
    }

    /// Empties every database (lazily: as `flush`).
    public func flushAll(lazily: Bool = false) {
        for db in databases.indices { flush(db, lazily: lazily) }
    }

    /// Exchanges the contents of two databases.
    public func swap(_ a: Int, _ b: Int) {
        if a != b { databases[a].swapContents(with: databases[b]) }
    }

    /// Replaces all databases at once (loading a snapshot).
    public func replaceDatabases(_ newDatabases: [Database]) {
        precondition(newDatabases.count == databases.count)
        for (current, loaded) in zip(databases, newDatabases) { current.swapContents(with: loaded) }
    }

    /// A random live key of `db`, expiring the dead ones it meets (RANDOMKEY).
    public func randomKey(_ db: Int) -> Bytes? {
        var attempts = 0
        while let ref = databases[db].randomRef(using: &random) {
            if isExpired(expireAt: databases[db].expireAt(ref)) {
                attempts += 1
                // Like Redis, give up expiring after many all-volatile tries and return the key anyway.
                if attempts > 100 && databases[db].volatileCount == databases[db].count { return databases[db][ref].key }
                expire(db, ref)
                continue
            }
            return databases[db][ref].key
        }
        return nil
    }

    // MARK: Memory and eviction

    /// Memory held by keys and values across databases, by the engine's accounting.
    public var footprint: Int { databases.reduce(0) { $0 + $1.footprint } }

    /// Total keys across databases.
    public var keyCount: Int { databases.reduce(0) { $0 + $1.count } }

    /// Evicts keys by the current policy until `overhead + footprint <= limit` or nothing can be evicted.
    /// - Returns: false when memory is still above the limit (the caller refuses writes with OOM).
    public func evict(toFit limit: Int, overhead: Int) -> Bool {
        while overhead + footprint > limit {
            guard evictOne() else { return false }
        }
        return true
    }

    /// Evicts the one key the policy picks (sampling as Redis does).
    /// - Returns: false when the policy is `noeviction` or no key qualifies.
    @discardableResult
    public func evictOne() -> Bool {
        guard evictionPolicy != .noeviction, let (db, ref) = evictionCandidate() else { return false }
        let entry = databases[db].remove(ref)
        stats.evictedKeys += 1
        removalObserver?(db, entry.key, .evicted)
        release(entry, lazily: lazyFreeing.contains(.eviction))
        return true
    }

    /// Samples `evictionSamples` keys per database and returns the best one to evict.
    private func evictionCandidate() -> (Int, EntryRef)? {
        var best: (db: Int, ref: EntryRef, score: Int64)? = nil
        let policy = evictionPolicy
        for db in databases.indices {
            let database = databases[db]
            let pool = policy.volatileOnly ? database.volatileCount : database.count
            guard pool > 0 else { continue }
            for _ in 0..<evictionSamples {
                let sampled = policy.volatileOnly
                    ? database.randomVolatileRef(using: &random) : database.randomRef(using: &random)
                guard let ref = sampled else { break }
                // Higher score = better to evict. Read from the record, not a materialised entry.
                let score: Int64
                switch policy {
                case .allkeysLRU, .volatileLRU: score = idleSeconds(access: database.access(ref))
                case .allkeysLFU, .volatileLFU: score = 255 - Int64(frequency(access: database.access(ref)))
                case .volatileTTL: score = Int64.max - database.expireAt(ref)
                case .allkeysRandom, .volatileRandom, .noeviction: score = 0
                }
                if best == nil || score > best!.score { best = (db, ref, score) }
                if policy == .allkeysRandom || policy == .volatileRandom { break }
            }
            if best != nil && (policy == .allkeysRandom || policy == .volatileRandom) { break }
        }
        return best.map { ($0.db, $0.ref) }
    }

    // MARK: Active expiry

    /// Sweeps keys with an expiry, removing those that are due, visiting segments in a fixed round-robin
    /// order so that every volatile key is examined once per full sweep.
    ///
    /// - Parameter maxExamined: the most keys to examine in this call (the caller's time budget).
    /// - Returns: the number of keys removed, and how many segments were visited; a caller that has
    ///   visited `databases.count * Database.segmentCount` segments has swept everything once.
    @discardableResult
    public func activeExpireCycle(maxExamined: Int) -> (removed: Int, visitedSegments: Int) {
        var examined = 0
        var removed = 0
        var visitedSegments = 0
        let totalSegments = databases.count * Database.segmentCount
        if expiryPaused || deletionsPaused { return (0, totalSegments) }
        while examined < maxExamined && visitedSegments < totalSegments {
            if sweepSegment >= Database.segmentCount {
                sweepSegment = 0
                sweepDatabase = (sweepDatabase + 1) % databases.count
            }
            let db = sweepDatabase
            if databases[db].volatileCount == 0 {
                visitedSegments += Database.segmentCount - sweepSegment
                sweepSegment = Database.segmentCount
                continue
            }
            let segment = sweepSegment
            sweepSegment += 1
            visitedSegments += 1
            guard databases[db].volatileCount(inSegment: segment) > 0 else { continue }
            var index = 0
            while index < databases[db].segmentCount(segment) {
                let ref = EntryRef(segment: segment, index: index)
                examined += 1
                if isExpired(expireAt: databases[db].expireAt(ref)) {
                    expire(db, ref)
                    removed += 1
                    // The last entry moved into `index`; examine it next.
                } else {
                    index += 1
                }
            }
        }
        if examined > 0 { stats.expiredStalePercent = Double(removed) / Double(examined) }
        return (removed, visitedSegments)
    }
}

/// Removals that free big values off the command path (Redis's `lazyfree-lazy-*` settings; UNLINK and
/// FLUSHALL ASYNC always do).
public struct LazyFreeing: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `lazyfree-lazy-expire`.
    public static let expire = LazyFreeing(rawValue: 1)
    /// `lazyfree-lazy-eviction`.
    public static let eviction = LazyFreeing(rawValue: 2)
    /// `lazyfree-lazy-user-del`: DEL as UNLINK.
    public static let userDelete = LazyFreeing(rawValue: 4)
    /// `lazyfree-lazy-user-flush`: FLUSHALL/FLUSHDB without SYNC or ASYNC as ASYNC.
    public static let userFlush = LazyFreeing(rawValue: 8)
}

/// A removed value or database handed to another thread to be freed there. Nothing else refers to
/// what it holds, so dropping it on any thread is safe.
public struct ReleasedData: @unchecked Sendable {
    private let payload: Any
    /// How many objects it counts as in INFO `lazyfree_pending_objects` (keys of a database).
    public let objects: Int

    init(_ entry: consuming Entry) {
        payload = entry
        objects = 1
    }

    init(_ database: Database) {
        objects = database.count
        payload = database
    }
}
