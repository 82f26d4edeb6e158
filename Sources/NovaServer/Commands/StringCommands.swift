import NIOCore
import NovaEngine
import NovaRESP

/// String commands: GET, SET and friends, counters, ranges.
enum StringCommands {
    /// Options of SET / GETEX (Redis's `parseExtendedStringArgumentsOrReply`).
    struct SetOptions {
        var nx = false, xx = false, get = false, keepTTL = false, persist = false
        var ex = false, px = false, exat = false, pxat = false
        var expireArgument: Int? = nil

        var hasExpire: Bool { ex || px || exat || pxat }
        var isMilliseconds: Bool { px || pxat }
        var isRelative: Bool { ex || px }
    }

    enum OptionMode { case set, getex }

    static func parseOptions(_ ctx: CommandContext, from start: Int, mode: OptionMode) throws(CommandError) -> SetOptions {
        var o = SetOptions()
        let args = ctx.args
        var j = start
        while j < args.count {
            let hasNext = j + 1 < args.count
            let isSet = mode == .set
            if isSet && args.isKeyword(j, "nx") && !o.xx {
                o.nx = true
            } else if isSet && args.isKeyword(j, "xx") && !o.nx {
                o.xx = true
            } else if isSet && args.isKeyword(j, "get") {
                o.get = true
            } else if isSet && args.isKeyword(j, "keepttl") && !o.persist && !o.hasExpire {
                o.keepTTL = true
            } else if !isSet && args.isKeyword(j, "persist") && !o.hasExpire && !o.keepTTL {
                o.persist = true
            } else if args.isKeyword(j, "ex") && !o.keepTTL && !o.persist && !o.exat && !o.px && !o.pxat && hasNext {
                o.ex = true
                o.expireArgument = j + 1
                j += 1
            } else if args.isKeyword(j, "px") && !o.keepTTL && !o.persist && !o.ex && !o.exat && !o.pxat && hasNext {
                o.px = true
                o.expireArgument = j + 1
                j += 1
            } else if args.isKeyword(j, "exat") && !o.keepTTL && !o.persist && !o.ex && !o.px && !o.pxat && hasNext {
                o.exat = true
                o.expireArgument = j + 1
                j += 1
            } else if args.isKeyword(j, "pxat") && !o.keepTTL && !o.persist && !o.ex && !o.exat && !o.px && hasNext {
                o.pxat = true
                o.expireArgument = j + 1
                j += 1
            } else {
                throw .syntax
            }
            j += 1
        }
        return o
    }

    /// The absolute expiry (Unix ms) an EX/PX/EXAT/PXAT argument asks for, validated as Redis does.
    static func expireTime(_ ctx: CommandContext, argument index: Int, milliseconds: Bool, relative: Bool) throws(CommandError) -> Int64 {
        var value = try ctx.args.integer(index)
        if value <= 0 || (!milliseconds && value > Int64.max / 1000) { throw .invalidExpire(ctx.spec.fullName) }
        if !milliseconds { value *= 1000 }
        if relative { value = value &+ ctx.now }
        if value <= 0 { throw .invalidExpire(ctx.spec.fullName) }
        return value
    }

    /// The string value at `ref`, or WRONGTYPE.
    static func stringValue(_ ctx: CommandContext, _ ref: EntryRef) throws(CommandError) -> Value {
        let value = ctx.keyspace.value(ctx.db, ref)
        guard value.isString else { throw .wrongType }
        return value
    }

    static func replyString(_ ctx: inout CommandContext, _ value: Value) {
        write(value, to: &ctx.reply)
    }

    /// Writes a string value as a bulk reply.
    static func write(_ value: borrowing Value, to reply: inout RESPWriter) {
        switch value {
        case .int(let number), .ownedInt(let number): reply.bulk(decimal: number)
        case .string(let bytes), .rawString(let bytes):
            // A large value goes out by reference (written with writev), not copied into the reply.
            if reply.acceptsReferences && bytes.count >= RESPWriter.referenceThreshold, let shared = bytes.sharedStorage {
                reply.bulk(reference: shared.bytes, owner: shared.owner)
            } else {
                bytes.withBytes { reply.bulk($0) }
            }
        default: reply.null()
        }
    }

