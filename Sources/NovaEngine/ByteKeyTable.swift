/// An element stored in a `ByteKeyTable`: something identified by a byte-string key.
public protocol ByteKeyed {
    /// The element's key; it must not change while the element is in a table.
    var key: Bytes { get }

    /// Calls `body` with the key's bytes in place (for tables: no copy of the key per comparison).
    func withKeyBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension ByteKeyed {
    @inlinable
    public func withKeyBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try key.withBytes(body)
    }
}

/// Process-wide key hashing, seeded randomly at start-up.
public enum KeyHashing {
    /// The hasher every table uses.
    public static let hasher = KeyHasher()

    /// The hash of `key`.
    @inlinable
    public static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 { hasher.hash(key) }
}

/// A hash table of elements keyed by bytes: a dense element array (so a random element and a full sweep
/// are cheap) indexed by an open-addressing slot array with linear probing and backward-shift deletion
/// (no tombstones).
///
/// A slot holds an element's index + 1 (0: empty) in its low bits and the low bits of its key's hash
/// above them: enough to find the slot's home position again (backward shift needs it) and, above the
/// position bits, a tag that spares most key comparisons. Tables of up to `narrowCapacity` slots use
/// 4-byte slots (index in log2(capacity) bits, the rest hash); larger ones 8-byte slots (32 and 32), so
/// the index costs 4 bytes per slot for the tables that hold almost every key (a database is 1,024
/// segments, each its own table).
///
/// Both arrays are copy-on-write: a copy of the table is an O(1) point-in-time snapshot, and the first
/// write after it copies only this table.
///
/// Element order is not stable: removing an element moves the last element into its place.
public struct ByteKeyTable<Element: ByteKeyed> {
    /// The elements, densely packed, in no particular order.
    public private(set) var elements: [Element] = []
    /// The slots while the table has at most `narrowCapacity` of them (else empty).
    @usableFromInline private(set) var narrow: [UInt32] = []
    /// The slots of a larger table (else empty).
    @usableFromInline private(set) var wide: [UInt64] = []

    /// The most slots kept 4 bytes wide: log2 of it index bits leave 18 hash bits, of which 4 sit above
    /// the position (a tag that matches another key's with probability 1/16 when their homes agree).
    @usableFromInline static var narrowCapacity: Int { 1 << 14 }

    public init() {}

    /// The number of elements.
    @inlinable public var count: Int { elements.count }

    /// True when the table holds no element.
    @inlinable public var isEmpty: Bool { elements.isEmpty }

    /// The number of slots.
    @inlinable var capacity: Int { wide.isEmpty ? narrow.count : wide.count }

    /// How many low bits of a slot hold the index: log2(capacity) for narrow slots, 32 for wide ones.
    @inlinable
    static func indexBits(capacity: Int) -> Int {
        capacity > narrowCapacity ? 32 : capacity.trailingZeroBitCount
    }

    /// Whether this table and `other` still share their element storage (a snapshot not yet written
    /// through): every change to a table copies its elements first when they are shared.
    /// - Complexity: O(1).
    public func sharesStorage(with other: ByteKeyTable) -> Bool {
        elements.withUnsafeBufferPointer { mine in
            other.elements.withUnsafeBufferPointer { theirs in mine.baseAddress == theirs.baseAddress }
        }
    }

    /// The element at `index` (0..<count).
    /// - Complexity: O(1).
    @inlinable
    public subscript(index: Int) -> Element {
        get { elements[index] }
    }

    /// Calls `body` with the element at `index` without copying it.
    @inlinable
    public func withElement<R>(at index: Int, _ body: (borrowing Element) throws -> R) rethrows -> R {
        try elements.withUnsafeBufferPointer { try body($0[index]) }
    }

    /// Mutates the element at `index` in place; the element's key must stay the same.
    /// - Complexity: O(1) unless the table is shared with a snapshot, then O(n) once.
    public mutating func update<R>(at index: Int, _ body: (inout Element) throws -> R) rethrows -> R {
        try body(&elements[index])
    }

