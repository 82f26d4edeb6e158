import NovaRESP

/// Readers for the compact encodings Redis embeds in RDB files: listpack (7.0), ziplist (older), intset
/// and zipmap (oldest). Each yields its elements as byte strings (integers in decimal).
enum CompactEncodings {
    struct Malformed: Error {}

    /// A listpack: 32-bit total size, 16-bit count, entries (each followed by its back-length), 0xFF.
    static func listpack(_ data: [UInt8]) throws(Malformed) -> [[UInt8]] {
        guard data.count >= 7 else { throw Malformed() }
        var position = 6
        var result: [[UInt8]] = []
        func u8(_ i: Int) throws(Malformed) -> Int {
            guard i < data.count else { throw Malformed() }
            return Int(data[i])
        }
        func littleEndian(_ start: Int, _ bytes: Int) throws(Malformed) -> UInt64 {
            guard start + bytes <= data.count else { throw Malformed() }
            var value: UInt64 = 0
            for i in 0..<bytes { value |= UInt64(data[start + i]) << (8 * i) }
            return value
        }
        func signExtend(_ value: UInt64, bits: Int) -> Int64 {
            let shift = UInt64(64 - bits)
            return Int64(bitPattern: value << shift) >> Int64(shift)
        }
        func backLength(_ entryLength: Int) -> Int {
            entryLength < 128 ? 1 : entryLength < 16384 ? 2 : entryLength < 2_097_152 ? 3 : entryLength < 268_435_456 ? 4 : 5
        }
        while true {
            let first = try u8(position)
            if first == 0xFF { break }
            var entryLength: Int
            if first & 0x80 == 0 {
                result.append(RedisInteger.bytes(Int64(first & 0x7F)))
                entryLength = 1
            } else if first & 0xC0 == 0x80 {
                let length = first & 0x3F
                guard position + 1 + length <= data.count else { throw Malformed() }
                result.append(Array(data[(position + 1)..<(position + 1 + length)]))
                entryLength = 1 + length
            } else if first & 0xE0 == 0xC0 {
                let raw = UInt64((first & 0x1F) << 8 | (try u8(position + 1)))
                result.append(RedisInteger.bytes(signExtend(raw, bits: 13)))
                entryLength = 2
            } else if first & 0xF0 == 0xE0 {
                let length = (first & 0x0F) << 8 | (try u8(position + 1))
                guard position + 2 + length <= data.count else { throw Malformed() }
                result.append(Array(data[(position + 2)..<(position + 2 + length)]))
                entryLength = 2 + length
            } else {
                switch first {
                case 0xF0:
                    let length = Int(try littleEndian(position + 1, 4))
                    guard position + 5 + length <= data.count else { throw Malformed() }
                    result.append(Array(data[(position + 5)..<(position + 5 + length)]))
                    entryLength = 5 + length
                case 0xF1:
                    result.append(RedisInteger.bytes(signExtend(try littleEndian(position + 1, 2), bits: 16)))
                    entryLength = 3
                case 0xF2:
                    result.append(RedisInteger.bytes(signExtend(try littleEndian(position + 1, 3), bits: 24)))
                    entryLength = 4
                case 0xF3:
                    result.append(RedisInteger.bytes(signExtend(try littleEndian(position + 1, 4), bits: 32)))
                    entryLength = 5
                case 0xF4:
                    result.append(RedisInteger.bytes(Int64(bitPattern: try littleEndian(position + 1, 8))))
                    entryLength = 9
                default:
                    throw Malformed()
                }
            }
            position += entryLength + backLength(entryLength)
        }
        return result
    }

