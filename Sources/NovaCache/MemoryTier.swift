import NovaEngine
import Synchronization

/// The in-process tier: the NovaEngine keyspace (the same hash table, expiry and sampled LFU/LRU eviction as
/// the server) under a lock, bounded by entry count and bytes.
///
/// Entries stay past their TTL for `maxStaleness`, so that `getOrLoad` can serve a stale value when the
/// loader fails (fail-safe); ordinary reads see only fresh entries.
public final class MemoryTier: Sendable {
    /// Which entry makes room when the tier is full, chosen by sampling as Redis does.
    public enum Eviction: Sendable, Hashable, CaseIterable {
        /// The least frequently used (Redis's `allkeys-lfu`): keeps a Zipf workload's hot keys best.
        case leastFrequentlyUsed
        /// The least recently used (`allkeys-lru`).
        case leastRecentlyUsed
        /// Any entry (`allkeys-random`).
        case random

        var enginePolicy: EvictionPolicy {
            switch self {
            case .leastFrequentlyUsed: return .allkeysLFU
            case .leastRecentlyUsed: return .allkeysLRU
            case .random: return .allkeysRandom
            }
        }
    }

    /// Bounds and eviction.
    public struct Configuration: Sendable, Hashable {
        public var maxEntries: Int
        /// Bytes as the engine accounts them (keys, values and per-entry overhead).
        public var maxBytes: Int
        /// Which entry makes room (default: the least frequently used).
        public var eviction: Eviction
        /// How many decoded values (kept beside the bytes for typed reads) the tier holds at most: the most
        /// recently decoded or written ones. They are bounded by count, not counted in `maxBytes`; 0 turns
        /// them off (every typed read decodes). Default: `maxEntries`.
        public var maxDecodedValues: Int

        public init(
            maxEntries: Int = 100_000, maxBytes: Int = 64 << 20, eviction: Eviction = .leastFrequentlyUsed, maxDecodedValues: Int? = nil
        ) {
            self.maxEntries = max(1, maxEntries)
            self.maxBytes = max(1024, maxBytes)
            self.eviction = eviction
            self.maxDecodedValues = max(0, maxDecodedValues ?? maxEntries)
        }
    }

    /// One cached value with its timing.
    public struct Record: Sendable, Hashable {
        public var payload: [UInt8]
        /// End of freshness in ms since the epoch; 0 for no expiry.
        public var freshUntil: Int64
        /// When the value was written (ms since the epoch; 0 when unknown).
        public var writtenAt: Int64
        /// The sliding TTL restarted by reads (0: not sliding).
        public var slidingMilliseconds: Int64
        /// When the remote's copy expires (ms since the epoch; 0: never). Equal to `freshUntil` unless the
        /// manager's `memoryTTL` ends freshness earlier; it tells the server's invalidation on expiry from
        /// another writer's change.
        public var expiresAt: Int64

        public init(payload: [UInt8], freshUntil: Int64, writtenAt: Int64, slidingMilliseconds: Int64 = 0, expiresAt: Int64? = nil) {
            self.payload = payload
            self.freshUntil = freshUntil
            self.writtenAt = writtenAt
            self.slidingMilliseconds = slidingMilliseconds
            self.expiresAt = expiresAt ?? freshUntil
        }

        public func isFresh(at now: Int64) -> Bool { freshUntil == 0 || now <= freshUntil }
    }

    /// A cached value handed out without copying: it shares the memory tier's stored bytes (a 40-byte
    /// header — fresh-until, write time, sliding TTL, remote expiry, decoded-value stamp — then the payload).
    public struct CachedValue: Sendable {
        let storage: Bytes
        /// End of freshness in ms since the epoch; 0 for no expiry.
        public let freshUntil: Int64
        /// When the value was written (ms since the epoch; 0 when unknown).
        public let writtenAt: Int64
        public let slidingMilliseconds: Int64
        /// When the remote's copy expires (ms since the epoch; 0: never).
        public let expiresAt: Int64
        /// Which decoded value belongs to these bytes (0: none yet).
        let decodedStamp: Int64

