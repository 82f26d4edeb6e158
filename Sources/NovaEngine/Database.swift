internal import CNovaSystem

/// Where a key lives inside a database: valid until the database is next modified.
public struct EntryRef: Hashable, Sendable {
    public let segment: Int
    public let index: Int
}

/// One numbered database: a keyspace split into 1024 segments by key hash.
///
/// Segments keep every operation's cost local: growth rehashes one segment at a time, a point-in-time
/// snapshot shares all segments and a later write copies only the segment it touches, and SCAN walks
/// segments in a fixed order (keys never move between segments), so a full iteration returns every key
/// present throughout it.
///
/// A reference type, so that the hot path reaches its tables without copying them; `snapshot()` gives
/// the value-semantics copy that a background save needs.
public final class Database {
    /// log2 of the number of segments.
    public static let segmentBits = 10
    /// The number of segments; SCAN cursors count segments.
    public static let segmentCount = 1 << segmentBits

    @usableFromInline
    var segments: [ByteKeyTable<KeyRecord>]
    private var volatileBySegment: [UInt32]

    /// The number of keys.
    public private(set) var count = 0
    /// The number of keys with an expiry.
    public private(set) var volatileCount = 0
    /// Memory used by keys and values, by the engine's accounting.
    public private(set) var footprint = 0
    /// Sum of the expiry times of keys with an expiry (for the average TTL in INFO keyspace).
    public private(set) var expireSum = 0.0

    public init() {
        segments = Array(repeating: ByteKeyTable(), count: Self.segmentCount)
        volatileBySegment = Array(repeating: 0, count: Self.segmentCount)
    }

    @inline(__always)
    static func segment(of hash: UInt64) -> Int { Int(truncatingIfNeeded: hash >> (64 - UInt64(segmentBits))) }

    /// Finds `key`.
    /// - Complexity: O(1) on average.
    @inlinable
    public func find(_ key: some ContiguousBytes) -> EntryRef? {
        key.withBytes { find(raw: $0) }
    }

    @usableFromInline
    func find(raw key: UnsafeRawBufferPointer) -> EntryRef? {
        find(raw: key, hash: KeyHashing.hash(key))
    }

    /// Finds a key whose hash the caller already computed (to insert with the same hash on a miss).
    public func find(raw key: UnsafeRawBufferPointer, hash: UInt64) -> EntryRef? {
        let segment = Self.segment(of: hash)
        guard let index = segments[segment].find(key, hash: hash) else { return nil }
        return EntryRef(segment: segment, index: index)
    }

    /// Calls `body` with the entry at `ref` (its key copied, its value read in place).
    @inlinable
    public func withEntry<R>(_ ref: EntryRef, _ body: (borrowing Entry) throws -> R) rethrows -> R {
        try body(self[ref])
    }

    /// Calls `body` with the value at `ref`, read in place from the key's record.
    @inlinable
    public func withValue<R>(_ ref: EntryRef, _ body: (borrowing Value) throws -> R) rethrows -> R {
        try body(value(at: ref))
    }

    /// The value at `ref`.
    @usableFromInline
    func value(at ref: EntryRef) -> Value {
        segments[ref.segment].withElement(at: ref.index) { $0.value }
    }

    /// The access clock of the key at `ref`.
    @usableFromInline
    func access(_ ref: EntryRef) -> UInt32 {
        segments[ref.segment].withElement(at: ref.index) { $0.access }
    }

    /// Prefetches what looking up keys with these hashes will read, for several keys at once so that
    /// their cache misses overlap instead of following one another: every home slot first, then every
    /// table element those slots point to, then every key's record (key, expiry and small value), then
    /// the block of every string kept outside its record (`KeyRecord.storedStringBlock`).
    /// Nothing changes; a wrong guess (a key that is absent, a tag shared by another key) costs a load.
    public func prefetch(hashes: UnsafeBufferPointer<UInt64>) {
        for hash in hashes {
            if let address = segments[Self.segment(of: hash)].homeSlotAddress(hash: hash) { nova_prefetch(address) }
        }
        var found = 0
        withUnsafeTemporaryAllocation(of: EntryRef.self, capacity: hashes.count) { refs in
            for hash in hashes {
                let segment = Self.segment(of: hash)
                guard let index = segments[segment].likelyIndex(hash: hash) else { continue }
                nova_prefetch(segments[segment].elementAddress(index))
                refs.initializeElement(at: found, to: EntryRef(segment: segment, index: index))
                found += 1
            }
            withUnsafeTemporaryAllocation(of: Unmanaged<KeyRecord>.self, capacity: found) { records in
                for (position, ref) in refs[0..<found].enumerated() {
                    let record = segments[ref.segment].withElement(at: ref.index) { Unmanaged.passUnretained($0) }
                    nova_prefetch(record.toOpaque())
                    records.initializeElement(at: position, to: record)
                }
                // The tables are not changed meanwhile: the records are held by them.
                for record in records[0..<found] {
                    if let block = record._withUnsafeGuaranteedRef({ $0.storedStringBlock }) { nova_prefetch(block) }
                }
            }
        }
    }

