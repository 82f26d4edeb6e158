import CNovaSystem
import Foundation
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
            access = LRU.clock(idleSeconds: idle, nowMs: ctx.now)
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

// MARK: MIGRATE

extension DumpCommands {
    /// MIGRATE's keys (Redis's `migrateGetKeys`): argument 3, or everything after KEYS when argument 3 is
    /// empty; AUTH and AUTH2 arguments skipped on the way.
    @Sendable static func migrateKeys(_ arguments: [ByteBuffer]) -> [KeyReference] {
        var first = 3, count = 1
        var index = 6
        while index < arguments.count {
            let word = String(buffer: arguments[index]).lowercased()
            if word == "keys" {
                guard arguments[3].readableBytes == 0 else { return [] }
                first = index + 1
                count = arguments.count - first
                break
            }
            if word == "auth" { index += 1 } else if word == "auth2" { index += 2 }
            index += 1
        }
        guard first + count <= arguments.count else { return [] }
        return (first..<(first + count)).map { KeyReference(index: $0, flags: [.rw, .access, .delete]) }
    }

    /// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password | AUTH2 username
    /// password] [KEYS key ...] (Redis 7.0's `migrateCommand`): DUMP here, RESTORE there over a plain
    /// connection, DEL here for every key the target acknowledged unless COPY. Like Redis it waits for the
    /// target while holding the server (up to `timeout` ms per step); it connects for each call rather
    /// than keeping connections for 10 s, so SELECT is always sent.
    static func migrate(_ ctx: inout CommandContext) throws(CommandError) {
        var copy = false, replace = false
        var username: [UInt8]? = nil, password: [UInt8]? = nil
        var keyIndexes = [3]
        var index = 6
        while index < ctx.args.count {
            let more = ctx.args.count - 1 - index
            if ctx.args.isKeyword(index, "copy") {
                copy = true
            } else if ctx.args.isKeyword(index, "replace") {
                replace = true
            } else if ctx.args.isKeyword(index, "auth") {
                guard more >= 1 else { throw .syntax }
                index += 1
                password = ctx.bytes(index)
            } else if ctx.args.isKeyword(index, "auth2") {
                guard more >= 2 else { throw .syntax }
                username = ctx.bytes(index + 1)
                password = ctx.bytes(index + 2)
                index += 2
            } else if ctx.args.isKeyword(index, "keys") {
                guard ctx.args[3].readableBytes == 0 else {
                    throw CommandError("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string")
                }
                keyIndexes = Array((index + 1)..<ctx.args.count)
                break
            } else {
                throw .syntax
            }
            index += 1
        }
        var timeout = try ctx.args.integer(5)
        let database = try ctx.args.integer(4)
        if timeout <= 0 { timeout = 1000 }
        let present = keyIndexes.filter { ctx.keyspace.lookupRead(ctx.db, ctx.args[$0], ctx.readOptions) != nil }
        guard !present.isEmpty else {
            ctx.reply.simpleString("NOKEY")
            return
        }

        // The commands for the target: AUTH, SELECT, then RESTORE for every key still alive.
        var request = RESPWriter(buffer: ByteBuffer())
        if let password {
            request.array(username == nil ? 2 : 3)
            request.bulk("AUTH")
            if let username { request.bulk(username) }
            request.bulk(password)
        }
        request.array(2)
        request.bulk("SELECT")
        request.bulk(decimal: database)
        var sent: [Int] = []
        for keyIndex in present {
            guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[keyIndex], [.noTouch]) else { continue }
            let entry = ctx.keyspace.entry(ctx.db, ref)
            var ttl: Int64 = 0
            if entry.expireAt != 0 {
                ttl = entry.expireAt - ctx.now
                if ttl < 0 { continue }
                ttl = max(ttl, 1)
            }
            sent.append(keyIndex)
            request.array(replace ? 5 : 4)
            request.bulk("RESTORE")
            request.bulk(ctx.args[keyIndex])
            request.bulk(decimal: ttl)
            request.bulk(RDBWriter.dumpPayload(entry.value, compress: ctx.server.config.value("rdbcompression") == "yes"))
            if replace { request.bulk("REPLACE") }
        }
        let host = ctx.args.string(1)
        let port = Int32(clamping: (try? ctx.args.integer(2)) ?? 0)
        let milliseconds = Int32(clamping: timeout)

