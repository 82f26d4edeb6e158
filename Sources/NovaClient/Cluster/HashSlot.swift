/// Redis Cluster's key → hash slot mapping: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384.
///
/// A hash tag is the part between the first `{` and the next `}` when it is not empty: `user:{42}:name`
/// and `user:{42}:email` share slot `HashSlot.of("42")`, so multi-key commands and transactions on them can
/// run on one node.
public enum HashSlot {
    /// The number of slots in a Redis Cluster.
    public static let count = 16384

    /// The slot of a key given as bytes.
    public static func of<Bytes: Collection>(_ key: Bytes) -> Int where Bytes.Element == UInt8, Bytes.Index == Int {
        let hashed = hashTag(of: key)
        return Int(crc16(key[hashed]) & UInt16(count - 1))
    }

    /// The slot of a key given as text (its UTF-8 bytes).
    public static func of(_ key: String) -> Int {
        of(Array(key.utf8))
    }

    /// The range of `key` that is hashed: the tag between the first `{` and the following `}` when that
    /// tag is not empty, else the whole key (Redis's `keyHashSlot`).
    static func hashTag<Bytes: Collection>(of key: Bytes) -> Range<Int> where Bytes.Element == UInt8, Bytes.Index == Int {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key.startIndex..<key.endIndex }
        guard let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 else {
            return key.startIndex..<key.endIndex
        }
        return (open + 1)..<close
    }

    /// A short text (digits and letters) whose slot is `slot`: `"{" + tag + "}"` in a key puts the key in
    /// that slot, as a companion key of another key must be to join it in a transaction.
    public static func tag(forSlot slot: Int) -> String {
        slotTags[slot]
    }

    private static let slotTags: [String] = {
        var tags = [String](repeating: "", count: count)
        var missing = count
        var number = 0
        while missing > 0 {
            let text = String(number, radix: 36)
            let slot = Int(crc16(text.utf8) & UInt16(count - 1))
            if tags[slot].isEmpty {
                tags[slot] = text
                missing -= 1
            }
            number += 1
        }
        return tags
    }()

    /// CRC16 with the XMODEM parameters (polynomial 0x1021, initial value 0), as Redis's `crc16`.
    public static func crc16<Bytes: Sequence>(_ bytes: Bytes) -> UInt16 where Bytes.Element == UInt8 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index -> UInt16 in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
