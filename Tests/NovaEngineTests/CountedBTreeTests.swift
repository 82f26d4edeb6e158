import Testing

@testable import NovaEngine

/// The sorted sets' order-statistics tree against a sorted array, with its invariants checked as it goes.
@Suite("CountedBTree")
struct CountedBTreeTests {
    func check(_ tree: CountedBTree<Int>, _ model: [Int], _ context: String) {
        let (violations, depth) = tree.invariantViolations()
        #expect(violations.isEmpty, "\(context): \(violations.prefix(5))")
        #expect(tree.count == model.count, "\(context)")
        // A B+tree of fan-out 64 holding n elements is at most log_16(n) + 2 deep with nodes merged below 16.
        var bound = 2, reach = 16
        while reach < model.count {
            reach *= 16
            bound += 1
        }
        #expect(depth <= bound, "\(context): depth \(depth)")
    }

    /// Random inserts and removals (more of one than the other in phases, so the tree grows and shrinks
    /// through splits and merges), checked against a sorted array: membership, rank, selection by rank,
    /// ordered walks both ways, partition points.
    @Test(arguments: [1, 2, 3, 4])
    func matchesSortedArray(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var tree = CountedBTree<Int>()
        var model: [Int] = []
        for phase in 0..<6 {
            let insertBias = phase % 2 == 0 ? 0.75 : 0.25
            for step in 0..<4000 {
                let value = Int(rng.next() % 5000)
                let position = model.partitioningIndex { $0 >= value }
                let present = position < model.count && model[position] == value
                if Double(rng.next() % 1000) / 1000 < insertBias {
                    #expect(tree.insert(value) == !present)
                    if !present { model.insert(value, at: position) }
                } else {
                    #expect(tree.remove(value) == present)
                    if present { model.remove(at: position) }
                }
                if step % 500 == 0 { check(tree, model, "seed \(seed) phase \(phase) step \(step)") }
            }
            check(tree, model, "seed \(seed) end of phase \(phase)")
            #expect(tree.elements == model)
            for _ in 0..<200 where !model.isEmpty {
                let index = Int(rng.next() % UInt64(model.count))
                #expect(tree[index] == model[index])
                #expect(tree.rank(of: model[index]) == index)
                #expect(tree.contains(model[index]))
                let probe = Int(rng.next() % 5000)
                #expect(tree.partitionIndex { $0 > probe } == model.partitioningIndex { $0 > probe })
                var forward: [Int] = []
                tree.forEach(from: index) { forward.append($0); return forward.count < 50 }
                #expect(forward == Array(model[index..<min(model.count, index + 50)]))
                var backward: [Int] = []
                tree.forEachReversed(from: index) { backward.append($0); return backward.count < 50 }
                #expect(backward == Array(model[max(0, index - 49)...index].reversed()))
            }
        }
    }

    /// A copy shares the nodes; mutating one side leaves the other exactly as it was.
    @Test func copiesAreIndependent() {
        var tree = CountedBTree<Int>()
        for value in 0..<10_000 { tree.insert(value * 2) }
        let snapshot = tree
        for value in 0..<5_000 { tree.remove(value * 4) }
        for value in 0..<3_000 { tree.insert(value * 2 + 1) }
        #expect(snapshot.elements == (0..<10_000).map { $0 * 2 })
        #expect(snapshot.invariantViolations().violations.isEmpty)
        #expect(tree.invariantViolations().violations.isEmpty)
        #expect(tree.count == 10_000 - 5_000 + 3_000)
    }

    /// The checker itself: a wrong count, a misplaced element and an unbalanced leaf are all reported.
    @Test func checkerNoticesCorruption() {
        var tree = CountedBTree<Int>()
        for value in 0..<1000 { tree.insert(value) }
        #expect(tree.invariantViolations().violations.isEmpty)
        tree.root.counts[0] += 1
        #expect(tree.invariantViolations().violations.contains { $0.contains("count") })
        tree.root.counts[0] -= 1
        let leaf = tree.root.children[1]
        leaf.elements[0] = -5
        #expect(!tree.invariantViolations().violations.isEmpty)
        leaf.elements[0] = tree.root.lows[1]
        tree.root.children[0] = CountedBTree<Int>.Node(children: [tree.root.children[0]], lows: [0], counts: [tree.root.counts[0]])
        #expect(tree.invariantViolations().violations.contains { $0.contains("depths") })
    }

    /// Emptied completely and refilled: the root shrinks back and the invariants hold throughout.
    @Test func drainsAndRefills() {
        var tree = CountedBTree<Int>()
        for value in 0..<20_000 { tree.insert(value) }
        for value in stride(from: 0, to: 20_000, by: 1) { tree.remove(value) }
        #expect(tree.isEmpty)
        #expect(tree.invariantViolations().violations.isEmpty)
        #expect(tree.invariantViolations().depth == 0)
        for value in (0..<1000).reversed() { tree.insert(value) }
        #expect(tree.elements == Array(0..<1000))
        #expect(tree.invariantViolations().violations.isEmpty)
    }
}

extension Array where Element: Comparable {
    /// The first index whose element satisfies `predicate` (which must be false, then true, along the array).
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if predicate(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
