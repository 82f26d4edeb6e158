/// An ordered collection of distinct elements with O(log n) insertion, removal, rank and selection by
/// rank: a B+tree whose inner nodes count the elements below each child.
///
/// Copy-on-write by path copying: a copy shares every node, and a mutation copies only the nodes on the
/// path it changes (O(log n)), so a point-in-time snapshot of a large sorted set costs nothing up front
/// and little later.
public struct CountedBTree<Element: Comparable>: @unchecked Sendable {
    @usableFromInline
    final class Node {
        /// Leaf: the elements. Inner: unused.
        var elements: [Element]
        /// Inner: the children, a lower bound of each child's elements (`lows[0]` unused) and their counts.
        var children: [Node]
        var lows: [Element]
        var counts: [Int]

        init(elements: [Element] = [], children: [Node] = [], lows: [Element] = [], counts: [Int] = []) {
            self.elements = elements
            self.children = children
            self.lows = lows
            self.counts = counts
        }

        var isLeaf: Bool { children.isEmpty }
        var total: Int { isLeaf ? elements.count : counts.reduce(0, +) }
        var first: Element? { isLeaf ? elements.first : children.first?.first }

        func copy() -> Node { Node(elements: elements, children: children, lows: lows, counts: counts) }
    }

    static var maxLeaf: Int { 64 }
    static var maxChildren: Int { 64 }
    static var mergeBelow: Int { 16 }

    @usableFromInline var root = Node()
    /// The number of elements.
    public private(set) var count = 0

    public init() {}

    /// True when empty.
    public var isEmpty: Bool { count == 0 }

    /// The child of `node` whose range holds `element`.
    private static func route(_ node: Node, _ element: Element) -> Int {
        node.lows.withUnsafeBufferPointer { lows in
            var low = 1, high = node.children.count
            while low < high {
                let middle = (low + high) / 2
                if lows[middle] <= element { low = middle + 1 } else { high = middle }
            }
            return low - 1
        }
    }

    private static func leafPosition(_ elements: [Element], _ element: Element) -> Int {
        elements.withUnsafeBufferPointer { elements in
            var low = 0, high = elements.count
            while low < high {
                let middle = (low + high) / 2
                if elements[middle] < element { low = middle + 1 } else { high = middle }
            }
            return low
        }
    }

    private mutating func uniqueRoot() {
        if !isKnownUniquelyReferenced(&root) { root = root.copy() }
    }

    // MARK: Insertion

    /// Inserts `element`; returns false (and changes nothing) when it is already present.
    /// - Complexity: O(log n).
    @discardableResult
    public mutating func insert(_ element: Element) -> Bool {
        uniqueRoot()
        guard let split = Self.insert(element, into: root) else {
            return false
        }
        if let right = split {
            let left = root
            root = Node(children: [left, right], lows: [left.first!, right.first!], counts: [left.total, right.total])
        }
        count += 1
        return true
    }

    /// nil: already present. .some(nil): inserted. .some(node): inserted and `node` split off to the right.
    private static func insert(_ element: Element, into node: Node) -> Node?? {
        if node.isLeaf {
            let position = leafPosition(node.elements, element)
            if position < node.elements.count && node.elements[position] == element { return nil }
            node.elements.insert(element, at: position)
            guard node.elements.count > maxLeaf else { return .some(nil) }
            let half = node.elements.count / 2
            let right = Node(elements: Array(node.elements[half...]))
            node.elements.removeSubrange(half...)
            return .some(right)
        }
        let index = route(node, element)
        if !isKnownUniquelyReferenced(&node.children[index]) { node.children[index] = node.children[index].copy() }
        guard let split = insert(element, into: node.children[index]) else { return nil }
        node.counts[index] += 1
        if let right = split {
            node.counts[index] = node.children[index].total
            node.children.insert(right, at: index + 1)
            node.lows.insert(right.first!, at: index + 1)
            node.counts.insert(right.total, at: index + 1)
        }
        guard node.children.count > maxChildren else { return .some(nil) }
        let half = node.children.count / 2
        let right = Node(children: Array(node.children[half...]), lows: Array(node.lows[half...]), counts: Array(node.counts[half...]))
        node.children.removeSubrange(half...)
        node.lows.removeSubrange(half...)
        node.counts.removeSubrange(half...)
        return .some(right)
    }

    // MARK: Removal

