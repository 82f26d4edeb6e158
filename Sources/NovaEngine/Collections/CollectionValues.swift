import DequeModule
import NovaRESP

/// Size limits that decide the compact encodings (`hash-max-listpack-*`, `set-max-intset-entries`,
/// `zset-max-listpack-*`): when a small collection stops being one listpack, and so OBJECT ENCODING.
public struct EncodingLimits: Sendable {
    public var hashMaxListpackEntries = 512
    public var hashMaxListpackValue = 64
    public var setMaxIntsetEntries = 512
    /// How large a set of strings stays one listpack (Redis 7.2's and Valkey's `set-max-listpack-*`
    /// defaults). Redis 7.0 has no such setting and reports these sets as `hashtable`, so neither is
    /// configurable here: they decide memory, not anything a client sees.
    public var setMaxListpackEntries = 128
    public var setMaxListpackValue = 64
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

/// The table form of a large hash or set: one optional class reference (copied on write), so that the
/// value stays small while the collection is compact or the table is shared with a snapshot.
struct BoxedTable<Element: ByteKeyed>: @unchecked Sendable {
    private final class Box {
        var table = ByteKeyTable<Element>()
        /// What the table's elements cost, by the engine's accounting.
        var footprint = 64

        func copy() -> Box {
            let other = Box()
            other.table = table
            other.footprint = footprint
            return other
        }
    }

    private var box: Box?

    private mutating func unique() {
        if !isKnownUniquelyReferenced(&box) { box = box?.copy() ?? Box() }
    }

    /// Runs one write on the table and its footprint: a single uniqueness check, then both fields in place.
    mutating func modify<R>(_ body: (inout ByteKeyTable<Element>, inout Int) throws -> R) rethrows -> R {
        unique()
        let box = self.box.unsafelyUnwrapped
        return try body(&box.table, &box.footprint)
    }

    /// What the elements and the table's own arrays cost (64 before the first write), read in place.
    var totalFootprint: Int {
        guard let box else { return 64 }
        return box.footprint + box.table.overheadBytes
    }

    /// Calls `body` with the table (empty before the first write), in place.
    func read<R>(_ body: (ByteKeyTable<Element>) throws -> R) rethrows -> R {
        guard let box else { return try body(ByteKeyTable()) }
        return try body(box.table)
    }

    /// Starts over with `elements`, which cost `footprint` (a conversion from the compact form).
    mutating func replace(with elements: some Sequence<Element>, footprint: Int) {
        let box = Box()
        for element in elements { box.table.insertNew(element) }
        box.footprint = footprint
        self.box = box
    }
}

// MARK: List

/// A list. A small one is one listpack (Redis 7.2's and Valkey's `listpack` lists; Redis 7.0 reports
/// `quicklist` for every list, and so does OBJECT ENCODING here): up to `maxCompactEntries` elements in
/// at most `maxCompactBytes`. Past either it becomes a double-ended queue of byte strings, never
/// converted back.
/// (`@unchecked Sendable`: its box is changed only when uniquely referenced — value semantics.)
public struct ListValue: @unchecked Sendable {
    /// The compact form, nil once converted.
    @usableFromInline private(set) var compact: Listpack?
    /// The deque form, boxed so that a list (like every value) fits the 24 bytes of a key's entry.
    private var large: Large?
    /// The number of elements.
    public private(set) var count = 0

    private final class Large {
        var items: Deque<Bytes> = []
        var footprint = 64
        func copy() -> Large {
            let other = Large()
            other.items = items
            other.footprint = footprint
            return other
        }
    }

    /// Runs one write on the deque form: a single uniqueness check, then its fields in place.
    private mutating func modifyLarge<R>(_ body: (Large) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&large) { large = large?.copy() ?? Large() }
        return try body(large.unsafelyUnwrapped)
    }

    /// The compact form's limits: with them every operation on it stays a short walk and memmove.
    public static let maxCompactEntries = 128
    public static let maxCompactBytes = 8192

    public init() { compact = Listpack() }

    /// The compact list `compact` of `count` elements (a key record's payload).
    init(compact: Listpack, count: Int) {
        self.compact = compact
        self.count = count
    }

    public init<S: Sequence<Bytes>>(_ items: S) {
        self.init()
        for item in items { append(item) }
    }

    public var isEmpty: Bool { count == 0 }

    /// Whether the list is one listpack.
    public var isCompact: Bool { compact != nil }

    /// Heap bytes the list takes, by the engine's accounting.
    public var footprint: Int {
        if let compact { return 64 + compact.heapFootprint }
        return large?.footprint ?? 64
    }