    /// GET-style read: replies with the value or null; WRONGTYPE for other types.
    static func replyGet(_ ctx: inout CommandContext, key index: Int) throws(CommandError) {
        let keyspace = ctx.keyspace
        let db = ctx.db
        guard let ref = keyspace.lookupRead(db, ctx.args[index], ctx.readOptions) else {
            ctx.reply.null()
            return
        }
        let isString = keyspace.withValue(db, ref) { value -> Bool in
            guard value.isString else { return false }
            write(value, to: &ctx.reply)
            return true
        }
        if !isString { throw .wrongType }
    }

    static func get(_ ctx: inout CommandContext) throws(CommandError) {
        try replyGet(&ctx, key: 1)
    }

    /// The shared core of SET, SETNX, SETEX, PSETEX (Redis's `setGenericCommand`).
    /// `okReply` / `abortReply` replace +OK / null for SETNX.
    static func set(
        _ ctx: inout CommandContext, key: Int, value: Int, options: SetOptions,
        okReply: Int64? = nil, abortReply: Int64? = nil
    ) throws(CommandError) {
        var expireAt: Int64 = 0
        if let argument = options.expireArgument {
            expireAt = try expireTime(ctx, argument: argument, milliseconds: options.isMilliseconds, relative: options.isRelative)
        }
        if options.get { try replyGet(&ctx, key: key) }
        let condition: Keyspace.SetCondition = options.nx ? .ifAbsent : (options.xx ? .ifPresent : .always)
        // An EXAT/PXAT in the past stores a key that is already expired, as Redis 7.0 does: no reader ever
        // sees it, and it is counted as expired when the next access or the active cycle removes it.
        let stored = ctx.keyspace.setString(
            ctx.db, ctx.args[key], ctx.args[value], sharesIntegers: ctx.sharesIntegers, expireAt: expireAt,
            keepTTL: options.keepTTL, condition: condition)
        guard stored != nil else {
            if !options.get {
                if let abortReply { ctx.reply.integer(abortReply) } else { ctx.reply.null() }
            }
            return
        }
        ctx.dirty()
        ctx.modified(ctx.args[key], "set", .string)
        if options.hasExpire { ctx.notify(ctx.args[key], "expire", .generic) }
        if options.hasExpire {
            // Logged with the absolute time, so that replaying it later does not extend the TTL.
            ctx.propagate([Array("SET".utf8), ctx.bytes(key), ctx.bytes(value), Array("PXAT".utf8), RedisInteger.bytes(expireAt)])
        }
        if !options.get {
            if let okReply { ctx.reply.integer(okReply) } else { ctx.reply.ok() }
        }
    }

    /// SET's key is read only with GET (Redis's `setGetKeys`): RW access update with it, OW update without.
    @Sendable static func setKeyFlags(_ arguments: [ByteBuffer], _ key: KeyReference) -> KeySpecFlags {
        let returnsOld = arguments.dropFirst(3).contains { argument in
            argument.readableBytes == 3 && String(buffer: argument).lowercased() == "get"
        }
        return returnsOld ? [.rw, .access, .update] : [.ow, .update]
    }

    static func set(_ ctx: inout CommandContext) throws(CommandError) {
        let options = try parseOptions(ctx, from: 3, mode: .set)
        try set(&ctx, key: 1, value: 2, options: options)
    }

    static func setnx(_ ctx: inout CommandContext) throws(CommandError) {
        var options = SetOptions()
        options.nx = true
        try set(&ctx, key: 1, value: 2, options: options, okReply: 1, abortReply: 0)
    }

    static func setex(_ ctx: inout CommandContext) throws(CommandError) {
        var options = SetOptions()
        options.ex = true
        options.expireArgument = 2
        try set(&ctx, key: 1, value: 3, options: options)
    }

