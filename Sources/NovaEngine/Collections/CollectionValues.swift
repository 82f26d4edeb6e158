public import DequeModule
import NovaRESP

/// Size limits that decide the compact encodings Redis reports (`hash-max-listpack-*`,
/// `set-max-intset-entries`, `zset-max-listpack-*`). Only OBJECT ENCODING depends on them here.
public struct EncodingLimits: Sendable {
    public var hashMaxListpackEntries = 512
    public var hashMaxListpackValue = 64
    public var setMaxIntsetEntries = 512
    public var zsetMaxListpackEntries = 128
    public var zsetMaxListpackValue = 64
    /// `stream-node-max-bytes` and `stream-node-max-entries`: when a stream opens a new node.
    public var streamNodeMaxBytes = 4096
    public var streamNodeMaxEntries = 100
    public init() {}
}

/// Bytes an element's strings cost, by the engine's accounting.
@inline(__always)
func cost(_ bytes: Bytes) -> Int { MemoryLayout<Bytes>.stride + bytes.heapFootprint }

// MARK: List

/// A list: a double-ended queue of byte strings (copy-on-write).
public struct ListValue: Sendable {
    public private(set) var items: Deque<Bytes> = []
    public private(set) var footprint = 64

    public init() {}

    public init<S: Sequence<Bytes>>(_ items: S) {
        for item in items { append(item) }
    }

    public var count: Int { items.count }
    public var isEmpty: Bool { items.isEmpty }
    public subscript(index: Int) -> Bytes { items[index] }

    public mutating func append(_ item: Bytes) {
        footprint += cost(item)
        items.append(item)
    }

    public mutating func prepend(_ item: Bytes) {
        footprint += cost(item)
        items.prepend(item)
    }

    public mutating func popFirst() -> Bytes? {
        guard let item = items.popFirst() else { return nil }
        footprint -= cost(item)
        return item
    }

    public mutating func popLast() -> Bytes? {
        guard let item = items.popLast() else { return nil }
        footprint -= cost(item)
        return item
    }

    public mutating func set(_ index: Int, _ item: Bytes) {
        footprint += cost(item) - cost(items[index])
        items[index] = item
    }

    public mutating func insert(_ item: Bytes, at index: Int) {
        footprint += cost(item)
        items.insert(item, at: index)
    }

    public mutating func remove(at index: Int) -> Bytes {
        let item = items.remove(at: index)
        footprint -= cost(item)
        return item
    }

    /// Keeps only `range` (LTRIM).
    public mutating func keep(_ range: Range<Int>) {
        if range.isEmpty {
            items.removeAll()
            footprint = 64
            return
        }
        if range.upperBound < items.count { for _ in range.upperBound..<items.count { _ = popLast() } }
        for _ in 0..<range.lowerBound { _ = popFirst() }
    }
}

// MARK: Hash

/// A field of a hash.
public struct HashField: ByteKeyed, Sendable {
    public let key: Bytes
    public var value: Bytes
    public init(key: Bytes, value: Bytes) {
        self.key = key
        self.value = value
    }
}

/// A hash: fields and values in a `ByteKeyTable`.
public struct HashValue: Sendable {
    public private(set) var table = ByteKeyTable<HashField>()
    public private(set) var footprint = 64
    /// Redis's compact encoding: converted to a hash table once a limit is exceeded, never back.
    public private(set) var isListpack = true

    public init() {}

    public var count: Int { table.count }
    public var isEmpty: Bool { table.isEmpty }

    @inlinable
    public func value(_ field: some ContiguousBytes) -> Bytes? {
        table.index(of: field).map { table[$0].value }
    }

    /// Sets a field; returns true when it was new.
    @discardableResult
    public mutating func set(_ field: Bytes, _ value: Bytes, limits: EncodingLimits) -> Bool {
        if isListpack && (field.count > limits.hashMaxListpackValue || value.count > limits.hashMaxListpackValue) {
            isListpack = false
        }
        if let index = table.index(of: field) {
            footprint += cost(value) - cost(table[index].value)
            table.update(at: index) { $0.value = value }
            return false
        }
        footprint += cost(field) + cost(value) + 8
        table.insertNew(HashField(key: field, value: value))
        if isListpack && table.count > limits.hashMaxListpackEntries { isListpack = false }
        return true
    }

    /// Removes a field; returns whether it existed.
    @discardableResult
    public mutating func remove(_ field: some ContiguousBytes) -> Bool {
        guard let removed = table.remove(key: field) else { return false }
        footprint -= cost(removed.key) + cost(removed.value) + 8
        return true
    }

    /// The fields in storage order.
    public var fields: [HashField] { table.elements }

    /// Sets the encoding when loading (RDB/AOF keeps what was saved; Redis re-derives it).
    public mutating func deriveEncoding(limits: EncodingLimits) {
        isListpack = table.count <= limits.hashMaxListpackEntries
            && table.elements.allSatisfy { $0.key.count <= limits.hashMaxListpackValue && $0.value.count <= limits.hashMaxListpackValue }
    }
}

// MARK: Set

/// A member of a set.
public struct SetMember: ByteKeyed, Sendable {
    public let key: Bytes
    public init(_ key: Bytes) { self.key = key }
}

/// A set of byte strings.
public struct SetValue: Sendable {
    public private(set) var table = ByteKeyTable<SetMember>()
    public private(set) var footprint = 64
    /// Redis's `intset` encoding: only integers, at most `set-max-intset-entries`; never converted back.
    public private(set) var isIntset = true

