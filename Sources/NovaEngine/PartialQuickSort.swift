/// Redis's `pqsort` (pqsort.c: Bentley and McIlroy's quicksort from NetBSD, recursing only into the parts
/// that overlap the wanted range). GEO searches with COUNT and SORT … BY … LIMIT sort with it, so elements
/// that compare equal come out in the same order as on redis-server; a stable sort would not.
public enum PartialQuickSort {
    /// Sorts `elements` so that positions `lower...upper` hold what a full sort would put there (the rest
    /// is left partly sorted). `compare` answers like a C comparator: negative, zero or positive.
    public static func sort<Element>(
        _ elements: inout [Element], keeping lower: Int, through upper: Int,
        by compare: (Element, Element) -> Int
    ) {
        guard elements.count > 1 else { return }
        elements.withUnsafeMutableBufferPointer { buffer in
            sort(buffer, start: 0, count: buffer.count, lower: lower, upper: upper, compare)
        }
    }

    private static func sort<Element>(
        _ a: UnsafeMutableBufferPointer<Element>, start initialStart: Int, count initialCount: Int,
        lower: Int, upper: Int, _ compare: (Element, Element) -> Int
    ) {
        var start = initialStart, n = initialCount
        // Positions are absolute indices into `a`; the C code's pointers are these times the element size.
        func cmp(_ i: Int, _ j: Int) -> Int { compare(a[i], a[j]) }
        func swapAt(_ i: Int, _ j: Int) { if i != j { a.swapAt(i, j) } }
        func vecswap(_ i: Int, _ j: Int, _ count: Int) {
            for k in 0..<max(count, 0) { swapAt(i + k, j + k) }
        }
        func median(_ x: Int, _ y: Int, _ z: Int) -> Int {
            cmp(x, y) < 0
                ? (cmp(y, z) < 0 ? y : (cmp(x, z) < 0 ? z : x))
                : (cmp(y, z) > 0 ? y : (cmp(x, z) < 0 ? x : z))
        }
        func overlapsWanted(_ first: Int, _ count: Int) -> Bool {
            !(upper < first || lower >= first + count)
        }

        while true {
            if n < 7 {
                var m = start + 1
                while m < start + n {
                    var l = m
                    while l > start && cmp(l - 1, l) > 0 {
                        swapAt(l, l - 1)
                        l -= 1
                    }
                    m += 1
                }
                return
            }
            var pm = start + n / 2
            if n > 7 {
                var pl = start
                var pn = start + n - 1
                if n > 40 {
                    let d = n / 8
                    pl = median(pl, pl + d, pl + 2 * d)
                    pm = median(pm - d, pm, pm + d)
                    pn = median(pn - 2 * d, pn - d, pn)
                }
                pm = median(pl, pm, pn)
            }
            swapAt(start, pm)
            var pa = start + 1, pb = start + 1
            var pc = start + n - 1, pd = start + n - 1
            while true {
                while pb <= pc {
                    let order = cmp(pb, start)
                    if order > 0 { break }
                    if order == 0 {
                        swapAt(pa, pb)
                        pa += 1
                    }
                    pb += 1
                }
                while pb <= pc {
                    let order = cmp(pc, start)
                    if order < 0 { break }
                    if order == 0 {
                        swapAt(pc, pd)
                        pd -= 1
                    }
                    pc -= 1
                }
                if pb > pc { break }
                swapAt(pb, pc)
                pb += 1
                pc -= 1
            }
            let pn = start + n
            var r = min(pa - start, pb - pa)
            vecswap(start, pb - r, r)
            r = min(pd - pc, pn - pd - 1)
            vecswap(pb, pn - r, r)
            r = pb - pa
            if r > 1 && overlapsWanted(start, r) {
                sort(a, start: start, count: r, lower: lower, upper: upper, compare)
            }
            r = pd - pc
            guard r > 1 else { return }
            start = pn - r
            n = r
            guard overlapsWanted(start, n) else { return }
        }
    }
}