    // MARK: The compact form

    /// The offset of the element at `index` of a compact list, walking from the nearer end.
    private func offset(of index: Int) -> Int {
        let compact = compact!
        if index <= count / 2 {
            var offset = 6
            for _ in 0..<index { offset = compact.next(offset) }
            return offset
        }
        var offset = compact.endOffset
        for _ in index..<count { offset = compact.previous(offset)! }
        return offset
    }

    /// Whether `item` can join the compact form; converts the list when it cannot.
    private mutating func compactFits(adding item: Bytes) -> Bool {
        guard let compact else { return false }
        let size = item.withBytes { Listpack.elementSize($0) }
        if count + 1 <= Self.maxCompactEntries && compact.byteCount + size <= Self.maxCompactBytes {
            return true
        }
        convertToDeque()
        return false
    }

    private mutating func convertToDeque() {
        let elements = self.elements
        compact = nil
        let large = Large()
        large.items = Deque(elements)
        large.footprint = 64 + elements.reduce(0) { $0 + cost($1) }
        self.large = large
    }

    private mutating func insertCompact(_ item: Bytes, at offset: Int) {
        var encoded: [UInt8] = []
        item.withBytes { Listpack.encodeElement($0, into: &encoded) }
        compact!.replace(offset..<offset, with: encoded, elementDelta: 1)
    }

    private mutating func removeCompact(at offset: Int) -> Bytes {
        let item = compact!.value(at: offset)
        compact!.replace(offset..<compact!.next(offset), with: [], elementDelta: -1)
        return item
    }

    // MARK: Operations

    /// The element at `index`.
    /// - Complexity: O(1), O(n) for a compact list.
    public subscript(index: Int) -> Bytes {
        guard let compact else { return large.unsafelyUnwrapped.items[index] }
        return compact.value(at: offset(of: index))
    }

    public mutating func append(_ item: Bytes) {
        if compactFits(adding: item) {
            insertCompact(item, at: compact!.endOffset)
        } else {
            modifyLarge { large in
                large.footprint += cost(item)
                large.items.append(item)
            }
        }
        count += 1
    }

    public mutating func prepend(_ item: Bytes) {
        if compactFits(adding: item) {
            insertCompact(item, at: 6)
        } else {
            modifyLarge { large in
                large.footprint += cost(item)
                large.items.prepend(item)
            }
        }
        count += 1
    }

    public mutating func popFirst() -> Bytes? {
        guard count > 0 else { return nil }
        count -= 1
        if compact != nil { return removeCompact(at: 6) }
        return modifyLarge { large in
            let item = large.items.removeFirst()
            large.footprint -= cost(item)
            return item
        }
    }

    public mutating func popLast() -> Bytes? {
        guard count > 0 else { return nil }
        count -= 1
        if compact != nil { return removeCompact(at: compact!.previous(compact!.endOffset)!) }
        return modifyLarge { large in
            let item = large.items.removeLast()
            large.footprint -= cost(item)
            return item
        }
    }

    public mutating func set(_ index: Int, _ item: Bytes) {
        if compact != nil {
            let offset = offset(of: index)
            let old = compact!.next(offset) - offset
            if compact!.byteCount - old + item.withBytes({ Listpack.elementSize($0) }) <= Self.maxCompactBytes {
                var encoded: [UInt8] = []
                item.withBytes { Listpack.encodeElement($0, into: &encoded) }
                compact!.replace(offset..<(offset + old), with: encoded, elementDelta: 0)
                return
            }
            convertToDeque()
        }
        modifyLarge { large in
            large.footprint += cost(item) - cost(large.items[index])
            large.items[index] = item
        }
    }

    public mutating func insert(_ item: Bytes, at index: Int) {
        if compactFits(adding: item) {
            insertCompact(item, at: index == count ? compact!.endOffset : offset(of: index))
        } else {
            modifyLarge { large in
                large.footprint += cost(item)
                large.items.insert(item, at: index)
            }
        }
        count += 1
    }

    public mutating func remove(at index: Int) -> Bytes {
        if compact != nil {
            let item = removeCompact(at: offset(of: index))
            count -= 1
            return item
        }
        count -= 1
        return modifyLarge { large in
            let item = large.items.remove(at: index)
            large.footprint -= cost(item)
            return item
        }
    }

