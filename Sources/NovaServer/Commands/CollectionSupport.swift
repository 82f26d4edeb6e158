import NIOCore
import NovaEngine
import NovaRESP

/// How commands reach one collection type inside a `Value`.
protocol CollectionKind {
    associatedtype Payload
    static func extract(_ value: borrowing Value) -> Payload?
    static func wrap(_ payload: Payload) -> Value
    static func make() -> Payload
    static func isEmpty(_ payload: Payload) -> Bool
}

enum HashKind: CollectionKind {
    static func extract(_ value: borrowing Value) -> HashValue? {
        switch value {
        case .hash(let h): return h
        default: return nil
        }
    }
    static func wrap(_ payload: HashValue) -> Value { .hash(payload) }
    static func make() -> HashValue { HashValue() }
    static func isEmpty(_ payload: HashValue) -> Bool { payload.isEmpty }
}

enum ListKind: CollectionKind {
    static func extract(_ value: borrowing Value) -> ListValue? {
        switch value {
        case .list(let l): return l
        default: return nil
        }
    }
    static func wrap(_ payload: ListValue) -> Value { .list(payload) }
    static func make() -> ListValue { ListValue() }
    static func isEmpty(_ payload: ListValue) -> Bool { payload.isEmpty }
}

enum SetKind: CollectionKind {
    static func extract(_ value: borrowing Value) -> SetValue? {
        switch value {
        case .set(let s): return s
        default: return nil
        }
    }
    static func wrap(_ payload: SetValue) -> Value { .set(payload) }
    static func make() -> SetValue { SetValue() }
    static func isEmpty(_ payload: SetValue) -> Bool { payload.isEmpty }
}

enum SortedSetKind: CollectionKind {
    static func extract(_ value: borrowing Value) -> SortedSetValue? {
        switch value {
        case .zset(let z): return z
        default: return nil
        }
    }
    static func wrap(_ payload: SortedSetValue) -> Value { .zset(payload) }
    static func make() -> SortedSetValue { SortedSetValue() }
    static func isEmpty(_ payload: SortedSetValue) -> Bool { payload.isEmpty }
}

enum StreamKind: CollectionKind {
    static func extract(_ value: borrowing Value) -> StreamValue? {
        switch value {
        case .stream(let s): return s
        default: return nil
        }
    }
    static func wrap(_ payload: StreamValue) -> Value { .stream(payload) }
    static func make() -> StreamValue { StreamValue() }
    /// A stream is kept when empty.
    static func isEmpty(_ payload: StreamValue) -> Bool { false }
}

extension CommandContext {
    /// The encoding thresholds from the configuration.
    var limits: EncodingLimits { server.encodingLimits }

    /// The collection at `key` for reading (nil when absent); WRONGTYPE for another type.
    func read<K: CollectionKind>(_ kind: K.Type, _ key: ByteBuffer, touch: Bool = true) throws(CommandError) -> K.Payload? {
        let options: Keyspace.LookupOptions = touch ? readOptions : [.noTouch]
        guard let ref = keyspace.lookupRead(db, key, options) else { return nil }
        guard let payload = keyspace.withValue(db, ref, { K.extract($0) }) else { throw .wrongType }
        return payload
    }

    /// Runs `body` on the collection at `key` in `database` without touching statistics; nil when the key
    /// is absent, WRONGTYPE for another type. No copy outlives the call: a copy held while the collection
    /// is modified would make that modification duplicate the whole collection.
    func inspect<K: CollectionKind, R>(
        _ kind: K.Type, _ key: ByteBuffer, database: Int, _ body: (K.Payload) -> R
    ) throws(CommandError) -> R? {
        guard let ref = keyspace.lookupWrite(database, key, [.noTouch]) else { return nil }
        guard let result = keyspace.withValue(database, ref, { value in K.extract(value).map(body) }) else { throw .wrongType }
        return result
    }

    /// Whether `key` holds a collection of this kind (collections are never empty); WRONGTYPE for another.
    func exists<K: CollectionKind>(_ kind: K.Type, _ key: ByteBuffer, database: Int? = nil) throws(CommandError) -> Bool {
        try inspect(kind, key, database: database ?? db) { _ in true } ?? false
    }

    /// Runs `body` on the collection at `key`, creating it when absent and `create` is set; a collection
    /// left empty is deleted, as Redis never keeps empty collections. Returns nil when the key is absent
    /// and not created. WRONGTYPE for another type.
    func modify<K: CollectionKind, R>(
        _ kind: K.Type, _ key: ByteBuffer, create: Bool, database: Int? = nil,
        _ body: (inout K.Payload) throws(CommandError) -> R
    ) throws(CommandError) -> R? {
        let db = database ?? self.db
        var ref = keyspace.lookupWrite(db, key)
        if ref == nil {
            guard create else { return nil }
            ref = keyspace.insert(db, Bytes(key), K.wrap(K.make()))
            server.signalKeyReady(db, key)
        }
        var outcome: Result<R, CommandError> = .failure(.wrongType)
        var emptied = false
        keyspace.modifyValue(db, ref!) { value in
            // The type check and the payload in one access; another type is left untouched.
            guard var payload = K.extract(value) else { return }
            value = .int(0)  // drop the enum's reference so the payload is uniquely held
            do throws(CommandError) {
                outcome = .success(try body(&payload))
            } catch {
                outcome = .failure(error)
            }
            emptied = K.isEmpty(payload)
            value = K.wrap(payload)
        }
        if emptied { keyspace.remove(db, ref!) }
        return try outcome.get()
    }

