/// A score interval of ZRANGEBYSCORE / ZCOUNT / ZREMRANGEBYSCORE: `min`..`max`, each end open or closed.
public struct ScoreRange: Sendable {
    public var min: Double
    public var max: Double
    public var minExclusive: Bool
    public var maxExclusive: Bool

    public init(min: Double, max: Double, minExclusive: Bool = false, maxExclusive: Bool = false) {
        self.min = min
        self.max = max
        self.minExclusive = minExclusive
        self.maxExclusive = maxExclusive
    }

    public func isAboveMin(_ score: Double) -> Bool { minExclusive ? score > min : score >= min }
    public func isBelowMax(_ score: Double) -> Bool { maxExclusive ? score < max : score <= max }
    public func contains(_ score: Double) -> Bool { isAboveMin(score) && isBelowMax(score) }

    /// True when no score can be inside (as Redis's `zslIsInRange` pre-check).
    public var isEmpty: Bool { min > max || (min == max && (minExclusive || maxExclusive)) }
}

/// One end of a ZRANGEBYLEX interval: `-`, `+`, `[member` or `(member`.
public enum LexBound: Sendable {
    case minusInfinity
    case plusInfinity
    case value(Bytes, exclusive: Bool)

    /// Orders bounds as Redis's `sdscmplex`: `-` before every string, `+` after.
    fileprivate static func compare(_ a: LexBound, _ b: LexBound) -> Int {
        switch (a, b) {
        case (.minusInfinity, .minusInfinity), (.plusInfinity, .plusInfinity): return 0
        case (.minusInfinity, _), (_, .plusInfinity): return -1
        case (.plusInfinity, _), (_, .minusInfinity): return 1
        case (.value(let x, _), .value(let y, _)): return x == y ? 0 : (x < y ? -1 : 1)
        }
    }

    fileprivate var isExclusive: Bool {
        switch self {
        case .minusInfinity, .plusInfinity: return true
        case .value(_, let exclusive): return exclusive
        }
    }
}

/// A member interval of ZRANGEBYLEX / ZLEXCOUNT / ZREMRANGEBYLEX (meaningful when all scores are equal).
public struct LexRange: Sendable {
    public var min: LexBound
    public var max: LexBound

    public init(min: LexBound, max: LexBound) {
        self.min = min
        self.max = max
    }

    public func isAboveMin(_ member: Bytes) -> Bool {
        switch min {
        case .minusInfinity: return true
        case .plusInfinity: return false
        case .value(let bound, let exclusive): return exclusive ? member > bound : member >= bound
        }
    }

    public func isBelowMax(_ member: Bytes) -> Bool {
        switch max {
        case .minusInfinity: return false
        case .plusInfinity: return true
        case .value(let bound, let exclusive): return exclusive ? member < bound : member <= bound
        }
    }

    /// True when no member can be inside.
    public var isEmpty: Bool {
        let order = LexBound.compare(min, max)
        return order > 0 || (order == 0 && (min.isExclusive || max.isExclusive))
    }
}

extension SortedSetValue {
    /// The ranks of the elements whose score lies in `range`.
    /// - Complexity: O(log n).
    public func ranks(in range: ScoreRange) -> Range<Int> {
        guard !range.isEmpty else { return 0..<0 }
        let lower = partitionIndex { range.isAboveMin($0.score) }
        let upper = partitionIndex { !range.isBelowMax($0.score) }
        return lower..<Swift.max(lower, upper)
    }