    /// Keeps only `range` (LTRIM).
    public mutating func keep(_ range: Range<Int>) {
        if compact != nil {
            guard !range.isEmpty else {
                compact = Listpack()
                count = 0
                return
            }
            let start = offset(of: range.lowerBound)
            let end = range.upperBound == count ? compact!.endOffset : offset(of: range.upperBound)
            compact!.replace(end..<compact!.endOffset, with: [], elementDelta: -(count - range.upperBound))
            compact!.replace(6..<start, with: [], elementDelta: -range.lowerBound)
            count = range.count
            return
        }
        if range.isEmpty {
            large = nil
            count = 0
            return
        }
        if range.upperBound < count { for _ in range.upperBound..<count { _ = popLast() } }
        for _ in 0..<range.lowerBound { _ = popFirst() }
    }

    /// Calls `body` with the elements at `range`, in order or, when `reversed`, from the last, without
    /// copying them, until it returns false.
    public func forEach(
        in range: Range<Int>, reversed: Bool = false, _ body: (UnsafeRawBufferPointer) throws -> Bool
    ) rethrows {
        let range = range.clamped(to: 0..<count)
        guard !range.isEmpty else { return }
        guard let compact else {
            let items = large.unsafelyUnwrapped.items
            if reversed {
                for index in range.reversed() { guard try items[index].withBytes(body) else { return } }
            } else {
                for index in range { guard try items[index].withBytes(body) else { return } }
            }
            return
        }
        var offset = self.offset(of: reversed ? range.upperBound - 1 : range.lowerBound)
        for _ in range {
            guard try compact.withElementBytes(at: offset, body) else { return }
            if reversed {
                guard let previous = compact.previous(offset) else { return }
                offset = previous
            } else {
                offset = compact.next(offset)
            }
        }
    }

