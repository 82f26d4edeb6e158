import Testing

@testable import NovaEngine

struct Item: ByteKeyed, Equatable {
    let key: Bytes
    var value: Int
}

@Suite("Bytes and ByteKeyTable")
struct ByteKeyTableTests {
    @Test func bytesInlineAndHeap() {
        let short = Bytes("twenty-two-bytes-long!")
        #expect(short.count == 22)
        #expect(!short.isHeap)
        #expect(short.description == "twenty-two-bytes-long!")
        #expect(MemoryLayout<Bytes>.stride == 24)
        let long = Bytes("twenty-three-bytes-long")
        #expect(long.isHeap)
        #expect(long.description == "twenty-three-bytes-long")
        #expect(Bytes("abc") == Bytes(Array("abc".utf8)))
        #expect(Bytes("abc") < Bytes("abd"))
        #expect(Bytes("ab") < Bytes("abc"))
        #expect(Bytes([0xFF]) > Bytes([0x01, 0x02]))
    }

    /// A heap string's count lives next to its reference, so the block is the object header and the
    /// bytes: a 100-byte value takes a 128-byte chunk (a counted block took 144).
    @Test func heapBlockHoldsOnlyTheBytes() {
        var value = Bytes(String(repeating: "v", count: 100))
        #expect(value.isHeap && value.count == 100 && value.heapFootprint == 128)
        let copy = value
        value.withMutableBytes(count: 40) { $0[0] = UInt8(ascii: "w") }
        #expect(copy.count == 100 && copy.description == String(repeating: "v", count: 100))
        #expect(value.count == 40 && value.description == "w" + String(repeating: "v", count: 39))
        // Shrinking a block held only here is in place; growing back within capacity zero-fills.
        let block = value.withBytes { $0.baseAddress }
        value.withMutableBytes(count: 10) { _ in }
        value.withMutableBytes(count: 12) { _ in }
        #expect(value.withBytes { $0.baseAddress } == block && value.array.suffix(2) == [0, 0])
    }

    @Test func appendGrowsAndKeepsCopiesIndependent() {
        var text = Bytes("start")
        let snapshot = text
        for _ in 0..<1000 {
            [UInt8]("xyz".utf8).withUnsafeBytes { text.append($0) }
        }
        #expect(text.count == 5 + 3000)
        #expect(snapshot.description == "start")
        #expect(text.capacity >= text.count)
        let copy = text
        [UInt8]("!".utf8).withUnsafeBytes { text.append($0) }
        #expect(copy.count == 3005)
        #expect(text.count == 3006)
    }

    @Test func appendingLargeStringsCopiesGeometrically() {
        // A 64 MB string built from 64 KB appends: with a flat 1 MB step the block was copied ~60 times
        // (quadratic); growing by a quarter past 1 MB keeps the number of new blocks logarithmic.
        var text = Bytes()
        var blocks = 0
        var lastCapacity = 0
        let chunk = [UInt8](repeating: 7, count: 64 << 10)
        for _ in 0..<1024 {
            chunk.withUnsafeBytes { text.append($0) }
            if text.capacity != lastCapacity {
                blocks += 1
                lastCapacity = text.capacity
            }
        }
        #expect(text.count == 64 << 20)
        #expect(blocks < 30, "\(blocks) blocks")
        #expect(text.capacity <= text.count + text.count / 4 + (1 << 20))
    }

    @Test func mutableBytesWritesInPlaceWhenUnique() {
        var text = Bytes(String(repeating: "a", count: 100))
        let block = text.withBytes { $0.baseAddress }
        text.withMutableBytes(count: 100) { $0[10] = UInt8(ascii: "b") }
        #expect(text.withBytes { $0.baseAddress } == block)
        #expect(text.withBytes { $0[10] } == UInt8(ascii: "b"))
        // Shared with a copy (a snapshot): the copy keeps its bytes.
        let copy = text
        text.withMutableBytes(count: 100) { $0[11] = UInt8(ascii: "c") }
        #expect(copy.withBytes { $0[11] } == UInt8(ascii: "a"))
        #expect(text.withBytes { $0[11] } == UInt8(ascii: "c"))
        // Growth is zero-filled, inline and on the heap.
        var small = Bytes("xy")
        small.withMutableBytes(count: 6) { $0[5] = 1 }
        #expect(small.array == [UInt8(ascii: "x"), UInt8(ascii: "y"), 0, 0, 0, 1])
        var shrunk = Bytes("abcdefgh")
        shrunk.withMutableBytes(count: 2) { _ in }
        shrunk.withMutableBytes(count: 4) { _ in }
        #expect(shrunk.array == [UInt8(ascii: "a"), UInt8(ascii: "b"), 0, 0])
        small.withMutableBytes(count: 40) { $0[39] = 2 }
        #expect(small.count == 40 && small.isHeap)
        #expect(small.array[6..<39].allSatisfy { $0 == 0 } && small.array[39] == 2)
    }

