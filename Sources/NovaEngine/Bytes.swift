public import NIOCore

/// Anything whose contents can be read as contiguous bytes: the engine's keys and values, arguments in
/// `ByteBuffer`s, byte arrays. Generic engine operations take this so that lookups never copy a key.
public protocol ContiguousBytes {
    /// Calls `body` with the bytes.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension ByteBuffer: ContiguousBytes {
    @inlinable
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeReadableBytes(body)
    }
}

extension Array: ContiguousBytes where Element == UInt8 {
    @inlinable
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(body)
    }
}

extension UnsafeRawBufferPointer: ContiguousBytes {
    @inlinable
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try body(self) }
}

/// A string's UTF-8 bytes (library callers of the engine, such as the NovaCache memory tier, key by text).
extension String: ContiguousBytes {
    @inlinable
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var text = self
        return try text.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}

/// An immutable, binary-safe byte string with value semantics: how the engine stores keys and string
/// values. Up to 22 bytes are stored inline (no allocation, no reference counting); longer contents live
/// in one heap block, which may carry spare capacity so that APPEND is amortised O(1). The inline form
/// fills the 23 bytes that, with the enum's tag, make a 24-byte stride; the heap form keeps its count
/// there too, next to the reference, so the block is the object header and the bytes alone (a 100-byte
/// value takes a 128-byte chunk where a counted block took 144). (22 bytes hold the keys of
/// redis-benchmark, `element:000000012345`, and most application keys.)
public struct Bytes: @unchecked Sendable {
    @usableFromInline
    typealias Inline = (UInt64, UInt64, UInt32, UInt16, UInt8)

    @usableFromInline
    enum Storage {
        /// Bytes in order, the count in the last byte (`.4`).
        case inline(Inline)
        /// A block holding the bytes, and where they are in it: the count in use in the low 48 bits,
        /// their offset in the block in the 15 above (the sign bit stays clear, so a slice's packed
        /// count is always above `countMask`; 0 for a block of its own, whose capacity may exceed the
        /// count; a key record's string payload sits after its header and key).
        case heap(ManagedBuffer<Void, UInt8>, count: Int)
    }

    /// The low bits of a heap form's `count` that hold the number of bytes.
    @usableFromInline static let countMask = 1 << 48 - 1

    /// Bytes `count` long at `offset` in `block` (a key record's payload), without a copy; the block is
    /// never changed through this value (a change copies the bytes out first).
    init(sharing block: ManagedBuffer<Void, UInt8>, offset: Int, count: Int) {
        precondition(offset > 0 && offset < 1 << 15 && count <= Self.countMask)
        storage = .heap(block, count: offset << 48 | count)
    }


    @usableFromInline
    var storage: Storage

    /// The longest contents stored without an allocation.
    public static let inlineCapacity = 22

    /// The empty byte string.
    public init() { storage = .inline((0, 0, 0, 0, 0)) }