    /// All elements in order.
    public var elements: [Bytes] {
        guard let compact else { return large.map { Array($0.items) } ?? [] }
        var result: [Bytes] = []
        result.reserveCapacity(count)
        var offset = 6
        while !compact.isEnd(offset) {
            result.append(compact.value(at: offset))
            offset = compact.next(offset)
        }
        return result
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

/// A hash. Small hashes are one listpack of fields and values alternating, in insertion order (Redis's
/// `listpack` encoding, and its memory cost); past `hash-max-listpack-entries` fields or a field or value
/// longer than `hash-max-listpack-value` bytes it converts, as Redis does, to a `ByteKeyTable` and never back.
/// (`@unchecked Sendable`: its box is changed only when uniquely referenced — value semantics.)
public struct HashValue: @unchecked Sendable {
    /// The compact form, nil once converted.
    @usableFromInline private(set) var compact: Listpack?
    /// The table form, boxed so that a hash (like every value) fits the 24 bytes of a key's entry.
    private var large = BoxedTable<HashField>()
    /// The number of fields.
    public private(set) var count = 0

    public init() { compact = Listpack() }

    /// The compact hash `compact` of `count` fields (a key record's payload).
    init(compact: Listpack, count: Int) {
        self.compact = compact
        self.count = count
    }

    public var isEmpty: Bool { count == 0 }

    /// Redis's compact encoding: converted to a hash table once a limit is exceeded, never back.
    public var isListpack: Bool { compact != nil }

    /// Heap bytes the hash takes, by the engine's accounting.
    public var footprint: Int {
        if let compact { return 64 + compact.heapFootprint }
        return large.totalFootprint
    }

    /// The value of `field`, or nil.
    public func value(_ field: some ContiguousBytes) -> Bytes? {
        guard let compact else { return large.read { table in table.index(of: field).map { table[$0].value } } }
        return field.withBytes { raw in
            HashValue.valueOffset(in: compact, ListpackNeedle(raw)).map { compact.value(at: $0) }
        }
    }

    /// The offset of the value whose field matches `needle`, in a compact hash.
    @usableFromInline
    static func valueOffset(in compact: Listpack, _ needle: ListpackNeedle) -> Int? {
        var offset = 6
        while !compact.isEnd(offset) {
            let value = compact.next(offset)
            if compact.matches(offset, needle) { return value }
            offset = compact.next(value)
        }
        return nil
    }

    /// Sets a field; returns true when it was new.
    @discardableResult
    public mutating func set(_ field: Bytes, _ value: Bytes, limits: EncodingLimits) -> Bool {
        if compact != nil {
            if field.count > limits.hashMaxListpackValue || value.count > limits.hashMaxListpackValue
                || !compact!.canGrow(by: field.count + value.count) {
                convertToTable()
            } else if setCompact(field, value, maxEntries: limits.hashMaxListpackEntries) {
                return true
            } else if compact != nil {
                return false
            }
        }
        let added = large.modify { table, footprint in
            let (found, hash) = table.probe(field)
            if let index = found {
                footprint += cost(value) - table.withElement(at: index) { cost($0.value) }
                table.update(at: index) { $0.value = value }
                return false
            }
            footprint += cost(field) + cost(value) + 8
            table.insert(HashField(key: field, value: value), hash: hash)
            return true
        }
        if added { count += 1 }
        return added
    }

    /// Sets a field of a compact hash: true when added; false when replaced, or when adding would exceed
    /// `maxEntries` (the hash is then converted, and the caller adds the field to the table).
    private mutating func setCompact(_ field: Bytes, _ value: Bytes, maxEntries: Int) -> Bool {
        var encoded: [UInt8] = []
        let found = field.withBytes { HashValue.valueOffset(in: compact!, ListpackNeedle($0)) }
        if let offset = found {
            value.withBytes { Listpack.encodeElement($0, into: &encoded) }
            let end = compact!.next(offset)
            compact!.replace(offset..<end, with: encoded, elementDelta: 0)
            return false
        }
        guard count + 1 <= maxEntries else {
            convertToTable()
            return false
        }
        field.withBytes { Listpack.encodeElement($0, into: &encoded) }
        value.withBytes { Listpack.encodeElement($0, into: &encoded) }
        let end = compact!.endOffset
        compact!.replace(end..<end, with: encoded, elementDelta: 2)
        count += 1
        return true
    }

    private mutating func convertToTable() {
        let fields = self.fields
        compact = nil
        large.replace(with: fields, footprint: fields.reduce(64) { $0 + cost($1.key) + cost($1.value) + 8 })
    }

    /// Removes a field; returns whether it existed.
    @discardableResult
    public mutating func remove(_ field: some ContiguousBytes) -> Bool {
        if compact != nil {
            guard let value = field.withBytes({ HashValue.valueOffset(in: compact!, ListpackNeedle($0)) }),
                  let start = compact!.previous(value) else { return false }
            compact!.replace(start..<compact!.next(value), with: [], elementDelta: -2)
            count -= 1
            return true
        }
        let removed = large.modify { table, footprint in
            guard let removed = table.remove(key: field) else { return false }
            footprint -= cost(removed.key) + cost(removed.value) + 8
            return true
        }
        if removed { count -= 1 }
        return removed
    }

    /// The fields in storage order (insertion order while compact).
    public var fields: [HashField] {
        guard let compact else { return large.read { $0.elements } }
        var result: [HashField] = []
        result.reserveCapacity(count)
        var offset = 6
        while !compact.isEnd(offset) {
            let value = compact.next(offset)
            result.append(HashField(key: compact.value(at: offset), value: compact.value(at: value)))
            offset = compact.next(value)
        }
        return result
    }

    /// Calls `body` with each field and value in storage order, without copying them.
    public func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
        guard let compact else {
            return try large.read { table in
                for field in table.elements {
                    try field.key.withBytes { key in try field.value.withBytes { try body(key, $0) } }
                }
            }
        }
        var offset = 6
        while !compact.isEnd(offset) {
            let value = compact.next(offset)
            try compact.withElementBytes(at: offset) { key in try compact.withElementBytes(at: value) { try body(key, $0) } }
            offset = compact.next(value)
        }
    }

    /// The field at storage position `index` (0..<count), for a random pick.
    /// - Complexity: O(1) for a table, O(n) for a compact hash.
    public func field(at index: Int) -> HashField {
        guard let compact else { return large.read { $0[index] } }
        var offset = 6
        for _ in 0..<index { offset = compact.next(compact.next(offset)) }
        return HashField(key: compact.value(at: offset), value: compact.value(at: compact.next(offset)))
    }

    /// Sets the encoding after loading (RDB/AOF), as Redis re-derives it from the limits.
    public mutating func deriveEncoding(limits: EncodingLimits) {
        let fits = count <= limits.hashMaxListpackEntries
            && fields.allSatisfy { $0.key.count <= limits.hashMaxListpackValue && $0.value.count <= limits.hashMaxListpackValue }
        if !fits && compact != nil { convertToTable() }
    }
}

// MARK: Set

/// A member of a set.
public struct SetMember: ByteKeyed, Sendable {
    public let key: Bytes
    public init(_ key: Bytes) { self.key = key }
}

/// A set of byte strings. Small sets are one listpack: integers in ascending order while every member is
/// an integer (Redis's `intset`, up to `set-max-intset-entries`), else members in insertion order up to
/// `setMaxListpackEntries` members of at most `setMaxListpackValue` bytes (Redis 7.2's and Valkey's
/// listpack sets; OBJECT ENCODING still reports Redis 7.0's `hashtable` for them). Larger sets are a
/// `ByteKeyTable`, never converted back.
/// (`@unchecked Sendable`: its box is changed only when uniquely referenced — value semantics.)
public struct SetValue: @unchecked Sendable {
    /// The compact form, nil once converted.
    @usableFromInline private(set) var compact: Listpack?
    /// The table form, boxed so that a set (like every value) fits the 24 bytes of a key's entry.
    private var large = BoxedTable<SetMember>()
    /// The member count, and in the top bit whether the set is an intset (one word, for the same reason).
    private var countAndIntset: UInt64 = 1 << 63