    public init() {}

    public var count: Int { table.count }
    public var isEmpty: Bool { table.isEmpty }

    @inlinable
    public func contains(_ member: some ContiguousBytes) -> Bool { table.index(of: member) != nil }

    /// Adds a member; returns true when it was new.
    @discardableResult
    public mutating func add(_ member: Bytes, limits: EncodingLimits) -> Bool {
        guard table.index(of: member) == nil else { return false }
        if isIntset && (member.withBytes { RedisInteger.parse($0) } == nil) { isIntset = false }
        footprint += cost(member) + 8
        table.insertNew(SetMember(member))
        if isIntset && table.count > limits.setMaxIntsetEntries { isIntset = false }
        return true
    }

    /// Removes a member; returns whether it was present.
    @discardableResult
    public mutating func remove(_ member: some ContiguousBytes) -> Bool {
        guard let removed = table.remove(key: member) else { return false }
        footprint -= cost(removed.key) + 8
        return true
    }

    /// The members in storage order (sorted numerically while intset-encoded, as Redis returns them).
    public var members: [Bytes] {
        let members = table.elements.map(\.key)
        guard isIntset else { return members }
        return members.sorted { a, b in
            (a.withBytes { RedisInteger.parse($0) } ?? 0) < (b.withBytes { RedisInteger.parse($0) } ?? 0)
        }
    }

    /// The member at storage `index` (random access for SPOP / SRANDMEMBER).
    public subscript(index: Int) -> Bytes { table[index].key }

    public mutating func deriveEncoding(limits: EncodingLimits) {
        isIntset = table.count <= limits.setMaxIntsetEntries
            && table.elements.allSatisfy { $0.key.withBytes { RedisInteger.parse($0) } != nil }
    }
}

// MARK: Sorted set

/// A sorted-set element: ordered by score, then by member bytes (as Redis's skiplist).
public struct ScoredMember: Comparable, Sendable {
    public var score: Double
    public var member: Bytes

    public init(score: Double, member: Bytes) {
        self.score = score
        self.member = member
    }

    public static func < (a: ScoredMember, b: ScoredMember) -> Bool {
        if a.score != b.score { return a.score < b.score }
        return a.member < b.member
    }

    public static func == (a: ScoredMember, b: ScoredMember) -> Bool {
        a.score == b.score && a.member == b.member
    }
}

/// A member's score, for lookup by member.
public struct MemberScore: ByteKeyed, Sendable {
    public let key: Bytes
    public var score: Double
}

/// A sorted set: members by score in a counted B-tree (O(log n) rank and range) and scores by member.
public struct SortedSetValue: Sendable {
    public private(set) var ordered = CountedBTree<ScoredMember>()
    public private(set) var scores = ByteKeyTable<MemberScore>()
    public private(set) var footprint = 64
    /// Redis's `listpack` encoding for small sorted sets (else `skiplist`); never converted back.
    public private(set) var isListpack = true

    public init() {}

    /// An empty sorted set that starts in the skiplist encoding when `listpack` is false (keeping -0 scores
    /// as given, as Redis's skiplist does).
    public init(listpack: Bool) { isListpack = listpack }

    public var count: Int { scores.count }
    public var isEmpty: Bool { scores.isEmpty }

    @inlinable
    public func score(_ member: some ContiguousBytes) -> Double? {
        scores.index(of: member).map { scores[$0].score }
    }

    /// Sets `member`'s score; returns its previous score (nil when it was new).
    @discardableResult
    public mutating func set(_ member: Bytes, score requested: Double, limits: EncodingLimits) -> Double? {
        if isListpack && member.count > limits.zsetMaxListpackValue { isListpack = false }
        let existing = scores.index(of: member)
        if isListpack && existing == nil && scores.count + 1 > limits.zsetMaxListpackEntries { isListpack = false }
        // A listpack keeps scores as text, where -0 reads back as 0.
        let score = isListpack && requested == 0 ? 0 : requested
        if let index = existing {
            let previous = scores[index].score
            if previous != score {
                ordered.remove(ScoredMember(score: previous, member: member))
                ordered.insert(ScoredMember(score: score, member: member))
                scores.update(at: index) { $0.score = score }
            }
            return previous
        }
        scores.insertNew(MemberScore(key: member, score: score))
        ordered.insert(ScoredMember(score: score, member: member))
        footprint += cost(member) * 2 + 24
        return nil
    }

    /// Removes `member`; returns whether it was present.
    @discardableResult
    public mutating func remove(_ member: some ContiguousBytes) -> Bool {
        guard let removed = scores.remove(key: member) else { return false }
        ordered.remove(ScoredMember(score: removed.score, member: removed.key))
        footprint -= cost(removed.key) * 2 + 24
        return true
    }

    /// The 0-based rank of `member` by ascending score.
    public func rank(_ member: some ContiguousBytes) -> Int? {
        guard let index = scores.index(of: member) else { return nil }
        let element = scores[index]
        return ordered.rank(of: ScoredMember(score: element.score, member: element.key))
    }

    /// The element at rank `index`.
    public subscript(index: Int) -> ScoredMember { ordered[index] }

    public mutating func deriveEncoding(limits: EncodingLimits) {
        isListpack = scores.count <= limits.zsetMaxListpackEntries
            && scores.elements.allSatisfy { $0.key.count <= limits.zsetMaxListpackValue }
    }
}