    /// Makes room for about `count` more keys (a snapshot's RESIZEDB hint), so that loading them does not
    /// rebuild every segment's slots several times over. Each segment is sized for its expected share
    /// and two standard deviations more (keys spread over segments binomially); a segment that gets more
    /// grows as usual. Hints too small to matter (under 16 keys per segment) are ignored.
    public func reserveCapacity(forAdditionalKeys count: Int) {
        let share = count / Self.segmentCount
        guard share >= 16 else { return }
        let margin = 2 * Int(Double(share).squareRoot().rounded(.up))
        for index in segments.indices {
            segments[index].reserveCapacity(segments[index].count + share + margin)
        }
    }

    /// Exchanges the whole contents of two databases (SWAPDB), leaving the objects in place.
    public func swapContents(with other: Database) {
        swap(&segments, &other.segments)
        swap(&volatileBySegment, &other.volatileBySegment)
        swap(&count, &other.count)
        swap(&volatileCount, &other.volatileCount)
        swap(&footprint, &other.footprint)
        swap(&expireSum, &other.expireSum)
    }

    /// The entry at `ref`.
    public subscript(ref: EntryRef) -> Entry { segments[ref.segment].withElement(at: ref.index) { $0.entry } }

    /// Adds a key that is not present. Returns where it lives.
    /// - Complexity: amortised O(1).
    @discardableResult
    public func insert(_ entry: Entry) -> EntryRef {
        insert(entry, hash: entry.key.withBytes { KeyHashing.hash($0) })
    }

    /// Adds a key that is not present, whose hash the caller already computed.
    @discardableResult
    public func insert(_ entry: Entry, hash: UInt64) -> EntryRef {
        entry.key.withBytes { insert(key: $0, value: entry.value, expireAt: entry.expireAt, access: entry.access, hash: hash) }
    }

    /// Adds the key `key` (not present) holding `value`, whose hash the caller already computed. The key
    /// is copied once, into its record.
    func insert(key: UnsafeRawBufferPointer, value: Value, expireAt: Int64, access: UInt32, hash: UInt64) -> EntryRef {
        insert(KeyRecord.make(key: key, value: value, expireAt: expireAt, access: access), hash: hash)
    }

    /// Adds a key that is not present holding the string `bytes` (copied once, into the key's record;
    /// never an integer's digits, which are `Value.int`), whose hash the caller already computed.
    func insert(key: UnsafeRawBufferPointer, string bytes: UnsafeRawBufferPointer, expireAt: Int64, access: UInt32, hash: UInt64) -> EntryRef {
        insert(KeyRecord.make(key: key, string: bytes, expireAt: expireAt, access: access), hash: hash)
    }

    private func insert(_ record: KeyRecord, hash: UInt64) -> EntryRef {
        let segment = Self.segment(of: hash)
        let expireAt = record.expireAt
        let index = segments[segment].insert(record, hash: hash)
        count += 1
        footprint += record.footprint
        if expireAt != 0 {
            volatileCount += 1
            volatileBySegment[segment] += 1
            expireSum += Double(expireAt)
        }
        return EntryRef(segment: segment, index: index)
    }

    /// Removes the key at `ref` and returns it. Other refs into the same segment become invalid.
    /// - Complexity: O(1) on average.
    @discardableResult
    public func remove(_ ref: EntryRef) -> Entry {
        let record = segments[ref.segment].remove(at: ref.index)
        let entry = record.entry
        count -= 1
        footprint -= record.footprint
        if entry.expireAt != 0 {
            volatileCount -= 1
            volatileBySegment[ref.segment] -= 1
            expireSum -= Double(entry.expireAt)
        }
        if volatileCount == 0 { expireSum = 0 }
        return entry
    }

