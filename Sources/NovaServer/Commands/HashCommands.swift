import NIOCore
import NovaEngine
import NovaRESP

/// Hash commands.
enum HashCommands {
    static func hset(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(try setFields(&ctx))
    }

    /// HMSET: HSET's work, answered OK.
    static func hmset(_ ctx: inout CommandContext) throws(CommandError) {
        _ = try setFields(&ctx)
        ctx.reply.ok()
    }

    /// Sets the field/value pairs of HSET and HMSET; returns how many fields are new.
    private static func setFields(_ ctx: inout CommandContext) throws(CommandError) -> Int {
        guard ctx.args.count % 2 == 0 else { throw .arity(ctx.spec.fullName) }
        let args = ctx.args
        let limits = ctx.limits
        let added = try ctx.modify(HashKind.self, args[1], create: true) { hash throws(CommandError) -> Int in
            var added = 0
            for index in stride(from: 2, to: args.count, by: 2) where hash.set(args.bytes(index), args.bytes(index + 1), limits: limits) {
                added += 1
            }
            return added
        } ?? 0
        ctx.dirty(max(1, (args.count - 2) / 2))
        ctx.modified(args[1], "hset", .hash)
        return added
    }

    static func hsetnx(_ ctx: inout CommandContext) throws(CommandError) {
        let args = ctx.args
        let limits = ctx.limits
        if let existing = try ctx.read(HashKind.self, args[1], touch: false), existing.value(args[2]) != nil {
            ctx.reply.integer(0)
            return
        }
        _ = try ctx.modify(HashKind.self, args[1], create: true) { hash throws(CommandError) in
            hash.set(args.bytes(2), args.bytes(3), limits: limits)
        }
        ctx.dirty()
        ctx.modified(args[1], "hset", .hash)
        ctx.reply.integer(1)
    }

    static func hget(_ ctx: inout CommandContext) throws(CommandError) {
        guard let value = try ctx.read(HashKind.self, ctx.args[1])?.value(ctx.args[2]) else {
            ctx.reply.null()
            return
        }
        value.withBytes { ctx.reply.bulk($0) }
    }

    static func hmget(_ ctx: inout CommandContext) throws(CommandError) {
        let hash = try ctx.read(HashKind.self, ctx.args[1])
        ctx.reply.array(ctx.args.count - 2)
        for index in 2..<ctx.args.count {
            if let value = hash?.value(ctx.args[index]) { value.withBytes { ctx.reply.bulk($0) } } else { ctx.reply.null() }
        }
    }

    static func hgetall(_ ctx: inout CommandContext) throws(CommandError) {
        let fields = try ctx.read(HashKind.self, ctx.args[1])?.fields ?? []
        ctx.replyPairs(fields.map { ($0.key, $0.value) })
    }

    static func hkeys(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.replyArray(try ctx.read(HashKind.self, ctx.args[1])?.fields.map(\.key) ?? [])
    }

    static func hvals(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.replyArray(try ctx.read(HashKind.self, ctx.args[1])?.fields.map(\.value) ?? [])
    }

    static func hdel(_ ctx: inout CommandContext) throws(CommandError) {
        let args = ctx.args
        let removed = try ctx.modify(HashKind.self, args[1], create: false) { hash throws(CommandError) -> Int in
            var removed = 0
            for index in 2..<args.count where hash.remove(args[index]) { removed += 1 }
            return removed
        } ?? 0
        ctx.dirty(removed)
        if removed > 0 { ctx.modified(args[1], "hdel", .hash) }
        ctx.reply.integer(removed)
    }

    static func hexists(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(try ctx.read(HashKind.self, ctx.args[1])?.value(ctx.args[2]) != nil ? 1 : 0)
    }

    static func hlen(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(try ctx.read(HashKind.self, ctx.args[1])?.count ?? 0)
    }

    static func hstrlen(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(try ctx.read(HashKind.self, ctx.args[1])?.value(ctx.args[2])?.count ?? 0)
    }

    static func hincrby(_ ctx: inout CommandContext) throws(CommandError) {
        let increment = try ctx.args.integer(3)
        let args = ctx.args
        let limits = ctx.limits
        let result = try ctx.modify(HashKind.self, args[1], create: true) { hash throws(CommandError) -> Int64 in
            var current: Int64 = 0
            if let existing = hash.value(args[2]) {
                guard let number = existing.withBytes({ RedisInteger.parse($0) }) else {
                    throw CommandError("ERR hash value is not an integer")
                }
                current = number
            }
            let (sum, overflow) = current.addingReportingOverflow(increment)
            if overflow { throw .overflow }
            hash.set(args.bytes(2), Bytes(RedisInteger.bytes(sum)), limits: limits)
            return sum
        }!
        ctx.dirty()
        ctx.modified(args[1], "hincrby", .hash)
        ctx.reply.integer(result)
    }