    /// Copies `bytes`, reserving room for `capacity` bytes in all.
    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer, capacity: Int = 0) {
        let count = bytes.count
        if count <= Self.inlineCapacity && capacity <= Self.inlineCapacity {
            var words: Inline = (0, 0, 0, 0, UInt8(count))
            withUnsafeMutableBytes(of: &words) { out in
                if count > 0 { out.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: count) }
            }
            storage = .inline(words)
        } else {
            let buffer = ManagedBuffer<Void, UInt8>.create(minimumCapacity: Swift.max(count, capacity)) { _ in () }
            buffer.withUnsafeMutablePointerToElements { out in
                if count > 0 { UnsafeMutableRawPointer(out).copyMemory(from: bytes.baseAddress!, byteCount: count) }
            }
            storage = .heap(buffer, count: count)
        }
    }

    /// Copies any contiguous bytes.
    @inlinable
    public init(_ source: some ContiguousBytes) {
        self = source.withBytes { Bytes($0) }
    }

    /// Copies a sequence of bytes.
    @inlinable
    public init(_ bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { Bytes($0) }
    }

    /// The UTF-8 of `text`.
    public init(_ text: String) {
        var text = text
        self = text.withUTF8 { Bytes(UnsafeRawBufferPointer($0)) }
    }

    /// The number of bytes.
    @inlinable
    public var count: Int {
        switch storage {
        case .inline(let words): return Int(words.4)
        case .heap(_, let packed): return packed & Self.countMask
        }
    }

    /// True when there are no bytes.
    @inlinable
    public var isEmpty: Bool { count == 0 }

    /// How many bytes fit without reallocating.
    public var capacity: Int {
        switch storage {
        case .inline: return Self.inlineCapacity
        case .heap(let buffer, let packed): return packed > Self.countMask ? packed & Self.countMask : buffer.capacity
        }
    }

    /// The heap block's address (nil for inline bytes), read without retaining the block (`borrowing`:
    /// no copy of the value): for a prefetch of a block that is about to be read.
    @inline(__always)
    borrowing func blockAddress() -> UnsafeRawPointer? {
        switch storage {
        case .heap(let block, _): return UnsafeRawPointer(Unmanaged.passUnretained(block).toOpaque())
        case .inline: return nil
        }
    }

    /// True when the bytes live in a heap block.
    public var isHeap: Bool {
        if case .heap = storage { return true }
        return false
    }

    /// Calls `body` with the bytes.
    @inlinable
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .inline(var words):
            let count = Int(words.4)
            return try withUnsafeBytes(of: &words) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        case .heap(let buffer, let packed):
            return try buffer.withUnsafeMutablePointerToElements { elements in
                try body(UnsafeRawBufferPointer(start: elements + packed >> 48, count: packed & Self.countMask))
            }
        }
    }

    /// The bytes as an array.
    public var array: [UInt8] { withBytes { Array($0) } }

    /// Appends `tail`, growing the heap block geometrically when it is uniquely held (amortised O(1)).
    public mutating func append(_ tail: UnsafeRawBufferPointer) {
        let oldCount = count
        let newCount = oldCount + tail.count
        if case .heap(var buffer, let packed) = storage, packed <= Self.countMask {
            // Drop our own reference first so that the check sees other holders only.
            storage = .inline((0, 0, 0, 0, 0))
            let unique = isKnownUniquelyReferenced(&buffer)
            storage = .heap(buffer, count: oldCount)
            if unique && newCount <= buffer.capacity {
                appendWithinCapacity(tail, at: oldCount)
                return
            }
        }
        let capacity = Self.grownCapacity(from: oldCount, to: newCount)
        self = withBytes { old -> Bytes in
            var result = Bytes(old, capacity: capacity)
            result.appendWithinCapacity(tail, at: oldCount)
            return result
        }
    }

    /// The heap capacity for growing from `oldCount` to `newCount` bytes (0: inline).
    ///
    /// Doubling up to 1 MB as Redis's sds, then a quarter more each time (at least 1 MB): Redis adds a
    /// flat 1 MB, which realloc can often do without moving; a new block is always a copy here, and a
    /// flat step made a string built by 10 KB appends cost quadratic time (57x Redis at 200 MB).
    static func grownCapacity(from oldCount: Int, to newCount: Int) -> Int {
        let growth = oldCount < 1 << 20 ? oldCount : Swift.max(1 << 20, oldCount / 4)
        return newCount <= Self.inlineCapacity ? 0 : Swift.max(newCount, oldCount + growth)
    }

    /// Resizes to `newCount` bytes (growth zero-filled) and lets `body` change them in place.
    ///
    /// With `reservingGrowth`, a block that must grow gets room to spare as `append` gives it, so that
    /// growing a string a little at a time (SETBIT at rising offsets) costs amortised O(1) per step.
    ///
    /// - Complexity: O(1) plus what `body` touches when the heap block is held only here and has room
    ///   (SETRANGE into a 512 MB string writes the patch, not the string, as Redis does); O(`newCount`)
    ///   when the block is shared (a snapshot holds it) or must grow.
    public mutating func withMutableBytes<R>(
        count newCount: Int, reservingGrowth: Bool = false, _ body: (UnsafeMutableRawBufferPointer) throws -> R
    ) rethrows -> R {
        let oldCount = count
        var inPlace = false
        if case .heap(var buffer, let packed) = storage {
            // Drop our own reference first so that the check sees other holders only.
            storage = .inline((0, 0, 0, 0, 0))
            inPlace = packed <= Self.countMask && isKnownUniquelyReferenced(&buffer) && newCount <= buffer.capacity
            storage = .heap(buffer, count: packed)
        } else {
            inPlace = newCount <= Self.inlineCapacity
        }
        if !inPlace {
            self = withBytes { old in
                let capacity = reservingGrowth && newCount > oldCount ? Self.grownCapacity(from: oldCount, to: newCount) : newCount
                return Bytes(UnsafeRawBufferPointer(rebasing: old.prefix(Swift.min(oldCount, newCount))), capacity: capacity)
            }
        }
        let kept = Swift.min(oldCount, newCount)
        switch storage {
        case .inline(var words):
            let result = try withUnsafeMutableBytes(of: &words) { raw -> R in
                let contents = UnsafeMutableRawBufferPointer(rebasing: raw[0..<newCount])
                if newCount > kept { (contents.baseAddress! + kept).initializeMemory(as: UInt8.self, repeating: 0, count: newCount - kept) }
                return try body(contents)
            }
            words.4 = UInt8(newCount)
            storage = .inline(words)
            return result
        case .heap(let buffer, _):
            storage = .heap(buffer, count: newCount)
            return try buffer.withUnsafeMutablePointerToElements { elements in
                if newCount > kept { (elements + kept).initialize(repeating: 0, count: newCount - kept) }
                return try body(UnsafeMutableRawBufferPointer(start: elements, count: newCount))
            }
        }
    }

    private mutating func appendWithinCapacity(_ tail: UnsafeRawBufferPointer, at offset: Int) {
        switch storage {
        case .inline(var words):
            withUnsafeMutableBytes(of: &words) { out in
                if !tail.isEmpty {
                    (out.baseAddress! + offset).copyMemory(from: tail.baseAddress!, byteCount: tail.count)
                }
            }
            words.4 = UInt8(offset + tail.count)
            storage = .inline(words)
        case .heap(let buffer, _):
            buffer.withUnsafeMutablePointerToElements { elements in
                if !tail.isEmpty {
                    UnsafeMutableRawPointer(elements + offset).copyMemory(from: tail.baseAddress!, byteCount: tail.count)
                }
            }
            storage = .heap(buffer, count: offset + tail.count)
        }
    }

    /// The heap block holding the contents, with their address, for a reply that sends them without a
    /// copy (nil when inline). The address stays valid while the block is alive, and the block is never
    /// changed in place while anyone else holds it (`append` and `withMutableBytes` copy a shared block).
    public var sharedStorage: (owner: AnyObject, bytes: UnsafeRawBufferPointer)? {
        guard case .heap(let buffer, let packed) = storage else { return nil }
        let base = buffer.withUnsafeMutablePointerToElements { UnsafeRawPointer($0) + packed >> 48 }
        return (buffer, UnsafeRawBufferPointer(start: base, count: packed & Self.countMask))
    }

    /// Bytes the heap block takes from the allocator (0 when inline, or a slice of a key record, which
    /// the record counts), for memory accounting.
    public var heapFootprint: Int {
        switch storage {
        case .inline: return 0
        case .heap(let buffer, let packed): return packed > Self.countMask ? 0 : MemoryEstimate.allocation(16 + buffer.capacity)
        }
    }
}

