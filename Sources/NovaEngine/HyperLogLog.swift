import Foundation

/// A HyperLogLog in Redis's exact string representation (hyperloglog.c), so that values move between
/// redis-server and this server through GET/SET, DUMP/RESTORE and RDB, and PFCOUNT answers the same.
///
/// Layout: a 16-byte header (`HYLL`, the encoding byte: 0 dense, 1 sparse; three unused bytes; the cached
/// cardinality, 8 bytes little-endian, whose top bit set means stale), then 16384 registers of 6 bits,
/// either packed (dense, 12288 bytes, least significant bits first) or run-length coded (sparse: ZERO
/// `00xxxxxx` runs of 1–64 zero registers, XZERO `01xxxxxx yyyyyyyy` runs of 1–16384, VAL `1vvvvvxx`
/// runs of 1–4 registers holding 1–32). A sparse value becomes dense when a register needs more than 32
/// or when it would grow past `hll-sparse-max-bytes`.
public struct HyperLogLog: Sendable {
    /// The string's bytes: header and registers.
    public private(set) var bytes: [UInt8]

    public static let registerCount = 16384
    static let precision = 14
    static let headerSize = 16
    static let denseSize = headerSize + (registerCount * 6 + 7) / 8
    static let registerMax: UInt8 = 63
    static let sparseValueMax = 32
    static let hashSeed: UInt64 = 0xadc8_3b19

    /// Why a value cannot be used as a HyperLogLog.
    public enum Problem: Error, Sendable {
        /// Not a HyperLogLog string: Redis answers `WRONGTYPE Key is not a valid HyperLogLog string value.`
        case notHyperLogLog
        /// The header is right but the registers are corrupt: `INVALIDOBJ Corrupted HLL object detected`.
        case corrupt
    }

    /// The two encodings.
    public enum Encoding: Sendable {
        case dense, sparse
    }

    /// An empty HyperLogLog: sparse, one XZERO run over every register, cached cardinality 0.
    public init() {
        var bytes = [UInt8](repeating: 0, count: Self.headerSize + 2)
        bytes.replaceSubrange(0..<4, with: Array("HYLL".utf8))
        bytes[4] = 1
        let run = Self.registerCount - 1
        bytes[Self.headerSize] = UInt8(run >> 8) | 0x40
        bytes[Self.headerSize + 1] = UInt8(run & 0xFF)
        self.bytes = bytes
    }