    /// Replaces the value at `ref`, keeping the key's expiry.
    public func setValue(_ ref: EntryRef, _ value: Value) {
        footprint += segments[ref.segment].update(at: ref.index) { record in
            let unique = isKnownUniquelyReferenced(&record)
            return KeyRecord.replaceValue(&record, with: value, unique: unique)
        }
    }

    /// Replaces the value at `ref` with the string `bytes` (as `insert(key:string:...)`), keeping the
    /// key's expiry.
    func setString(_ ref: EntryRef, _ bytes: UnsafeRawBufferPointer) {
        footprint += segments[ref.segment].update(at: ref.index) { record in
            let unique = isKnownUniquelyReferenced(&record)
            return KeyRecord.replaceValue(&record, withString: bytes, unique: unique)
        }
    }

    /// Mutates the value at `ref`. A value kept outside its record is moved out of it while `body` runs,
    /// so that a uniquely held collection is modified without a copy; an inline value is read in place,
    /// and a changed one is written back into the record (in place when it keeps its kind and size, else
    /// into a new record). `body` must not reach back into this database (exclusive access to its
    /// storage is held meanwhile).
    public func modifyValue<R>(_ ref: EntryRef, _ body: (inout Value) throws -> R) rethrows -> R {
        var change = 0
        defer { footprint += change }
        return try segments[ref.segment].update(at: ref.index) { record in
            if record.kind == .stored {
                if !isKnownUniquelyReferenced(&record) { record = record.copied() }
                var value = Value.int(0)
                record.exchangeStoredValue(&value)
                let valueBefore = value.footprint
                defer {
                    if KeyRecord.keepsStoredForm(value, in: record) {
                        change = value.footprint - valueBefore
                        record.exchangeStoredValue(&value)
                    } else {
                        let before = record.blockCost + valueBefore
                        record = record.remade(with: value)
                        change = record.footprint - before
                    }
                }
                return try body(&value)
            }
            var value = record.value
            defer {
                if !record.holds(value) {
                    let unique = isKnownUniquelyReferenced(&record)
                    change = KeyRecord.replaceValue(&record, with: value, unique: unique)
                }
            }
            return try body(&value)
        }
    }

    /// Sets the absolute expiry (Unix ms) of the key at `ref`; 0 makes it persistent.
    public func setExpire(_ ref: EntryRef, _ expireAt: Int64) {
        let (previous, change) = segments[ref.segment].update(at: ref.index) { record -> (Int64, Int) in
            let previous = record.expireAt
            guard previous != expireAt else { return (previous, 0) }
            let before = record.footprint
            let unique = isKnownUniquelyReferenced(&record)
            record = record.replacingExpiry(expireAt, unique: unique)
            return (previous, record.footprint - before)
        }
        footprint += change
        expireSum += Double(expireAt) - Double(previous)
        let was = previous != 0
        let now = expireAt != 0
        if was != now {
            volatileCount += now ? 1 : -1
            if now { volatileBySegment[ref.segment] += 1 } else { volatileBySegment[ref.segment] -= 1 }
        }
        if volatileCount == 0 { expireSum = 0 }
    }

    /// Updates the access clock of the key at `ref`.
    @inlinable
    public func setAccess(_ ref: EntryRef, _ access: UInt32) {
        updateAccess(ref, access)
    }

    @usableFromInline
    func updateAccess(_ ref: EntryRef, _ access: UInt32) {
        segments[ref.segment].update(at: ref.index) { record in
            if !isKnownUniquelyReferenced(&record) { record = record.copied() }
            record.access = access
        }
    }

    /// Removes every key.
    public func removeAll() {
        segments = Array(repeating: ByteKeyTable(), count: Self.segmentCount)
        volatileBySegment = Array(repeating: 0, count: Self.segmentCount)
        count = 0
        volatileCount = 0
        footprint = 0
        expireSum = 0
    }

    /// A point-in-time copy: O(number of segments) now, and each segment is copied later only if this
    /// database writes to it while the snapshot is alive.
    public func snapshot() -> DatabaseSnapshot {
        DatabaseSnapshot(segments: segments, count: count, volatileCount: volatileCount)
    }

    /// How many segments writes have copied since `snapshot` was taken of this database (each write to a
    /// segment the snapshot still shares copies that segment once): the forkless snapshot's
    /// copy-on-write cost so far.
    /// - Complexity: O(number of segments).
    public func segmentsCopied(since snapshot: DatabaseSnapshot) -> Int {
        var copied = 0
        for index in segments.indices where !snapshot.segments[index].isEmpty || !segments[index].isEmpty {
            if !segments[index].sharesStorage(with: snapshot.segments[index]) { copied += 1 }
        }
        return copied
    }

