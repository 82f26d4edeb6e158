/// The CRC-64 that RDB files end with: Jones polynomial (0xad93d23594c935a9), reflected, initial value 0,
/// no final XOR — `crc64("123456789") == 0xe9c6d914c4b8d9ca`, as Redis's crc64.c. Slice-by-8 tables.
public struct CRC64: Sendable {
    /// The running checksum.
    public private(set) var value: UInt64

    public init(_ initial: UInt64 = 0) { value = initial }

    static let tables: [[UInt64]] = {
        let polynomial: UInt64 = 0x95AC_9329_AC4B_C9B5  // 0xad93d23594c935a9 bit-reversed
        var tables = Array(repeating: Array(repeating: UInt64(0), count: 256), count: 8)
        for byte in 0..<256 {
            var crc = UInt64(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ polynomial : crc >> 1 }
            tables[0][byte] = crc
        }
        for byte in 0..<256 {
            var crc = tables[0][byte]
            for slice in 1..<8 {
                crc = tables[0][Int(crc & 0xFF)] ^ (crc >> 8)
                tables[slice][byte] = crc
            }
        }
        return tables
    }()

    /// Adds `bytes` to the checksum.
    /// - Complexity: O(n).
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = value
        var index = 0
        let count = bytes.count
        Self.tables.withUnsafeBufferPointer { t in
            let t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5], t6 = t[6], t7 = t[7]
            t0.withUnsafeBufferPointer { t0 in
            t1.withUnsafeBufferPointer { t1 in
            t2.withUnsafeBufferPointer { t2 in
            t3.withUnsafeBufferPointer { t3 in
            t4.withUnsafeBufferPointer { t4 in
            t5.withUnsafeBufferPointer { t5 in
            t6.withUnsafeBufferPointer { t6 in
            t7.withUnsafeBufferPointer { t7 in
                while index + 8 <= count {
                    let word = crc ^ UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                    crc = t7[Int(word & 0xFF)] ^ t6[Int((word >> 8) & 0xFF)] ^ t5[Int((word >> 16) & 0xFF)]
                        ^ t4[Int((word >> 24) & 0xFF)] ^ t3[Int((word >> 32) & 0xFF)] ^ t2[Int((word >> 40) & 0xFF)]
                        ^ t1[Int((word >> 48) & 0xFF)] ^ t0[Int(word >> 56)]
                    index += 8
                }
                while index < count {
                    crc = t0[Int((crc ^ UInt64(bytes[index])) & 0xFF)] ^ (crc >> 8)
                    index += 1
                }
            }}}}}}}}
        }
        value = crc
    }

    /// The checksum of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt64 {
        var crc = CRC64()
        bytes.withUnsafeBytes { crc.update($0) }
        return crc.value
    }
}
