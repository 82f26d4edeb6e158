import NIOCore
import NovaEngine
import NovaRESP

/// List commands (the blocking variants are in BlockingCommands).
enum ListCommands {
    /// LEFT / RIGHT.
    enum End {
        case left, right

        /// The keyspace events of a push and a pop at this end.
        var pushEvent: StaticString { self == .left ? "lpush" : "rpush" }
        var popEvent: StaticString { self == .left ? "lpop" : "rpop" }
    }

    static func end(_ ctx: CommandContext, _ index: Int) throws(CommandError) -> End {
        if ctx.args.isKeyword(index, "left") { return .left }
        if ctx.args.isKeyword(index, "right") { return .right }
        throw .syntax
    }

    static func push(_ ctx: inout CommandContext, end: End, onlyIfExists: Bool) throws(CommandError) {
        let args = ctx.args
        let length = try ctx.modify(ListKind.self, args[1], create: !onlyIfExists) { list throws(CommandError) -> Int in
            for index in 2..<args.count {
                if end == .left { list.prepend(args.bytes(index)) } else { list.append(args.bytes(index)) }
            }
            return list.count
        }
        guard let length else {
            ctx.reply.integer(0)
            return
        }
        ctx.dirty(args.count - 2)
        ctx.modified(args[1], end.pushEvent, .list)
        ctx.server.signalKeyReady(ctx.db, args[1])
        ctx.reply.integer(length)
    }

    static func lpush(_ ctx: inout CommandContext) throws(CommandError) { try push(&ctx, end: .left, onlyIfExists: false) }
    static func rpush(_ ctx: inout CommandContext) throws(CommandError) { try push(&ctx, end: .right, onlyIfExists: false) }
    static func lpushx(_ ctx: inout CommandContext) throws(CommandError) { try push(&ctx, end: .left, onlyIfExists: true) }
    static func rpushx(_ ctx: inout CommandContext) throws(CommandError) { try push(&ctx, end: .right, onlyIfExists: true) }

    /// A count that must be positive (`getPositiveLongFromObjectOrReply`).
    /// A malformed number gets the same message as a negative one, as in Redis.
    static func positiveCount(_ ctx: CommandContext, _ index: Int, _ message: String? = nil) throws(CommandError) -> Int64 {
        let error = CommandError(message.map { "ERR \($0)" } ?? "ERR value is out of range, must be positive")
        let value = try ctx.args.integer(index, or: error)
        if value < 0 { throw error }
        return value
    }

    /// Pops up to `count` elements from one end (nil count: one element, bulk reply).
    static func pop(_ ctx: inout CommandContext, end: End) throws(CommandError) {
        if ctx.args.count > 3 { throw .arity(ctx.spec.fullName) }
        let count: Int64? = ctx.args.count == 3 ? try positiveCount(ctx, 2) : nil
        // One lookup: `modify` answers nil for a missing key and WRONGTYPE for another type.
        guard let count else {
            // The common single pop, without an array for one element.
            let result = try ctx.modify(ListKind.self, ctx.args[1], create: false) { list throws(CommandError) -> Bytes? in
                end == .left ? list.popFirst() : list.popLast()
            }
            guard let item = result ?? nil else {
                ctx.reply.null()
                return
            }
            ctx.dirty(1)
            ctx.modified(ctx.args[1], end.popEvent, .list)
            item.withBytes { ctx.reply.bulk($0) }
            return
        }
        let wanted = Int(clamping: count)
        let result = try ctx.modify(ListKind.self, ctx.args[1], create: false) { list throws(CommandError) -> [Bytes] in
            var items: [Bytes] = []
            while items.count < wanted, let item = end == .left ? list.popFirst() : list.popLast() { items.append(item) }
            return items
        }
        guard let popped = result else {
            ctx.reply.nullArray()
            return
        }
        if count == 0 {
            ctx.reply.array(0)
            return
        }
        ctx.dirty(popped.count)
        ctx.modified(ctx.args[1], end.popEvent, .list)
        ctx.replyArray(popped)
    }