    /// Removes `element`; returns false when it was not present.
    /// - Complexity: O(log n).
    @discardableResult
    public mutating func remove(_ element: Element) -> Bool {
        uniqueRoot()
        guard Self.remove(element, from: root) else { return false }
        count -= 1
        while !root.isLeaf && root.children.count == 1 { root = root.children[0] }
        return true
    }

    /// One descent: finds and removes `element`, fixing counts on the way back; false when absent (nodes on
    /// the path may then have been copied for a snapshot, but nothing changed).
    private static func remove(_ element: Element, from node: Node) -> Bool {
        if node.isLeaf {
            let position = leafPosition(node.elements, element)
            guard position < node.elements.count && node.elements[position] == element else { return false }
            node.elements.remove(at: position)
            return true
        }
        let index = route(node, element)
        if !isKnownUniquelyReferenced(&node.children[index]) { node.children[index] = node.children[index].copy() }
        guard remove(element, from: node.children[index]) else { return false }
        node.counts[index] -= 1
        let child = node.children[index]
        let size = child.isLeaf ? child.elements.count : child.children.count
        if size == 0 {
            node.children.remove(at: index)
            node.lows.remove(at: index)
            node.counts.remove(at: index)
        } else if size < mergeBelow {
            mergeIfPossible(node, index)
        }
        return true
    }

    /// Merges child `index` with a neighbour when both fit in one node.
    private static func mergeIfPossible(_ node: Node, _ index: Int) {
        for neighbour in [index - 1, index + 1] where neighbour >= 0 && neighbour < node.children.count {
            let (left, right) = (min(index, neighbour), max(index, neighbour))
            let a = node.children[left], b = node.children[right]
            let limit = a.isLeaf ? maxLeaf : maxChildren
            let combined = a.isLeaf ? a.elements.count + b.elements.count : a.children.count + b.children.count
            guard combined <= limit else { continue }
            let merged = a.isLeaf
                ? Node(elements: a.elements + b.elements)
                : Node(children: a.children + b.children, lows: a.lows + b.lows, counts: a.counts + b.counts)
            node.children[left] = merged
            node.counts[left] += node.counts[right]
            node.children.remove(at: right)
            node.lows.remove(at: right)
            node.counts.remove(at: right)
            return
        }
    }

    // MARK: Queries

    /// Whether `element` is present.
    /// - Complexity: O(log n).
    public func contains(_ element: Element) -> Bool {
        var node = root
        while !node.isLeaf { node = node.children[Self.route(node, element)] }
        let position = Self.leafPosition(node.elements, element)
        return position < node.elements.count && node.elements[position] == element
    }

    /// The number of elements less than `element` (its rank when present).
    /// - Complexity: O(log n).
    public func rank(of element: Element) -> Int {
        var node = root
        var rank = 0
        while !node.isLeaf {
            let index = Self.route(node, element)
            for i in 0..<index { rank += node.counts[i] }
            node = node.children[index]
        }
        return rank + Self.leafPosition(node.elements, element)
    }

    /// The number of elements for which `isAfter` is false, given that it is false then true along the
    /// order (the index of the first element satisfying it, or `count`).
    /// - Complexity: O(log n).
    public func partitionIndex(where isAfter: (Element) -> Bool) -> Int {
        var node = root
        var rank = 0
        while !node.isLeaf {
            // The last child whose lower bound does not satisfy the predicate holds the boundary.
            var index = 0
            var low = 1, high = node.children.count
            while low < high {
                let middle = (low + high) / 2
                if isAfter(node.lows[middle]) { high = middle } else { low = middle + 1 }
            }
            index = low - 1
            for i in 0..<index { rank += node.counts[i] }
            node = node.children[index]
        }
        var low = 0, high = node.elements.count
        while low < high {
            let middle = (low + high) / 2
            if isAfter(node.elements[middle]) { high = middle } else { low = middle + 1 }
        }
        return rank + low
    }

    /// The element at rank `index` (0-based).
    /// - Complexity: O(log n).
    public subscript(index: Int) -> Element {
        precondition(index >= 0 && index < count, "rank out of range")
        var node = root
        var remaining = index
        while !node.isLeaf {
            var child = 0
            while remaining >= node.counts[child] {
                remaining -= node.counts[child]
                child += 1
            }
            node = node.children[child]
        }
        return node.elements[remaining]
    }

