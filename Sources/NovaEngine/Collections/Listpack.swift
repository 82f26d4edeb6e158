import NovaRESP

/// Redis's listpack byte format, which streams keep their entries in (one listpack per stream node, as
/// Redis does): a 32-bit total size, a 16-bit element count, the elements, and 0xFF. Each element is an
/// integer (7, 13, 16, 24, 32 or 64 bits) or a string (6-, 12- or 32-bit length), followed by its own
/// size in 1–5 bytes so that it can be walked backwards. Strings that are canonical integers are stored
/// as integers, as `lpAppend` does. Keeping Redis's format byte for byte keeps the node sizes, and so
/// where a stream splits into nodes, identical to redis-server's, and makes RDB files a copy.
///
/// The bytes live in a block of their own that keeps no count (the listpack's first four bytes are its
/// size): 16 bytes of header per small collection where an array had 32. Copy-on-write: a change to a
/// block another value shares (a snapshot's) copies it first.
public struct Listpack: @unchecked Sendable, Equatable {
    /// The block holding the listpack, header and terminator included: at its start with room to spare,
    /// or, in a key record, after the record's header and key (read in place, copied out by any change).
    private var block: ManagedBuffer<Void, UInt8>

    /// The listpack in a key record's payload, without a copy.
    init(inRecord record: KeyRecord) { block = record }

    /// Whether the listpack is a key record's payload (one comparison of the block's class).
    @inline(__always)
    var isInRecord: Bool { ObjectIdentifier(type(of: block)) == ObjectIdentifier(KeyRecord.self) }

    /// The block if the listpack is `record`'s payload (to tell an unchanged value from a new one).
    func isPayload(of record: KeyRecord) -> Bool { block === record }

    /// Where the listpack starts in its block.
    @inline(__always)
    private func start(_ elements: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        isInRecord ? elements + KeyRecord.payloadOffset(elements) : elements
    }

    /// The header's 16-bit count saturates here (the count is then unknown).
    static let unknownCount = 65535

    /// The largest a compact collection's listpack grows, whatever the configured limits (Redis's
    /// `LISTPACK_MAX_SAFETY_SIZE`): beyond it the collection converts. It keeps the 32-bit size in the
    /// header, which is also the block's only count, exact.
    public static let maxSafeBytes = 1 << 30


    /// An empty listpack.
    public init() {
        self.init(copying: [7, 0, 0, 0, 0, 0, 0xFF])
    }

    /// A listpack holding a copy of `data` (whose header must already say its size).
    private init(copying data: [UInt8]) {
        block = ManagedBuffer<Void, UInt8>.create(minimumCapacity: data.count) { _ in () }
        block.withUnsafeMutablePointerToElements { out in
            data.withUnsafeBufferPointer { out.initialize(from: $0.baseAddress!, count: data.count) }
        }
    }

    /// A listpack read from an RDB file, validated element by element; nil when malformed.
    public init?(validating data: [UInt8]) {
        guard data.count >= 7, data.last == 0xFF else { return nil }
        let total = Int(data[0]) | Int(data[1]) << 8 | Int(data[2]) << 16 | Int(data[3]) << 24
        guard total == data.count else { return nil }
        self.init(copying: data)
        var offset = 6
        var elements = 0
        while offset < data.count - 1 {
            guard let size = elementSizeIfValid(at: offset) else { return nil }
            offset += size
            elements += 1
        }
        guard offset == data.count - 1 else { return nil }
        let declared = Int(data[4]) | Int(data[5]) << 8
        guard declared == Self.unknownCount || declared == elements else { return nil }
        if elements < Self.unknownCount && declared != elements {  // a saturated count made exact again
            block.withUnsafeMutablePointerToElements { $0[4] = UInt8(elements & 0xFF); $0[5] = UInt8(elements >> 8) }
        }
    }

    /// The total size in bytes (`lpBytes`), read from the header.
    @inline(__always)
    public var byteCount: Int {
        block.withUnsafeMutablePointerToElements { Int(UInt32(littleEndian: UnsafeRawPointer(start($0)).loadUnaligned(as: UInt32.self))) }
    }

    /// The element count in the header (`lpLength`'s stored field): exact below `unknownCount`, where it
    /// saturates.
    var headerCount: Int {
        block.withUnsafeMutablePointerToElements {
            Int(UInt16(littleEndian: UnsafeRawPointer(start($0)).loadUnaligned(fromByteOffset: 4, as: UInt16.self)))
        }
    }