    /// The ranks of the elements whose member lies in `range`. Member ranges assume equal scores; for
    /// other sets the result follows Redis: after the same first/last-element pre-check, the set is scanned
    /// linearly from the start (a small set from the end when `fromEnd`, as ZREVRANGEBYLEX on a listpack
    /// does) to the first element past the bound, then elements are taken while they stay inside — Redis's
    /// listpack and skiplist walks (the latter unless a higher skiplist level jumps over an element). A large set
    /// whose scores are all equal (first and last score alike) is searched by bisection, which is then exact.
    /// - Complexity: O(log n) for a large set with equal scores, O(n) otherwise.
    public func ranks(in range: LexRange, fromEnd: Bool = false) -> Range<Int> {
        guard !range.isEmpty, count > 0,
              range.isAboveMin(self[count - 1].member), range.isBelowMax(self[0].member) else { return 0..<0 }
        let uniformScores = self[0].score == self[count - 1].score
        if !isListpack && uniformScores {
            let lower = ordered.partitionIndex { range.isAboveMin($0.member) }
            let upper = ordered.partitionIndex { !range.isBelowMax($0.member) }
            return lower..<Swift.max(lower, upper)
        }
        let all = allElements
        if fromEnd && !isListpack {
            // Redis's skiplist finds the last element walking forward from the start while the next one is
            // within the max (its listpack, below, walks back from the end instead).
            var last = -1
            while last + 1 < all.count && range.isBelowMax(all[last + 1].member) { last += 1 }
            guard last >= 0, range.isAboveMin(all[last].member) else { return 0..<0 }
            var first = last
            while first > 0 && range.isAboveMin(all[first - 1].member) { first -= 1 }
            return first..<(last + 1)
        }
        if fromEnd {
            guard let last = all.lastIndex(where: { range.isBelowMax($0.member) }), range.isAboveMin(all[last].member) else {
                return 0..<0
            }
            var first = last
            while first > 0 && range.isAboveMin(all[first - 1].member) { first -= 1 }
            return first..<(last + 1)
        }
        guard let first = all.firstIndex(where: { range.isAboveMin($0.member) }), range.isBelowMax(all[first].member) else {
            return 0..<0
        }
        var end = first + 1
        while end < all.count && range.isBelowMax(all[end].member) { end += 1 }
        return first..<end
    }

    /// ZRANGEBYLEX with LIMIT as Redis walks it: from the first element in `range` (the last when
    /// `reversed`), skip `offset` elements without looking at them, then take up to `limit` (all when nil)
    /// while they stay below the max (above the min when `reversed`). For equal scores this is simply the
    /// window of the member interval; for mixed scores it reproduces Redis's answer.
    /// - Complexity: O(log n + offset + k) for a large set.
    public func elements(in range: LexRange, reversed: Bool, offset: Int, limit: Int?) -> [ScoredMember] {
        let found = ranks(in: range, fromEnd: reversed)
        guard !found.isEmpty, offset >= 0, offset < count else { return [] }
        let start = reversed ? found.upperBound - 1 - offset : found.lowerBound + offset
        guard start >= 0, start < count, limit != 0 else { return [] }
        var result: [ScoredMember] = []
        let visit = { (element: ScoredMember) -> Bool in
            guard reversed ? range.isAboveMin(element.member) : range.isBelowMax(element.member) else { return false }
            result.append(element)
            return limit.map { result.count < $0 } ?? true
        }
        if reversed { forEachReversed(from: start, visit) } else { forEach(from: start, visit) }
        return result
    }

    /// The elements at `ranks`, in ascending order or, when `reversed`, descending.
    /// - Complexity: O(log n + k).
    public func elements(ranks: Range<Int>, reversed: Bool = false) -> [ScoredMember] {
        let ranks = ranks.clamped(to: 0..<count)
        guard !ranks.isEmpty else { return [] }
        var result: [ScoredMember] = []
        result.reserveCapacity(ranks.count)
        if reversed {
            forEachReversed(from: ranks.upperBound - 1) { element in
                result.append(element)
                return result.count < ranks.count
            }
        } else {
            forEach(from: ranks.lowerBound) { element in
                result.append(element)
                return result.count < ranks.count
            }
        }
        return result
    }

    /// Removes the elements at `ranks`; returns how many were removed.
    @discardableResult
    public mutating func removeRanks(_ ranks: Range<Int>) -> Int {
        let doomed = elements(ranks: ranks)
        for element in doomed { remove(element.member) }
        return doomed.count
    }

}
