/// Redis's bit operations on strings (bitops.c). Bit 0 is the most significant bit of the first byte;
/// bits past the end of a string read as 0.
public enum Bitmap {
    /// Bit `offset` of `bytes` (false past the end).
    public static func bit(at offset: Int, in bytes: UnsafeRawBufferPointer) -> Bool {
        let byte = offset >> 3
        guard byte < bytes.count else { return false }
        return bytes[byte] & (0x80 >> UInt8(offset & 7)) != 0
    }

    /// Sets bit `offset` (inside `bytes`) and returns its old value.
    @discardableResult
    public static func setBit(at offset: Int, to on: Bool, in bytes: UnsafeMutableRawBufferPointer) -> Bool {
        let byte = offset >> 3
        let mask: UInt8 = 0x80 >> UInt8(offset & 7)
        let old = bytes[byte] & mask != 0
        if on { bytes[byte] |= mask } else { bytes[byte] &= ~mask }
        return old
    }

    /// The number of set bits among bits `range` (inside `bytes`).
    public static func count(_ bytes: UnsafeRawBufferPointer, bits range: ClosedRange<Int>) -> Int {
        let firstByte = range.lowerBound >> 3, lastByte = range.upperBound >> 3
        // The bits of the edge bytes that lie outside the range.
        let headMask: UInt8 = ~(0xFF >> UInt8(range.lowerBound & 7))
        let tailMask: UInt8 = 0xFF >> UInt8((range.upperBound & 7) + 1)
        var total = popcount(UnsafeRawBufferPointer(rebasing: bytes[firstByte...lastByte]))
        total -= (bytes[firstByte] & headMask).nonzeroBitCount
        total -= (bytes[lastByte] & tailMask).nonzeroBitCount
        return total
    }

    /// The number of set bits in `bytes`, eight bytes at a time.
    public static func popcount(_ bytes: UnsafeRawBufferPointer) -> Int {
        var total = 0
        var index = 0
        let words = bytes.count / 8
        for word in 0..<words {
            total += bytes.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self).nonzeroBitCount
        }
        index = words * 8
        while index < bytes.count {
            total += bytes[index].nonzeroBitCount
            index += 1
        }
        return total
    }

    /// The first bit equal to `bit` among bits `range` (inside `bytes`), or nil.
    public static func position(of bit: Bool, in bytes: UnsafeRawBufferPointer, bits range: ClosedRange<Int>) -> Int? {
        // Bytes that cannot hold the bit are skipped whole.
        let skip: UInt8 = bit ? 0x00 : 0xFF
        var offset = range.lowerBound
        while offset <= range.upperBound {
            if offset & 7 == 0 && offset + 7 <= range.upperBound {
                var byte = offset >> 3
                let lastWholeByte = (range.upperBound + 1) >> 3
                // Eight bytes at a time while they are all `skip`.
                let skipWord: UInt64 = bit ? 0 : .max
                while byte + 8 <= lastWholeByte && bytes.loadUnaligned(fromByteOffset: byte, as: UInt64.self) == skipWord {
                    byte += 8
                }
                while byte < lastWholeByte && bytes[byte] == skip { byte += 1 }
                offset = byte << 3
                if offset > range.upperBound { break }
            }
            if Bitmap.bit(at: offset, in: bytes) == bit { return offset }
            offset += 1
        }
        return nil
    }

    /// BITOP's operations.
    public enum Operation: Sendable {
        case and, or, xor, not
    }

    /// BITOP: combines `sources` byte by byte, shorter ones padded with zero bytes; the result is as long
    /// as the longest. NOT takes one source.
    public static func combine(_ operation: Operation, _ sources: [[UInt8]]) -> [UInt8] {
        let length = sources.map(\.count).max() ?? 0
        guard length > 0 else { return [] }
        var result = [UInt8](repeating: 0, count: length)
        let first = sources[0]
        for index in 0..<first.count { result[index] = first[index] }
        switch operation {
        case .not:
            for index in 0..<length { result[index] = ~result[index] }
        case .and:
            for source in sources.dropFirst() {
                for index in 0..<length { result[index] &= index < source.count ? source[index] : 0 }
            }
        case .or:
            for source in sources.dropFirst() {
                for index in 0..<source.count { result[index] |= source[index] }
            }
        case .xor:
            for source in sources.dropFirst() {
                for index in 0..<source.count { result[index] ^= source[index] }
            }
        }
        return result
    }
}

/// BITFIELD's integers: fields of 1 to 64 bits (unsigned up to 63) at any bit offset, big-endian, and
/// Redis's overflow rules.
public enum BitField {
    /// What an increment or a SET does past the field's range.
    public enum Overflow: Sendable {
        /// Keep the low bits (two's complement for signed fields).
        case wrap
        /// Clamp to the minimum or maximum.
        case saturate
        /// Change nothing and answer nil.
        case fail
    }

    /// The field's bits as an unsigned number (bits past the end of `bytes` read as 0).
    public static func unsigned(_ bytes: UnsafeRawBufferPointer, offset: Int, bits: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<bits {
            value = value << 1 | (Bitmap.bit(at: offset + index, in: bytes) ? 1 : 0)
        }
        return value
    }

    /// The field as a two's complement signed number.
    public static func signed(_ bytes: UnsafeRawBufferPointer, offset: Int, bits: Int) -> Int64 {
        var value = unsigned(bytes, offset: offset, bits: bits)
        if bits < 64 && value & (1 << UInt64(bits - 1)) != 0 { value |= UInt64.max << UInt64(bits) }
        return Int64(bitPattern: value)
    }