        var acknowledged: [Int] = []
        var targetError: String? = nil
        var failure: (writing: Bool, timedOut: Bool)? = nil
        var retried = false
        while true {
            let fd = nova_connect(host, port, milliseconds)
            // Only a connection that does not come in time fails as such; a refused one shows, as with
            // Redis's non-blocking connect, when the request is written.
            if fd == -Int32(ETIMEDOUT) { throw CommandError("IOERR error or timeout connecting to the client") }
            var (replies, failed): ([TargetReply], (writing: Bool, timedOut: Bool)?) = ([], (true, false))
            if fd >= 0 {
                (replies, failed) = exchange(fd, request.buffer, password: password != nil, keys: sent.count, timeout: milliseconds)
                close(fd)
            }
            // Redis retries once on a fresh connection when nothing was answered and it did not time out.
            if let failed, replies.isEmpty, !failed.timedOut, !retried {
                retried = true
                continue
            }
            for (position, reply) in replies.enumerated() {
                if let error = reply.error {
                    if targetError == nil { targetError = error }
                } else {
                    acknowledged.append(sent[position])
                }
            }
            failure = failed
            break
        }
        if !copy {
            var deleted: [[UInt8]] = []
            for keyIndex in acknowledged where ctx.keyspace.delete(ctx.db, ctx.args[keyIndex]) {
                ctx.dirty()
                ctx.modified(ctx.args[keyIndex], "del", .generic)
                deleted.append(ctx.bytes(keyIndex))
            }
            if !deleted.isEmpty { ctx.propagate([Array("DEL".utf8)] + deleted) }
        }
        if let targetError { throw CommandError("ERR Target instance replied with error: \(targetError)") }
        if let failure { throw CommandError("IOERR error or timeout \(failure.writing ? "writing" : "reading") to target instance") }
        ctx.reply.ok()
    }

    /// One line the target answered for a RESTORE: nil, or the error's text.
    private struct TargetReply {
        var error: String?
    }

    /// Sends the request and reads a line per command (Redis's syncReadLine): the RESTORE replies read,
    /// and how it failed if it did. An error from AUTH or SELECT counts against every key, as in Redis.
    private static func exchange(
        _ fd: Int32, _ request: ByteBuffer, password: Bool, keys: Int, timeout: Int32
    ) -> (replies: [TargetReply], failure: (writing: Bool, timedOut: Bool)?) {
        let written = request.withUnsafeReadableBytes { nova_write_all(fd, $0.baseAddress, $0.count, timeout) }
        if written < 0 { return ([], (true, written == -Int(ETIMEDOUT))) }
        var line = [CChar](repeating: 0, count: 1024)
        func readLine() -> (text: String?, timedOut: Bool) {
            let length = nova_read_line(fd, &line, line.count, timeout)
            guard length > 0 else { return (nil, length == -Int(ETIMEDOUT)) }
            return (String(decoding: line[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self), false)
        }
        var preamble: String? = nil
        for _ in 0..<(password ? 2 : 1) {
            let (text, timedOut) = readLine()
            guard let text else { return ([], (false, timedOut)) }
            if preamble == nil && text.hasPrefix("-") { preamble = String(text.dropFirst()) }
        }
        var replies: [TargetReply] = []
        for _ in 0..<keys {
            let (text, timedOut) = readLine()
            guard let text else { return (replies, (false, timedOut)) }
            if let preamble {
                replies.append(TargetReply(error: preamble))
            } else {
                replies.append(TargetReply(error: text.hasPrefix("-") ? String(text.dropFirst()) : nil))
            }
        }
        return (replies, nil)
    }
}