    /// The number of members.
    public private(set) var count: Int {
        get { Int(countAndIntset & ~(1 << 63)) }
        set { countAndIntset = countAndIntset & (1 << 63) | UInt64(newValue) }
    }

    /// Redis's `intset` encoding: only integers, at most `set-max-intset-entries`; never converted back.
    public private(set) var isIntset: Bool {
        get { countAndIntset >> 63 == 1 }
        set { countAndIntset = countAndIntset & ~(1 << 63) | (newValue ? 1 << 63 : 0) }
    }

    public init() { compact = Listpack() }

    /// The compact set `compact` of `count` members, an intset or not (a key record's payload).
    init(compact: Listpack, count: Int, isIntset: Bool) {
        self.compact = compact
        self.count = count
        self.isIntset = isIntset
    }

    public var isEmpty: Bool { count == 0 }

    /// Whether the set is one listpack (an intset or a small set of strings).
    public var isCompact: Bool { compact != nil }

    /// Heap bytes the set takes, by the engine's accounting.
    public var footprint: Int {
        if let compact { return 64 + compact.heapFootprint }
        return large.totalFootprint
    }

    /// The offset of `needle` in a compact set, or where it would go in an intset (with `found` false).
    private static func find(in compact: Listpack, _ needle: ListpackNeedle, sorted: Bool) -> (offset: Int, found: Bool) {
        var offset = 6
        while !compact.isEnd(offset) {
            if sorted, let wanted = needle.integer, case .integer(let value) = compact.element(at: offset).0, value >= wanted {
                return (offset, value == wanted)
            }
            if !sorted && compact.matches(offset, needle) { return (offset, true) }
            offset = compact.next(offset)
        }
        return (offset, false)
    }

    public func contains(_ member: some ContiguousBytes) -> Bool {
        guard compact == nil else { return compactContains(member) }
        return large.read { $0.index(of: member) != nil }
    }

    @usableFromInline
    func compactContains(_ member: some ContiguousBytes) -> Bool {
        guard let compact else { return false }
        return member.withBytes { raw in
            let needle = ListpackNeedle(raw)
            if isIntset && needle.integer == nil { return false }
            return Self.find(in: compact, needle, sorted: isIntset).found
        }
    }

    /// Adds a member; returns true when it was new.
    @discardableResult
    public mutating func add(_ member: Bytes, limits: EncodingLimits) -> Bool {
        if compact != nil {
            let added: Bool? = member.withBytes { raw in
                let needle = ListpackNeedle(raw)
                let staysIntset = isIntset && needle.integer != nil
                let place = isIntset && !staysIntset
                    ? (offset: compact!.endOffset, found: false)
                    : Self.find(in: compact!, needle, sorted: isIntset)
                if place.found { return false }
                let fits = staysIntset
                    ? count + 1 <= limits.setMaxIntsetEntries
                    : count + 1 <= limits.setMaxListpackEntries && raw.count <= limits.setMaxListpackValue
                guard fits && compact!.canGrow(by: raw.count) else { return nil }
                var encoded: [UInt8] = []
                Listpack.encodeElement(raw, into: &encoded)
                compact!.replace(place.offset..<place.offset, with: encoded, elementDelta: 1)
                isIntset = staysIntset
                count += 1
                return true
            }
            if let added { return added }
            convertToTable()
        }
        let added = large.modify { table, footprint in
            let (found, hash) = table.probe(member)
            guard found == nil else { return false }
            footprint += cost(member) + 8
            table.insert(SetMember(member), hash: hash)
            return true
        }
        if added { count += 1 }
        return added
    }

    private mutating func convertToTable() {
        let members = self.members
        compact = nil
        isIntset = false
        large.replace(with: members.lazy.map(SetMember.init), footprint: members.reduce(64) { $0 + cost($1) + 8 })
    }