    /// Descends to the leaf holding rank `index`, recording the path.
    private func descend(to index: Int) -> (leaf: Node, position: Int, path: [(node: Node, child: Int)]) {
        var path: [(node: Node, child: Int)] = []
        var node = root
        var remaining = index
        while !node.isLeaf {
            var child = 0
            while remaining >= node.counts[child] {
                remaining -= node.counts[child]
                child += 1
            }
            path.append((node, child))
            node = node.children[child]
        }
        return (node, remaining, path)
    }

    /// Calls `body` with the elements from rank `start` upwards until it returns false.
    /// - Complexity: O(log n + k) for k elements visited.
    public func forEach(from start: Int, _ body: (Element) throws -> Bool) rethrows {
        guard start >= 0, start < count else { return }
        var (node, position, path) = descend(to: start)
        walking: while true {
            while position < node.elements.count {
                if try !body(node.elements[position]) { return }
                position += 1
            }
            while let (parent, child) = path.popLast() {
                guard child + 1 < parent.children.count else { continue }
                path.append((parent, child + 1))
                node = parent.children[child + 1]
                while !node.isLeaf {
                    path.append((node, 0))
                    node = node.children[0]
                }
                position = 0
                continue walking
            }
            return
        }
    }

    /// Calls `body` with the elements from rank `start` downwards until it returns false.
    /// - Complexity: O(log n + k) for k elements visited.
    public func forEachReversed(from start: Int, _ body: (Element) throws -> Bool) rethrows {
        guard count > 0, start >= 0 else { return }
        var (node, position, path) = descend(to: min(start, count - 1))
        walking: while true {
            while position >= 0 {
                if try !body(node.elements[position]) { return }
                position -= 1
            }
            while let (parent, child) = path.popLast() {
                guard child > 0 else { continue }
                path.append((parent, child - 1))
                node = parent.children[child - 1]
                while !node.isLeaf {
                    path.append((node, node.children.count - 1))
                    node = node.children[node.children.count - 1]
                }
                position = node.elements.count - 1
                continue walking
            }
            return
        }
    }

    // MARK: Invariants

    /// The structural rules every operation keeps, checked from the root: every leaf at the same depth;
    /// elements strictly increasing across the leaves; every node within its size limit and none empty
    /// but an empty root; in each inner node, one low bound and one count per child, each count equal to
    /// the child's element count, and each child's elements at or above its low bound and below the next
    /// child's; `count` equal to the elements held. Returns the violations (empty when sound) and the
    /// depth. For tests: O(n).
    func invariantViolations() -> (violations: [String], depth: Int) {
        var violations: [String] = []
        var leafDepths = Set<Int>()
        var previous: Element? = nil
        var seen = 0
        func visit(_ node: Node, depth: Int, lower: Element?, upper: Element?, path: String) {
            if node.isLeaf {
                leafDepths.insert(depth)
                if node.elements.count > Self.maxLeaf { violations.append("\(path): leaf of \(node.elements.count)") }
                if node.elements.isEmpty && depth > 0 { violations.append("\(path): empty leaf") }
                for element in node.elements {
                    if let previous, !(previous < element) { violations.append("\(path): elements out of order") }
                    if let lower, element < lower { violations.append("\(path): element below its low bound") }
                    if let upper, !(element < upper) { violations.append("\(path): element not below the next bound") }
                    previous = element
                    seen += 1
                }
                return
            }
            let children = node.children.count
            if node.lows.count != children || node.counts.count != children {
                violations.append("\(path): \(children) children, \(node.lows.count) bounds, \(node.counts.count) counts")
                return
            }
            if children > Self.maxChildren { violations.append("\(path): \(children) children") }
            if children < 2 && depth == 0 { violations.append("root with one child") }
            for index in 0..<children {
                let child = node.children[index]
                if node.counts[index] != child.total {
                    violations.append("\(path)/\(index): count \(node.counts[index]), holds \(child.total)")
                }
                let low = index == 0 ? lower : node.lows[index]
                let high = index + 1 < children ? node.lows[index + 1] : upper
                visit(child, depth: depth + 1, lower: low, upper: high, path: "\(path)/\(index)")
            }
        }
        visit(root, depth: 0, lower: nil, upper: nil, path: "root")
        if leafDepths.count > 1 { violations.append("leaves at depths \(leafDepths.sorted())") }
        if seen != count { violations.append("count \(count), holds \(seen)") }
        return (violations, leafDepths.first ?? 0)
    }

    /// All elements in order.
    public var elements: [Element] {
        var result: [Element] = []
        result.reserveCapacity(count)
        forEach(from: 0) { result.append($0); return true }
        return result
    }
}