    static func hincrbyfloat(_ ctx: inout CommandContext) throws(CommandError) {
        guard let increment = RedisFloat.parseLongDouble(ctx.args[3].readableBytesView) else { throw .notFloat }
        if increment.isNaN || increment.isInfinite { throw CommandError("ERR value is NaN or Infinity") }
        let args = ctx.args
        let limits = ctx.limits
        let text = try ctx.modify(HashKind.self, args[1], create: true) { hash throws(CommandError) -> [UInt8] in
            var current: Float80 = 0
            if let existing = hash.value(args[2]) {
                guard let number = existing.withBytes({ RedisFloat.parseLongDouble($0) }) else {
                    throw CommandError("ERR hash value is not a float")
                }
                current = number
            }
            let sum = current + increment
            if sum.isNaN || sum.isInfinite { throw .notFloatOrNaN }
            guard let text = RedisFloat.formatHuman(sum) else { throw .notFloat }
            hash.set(args.bytes(2), Bytes(text), limits: limits)
            return text
        }!
        ctx.dirty()
        ctx.modified(args[1], "hincrbyfloat", .hash)
        ctx.propagate([Array("HSET".utf8), ctx.bytes(1), ctx.bytes(2), text])
        ctx.reply.bulk(text)
    }

    static func hrandfield(_ ctx: inout CommandContext) throws(CommandError) {
        var count: Int64? = nil
        var withValues = false
        if ctx.args.count >= 3 {
            count = try RandomPick.count(ctx, 2)
            if ctx.args.count == 4 {
                guard ctx.args.isKeyword(3, "withvalues") else { throw .syntax }
                withValues = true
                if let count, count < -(Int64.max / 2) || count > Int64.max / 2 { throw CommandError("ERR value is out of range") }
            } else if ctx.args.count > 4 {
                throw .syntax
            }
        }
        let hash = try ctx.read(HashKind.self, ctx.args[1])
        guard let count else {
            guard let hash, hash.count > 0 else { return ctx.reply.null() }
            hash.field(at: Int.random(in: 0..<hash.count)).key.withBytes { ctx.reply.bulk($0) }
            return
        }
        let fields = hash?.fields ?? []
        if count < 0 {
            let picks = fields.isEmpty ? 0 : Int(-count)
            let pairs = withValues && ctx.reply.version == .v3
            ctx.replyPicks(picks, from: fields.count, length: withValues && !pairs ? picks * 2 : picks) { reply, index in
                if pairs { reply.array(2) }
                fields[index].key.withBytes { reply.bulk($0) }
                if withValues { fields[index].value.withBytes { reply.bulk($0) } }
            }
            return
        }
        let picked = RandomPick.indexes(count: count, size: fields.count)
        if withValues {
            if ctx.reply.version == .v3 {
                ctx.reply.array(picked.count)
                for index in picked {
                    ctx.reply.array(2)
                    fields[index].key.withBytes { ctx.reply.bulk($0) }
                    fields[index].value.withBytes { ctx.reply.bulk($0) }
                }
            } else {
                ctx.reply.array(picked.count * 2)
                for index in picked {
                    fields[index].key.withBytes { ctx.reply.bulk($0) }
                    fields[index].value.withBytes { ctx.reply.bulk($0) }
                }
            }
        } else {
            ctx.replyArray(picked.map { fields[$0].key })
        }
    }

    static func hscan(_ ctx: inout CommandContext) throws(CommandError) {
        try CollectionScan.run(&ctx, { ctx throws(CommandError) in
            try ctx.read(HashKind.self, ctx.args[1])?.fields.flatMap { [$0.key, $0.value] }
        }, items: { scan, flat in
            stride(from: 0, to: flat.count, by: 2).filter { scan.matches(flat[$0]) }.flatMap { [flat[$0], flat[$0 + 1]] }
        })
    }
}

/// Random choices for HRANDFIELD / SRANDMEMBER / ZRANDMEMBER with Redis's count semantics: a positive
/// count picks distinct elements (at most all of them), a negative count picks |count| with repetition.
enum RandomPick {
    /// The count argument: any integer but LONG_MIN, as Redis's `getRangeLongFromObjectOrReply`.
    static func count(_ ctx: CommandContext, _ index: Int) throws(CommandError) -> Int64 {
        let count = try ctx.args.integer(index)
        if count == Int64.min {
            throw CommandError("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        }
        return count
    }

    /// Distinct indexes for a positive count (at most `size` of them). Negative counts pick with
    /// repetition, a reply the dataset does not bound: `CommandContext.replyPicks` streams those.
    static func indexes(count: Int64, size: Int) -> [Int] {
        precondition(count >= 0)
        guard size > 0, count != 0 else { return [] }
        if count >= Int64(size) { return Array(0..<size) }
        var chosen = Set<Int>()
        var order: [Int] = []
        while order.count < Int(count) {
            let index = Int.random(in: 0..<size)
            if chosen.insert(index).inserted { order.append(index) }
        }
        return order
    }
}
