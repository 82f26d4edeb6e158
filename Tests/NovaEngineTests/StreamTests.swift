import Testing

import NovaEngine

@Suite("Streams: listpack nodes, trimming, consumer groups, RDB")
struct StreamTests {
    private func fields(_ words: String...) -> [Bytes] { words.map { Bytes($0) } }

    private func append(_ stream: inout StreamValue, _ ms: UInt64, _ seq: UInt64, _ words: [Bytes], maxEntries: Int = 100) throws {
        try stream.append(id: StreamID(ms: ms, seq: seq), words, nodeMaxBytes: 4096, nodeMaxEntries: maxEntries)
    }

    /// XADD ds 1-1 name alice age 30; XADD ds 1-2 name bob age 31; XADD ds 2-0 other 12345; XDEL ds 1-2:
    /// DUMP on redis-server 7.0.15 gives exactly these bytes (one node, a tombstone, an entry with its own
    /// fields, 12345 as a 16-bit listpack integer).
    @Test func dumpPayloadIsRedisByteForByte() throws {
        var stream = StreamValue()
        try append(&stream, 1, 1, fields("name", "alice", "age", "30"))
        try append(&stream, 1, 2, fields("name", "bob", "age", "31"))
        try append(&stream, 2, 0, fields("other", "12345"))
        let deleted = stream.delete(StreamID(ms: 1, seq: 2))
        #expect(deleted)
        let redis: [UInt8] = [
            19, 1, 16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 64, 80, 80, 0, 0, 0, 25, 0, 2, 1, 1, 1, 2, 1,
            132, 110, 97, 109, 101, 5, 131, 97, 103, 101, 4, 0, 1, 2, 1, 0, 1, 0, 1, 133, 97, 108, 105, 99, 101, 6, 30,
            1, 5, 1, 3, 1, 0, 1, 1, 1, 131, 98, 111, 98, 4, 31, 1, 5, 1, 0, 1, 1, 1, 223, 255, 2, 1, 1, 133, 111, 116,
            104, 101, 114, 6, 241, 57, 48, 3, 6, 1, 255, 2, 2, 0, 1, 1, 1, 2, 3, 0, 10, 0, 162, 219, 203, 134, 224,
            107, 68, 173,
        ]
        #expect(RDBWriter.dumpPayload(.stream(stream)) == redis)
        guard case .stream(let loaded)? = try RDBReader.dumpPayload(redis, limits: EncodingLimits()) else {
            Issue.record("not a stream")
            return
        }
        #expect(loaded.entries(from: .zero, to: .max).map(\.id) == [StreamID(ms: 1, seq: 1), StreamID(ms: 2, seq: 0)])
        #expect(loaded.maxDeletedID == StreamID(ms: 1, seq: 2) && loaded.entriesAdded == 3 && loaded.length == 2)
    }

    @Test func listpackIntegersAndStringsAtEveryEncodingBoundary() {
        let values: [Int64] = [0, 127, 128, -1, -4096, 4095, 4096, -4097, 32767, -32768, 32768, 8_388_607, -8_388_608,
                               8_388_608, Int64(Int32.max), Int64(Int32.min), Int64(Int32.max) + 1, .max, .min]
        var stream = StreamValue()
        var id: UInt64 = 1
        for value in values {
            try? append(&stream, id, 0, [Bytes(String(value)), Bytes(String(repeating: "s", count: Int(id * 37 % 5000)))])
            id += 1
        }
        let entries = stream.entries(from: .zero, to: .max)
        #expect(entries.count == values.count)
        for (entry, value) in zip(entries, values) {
            #expect(entry.fieldsAndValues[0] == Bytes(String(value)))
            #expect(entry.fieldsAndValues[1].count == Int(entry.id.ms * 37 % 5000))
        }
        // Backwards as forwards.
        #expect(stream.entries(from: .zero, to: .max, reverse: true).map(\.id) == entries.map(\.id).reversed())
    }