    /// The end of the *STORE commands: stores a collection under `key` (replacing any value, dropping its
    /// TTL) and announces `event`; an empty result deletes the key instead (announced as `del` when there
    /// was one), as Redis does.
    func store(_ value: Value, at key: ByteBuffer, event: StaticString, _ type: KeyspaceEventFlags) {
        if value.isEmptyCollection {
            if keyspace.delete(db, key) {
                dirty()
                modified(key, "del", .generic)
            }
            return
        }
        keyspace.set(db, key, value)
        server.signalKeyReady(db, key)
        dirty()
        modified(key, event, type)
    }

    /// Argument `index` as a count or index that must fit a C long (LONG_MAX range as Redis).
    func long(_ index: Int) throws(CommandError) -> Int64 { try args.integer(index) }

    /// Writes the elements of a (field, value) list as a map, or a flat array in RESP2.
    mutating func replyPairs(_ pairs: [(Bytes, Bytes)]) {
        reply.map(pairs.count)
        for (first, second) in pairs {
            first.withBytes { reply.bulk($0) }
            second.withBytes { reply.bulk($0) }
        }
    }

    /// Writes byte strings as an array.
    mutating func replyArray(_ items: [Bytes]) {
        reply.array(items.count)
        for item in items { item.withBytes { reply.bulk($0) } }
    }

    /// Replies an array of `length` items (default `picks`) holding `picks` random picks with repetition
    /// from `0..<size`, each written by `write` (SRANDMEMBER, HRANDFIELD and ZRANDMEMBER with a negative
    /// count). Streamed, because no data bounds it: `-9223372036854775807` is a valid count. Once the
    /// reply is seen to grow past `ServerCore.maxReplyBytes` it is dropped and the client disconnected, as Redis's
    /// output-buffer hard limit does — where Redis 7.0, whose normal clients have no limit by default,
    /// allocates until the system kills it.
    mutating func replyPicks(
        _ picks: Int, from size: Int, length: Int? = nil, _ write: (inout RESPWriter, Int) -> Void
    ) {
        let start = reply.buffer.writerIndex
        let limit = server.maxReplyBytes
        reply.array(length ?? picks)
        var random = FastRandom()
        for done in 0..<picks {
            write(&reply, Int.random(in: 0..<size, using: &random))
            // Checked every 1024 picks, against the size the whole reply will have at the average so far:
            // a reply bound to break the limit is dropped at once, not after seconds under the lock.
            if done & 1023 == 1023,
               Double(reply.buffer.writerIndex - start) / Double(done + 1) * Double(picks) > Double(limit) {
                reply.rewind(to: start)
                server.logger.warning(
                    "Client closed for overcoming of output buffer limits.",
                    metadata: ["client": "\(client.address)", "command": "\(spec.fullName)", "limit": "\(limit)"])
                client.closeAfterReply = true
                return
            }
        }
    }

    /// Writes byte strings as a RESP3 set (an array in RESP2).
    mutating func replySet(_ items: [Bytes]) {
        reply.set(items.count)
        for item in items { item.withBytes { reply.bulk($0) } }
    }
}

/// The options of SCAN, HSCAN, SSCAN and ZSCAN: `[MATCH pattern] [COUNT count]`, and `[TYPE type]` for
/// SCAN, checked in Redis's order (a COUNT below 1 and anything unknown are syntax errors).
struct ScanOptions {
    /// Nil for no pattern or `*`.
    var pattern: ByteBuffer?
    var count = 10
    var type: String?

    /// Parses the options from argument `start` on.
    init(_ ctx: CommandContext, from start: Int, allowsType: Bool) throws(CommandError) {
        var index = start
        while index < ctx.args.count {
            let remaining = ctx.args.count - index
            if ctx.args.isKeyword(index, "count") && remaining >= 2 {
                let value = try ctx.args.integer(index + 1)
                if value < 1 { throw .syntax }
                count = Int(clamping: value)
            } else if ctx.args.isKeyword(index, "match") && remaining >= 2 {
                let candidate = ctx.args[index + 1]
                let isStar = candidate.readableBytes == 1 && candidate.getInteger(at: candidate.readerIndex, as: UInt8.self) == UInt8(ascii: "*")
                pattern = isStar ? nil : candidate
            } else if allowsType && ctx.args.isKeyword(index, "type") && remaining >= 2 {
                type = ctx.args.lowercased(index + 1)
            } else {
                throw .syntax
            }
            index += 2
        }
    }

    /// Whether `item` matches the pattern.
    func matches(_ item: Bytes) -> Bool {
        guard let pattern else { return true }
        return pattern.withUnsafeReadableBytes { p in item.withBytes { RedisGlob.matches(p, $0) } }
    }
}

/// HSCAN / SSCAN / ZSCAN.
enum CollectionScan {
    /// Runs a scan of the collection that `read` finds, in Redis's order of checks: the cursor, then the
    /// key (a missing key answers an empty scan whatever the options), then its type, then the options.
    static func run(
        _ ctx: inout CommandContext, _ read: (CommandContext) throws(CommandError) -> [Bytes]?,
        items: (ScanOptions, [Bytes]) -> [Bytes]
    ) throws(CommandError) {
        _ = try KeyCommands.parseCursor(ctx.args[2])
        guard let elements = try read(ctx) else { return reply(&ctx, []) }
        let options = try ScanOptions(ctx, from: 3, allowsType: false)
        reply(&ctx, items(options, elements))
    }

    /// Replies `0` and the items: a collection is always returned whole, which keeps SCAN's guarantee
    /// (every element present throughout is returned) without cursor state.
    static func reply(_ ctx: inout CommandContext, _ items: [Bytes]) {
        ctx.reply.array(2)
        ctx.reply.bulk(decimal: 0)
        ctx.replyArray(items)
    }
}