    /// The expiry of the key at `ref` (0 when persistent), without copying the entry.
    @inlinable
    public func expireAt(_ ref: EntryRef) -> Int64 { expiry(ref) }

    @usableFromInline
    func expiry(_ ref: EntryRef) -> Int64 { segments[ref.segment].expireAt(ref.index) }

    /// A uniformly chosen key, or nil when the database is empty.
    /// - Complexity: O(1) expected for large databases, O(segments) for small ones.
    public func randomRef(using generator: inout some RandomNumberGenerator) -> EntryRef? {
        guard count > 0 else { return nil }
        if count >= Self.segmentCount * 4 {
            // Dense: segments are near-equal in size, so a random segment then a random element is close
            // to uniform; rejection of the few empty segments costs little.
            while true {
                let segment = Int.random(in: 0..<Self.segmentCount, using: &generator)
                let size = segments[segment].count
                if size > 0 { return EntryRef(segment: segment, index: Int.random(in: 0..<size, using: &generator)) }
            }
        }
        var target = Int.random(in: 0..<count, using: &generator)
        for segment in 0..<Self.segmentCount {
            let size = segments[segment].count
            if target < size { return EntryRef(segment: segment, index: target) }
            target -= size
        }
        return nil
    }

    /// A uniformly chosen key with an expiry, or nil when there is none.
    public func randomVolatileRef(using generator: inout some RandomNumberGenerator) -> EntryRef? {
        guard volatileCount > 0 else { return nil }
        var target = Int.random(in: 0..<volatileCount, using: &generator)
        for segment in 0..<Self.segmentCount where volatileBySegment[segment] > 0 {
            let volatile = Int(volatileBySegment[segment])
            if target < volatile {
                let table = segments[segment]
                for index in 0..<table.count where table[index].expireAt != 0 {
                    if target == 0 { return EntryRef(segment: segment, index: index) }
                    target -= 1
                }
            }
            target -= volatile
        }
        return nil
    }

    /// The number of keys in segment `segment`.
    public func segmentCount(_ segment: Int) -> Int { segments[segment].count }

    /// The number of keys with an expiry in segment `segment`.
    public func volatileCount(inSegment segment: Int) -> Int { Int(volatileBySegment[segment]) }

    /// Calls `body` for each entry of `segment`, in storage order.
    public func forEach(inSegment segment: Int, _ body: (Entry) throws -> Void) rethrows {
        for record in segments[segment].elements { try body(record.entry) }
    }

    /// The entries of `segment`.
    public func entries(inSegment segment: Int) -> [Entry] { segments[segment].elements.map(\.entry) }

    /// Calls `body` for every entry.
    public func forEach(_ body: (Entry) throws -> Void) rethrows {
        for segment in segments {
            for record in segment.elements { try body(record.entry) }
        }
    }

    /// Memory used by the segment tables themselves.
    public var tableOverhead: Int { segments.reduce(0) { $0 + $1.overheadBytes } }
}

/// An immutable point-in-time copy of a database (for saving while clients keep writing).
/// (`@unchecked Sendable`: its key records are never changed while shared — a database copies a record
/// its table does not hold alone before writing to it — so another thread reads them safely.)
public struct DatabaseSnapshot: @unchecked Sendable {
    let segments: [ByteKeyTable<KeyRecord>]
    /// The number of keys at the time of the snapshot.
    public let count: Int
    /// The number of keys with an expiry at the time of the snapshot.
    public let volatileCount: Int

    /// How many records ahead of the one being read `forEach` prefetches.
    static let prefetchDistance = 8

    /// Calls `body` for every entry, segment by segment. The walk is bound by the cache misses of
    /// records scattered over the heap, so it prefetches the record `prefetchDistance` ahead of the one
    /// it reads (loaded as a plain address: no reference counting).
    public func forEach(_ body: (Entry) throws -> Void) rethrows {
        for segment in segments {
            try segment.elements.withUnsafeBufferPointer { records in
                guard let base = UnsafeRawPointer(records.baseAddress) else { return }
                let stride = MemoryLayout<KeyRecord>.stride
                for index in records.indices {
                    if index + Self.prefetchDistance < records.count {
                        nova_prefetch(base.load(fromByteOffset: (index + Self.prefetchDistance) * stride, as: UnsafeRawPointer.self))
                    }
                    try body(records[index].entry)
                }
            }
        }
    }
}

extension Database: @unchecked Sendable {}