    @Test func nodesSplitAndTrimAsRedis() throws {
        var stream = StreamValue()
        for n in 1...250 { try append(&stream, UInt64(n), 0, fields("f", "v\(n)")) }
        #expect(stream.nodeCount == 3 && stream.length == 250)
        // Approximate: only whole nodes go (100 entries), leaving 150 for a target of 120.
        var removed = stream.trim(.maxLength(120), approximate: true, limit: 10000)
        #expect(removed == 100)
        #expect(stream.length == 150 && stream.nodeCount == 2 && stream.firstID == StreamID(ms: 101, seq: 0))
        removed = stream.trim(.maxLength(120), approximate: false, limit: 0)
        #expect(removed == 30)
        #expect(stream.length == 120 && stream.firstID == StreamID(ms: 131, seq: 0))
        #expect(stream.firstStoredID == StreamID(ms: 101, seq: 0))  // tombstones stay in their node
        removed = stream.trim(.minID(StreamID(ms: 240, seq: 0)), approximate: false, limit: 0)
        #expect(removed == 109)
        #expect(stream.edgeID(first: true) == StreamID(ms: 240, seq: 0) && stream.length == 11)
        // Deleting every live entry of a node drops the node.
        for n in 240...250 {
            let deleted = stream.delete(StreamID(ms: UInt64(n), seq: 0))
            #expect(deleted)
        }
        #expect(stream.length == 0 && stream.nodeCount == 0 && stream.firstID == .zero)
        #expect(stream.lastID == StreamID(ms: 250, seq: 0) && stream.entriesAdded == 250)
    }

    @Test func idsFollowXADDsRules() throws {
        var stream = StreamValue()
        #expect(try stream.nextID(requested: nil, seqGiven: true, now: 1000) == StreamID(ms: 1000, seq: 0))
        try append(&stream, 1000, 5, fields("a", "1"))
        #expect(try stream.nextID(requested: nil, seqGiven: true, now: 999) == StreamID(ms: 1000, seq: 6))
        #expect(try stream.nextID(requested: StreamID(ms: 1000, seq: 0), seqGiven: false, now: 0) == StreamID(ms: 1000, seq: 6))
        #expect(throws: StreamValue.AddError.self) { try stream.nextID(requested: StreamID(ms: 1000, seq: 5), seqGiven: true, now: 0) }
        stream.lastID = StreamID(ms: 7, seq: .max)
        #expect(throws: StreamValue.AddError.self) { try stream.nextID(requested: StreamID(ms: 7, seq: 0), seqGiven: false, now: 0) }
        stream.lastID = .max
        #expect(throws: StreamValue.AddError.self) { try stream.nextID(requested: nil, seqGiven: true, now: 0) }
    }

    @Test func pendingEntriesMoveBetweenConsumers() {
        var group = StreamGroup(name: "g", lastID: .zero, entriesRead: StreamGroup.unknownEntriesRead)
        let added = [group.addConsumer("a", seenTime: 1), group.addConsumer("b", seenTime: 1), group.addConsumer("a", seenTime: 2)]
        #expect(added == [true, true, false])
        for n in 1...5 {
            group.setPending(PendingEntry(id: StreamID(ms: UInt64(n), seq: 0), deliveryTime: 10, deliveryCount: 1, consumer: "a"))
        }
        group.setPending(PendingEntry(id: StreamID(ms: 2, seq: 0), deliveryTime: 20, deliveryCount: 2, consumer: "b"))
        #expect(group.consumer("a")?.pending.count == 4 && group.consumer("b")?.pending.count == 1)
        #expect(group.pendingEntry(StreamID(ms: 2, seq: 0))?.consumer == "b")
        let removals = [group.removePending(StreamID(ms: 3, seq: 0)), group.removePending(StreamID(ms: 3, seq: 0))]
        #expect(removals == [true, false])
        let released = group.deleteConsumer("a")
        #expect(released == 3)
        #expect(group.pending.count == 1 && group.consumers.map(\.name) == ["b"])
    }

    @Test func lagAndReadCountersFollowRedis() throws {
        var stream = StreamValue()
        for n in 1...10 { try append(&stream, UInt64(n), 0, fields("f", "v")) }
        var group = StreamGroup(name: "g", lastID: StreamID(ms: 4, seq: 0), entriesRead: StreamGroup.unknownEntriesRead)
        #expect(stream.lag(of: group) == nil)  // a middle ID: unknown
        group.lastID = .zero
        #expect(stream.lag(of: group) == 10)
        group.entriesRead = 4
        group.lastID = StreamID(ms: 4, seq: 0)
        #expect(stream.lag(of: group) == 6)
        _ = stream.delete(StreamID(ms: 7, seq: 0))
        #expect(stream.rangeHasTombstones(from: group.lastID))
        #expect(stream.lag(of: group) == nil)
        group.entriesRead = StreamGroup.unknownEntriesRead
        group.lastID = StreamID(ms: 10, seq: 0)
        #expect(stream.lag(of: group) == 0)  // the last ID: its counter is entries-added
    }
}
