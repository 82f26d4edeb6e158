import Foundation
import Testing

@testable import NovaEngine

@Suite("RDB snapshots")
struct RDBTests {
    @Test func crc64MatchesRedis() {
        #expect(CRC64.checksum(Array("123456789".utf8)) == 0xe9c6_d914_c4b8_d9ca)
        var split = CRC64()
        Array("12345".utf8).withUnsafeBytes { split.update($0) }
        Array("6789".utf8).withUnsafeBytes { split.update($0) }
        #expect(split.value == 0xe9c6_d914_c4b8_d9ca)
    }

    @Test(arguments: [
        Array(repeating: UInt8(ascii: "a"), count: 1000),
        Array("the quick brown fox jumps over the lazy dog, the quick brown fox jumps again".utf8),
        (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7 % 13) },
    ])
    func lzfRoundTrip(input: [UInt8]) throws {
        let compressed = try #require(input.withUnsafeBytes { LZF.compress($0) })
        #expect(compressed.count < input.count)
        #expect(compressed.withUnsafeBytes { LZF.decompress($0, expectedLength: input.count) } == input)
    }

    @Test func lzfRejectsCorruptInput() {
        let bogus: [UInt8] = [0xE0, 0xFF, 0x10]
        #expect(bogus.withUnsafeBytes { LZF.decompress($0, expectedLength: 50) } == nil)
    }

    @Test func lzfRefusesImpossibleLengthsBeforeAllocating() {
        // Three bytes claiming 2^62 bytes of output: refused, not allocated.
        let refused = [UInt8](arrayLiteral: 0x00, 0x41, 0x42).withUnsafeBytes { LZF.decompress($0, expectedLength: 1 << 62) }
        #expect(refused == nil)
    }

    @Test func dumpPayloadsRoundTripAndCheckTheirFooter() throws {
        var hash = HashValue()
        hash.set(Bytes("field"), Bytes("value"), limits: EncodingLimits())
        for value in [Value.string(from: Bytes("hello")), .int(42), .hash(hash)] {
            let payload = RDBWriter.dumpPayload(value)
            // Type, encoding, then RDB version 10 and the CRC64 of everything before it.
            #expect(payload[payload.count - 10] == 10 && payload[payload.count - 9] == 0)
            let restored = try RDBReader.dumpPayload(payload, limits: EncodingLimits())
            #expect(restored.map { "\($0.typeName)" } == "\(value.typeName)")
            var tampered = payload
            tampered[0] ^= 1
            #expect(try RDBReader.dumpPayload(tampered, limits: EncodingLimits()) == nil)
        }
        // An empty set with a valid footer is malformed, as Redis refuses to load empty keys.
        let empty = RDBWriter.dumpPayload(.set(SetValue()))
        #expect(throws: RDBError.self) { try RDBReader.dumpPayload(empty, limits: EncodingLimits()) }
    }

    @Test func roundTripThroughOurWriterAndReader() throws {
        let source = Keyspace(databaseCount: 4, now: 1_000_000)
        for i in 0..<3000 {
            source.set(i % 4, Array("key:\(i)".utf8), i % 3 == 0 ? .int(Int64(i) * 1_000_003) : .string(Bytes("value \(i) " + String(repeating: "x", count: i % 50))),
                       expireAt: i % 5 == 0 ? 5_000_000 : 0)
        }
        source.set(0, Array("expired".utf8), .int(1), expireAt: 999_999)
        // A string kept outside its record, an empty one and a key longer than the inline form.
        source.set(1, Array("long".utf8), .string(Bytes(String(repeating: "L", count: 5_000))))
        source.set(2, Array("empty".utf8), .string(Bytes("")))
        source.set(3, Array(String(repeating: "k", count: 300).utf8), .string(Bytes("v")), expireAt: 5_000_000)
        var file: [UInt8] = []
        var writer = RDBWriter { file.append(contentsOf: $0) }
        try writer.header(aux: [("redis-ver", "7.0.15"), ("redis-bits", "64")])
        // Saved when "expired" was still alive; loaded after it expired.
        for (index, database) in source.databases.enumerated() {
            try writer.database(index, database.snapshot(), now: 999_000)
        }
        try writer.finish()
        source.delete(0, Array("expired".utf8))

        let target = Keyspace(databaseCount: 4, now: 1_000_000)
        var reader = RDBReader(RDBInput(bytes: file))
        try reader.load(into: target.databases, now: 1_000_000)
        #expect(reader.keysLoaded == 3003)
        #expect(reader.keysExpired == 1)
        #expect(reader.aux["redis-ver"] == "7.0.15")
        for db in 0..<4 {
            #expect(target.databases[db].count == source.databases[db].count)
            source.databases[db].forEach { entry in
                guard let ref = target.databases[db].find(entry.key) else {
                    Issue.record("missing \(entry.key)")
                    return
                }
                let loaded = target.databases[db][ref]
                #expect(loaded.expireAt == entry.expireAt)
                #expect(loaded.value.withStringBytes { Array($0) } == entry.value.withStringBytes { Array($0) })
            }
        }
    }

    /// A snapshot's RESIZEDB hint sizes the database's segments before its keys arrive (so loading does
    /// not rebuild them as they fill); a hint larger than the file could hold is not trusted.
    @Test func resizeHintReservesTheSegmentsWithinWhatTheFileCanHold() throws {
        let source = Keyspace(databaseCount: 1, now: 0)
        for i in 0..<40_000 { source.set(0, Array("key:\(i)".utf8), .int(Int64(i))) }
        var file: [UInt8] = []
        var writer = RDBWriter { file.append(contentsOf: $0) }
        try writer.header(aux: [])
        try writer.database(0, source.databases[0].snapshot(), now: 0)
        try writer.finish()
        let target = Keyspace(databaseCount: 1, now: 0)
        var reader = RDBReader(RDBInput(bytes: file))
        try reader.load(into: target.databases, now: 0)
        #expect(target.databases[0].count == 40_000)
        // 39 keys per segment expected, and two standard deviations more: every segment was made room
        // for 53 up front (grown one by one, a segment of 28 to 40 keys has room for 40).
        #expect(target.databases[0].segments.allSatisfy { $0.elements.capacity >= 53 })
        for i in stride(from: 0, to: 40_000, by: 997) {
            let ref = try #require(target.databases[0].find(Array("key:\(i)".utf8)))
            #expect(target.databases[0][ref].value.withStringBytes { Array($0) } == Array("\(i)".utf8))
        }

        // A file of a few dozen bytes claiming 2^32 - 1 keys: the hint is capped by the file's size.
        var hostile: [UInt8] = Array("REDIS0009".utf8)
        hostile += [RDBFormat.opSelectDB, 0, RDBFormat.opResizeDB, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0]
        hostile += [RDBFormat.typeString, 1, UInt8(ascii: "k"), 1, UInt8(ascii: "v"), RDBFormat.opEOF]
        hostile += [UInt8](repeating: 0, count: 8)
        let small = Keyspace(databaseCount: 1, now: 0)
        var hostileReader = RDBReader(RDBInput(bytes: hostile))
        try hostileReader.load(into: small.databases, now: 0)
        #expect(small.databases[0].count == 1)
        #expect(small.databases[0].segments.allSatisfy { $0.elements.capacity <= 16 })
    }

    /// A file whose string claims more bytes than the file holds ends in an error, not in an attempt
    /// to allocate what it claims (2^50 bytes here).
    @Test func aLengthPastTheEndOfTheFileIsRefusedBeforeAllocating() throws {
        var bytes: [UInt8] = Array("REDIS0009".utf8)
        bytes += [RDBFormat.opSelectDB, 0, RDBFormat.typeString, 1, UInt8(ascii: "k"), RDBFormat.length64Bit]
        withUnsafeBytes(of: UInt64(1 << 50).bigEndian) { bytes += $0 }
        bytes += Array("short".utf8)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("nova-rdb-\(UInt64.random(in: 0...UInt64.max)).rdb").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let descriptor = open(path, O_RDONLY)
        #expect(descriptor >= 0)
        defer { close(descriptor) }
        var reader = RDBReader(RDBInput(descriptor: descriptor, size: bytes.count))
        #expect(throws: RDBError.self) { try reader.load(into: Keyspace(databaseCount: 1).databases, now: 0) }
    }

    @Test func corruptionIsDetected() throws {
        let source = Keyspace(databaseCount: 1, now: 0)
        source.set(0, Array("k".utf8), .string(Bytes("hello world")))
        var file: [UInt8] = []
        var writer = RDBWriter { file.append(contentsOf: $0) }
        try writer.header(aux: [])
        try writer.database(0, source.databases[0].snapshot(), now: 0)
        try writer.finish()
        var flipped = file
        flipped[flipped.count - 12] ^= 0x01
        var reader = RDBReader(RDBInput(bytes: flipped))
        #expect(throws: RDBError.self) { try reader.load(into: Keyspace(databaseCount: 1).databases, now: 0) }
        var truncated = RDBReader(RDBInput(bytes: Array(file.dropLast(12))))
        #expect(throws: RDBError.self) { try truncated.load(into: Keyspace(databaseCount: 1).databases, now: 0) }
    }
}
