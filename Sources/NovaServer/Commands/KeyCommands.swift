import NIOCore
import NovaEngine
import NovaRESP

/// Commands on keys of any type: existence, deletion, renaming, expiry, iteration, databases.
enum KeyCommands {
    static func del(_ ctx: inout CommandContext) throws(CommandError) {
        remove(&ctx, lazily: ctx.keyspace.lazyFreeing.contains(.userDelete))
    }

    /// UNLINK: DEL that frees big values on another thread.
    static func unlink(_ ctx: inout CommandContext) throws(CommandError) {
        remove(&ctx, lazily: true)
    }

    private static func remove(_ ctx: inout CommandContext, lazily: Bool) {
        var deleted = 0
        var prefetched = 1
        for index in 1..<ctx.args.count {
            if index >= prefetched { prefetched = ctx.prefetchKeys(from: index) }
            guard ctx.keyspace.delete(ctx.db, ctx.args[index], lazily: lazily) else { continue }
            ctx.modified(ctx.args[index], "del", .generic)
            deleted += 1
        }
        ctx.dirty(deleted)
        ctx.reply.integer(deleted)
    }

    static func exists(_ ctx: inout CommandContext) throws(CommandError) {
        var count = 0
        var prefetched = 1
        for index in 1..<ctx.args.count {
            if index >= prefetched { prefetched = ctx.prefetchKeys(from: index) }
            if ctx.keyspace.lookupRead(ctx.db, ctx.args[index], [.noTouch]) != nil { count += 1 }
        }
        ctx.reply.integer(count)
    }

    static func touch(_ ctx: inout CommandContext) throws(CommandError) {
        var count = 0
        for index in 1..<ctx.args.count where ctx.keyspace.lookupRead(ctx.db, ctx.args[index]) != nil {
            count += 1
        }
        ctx.reply.integer(count)
    }