    static func psetex(_ ctx: inout CommandContext) throws(CommandError) {
        var options = SetOptions()
        options.px = true
        options.expireArgument = 2
        try set(&ctx, key: 1, value: 3, options: options)
    }

    static func getset(_ ctx: inout CommandContext) throws(CommandError) {
        try replyGet(&ctx, key: 1)
        ctx.keyspace.setString(ctx.db, ctx.args[1], ctx.args[2], sharesIntegers: ctx.sharesIntegers)
        ctx.dirty()
        ctx.modified(ctx.args[1], "set", .string)
    }

    static func getdel(_ ctx: inout CommandContext) throws(CommandError) {
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[1], ctx.readOptions) else {
            ctx.reply.null()
            return
        }
        replyString(&ctx, try stringValue(ctx, ref))
        ctx.keyspace.remove(ctx.db, ref)
        ctx.dirty()
        ctx.modified(ctx.args[1], "del", .generic)
        ctx.propagate([Array("DEL".utf8), ctx.bytes(1)])
    }

    static func getex(_ ctx: inout CommandContext) throws(CommandError) {
        let options = try parseOptions(ctx, from: 2, mode: .getex)
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[1], ctx.readOptions) else {
            ctx.reply.null()
            return
        }
        let value = try stringValue(ctx, ref)
        var expireAt: Int64 = 0
        if let argument = options.expireArgument {
            expireAt = try expireTime(ctx, argument: argument, milliseconds: options.isMilliseconds, relative: options.isRelative)
        }
        replyString(&ctx, value)
        if (options.exat || options.pxat) && expireAt <= ctx.now && !ctx.keyspace.expiryPaused {
            ctx.keyspace.remove(ctx.db, ref)
            ctx.dirty()
            ctx.modified(ctx.args[1], "del", .generic)
            ctx.propagate([Array("DEL".utf8), ctx.bytes(1)])
        } else if options.hasExpire {
            ctx.keyspace.setExpire(ctx.db, ref, expireAt)
            ctx.dirty()
            ctx.modified(ctx.args[1], "expire", .generic)
            ctx.propagate([Array("PEXPIREAT".utf8), ctx.bytes(1), RedisInteger.bytes(expireAt)])
        } else if options.persist && ctx.keyspace.expireAt(ctx.db, ref) != 0 {
            ctx.keyspace.setExpire(ctx.db, ref, 0)
            ctx.dirty()
            ctx.modified(ctx.args[1], "persist", .generic)
            ctx.propagate([Array("PERSIST".utf8), ctx.bytes(1)])
        }
    }

    static func mget(_ ctx: inout CommandContext) throws(CommandError) {
        let count = ctx.args.count - 1
        ctx.reply.array(count)
        var prefetched = 1
        for index in 1...count {
            if index >= prefetched { prefetched = ctx.prefetchKeys(from: index) }
            if let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[index], ctx.readOptions) {
                let value = ctx.keyspace.value(ctx.db, ref)
                if value.isString {
                    replyString(&ctx, value)
                    continue
                }
            }
            ctx.reply.null()
        }
    }

    static func mset(_ ctx: inout CommandContext) throws(CommandError) {
        guard ctx.args.count % 2 == 1 else { throw .arity(ctx.spec.fullName) }
        var prefetched = 1
        for index in stride(from: 1, to: ctx.args.count, by: 2) {
            if index >= prefetched { prefetched = ctx.prefetchKeys(from: index, step: 2) }
            ctx.keyspace.setString(ctx.db, ctx.args[index], ctx.args[index + 1], sharesIntegers: ctx.sharesIntegers)
            ctx.modified(ctx.args[index], "set", .string)
        }
        ctx.dirty((ctx.args.count - 1) / 2)
        ctx.reply.ok()
    }

    static func msetnx(_ ctx: inout CommandContext) throws(CommandError) {
        guard ctx.args.count % 2 == 1 else { throw .arity(ctx.spec.fullName) }
        for index in stride(from: 1, to: ctx.args.count, by: 2) where ctx.keyspace.lookupWrite(ctx.db, ctx.args[index]) != nil {
            ctx.reply.integer(0)
            return
        }
        for index in stride(from: 1, to: ctx.args.count, by: 2) {
            ctx.keyspace.setString(ctx.db, ctx.args[index], ctx.args[index + 1], sharesIntegers: ctx.sharesIntegers)
            ctx.modified(ctx.args[index], "set", .string)
        }
        ctx.dirty((ctx.args.count - 1) / 2)
        ctx.reply.integer(1)
    }

    /// Refuses a string that would grow beyond `proto-max-bulk-len` (overflow included).
    static func checkLength(_ ctx: CommandContext, _ size: Int64, adding extra: Int) throws(CommandError) {
        let (total, overflow) = size.addingReportingOverflow(Int64(extra))
        if overflow || total > Int64(ctx.server.config.settings.protoMaxBulkLength) { throw .stringTooLong }
    }

    static func append(_ ctx: inout CommandContext) throws(CommandError) {
        let db = ctx.db
        guard let ref = ctx.keyspace.lookupWrite(db, ctx.args[1]) else {
            let value = Value.string(from: ctx.args[2], sharesIntegers: ctx.sharesIntegers)
            ctx.keyspace.insert(db, Bytes(ctx.args[1]), value)
            ctx.dirty()
            ctx.modified(ctx.args[1], "append", .string)
            ctx.reply.integer(value.stringLength)
            return
        }
        // Only the length: a copy of the value held here would make the append copy the string.
        let currentLength = try stringValue(ctx, ref).stringLength
        let tail = ctx.args[2]
        try checkLength(ctx, Int64(currentLength), adding: tail.readableBytes)
        let length = ctx.keyspace.modifyValue(db, ref) { value -> Int in
            var bytes: Bytes
            switch value {
            case .rawString(let existing): bytes = existing
            case .string(let existing): bytes = existing
            default: bytes = value.withStringBytes { Bytes($0) }!
            }
            value = .int(0)
            tail.withUnsafeReadableBytes { bytes.append($0) }
            value = .rawString(bytes)
            return bytes.count
        }
        ctx.dirty()
        ctx.modified(ctx.args[1], "append", .string)
        ctx.reply.integer(length)
    }

    static func strlen(_ ctx: inout CommandContext) throws(CommandError) {
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[1], ctx.readOptions) else {
            ctx.reply.integer(0)
            return
        }
        ctx.reply.integer(try stringValue(ctx, ref).stringLength)
    }

    static func getrange(_ ctx: inout CommandContext) throws(CommandError) {
        var start = try ctx.args.integer(2)
        var end = try ctx.args.integer(3)
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[1], ctx.readOptions) else {
            ctx.reply.bulk(EmptyCollection<UInt8>())
            return
        }
        let value = try stringValue(ctx, ref)
        value.withStringBytes { bytes in
            let length = Int64(bytes.count)
            if start < 0 && end < 0 && start > end {
                ctx.reply.bulk(EmptyCollection<UInt8>())
                return
            }
            if start < 0 { start += length }
            if end < 0 { end += length }
            if start < 0 { start = 0 }
            if end < 0 { end = 0 }
            if end >= length { end = length - 1 }
            if start > end || length == 0 {
                ctx.reply.bulk(EmptyCollection<UInt8>())
            } else {
                ctx.reply.bulk(UnsafeRawBufferPointer(rebasing: bytes[Int(start)...Int(end)]))
            }
        }
    }

    static func setrange(_ ctx: inout CommandContext) throws(CommandError) {
        let offset = try ctx.args.integer(2)
        if offset < 0 { throw CommandError("ERR offset is out of range") }
        let patch = ctx.args[3]
        let db = ctx.db
        guard let ref = ctx.keyspace.lookupWrite(db, ctx.args[1]) else {
            if patch.readableBytes == 0 {
                ctx.reply.integer(0)
                return
            }
            try checkLength(ctx, offset, adding: patch.readableBytes)
            var bytes = Bytes()
            write(patch, at: Int(offset), into: &bytes)
            ctx.keyspace.insert(db, Bytes(ctx.args[1]), .rawString(bytes))
            ctx.dirty()
            ctx.modified(ctx.args[1], "setrange", .string)
            ctx.reply.integer(bytes.count)
            return
        }
        // Only the length: a copy of the value held here would make the write below copy the string.
        let currentLength = try stringValue(ctx, ref).stringLength
        if patch.readableBytes == 0 {
            ctx.reply.integer(currentLength)
            return
        }
        try checkLength(ctx, offset, adding: patch.readableBytes)
        let length = ctx.keyspace.modifyValue(db, ref) { value -> Int in
            var bytes: Bytes
            switch value {
            case .rawString(let existing), .string(let existing): bytes = existing
            default: bytes = value.withStringBytes { Bytes($0) }!
            }
            // The value lets go of its block first, so that the patch is written in place when nothing
            // else (a snapshot) holds it.
            value = .int(0)
            write(patch, at: Int(offset), into: &bytes)
            value = .rawString(bytes)
            return bytes.count
        }
        ctx.dirty()
        ctx.modified(ctx.args[1], "setrange", .string)
        ctx.reply.integer(length)
    }

    /// Writes `patch` at `offset`, zero-filling any gap past the end.
    private static func write(_ patch: ByteBuffer, at offset: Int, into bytes: inout Bytes) {
        bytes.withMutableBytes(count: max(bytes.count, offset + patch.readableBytes)) { contents in
            patch.withUnsafeReadableBytes { source in
                if source.count > 0 { (contents.baseAddress! + offset).copyMemory(from: source.baseAddress!, byteCount: source.count) }
            }
        }
    }

    /// INCR / DECR / INCRBY / DECRBY (Redis's `incrDecrCommand`); the expiry is kept.
    static func incrementBy(_ ctx: inout CommandContext, _ increment: Int64) throws(CommandError) {
        let db = ctx.db
        let ref = ctx.keyspace.lookupWrite(db, ctx.args[1])
        var current: Int64 = 0
        if let ref {
            let value = try stringValue(ctx, ref)
            switch value {
            case .int(let number), .ownedInt(let number): current = number
            default:
                guard let number = value.withStringBytes({ RedisInteger.parse($0) }) ?? nil else { throw .notInteger }
                current = number
            }
        }
        let (result, overflow) = current.addingReportingOverflow(increment)
        if overflow { throw .overflow }
        if let ref {
            ctx.keyspace.setValue(db, ref, .integer(result, sharesIntegers: ctx.sharesIntegers))
        } else {
            ctx.keyspace.insert(db, Bytes(ctx.args[1]), .integer(result, sharesIntegers: ctx.sharesIntegers))
        }
        ctx.dirty()
        ctx.modified(ctx.args[1], "incrby", .string)
        ctx.reply.integer(result)
    }

    static func incr(_ ctx: inout CommandContext) throws(CommandError) { try incrementBy(&ctx, 1) }
    static func decr(_ ctx: inout CommandContext) throws(CommandError) { try incrementBy(&ctx, -1) }

    static func incrby(_ ctx: inout CommandContext) throws(CommandError) {
        try incrementBy(&ctx, try ctx.args.integer(2))
    }

    static func decrby(_ ctx: inout CommandContext) throws(CommandError) {
        let amount = try ctx.args.integer(2)
        if amount == Int64.min { throw CommandError("ERR decrement would overflow") }
        try incrementBy(&ctx, -amount)
    }

    static func incrbyfloat(_ ctx: inout CommandContext) throws(CommandError) {
        let db = ctx.db
        let ref = ctx.keyspace.lookupWrite(db, ctx.args[1])
        var current: Float80 = 0
        if let ref {
            let value = try stringValue(ctx, ref)
            switch value {
            case .int(let number), .ownedInt(let number): current = Float80(number)
            default:
                guard let number = value.withStringBytes({ RedisFloat.parseLongDouble(UnsafeRawBufferPointer($0)) }) ?? nil
                else { throw .notFloat }
                current = number
            }
        }
        guard let increment = RedisFloat.parseLongDouble(ctx.args[2].readableBytesView) else { throw .notFloat }
        let result = current + increment
        if result.isNaN || result.isInfinite { throw .notFloatOrNaN }
        guard let text = RedisFloat.formatHuman(result) else { throw .notFloat }
        let stored = Value.string(Bytes(text))
        if let ref {
            ctx.keyspace.setValue(db, ref, stored)
        } else {
            ctx.keyspace.insert(db, Bytes(ctx.args[1]), stored)
        }
        ctx.dirty()
        ctx.modified(ctx.args[1], "incrbyfloat", .string)
        // Logged as the value itself: float arithmetic must not be redone on replay.
        ctx.propagate([Array("SET".utf8), ctx.bytes(1), text, Array("KEEPTTL".utf8)])
        ctx.reply.bulk(text)
    }
}