    /// Takes a string as a HyperLogLog after Redis's header checks (`isHLLObjectOrReply`): the magic, a
    /// known encoding, and the exact length of a dense one. The registers are checked when read.
    public init(validating bytes: [UInt8]) throws(Problem) {
        guard bytes.count >= Self.headerSize, bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "Y"),
              bytes[2] == UInt8(ascii: "L"), bytes[3] == UInt8(ascii: "L"), bytes[4] <= 1,
              bytes[4] == 1 || bytes.count == Self.denseSize else { throw .notHyperLogLog }
        self.bytes = bytes
    }

    /// The current encoding.
    public var encoding: Encoding { bytes[4] == 0 ? .dense : .sparse }

    // MARK: Cached cardinality

    /// The cached cardinality, or nil when stale.
    public var cachedCardinality: UInt64? {
        guard bytes[15] & 0x80 == 0 else { return nil }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[8 + index]) << UInt64(8 * index) }
        return value
    }

    /// Stores `value` as the cached cardinality.
    public mutating func cacheCardinality(_ value: UInt64) {
        for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: value >> UInt64(8 * index)) }
    }

    /// Marks the cached cardinality stale.
    public mutating func invalidateCache() { bytes[15] |= 0x80 }

    // MARK: Adding

    /// The register an element falls in and the run length of its hash (Redis's `hllPatLen`).
    public static func registerAndCount(of element: UnsafeRawBufferPointer) -> (register: Int, count: UInt8) {
        var hash = murmurHash64A(element, seed: hashSeed)
        let register = Int(hash & UInt64(registerCount - 1))
        hash >>= UInt64(precision)
        hash |= 1 << UInt64(64 - precision)
        return (register, UInt8(hash.trailingZeroBitCount + 1))
    }

    /// Adds an element (without touching the cache; PFADD invalidates it once). Returns whether a
    /// register changed.
    public mutating func add(_ element: UnsafeRawBufferPointer, sparseMaxBytes: Int) throws(Problem) -> Bool {
        let (register, count) = Self.registerAndCount(of: element)
        return try set(register: register, atLeast: count, sparseMaxBytes: sparseMaxBytes)
    }

    /// Raises `register` to `count` if it is lower. Returns whether it changed.
    public mutating func set(register: Int, atLeast count: UInt8, sparseMaxBytes: Int) throws(Problem) -> Bool {
        if encoding == .dense { return setDense(register, count) }
        return try setSparse(register, count, sparseMaxBytes: sparseMaxBytes)
    }

    private mutating func setDense(_ register: Int, _ count: UInt8) -> Bool {
        guard count > denseRegister(register) else { return false }
        setDenseRegister(register, count)
        return true
    }

    func denseRegister(_ register: Int) -> UInt8 {
        let bit = register * 6
        let byte = Self.headerSize + bit / 8, shift = bit & 7
        let low = Int(bytes[byte])
        let high = byte + 1 < bytes.count ? Int(bytes[byte + 1]) : 0
        return UInt8(((low >> shift) | (high << (8 - shift))) & Int(Self.registerMax))
    }

    /// Sets register `register` of a dense value to `value` (0…63), whatever it held (PFSELFTEST).
    public mutating func setDenseRegister(_ register: Int, _ value: UInt8) {
        let bit = register * 6
        let byte = Self.headerSize + bit / 8, shift = bit & 7
        let value = Int(value), max = Int(Self.registerMax)
        bytes[byte] = UInt8(truncatingIfNeeded: (Int(bytes[byte]) & ~(max << shift)) | (value << shift))
        if byte + 1 < bytes.count {
            bytes[byte + 1] = UInt8(truncatingIfNeeded: (Int(bytes[byte + 1]) & ~(max >> (8 - shift))) | (value >> (8 - shift)))
        }
    }

    /// One sparse opcode: how many registers it covers, its length in bytes, and its value (0 for runs of
    /// zeros). A two-byte XZERO cut short reads its missing byte as 0, as Redis reads its string's end.
    private func opcode(at position: Int) -> (span: Int, length: Int, value: UInt8, kind: UInt8) {
        let byte = bytes[position]
        switch byte & 0xC0 {
        case 0x00:
            return (Int(byte & 0x3F) + 1, 1, 0, 0x00)
        case 0x40:
            let low = position + 1 < bytes.count ? Int(bytes[position + 1]) : 0
            return ((Int(byte & 0x3F) << 8 | low) + 1, 2, 0, 0x40)
        default:
            return (Int(byte & 0x3) + 1, 1, (byte >> 2 & 0x1F) + 1, 0x80)
        }
    }

    private static func valueOpcode(_ value: Int, _ length: Int) -> UInt8 { UInt8((value - 1) << 2 | (length - 1)) | 0x80 }

    private static func zeroOpcodes(_ length: Int) -> [UInt8] {
        length > 64 ? [UInt8((length - 1) >> 8) | 0x40, UInt8((length - 1) & 0xFF)] : [UInt8(length - 1)]
    }

    /// Redis's `hllSparseSet`, step by step, so that the opcodes come out byte for byte as Redis writes them.
    private mutating func setSparse(_ register: Int, _ count: UInt8, sparseMaxBytes: Int) throws(Problem) -> Bool {
        if Int(count) > Self.sparseValueMax { return try promote(register, count) }
        // Step 1: the opcode covering the register.
        var position = Self.headerSize
        var first = 0
        var previous: Int? = nil
        var current: (span: Int, length: Int, value: UInt8, kind: UInt8)? = nil
        while position < bytes.count {
            let op = opcode(at: position)
            if register <= first + op.span - 1 {
                current = op
                break
            }
            previous = position
            position += op.length
            first += op.span
        }
        guard let op = current, position < bytes.count else { throw .corrupt }
        // Step 2: the cases that change the opcode in place.
        var replaced = false
        if op.kind == 0x80 {
            if op.value >= count { return false }
            if op.span == 1 {
                bytes[position] = Self.valueOpcode(Int(count), 1)
                replaced = true
            }
        } else if op.kind == 0x00 && op.span == 1 {
            bytes[position] = Self.valueOpcode(Int(count), 1)
            replaced = true
        }
        if !replaced {
            // Step 3: split the opcode around the register.
            let last = first + op.span - 1
            var sequence: [UInt8] = []
            if op.kind == 0x80 {
                if register != first { sequence.append(Self.valueOpcode(Int(op.value), register - first)) }
                sequence.append(Self.valueOpcode(Int(count), 1))
                if register != last { sequence.append(Self.valueOpcode(Int(op.value), last - register)) }
            } else {
                if register != first { sequence += Self.zeroOpcodes(register - first) }
                sequence.append(Self.valueOpcode(Int(count), 1))
                if register != last { sequence += Self.zeroOpcodes(last - register) }
            }
            let growth = sequence.count - op.length
            if growth > 0 && bytes.count + growth > sparseMaxBytes { return try promote(register, count) }
            // The length changes by the opcode's nominal size: an XZERO cut short at the end (its second
            // byte read as 0) loses the sequence's last byte, as in Redis.
            let newCount = bytes.count + growth
            bytes.replaceSubrange(position..<min(position + op.length, bytes.count), with: sequence)
            if bytes.count > newCount { bytes.removeLast(bytes.count - newCount) }
        }
        // Step 4: merge adjacent VAL opcodes of one value, looking at up to five opcodes from the previous.
        var scan = previous ?? Self.headerSize
        var budget = 5
        while scan < bytes.count {
            guard budget > 0 else { break }
            budget -= 1
            let byte = bytes[scan]
            if byte & 0xC0 == 0x40 { scan += 2; continue }
            if byte & 0xC0 == 0x00 { scan += 1; continue }
            if scan + 1 < bytes.count && bytes[scan + 1] & 0x80 != 0 {
                let a = opcode(at: scan), b = opcode(at: scan + 1)
                if a.value == b.value && a.span + b.span <= 4 {
                    bytes[scan + 1] = Self.valueOpcode(Int(a.value), a.span + b.span)
                    bytes.remove(at: scan)
                    continue
                }
            }
            scan += 1
        }
        invalidateCache()
        return true
    }

    /// Converts to dense and sets the register there (the register always changes on this path).
    private mutating func promote(_ register: Int, _ count: UInt8) throws(Problem) -> Bool {
        try convertToDense()
        _ = setDense(register, count)
        return true
    }

    /// Converts a sparse value to the dense encoding, keeping the header (Redis's `hllSparseToDense`).
    /// Returns whether it converted; throws for corrupt registers (see `forEachSparseRun`).
    @discardableResult
    public mutating func convertToDense() throws(Problem) -> Bool {
        guard encoding == .sparse else { return false }
        var dense = HyperLogLog(denseHeaderFrom: bytes)
        try forEachSparseRun { first, span, value in
            for register in first..<(first + span) { dense.setDenseRegister(register, value) }
        }
        self = dense
        return true
    }

    /// Walks a sparse value's VAL runs (first register, length, value). Registers that do not add up to
    /// 16384, or a run past the last register, are corrupt (as Debian's redis-server 7.0.15 judges them).
    private func forEachSparseRun(_ body: (_ first: Int, _ span: Int, _ value: UInt8) -> Void) throws(Problem) {
        var index = 0
        var position = Self.headerSize
        while position < bytes.count {
            let op = opcode(at: position)
            if op.kind == 0x80 {
                if op.span + index > Self.registerCount { throw .corrupt }
                body(index, op.span, op.value)
            }
            index += op.span
            position += op.length
        }
        guard index == Self.registerCount else { throw .corrupt }
    }

    private init(denseHeaderFrom header: [UInt8]) {
        bytes = [UInt8](repeating: 0, count: Self.denseSize)
        bytes.replaceSubrange(0..<Self.headerSize, with: header[0..<Self.headerSize])
        bytes[4] = 0
    }

    // MARK: Reading

    /// Raises each of `registers` (16384 values) to this value's register where that is higher (Redis's
    /// `hllMerge`).
    public func merge(into registers: inout [UInt8]) throws(Problem) {
        if encoding == .dense {
            for index in 0..<Self.registerCount {
                let value = denseRegister(index)
                if value > registers[index] { registers[index] = value }
            }
            return
        }
        try forEachSparseRun { first, span, value in
            for register in first..<(first + span) where value > registers[register] { registers[register] = value }
        }
    }

    /// The registers' histogram (how many registers hold each value 0…63).
    func histogram() throws(Problem) -> [Int] {
        var histogram = [Int](repeating: 0, count: 64)
        if encoding == .dense {
            for index in 0..<Self.registerCount { histogram[Int(denseRegister(index))] += 1 }
            return histogram
        }
        var index = 0
        var position = Self.headerSize
        while position < bytes.count {
            let op = opcode(at: position)
            index += op.span
            histogram[Int(op.value)] += op.span
            position += op.length
        }
        guard index == Self.registerCount else { throw .corrupt }
        return histogram
    }

    /// The estimated cardinality computed from the registers (ignoring the cache).
    public func estimate() throws(Problem) -> UInt64 { Self.estimate(histogram: try histogram()) }

    /// The estimate of a set of plain registers (PFCOUNT of several keys).
    public static func estimate(registers: [UInt8]) -> UInt64 {
        var histogram = [Int](repeating: 0, count: 64)
        for value in registers { histogram[Int(value & 63)] += 1 }
        return estimate(histogram: histogram)
    }

    /// Otmar Ertl's estimator, as Redis's `hllCount` ("New cardinality estimation algorithms for
    /// HyperLogLog sketches", arXiv:1702.01284).
    static func estimate(histogram: [Int]) -> UInt64 {
        let m = Double(registerCount)
        let q = 64 - precision
        var z = m * tau((m - Double(histogram[q + 1])) / m)
        for j in stride(from: q, through: 1, by: -1) {
            z += Double(histogram[j])
            z *= 0.5
        }
        z += m * sigma(Double(histogram[0]) / m)
        let alphaInfinity = 0.721347520444481703680  // 0.5 / ln(2)
        let estimate = (alphaInfinity * m * m / z).rounded()
        return estimate.isFinite ? UInt64(estimate) : 0
    }

    private static func sigma(_ x: Double) -> Double {
        if x == 1 { return .infinity }
        var x = x, y = 1.0, z = x, previous = 0.0
        repeat {
            x *= x
            previous = z
            z += x * y
            y += y
        } while previous != z
        return z
    }

    private static func tau(_ x: Double) -> Double {
        if x == 0 || x == 1 { return 0 }
        var x = x, y = 1.0, z = 1 - x, previous = 0.0
        repeat {
            x = x.squareRoot()
            previous = z
            y *= 0.5
            z -= pow(1 - x, 2) * y
        } while previous != z
        return z / 3
    }

    /// PFDEBUG DECODE's text: the sparse opcodes as `z:len`, `Z:len` and `v:value,len`.
    public func decodedOpcodes() -> String {
        var words: [String] = []
        var position = Self.headerSize
        while position < bytes.count {
            let op = opcode(at: position)
            switch op.kind {
            case 0x00: words.append("z:\(op.span)")
            case 0x40: words.append("Z:\(op.span)")
            default: words.append("v:\(op.value),\(op.span)")
            }
            position += op.length
        }
        return words.joined(separator: " ")
    }

    /// Register `index` of a dense value (PFDEBUG GETREG).
    public func register(_ index: Int) -> UInt8 { denseRegister(index) }

    // MARK: Hash

    /// Austin Appleby's MurmurHash64A, as Redis uses it (little-endian words).
    public static func murmurHash64A(_ key: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let m: UInt64 = 0xc6a4_a793_5bd1_e995
        let r: UInt64 = 47
        let length = key.count
        var h = seed ^ (UInt64(length) &* m)
        let words = length / 8
        for word in 0..<words {
            var k = UInt64(littleEndian: key.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self))
            k = k &* m
            k ^= k >> r
            k = k &* m
            h ^= k
            h = h &* m
        }
        let tail = words * 8
        let remaining = length & 7
        if remaining > 0 {
            for index in stride(from: remaining - 1, through: 0, by: -1) {
                h ^= UInt64(key[tail + index]) << UInt64(8 * index)
            }
            h = h &* m
        }
        h ^= h >> r
        h = h &* m
        h ^= h >> r
        return h
    }
}