    /// Writes the low `bits` bits of `value` (inside `bytes`).
    public static func set(_ bytes: UnsafeMutableRawBufferPointer, offset: Int, bits: Int, to value: UInt64) {
        for index in 0..<bits {
            let on = value & (1 << UInt64(bits - 1 - index)) != 0
            Bitmap.setBit(at: offset + index, to: on, in: bytes)
        }
    }

    /// Whether `value + increment` leaves an unsigned field of `bits` bits, and if so the value `mode`
    /// gives it (Redis's `checkUnsignedBitfieldOverflow`; SET checks the new value with increment 0).
    public static func unsignedOverflow(_ value: UInt64, _ increment: Int64, bits: Int, _ mode: Overflow) -> UInt64? {
        let max: UInt64 = bits == 64 ? .max : (1 << UInt64(bits)) - 1
        let maxIncrement = Int64(bitPattern: max &- value)
        let minIncrement = Int64(bitPattern: 0 &- value)
        let wrapped = (value &+ UInt64(bitPattern: increment)) & ~(bits == 64 ? 0 : UInt64.max << UInt64(bits))
        if value > max || (increment > 0 && increment > maxIncrement) {
            return mode == .saturate ? max : wrapped
        }
        if increment < 0 && increment < minIncrement {
            return mode == .saturate ? 0 : wrapped
        }
        return nil
    }

    /// Whether `value + increment` leaves a signed field of `bits` bits, and if so the value `mode` gives it
    /// (Redis's `checkSignedBitfieldOverflow`).
    public static func signedOverflow(_ value: Int64, _ increment: Int64, bits: Int, _ mode: Overflow) -> Int64? {
        let max: Int64 = bits == 64 ? .max : (1 << Int64(bits - 1)) - 1
        let min = -max - 1
        let maxIncrement = Int64(bitPattern: UInt64(bitPattern: max) &- UInt64(bitPattern: value))
        let minIncrement = min &- value
        var sum = UInt64(bitPattern: value) &+ UInt64(bitPattern: increment)
        if bits < 64 {
            let high = UInt64.max << UInt64(bits)
            if sum & (1 << UInt64(bits - 1)) != 0 { sum |= high } else { sum &= ~high }
        }
        let wrapped = Int64(bitPattern: sum)
        if value > max || (bits != 64 && increment > maxIncrement) || (value >= 0 && increment > 0 && increment > maxIncrement) {
            return mode == .saturate ? max : wrapped
        }
        if value < min || (bits != 64 && increment < minIncrement) || (value < 0 && increment < 0 && increment < minIncrement) {
            return mode == .saturate ? min : wrapped
        }
        return nil
    }
}

/// LCS: the longest common subsequence of two strings by Redis's dynamic programme, and its matches
/// walked back from the end as Redis reports them.
public struct LongestCommonSubsequence: Sendable {
    /// One run of consecutive matching bytes: where it is in each string, and its length.
    public struct Match: Sendable, Equatable {
        public var a: ClosedRange<Int>
        public var b: ClosedRange<Int>
        public var length: Int { a.count }

        public init(a: ClosedRange<Int>, b: ClosedRange<Int>) {
            self.a = a
            self.b = b
        }
    }

    /// The bytes a table for strings of these lengths needs (4 per cell, as Redis's uint32 table).
    public static func tableBytes(_ aLength: Int, _ bLength: Int) -> Int {
        let (cells, overflow) = (aLength + 1).multipliedReportingOverflow(by: bLength + 1)
        return overflow || cells > Int.max / 4 ? .max : cells * 4
    }

    /// The subsequence's bytes.
    public private(set) var bytes: [UInt8] = []
    /// Its length.
    public let length: Int
    /// The runs of matches from the end of the strings to their start (with `computeMatches`).
    public private(set) var matches: [Match] = []

    /// Computes the table; the subsequence and matches only when asked (LCS … LEN needs neither).
    public init(_ a: [UInt8], _ b: [UInt8], computeSequence: Bool = true) {
        let columns = b.count + 1
        var table = [UInt32](repeating: 0, count: (a.count + 1) * columns)
        if !a.isEmpty && !b.isEmpty {
            for i in 1...a.count {
                for j in 1...b.count {
                    table[i * columns + j] = a[i - 1] == b[j - 1]
                        ? table[(i - 1) * columns + j - 1] + 1
                        : Swift.max(table[(i - 1) * columns + j], table[i * columns + j - 1])
                }
            }
        }
        length = Int(table[a.count * columns + b.count])
        guard computeSequence else { return }
        var sequence = [UInt8](repeating: 0, count: length)
        var remaining = length
        var i = a.count, j = b.count
        var current: Match? = nil
        while i > 0 && j > 0 {
            var emit = false
            if a[i - 1] == b[j - 1] {
                sequence[remaining - 1] = a[i - 1]
                if let run = current {
                    // A run only ever extends backwards: the previous step matched at (i, j).
                    current = Match(a: (i - 1)...run.a.upperBound, b: (j - 1)...run.b.upperBound)
                } else {
                    current = Match(a: (i - 1)...(i - 1), b: (j - 1)...(j - 1))
                }
                if i == 1 || j == 1 { emit = true }
                remaining -= 1; i -= 1; j -= 1
            } else {
                if table[(i - 1) * columns + j] > table[i * columns + j - 1] { i -= 1 } else { j -= 1 }
                if current != nil { emit = true }
            }
            if emit, let run = current {
                matches.append(run)
                current = nil
            }
        }
        bytes = sequence
    }
}