    /// Removes a member; returns whether it was present.
    @discardableResult
    public mutating func remove(_ member: some ContiguousBytes) -> Bool {
        if compact != nil {
            let place = member.withBytes { raw -> (offset: Int, found: Bool) in
                let needle = ListpackNeedle(raw)
                if isIntset && needle.integer == nil { return (0, false) }
                return Self.find(in: compact!, needle, sorted: isIntset)
            }
            guard place.found else { return false }
            compact!.replace(place.offset..<compact!.next(place.offset), with: [], elementDelta: -1)
            count -= 1
            return true
        }
        let removed = large.modify { table, footprint in
            guard let removed = table.remove(key: member) else { return false }
            footprint -= cost(removed.key) + 8
            return true
        }
        if removed { count -= 1 }
        return removed
    }

    /// The members in storage order (ascending while intset-encoded, as Redis returns them).
    public var members: [Bytes] {
        guard let compact else { return large.read { $0.elements.map(\.key) } }
        var result: [Bytes] = []
        result.reserveCapacity(count)
        var offset = 6
        while !compact.isEnd(offset) {
            result.append(compact.value(at: offset))
            offset = compact.next(offset)
        }
        return result
    }

    /// Calls `body` with each member in storage order, without copying it.
    public func forEach(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        guard let compact else {
            return try large.read { table in
                for member in table.elements { try member.key.withBytes(body) }
            }
        }
        var offset = 6
        while !compact.isEnd(offset) {
            try compact.withElementBytes(at: offset, body)
            offset = compact.next(offset)
        }
    }

    /// The member at storage `index` (random access for SPOP / SRANDMEMBER).
    /// - Complexity: O(1) for a table, O(n) for a compact set.
    public subscript(index: Int) -> Bytes {
        guard let compact else { return large.read { $0[index].key } }
        var offset = 6
        for _ in 0..<index { offset = compact.next(offset) }
        return compact.value(at: offset)
    }

