/// An element stored in a `ByteKeyTable`: something identified by a byte-string key.
public protocol ByteKeyed {
    /// The element's key; it must not change while the element is in a table.
    var key: Bytes { get }
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
/// Both arrays are copy-on-write: a copy of the table is an O(1) point-in-time snapshot, and the first
/// write after it copies only this table.
///
/// Element order is not stable: removing an element moves the last element into its place.
public struct ByteKeyTable<Element: ByteKeyed> {
    /// The elements, densely packed, in no particular order.
    public private(set) var elements: [Element] = []
    /// 0 for an empty slot, else the low 32 bits of the key's hash (high half) and index + 1 (low half).
    @usableFromInline private(set) var slots: [UInt64] = []

    public init() {}

    /// The number of elements.
    @inlinable public var count: Int { elements.count }

    /// True when the table holds no element.
    @inlinable public var isEmpty: Bool { elements.isEmpty }

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

    @inline(__always)
    private static func slotValue(hash: UInt64, index: Int) -> UInt64 {
        (hash << 32) | UInt64(index + 1)
    }

    /// The index of the element whose key equals `key`, or nil.
    /// - Complexity: O(1) on average.
    @inlinable
    public func find(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        findSlot(key, hash: hash).map { Int(truncatingIfNeeded: slotsValue($0) & 0xFFFF_FFFF) - 1 }
    }

    @usableFromInline
    func slotsValue(_ position: Int) -> UInt64 { slots[position] }

    /// The slot position holding `key`, or nil. Inlinable so that every caller, in any module, gets a
    /// version specialised for its element type (an unspecialised one copies elements through witnesses).
    @inlinable
    func findSlot(_ key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        guard !slots.isEmpty else { return nil }
        return slots.withUnsafeBufferPointer { slots -> Int? in
            elements.withUnsafeBufferPointer { elements -> Int? in
                let mask = slots.count - 1
                let tag = hash & 0xFFFF_FFFF
                var position = Int(truncatingIfNeeded: hash) & mask
                while true {
                    let slot = slots[position]
                    if slot == 0 { return nil }
                    if slot >> 32 == tag {
                        let index = Int(truncatingIfNeeded: slot & 0xFFFF_FFFF) - 1
                        if elements[index].key.withBytes({ ByteCompare.equal($0, key) }) { return position }
                    }
                    position = (position + 1) & mask
                }
            }
        }
    }

    /// Adds an element whose key is not in the table; returns its index.
    /// - Complexity: amortised O(1).
    @discardableResult
    public mutating func insert(_ element: Element, hash: UInt64) -> Int {
        if (elements.count + 1) * 4 > slots.count * 3 {
            rebuild(capacity: Swift.max(8, slots.count * 2), adding: 1)
        }
        let index = elements.count
        elements.append(element)
        place(Self.slotValue(hash: hash, index: index))
        return index
    }

    private mutating func place(_ value: UInt64) {
        slots.withUnsafeMutableBufferPointer { slots in
            let mask = slots.count - 1
            var position = Int(truncatingIfNeeded: value >> 32) & mask
            while slots[position] != 0 { position = (position + 1) & mask }
            slots[position] = value
        }
    }

    /// Removes the element at `index` and returns it. The last element takes its index.
    /// - Complexity: O(1) on average.
    @discardableResult
    public mutating func remove(at index: Int) -> Element {
        let hash = elements[index].key.withBytes { KeyHashing.hash($0) }
        let position = elements[index].key.withBytes { findSlot($0, hash: hash) }!
        clearSlot(position)
        let last = elements.count - 1
        if index != last {
            let movedHash = elements[last].key.withBytes { KeyHashing.hash($0) }
            let movedPosition = elements[last].key.withBytes { findSlot($0, hash: movedHash) }!
            slots[movedPosition] = Self.slotValue(hash: movedHash, index: index)
            elements.swapAt(index, last)
        }
        let removed = elements.removeLast()
        if slots.count > 8 && elements.count * 8 < slots.count {
            rebuild(capacity: Swift.max(8, (elements.count * 2).nextPowerOfTwo), adding: 0)
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
        slots.withUnsafeMutableBufferPointer { slots in
            let mask = slots.count - 1
            var hole = position
            var next = position
            while true {
                next = (next + 1) & mask
                let slot = slots[next]
                if slot == 0 { break }
                let home = Int(truncatingIfNeeded: slot >> 32) & mask
                // The slot may move into the hole unless its home lies cyclically in (hole, next].
                let stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
                if !stays {
                    slots[hole] = slot
                    hole = next
                }
            }
            slots[hole] = 0
        }
    }

    private mutating func rebuild(capacity: Int, adding: Int) {
        var fresh = [UInt64](repeating: 0, count: capacity)
        fresh.withUnsafeMutableBufferPointer { fresh in
            let mask = capacity - 1
            for index in elements.indices {
                let hash = elements[index].key.withBytes { KeyHashing.hash($0) }
                var position = Int(truncatingIfNeeded: hash) & mask
                while fresh[position] != 0 { position = (position + 1) & mask }
                fresh[position] = Self.slotValue(hash: hash, index: index)
            }
        }
        slots = fresh
        elements.reserveCapacity(elements.count + adding)
    }

    /// Removes every element.
    public mutating func removeAll() {
        elements = []
        slots = []
    }

    /// Bytes taken by the table's own arrays (not by what the elements point to).
    public var overheadBytes: Int {
        elements.capacity * MemoryLayout<Element>.stride + slots.count * 8
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
        insert(element, hash: element.key.withBytes { KeyHashing.hash($0) })
    }

    /// Removes and returns the element with `key`, if any.
    @discardableResult
    public mutating func remove(key: some ContiguousBytes) -> Element? {
        guard let index = index(of: key) else { return nil }
        return remove(at: index)
    }
}

extension ByteKeyTable where Element == Entry {
    /// The expiry of the entry at `index`, read in place.
    @usableFromInline
    func expireAt(_ index: Int) -> Int64 {
        elements.withUnsafeBufferPointer { $0[index].expireAt }
    }
}