    /// The slot for the element at `index` whose key hashes to `hash`.
    @inlinable @inline(__always)
    static func slot<S: FixedWidthInteger & UnsignedInteger>(hash: UInt64, index: Int, indexBits: Int) -> S {
        S(truncatingIfNeeded: hash << UInt64(indexBits)) | S(truncatingIfNeeded: index + 1)
    }

    /// The index of the element whose key equals `key`, or nil.
    /// - Complexity: O(1) on average.
    @inlinable
    public func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        findSlot(key, hash: hash)?.index
    }

    /// The slot position holding `key` and the element's index, or nil. Inlinable so that every caller,
    /// in any module, gets a version specialised for its element type (an unspecialised one copies
    /// elements through witnesses).
    @inlinable
    func findSlot(_ key: UnsafeRawBufferPointer, hash: UInt64) -> (position: Int, index: Int)? {
        if !wide.isEmpty {
            return wide.withUnsafeBufferPointer { Self.search($0, indexBits: Self.indexBits(capacity: $0.count), elements, key, hash) }
        }
        if narrow.isEmpty { return nil }
        return narrow.withUnsafeBufferPointer { Self.search($0, indexBits: Self.indexBits(capacity: $0.count), elements, key, hash) }
    }

    @inlinable
    static func search<S: FixedWidthInteger & UnsignedInteger>(
        _ slots: UnsafeBufferPointer<S>, indexBits: Int, _ elements: [Element], _ key: UnsafeRawBufferPointer, _ hash: UInt64
    ) -> (position: Int, index: Int)? {
        elements.withUnsafeBufferPointer { elements -> (position: Int, index: Int)? in
            let mask = slots.count - 1
            let indexMask = S(truncatingIfNeeded: (1 as UInt64) << UInt64(indexBits) &- 1)
            let expected: S = slot(hash: hash, index: -1, indexBits: indexBits)  // the hash bits, index 0
            var position = Int(truncatingIfNeeded: hash) & mask
            while true {
                let slot = slots[position]
                if slot == 0 { return nil }
                if slot & ~indexMask == expected {
                    let index = Int(truncatingIfNeeded: slot & indexMask) - 1
                    if elements[index].withKeyBytes({ ByteCompare.equal($0, key) }) { return (position, index) }
                }
                position = (position + 1) & mask
            }
        }
    }

    /// The address of the slot where a search for `hash` starts, to prefetch it; nil for an empty table.
    @inlinable
    func homeSlotAddress(hash: UInt64) -> UnsafeRawPointer? {
        if !wide.isEmpty {
            return wide.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress! + (Int(truncatingIfNeeded: hash) & ($0.count - 1))) }
        }
        if narrow.isEmpty { return nil }
        return narrow.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress! + (Int(truncatingIfNeeded: hash) & ($0.count - 1))) }
    }

    /// The index of the element a search for `hash` compares first (the first slot from its home that
    /// carries `hash`'s bits), read from the slots alone, to prefetch it; nil when no slot matches.
    @inlinable
    func likelyIndex(hash: UInt64) -> Int? {
        func scan<S: FixedWidthInteger & UnsignedInteger>(_ slots: UnsafeBufferPointer<S>) -> Int? {
            let indexBits = Self.indexBits(capacity: slots.count)
            let mask = slots.count - 1
            let indexMask = S(truncatingIfNeeded: (1 as UInt64) << UInt64(indexBits) &- 1)
            let expected: S = Self.slot(hash: hash, index: -1, indexBits: indexBits)
            var position = Int(truncatingIfNeeded: hash) & mask
            while true {
                let slot = slots[position]
                if slot == 0 { return nil }
                if slot & ~indexMask == expected { return Int(truncatingIfNeeded: slot & indexMask) - 1 }
                position = (position + 1) & mask
            }
        }
        if !wide.isEmpty { return wide.withUnsafeBufferPointer(scan) }
        if narrow.isEmpty { return nil }
        return narrow.withUnsafeBufferPointer(scan)
    }

    /// The address of the element at `index`, to prefetch it.
    @inlinable
    func elementAddress(_ index: Int) -> UnsafeRawPointer {
        elements.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress! + index) }
    }

    /// Adds an element whose key is not in the table; returns its index.
    /// - Complexity: amortised O(1).
    @discardableResult
    public mutating func insert(_ element: Element, hash: UInt64) -> Int {
        if (elements.count + 1) * 4 > capacity * 3 {
            rebuild(capacity: Swift.max(8, capacity * 2))
        }
        let index = elements.count
        if index == elements.capacity { elements.reserveCapacity(Self.grownElementCapacity(index)) }
        elements.append(element)
        setSlot(hash: hash, index: index, at: nil)
        return index
    }

    /// Makes room for `count` elements in all: inserting up to that many grows neither the slots nor the
    /// element array.
    public mutating func reserveCapacity(_ count: Int) {
        guard count > elements.count else { return }
        var slots = Swift.max(8, capacity)
        while count * 4 > slots * 3 { slots *= 2 }
        if slots > capacity { rebuild(capacity: slots) }
        if count > elements.capacity { elements.reserveCapacity(count) }
    }

    /// The element array's capacity when it is full at `count`: half as much again, and at first
    /// `minimumElementCapacity`.
    ///
    /// An appended array doubles, which leaves 44% of its entries unused on average over table sizes
    /// (a full table of `n` has room for between `n` and `2n`); growing by half leaves 23%, for one more
    /// copy of each element over its life. With the 64-byte entries databases had when this was measured,
    /// ~13 bytes per key (200,000 keys in 1,024 segments: 195 per segment in room for 256 before, for 202
    /// or 303 now); a database's elements are 8-byte record references since.
    @inlinable
    static func grownElementCapacity(_ count: Int) -> Int { Swift.max(minimumElementCapacity, count + count / 2) }

    /// A table's first element array: 64 bytes of elements, and at least 4. A hash that a 100-byte value
    /// keeps out of the listpack form often has 2 or 3 fields, and room for 8 of its 48-byte fields cost
    /// ~200 bytes per key; a database segment's 8-byte references start at 8, as fewer would add a
    /// growth step to every segment, and each array freed by growing is a hole between records.
    @inlinable
    static var minimumElementCapacity: Int { Swift.max(4, 64 / MemoryLayout<Element>.stride) }

    /// Writes the slot of the element at `index` at `position`, or (nil) in the first free slot from its
    /// home.
    private mutating func setSlot(hash: UInt64, index: Int, at position: Int?) {
        func place<S: FixedWidthInteger & UnsignedInteger>(_ slots: UnsafeMutableBufferPointer<S>, _ indexBits: Int) {
            let value: S = Self.slot(hash: hash, index: index, indexBits: indexBits)
            if let position {
                slots[position] = value
                return
            }
            let mask = slots.count - 1
            var free = Int(truncatingIfNeeded: hash) & mask
            while slots[free] != 0 { free = (free + 1) & mask }
            slots[free] = value
        }
        if !wide.isEmpty {
            wide.withUnsafeMutableBufferPointer { place($0, Self.indexBits(capacity: $0.count)) }
        } else {
            narrow.withUnsafeMutableBufferPointer { place($0, Self.indexBits(capacity: $0.count)) }
        }
    }

    /// Removes the element at `index` and returns it. The last element takes its index.
    /// - Complexity: O(1) on average.
    @discardableResult
    public mutating func remove(at index: Int) -> Element {
        let position = elements[index].withKeyBytes { findSlot($0, hash: KeyHashing.hash($0)) }!.position
        clearSlot(position)
        let last = elements.count - 1
        if index != last {
            let movedHash = elements[last].withKeyBytes { KeyHashing.hash($0) }
            let movedPosition = elements[last].withKeyBytes { findSlot($0, hash: movedHash) }!.position
            setSlot(hash: movedHash, index: index, at: movedPosition)
            elements.swapAt(index, last)
        }
        let removed = elements.removeLast()
        if capacity > 8 && elements.count * 8 < capacity {
            rebuild(capacity: Swift.max(8, (elements.count * 2).nextPowerOfTwo))
            // Give the element array's spare capacity back too.
            var compact: [Element] = []
            compact.reserveCapacity(elements.count)
            compact.append(contentsOf: elements)
            elements = compact
        }
        return removed
    }

    /// Removes the slot at `position`, shifting later members of its probe run back.
    private mutating func clearSlot(_ position: Int) {
        func shift<S: FixedWidthInteger & UnsignedInteger>(_ slots: UnsafeMutableBufferPointer<S>, _ indexBits: Int) {
            let mask = slots.count - 1
            var hole = position
            var next = position
            while true {
                next = (next + 1) & mask
                let slot = slots[next]
                if slot == 0 { break }
                let home = Int(truncatingIfNeeded: slot >> S(indexBits)) & mask
                // The slot may move into the hole unless its home lies cyclically in (hole, next].
                let stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
                if !stays {
                    slots[hole] = slot
                    hole = next
                }
            }
            slots[hole] = 0
        }
        if !wide.isEmpty {
            wide.withUnsafeMutableBufferPointer { shift($0, Self.indexBits(capacity: $0.count)) }
        } else {
            narrow.withUnsafeMutableBufferPointer { shift($0, Self.indexBits(capacity: $0.count)) }
        }
    }

    private mutating func rebuild(capacity: Int) {
        func fill<S: FixedWidthInteger & UnsignedInteger>(_ type: S.Type) -> [S] {
            let indexBits = Self.indexBits(capacity: capacity)
            var fresh = [S](repeating: 0, count: capacity)
            fresh.withUnsafeMutableBufferPointer { fresh in
                let mask = capacity - 1
                for index in elements.indices {
                    let hash = elements[index].withKeyBytes { KeyHashing.hash($0) }
                    var position = Int(truncatingIfNeeded: hash) & mask
                    while fresh[position] != 0 { position = (position + 1) & mask }
                    fresh[position] = Self.slot(hash: hash, index: index, indexBits: indexBits)
                }
            }
            return fresh
        }
        if capacity > Self.narrowCapacity {
            wide = fill(UInt64.self)
            narrow = []
        } else {
            narrow = fill(UInt32.self)
            wide = []
        }
    }

    /// Removes every element.
    public mutating func removeAll() {
        elements = []
        narrow = []
        wide = []
    }

    /// Bytes taken by the table's own arrays (not by what the elements point to).
    public var overheadBytes: Int {
        elements.capacity * MemoryLayout<Element>.stride + narrow.count * 4 + wide.count * 8
    }
}

