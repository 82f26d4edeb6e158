import Foundation
import NIOCore
import NovaEngine
import NovaRESP

/// SORT and SORT_RO (Redis 7.0's sort.c): lists, sets and sorted sets sorted numerically or by bytes,
/// by the element or by other keys (`BY weight_*`, `BY obj_*->field`), with LIMIT, GET patterns and STORE.
enum SortCommands {
    static func sort(_ ctx: inout CommandContext) throws(CommandError) { try sort(&ctx, readOnly: false) }
    static func sortReadOnly(_ ctx: inout CommandContext) throws(CommandError) { try sort(&ctx, readOnly: true) }

    /// SORT's keys (Redis's `sortGetKeys`): the sorted key, and the last STORE destination, skipping the
    /// arguments of LIMIT, GET and BY.
    @Sendable static func keys(_ arguments: [ByteBuffer]) -> [KeyReference] {
        var keys = [KeyReference(index: 1, flags: [.ro, .access])]
        var store: KeyReference? = nil
        var index = 2
        while index < arguments.count {
            let word = String(buffer: arguments[index]).lowercased()
            switch word {
            case "limit": index += 2
            case "get", "by": index += 1
            case "store" where index + 1 < arguments.count: store = KeyReference(index: index + 1, flags: [.ow, .update])
            default: break
            }
            index += 1
        }
        if let store { keys.append(store) }
        return keys
    }

    @Sendable static func readOnlyKeys(_ arguments: [ByteBuffer]) -> [KeyReference] {
        [KeyReference(index: 1, flags: [.ro, .access])]
    }

    /// One element being sorted: the element, and what it sorts by.
    private struct Item {
        var element: Bytes
        var score: Double = 0
        var compareWith: Bytes? = nil
    }