    public mutating func deriveEncoding(limits: EncodingLimits) {
        guard compact != nil else { return }
        let fits = isIntset
            ? count <= limits.setMaxIntsetEntries
            : count <= limits.setMaxListpackEntries && members.allSatisfy { $0.count <= limits.setMaxListpackValue }
        if !fits { convertToTable() }
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

/// A sorted set. Small ones are one listpack of member and score pairs in ascending order (Redis's
/// `listpack` encoding and its memory cost; a score that is an integer of at most 53 bits is an integer
/// element, any other its 8 bytes as a string element, so reading one back is exact and needs no parsing).
/// Past `zset-max-listpack-entries` members or a member longer than `zset-max-listpack-value` bytes it
/// converts, as Redis does, to members by score in a counted B-tree (O(log n) rank and range) plus
/// scores by member, and never back.
/// (`@unchecked Sendable`: its box is changed only when uniquely referenced — value semantics.)
public struct SortedSetValue: @unchecked Sendable {
    /// The compact form, nil once converted.
    @usableFromInline private(set) var compact: Listpack?
    /// The tree form, boxed so that a sorted set (like every value) fits the 24 bytes of a key's entry.
    private var large: Large?
    /// The number of members.
    public private(set) var count = 0

    private final class Large {
        var ordered = CountedBTree<ScoredMember>()
        var scores = ByteKeyTable<MemberScore>()
        /// What the members cost.
        var footprint = 64
        /// Where `member` is in `scores`. (Reached from here, not through `large.scores.index(of:)`,
        /// which measured 65 ns slower per ZADD: the table was copied out of the object first.)
        func index(of member: some ContiguousBytes) -> Int? {
            member.withBytes { scores.find($0, hash: KeyHashing.hash($0)) }
        }

        func copy() -> Large {
            let other = Large()
            other.ordered = ordered
            other.scores = scores
            other.footprint = footprint
            return other
        }
    }

    /// Runs one write on the tree form: a single uniqueness check, then its fields in place.
    private mutating func modifyLarge<R>(_ body: (Large) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&large) { large = large?.copy() ?? Large() }
        return try body(large.unsafelyUnwrapped)
    }

    /// The tree form's members in order (empty while compact).
    var ordered: CountedBTree<ScoredMember> { large?.ordered ?? CountedBTree() }

    public init() { compact = Listpack() }

    /// The compact sorted set `compact` of `count` members (a key record's payload).
    init(compact: Listpack, count: Int) {
        self.compact = compact
        self.count = count
    }

    /// An empty sorted set that starts in the skiplist encoding when `listpack` is false (keeping -0 scores
    /// as given, as Redis's skiplist does).
    public init(listpack: Bool) {
        if listpack { compact = Listpack() }
    }

    public var isEmpty: Bool { count == 0 }

    /// Redis's `listpack` encoding for small sorted sets (else `skiplist`); never converted back.
    public var isListpack: Bool { compact != nil }

    /// Heap bytes the sorted set takes, by the engine's accounting.
    public var footprint: Int {
        if let compact { return 64 + compact.heapFootprint }
        guard let large else { return 64 }
        return large.footprint + large.scores.overheadBytes
    }

    // MARK: The compact form

    /// The largest magnitude below which an integral score is stored as an integer element (every such
    /// integer is exactly a Double).
    private static let integerScoreLimit = Double(1 << 53)

    private static func encode(score: Double, into out: inout [UInt8]) {
        if score == score.rounded(), abs(score) <= integerScoreLimit {
            Listpack.encodeElement(integer: Int64(score), into: &out)
        } else {
            withUnsafeBytes(of: score.bitPattern.littleEndian) { Listpack.encodeElement($0, into: &out) }
        }
    }

    /// The score element at `offset` of a compact set.
    private static func score(in compact: Listpack, at offset: Int) -> Double {
        switch compact.element(at: offset).0 {
        case .integer(let value): return Double(value)
        case .string(let range):
            return compact.withUnsafeBytes { raw in
                Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: range.lowerBound, as: UInt64.self)))
            }
        }
    }

    /// The element whose member starts at `offset` of a compact set, and the offset of the next one.
    private static func element(in compact: Listpack, at offset: Int) -> (ScoredMember, next: Int) {
        let scoreOffset = compact.next(offset)
        let element = ScoredMember(score: score(in: compact, at: scoreOffset), member: compact.value(at: offset))
        return (element, compact.next(scoreOffset))
    }

    /// The offset of `needle`'s member in a compact set, with its rank.
    private static func find(in compact: Listpack, _ needle: ListpackNeedle) -> (offset: Int, rank: Int)? {
        var offset = 6
        var rank = 0
        while !compact.isEnd(offset) {
            if compact.matches(offset, needle) { return (offset, rank) }
            offset = compact.next(compact.next(offset))
            rank += 1
        }
        return nil
    }

    private mutating func insertCompact(_ member: Bytes, score: Double) {
        let probe = ScoredMember(score: score, member: member)
        var offset = 6
        while !compact!.isEnd(offset) {
            let (element, next) = Self.element(in: compact!, at: offset)
            if probe < element { break }
            offset = next
        }
        var encoded: [UInt8] = []
        member.withBytes { Listpack.encodeElement($0, into: &encoded) }
        Self.encode(score: score, into: &encoded)
        compact!.replace(offset..<offset, with: encoded, elementDelta: 2)
    }

    private mutating func convertToTree() {
        let elements = allElements
        compact = nil
        let large = Large()
        for element in elements {
            large.scores.insertNew(MemberScore(key: element.member, score: element.score))
            large.ordered.insert(element)
            large.footprint += cost(element.member) * 2 + 24
        }
        self.large = large
    }

    // MARK: Operations

    public func score(_ member: some ContiguousBytes) -> Double? {
        guard compact == nil else { return compactScore(member) }
        guard let large, let index = large.index(of: member) else { return nil }
        return large.scores.withElement(at: index) { $0.score }
    }

    @usableFromInline
    func compactScore(_ member: some ContiguousBytes) -> Double? {
        guard let compact else { return nil }
        return member.withBytes { raw in
            Self.find(in: compact, ListpackNeedle(raw)).map { Self.score(in: compact, at: compact.next($0.offset)) }
        }
    }

    /// Sets `member`'s score; returns its previous score (nil when it was new).
    @discardableResult
    public mutating func set(_ member: Bytes, score requested: Double, limits: EncodingLimits) -> Double? {
        if compact != nil {
            let found = member.withBytes { Self.find(in: compact!, ListpackNeedle($0)) }
            if member.count > limits.zsetMaxListpackValue
                || (found == nil && (count + 1 > limits.zsetMaxListpackEntries || !compact!.canGrow(by: member.count))) {
                convertToTree()
            } else {
                // A listpack keeps scores as text in Redis, where -0 reads back as 0.
                let score = requested == 0 ? 0 : requested
                guard let found else {
                    insertCompact(member, score: score)
                    count += 1
                    return nil
                }
                let previous = Self.score(in: compact!, at: compact!.next(found.offset))
                if previous != score {
                    removeCompact(at: found.offset)
                    insertCompact(member, score: score)
                }
                return previous
            }
        }
        let score = requested
        let previous = modifyLarge { large -> Double? in
            let (found, hash) = large.scores.probe(member)
            if let index = found {
                let previous = large.scores.withElement(at: index) { $0.score }
                if previous != score {
                    large.ordered.remove(ScoredMember(score: previous, member: member))
                    large.ordered.insert(ScoredMember(score: score, member: member))
                    large.scores.update(at: index) { $0.score = score }
                }
                return previous
            }
            large.scores.insert(MemberScore(key: member, score: score), hash: hash)
            large.ordered.insert(ScoredMember(score: score, member: member))
            large.footprint += cost(member) * 2 + 24
            return nil
        }
        if previous == nil { count += 1 }
        return previous
    }

    private mutating func removeCompact(at offset: Int) {
        let end = compact!.next(compact!.next(offset))
        compact!.replace(offset..<end, with: [], elementDelta: -2)
    }

    /// Removes `member`; returns whether it was present.
    @discardableResult
    public mutating func remove(_ member: some ContiguousBytes) -> Bool {
        if compact != nil {
            guard let found = member.withBytes({ Self.find(in: compact!, ListpackNeedle($0)) }) else { return false }
            removeCompact(at: found.offset)
            count -= 1
            return true
        }
        let removed = modifyLarge { large in
            guard let removed = large.scores.remove(key: member) else { return false }
            large.ordered.remove(ScoredMember(score: removed.score, member: removed.key))
            large.footprint -= cost(removed.key) * 2 + 24
            return true
        }
        if removed { count -= 1 }
        return removed
    }

    /// The 0-based rank of `member` by ascending score.
    public func rank(_ member: some ContiguousBytes) -> Int? {
        if let compact { return member.withBytes { Self.find(in: compact, ListpackNeedle($0))?.rank } }
        guard let large, let index = large.index(of: member) else { return nil }
        let element = large.scores[index]
        return large.ordered.rank(of: ScoredMember(score: element.score, member: element.key))
    }

    /// The element at rank `index`.
    /// - Complexity: O(log n), O(n) for a compact set.
    public subscript(index: Int) -> ScoredMember {
        guard let compact else { return large.unsafelyUnwrapped.ordered[index] }
        var offset = 6
        for _ in 0..<index { offset = compact.next(compact.next(offset)) }
        return Self.element(in: compact, at: offset).0
    }

    /// The number of elements before the first one for which `isAfter` holds (elements are partitioned:
    /// false, then true).
    public func partitionIndex(where isAfter: (ScoredMember) -> Bool) -> Int {
        guard let compact else { return large?.ordered.partitionIndex(where: isAfter) ?? 0 }
        var offset = 6
        var rank = 0
        while !compact.isEnd(offset) {
            let (element, next) = Self.element(in: compact, at: offset)
            if isAfter(element) { return rank }
            offset = next
            rank += 1
        }
        return rank
    }

    /// Calls `body` with the elements from rank `start` upwards until it returns false.
    public func forEach(from start: Int, _ body: (ScoredMember) throws -> Bool) rethrows {
        guard let compact else {
            guard let large else { return }
            return try large.ordered.forEach(from: start, body)
        }
        var offset = 6
        var rank = 0
        while !compact.isEnd(offset) {
            if rank >= start {
                let (element, next) = Self.element(in: compact, at: offset)
                guard try body(element) else { return }
                offset = next
            } else {
                offset = compact.next(compact.next(offset))
            }
            rank += 1
        }
    }

    /// Calls `body` with the elements from rank `start` downwards until it returns false.
    public func forEachReversed(from start: Int, _ body: (ScoredMember) throws -> Bool) rethrows {
        guard let compact else {
            guard let large else { return }
            return try large.ordered.forEachReversed(from: start, body)
        }
        guard start >= 0, start < count else { return }
        var offset = 6
        for _ in 0..<start { offset = compact.next(compact.next(offset)) }
        while true {
            guard try body(Self.element(in: compact, at: offset).0) else { return }
            guard let score = compact.previous(offset), let member = compact.previous(score) else { return }
            offset = member
        }
    }

    /// All elements in ascending order.
    public var allElements: [ScoredMember] {
        guard compact != nil else { return ordered.elements }
        var result: [ScoredMember] = []
        result.reserveCapacity(count)
        forEach(from: 0) { element in
            result.append(element)
            return true
        }
        return result
    }

    public mutating func deriveEncoding(limits: EncodingLimits) {
        let fits = count <= limits.zsetMaxListpackEntries
            && allElements.allSatisfy { $0.member.count <= limits.zsetMaxListpackValue }
        if !fits && compact != nil { convertToTree() }
    }
}
