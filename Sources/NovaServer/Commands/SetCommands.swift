import NIOCore
import NovaEngine
import NovaRESP

/// Set commands.
enum SetCommands {
    static func sadd(_ ctx: inout CommandContext) throws(CommandError) {
        let args = ctx.args
        let limits = ctx.limits
        let added = try ctx.modify(SetKind.self, args[1], create: true) { set throws(CommandError) -> Int in
            var added = 0
            for index in 2..<args.count where set.add(args.bytes(index), limits: limits) { added += 1 }
            return added
        } ?? 0
        ctx.dirty(added)
        if added > 0 { ctx.modified(args[1], "sadd", .set) }
        ctx.reply.integer(added)
    }

    static func srem(_ ctx: inout CommandContext) throws(CommandError) {
        let args = ctx.args
        let removed = try ctx.modify(SetKind.self, args[1], create: false) { set throws(CommandError) -> Int in
            var removed = 0
            for index in 2..<args.count where set.remove(args[index]) { removed += 1 }
            return removed
        } ?? 0
        ctx.dirty(removed)
        if removed > 0 { ctx.modified(args[1], "srem", .set) }
        ctx.reply.integer(removed)
    }

    static func smembers(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.replySet(try ctx.read(SetKind.self, ctx.args[1])?.members ?? [])
    }

    static func sismember(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(try ctx.read(SetKind.self, ctx.args[1])?.contains(ctx.args[2]) == true ? 1 : 0)
    }

    static func smismember(_ ctx: inout CommandContext) throws(CommandError) {
        let set = try ctx.read(SetKind.self, ctx.args[1])
        ctx.reply.array(ctx.args.count - 2)
        for index in 2..<ctx.args.count { ctx.reply.integer(set?.contains(ctx.args[index]) == true ? 1 : 0) }
    }

    static func scard(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(try ctx.read(SetKind.self, ctx.args[1])?.count ?? 0)
    }

    static func spop(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 3 { throw .syntax }
        let count: Int64? = ctx.args.count == 3 ? try ListCommands.positiveCount(ctx, 2) : nil
        guard try ctx.exists(SetKind.self, ctx.args[1]) else {
            if count == nil { ctx.reply.null() } else { ctx.reply.set(0) }
            return
        }
        let wanted = Int(clamping: count ?? 1)
        let popped = try ctx.modify(SetKind.self, ctx.args[1], create: false) { set throws(CommandError) -> [Bytes] in
            var popped: [Bytes] = []
            while popped.count < wanted && !set.isEmpty {
                let member = set[Int.random(in: 0..<set.count)]
                set.remove(member)
                popped.append(member)
            }
            return popped
        } ?? []
        ctx.dirty(popped.count)
        if !popped.isEmpty { ctx.modified(ctx.args[1], "spop", .set) }
        // Replayed as SREM of what was popped: the random choice must not be made again.
        if !popped.isEmpty { ctx.propagate([Array("SREM".utf8), ctx.bytes(1)] + popped.map(\.array)) }
        if count == nil {
            popped[0].withBytes { ctx.reply.bulk($0) }
        } else {
            ctx.replySet(popped)
        }
    }

    static func srandmember(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 3 { throw .syntax }
        guard ctx.args.count == 3 else {
            guard let set = try ctx.read(SetKind.self, ctx.args[1]), !set.isEmpty else { return ctx.reply.null() }
            set[Int.random(in: 0..<set.count)].withBytes { ctx.reply.bulk($0) }
            return
        }
        let count = try RandomPick.count(ctx, 2)
        guard let set = try ctx.read(SetKind.self, ctx.args[1]) else { return ctx.reply.array(0) }
        if count < 0 {
            // A compact set is walked once, not once per pick.
            let members = set.isCompact ? set.members : []
            ctx.replyPicks(set.isEmpty ? 0 : Int(-count), from: set.count) { reply, index in
                (set.isCompact ? members[index] : set[index]).withBytes { reply.bulk($0) }
            }
            return
        }
        ctx.replyArray(RandomPick.indexes(count: count, size: set.count).map { set[$0] })
    }