    /// The whole listpack as an array (RDB, tests).
    public var bytes: [UInt8] { withData { Array($0) } }

    /// Calls `body` with the listpack's bytes.
    @inline(__always)
    func withData<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let count = byteCount
        return try block.withUnsafeMutablePointerToElements { try body(UnsafeBufferPointer(start: start($0), count: count)) }
    }

    /// Calls `body` with the listpack's bytes, untyped.
    @inline(__always)
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withData { try body(UnsafeRawBufferPointer($0)) }
    }

    /// The byte at `offset`.
    @inline(__always)
    func byte(_ offset: Int) -> UInt8 {
        withData { $0[offset] }
    }

    public static func == (lhs: Listpack, rhs: Listpack) -> Bool {
        lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in ByteCompare.equal(a, b) } }
    }

    /// Offset of the first element, or nil when empty.
    public var firstOffset: Int? { byteCount > 7 ? 6 : nil }

    /// Whether `offset` is the terminator (past the last element).
    @inline(__always)
    public func isEnd(_ offset: Int) -> Bool { byte(offset) == 0xFF }

    // MARK: Sizes

    /// Bytes the back-length of an element of `size` bytes takes.
    @inline(__always)
    static func backLengthSize(_ size: Int) -> Int {
        size <= 127 ? 1 : size < 16383 ? 2 : size < 2_097_151 ? 3 : size < 268_435_455 ? 4 : 5
    }

    /// Bytes an integer element takes without its back-length.
    @inline(__always)
    static func integerSize(_ value: Int64) -> Int {
        switch value {
        case 0...127: return 1
        case -4096...4095: return 2
        case -32768...32767: return 3
        case -8_388_608...8_388_607: return 4
        case Int64(Int32.min)...Int64(Int32.max): return 5
        default: return 9
        }
    }

    /// Bytes a string element of `length` bytes takes without its back-length.
    @inline(__always)
    static func stringSize(_ length: Int) -> Int {
        length < 64 ? 1 + length : length < 4096 ? 2 + length : 5 + length
    }

    /// Bytes the element for `value` takes, back-length included (a canonical integer is stored as one).
    public static func elementSize(_ value: UnsafeRawBufferPointer) -> Int {
        let size = value.count <= 20 ? RedisInteger.parse(value).map(integerSize) ?? stringSize(value.count) : stringSize(value.count)
        return size + backLengthSize(size)
    }

    /// Bytes the element for integer `value` takes, back-length included.
    public static func elementSize(_ value: Int64) -> Int {
        let size = integerSize(value)
        return size + backLengthSize(size)
    }

    // MARK: Reading

    /// An element: an integer, or a string at a byte range of `bytes`.
    public enum Element: Equatable {
        case integer(Int64)
        case string(Range<Int>)
    }

    /// The element at `offset` and the offset of the next one.
    @inline(__always)
    public func element(at offset: Int) -> (Element, next: Int) {
        withData { data in
            let first = data[offset]
            let element: Element
            let size: Int
            if first & 0x80 == 0 {
                element = .integer(Int64(first))
                size = 1
            } else if first & 0xC0 == 0x80 {
                let length = Int(first & 0x3F)
                element = .string((offset + 1)..<(offset + 1 + length))
                size = 1 + length
            } else if first & 0xE0 == 0xC0 {
                let raw = Int64(first & 0x1F) << 8 | Int64(data[offset + 1])
                element = .integer(raw >= 4096 ? raw - 8192 : raw)
                size = 2
            } else if first & 0xF0 == 0xE0 {
                let length = Int(first & 0x0F) << 8 | Int(data[offset + 1])
                element = .string((offset + 2)..<(offset + 2 + length))
                size = 2 + length
            } else {
                func little(_ count: Int) -> UInt64 {
                    var value: UInt64 = 0
                    for i in 0..<count { value |= UInt64(data[offset + 1 + i]) << (8 * i) }
                    return value
                }
                func signed(_ raw: UInt64, bits: Int) -> Int64 {
                    let shift = UInt64(64 - bits)
                    return Int64(bitPattern: raw << shift) >> Int64(shift)
                }
                switch first {
                case 0xF0:
                    let length = Int(little(4))
                    element = .string((offset + 5)..<(offset + 5 + length))
                    size = 5 + length
                case 0xF1:
                    element = .integer(signed(little(2), bits: 16)); size = 3
                case 0xF2:
                    element = .integer(signed(little(3), bits: 24)); size = 4
                case 0xF3:
                    element = .integer(signed(little(4), bits: 32)); size = 5
                default:
                    element = .integer(Int64(bitPattern: little(8))); size = 9
                }
            }
            return (element, offset + size + Self.backLengthSize(size))
        }
    }

    /// The integer at `offset` (0 for a string, which stream metadata never is) and the next offset.
    @inline(__always)
    public func integer(at offset: Int) -> (Int64, next: Int) {
        let (element, next) = element(at: offset)
        if case .integer(let value) = element { return (value, next) }
        return (0, next)
    }

    /// The offset just after the element at `offset`.
    @inline(__always)
    public func next(_ offset: Int) -> Int { element(at: offset).next }

    /// The offset of the element before the one at `offset` (which may be the terminator), read from its
    /// back-length; nil at the first element.
    public func previous(_ offset: Int) -> Int? {
        guard offset > 6 else { return nil }
        var position = offset - 1
        var size = 0
        var shift = 0
        while true {
            let byte = Int(self.byte(position))
            size |= (byte & 127) << shift
            if byte & 128 == 0 { break }
            shift += 7
            position -= 1
        }
        return position - size
    }

    /// The element at `offset` as bytes (integers in decimal).
    public func value(at offset: Int) -> Bytes {
        switch element(at: offset).0 {
        case .integer(let value): return Bytes(RedisInteger.bytes(value))
        case .string(let range): return withUnsafeBytes { Bytes(UnsafeRawBufferPointer(rebasing: $0[range])) }
        }
    }

    /// Whether the element at `offset` equals `other` as a string (an integer element compares by its
    /// decimal form).
    public func element(at offset: Int, equals other: UnsafeRawBufferPointer) -> Bool {
        switch element(at: offset).0 {
        case .integer(let value):
            return RedisInteger.bytes(value).withUnsafeBytes { ByteCompare.equal($0, other) }
        case .string(let range):
            return withUnsafeBytes { ByteCompare.equal(UnsafeRawBufferPointer(rebasing: $0[range]), other) }
        }
    }

    /// The element size at `offset` when it is well formed and inside the data (for validation).
    private func elementSizeIfValid(at offset: Int) -> Int? {
        withData { bytes in Self.elementSizeIfValid(in: bytes, at: offset) }
    }

    private static func elementSizeIfValid(in bytes: UnsafeBufferPointer<UInt8>, at offset: Int) -> Int? {
        let first = bytes[offset]
        var size: Int
        if first & 0x80 == 0 { size = 1 }
        else if first & 0xC0 == 0x80 { size = 1 + Int(first & 0x3F) }
        else if first & 0xE0 == 0xC0 { size = 2 }
        else if first & 0xF0 == 0xE0 {
            guard offset + 1 < bytes.count else { return nil }
            size = 2 + (Int(first & 0x0F) << 8 | Int(bytes[offset + 1]))
        } else {
            switch first {
            case 0xF0:
                guard offset + 5 <= bytes.count else { return nil }
                var length = 0
                for i in 0..<4 { length |= Int(bytes[offset + 1 + i]) << (8 * i) }
                size = 5 + length
            case 0xF1: size = 3
            case 0xF2: size = 4
            case 0xF3: size = 5
            case 0xF4: size = 9
            default: return nil
            }
        }
        let total = size + backLengthSize(size)
        guard offset + total < bytes.count else { return nil }
        // The back-length must say the same.
        var position = offset + total - 1
        var declared = 0
        var shift = 0
        while true {
            let byte = Int(bytes[position])
            declared |= (byte & 127) << shift
            if byte & 128 == 0 { break }
            shift += 7
            position -= 1
            guard position >= offset + size, shift <= 28 else { return nil }
        }
        return declared == size && position == offset + size ? total : nil
    }

    // MARK: Writing

    /// The encoding of an integer element with its back-length.
    static func encode(integer value: Int64, into out: inout [UInt8]) {
        let start = out.count
        switch value {
        case 0...127:
            out.append(UInt8(value))
        case -4096...4095:
            let raw = value < 0 ? (1 << 13) + value : value
            out.append(UInt8(raw >> 8) | 0xC0)
            out.append(UInt8(raw & 0xFF))
        case -32768...32767:
            out.append(0xF1)
            appendLittle(UInt64(bitPattern: value), 2, &out)
        case -8_388_608...8_388_607:
            out.append(0xF2)
            appendLittle(UInt64(bitPattern: value), 3, &out)
        case Int64(Int32.min)...Int64(Int32.max):
            out.append(0xF3)
            appendLittle(UInt64(bitPattern: value), 4, &out)
        default:
            out.append(0xF4)
            appendLittle(UInt64(bitPattern: value), 8, &out)
        }
        appendBackLength(out.count - start, &out)
    }

    /// The encoding of an element for `value` (an integer when canonical) with its back-length.
    static func encode(_ value: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        if value.count <= 20, let number = RedisInteger.parse(value) {
            encode(integer: number, into: &out)
            return
        }
        let start = out.count
        let length = value.count
        if length < 64 {
            out.append(0x80 | UInt8(length))
        } else if length < 4096 {
            out.append(0xE0 | UInt8(length >> 8))
            out.append(UInt8(length & 0xFF))
        } else {
            out.append(0xF0)
            appendLittle(UInt64(length), 4, &out)
        }
        out.append(contentsOf: value)
        appendBackLength(out.count - start, &out)
    }

    private static func appendLittle(_ value: UInt64, _ count: Int, _ out: inout [UInt8]) {
        for i in 0..<count { out.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    private static func appendBackLength(_ size: Int, _ out: inout [UInt8]) {
        switch size {
        case ...127:
            out.append(UInt8(size))
        case ..<16383:
            out.append(UInt8(size >> 7)); out.append(UInt8(size & 127) | 128)
        case ..<2_097_151:
            out.append(UInt8(size >> 14)); out.append(UInt8((size >> 7) & 127) | 128); out.append(UInt8(size & 127) | 128)
        case ..<268_435_455:
            out.append(UInt8(size >> 21)); out.append(UInt8((size >> 14) & 127) | 128)
            out.append(UInt8((size >> 7) & 127) | 128); out.append(UInt8(size & 127) | 128)
        default:
            out.append(UInt8(truncatingIfNeeded: size >> 28)); out.append(UInt8((size >> 21) & 127) | 128)
            out.append(UInt8((size >> 14) & 127) | 128); out.append(UInt8((size >> 7) & 127) | 128)
            out.append(UInt8(size & 127) | 128)
        }
    }

    /// Appends encoded elements (`count` of them) before the terminator and updates the header.
    /// Room grows geometrically, as a stream node is appended to until it is full.
    public mutating func append(encoded: [UInt8], count: Int) {
        let end = endOffset
        splice(end..<end, with: encoded, elementDelta: count, growth: byteCount + byteCount / 2)
    }

    /// Replaces the integer element at `offset` with `value` (its size may change).
    public mutating func replaceInteger(at offset: Int, with value: Int64) {
        // The common case, a small counter or flag staying small: one byte in place.
        if value >= 0 && value <= 127 && byte(offset) & 0x80 == 0 {
            reserve(byteCount, growth: byteCount)
            block.withUnsafeMutablePointerToElements { $0[offset] = UInt8(value) }
            return
        }
        var encoded: [UInt8] = []
        Self.encode(integer: value, into: &encoded)
        splice(offset..<next(offset), with: encoded, elementDelta: 0, growth: 0)
    }

    /// Gives back spare capacity (a node that will not grow again).
    public mutating func shrink() {
        let count = byteCount
        if !isInRecord && block.capacity > count + 16 { block = withData { Self.block(copying: $0, capacity: count) } }
    }

    /// A new block of at least `capacity` bytes starting with a copy of `data`.
    private static func block(copying data: UnsafeBufferPointer<UInt8>, capacity: Int) -> ManagedBuffer<Void, UInt8> {
        let fresh = ManagedBuffer<Void, UInt8>.create(minimumCapacity: capacity) { _ in () }
        fresh.withUnsafeMutablePointerToElements { $0.initialize(from: data.baseAddress!, count: data.count) }
        return fresh
    }

    /// Makes the block this value's own with room for `needed` bytes: a shared or short block is copied
    /// whole into one of `max(needed, growth)` bytes, or of its current size when that is larger (the
    /// splice that shrinks a shared listpack moves its tail inside the copy).
    private mutating func reserve(_ needed: Int, growth: Int) {
        if !isInRecord && isKnownUniquelyReferenced(&block) && block.capacity >= needed { return }
        block = withData { Self.block(copying: $0, capacity: Swift.max(needed, growth, $0.count)) }
    }

    /// Replaces the bytes in `range` with `encoded` (whole elements), then writes the header: the new
    /// size, and the element count changed by `elementDelta` (unless it has saturated).
    private mutating func splice(_ range: Range<Int>, with encoded: [UInt8], elementDelta: Int, growth: Int) {
        let oldCount = byteCount
        let newCount = oldCount - range.count + encoded.count
        reserve(newCount, growth: growth)
        block.withUnsafeMutablePointerToElements { data in
            let raw = UnsafeMutableRawPointer(data)
            if encoded.count != range.count {
                (raw + range.lowerBound + encoded.count).copyMemory(from: raw + range.upperBound, byteCount: oldCount - range.upperBound)
            }
            encoded.withUnsafeBytes { if !$0.isEmpty { (raw + range.lowerBound).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            raw.storeBytes(of: UInt32(truncatingIfNeeded: newCount).littleEndian, as: UInt32.self)
            guard elementDelta != 0 else { return }
            let current = Int(data[4]) | Int(data[5]) << 8
            guard current != Self.unknownCount else { return }
            let updated = min(current + elementDelta, Self.unknownCount)
            data[4] = UInt8(updated & 0xFF); data[5] = UInt8(updated >> 8)
        }
    }
}

// MARK: Searching and editing (the compact encodings of small hashes, sets and sorted sets)

/// A string looked for in a listpack, with its integer value when it is a canonical integer (which a
/// listpack stores as an integer element).
public struct ListpackNeedle {
    public let bytes: UnsafeRawBufferPointer
    public let integer: Int64?

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        integer = bytes.count <= 20 ? RedisInteger.parse(bytes) : nil
    }
}

extension Listpack {
    /// Whether the element at `offset` equals `needle` as a string.
    @inline(__always)
    public func matches(_ offset: Int, _ needle: ListpackNeedle) -> Bool {
        switch element(at: offset).0 {
        case .integer(let value): return needle.integer == value
        case .string(let range):
            return withUnsafeBytes { ByteCompare.equal(UnsafeRawBufferPointer(rebasing: $0[range]), needle.bytes) }
        }
    }

    /// Calls `body` with the element at `offset` as bytes (an integer formatted in decimal, without an
    /// allocation).
    @inline(__always)
    public func withElementBytes<R>(at offset: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch element(at: offset).0 {
        case .integer(let value):
            var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
            return try withUnsafeMutableBytes(of: &scratch) { out in
                let length = RedisInteger.format(value, into: out)
                return try body(UnsafeRawBufferPointer(rebasing: out[0..<length]))
            }
        case .string(let range):
            return try withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[range])) }
        }
    }

    /// The offset of the terminator: where an append goes.
    public var endOffset: Int { byteCount - 1 }

    /// Replaces the elements in `range` (whole encoded elements, or an empty range at an element's offset
    /// or the end) with `encoded` elements, changing the element count by `elementDelta`. Storage grows
    /// to the exact size needed, as Redis reallocates a listpack on every insertion: small collections
    /// are many and stay small.
    public mutating func replace(_ range: Range<Int>, with encoded: [UInt8], elementDelta: Int) {
        splice(range, with: encoded, elementDelta: elementDelta, growth: 0)
    }

    /// Whether `added` more bytes of elements keep the listpack within `maxSafeBytes` (`lpSafeToAdd`).
    public func canGrow(by added: Int) -> Bool { byteCount + added <= Self.maxSafeBytes }

    /// The encoding of `value` as one element (an integer when canonical), appended to `out`.
    public static func encodeElement(_ value: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        encode(value, into: &out)
    }

    /// The encoding of integer `value` as one element, appended to `out`.
    public static func encodeElement(integer value: Int64, into out: inout [UInt8]) {
        encode(integer: value, into: &out)
    }

    /// Heap bytes the listpack takes, for memory accounting.
    /// (0 for a key record's payload: the record counts it.)
    public var heapFootprint: Int { isInRecord ? 0 : MemoryEstimate.allocation(16 + block.capacity) }
}