    /// Random inserts, lookups and removals checked against a Dictionary.
    @Test(arguments: [1, 2, 3])
    func matchesDictionaryModel(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var table = ByteKeyTable<Item>()
        var model: [String: Int] = [:]
        for step in 0..<20_000 {
            let key = "key:\(rng.next() % 3000)"
            let bytes = Bytes(key)
            let hash = bytes.withBytes { KeyHashing.hash($0) }
            let found = bytes.withBytes { table.find($0, hash: hash) }
            #expect((found != nil) == (model[key] != nil), "step \(step)")
            switch rng.next() % 3 {
            case 0, 1:
                if let found {
                    table.update(at: found) { $0.value = step }
                } else {
                    table.insert(Item(key: bytes, value: step), hash: hash)
                }
                model[key] = step
            default:
                if let found {
                    let removed = table.remove(at: found)
                    #expect(removed.key == bytes)
                    model[key] = nil
                }
            }
        }
        #expect(table.count == model.count)
        for element in table.elements {
            #expect(model[element.key.description] == element.value)
        }
    }

    /// A table reserved for `n` elements takes `n` inserts without rebuilding its slots or moving its
    /// element array; a smaller reservation than the current size changes nothing.
    @Test func reservedTableGrowsNothingUpToItsReservation() {
        var table = ByteKeyTable<Item>()
        for i in 0..<10 {
            let key = Bytes("pre:\(i)")
            table.insert(Item(key: key, value: i), hash: key.withBytes { KeyHashing.hash($0) })
        }
        table.reserveCapacity(1_000)
        let slots = table.capacity
        let storage = table.elements.withUnsafeBufferPointer { $0.baseAddress }
        #expect(slots >= 1_000 * 4 / 3 && table.elements.capacity >= 1_000)
        for i in 10..<1_000 {
            let key = Bytes("key:\(i)")
            table.insert(Item(key: key, value: i), hash: key.withBytes { KeyHashing.hash($0) })
        }
        #expect(table.capacity == slots)
        #expect(table.elements.withUnsafeBufferPointer { $0.baseAddress } == storage)
        for i in 0..<1_000 {
            let key = Bytes(i < 10 ? "pre:\(i)" : "key:\(i)")
            let found = key.withBytes { table.find($0, hash: KeyHashing.hash($0)) }
            #expect(found.map { table.elements[$0].value } == i)
        }
        table.reserveCapacity(10)
        #expect(table.capacity == slots && table.count == 1_000)
    }