extension Bytes: ContiguousBytes {}

extension Bytes: Equatable {
    @inlinable
    public static func == (lhs: Bytes, rhs: Bytes) -> Bool {
        lhs.withBytes { a in rhs.withBytes { b in ByteCompare.equal(a, b) } }
    }
}

extension Bytes: Hashable {
    public func hash(into hasher: inout Hasher) {
        withBytes { hasher.combine(bytes: $0) }
    }
}

extension Bytes: Comparable {
    /// Byte-wise order, shorter first on a common prefix (memcmp order, as Redis compares strings).
    public static func < (lhs: Bytes, rhs: Bytes) -> Bool {
        lhs.withBytes { a in rhs.withBytes { b in ByteCompare.compare(a, b) < 0 } }
    }
}

extension Bytes: CustomStringConvertible, ExpressibleByStringLiteral {
    public var description: String { withBytes { String(decoding: $0, as: UTF8.self) } }
    public init(stringLiteral value: String) { self.init(value) }
}

/// memcmp-style comparisons of raw byte ranges.
public enum ByteCompare {
    @inlinable
    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return memcmpBytes(a.baseAddress!, b.baseAddress!, a.count) == 0
    }

    /// Negative, zero or positive like memcmp, with the shorter string first on a common prefix.
    @inlinable
    public static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let common = Swift.min(a.count, b.count)
        if common > 0 {
            let result = memcmpBytes(a.baseAddress!, b.baseAddress!, common)
            if result != 0 { return result }
        }
        return a.count - b.count
    }

    @inlinable
    static func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Int {
        var index = 0
        while index + 8 <= count {
            let x = a.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let y = b.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            if x != y {
                // The first differing byte decides, as for memcmp; byte-swapping a little-endian load puts
                // that byte in the most significant position.
                let xb = x.byteSwapped, yb = y.byteSwapped
                return xb < yb ? -1 : 1
            }
            index += 8
        }
        while index < count {
            let x = a.load(fromByteOffset: index, as: UInt8.self)
            let y = b.load(fromByteOffset: index, as: UInt8.self)
            if x != y { return Int(x) - Int(y) }
            index += 1
        }
        return 0
    }
}

/// Estimates of what the allocator hands out, for memory accounting.
public enum MemoryEstimate {
    /// The chunk size glibc's malloc uses for a request of `size` bytes.
    @inlinable
    public static func allocation(_ size: Int) -> Int {
        Swift.max(32, (size + 8 + 15) & ~15)
    }
}
