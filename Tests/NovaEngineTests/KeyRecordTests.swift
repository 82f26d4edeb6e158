import Testing

@testable import NovaEngine

@Suite("Key records: one block per key, values inline, copied when shared")
struct KeyRecordTests {
    func bytes(_ text: String) -> Bytes { Bytes(text) }
    func filler(_ count: Int, _ byte: UInt8 = 7) -> Bytes { Bytes(Array(repeating: byte, count: count)) }

    func record(_ database: Database, _ key: String) -> KeyRecord {
        let ref = database.find(Array(key.utf8))!
        return database.segments[ref.segment][ref.index]
    }

    func compactList(_ items: [String]) -> Value { .list(ListValue(items.map { Bytes($0) })) }

    func compactHash(_ pairs: [(String, String)]) -> Value {
        var hash = HashValue()
        for (field, value) in pairs { _ = hash.set(Bytes(field), Bytes(value), limits: EncodingLimits()) }
        return .hash(hash)
    }

    /// The workload issue 25 measures: a 16-byte key with a 100-byte value and a TTL is one 160-byte
    /// chunk plus its table reference and slot (it was a 64-byte entry and a 128-byte value block).
    @Test func aKeyWithAHundredByteValueIsOneBlock() {
        let database = Database()
        database.insert(Entry(key: bytes("key:000000012345"), value: .string(filler(100)), expireAt: 1_700_000_000_000))
        let record = record(database, "key:000000012345")
        #expect(record.kind == .string)
        #expect(MemoryEstimate.allocation(16 + record.elementSize) == 160)
        #expect(database.footprint == 160 + KeyRecord.tableCost)
        #expect(MemoryLayout<Value>.size <= 25, "a value kept in a record's stored form: \(MemoryLayout<Value>.size)")
    }

    /// The collections issue 25 measures (10 small members under a 17-byte key): a 6-byte header, as a
    /// listpack counts its own elements, puts lists and sets in 144-byte chunks (with the 12-byte header
    /// of before: 160).
    @Test func smallCollectionsTakeTheSmallerChunks() {
        let members = (0..<10).map { "member\($0)" }
        var set = SetValue()
        var zset = SortedSetValue()
        for (index, member) in members.enumerated() {
            _ = set.add(Bytes(member), limits: EncodingLimits())
            _ = zset.set(Bytes(member), score: Double(index), limits: EncodingLimits())
        }
        let cases: [(String, Value, KeyRecord.Kind, Int)] = [
            ("list:000000012345", compactList(members), .list, 144), ("set:0000000012345", .set(set), .set, 144),
            ("zset:000000012345", .zset(zset), .zset, 176),
            ("hash:000000012345", compactHash((0..<10).map { ("field\($0)", "value\($0)") }), .hash, 224),
        ]
        for (key, value, kind, chunk) in cases {
            let database = Database()
            database.insert(Entry(key: bytes(key), value: value))
            let record = record(database, key)
            #expect(record.kind == kind && MemoryEstimate.allocation(16 + record.elementSize) == chunk, "\(key)")
            let count: Int
            switch database[database.find(bytes(key))!].value {
            case .list(let list): count = list.count
            case .set(let set): count = set.count
            case .zset(let zset): count = zset.count
            case .hash(let hash): count = hash.count
            default: count = 0
            }
            #expect(count == 10, "\(key)")
        }
    }

    /// The access clock is the head's low 24 bits: writing any clock leaves the kind and expiry flag,
    /// and LRU idle times are taken around the 24-bit wrap (Redis's 194-day clock).
    @Test func theAccessClockKeepsTwentyFourBits() {
        let database = Database()
        database.insert(Entry(key: bytes("k"), value: .string(filler(30)), expireAt: 5000, access: 1))
        let ref = database.find(bytes("k"))!
        database.setAccess(ref, 0xFFFF_FFFF)
        let entry = database[ref]
        #expect(entry.access == LRU.clockMask && entry.expireAt == 5000 && entry.value.stringLength == 30)
        let now: Int64 = (1 << 24 + 5) * 1000  // the clock has wrapped to 5
        #expect(LRU.clock(nowMs: now) == 5)
        #expect(LRU.idleSeconds(since: LRU.clockMask - 4, nowMs: now) == 9, "Redis's arithmetic: LRU_CLOCK_MAX is 2^24 - 1")
        for idle: Int64 in [0, 3, 5, 6, 8_640_000, 16_777_211] {
            #expect(LRU.idleSeconds(since: LRU.clock(idleSeconds: idle, nowMs: now), nowMs: now) == idle, "idle \(idle)")
        }
        // Past the wrap, as redis-server 7.0.15 answered OBJECT IDLETIME after RESTORE … IDLETIME (on
        // 2026-12-03, its clock far from 0):
        let today: Int64 = 1_796_300_000_000
        #expect(LRU.idleSeconds(since: LRU.clock(idleSeconds: 16_777_221, nowMs: today), nowMs: today) == 6)
        #expect(LRU.idleSeconds(since: LRU.clock(idleSeconds: 1_000_000_000, nowMs: today), nowMs: today) == 10_144_256)
    }