        /// Reads the header of stored bytes; nil when they are too short to be an entry of this tier.
        init?(storage: Bytes) {
            guard storage.count >= MemoryTier.headerSize else { return nil }
            self.storage = storage
            (freshUntil, writtenAt, slidingMilliseconds, expiresAt, decodedStamp) = storage.withBytes {
                ($0.loadUnaligned(fromByteOffset: 0, as: Int64.self), $0.loadUnaligned(fromByteOffset: 8, as: Int64.self),
                 $0.loadUnaligned(fromByteOffset: 16, as: Int64.self), $0.loadUnaligned(fromByteOffset: 24, as: Int64.self),
                 $0.loadUnaligned(fromByteOffset: 32, as: Int64.self))
            }
        }

        /// The stored form of `record`, its decoded value (if any) identified by `decodedStamp`.
        init(_ record: Record, decodedStamp: Int64 = 0) {
            var bytes = [UInt8](repeating: 0, count: MemoryTier.headerSize + record.payload.count)
            bytes.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: record.freshUntil, toByteOffset: 0, as: Int64.self)
                raw.storeBytes(of: record.writtenAt, toByteOffset: 8, as: Int64.self)
                raw.storeBytes(of: record.slidingMilliseconds, toByteOffset: 16, as: Int64.self)
                raw.storeBytes(of: record.expiresAt, toByteOffset: 24, as: Int64.self)
                raw.storeBytes(of: decodedStamp, toByteOffset: 32, as: Int64.self)
                if !record.payload.isEmpty {
                    record.payload.withUnsafeBytes {
                        raw.baseAddress!.advanced(by: MemoryTier.headerSize).copyMemory(from: $0.baseAddress!, byteCount: $0.count)
                    }
                }
            }
            self.init(storage: Bytes(bytes))!
        }

        /// The value's length in bytes.
        public var count: Int { storage.count - MemoryTier.headerSize }

        /// A copy of the stored bytes with another decoded-value stamp.
        func restamped(_ stamp: Int64) -> Bytes {
            var bytes = storage.withBytes { [UInt8]($0) }
            bytes.withUnsafeMutableBytes { $0.storeBytes(of: stamp, toByteOffset: 32, as: Int64.self) }
            return Bytes(bytes)
        }

        /// Calls `body` with the value's bytes.
        public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            try storage.withBytes { try body(UnsafeRawBufferPointer(rebasing: $0[MemoryTier.headerSize...])) }
        }

        /// A copy of the bytes.
        public var bytes: [UInt8] { withUnsafeBytes { [UInt8]($0) } }

        /// The value as a `Record` (its bytes copied).
        public var record: Record {
            Record(payload: bytes, freshUntil: freshUntil, writtenAt: writtenAt, slidingMilliseconds: slidingMilliseconds, expiresAt: expiresAt)
        }

        public func isFresh(at now: Int64) -> Bool { freshUntil == 0 || now <= freshUntil }
    }

    public let configuration: Configuration
    private let clock: any CacheClock
    private let maxStaleness: Int64
    /// The engine, touched only while `lock` is held. It sits beside the lock rather than inside it: a
    /// `let` of the tier is borrowed by a call as it is, while the value a `Mutex` lends `inout` was retained
    /// and released around every lookup (counted with uprobes, docs/performance.md).
    nonisolated(unsafe) private let keyspace: Keyspace
    private let lock = Mutex(())
    /// Decoded values for typed reads, touched only while `lock` is held (like `keyspace`).
    private let decoded: DecodedValues
    static let headerSize = 40

    /// - Parameters:
    ///   - configuration: the bounds and the eviction policy.
    ///   - clock: the time that decides freshness and expiry.
    ///   - maxStaleness: how long entries are kept after their TTL for fail-safe reads.
    public init(configuration: Configuration = Configuration(), clock: any CacheClock = SystemCacheClock(), maxStaleness: Duration = .zero) {
        self.configuration = configuration
        self.clock = clock
        self.maxStaleness = maxStaleness.wholeMilliseconds
        let keyspace = Keyspace(databaseCount: 1, now: clock.nowMilliseconds())
        keyspace.evictionPolicy = configuration.eviction.enginePolicy
        self.keyspace = keyspace
        decoded = DecodedValues(capacity: configuration.maxDecodedValues)
    }

    /// The entry under `key`, fresh or stale (check `isFresh`); nil when absent or past its staleness.
    /// Counts as an access for eviction.
    public func lookup(_ key: String) -> Record? {
        lookup(key, now: clock.nowMilliseconds())
    }

    /// `lookup` at a time the caller already read from the clock.
    public func lookup(_ key: String, now: Int64) -> Record? {
        value(prefix: "", key: key, now: now)?.record
    }

    /// The entry under `prefix + key` without copying its bytes (the hot path of a memory-tier hit); the
    /// key is assembled on the stack, not built as a string.
    public func value(prefix: String, key: String, now: Int64) -> CachedValue? {
        // Native strings lend their UTF-8 in place (no copy, no retain); others are made native first.
        let lent = prefix.utf8.withContiguousStorageIfAvailable { head in
            key.utf8.withContiguousStorageIfAvailable { tail in value(head, tail, now: now) }
        }
        if case .some(.some(let found)) = lent { return found }
        var prefix = prefix, key = key
        return prefix.withUTF8 { head in key.withUTF8 { tail in value(head, tail, now: now) } }
    }

    /// A kept decoded value and the timing of its entry.
    public struct DecodedHit: Sendable {
        @usableFromInline let box: DecodedBoxBase
        public let writtenAt: Int64
        public let expiresAt: Int64
    }

    /// The decoded value kept for the fresh, non-sliding entry under `prefix + key` when it was decoded
    /// (or written) as `T`; nil otherwise (absent, stale, sliding, never decoded, decoded as another type,
    /// or its decoded value was pushed out by newer ones). The hot path of a typed hit.
    @inlinable
    public func decodedValue<T: Sendable>(prefix: String, key: String, now: Int64, as type: T.Type) -> T? {
        guard let hit = decodedHit(prefix: prefix, key: key, now: now, type: ObjectIdentifier(type)) else { return nil }
        return unsafeDowncast(hit.box, to: DecodedBox<T>.self).value
    }

    /// `decodedValue` without generics (so that it costs no type-metadata lookups when called from code
    /// that is not specialized): the box of the decoded value kept as the type `type` identifies.
    public func decodedHit(prefix: String, key: String, now: Int64, type: ObjectIdentifier) -> DecodedHit? {
        let lent = prefix.utf8.withContiguousStorageIfAvailable { head in
            key.utf8.withContiguousStorageIfAvailable { tail in decodedHit(head, tail, now: now, type: type) }
        }
        if case .some(.some(let found)) = lent { return found }
        var prefix = prefix, key = key
        return prefix.withUTF8 { head in key.withUTF8 { tail in decodedHit(head, tail, now: now, type: type) } }
    }

    @inline(__always)
    private func decodedHit(_ head: UnsafeBufferPointer<UInt8>, _ tail: UnsafeBufferPointer<UInt8>, now: Int64, type: ObjectIdentifier) -> DecodedHit? {
        withKey(head, tail) { raw in
            lock.withLock { _ -> DecodedHit? in
                keyspace.now = now
                return keyspace.withReadValue(0, raw: raw) { value -> DecodedHit? in
                    guard case .string(let stored) = value else { return nil }
                    // The header read in place: a CachedValue would retain the bytes (counted: 8 retains per
                    // typed hit with it, 5 without, 4 of them the caller's copy of the value's strings).
                    return stored.withBytes { bytes -> DecodedHit? in
                        guard bytes.count >= MemoryTier.headerSize else { return nil }
                        let freshUntil = bytes.loadUnaligned(fromByteOffset: 0, as: Int64.self)
                        let sliding = bytes.loadUnaligned(fromByteOffset: 16, as: Int64.self)
                        let stamp = bytes.loadUnaligned(fromByteOffset: 32, as: Int64.self)
                        guard stamp != 0, sliding == 0, freshUntil == 0 || now <= freshUntil,
                            let box = decoded.box(stamp: stamp, type: type)
                        else { return nil }
                        return DecodedHit(box: box, writtenAt: bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self),
                                          expiresAt: bytes.loadUnaligned(fromByteOffset: 24, as: Int64.self))
                    }
                } ?? nil
            }
        }
    }

    /// Keeps `value`, decoded from `entry`'s bytes, for typed reads of `key` — unless the entry changed
    /// meanwhile (another write, a delete, an eviction): then the decoding belongs to nothing and is dropped.
    public func keep<T: Sendable>(decoded value: T, for key: String, decodedFrom entry: CachedValue) {
        guard decoded.capacity > 0 else { return }
        let stamp = decoded.nextStamp()
        let restamped = entry.restamped(stamp)
        let now = clock.nowMilliseconds()
        lock.withLock { _ in
            keyspace.now = now
            var name = key
            let unchanged = name.withUTF8 { utf8 in
                keyspace.withReadValue(0, raw: UnsafeRawBufferPointer(utf8)) { current -> Bool in
                    guard case .string(let stored) = current else { return false }
                    return stored.withBytes { a in entry.storage.withBytes { b in a.elementsEqual(b) } }
                } ?? false
            }
            guard unchanged else { return }
            decoded.put(DecodedBox(value), stamp: stamp)
            keyspace.set(0, key, .string(restamped), keepTTL: true)
        }
    }

    /// Calls `body` with `head + tail` assembled on the stack.
    @inline(__always)
    private func withKey<R>(_ head: UnsafeBufferPointer<UInt8>, _ tail: UnsafeBufferPointer<UInt8>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let length = head.count + tail.count
        return withUnsafeTemporaryAllocation(byteCount: max(1, length), alignment: 1) { buffer in
            if !head.isEmpty { buffer.baseAddress!.copyMemory(from: head.baseAddress!, byteCount: head.count) }
            if !tail.isEmpty { (buffer.baseAddress! + head.count).copyMemory(from: tail.baseAddress!, byteCount: tail.count) }
            return body(UnsafeRawBufferPointer(rebasing: buffer[0..<length]))
        }
    }

    /// The entry under `head + tail`, the key assembled on the stack.
    @inline(__always)
    private func value(_ head: UnsafeBufferPointer<UInt8>, _ tail: UnsafeBufferPointer<UInt8>, now: Int64) -> CachedValue? {
        let length = head.count + tail.count
        return withUnsafeTemporaryAllocation(byteCount: max(1, length), alignment: 1) { buffer in
            if !head.isEmpty { buffer.baseAddress!.copyMemory(from: head.baseAddress!, byteCount: head.count) }
            if !tail.isEmpty { (buffer.baseAddress! + head.count).copyMemory(from: tail.baseAddress!, byteCount: tail.count) }
            let raw = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
            return lock.withLock { _ -> CachedValue? in
                keyspace.now = now
                return keyspace.withReadValue(0, raw: raw) { value -> CachedValue? in
                    guard case .string(let stored) = value else { return nil }
                    return CachedValue(storage: stored)
                } ?? nil
            }
        }
    }

    /// Stores `record` under `key`, then evicts until both bounds hold.
    public func store(_ key: String, _ record: Record) {
        store(key, record, decodedValue: nil)
    }

    /// Stores `record` with `decodedValue` (the value its payload encodes) for typed reads.
    public func store<T: Sendable>(_ key: String, _ record: Record, decoded value: T) {
        store(key, record, decodedValue: DecodedBox(value))
    }

    /// `store` with a decoded value already boxed (`DecodedBox`), or none.
    func store(_ key: String, _ record: Record, decodedValue box: DecodedBoxBase?) {
        // Kept for fail-safe reads until `maxStaleness` after the later of its freshness and the remote's expiry.
        let hardExpiry = record.freshUntil == 0 ? 0 : max(record.freshUntil, record.expiresAt) + maxStaleness
        let now = clock.nowMilliseconds()
        let stamp = box == nil ? 0 : decoded.nextStamp()
        let value = Value.string(CachedValue(record, decodedStamp: stamp).storage)
        lock.withLock { _ in
            if let box { decoded.put(box, stamp: stamp) }
            keyspace.now = now
            keyspace.set(0, key, value, expireAt: hardExpiry)
            while keyspace.databases[0].count > configuration.maxEntries, keyspace.evictOne() {}
            _ = keyspace.evict(toFit: configuration.maxBytes, overhead: 0)
        }
    }

    /// Marks an entry fresh until `freshUntil` without moving the moment it is dropped (its TTL plus the
    /// staleness limit): the fail-safe throttle.
    public func extendFreshness(_ key: String, until freshUntil: Int64) {
        guard var record = lookup(key) else { return }
        record.freshUntil = freshUntil
        let value = Value.string(CachedValue(record).storage)
        let now = clock.nowMilliseconds()
        lock.withLock { _ in
            keyspace.now = now
            keyspace.set(0, key, value, keepTTL: true)
        }
    }

    /// Restarts a sliding entry's freshness (and its remote expiry, which the same read restarted).
    public func refresh(_ key: String, freshUntil: Int64) {
        guard var record = lookup(key) else { return }
        record.freshUntil = freshUntil
        record.expiresAt = freshUntil
        store(key, record)
    }

    /// Ends an entry's freshness now but keeps it for fail-safe reads until its staleness limit: the
    /// remote's copy expired.
    public func markStale(_ key: String, at now: Int64) {
        guard let record = lookup(key, now: now), record.isFresh(at: now) else { return }
        extendFreshness(key, until: now - 1)
    }

    /// Removes `key`; false when it was not there.
    @discardableResult
    public func remove(_ key: String) -> Bool {
        lock.withLock { _ in keyspace.delete(0, key) }
    }

    /// Removes every entry whose key starts with `prefix` (all entries for "").
    public func removeAll(prefix: String = "") {
        removeAll { $0.starts(with: prefix.utf8) }
    }

    /// Removes every entry except the given keys.
    public func removeAll(except keep: Set<String>) {
        let kept = Set(keep.map { Array($0.utf8) })
        removeAll { !kept.contains(Array($0)) }
    }

    private func removeAll(where shouldRemove: (UnsafeRawBufferPointer) -> Bool) {
        lock.withLock { _ in
            var doomed: [Bytes] = []
            keyspace.databases[0].forEach { entry in
                if entry.key.withBytes(shouldRemove) { doomed.append(entry.key) }
            }
            for key in doomed { _ = keyspace.delete(0, key) }
        }
    }

    /// Entries held now (fresh and stale).
    public var count: Int { lock.withLock { _ in keyspace.databases[0].count } }

    /// Bytes held now, as the engine accounts them.
    public var bytes: Int { lock.withLock { _ in keyspace.footprint } }

    /// Entries evicted to respect the bounds since creation.
    public var evictions: Int { lock.withLock { _ in keyspace.stats.evictedKeys } }
}