// MARK: LCS

extension StringCommands {
    /// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN] (Redis 7.0's `lcsCommand`).
    static func lcs(_ ctx: inout CommandContext) throws(CommandError) {
        // Both keys are looked up before either is checked, as Redis does (hits and misses count both).
        let values = (1...2).map { index in
            ctx.keyspace.lookupRead(ctx.db, ctx.args[index], ctx.readOptions).map { ctx.keyspace.value(ctx.db, $0) }
        }
        guard values.allSatisfy({ $0?.isString ?? true }) else {
            throw CommandError("ERR The specified keys must contain string values")
        }
        let strings = values.map { $0?.withStringBytes { Array($0) } ?? [] }
        var wantsLength = false, wantsIndexes = false, withMatchLength = false
        var minimumMatch: Int64 = 0
        var index = 3
        while index < ctx.args.count {
            if ctx.args.isKeyword(index, "idx") {
                wantsIndexes = true
            } else if ctx.args.isKeyword(index, "len") {
                wantsLength = true
            } else if ctx.args.isKeyword(index, "withmatchlen") {
                withMatchLength = true
            } else if ctx.args.isKeyword(index, "minmatchlen") && index + 1 < ctx.args.count {
                minimumMatch = max(0, try ctx.args.integer(index + 1))
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }
        if wantsIndexes && wantsLength {
            throw CommandError("ERR If you want both the length and indexes, please just use IDX.")
        }
        let (a, b) = (strings[0], strings[1])
        if a.count >= Int(UInt32.max) - 1 || b.count >= Int(UInt32.max) - 1 {
            throw CommandError("ERR String too long for LCS")
        }
        if LongestCommonSubsequence.tableBytes(a.count, b.count) > ctx.server.config.settings.protoMaxBulkLength {
            throw CommandError("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
        }
        let result = LongestCommonSubsequence(a, b, computeSequence: wantsIndexes || !wantsLength)
        if wantsIndexes {
            let matches = result.matches.filter { minimumMatch == 0 || Int64($0.length) >= minimumMatch }
            ctx.reply.map(2)
            ctx.reply.bulk("matches")
            ctx.reply.array(matches.count)
            for match in matches {
                ctx.reply.array(withMatchLength ? 3 : 2)
                ctx.reply.array(2)
                ctx.reply.integer(match.a.lowerBound)
                ctx.reply.integer(match.a.upperBound)
                ctx.reply.array(2)
                ctx.reply.integer(match.b.lowerBound)
                ctx.reply.integer(match.b.upperBound)
                if withMatchLength { ctx.reply.integer(match.length) }
            }
            ctx.reply.bulk("len")
            ctx.reply.integer(result.length)
        } else if wantsLength {
            ctx.reply.integer(result.length)
        } else {
            ctx.reply.bulk(result.bytes)
        }
    }
}
