import NovaEngine
import NovaRESP

/// DEBUG DIGEST and DEBUG DIGEST-VALUE: a SHA-1 based digest of the data that does not depend on the
/// order of unordered elements (set members, hash fields, sorted-set members, keys), computed as Redis
/// computes it, so the same data gives the same 40 hex digits here and on redis-server. Test suites
/// compare it before and after a restart, a reload or a replication.
///
/// Two mixing steps: `xor` adds SHA-1(bytes) into the digest with XOR (order-free); `mix` does that and
/// then replaces the digest by SHA-1(digest) (order-bound).
struct DatasetDigest {
    private(set) var bytes = [UInt8](repeating: 0, count: 20)

    var isZero: Bool { bytes.allSatisfy { $0 == 0 } }
    var hex: String { SHA1.hexString(bytes) }

    mutating func xor(_ data: some Collection<UInt8>) {
        let hash = SHA1.digest(data)
        for index in 0..<20 { bytes[index] ^= hash[index] }
    }

    mutating func mix(_ data: some Collection<UInt8>) {
        xor(data)
        bytes = SHA1.digest(bytes)
    }

    /// Redis's type numbers (OBJ_STRING … OBJ_HASH), mixed in big-endian as `htonl` writes them.
    private static func typeCode(_ value: Value) -> UInt32 {
        switch value {
        case .int, .ownedInt, .string, .rawString: return 0
        case .list: return 1
        case .set: return 2
        case .zset: return 3
        case .hash: return 4
        case .stream: return 6
        }
    }

    private static func bigEndian(_ number: UInt32) -> [UInt8] {
        [UInt8(number >> 24), UInt8(truncatingIfNeeded: number >> 16), UInt8(truncatingIfNeeded: number >> 8), UInt8(truncatingIfNeeded: number)]
    }

    /// Adds a value (and the fact that it has a TTL) to this digest, as Redis's `xorObjectDigest`.
    mutating func add(_ value: Value, hasExpiry: Bool) {
        mix(Self.bigEndian(Self.typeCode(value)))
        switch value {
        case .int, .ownedInt, .string, .rawString:
            value.withStringBytes { mix($0) }
        case .list(let list):
            list.forEach(in: 0..<list.count) { mix($0); return true }
        case .set(let set):
            set.forEach { xor($0) }
        case .zset(let zset):
            for member in zset.allElements {
                var element = DatasetDigest()
                member.member.withBytes { element.mix($0) }
                element.mix(RedisFloat.format(member.score))
                xor(element.bytes)
            }
        case .hash(let hash):
            hash.forEach { field, value in
                var element = DatasetDigest()
                element.mix(field)
                element.mix(value)
                xor(element.bytes)
            }
        case .stream(let stream):
            stream.forEach(from: .zero, to: .max) { entry in
                mix(Array("\(entry.id.ms).\(entry.id.seq)".utf8))
                for part in entry.fieldsAndValues { part.withBytes { mix($0) } }
                return true
            }
        }
        if hasExpiry { xor(Array("!!expire!!".utf8)) }
    }

    /// The digest of every key of every database, as Redis's `computeDatasetDigest` (keys whose TTL
    /// passed but that are not deleted yet count, as there); all zeros when the server holds no keys.
    static func of(_ keyspace: Keyspace) -> DatasetDigest {
        var total = DatasetDigest()
        for (index, database) in keyspace.databases.enumerated() where database.count > 0 {
            total.mix(bigEndian(UInt32(index)))
            database.forEach { entry in
                var digest = DatasetDigest()
                entry.key.withBytes { digest.mix($0) }
                digest.add(entry.value, hasExpiry: entry.expireAt != 0)
                total.xor(digest.bytes)
            }
        }
        return total
    }
}