/// A kept decoded value without its type: the identity of the value's type and the stamp of the entry
/// bytes it belongs to, so that a hit checks both in the object it reads the value from.
@usableFromInline
class DecodedBoxBase: @unchecked Sendable {
    let valueType: ObjectIdentifier
    /// Set once, under the tier's lock, when the box enters the ring (before any reader can reach it).
    var stamp: Int64 = 0

    init(valueType: ObjectIdentifier) { self.valueType = valueType }
}

/// A decoded value in a class box, so that the tier holds values of any type and checks the type by
/// comparing identities.
@usableFromInline
final class DecodedBox<T: Sendable>: DecodedBoxBase, @unchecked Sendable {
    @usableFromInline let value: T

    init(_ value: T) {
        self.value = value
        super.init(valueType: ObjectIdentifier(T.self))
    }
}

/// The decoded values of a memory tier: a ring of `capacity` boxes, each stamped with the stamp its
/// entry's header carries. A new decoding takes the next slot, so the most recent `capacity` decodings are
/// kept; an entry whose slot was reused (or whose bytes were replaced: new bytes carry another stamp, or
/// none) simply decodes again. Touched only under the tier's lock, except `nextStamp`.
///
/// The ring holds only references (8 bytes a slot); the stamp and the type are checked in the box, which a
/// hit reads anyway for the value. Slots holding stamp and type beside the box (24 bytes) cost one more
/// cache miss per hit on a 10,000-key working set.
final class DecodedValues: @unchecked Sendable {
    let capacity: Int
    private let counter = Atomic<Int64>(0)
    private var ring: [DecodedBoxBase?] = []

    init(capacity: Int) { self.capacity = capacity }

    /// A new stamp (never 0).
    func nextStamp() -> Int64 { counter.wrappingAdd(1, ordering: .relaxed).newValue }

    func put(_ box: DecodedBoxBase, stamp: Int64) {
        guard capacity > 0 else { return }
        if ring.isEmpty { ring = Array(repeating: nil, count: capacity) }
        box.stamp = stamp
        ring[Int(stamp % Int64(capacity))] = box
    }

    /// The box for `stamp` when it holds a value of the type `type` identifies.
    @inline(__always)
    func box(stamp: Int64, type: ObjectIdentifier) -> DecodedBoxBase? {
        guard !ring.isEmpty, let box = ring[Int(stamp % Int64(capacity))], box.stamp == stamp, box.valueType == type else { return nil }
        return box
    }
}