    /// A listpack whose header count saturated (it once held 65,535 entries or more) cannot be counted
    /// from its header, so it stays out of the record; one read from a file gets its exact count back.
    @Test func aListpackCountsItsElementsExactly() {
        let saturated: [UInt8] = [11, 0, 0, 0, 0xFF, 0xFF, 0x01, 0x01, 0x02, 0x01, 0xFF]
        let listpack = Listpack(validating: saturated)
        #expect(listpack?.headerCount == 2 && listpack?.byteCount == 11)
    }

    /// A persistent key's record has no expiry field; EXPIRE and PERSIST move the key to a record of the
    /// other layout with everything else intact, and a new expiry of an expiring key is written in place.
    @Test func onlyExpiringKeysCarryAnExpiry() {
        let database = Database()
        let key = bytes("hash:000000012345")
        database.insert(Entry(key: key, value: compactHash((0..<10).map { ("field\($0)", "value\($0)") }), access: 9))
        let persistent = record(database, "hash:000000012345").elementSize
        let footprint = database.footprint
        database.setExpire(database.find(key)!, 123_456)
        #expect(record(database, "hash:000000012345").elementSize == persistent + 8)
        #expect(database.footprint == record(database, "hash:000000012345").footprint)
        weak let expiring = record(database, "hash:000000012345")
        database.setExpire(database.find(key)!, 654_321)
        #expect(expiring != nil, "an expiry replaced in place")
        database.setExpire(database.find(key)!, 0)
        #expect(expiring == nil && record(database, "hash:000000012345").elementSize == persistent)
        #expect(database.footprint == footprint)
        let entry = database[database.find(key)!]
        #expect(entry.expireAt == 0 && entry.access == 9 && entry.key == key)
        if case .hash(let hash) = entry.value { #expect(hash.count == 10 && hash.isListpack) } else { Issue.record("hash") }
    }

    /// The prefetch of a batch's keys reaches the block of a string kept outside its record (read with
    /// no reference counting); any other value has none to prefetch.
    @Test func aStoredStringsBlockIsFoundForThePrefetch() {
        let database = Database()
        let long = filler(KeyRecord.maxInlineString + 1)
        database.insert(Entry(key: bytes("long"), value: .string(long)))
        database.insert(Entry(key: bytes("raw"), value: .rawString(filler(70_000))))
        database.insert(Entry(key: bytes("inline"), value: .string(filler(KeyRecord.maxInlineString))))
        database.insert(Entry(key: bytes("number"), value: .int(42)))
        database.insert(Entry(key: bytes("list"), value: .list(ListValue((0..<1000).map { Bytes("item\($0)") }))))
        database.insert(Entry(key: bytes(String(repeating: "k", count: 40_000)), value: .string(bytes("short"))))
        #expect(record(database, "long").kind == .stored)
        #expect(record(database, "long").storedStringBlock == long.blockAddress())
        #expect(record(database, "raw").storedStringBlock != nil)
        for key in ["inline", "number", "list", String(repeating: "k", count: 40_000)] {
            #expect(record(database, key).storedStringBlock == nil, "\(key.prefix(8))")
        }
        let hashes = ["long", "raw", "inline", "number", "list", "absent"].map { key in Array(key.utf8).withUnsafeBytes { KeyHashing.hash($0) } }
        hashes.withUnsafeBufferPointer { database.prefetch(hashes: $0) }
    }

    /// Each value round-trips through its record, inline where it is small and in the stored form
    /// where it is not, with key, expiry and access clock intact.
    @Test func valuesRoundTripInEveryForm() {
        var intset = SetValue()
        for number in 1...5 { _ = intset.add(Bytes("\(number)"), limits: EncodingLimits()) }
        var words = SetValue()
        for word in ["a", "b", "c"] { _ = words.add(Bytes(word), limits: EncodingLimits()) }
        var zset = SortedSetValue()
        for (index, member) in ["x", "y"].enumerated() { _ = zset.set(Bytes(member), score: Double(index), limits: EncodingLimits()) }
        var rawString = Value.rawString(bytes("ab"))
        if case .rawString(var string) = rawString { string.append(UnsafeRawBufferPointer(start: nil, count: 0)); rawString = .rawString(string) }
        let bigList = compactList((0..<200).map { "item\($0)" })
        let cases: [(Value, KeyRecord.Kind)] = [
            (.int(-42), .int), (.ownedInt(7), .ownedInt), (.string(Bytes()), .string), (.string(filler(22)), .string),
            (.string(filler(100)), .string), (.string(filler(4095)), .string), (.string(filler(4096)), .stored),
            (rawString, .stored), (compactList(["a", "bb", "12"]), .list), (bigList, .stored),
            (compactHash([("f", "v"), ("g", "12")]), .hash), (.set(intset), .intset), (.set(words), .set),
            (.zset(zset), .zset), (.stream(StreamValue()), .stored),
        ]
        for (index, (value, kind)) in cases.enumerated() {
            for key in [bytes("k\(index)"), filler(70_000, UInt8(index))] {
                let database = Database()
                database.insert(Entry(key: key, value: value, expireAt: Int64(index) * 1000, access: UInt32(index)))
                let ref = database.find(key)!
                let stored = database.segments[ref.segment][ref.index]
                #expect(stored.kind == (key.count > 1000 ? .stored : kind), "case \(index)")
                let entry = database[ref]
                #expect(entry.key == key && entry.expireAt == Int64(index) * 1000 && entry.access == UInt32(index))
                #expect(entry.value.typeName.description == value.typeName.description, "case \(index)")
                #expect(entry.value.encodingName.description == value.encodingName.description, "case \(index)")
                #expect(RDBWriter.dumpPayload(entry.value) == RDBWriter.dumpPayload(value), "case \(index)")
                #expect(entry.footprint == stored.footprint && database.footprint == stored.footprint)
                database.remove(ref)
                #expect(database.footprint == 0 && database.count == 0)
            }
        }
    }

    /// A string's offset in its record must fit the 16 bits `Bytes` keeps for it: keys up to the limit
    /// keep the string inline, one byte more moves it to the stored form, and both read back whole.
    @Test func theLongestKeyWithAnInlineString() {
        for (expiring, limit) in [(false, KeyRecord.maxSliceOffset - 8), (true, KeyRecord.maxSliceOffset - 16)] {
            for (length, kind) in [(limit, KeyRecord.Kind.string), (limit + 1, .stored)] {
                let database = Database()
                let key = filler(length, 3)
                database.insert(Entry(key: key, value: .string(filler(50, 4)), expireAt: expiring ? 99 : 0))
                let ref = database.find(key)!
                #expect(database.segments[ref.segment][ref.index].kind == kind, "key of \(length), expiring \(expiring)")
                #expect(database[ref].value.withStringBytes { Array($0) } == Array(repeating: 4, count: 50))
                #expect(database[ref].key == key)
            }
        }
    }

    /// A value read out of a record keeps it alive: the key may be overwritten or deleted meanwhile.
    @Test func aValueReadOutOutlivesItsKey() {
        let database = Database()
        database.insert(Entry(key: bytes("k"), value: .string(filler(300, 9))))
        let ref = database.find(Array("k".utf8))!
        let read = database[ref].value
        database.setValue(ref, .string(filler(300, 1)))
        database.remove(database.find(Array("k".utf8))!)
        #expect(read.withStringBytes { Array($0) } == Array(repeating: 9, count: 300))
    }

    /// Writes change a record in place only while its table holds it alone: a snapshot keeps every value,
    /// expiry and access clock as they were, and an unshared same-size write keeps the block.
    @Test func sharedRecordsAreCopiedBeforeWrites() throws {
        let database = Database()
        database.insert(Entry(key: bytes("string"), value: .string(filler(100, 1)), expireAt: 5000, access: 3))
        database.insert(Entry(key: bytes("counter"), value: .int(10)))
        database.insert(Entry(key: bytes("list"), value: compactList(["a", "b"])))
        database.insert(Entry(key: bytes("big"), value: .string(filler(5000, 2))))
        weak let unshared = record(database, "string")  // not a strong reference: the table holds it alone
        database.setValue(database.find(Array("string".utf8))!, .string(filler(100, 3)))
        #expect(unshared != nil && record(database, "string") === unshared, "same kind and size, held only by the table: in place")
        database.setValue(database.find(Array("string".utf8))!, .string(filler(101, 3)))
        #expect(unshared == nil, "another size: a new record")
        database.setValue(database.find(Array("string".utf8))!, .string(filler(100, 3)))

        let snapshot = database.snapshot()
        func ref(_ key: String) -> EntryRef { database.find(Array(key.utf8))! }
        database.setValue(ref("string"), .string(filler(100, 4)))
        database.setExpire(ref("string"), 9000)
        database.setAccess(ref("string"), 77)
        database.modifyValue(ref("counter")) { $0 = .int(11) }
        database.modifyValue(ref("list")) { value in
            guard case .list(var list) = value else { return }
            list.append(Bytes("c"))
            value = .list(list)
        }
        database.modifyValue(ref("big")) { value in
            guard case .string(var string) = value else { return }
            string.append(UnsafeRawBufferPointer(start: nil, count: 0))
            value = .rawString(string)
        }
        var old: [String: Entry] = [:]
        snapshot.forEach { old[$0.key.description] = $0 }
        #expect(old["string"]?.value.withStringBytes { Array($0) } == Array(repeating: 3, count: 100))
        #expect(old["string"]?.expireAt == 5000 && old["string"]?.access == 3)
        if case .int(let number) = old["counter"]?.value { #expect(number == 10) } else { Issue.record("counter") }
        if case .list(let list) = old["list"]?.value { #expect(list.elements == [Bytes("a"), Bytes("b")]) } else { Issue.record("list") }
        #expect(old["big"]?.value.encodingName.description == "raw" && old["big"]?.value.stringLength == 5000)

        let now = database[ref("string")]
        #expect(now.value.withStringBytes { Array($0) } == Array(repeating: 4, count: 100))
        #expect(now.expireAt == 9000 && now.access == 77)
        if case .list(let list) = database[ref("list")].value { #expect(list.elements.count == 3) } else { Issue.record("list") }
        #expect(record(database, "list").kind == .list, "a changed compact list goes back into its record")
        #expect(record(database, "big").kind == .stored)
    }

    /// The database's running footprint equals the sum of its records' after every kind of write.
    @Test func footprintFollowsEveryWrite() {
        let database = Database()
        var random = SeededRandom(seed: 25)
        for step in 0..<3000 {
            let key = Array("key\(Int.random(in: 0..<40, using: &random))".utf8)
            let ref = database.find(key)
            switch (Int.random(in: 0..<6, using: &random), ref) {
            case (0, nil), (1, nil), (2, nil):
                database.insert(Entry(key: Bytes(key), value: .string(filler(Int.random(in: 0..<200, using: &random)))))
            case (0, let ref?):
                database.setValue(ref, .string(filler(Int.random(in: 0..<5000, using: &random))))
            case (1, let ref?):
                database.modifyValue(ref) { value in
                    var list: ListValue
                    if case .list(let existing) = value { list = existing } else { list = ListValue() }
                    list.append(filler(Int.random(in: 1..<120, using: &random)))
                    value = .list(list)
                }
            case (2, let ref?):
                database.modifyValue(ref) { value in
                    guard case .string(var string) = value else { return }
                    string.append(UnsafeRawBufferPointer(start: nil, count: 0))
                    value = .rawString(string)
                }
            case (3, let ref?): database.setExpire(ref, Int64(step))
            case (4, let ref?): database.remove(ref)
            default: break
            }
            guard step % 50 == 49 else { continue }
            var sum = 0
            for segment in 0..<Database.segmentCount {
                for record in database.segments[segment].elements { sum += record.footprint }
            }
            #expect(sum == database.footprint, "after step \(step)")
            if sum != database.footprint { return }
        }
    }
}
