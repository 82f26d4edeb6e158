import Testing

@testable import NovaEngine

/// The collections' compact encodings (one listpack for a small hash, set or sorted set) against simple
/// models, through the conversions at the `*-max-listpack-*` limits.
@Suite("Collection values")
struct CollectionValuesTests {
    /// Strings that exercise the listpack's element kinds: canonical integers (stored as integers, of every
    /// width), non-canonical numbers ("007", "+1", "-0"), short and 12-bit-length strings, the empty string.
    static func word(_ rng: inout SeededRandom) -> Bytes {
        switch rng.next() % 9 {
        case 0: return Bytes(String(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 63)))
        case 1: return Bytes(String(rng.next() % 200))
        case 2: return Bytes(["007", "+1", "-0", "1.5", " 1", "00"][Int(rng.next() % 6)])
        case 3: return Bytes("")
        case 4: return Bytes(String(repeating: "x", count: 60 + Int(rng.next() % 10)))
        default: return Bytes("f\(rng.next() % 40)")
        }
    }

    @Test(arguments: [1, 2, 3])
    func hashMatchesADictionary(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var limits = EncodingLimits()
        limits.hashMaxListpackEntries = 24
        limits.hashMaxListpackValue = 64
        for _ in 0..<40 {
            var hash = HashValue()
            var model: [Bytes: Bytes] = [:]
            var order: [Bytes] = []
            var converted = false
            for _ in 0..<Int(rng.next() % 60) {
                let field = Self.word(&rng)
                if rng.next() % 4 == 0 {
                    #expect(hash.remove(field) == (model.removeValue(forKey: field) != nil))
                    order.removeAll { $0 == field }
                } else {
                    let value = Self.word(&rng)
                    let new = model.updateValue(value, forKey: field) == nil
                    if new { order.append(field) }
                    #expect(hash.set(field, value, limits: limits) == new)
                    if field.count > 64 || value.count > 64 || model.count > 24 { converted = true }
                }
                #expect(hash.isListpack == !converted)
                #expect(hash.count == model.count)
            }
            for (field, value) in model { #expect(hash.value(field) == value) }
            #expect(hash.value(Bytes("absent")) == nil)
            let fields = hash.fields
            #expect(Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0.value) }) == model)
            // A listpack keeps insertion order, as Redis's HGETALL shows for small hashes.
            if hash.isListpack { #expect(fields.map(\.key) == order) }
            for index in 0..<fields.count { #expect(hash.field(at: index).key == fields[index].key) }
            var visited = 0
            hash.forEach { field, value in
                visited += 1
                #expect(model[Bytes(field)] == Bytes(value))
            }
            #expect(visited == model.count)
        }
    }

    @Test
    func compactHashCostsAFractionOfATable() {
        var small = HashValue()
        for index in 0..<10 { small.set(Bytes("field\(index)"), Bytes("value\(index)"), limits: EncodingLimits()) }
        #expect(small.isListpack)
        var tight = EncodingLimits()
        tight.hashMaxListpackEntries = 0
        var table = HashValue()
        for index in 0..<10 { table.set(Bytes("field\(index)"), Bytes("value\(index)"), limits: tight) }
        #expect(!table.isListpack)
        #expect(small.footprint * 3 < table.footprint, "\(small.footprint) vs \(table.footprint)")
    }

    static func score(_ rng: inout SeededRandom) -> Double {
        switch rng.next() % 7 {
        case 0: return Double(rng.next() % 10)
        case 1: return -Double(rng.next() % 1000) / 8
        case 2: return [Double.infinity, -Double.infinity, 9_007_199_254_740_994, 1e300, -0.0][Int(rng.next() % 5)]
        case 3: return Double(Int64(bitPattern: rng.next()) >> 10)
        default: return Double(rng.next() % 1000) / 3
        }
    }

    /// Every read of a sorted set against a sorted array: ranks, selection, walks both ways, ranges.
    func expectSortedSet(_ zset: SortedSetValue, equals model: [ScoredMember]) {
        #expect(zset.count == model.count)
        #expect(zset.allElements == model)
        for (rank, element) in model.enumerated() {
            #expect(zset.score(element.member) == element.score)
            #expect(zset.rank(element.member) == rank)
            #expect(zset[rank] == element)
        }
        if !model.isEmpty {
            let middle = model.count / 2
            #expect(zset.elements(ranks: middle..<model.count) == Array(model[middle...]))
            #expect(zset.elements(ranks: 0..<middle + 1, reversed: true) == model[0...middle].reversed())
            let range = ScoreRange(min: -10, max: 100, minExclusive: true)
            let inside = model.indices.filter { range.contains(model[$0].score) }
            let found = zset.ranks(in: range)
            #expect(Array(found) == inside)
        }
    }

    @Test(arguments: [1, 2, 3])
    func sortedSetMatchesASortedArray(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var limits = EncodingLimits()
        limits.zsetMaxListpackEntries = 20
        limits.zsetMaxListpackValue = 64
        for _ in 0..<40 {
            var zset = SortedSetValue()
            var model: [ScoredMember] = []
            var converted = false
            for _ in 0..<Int(rng.next() % 50) {
                let member = Self.word(&rng)
                let existing = model.firstIndex { $0.member == member }
                if rng.next() % 4 == 0 {
                    #expect(zset.remove(member) == (existing != nil))
                    if let existing { model.remove(at: existing) }
                } else {
                    var score = Self.score(&rng)
                    if existing == nil && model.count + 1 > 20 || member.count > 64 { converted = true }
                    // A listpack keeps -0 as 0, as Redis's text form does; a converted set keeps it.
                    let previous = zset.set(member, score: score, limits: limits)
                    #expect(previous == existing.map { model[$0].score })
                    if !converted && score == 0 { score = 0 }
                    if let existing { model.remove(at: existing) }
                    model.insert(ScoredMember(score: score, member: member), at: model.partitioningIndex { $0 > ScoredMember(score: score, member: member) })
                }
                #expect(zset.isListpack == !converted)
            }
            expectSortedSet(zset, equals: model)
            #expect(zset.score(Bytes("absent")) == nil)
            #expect(zset.removeRanks(0..<min(3, model.count)) == min(3, model.count))
            expectSortedSet(zset, equals: Array(model.dropFirst(3)))
        }
    }

    @Test
    func compactSortedSetCostsAFractionOfATree() {
        var small = SortedSetValue()
        for index in 0..<10 { small.set(Bytes("member\(index)"), score: Double(index), limits: EncodingLimits()) }
        let big = SortedSetValue(listpack: false)
        var tree = big
        for index in 0..<10 { tree.set(Bytes("member\(index)"), score: Double(index), limits: EncodingLimits()) }
        #expect(small.isListpack && !tree.isListpack)
        #expect(small.footprint * 3 < tree.footprint, "\(small.footprint) vs \(tree.footprint)")
    }

    @Test(arguments: [1, 2, 3])
    func setMatchesASwiftSet(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var limits = EncodingLimits()
        limits.setMaxIntsetEntries = 30
        limits.setMaxListpackEntries = 20
        for round in 0..<60 {
            var set = SetValue()
            var model = Set<Bytes>()
            var intset = true, compact = true
            let integersOnly = round % 3 == 0
            for _ in 0..<Int(rng.next() % 60) {
                let member = integersOnly ? Bytes(String(Int64(rng.next() % 90) - 30)) : Self.word(&rng)
                if rng.next() % 4 == 0 {
                    #expect(set.remove(member) == (model.remove(member) != nil))
                } else {
                    let new = model.insert(member).inserted
                    if new && compact {
                        let isInteger = member.withBytes { $0.count <= 20 && Int64(String(decoding: $0, as: UTF8.self)).map { String($0) } == member.description }
                        if intset && !isInteger { intset = false }
                        if intset ? model.count > 30 : (model.count > 20 || member.count > 64) { compact = false; intset = false }
                    }
                    #expect(set.add(member, limits: limits) == new)
                }
                #expect(set.isIntset == intset)
                #expect(set.isCompact == compact)
                #expect(set.count == model.count)
            }
            for member in model { #expect(set.contains(member)) }
            #expect(!set.contains(Bytes("absent")) && !set.contains(Bytes("12345678")))
            #expect(Set(set.members) == model)
            if set.isIntset {
                let numbers = set.members.map { Int64($0.description)! }
                #expect(numbers == numbers.sorted())
            }
            #expect((0..<set.count).map { set[$0] } == set.members)
            var visited: [Bytes] = []
            set.forEach { visited.append(Bytes($0)) }
            #expect(visited == set.members)
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func listMatchesAnArray(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        for round in 0..<30 {
            var list = ListValue()
            var model: [Bytes] = []
            // Some rounds stay under the compact limits, some cross them by count or by bytes.
            let steps = Int(rng.next() % (round % 3 == 0 ? 60 : 300))
            for _ in 0..<steps {
                let item = rng.next() % 50 == 0 ? Bytes(String(repeating: "L", count: 3000)) : Self.word(&rng)
                switch rng.next() % 9 {
                case 0: list.append(item); model.append(item)
                case 1: list.prepend(item); model.insert(item, at: 0)
                case 2: #expect(list.popFirst() == (model.isEmpty ? nil : model.removeFirst()))
                case 3: #expect(list.popLast() == model.popLast())
                case 4 where !model.isEmpty:
                    let index = Int(rng.next() % UInt64(model.count))
                    list.set(index, item)
                    model[index] = item
                case 5:
                    let index = Int(rng.next() % UInt64(model.count + 1))
                    list.insert(item, at: index)
                    model.insert(item, at: index)
                case 6 where !model.isEmpty:
                    let index = Int(rng.next() % UInt64(model.count))
                    #expect(list.remove(at: index) == model.remove(at: index))
                case 7 where rng.next() % 5 == 0:
                    let lower = Int(rng.next() % UInt64(model.count + 1))
                    let upper = lower + Int(rng.next() % UInt64(model.count - lower + 1))
                    list.keep(lower..<upper)
                    model = Array(model[lower..<upper])
                default: list.append(item); model.append(item)
                }
                #expect(list.count == model.count)
            }
            #expect(list.elements == model)
            let bytes = model.reduce(7) { $0 + $1.count + 3 }
            if list.isCompact { #expect(model.count <= ListValue.maxCompactEntries && bytes <= ListValue.maxCompactBytes + 3 * model.count) }
            for index in model.indices { #expect(list[index] == model[index]) }
            let lower = model.count / 3, upper = model.count - model.count / 4
            var forward: [Bytes] = [], backward: [Bytes] = []
            list.forEach(in: lower..<upper) { forward.append(Bytes($0)); return true }
            list.forEach(in: lower..<upper, reversed: true) { backward.append(Bytes($0)); return true }
            #expect(forward == Array(model[lower..<upper]))
            #expect(backward == Array(model[lower..<upper].reversed()))
        }
    }

    @Test
    func compactListCostsAFractionOfADeque() {
        let small = ListValue((0..<10).map { Bytes("member\($0)") })
        var large = ListValue((0..<200).map { Bytes("member\($0)") })
        while large.count > 10 { _ = large.popLast() }
        #expect(small.isCompact && !large.isCompact)
        #expect(small.footprint < large.footprint, "\(small.footprint) vs \(large.footprint)")
    }

    /// The large forms live in a box shared by copies (a snapshot for BGSAVE, a value read out before a
    /// write): every write to one copy must leave the other, and its footprint, as they were.
    @Test
    func largeFormsAreCopiedOnWrite() {
        var limits = EncodingLimits()
        limits.hashMaxListpackEntries = 128
        let words = (0..<300).map { Bytes("member\($0)") }

        var hash = HashValue()
        for word in words { hash.set(word, word, limits: limits) }
        let hashCopy = hash
        let hashFootprint = hash.footprint
        hash.set(words[0], Bytes("changed"), limits: limits)
        hash.set(Bytes("new"), Bytes("field"), limits: limits)
        hash.remove(words[1])
        #expect(!hashCopy.isListpack && hashCopy.count == 300 && hashCopy.footprint == hashFootprint)
        #expect(hashCopy.value(words[0]) == words[0] && hashCopy.value(words[1]) == words[1])
        #expect(hashCopy.value(Bytes("new")) == nil && hash.value(words[0]) == Bytes("changed"))

        var set = SetValue()
        for word in words { set.add(word, limits: limits) }
        let setCopy = set
        let setFootprint = set.footprint
        set.add(Bytes("new"), limits: limits)
        set.remove(words[0])
        #expect(setCopy.count == 300 && setCopy.footprint == setFootprint)
        #expect(setCopy.contains(words[0]) && !setCopy.contains(Bytes("new")) && !set.contains(words[0]))

        var zset = SortedSetValue()
        for (rank, word) in words.enumerated() { zset.set(word, score: Double(rank), limits: limits) }
        let zsetCopy = zset
        let zsetFootprint = zset.footprint
        zset.set(words[0], score: 1000, limits: limits)
        zset.set(Bytes("new"), score: -1, limits: limits)
        zset.remove(words[1])
        #expect(!zsetCopy.isListpack && zsetCopy.count == 300 && zsetCopy.footprint == zsetFootprint)
        #expect(zsetCopy.score(words[0]) == 0 && zsetCopy.rank(words[1]) == 1 && zsetCopy.score(Bytes("new")) == nil)
        #expect(zsetCopy.allElements.map(\.member) == words && zset.rank(words[0]) == 299)

        var list = ListValue(words)
        let listCopy = list
        let listFootprint = list.footprint
        list.prepend(Bytes("first"))
        list.append(Bytes("last"))
        _ = list.popFirst()
        _ = list.popLast()
        list.set(0, Bytes("changed"))
        list.insert(Bytes("inserted"), at: 5)
        _ = list.remove(at: 6)
        list.keep(1..<200)
        #expect(!listCopy.isCompact && listCopy.footprint == listFootprint && listCopy.elements == words)
        list.keep(0..<0)
        #expect(list.isEmpty && listCopy.count == 300 && listCopy[299] == words[299])
    }

    /// A listpack's block keeps no count of its own (the listpack's header says its size), and is
    /// copy-on-write like the large forms: every write to one copy leaves the other as it was.
    @Test
    func listpackBlocksAreCopiedOnWrite() {
        var limits = EncodingLimits()
        limits.hashMaxListpackEntries = 128
        var hash = HashValue()
        for index in 0..<10 { hash.set(Bytes("field\(index)"), Bytes("value\(index)"), limits: limits) }
        #expect(hash.isListpack)
        // Ten pairs of 6-byte strings (8 bytes each as elements): 7 + 10 * 16 = 167 bytes, in a block
        // with a 16-byte header (an array's was 32).
        let pack = hash.compact!
        #expect(pack.byteCount == 167 && pack.bytes.count == 167 && pack.bytes.last == 0xFF)
        #expect(pack.heapFootprint == MemoryEstimate.allocation(16 + 167), "\(pack.heapFootprint)")
        let copy = hash
        // A removal first: the shared block is copied whole, then shrunk in the copy.
        hash.remove(Bytes("field9"))
        hash.set(Bytes("field0"), Bytes("a much longer value than before"), limits: limits)
        hash.set(Bytes("counter"), Bytes("7"), limits: limits)
        #expect(copy.compact! == pack && copy.count == 10 && copy.value(Bytes("field0")) == Bytes("value0"))
        #expect(hash.value(Bytes("field0")) == Bytes("a much longer value than before") && hash.count == 10)
        #expect(hash.compact!.byteCount == hash.compact!.bytes.count)

        // Stream-style appends grow geometrically; an integer rewritten in place on a shared block copies it.
        var node = Listpack()
        var encoded: [UInt8] = []
        Listpack.encodeElement(integer: 5, into: &encoded)
        var capacities = Set<Int>()
        for _ in 0..<1000 {
            node.append(encoded: encoded, count: 1)
            capacities.insert(node.heapFootprint)
        }
        #expect(node.byteCount == 6 + 2000 + 1 && capacities.count < 20)
        let shared = node
        node.replaceInteger(at: 6, with: 9)
        node.replaceInteger(at: 8, with: 100_000)
        #expect(shared.integer(at: 6).0 == 5 && shared.integer(at: 8).0 == 5 && shared.byteCount == 2007)
        #expect(node.integer(at: 6).0 == 9 && node.integer(at: 8).0 == 100_000 && node.byteCount == 2007 + 3)
        node.shrink()
        #expect(node.heapFootprint <= MemoryEstimate.allocation(16 + node.byteCount + 16))
        #expect(Listpack(validating: node.bytes) == node && Listpack(validating: Array(node.bytes.dropLast())) == nil)
        #expect(node.canGrow(by: Listpack.maxSafeBytes - node.byteCount) && !node.canGrow(by: Listpack.maxSafeBytes))
    }
}
