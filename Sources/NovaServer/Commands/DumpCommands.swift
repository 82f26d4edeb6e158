import NIOCore
import NovaEngine
import NovaRESP

/// DUMP and RESTORE: one value in Redis's DUMP payload (RDB type and encoding, RDB version, CRC64), so
/// that payloads move both ways between this server and redis-server.
enum DumpCommands {
    static func dump(_ ctx: inout CommandContext) throws(CommandError) {
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[1], ctx.readOptions) else {
            ctx.reply.null()
            return
        }
        let compress = ctx.server.config.value("rdbcompression") == "yes"
        let payload = ctx.keyspace.withValue(ctx.db, ref) { RDBWriter.dumpPayload(copy $0, compress: compress) }
        ctx.reply.bulk(payload)
    }

    /// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency] (Redis's
    /// `restoreCommand`, checks in its order).
    static func restore(_ ctx: inout CommandContext) throws(CommandError) {
        var replace = false, absoluteTTL = false
        var idle: Int64? = nil, frequency: Int64? = nil
        var index = 4
        while index < ctx.args.count {
            let more = index + 1 < ctx.args.count
            if ctx.args.isKeyword(index, "replace") {
                replace = true
            } else if ctx.args.isKeyword(index, "absttl") {
                absoluteTTL = true
            } else if ctx.args.isKeyword(index, "idletime") && more && frequency == nil {
                let value = try ctx.args.integer(index + 1)
                guard value >= 0 else { throw CommandError("ERR Invalid IDLETIME value, must be >= 0") }
                idle = value
                index += 1
            } else if ctx.args.isKeyword(index, "freq") && more && idle == nil {
                let value = try ctx.args.integer(index + 1)
                guard (0...255).contains(value) else { throw CommandError("ERR Invalid FREQ value, must be >= 0 and <= 255") }
                frequency = value
                index += 1
            } else {
                throw .syntax
            }
            index += 1
        }
        let db = ctx.db, key = ctx.args[1]
        if !replace && ctx.keyspace.lookupWrite(db, key) != nil {
            throw CommandError("BUSYKEY Target key name already exists.")
        }
        var ttl = try ctx.args.integer(2)
        guard ttl >= 0 else { throw CommandError("ERR Invalid TTL value, must be >= 0") }
        let decoded: Value?
        do {
            decoded = try RDBReader.dumpPayload(Array(ctx.args[3].readableBytesView), limits: ctx.limits,
                                                sharesIntegers: ctx.sharesIntegers)
        } catch {
            throw CommandError("ERR Bad data format")
        }
        guard let value = decoded else { throw CommandError("ERR DUMP payload version or checksum are wrong") }
        let deleted = replace && ctx.keyspace.delete(db, key)
        if ttl != 0 && !absoluteTTL { ttl = ttl &+ ctx.now }
        if ttl != 0 && ttl <= ctx.now {
            // Already expired: nothing is created, and a replaced key is simply deleted.
            if deleted {
                ctx.dirty()
                ctx.modified(key, "del", .generic)
                ctx.propagate([Array((ctx.server.config.value("lazyfree-lazy-server-del") == "yes" ? "UNLINK" : "DEL").utf8), ctx.bytes(1)])
            }
            ctx.reply.ok()
            return
        }
        var access = ctx.keyspace.freshAccess
        if ctx.keyspace.evictionPolicy.usesLFU {
            if let frequency { access = (access & ~0xFF) | UInt32(frequency) }
        } else if let idle {
            access = UInt32(truncatingIfNeeded: max(0, ctx.now / 1000 - idle))
        }
        ctx.keyspace.insert(db, entry: Entry(key: Bytes(key), value: value, expireAt: ttl, access: access))
        ctx.server.signalKeyReady(db, key)
        if ttl != 0 && !absoluteTTL {
            // The AOF gets the absolute expiry, as Redis rewrites the command.
            var words = (0..<ctx.args.count).map { ctx.bytes($0) }
            words[2] = Array(String(ttl).utf8)
            ctx.propagate(words + [Array("ABSTTL".utf8)])
        }
        ctx.dirty()
        ctx.modified(key, "restore", .generic)
        ctx.reply.ok()
    }
}