    static func smove(_ ctx: inout CommandContext) throws(CommandError) {
        let args = ctx.args
        // A missing source answers 0 before the destination's type is checked, as in Redis.
        guard let isMember = try ctx.inspect(SetKind.self, args[1], database: ctx.db, { $0.contains(args[3]) }) else {
            return ctx.reply.integer(0)
        }
        _ = try ctx.exists(SetKind.self, args[2])
        guard isMember else { return ctx.reply.integer(0) }
        if args[1] == args[2] { return ctx.reply.integer(1) }
        let limits = ctx.limits
        _ = try ctx.modify(SetKind.self, args[1], create: false) { set throws(CommandError) in set.remove(args[3]) }
        ctx.modified(args[1], "srem", .set)
        let added = try ctx.modify(SetKind.self, args[2], create: true) { set throws(CommandError) in set.add(args.bytes(3), limits: limits) }
        // A destination that already held the member is not modified: Redis neither signals it (WATCH,
        // tracking) nor announces it.
        if added == true { ctx.modified(args[2], "sadd", .set) }
        ctx.dirty()
        ctx.reply.integer(1)
    }

    /// The sets named by arguments `range` (absent keys are empty sets); WRONGTYPE for other types.
    static func sets(_ ctx: CommandContext, _ range: Range<Int>) throws(CommandError) -> [SetValue?] {
        var result: [SetValue?] = []
        for index in range { result.append(try ctx.read(SetKind.self, ctx.args[index])) }
        return result
    }

    enum Operation {
        case inter, union, diff

        var storeEvent: StaticString {
            switch self {
            case .inter: "sinterstore"
            case .union: "sunionstore"
            case .diff: "sdiffstore"
            }
        }
    }

    static func combine(_ sets: [SetValue?], _ operation: Operation) -> [Bytes] {
        switch operation {
        case .inter:
            guard sets.allSatisfy({ $0 != nil }) else { return [] }
            let ordered = sets.compactMap { $0 }.sorted { $0.count < $1.count }
            guard let smallest = ordered.first else { return [] }
            return smallest.members.filter { member in ordered.dropFirst().allSatisfy { $0.contains(member) } }
        case .union:
            var seen = Set<Bytes>()
            var result: [Bytes] = []
            for set in sets.compactMap({ $0 }) {
                for member in set.members where seen.insert(member).inserted { result.append(member) }
            }
            return result
        case .diff:
            guard let first = sets.first, let first else { return [] }
            let others = sets.dropFirst().compactMap { $0 }
            return first.members.filter { member in !others.contains { $0.contains(member) } }
        }
    }

    static func sinter(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.replySet(combine(try sets(ctx, 1..<ctx.args.count), .inter))
    }

    static func sunion(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.replySet(combine(try sets(ctx, 1..<ctx.args.count), .union))
    }

    static func sdiff(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.replySet(combine(try sets(ctx, 1..<ctx.args.count), .diff))
    }

    static func store(_ ctx: inout CommandContext, _ operation: Operation) throws(CommandError) {
        let members = combine(try sets(ctx, 2..<ctx.args.count), operation)
        var set = SetValue()
        for member in members { set.add(member, limits: ctx.limits) }
        ctx.store(.set(set), at: ctx.args[1], event: operation.storeEvent, .set)
        ctx.reply.integer(set.count)
    }

    static func sinterstore(_ ctx: inout CommandContext) throws(CommandError) { try store(&ctx, .inter) }
    static func sunionstore(_ ctx: inout CommandContext) throws(CommandError) { try store(&ctx, .union) }
    static func sdiffstore(_ ctx: inout CommandContext) throws(CommandError) { try store(&ctx, .diff) }

    static func sintercard(_ ctx: inout CommandContext) throws(CommandError) {
        let numkeys = try ctx.args.integer(1, or: CommandError("ERR numkeys should be greater than 0"))
        guard numkeys > 0 else { throw CommandError("ERR numkeys should be greater than 0") }
        guard numkeys <= Int64(ctx.args.count - 2) else {
            throw CommandError("ERR Number of keys can't be greater than number of args")
        }
        let keysEnd = 2 + Int(numkeys)
        var limit: Int64 = 0
        var index = keysEnd
        while index < ctx.args.count {
            if ctx.args.isKeyword(index, "limit") && index + 1 < ctx.args.count {
                limit = try ListCommands.positiveCount(ctx, index + 1, "LIMIT can't be negative")
                index += 2
            } else {
                throw .syntax
            }
        }
        let count = combine(try sets(ctx, 2..<keysEnd), .inter).count
        ctx.reply.integer(limit > 0 ? min(count, Int(clamping: limit)) : count)
    }

    static func sscan(_ ctx: inout CommandContext) throws(CommandError) {
        try CollectionScan.run(&ctx, { ctx throws(CommandError) in
            try ctx.read(SetKind.self, ctx.args[1])?.members
        }, items: { scan, members in members.filter { scan.matches($0) } })
    }
}