    static func lpop(_ ctx: inout CommandContext) throws(CommandError) { try pop(&ctx, end: .left) }
    static func rpop(_ ctx: inout CommandContext) throws(CommandError) { try pop(&ctx, end: .right) }

    static func llen(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(try ctx.read(ListKind.self, ctx.args[1])?.count ?? 0)
    }

    /// Redis's LRANGE/LTRIM index normalisation; nil for an empty range.
    static func range(_ start: Int64, _ stop: Int64, length: Int) -> ClosedRange<Int>? {
        let length = Int64(length)
        var start = start < 0 ? length + start : start
        var stop = stop < 0 ? length + stop : stop
        if start < 0 { start = 0 }
        if start > stop || start >= length { return nil }
        if stop >= length { stop = length - 1 }
        return Int(start)...Int(stop)
    }

    static func lrange(_ ctx: inout CommandContext) throws(CommandError) {
        let start = try ctx.args.integer(2)
        let stop = try ctx.args.integer(3)
        guard let list = try ctx.read(ListKind.self, ctx.args[1]),
              let range = range(start, stop, length: list.count) else {
            ctx.reply.array(0)
            return
        }
        ctx.reply.array(range.count)
        list.forEach(in: range.lowerBound..<(range.upperBound + 1)) { item in
            ctx.reply.bulk(item)
            return true
        }
    }

    static func lindex(_ ctx: inout CommandContext) throws(CommandError) {
        guard let list = try ctx.read(ListKind.self, ctx.args[1]) else { return ctx.reply.null() }
        let index = try ctx.args.integer(2)
        let position = index < 0 ? Int64(list.count) + index : index
        guard position >= 0, position < Int64(list.count) else { return ctx.reply.null() }
        list[Int(position)].withBytes { ctx.reply.bulk($0) }
    }

    static func lset(_ ctx: inout CommandContext) throws(CommandError) {
        let args = ctx.args
        let found: Void? = try ctx.modify(ListKind.self, args[1], create: false) { list throws(CommandError) in
            let index = try args.integer(2)
            let position = index < 0 ? Int64(list.count) + index : index
            guard position >= 0, position < Int64(list.count) else { throw CommandError("ERR index out of range") }
            list.set(Int(position), args.bytes(3))
        }
        guard found != nil else { throw .noSuchKey }
        ctx.dirty()
        ctx.modified(args[1], "lset", .list)
        ctx.reply.ok()
    }

    static func linsert(_ ctx: inout CommandContext) throws(CommandError) {
        let after: Bool
        if ctx.args.isKeyword(2, "after") { after = true }
        else if ctx.args.isKeyword(2, "before") { after = false }
        else { throw .syntax }
        let args = ctx.args
        let pivot = args.bytes(3)
        let result = try ctx.modify(ListKind.self, args[1], create: false) { list throws(CommandError) -> Int in
            guard let position = list.elements.firstIndex(of: pivot) else { return -1 }
            list.insert(args.bytes(4), at: after ? position + 1 : position)
            return list.count
        }
        if let result, result > 0 {
            ctx.dirty()
            ctx.modified(args[1], "linsert", .list)
        }
        ctx.reply.integer(result ?? 0)
    }

    static func lrem(_ ctx: inout CommandContext) throws(CommandError) {
        let count = try ctx.args.integer(2)
        let args = ctx.args
        let element = args.bytes(3)
        let removed = try ctx.modify(ListKind.self, args[1], create: false) { list throws(CommandError) -> Int in
            var removed = 0
            let limit = count == 0 ? Int.max : Int(clamping: count.magnitude)
            if count >= 0 {
                var index = 0
                while index < list.count && removed < limit {
                    if list[index] == element {
                        _ = list.remove(at: index)
                        removed += 1
                    } else {
                        index += 1
                    }
                }
            } else {
                var index = list.count - 1
                while index >= 0 && removed < limit {
                    if list[index] == element {
                        _ = list.remove(at: index)
                        removed += 1
                    }
                    index -= 1
                }
            }
            return removed
        } ?? 0
        ctx.dirty(removed)
        if removed > 0 { ctx.modified(args[1], "lrem", .list) }
        ctx.reply.integer(removed)
    }