    /// Grows from 4-byte slots to 8-byte ones (past 16,384 slots) and shrinks back, every key found
    /// throughout and the index's size following.
    @Test func slotsWidenAndNarrowWithTheTable() {
        var table = ByteKeyTable<Item>()
        let keys = (0..<40_000).map { Bytes("member:\($0)") }
        func findsAll(_ range: Range<Int>) -> Bool {
            range.allSatisfy { i in keys[i].withBytes { table.find($0, hash: KeyHashing.hash($0)) }.map { table[$0].value == i } ?? false }
        }
        for (i, key) in keys.enumerated() { table.insert(Item(key: key, value: i), hash: key.withBytes { KeyHashing.hash($0) }) }
        #expect(findsAll(0..<40_000))
        // 40,000 elements need 65,536 slots: 8 bytes each.
        #expect(table.overheadBytes - table.elements.capacity * MemoryLayout<Item>.stride == 65_536 * 8)
        for i in 0..<39_000 {
            let index = keys[i].withBytes { table.find($0, hash: KeyHashing.hash($0)) }!
            table.remove(at: index)
            if i % 5_000 == 0 { #expect(findsAll((i + 1)..<40_000)) }
        }
        #expect(findsAll(39_000..<40_000) && table.count == 1_000)
        #expect(keys[0].withBytes { table.find($0, hash: KeyHashing.hash($0)) } == nil)
        // Shrunk (at an eighth full) to 16,384 and then 4,096 slots, of 4 bytes.
        #expect(table.overheadBytes - table.elements.capacity * MemoryLayout<Item>.stride == 4_096 * 4)
    }

    /// A pipeline's prefetch guesses, from the slots alone, the element a search for each key compares
    /// first: the key's own element for almost every present key (another key's only when their hash
    /// tags collide on the probe run), with narrow and wide slots alike; nothing in an empty table.
    @Test func prefetchGuessesTheElementASearchReads() {
        var table = ByteKeyTable<Item>()
        #expect(table.likelyIndex(hash: 42) == nil && table.homeSlotAddress(hash: 42) == nil)
        let keys = (0..<40_000).map { Bytes("key:\($0)") }
        for (i, key) in keys.enumerated() {
            table.insert(Item(key: key, value: i), hash: key.withBytes { KeyHashing.hash($0) })
            guard i == 999 || i == 39_999 else { continue }  // 2,048 narrow slots, then 65,536 wide ones
            var right = 0
            for key in keys[0...i] {
                let hash = key.withBytes { KeyHashing.hash($0) }
                #expect(table.homeSlotAddress(hash: hash) != nil)
                if table.likelyIndex(hash: hash) == key.withBytes({ table.find($0, hash: hash) }) { right += 1 }
            }
            #expect(right * 100 >= (i + 1) * 98, "\(right) of \(i + 1)")
        }
        let absent = (0..<1_000).filter { i in
            let hash = Bytes("absent:\(i)").withBytes { KeyHashing.hash($0) }
            return table.likelyIndex(hash: hash) == nil
        }
        #expect(absent.count > 500, "most absent keys meet an empty slot before a matching tag")
        // The database's prefetch over present and absent keys changes nothing.
        let database = Database()
        for key in keys.prefix(20_000) { database.insert(Entry(key: key, value: .string(Bytes(String(repeating: "v", count: 100))))) }
        var hashes = keys.prefix(16).map { $0.withBytes { KeyHashing.hash($0) } } + [1, 2, 3]
        hashes.withUnsafeBufferPointer { database.prefetch(hashes: $0) }
        #expect(database.count == 20_000 && keys.prefix(20_000).allSatisfy { database.find($0) != nil })
        hashes = []
        hashes.withUnsafeBufferPointer { database.prefetch(hashes: $0) }
    }

    @Test func copiesAreSnapshots() {
        var table = ByteKeyTable<Item>()
        for i in 0..<100 {
            let key = Bytes("k\(i)")
            table.insert(Item(key: key, value: i), hash: key.withBytes { KeyHashing.hash($0) })
        }
        let snapshot = table
        table.update(at: 0) { $0.value = -1 }
        table.remove(at: 5)
        #expect(snapshot.count == 100)
        #expect(table.count == 99)
        #expect(snapshot.elements.allSatisfy { $0.value >= 0 })
    }

    /// The element array grows by half, not by doubling: at every size its spare room stays under half
    /// of what it holds (plus the first 8, plus what the allocator rounds up: an array past glibc's mmap
    /// threshold gets whole pages, and whether it is past depends on what the process freed before —
    /// 3,445 elements of 32 bytes in room for 5,246), and a snapshot taken before a growth keeps its
    /// elements.
    @Test func elementArrayGrowsByHalf() {
        var table = ByteKeyTable<Item>()
        var snapshot = table
        var worst = 0.0
        let rounding = 4096 / MemoryLayout<Item>.stride
        for i in 0..<5_000 {
            let key = Bytes("k\(i)")
            if i == 1_000 { snapshot = table }
            table.insert(Item(key: key, value: i), hash: key.withBytes { KeyHashing.hash($0) })
            let count = table.count, capacity = table.elements.capacity
            #expect(capacity >= count && capacity <= max(8, count + count / 2) + max(8, rounding), "\(count) in \(capacity)")
            if count >= 64 { worst = max(worst, Double(capacity) / Double(count)) }
        }
        #expect(worst < 1.55)
        #expect(snapshot.count == 1_000 && snapshot.elements.map(\.value).sorted() == Array(0..<1_000))
        for i in stride(from: 0, to: 5_000, by: 7) {
            #expect(Bytes("k\(i)").withBytes { table.find($0, hash: KeyHashing.hash($0)) }.map { table[$0].value } == i)
        }
    }

    @Test func shrinksAfterMassRemoval() {
        var table = ByteKeyTable<Item>()
        for i in 0..<10_000 {
            let key = Bytes("k\(i)")
            table.insert(Item(key: key, value: i), hash: key.withBytes { KeyHashing.hash($0) })
        }
        let full = table.overheadBytes
        while table.count > 10 { table.remove(at: 0) }
        #expect(table.overheadBytes < full / 10)
        for element in table.elements {
            #expect(element.key.withBytes { table.find($0, hash: KeyHashing.hash($0)) } != nil)
        }
    }
}

/// A small deterministic generator (SplitMix64) for reproducible tests.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