    /// A ziplist: 32-bit bytes, 32-bit tail offset, 16-bit count, entries (previous length, encoding,
    /// data), 0xFF.
    static func ziplist(_ data: [UInt8]) throws(Malformed) -> [[UInt8]] {
        guard data.count >= 11 else { throw Malformed() }
        var position = 10
        var result: [[UInt8]] = []
        func u8(_ i: Int) throws(Malformed) -> Int {
            guard i < data.count else { throw Malformed() }
            return Int(data[i])
        }
        func integer(_ start: Int, _ bytes: Int) throws(Malformed) -> Int64 {
            guard start + bytes <= data.count else { throw Malformed() }
            var value: UInt64 = 0
            for i in 0..<bytes { value |= UInt64(data[start + i]) << (8 * i) }
            let shift = UInt64(64 - 8 * bytes)
            return Int64(bitPattern: value << shift) >> Int64(shift)
        }
        while true {
            let first = try u8(position)
            if first == 0xFF { break }
            position += first == 0xFE ? 5 : 1
            let encoding = try u8(position)
            switch encoding >> 6 {
            case 0:
                let length = encoding & 0x3F
                guard position + 1 + length <= data.count else { throw Malformed() }
                result.append(Array(data[(position + 1)..<(position + 1 + length)]))
                position += 1 + length
            case 1:
                let length = (encoding & 0x3F) << 8 | (try u8(position + 1))
                guard position + 2 + length <= data.count else { throw Malformed() }
                result.append(Array(data[(position + 2)..<(position + 2 + length)]))
                position += 2 + length
            case 2:
                guard position + 5 <= data.count else { throw Malformed() }
                let length = Int(data[position + 1]) << 24 | Int(data[position + 2]) << 16 | Int(data[position + 3]) << 8 | Int(data[position + 4])
                guard position + 5 + length <= data.count else { throw Malformed() }
                result.append(Array(data[(position + 5)..<(position + 5 + length)]))
                position += 5 + length
            default:
                switch encoding {
                case 0xC0: result.append(RedisInteger.bytes(try integer(position + 1, 2))); position += 3
                case 0xD0: result.append(RedisInteger.bytes(try integer(position + 1, 4))); position += 5
                case 0xE0: result.append(RedisInteger.bytes(try integer(position + 1, 8))); position += 9
                case 0xF0: result.append(RedisInteger.bytes(try integer(position + 1, 3))); position += 4
                case 0xFE: result.append(RedisInteger.bytes(try integer(position + 1, 1))); position += 2
                case 0xF1...0xFD: result.append(RedisInteger.bytes(Int64(encoding & 0x0F) - 1)); position += 1
                default: throw Malformed()
                }
            }
        }
        return result
    }

    /// An intset: 32-bit element width (2, 4 or 8), 32-bit count, little-endian integers.
    static func intset(_ data: [UInt8]) throws(Malformed) -> [[UInt8]] {
        guard data.count >= 8 else { throw Malformed() }
        let width = Int(data[0]) | Int(data[1]) << 8 | Int(data[2]) << 16 | Int(data[3]) << 24
        let count = Int(data[4]) | Int(data[5]) << 8 | Int(data[6]) << 16 | Int(data[7]) << 24
        guard [2, 4, 8].contains(width), 8 + width * count <= data.count else { throw Malformed() }
        return (0..<count).map { index in
            var value: UInt64 = 0
            for i in 0..<width { value |= UInt64(data[8 + index * width + i]) << (8 * i) }
            let shift = UInt64(64 - 8 * width)
            return RedisInteger.bytes(Int64(bitPattern: value << shift) >> Int64(shift))
        }
    }

    /// A zipmap (Redis 2.x hashes): count byte, then length-prefixed keys and values with a free byte.
    static func zipmap(_ data: [UInt8]) throws(Malformed) -> [[UInt8]] {
        var position = 1
        var result: [[UInt8]] = []
        func length() throws(Malformed) -> Int {
            guard position < data.count else { throw Malformed() }
            let first = Int(data[position])
            if first < 254 {
                position += 1
                return first
            }
            guard first == 254, position + 5 <= data.count else { throw Malformed() }
            let value = Int(data[position + 1]) | Int(data[position + 2]) << 8 | Int(data[position + 3]) << 16 | Int(data[position + 4]) << 24
            position += 5
            return value
        }
        while position < data.count && data[position] != 0xFF {
            let keyLength = try length()
            guard position + keyLength <= data.count else { throw Malformed() }
            result.append(Array(data[position..<(position + keyLength)]))
            position += keyLength
            let valueLength = try length()
            guard position < data.count else { throw Malformed() }
            let free = Int(data[position])
            position += 1
            guard position + valueLength <= data.count else { throw Malformed() }
            result.append(Array(data[position..<(position + valueLength)]))
            position += valueLength + free
        }
        return result
    }
}