    static func ltrim(_ ctx: inout CommandContext) throws(CommandError) {
        let start = try ctx.args.integer(2)
        let stop = try ctx.args.integer(3)
        let trimmed: Void? = try ctx.modify(ListKind.self, ctx.args[1], create: false) { list throws(CommandError) in
            if let range = range(start, stop, length: list.count) {
                list.keep(range.lowerBound..<(range.upperBound + 1))
            } else {
                list.keep(0..<0)
            }
        }
        if trimmed != nil {
            ctx.dirty()
            ctx.modified(ctx.args[1], "ltrim", .list)
        }
        ctx.reply.ok()
    }

    static func lpos(_ ctx: inout CommandContext) throws(CommandError) {
        var rank: Int64 = 1
        var count: Int64? = nil
        var maxLength: Int64 = 0
        var index = 3
        while index < ctx.args.count {
            let more = ctx.args.count - 1 - index
            if ctx.args.isKeyword(index, "rank") && more > 0 {
                rank = try ctx.args.integer(index + 1)
                // Redis 7.0 negates LONG_MIN to itself, which then matches from the first hit at the tail.
                if rank == Int64.min { rank = -1 }
                if rank == 0 {
                    throw CommandError("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
                }
            } else if ctx.args.isKeyword(index, "count") && more > 0 {
                count = try positiveCount(ctx, index + 1, "COUNT can't be negative")
            } else if ctx.args.isKeyword(index, "maxlen") && more > 0 {
                maxLength = try positiveCount(ctx, index + 1, "MAXLEN can't be negative")
            } else {
                throw .syntax
            }
            index += 2
        }
        guard let list = try ctx.read(ListKind.self, ctx.args[1]) else {
            if count != nil { ctx.reply.array(0) } else { ctx.reply.null() }
            return
        }
        let element = ctx.args.bytes(2)
        let wanted = count.map { $0 == 0 ? Int.max : Int(clamping: $0) } ?? 1
        var matches: [Int] = []
        var skip = Int(clamping: rank.magnitude) - 1
        let limit = maxLength == 0 ? list.count : min(list.count, Int(clamping: maxLength))
        var step = 0
        let scanned = rank > 0 ? 0..<limit : (list.count - limit)..<list.count
        element.withBytes { element in
            list.forEach(in: scanned, reversed: rank < 0) { item in
                if ByteCompare.equal(item, element) {
                    if skip > 0 { skip -= 1 } else { matches.append(rank > 0 ? step : list.count - 1 - step) }
                }
                step += 1
                return matches.count < wanted
            }
        }
        if count != nil {
            ctx.reply.array(matches.count)
            for match in matches { ctx.reply.integer(match) }
        } else if let first = matches.first {
            ctx.reply.integer(first)
        } else {
            ctx.reply.null()
        }
    }

    /// Moves one element between lists (LMOVE, RPOPLPUSH, and the blocking variants once unblocked).
    /// Returns the element, or nil when the source is empty or absent.
    static func move(_ ctx: inout CommandContext, source: ByteBuffer, destination: ByteBuffer, from: End, to: End) throws(CommandError) -> Bytes? {
        guard try ctx.exists(ListKind.self, source) else { return nil }
        _ = try ctx.exists(ListKind.self, destination)  // WRONGTYPE before anything moves
        func push(_ element: Bytes, _ list: inout ListValue) {
            if to == .left { list.prepend(element) } else { list.append(element) }
        }
        let element: Bytes
        if source == destination {
            // A rotation: the list never becomes empty, so it is neither deleted nor created again.
            element = try ctx.modify(ListKind.self, source, create: false) { list throws(CommandError) -> Bytes in
                let element = (from == .left ? list.popFirst() : list.popLast())!
                push(element, &list)
                return element
            }!
        } else {
            element = try ctx.modify(ListKind.self, source, create: false) { list throws(CommandError) -> Bytes in
                (from == .left ? list.popFirst() : list.popLast())!
            }!
            _ = try ctx.modify(ListKind.self, destination, create: true) { list throws(CommandError) in push(element, &list) }
        }
        ctx.dirty()
        ctx.modified(destination, to.pushEvent, .list)
        ctx.modified(source, from.popEvent, .list)
        ctx.server.signalKeyReady(ctx.db, destination)
        return element
    }

    static func lmove(_ ctx: inout CommandContext) throws(CommandError) {
        let from = try end(ctx, 3)
        let to = try end(ctx, 4)
        guard let element = try move(&ctx, source: ctx.args[1], destination: ctx.args[2], from: from, to: to) else {
            return ctx.reply.null()
        }
        element.withBytes { ctx.reply.bulk($0) }
    }

    static func rpoplpush(_ ctx: inout CommandContext) throws(CommandError) {
        guard let element = try move(&ctx, source: ctx.args[1], destination: ctx.args[2], from: .right, to: .left) else {
            return ctx.reply.null()
        }
        element.withBytes { ctx.reply.bulk($0) }
    }

    /// Parsed `numkeys key [key ...] LEFT|RIGHT [COUNT count]` (LMPOP, BLMPOP; ZMPOP and BZMPOP with
    /// MIN|MAX as left|right).
    struct MultiPop {
        var keys: [ByteBuffer]
        var end: End
        var count: Int
    }

    static func parseMultiPop(
        _ ctx: CommandContext, numkeysIndex: Int, ends: (left: StaticString, right: StaticString) = ("left", "right")
    ) throws(CommandError) -> MultiPop {
        let numkeys = try ctx.args.integer(numkeysIndex, or: CommandError("ERR numkeys should be greater than 0"))
        guard numkeys > 0 else { throw CommandError("ERR numkeys should be greater than 0") }
        guard numkeys < Int64(ctx.args.count) else { throw .syntax }
        let whereIndex = numkeysIndex + 1 + Int(numkeys)
        guard whereIndex < ctx.args.count else { throw .syntax }
        let end: End
        if ctx.args.isKeyword(whereIndex, ends.left) { end = .left }
        else if ctx.args.isKeyword(whereIndex, ends.right) { end = .right }
        else { throw .syntax }
        var count: Int64 = -1
        var index = whereIndex + 1
        while index < ctx.args.count {
            if count == -1 && ctx.args.isKeyword(index, "count") && index + 1 < ctx.args.count {
                count = try ctx.args.integer(index + 1, or: CommandError("ERR count should be greater than 0"))
                guard count > 0 else { throw CommandError("ERR count should be greater than 0") }
                index += 2
            } else {
                throw .syntax
            }
        }
        let keys = ((numkeysIndex + 1)..<whereIndex).map { ctx.args[$0] }
        return MultiPop(keys: keys, end: end, count: count == -1 ? 1 : Int(clamping: count))
    }

    /// Pops from the first non-empty list of `request`; replies [key, [elements]]. False when all are empty.
    static func multiPop(_ ctx: inout CommandContext, _ request: MultiPop) throws(CommandError) -> Bool {
        for key in request.keys {
            guard try ctx.exists(ListKind.self, key) else { continue }
            let popped = try ctx.modify(ListKind.self, key, create: false) { list throws(CommandError) -> [Bytes] in
                var items: [Bytes] = []
                while items.count < request.count, let item = request.end == .left ? list.popFirst() : list.popLast() {
                    items.append(item)
                }
                return items
            } ?? []
            ctx.dirty(popped.count)
            ctx.modified(key, request.end.popEvent, .list)
            ctx.propagate([Array(request.end == .left ? "LPOP".utf8 : "RPOP".utf8), Array(key.readableBytesView), RedisInteger.bytes(Int64(popped.count))])
            ctx.reply.array(2)
            ctx.reply.bulk(key)
            ctx.replyArray(popped)
            return true
        }
        return false
    }

    static func lmpop(_ ctx: inout CommandContext) throws(CommandError) {
        let request = try parseMultiPop(ctx, numkeysIndex: 1)
        if try !multiPop(&ctx, request) { ctx.reply.nullArray() }
    }
}
