/// LZF, the compression RDB files use for strings (liblzf's format).
public enum LZF {
    /// Decompresses `input` into exactly `expectedLength` bytes, or returns nil for corrupt data.
    /// - Complexity: O(expectedLength).
    public static func decompress(_ input: UnsafeRawBufferPointer, expectedLength: Int) -> [UInt8]? {
        guard isPlausible(input, expectedLength: expectedLength) else { return nil }
        var output = [UInt8](repeating: 0, count: expectedLength)
        return output.withUnsafeMutableBufferPointer { decompress(input, into: $0) } ? output : nil
    }

    /// Whether `input` could decompress to `expectedLength` bytes. A back-reference of 3 bytes yields
    /// at most 264: a claimed length past 88 times the input is corrupt, and is refused before anything
    /// is allocated for it (a DUMP payload may claim 2^62).
    public static func isPlausible(_ input: UnsafeRawBufferPointer, expectedLength: Int) -> Bool {
        expectedLength >= 0 && expectedLength <= input.count * 88
    }

    /// Decompresses `input` into `out`, which it must fill exactly; false when the input is corrupt.
    public static func decompress(_ input: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        let expectedLength = out.count
        var ip = 0
        var op = 0
        while ip < input.count {
            let control = Int(input[ip])
            ip += 1
            if control < 32 {
                let length = control + 1
                guard op + length <= expectedLength, ip + length <= input.count else { return false }
                for i in 0..<length { out[op + i] = input[ip + i] }
                ip += length
                op += length
            } else {
                var length = control >> 5
                guard ip < input.count else { return false }
                if length == 7 {
                    length += Int(input[ip])
                    ip += 1
                    guard ip < input.count else { return false }
                }
                let back = ((control & 0x1F) << 8) + Int(input[ip]) + 1
                ip += 1
                length += 2
                let reference = op - back
                guard reference >= 0, op + length <= expectedLength else { return false }
                // Byte by byte: the reference may overlap what is being written.
                for i in 0..<length { out[op + i] = out[reference + i] }
                op += length
            }
        }
        return op == expectedLength
    }

    /// Compresses `input`, or returns nil when the result would not be smaller.
    public static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        var compressor = LZFCompressor()
        return compressor.compress(input)
    }
}

/// An LZF compressor whose hash table is reused from one input to the next (RDB files compress many
/// short strings; a fresh 16K-entry table per string would dominate the cost).
public struct LZFCompressor {
    private var table = [Int](repeating: 0, count: 1 << 14)
    /// Positions are stored as `base + position + 1` (0 = empty), so entries left by earlier inputs,
    /// which are below `base`, are recognisably stale.
    private var base = 0

    public init() {}

    /// Compresses `input`, or returns nil when the result would not be smaller.
    /// - Complexity: O(n).
    public mutating func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        let count = input.count
        guard count > 4 else { return nil }
        defer { base += count + 1 }
        if base > Int.max / 2 {
            base = 0
            table = [Int](repeating: 0, count: 1 << 14)
        }
        var output = [UInt8]()
        output.reserveCapacity(count)
        var literalStart = 0
        var ip = 0
        let base = self.base
        return table.withUnsafeMutableBufferPointer { table -> [UInt8]? in
            func flushLiterals(upTo end: Int) {
                var start = literalStart
                while start < end {
                    let run = Swift.min(32, end - start)
                    output.append(UInt8(run - 1))
                    output.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[start..<(start + run)]))
                    start += run
                }
            }
            while ip + 2 < count {
                let key = Int(input[ip]) << 16 | Int(input[ip + 1]) << 8 | Int(input[ip + 2])
                let hash = (key &* 2654435761 >> 18) & ((1 << 14) - 1)
                let stored = table[hash]
                let candidate = stored > base ? stored - 1 - base : -1
                table[hash] = ip + base + 1
                let distance = ip - candidate - 1
                if candidate >= 0, distance < 8192, input[candidate] == input[ip], input[candidate + 1] == input[ip + 1],
                   input[candidate + 2] == input[ip + 2] {
                    var length = 3
                    let maxLength = Swift.min(264, count - ip)
                    while length < maxLength && input[candidate + length] == input[ip + length] { length += 1 }
                    flushLiterals(upTo: ip)
                    let encoded = length - 2
                    if encoded < 7 {
                        output.append(UInt8(encoded << 5 | distance >> 8))
                    } else {
                        output.append(UInt8(7 << 5 | distance >> 8))
                        output.append(UInt8(encoded - 7))
                    }
                    output.append(UInt8(distance & 0xFF))
                    ip += length
                    literalStart = ip
                    if output.count >= count { return nil }
                } else {
                    ip += 1
                }
            }
            flushLiterals(upTo: count)
            return output.count < count ? output : nil
        }
    }
}