    static func sort(_ ctx: inout CommandContext, readOnly: Bool) throws(CommandError) {
        var descending = false, alpha = false, dontSort = false
        var limitStart: Int64 = 0, limitCount: Int64 = -1
        var sortBy: [UInt8]? = nil
        var gets: [[UInt8]] = []
        var store: ByteBuffer? = nil
        var index = 2
        while index < ctx.args.count {
            let left = ctx.args.count - index - 1
            if ctx.args.isKeyword(index, "asc") {
                descending = false
            } else if ctx.args.isKeyword(index, "desc") {
                descending = true
            } else if ctx.args.isKeyword(index, "alpha") {
                alpha = true
            } else if ctx.args.isKeyword(index, "limit") && left >= 2 {
                limitStart = try ctx.args.integer(index + 1)
                limitCount = try ctx.args.integer(index + 2)
                index += 2
            } else if !readOnly && ctx.args.isKeyword(index, "store") && left >= 1 {
                store = ctx.args[index + 1]
                index += 1
            } else if ctx.args.isKeyword(index, "by") && left >= 1 {
                let pattern = ctx.bytes(index + 1)
                sortBy = pattern
                // A pattern without `*` names no key: the elements keep their order.
                if !cString(pattern).contains(UInt8(ascii: "*")) {
                    dontSort = true
                } else if !hasFullKeyAccess(ctx) {
                    throw CommandError("ERR BY option of SORT denied due to insufficient ACL permissions.")
                }
                index += 1
            } else if ctx.args.isKeyword(index, "get") && left >= 1 {
                if !hasFullKeyAccess(ctx) {
                    throw CommandError("ERR GET option of SORT denied due to insufficient ACL permissions.")
                }
                gets.append(ctx.bytes(index + 1))
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }

        var value: Value = .list(ListValue())
        if let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[1], ctx.readOptions) {
            value = ctx.keyspace.value(ctx.db, ref)
            switch value {
            case .list, .set, .zset: break
            default: throw .wrongType
            }
        }
        // An unsorted set's order is its table's: stored or seen by a script, it is sorted by bytes so
        // that replicas and the AOF agree.
        let fromScript = ctx.server.runningScript.map { $0.client === ctx.client } ?? false
        if dontSort, case .set = value, store != nil || fromScript {
            dontSort = false
            alpha = true
            sortBy = nil
        }

        var length: Int
        switch value {
        case .list(let list): length = list.count
        case .set(let set): length = set.count
        case .zset(let zset): length = zset.count
        default: length = 0
        }
        var start = Int(min(max(limitStart, 0), Int64(length)))
        let count = Int(min(max(limitCount, -1), Int64(length)))
        var end = count < 0 ? length - 1 : start + count - 1
        if start >= length {
            start = length - 1
            end = length - 2
        }
        if end >= length { end = length - 1 }

        // Lists and sorted sets left unsorted are read in their order, only the range asked for.
        var items: [Item] = []
        switch value {
        case .list(let list) where dontSort:
            if end >= start {
                length = end - start + 1
                for offset in 0..<length {
                    items.append(Item(element: list[descending ? list.count - start - 1 - offset : start + offset]))
                }
                end -= start
                start = 0
            }
        case .zset(let zset) where dontSort:
            if end >= start {
                length = end - start + 1
                for offset in 0..<length {
                    items.append(Item(element: zset[descending ? zset.count - start - 1 - offset : start + offset].member))
                }
                end -= start
                start = 0
            }
        case .list(let list):
            items = list.elements.map { Item(element: $0) }
        case .set(let set):
            items = set.members.map { Item(element: $0) }
        case .zset(let zset):
            items = zset.allElements.map { Item(element: $0.member) }
        default:
            break
        }

        var conversionError = false
        if !dontSort {
            for position in items.indices {
                let sortValue: Bytes
                if let sortBy {
                    guard let found = lookup(ctx, pattern: sortBy, element: items[position].element) else { continue }
                    sortValue = found
                } else {
                    sortValue = items[position].element
                }
                if alpha {
                    if sortBy != nil { items[position].compareWith = sortValue }
                } else if let score = parseScore(sortValue) {
                    items[position].score = score
                } else {
                    conversionError = true
                }
            }
            let byPattern = sortBy != nil, storing = store != nil
            let order = { (a: Item, b: Item) -> Int in
                let order = compare(a, b, alpha: alpha, byPattern: byPattern, storing: storing)
                return descending ? -order : order
            }
            // Like Redis: BY with a LIMIT sorts only the range with its pqsort, everything else is sorted
            // fully and stably (glibc's qsort is a merge sort), which decides the order of ties.
            if byPattern && start <= end && (start != 0 || end != items.count - 1) {
                PartialQuickSort.sort(&items, keeping: start, through: end, by: order)
            } else {
                items.sort { order($0, $1) < 0 }
            }
        }

        let selected = start <= end ? Array(items[start...end]) : []
        let outputLength = gets.isEmpty ? selected.count : gets.count * selected.count
        if conversionError { throw CommandError("ERR One or more scores can't be converted into double") }
        guard let store else {
            ctx.reply.array(outputLength)
            for item in selected {
                if gets.isEmpty { item.element.withBytes { ctx.reply.bulk($0) } }
                for pattern in gets {
                    if let found = lookup(ctx, pattern: pattern, element: item.element) {
                        found.withBytes { ctx.reply.bulk($0) }
                    } else {
                        ctx.reply.null()
                    }
                }
            }
            return
        }
        var list = ListValue()
        for item in selected {
            if gets.isEmpty { list.append(item.element) }
            for pattern in gets { list.append(lookup(ctx, pattern: pattern, element: item.element) ?? Bytes()) }
        }
        ctx.store(.list(list), at: store, event: "sortstore", .list)
        ctx.reply.integer(outputLength)
    }