    static func type(_ ctx: inout CommandContext) throws(CommandError) {
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[1], [.noTouch]) else {
            ctx.reply.simpleString("none")
            return
        }
        ctx.reply.simpleString(ctx.keyspace.value(ctx.db, ref).typeName)
    }

    static func rename(_ ctx: inout CommandContext) throws(CommandError) { try rename(&ctx, onlyIfAbsent: false) }
    static func renamenx(_ ctx: inout CommandContext) throws(CommandError) { try rename(&ctx, onlyIfAbsent: true) }

    static func rename(_ ctx: inout CommandContext, onlyIfAbsent: Bool) throws(CommandError) {
        let db = ctx.db
        let sameKey = ctx.args[1] == ctx.args[2]
        guard let source = ctx.keyspace.lookupWrite(db, ctx.args[1]) else { throw .noSuchKey }
        if sameKey {
            if onlyIfAbsent { ctx.reply.integer(0) } else { ctx.reply.ok() }
            return
        }
        if ctx.keyspace.lookupWrite(db, ctx.args[2]) != nil {
            if onlyIfAbsent {
                ctx.reply.integer(0)
                return
            }
            ctx.keyspace.delete(db, ctx.args[2])
        }
        // Removing the destination may have moved the source; find it again.
        let entry = ctx.keyspace.remove(db, ctx.keyspace.lookupWrite(db, ctx.args[1], [.noTouch]) ?? source)
        ctx.keyspace.insert(db, entry: Entry(key: Bytes(ctx.args[2]), value: entry.value, expireAt: entry.expireAt, access: entry.access))
        ctx.server.signalKeyReady(db, ctx.args[2])
        ctx.dirty()
        ctx.modified(ctx.args[1], "rename_from", .generic)
        ctx.modified(ctx.args[2], "rename_to", .generic)
        if onlyIfAbsent { ctx.reply.integer(1) } else { ctx.reply.ok() }
    }

    static func keys(_ ctx: inout CommandContext) throws(CommandError) {
        let pattern = ctx.args[1]
        let matchAll = pattern.readableBytes == 1 && pattern.getInteger(at: pattern.readerIndex, as: UInt8.self) == UInt8(ascii: "*")
        var found: [Bytes] = []
        let keyspace = ctx.keyspace
        pattern.withUnsafeReadableBytes { pattern in
            keyspace.databases[ctx.db].forEach { entry in
                if keyspace.isExpired(entry) { return }
                if matchAll || entry.key.withBytes({ RedisGlob.matches(pattern, $0) }) { found.append(entry.key) }
            }
        }
        ctx.reply.array(found.count)
        for key in found { key.withBytes { ctx.reply.bulk($0) } }
    }

    /// Redis's SCAN cursor syntax (`strtoul`): optional sign, digits, nothing else.
    static func parseCursor(_ buffer: ByteBuffer) throws(CommandError) -> UInt64 {
        var view = buffer.readableBytesView[...]
        // strtoull: a sign alone is no number ("-" and "+" are invalid, the empty string is 0).
        if view.count == 1, view.first == UInt8(ascii: "+") || view.first == UInt8(ascii: "-") {
            throw CommandError("ERR invalid cursor")
        }
        var negative = false
        if let first = view.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            negative = first == UInt8(ascii: "-")
            view = view.dropFirst()
        }
        var value: UInt64 = 0
        for byte in view {
            guard byte >= 48 && byte <= 57 else { throw CommandError("ERR invalid cursor") }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(byte - 48))
            if o1 || o2 { throw CommandError("ERR invalid cursor") }
            value = sum
        }
        return negative ? 0 &- value : value
    }

    static func scan(_ ctx: inout CommandContext) throws(CommandError) {
        let cursor = try parseCursor(ctx.args[1])
        let options = try ScanOptions(ctx, from: 2, allowsType: true)
        let count = options.count
        let db = ctx.db
        let keyspace = ctx.keyspace
        var segment = Int(clamping: cursor)
        var collected: [Entry] = []
        if cursor < UInt64(Database.segmentCount) {
            while segment < Database.segmentCount {
                collected.append(contentsOf: keyspace.databases[db].entries(inSegment: segment))
                segment += 1
                if collected.count >= count { break }
            }
        } else {
            segment = Database.segmentCount
        }
        var keys: [Bytes] = []
        keys.reserveCapacity(collected.count)
        for entry in collected {
            if !options.matches(entry.key) { continue }
            if let type = options.type, entry.value.typeName.description != type { continue }
            if keyspace.isExpired(entry) {
                // Like Redis, expire what the scan meets.
                _ = keyspace.lookupWrite(db, entry.key, [.noTouch])
                continue
            }
            keys.append(entry.key)
        }
        ctx.reply.array(2)
        ctx.reply.bulk(decimal: segment >= Database.segmentCount ? 0 : Int64(segment))
        ctx.reply.array(keys.count)
        for key in keys { key.withBytes { ctx.reply.bulk($0) } }
    }

    static func randomkey(_ ctx: inout CommandContext) throws(CommandError) {
        guard let key = ctx.keyspace.randomKey(ctx.db) else {
            ctx.reply.null()
            return
        }
        key.withBytes { ctx.reply.bulk($0) }
    }

    // MARK: Expiry

    static func expire(_ ctx: inout CommandContext) throws(CommandError) { try expire(&ctx, base: ctx.now, seconds: true) }
    static func pexpire(_ ctx: inout CommandContext) throws(CommandError) { try expire(&ctx, base: ctx.now, seconds: false) }
    static func expireat(_ ctx: inout CommandContext) throws(CommandError) { try expire(&ctx, base: 0, seconds: true) }
    static func pexpireat(_ ctx: inout CommandContext) throws(CommandError) { try expire(&ctx, base: 0, seconds: false) }

    /// EXPIRE and friends with NX / XX / GT / LT (Redis's `expireGenericCommand`).
    static func expire(_ ctx: inout CommandContext, base: Int64, seconds: Bool) throws(CommandError) {
        var nx = false, xx = false, gt = false, lt = false
        for index in 3..<max(3, ctx.args.count) {
            if ctx.args.isKeyword(index, "nx") { nx = true }
            else if ctx.args.isKeyword(index, "xx") { xx = true }
            else if ctx.args.isKeyword(index, "gt") { gt = true }
            else if ctx.args.isKeyword(index, "lt") { lt = true }
            else { throw CommandError("ERR Unsupported option \(raw: ctx.args.printable(index))") }
        }
        if nx && (xx || gt || lt) { throw CommandError("ERR NX and XX, GT or LT options at the same time are not compatible") }
        if gt && lt { throw CommandError("ERR GT and LT options at the same time are not compatible") }
        var when = try ctx.args.integer(2)
        if seconds {
            if when > Int64.max / 1000 || when < Int64.min / 1000 { throw .invalidExpire(ctx.spec.fullName) }
            when *= 1000
        }
        if when > Int64.max - base { throw .invalidExpire(ctx.spec.fullName) }
        when += base
        let db = ctx.db
        guard let ref = ctx.keyspace.lookupWrite(db, ctx.args[1]) else {
            ctx.reply.integer(0)
            return
        }
        let current = ctx.keyspace.expireAt(db, ref)
        let hasExpire = current != 0
        if (nx && hasExpire) || (xx && !hasExpire) || (gt && (!hasExpire || when <= current)) || (lt && hasExpire && when >= current) {
            ctx.reply.integer(0)
            return
        }
        // While replaying the AOF a past time sets the expiry instead, as Redis does while loading.
        if when <= ctx.now && !ctx.keyspace.expiryPaused {
            ctx.keyspace.remove(db, ref)
            ctx.modified(ctx.args[1], "del", .generic)
            ctx.propagate([Array("DEL".utf8), ctx.bytes(1)])
        } else {
            ctx.keyspace.setExpire(db, ref, when)
            ctx.modified(ctx.args[1], "expire", .generic)
            ctx.propagate([Array("PEXPIREAT".utf8), ctx.bytes(1), RedisInteger.bytes(when)])
        }
        ctx.dirty()
        ctx.reply.integer(1)
    }

    /// TTL, PTTL, EXPIRETIME, PEXPIRETIME.
    static func ttl(_ ctx: inout CommandContext, milliseconds: Bool, absolute: Bool) {
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[1], [.noTouch]) else {
            ctx.reply.integer(-2)
            return
        }
        let expireAt = ctx.keyspace.expireAt(ctx.db, ref)
        guard expireAt != 0 else {
            ctx.reply.integer(-1)
            return
        }
        let value = max(0, absolute ? expireAt : expireAt - ctx.now)
        // Rounded in unsigned arithmetic, as Redis ends up doing for expiries near Int64.max.
        ctx.reply.integer(milliseconds ? value : Int64((UInt64(value) + 500) / 1000))
    }

    static func ttl(_ ctx: inout CommandContext) throws(CommandError) { ttl(&ctx, milliseconds: false, absolute: false) }
    static func pttl(_ ctx: inout CommandContext) throws(CommandError) { ttl(&ctx, milliseconds: true, absolute: false) }
    static func expiretime(_ ctx: inout CommandContext) throws(CommandError) { ttl(&ctx, milliseconds: false, absolute: true) }
    static func pexpiretime(_ ctx: inout CommandContext) throws(CommandError) { ttl(&ctx, milliseconds: true, absolute: true) }

    static func persist(_ ctx: inout CommandContext) throws(CommandError) {
        guard let ref = ctx.keyspace.lookupWrite(ctx.db, ctx.args[1]),
              ctx.keyspace.expireAt(ctx.db, ref) != 0 else {
            ctx.reply.integer(0)
            return
        }
        ctx.keyspace.setExpire(ctx.db, ref, 0)
        ctx.dirty()
        ctx.modified(ctx.args[1], "persist", .generic)
        ctx.reply.integer(1)
    }

    // MARK: Databases

    /// A database index argument: an `int` (else `error`), within range (else DB index is out of range).
    /// A database number as Redis's `getIntFromObjectOrReply` reads it: `error` (if given) for anything
    /// that is not an int, else the generic texts, then the range of this server's databases.
    static func databaseIndex(_ ctx: CommandContext, _ index: Int, error: CommandError? = nil) throws(CommandError) -> Int {
        let value = try ctx.args.integer(index, or: error ?? .notInteger)
        guard value >= Int64(Int32.min), value <= Int64(Int32.max) else {
            throw error ?? CommandError("ERR value is out of range, value must between -2147483648 and 2147483647")
        }
        guard value >= 0, value < Int64(ctx.keyspace.databases.count) else { throw .dbIndexOutOfRange }
        return Int(value)
    }

    static func move(_ ctx: inout CommandContext) throws(CommandError) {
        let target = try databaseIndex(ctx, 2)
        let source = ctx.db
        if target == source { throw CommandError("ERR source and destination objects are the same") }
        guard let ref = ctx.keyspace.lookupWrite(source, ctx.args[1]) else {
            ctx.reply.integer(0)
            return
        }
        if ctx.keyspace.lookupWrite(target, ctx.args[1]) != nil {
            ctx.reply.integer(0)
            return
        }
        let entry = ctx.keyspace.remove(source, ref)
        ctx.keyspace.insert(target, entry: entry)
        ctx.server.signalKeyReady(target, ctx.args[1])
        ctx.dirty()
        ctx.modified(ctx.args[1], "move_from", .generic, database: source)
        ctx.modified(ctx.args[1], "move_to", .generic, database: target)
        ctx.reply.integer(1)
    }

    static func copy(_ ctx: inout CommandContext) throws(CommandError) {
        var target = ctx.db
        var replace = false
        var index = 3
        while index < ctx.args.count {
            if ctx.args.isKeyword(index, "replace") {
                replace = true
            } else if ctx.args.isKeyword(index, "db") && index + 1 < ctx.args.count {
                target = try databaseIndex(ctx, index + 1)
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }
        let source = ctx.db
        if target == source && ctx.args[1] == ctx.args[2] {
            throw CommandError("ERR source and destination objects are the same")
        }
        guard let ref = ctx.keyspace.lookupRead(source, ctx.args[1], ctx.readOptions) else {
            ctx.reply.integer(0)
            return
        }
        let entry = ctx.keyspace.entry(source, ref)
        if ctx.keyspace.lookupWrite(target, ctx.args[2]) != nil {
            guard replace else {
                ctx.reply.integer(0)
                return
            }
            ctx.keyspace.delete(target, ctx.args[2])
        }
        ctx.keyspace.insert(target, entry: Entry(key: Bytes(ctx.args[2]), value: entry.value.duplicated, expireAt: entry.expireAt, access: ctx.keyspace.freshAccess))
        ctx.server.signalKeyReady(target, ctx.args[2])
        ctx.dirty()
        ctx.modified(ctx.args[2], "copy_to", .generic, database: target)
        ctx.reply.integer(1)
    }

    static func dbsize(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(ctx.keyspace.databases[ctx.db].count)
    }

    /// The optional ASYNC / SYNC argument of FLUSHDB / FLUSHALL.
    /// FLUSHALL/FLUSHDB [SYNC | ASYNC]: whether to free lazily (without either, `lazyfree-lazy-user-flush`).
    static func flushesLazily(_ ctx: CommandContext) throws(CommandError) -> Bool {
        if ctx.args.count > 2 { throw .syntax }
        if ctx.args.count == 1 { return ctx.keyspace.lazyFreeing.contains(.userFlush) }
        if ctx.args.isKeyword(1, "async") { return true }
        if ctx.args.isKeyword(1, "sync") { return false }
        throw .syntax
    }

    static func flushdb(_ ctx: inout CommandContext) throws(CommandError) {
        let lazily = try flushesLazily(ctx)
        ctx.server.databaseReplaced(ctx.db)
        ctx.server.invalidateAllTracked()
        ctx.dirty(ctx.keyspace.flush(ctx.db, lazily: lazily))
        // Logged even when the database was empty, as Redis 7.0 does.
        ctx.propagateAsSent()
        ctx.reply.ok()
    }

    static func flushall(_ ctx: inout CommandContext) throws(CommandError) {
        let lazily = try flushesLazily(ctx)
        ctx.dirty(ctx.keyspace.keyCount)
        for database in ctx.keyspace.databases.indices { ctx.server.databaseReplaced(database) }
        ctx.server.invalidateAllTracked()
        ctx.keyspace.flushAll(lazily: lazily)
        // Like Redis, a background save in progress is abandoned (its image holds the flushed keys), and
        // with save points configured FLUSHALL leaves an empty snapshot behind at once.
        ctx.server.abandonBackgroundSave()
        if !ctx.server.config.settings.saveRules.isEmpty {
            try? ctx.server.saveSynchronously()
            ctx.dirty()
        }
        // Logged whatever the counters say: the save above resets them.
        ctx.propagateAsSent()
        ctx.reply.ok()
    }

    static func swapdb(_ ctx: inout CommandContext) throws(CommandError) {
        let first = try databaseIndex(ctx, 1, error: CommandError("ERR invalid first DB index"))
        let second = try databaseIndex(ctx, 2, error: CommandError("ERR invalid second DB index"))
        ctx.server.databaseReplaced(first, with: second)
        ctx.server.databaseReplaced(second, with: first)
        ctx.keyspace.swap(first, second)
        ctx.server.signalDatabaseReady(first)
        ctx.server.signalDatabaseReady(second)
        ctx.dirty()
        ctx.reply.ok()
    }

    // MARK: OBJECT

    static let lfuMessage = "Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."

    /// The entry for OBJECT subcommands (no access-clock update), or nil after replying null.
    static func objectEntry(_ ctx: inout CommandContext) -> Entry? {
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[2], [.noTouch]) else {
            ctx.reply.null()
            return nil
        }
        return ctx.keyspace.entry(ctx.db, ref)
    }

    static func objectEncoding(_ ctx: inout CommandContext) throws(CommandError) {
        guard let entry = objectEntry(&ctx) else { return }
        ctx.reply.bulk("\(entry.value.encodingName)")
    }

    static func objectRefcount(_ ctx: inout CommandContext) throws(CommandError) {
        guard let entry = objectEntry(&ctx) else { return }
        // Redis's shared objects (small integers created while sharing was allowed) report OBJ_SHARED_REFCOUNT.
        if entry.value.isSharedInteger {
            ctx.reply.integer(Int(Int32.max))
        } else {
            ctx.reply.integer(1)
        }
    }

    static func objectIdletime(_ ctx: inout CommandContext) throws(CommandError) {
        guard let entry = objectEntry(&ctx) else { return }
        if ctx.keyspace.evictionPolicy.usesLFU {
            throw CommandError("ERR An LFU maxmemory policy is selected, idle time not tracked. \(lfuMessage)")
        }
        ctx.reply.integer(ctx.keyspace.idleSeconds(of: entry))
    }

    static func objectFreq(_ ctx: inout CommandContext) throws(CommandError) {
        guard let entry = objectEntry(&ctx) else { return }
        if !ctx.keyspace.evictionPolicy.usesLFU {
            throw CommandError("ERR An LFU maxmemory policy is not selected, access frequency not tracked. \(lfuMessage)")
        }
        ctx.reply.integer(ctx.keyspace.frequency(of: entry))
    }

    static func objectHelp(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "OBJECT", [
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ])
    }
}

/// The reply of every `HELP` subcommand: a fixed header, the lines, and Redis's HELP footer.
enum Help {
    static func reply(_ ctx: inout CommandContext, _ command: String, _ lines: [String]) {
        let all = ["\(command) <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"] + lines
            + ["HELP", "    Prints this help."]
        ctx.reply.array(all.count)
        for line in all { ctx.reply.simpleString(line) }
    }
}