extension Int {
    /// The smallest power of two not below `self` (1 for values below 1).
    @usableFromInline
    var nextPowerOfTwo: Int {
        self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount)
    }
}

extension ByteKeyTable: Sendable where Element: Sendable {}

extension ByteKeyTable {
    /// The index of the element with `key`, hashing it.
    /// - Complexity: O(1) on average.
    @inlinable
    public func index(of key: some ContiguousBytes) -> Int? {
        key.withBytes { find($0, hash: KeyHashing.hash($0)) }
    }

    /// The index of the element with `key` (nil when absent) and the key's hash, so that a miss can be
    /// followed by `insert(_:hash:)` without hashing the key again.
    @inlinable
    public func probe(_ key: some ContiguousBytes) -> (index: Int?, hash: UInt64) {
        key.withBytes { raw in
            let hash = KeyHashing.hash(raw)
            return (find(raw, hash: hash), hash)
        }
    }

    /// Adds an element whose key is absent, hashing it.
    @discardableResult
    public mutating func insertNew(_ element: Element) -> Int {
        insert(element, hash: element.withKeyBytes { KeyHashing.hash($0) })
    }

    /// Removes and returns the element with `key`, if any.
    @discardableResult
    public mutating func remove(key: some ContiguousBytes) -> Element? {
        guard let index = index(of: key) else { return nil }
        return remove(at: index)
    }
}

extension ByteKeyTable where Element == KeyRecord {
    /// The expiry of the entry at `index`, read in place.
    @usableFromInline
    func expireAt(_ index: Int) -> Int64 {
        elements.withUnsafeBufferPointer { $0[index].expireAt }
    }
}