    /// Redis's `sortCompare` without the direction: scores (ties by bytes), or bytes of the BY values
    /// (missing ones first) or of the elements. Outside STORE Redis compares with `strcoll`, which stops at
    /// the first NUL byte; in the C locale it is a byte comparison.
    private static func compare(_ a: Item, _ b: Item, alpha: Bool, byPattern: Bool, storing: Bool) -> Int {
        func bytes(_ x: Bytes, _ y: Bytes) -> Int {
            x.withBytes { xr in y.withBytes { yr in ByteCompare.compare(xr, yr) } }
        }
        func collate(_ x: Bytes, _ y: Bytes) -> Int {
            storing ? bytes(x, y) : cString(x.array).withUnsafeBytes { xr in
                cString(y.array).withUnsafeBytes { yr in ByteCompare.compare(xr, yr) }
            }
        }
        if !alpha {
            if a.score > b.score { return 1 }
            if a.score < b.score { return -1 }
            return bytes(a.element, b.element)
        }
        if byPattern {
            switch (a.compareWith, b.compareWith) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case let (x?, y?): return collate(x, y)
            }
        }
        return collate(a.element, b.element)
    }

    /// The bytes before the first NUL (what C's string functions see).
    private static func cString(_ bytes: [UInt8]) -> [UInt8] {
        Array(bytes.prefix { $0 != 0 })
    }

    /// A score as Redis reads it with `strtod`: leading spaces, hex and `inf` allowed; anything after the
    /// number, a NaN or an out-of-range value is an error.
    static func parseScore(_ value: Bytes) -> Double? {
        var text = value.array
        text.append(0)
        return text.withUnsafeBufferPointer { buffer -> Double? in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { start -> Double? in
                var end: UnsafeMutablePointer<CChar>? = nil
                errno = 0
                let score = strtod(start, &end)
                guard let end, end.pointee == 0, errno != ERANGE, !score.isNaN else { return nil }
                return score
            }
        }
    }

    /// The value a GET or BY pattern names for `element` (Redis's `lookupKeyByPattern`): `#` is the
    /// element; otherwise the first `*` is replaced by it, and `->field` after it reads a hash field.
    /// Nil when the key is missing or of another type, or the pattern has no `*`.
    static func lookup(_ ctx: CommandContext, pattern: [UInt8], element: Bytes) -> Bytes? {
        let visible = cString(pattern)
        if visible == [UInt8(ascii: "#")] { return element }
        guard let star = visible.firstIndex(of: UInt8(ascii: "*")) else { return nil }
        var fieldLength = 0
        var arrow = star + 1
        while arrow + 1 < visible.count {
            if visible[arrow] == UInt8(ascii: "-") && visible[arrow + 1] == UInt8(ascii: ">") { break }
            arrow += 1
        }
        if arrow + 2 < visible.count { fieldLength = pattern.count - arrow - 2 }
        let postfixLength = pattern.count - (star + 1) - (fieldLength > 0 ? fieldLength + 2 : 0)
        var key = Array(pattern[..<star])
        key += element.array
        key += pattern[(star + 1)..<(star + 1 + postfixLength)]
        guard let ref = ctx.keyspace.lookupRead(ctx.db, key, ctx.readOptions) else { return nil }
        let value = ctx.keyspace.value(ctx.db, ref)
        if fieldLength > 0 {
            guard case .hash(let hash) = value else { return nil }
            return hash.value(Array(pattern[(pattern.count - fieldLength)...]))
        }
        guard value.isString else { return nil }
        return value.withStringBytes { Bytes($0) }
    }

    /// Whether the user may read every key (BY and GET patterns reach keys no argument names).
    private static func hasFullKeyAccess(_ ctx: CommandContext) -> Bool {
        let user = ctx.client.aclUser
        return ([user.root] + user.selectors).contains { selector in
            selector.allKeys || selector.keyPatterns.contains { pattern in
                pattern.permission.contains(.read) && RedisGlob.matches(pattern.pattern, [UInt8(ascii: "*")])
            }
        }
    }
}
