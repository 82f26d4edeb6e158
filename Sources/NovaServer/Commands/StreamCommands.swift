import NIOCore
import NovaEngine
import NovaRESP

/// Stream IDs as stream commands read them (Redis's `streamGenericParseIDOrReply`).
enum StreamIDSyntax {
    static let invalid = CommandError("ERR Invalid stream ID specified as stream command argument")

    /// `ms-seq`, `ms` (sequence `missingSequence`), `-`, `+` (not when `strict`), and `ms-*` when
    /// `autoSequence`. Returns the ID and whether the sequence was given (false for `ms-*`). Like Redis,
    /// the text ends at a NUL byte and may be at most 127 bytes; numbers are read as `strtoull` reads them.
    static func parse(_ argument: ByteBuffer, strict: Bool = true, missingSequence: UInt64 = 0,
                      autoSequence: Bool = false) throws(CommandError) -> (id: StreamID, sequenceGiven: Bool) {
        let all = Array(argument.readableBytesView)
        guard all.count <= 127 else { throw invalid }
        let text = Array(all.prefix { $0 != 0 })
        let dash = UInt8(ascii: "-"), plus = UInt8(ascii: "+")
        if text == [dash] || text == [plus] {
            if strict { throw invalid }
            return (text == [dash] ? .zero : .max, true)
        }
        guard let split = text.firstIndex(of: dash) else {
            guard let ms = unsigned(text[...]) else { throw invalid }
            return (StreamID(ms: ms, seq: missingSequence), true)
        }
        guard let ms = unsigned(text[..<split]) else { throw invalid }
        let rest = text[(split + 1)...]
        if autoSequence && rest.elementsEqual([UInt8(ascii: "*")]) { return (StreamID(ms: ms, seq: 0), false) }
        guard let seq = unsigned(rest) else { throw invalid }
        return (StreamID(ms: ms, seq: seq), true)
    }

    /// An interval bound of XRANGE, XPENDING, XAUTOCLAIM: `(id` is exclusive (then parsed strictly).
    static func parseBound(_ argument: ByteBuffer, missingSequence: UInt64) throws(CommandError) -> (id: StreamID, exclusive: Bool) {
        let view = argument.readableBytesView
        if view.count > 1 && view.first == UInt8(ascii: "(") {
            let rest = ByteBuffer(bytes: view.dropFirst())
            return (try parse(rest, strict: true, missingSequence: missingSequence).id, true)
        }
        return (try parse(argument, strict: false, missingSequence: missingSequence).id, false)
    }

    /// Redis's `string2ull`: a strict integer when it is one (negative refused), else C's `strtoull`
    /// (leading spaces, a sign, leading zeros; a negative number wraps around; overflow refused).
    static func unsigned(_ text: ArraySlice<UInt8>) -> UInt64? {
        if let strict = RedisInteger.parse(Array(text)) { return strict < 0 ? nil : UInt64(strict) }
        var index = text.startIndex
        while index < text.endIndex, [9, 10, 11, 12, 13, 32].contains(text[index]) { index += 1 }
        var negative = false
        if index < text.endIndex, text[index] == UInt8(ascii: "+") || text[index] == UInt8(ascii: "-") {
            negative = text[index] == UInt8(ascii: "-")
            index += 1
        }
        var value: UInt64 = 0
        var digits = 0
        while index < text.endIndex, text[index] >= UInt8(ascii: "0"), text[index] <= UInt8(ascii: "9") {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(text[index] - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            value = sum
            digits += 1
            index += 1
        }
        guard digits > 0, index == text.endIndex else { return nil }
        return negative ? 0 &- value : value
    }
}

extension RESPWriter {
    /// A stream ID as a bulk string.
    mutating func streamID(_ id: StreamID) { bulk(id.bytes) }

    /// An entry: its ID and its fields and values as a flat array (in RESP3 too).
    mutating func streamEntry(_ entry: StreamEntry) {
        array(2)
        streamID(entry.id)
        array(entry.fieldsAndValues.count)
        for part in entry.fieldsAndValues { part.withBytes { bulk($0) } }
    }
}

/// XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID: the stream itself. Consumer groups, XREAD and
/// introspection are in the extensions below.
enum StreamCommands {
    static let notIncreasing = CommandError("ERR The ID specified in XADD is equal or smaller than the target stream top item")

    /// The trimming and ID options of XADD and XTRIM (`streamParseAddOrTrimArgsOrReply`).
    struct TrimOptions {
        var strategy: StreamValue.TrimStrategy? = nil
        var approximate = false
        var limit: Int64 = 0
        /// Index of the threshold argument (MAXLEN's count, MINID's ID).
        var thresholdIndex = 0
        var noMakeStream = false
        /// XADD: index of the ID argument, the ID when given and whether its sequence was.
        var idIndex = 0
        var id: StreamID? = nil
        var sequenceGiven = true
    }

    static func parseTrimOptions(_ ctx: CommandContext, xadd: Bool) throws(CommandError) -> TrimOptions {
        var options = TrimOptions()
        var limitGiven = false
        var i = 2
        let count = ctx.args.count
        let incompatible = CommandError("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
        while i < count {
            let more = count - 1 - i
            if xadd && ctx.args[i].readableBytesView.elementsEqual([UInt8(ascii: "*")]) {
                break
            } else if ctx.args.isKeyword(i, "maxlen") && more > 0 {
                if options.strategy != nil { throw incompatible }
                options.approximate = false
                if more >= 2 && ctx.args[i + 1].readableBytesView.elementsEqual([UInt8(ascii: "~")]) {
                    options.approximate = true
                    i += 1
                } else if more >= 2 && ctx.args[i + 1].readableBytesView.elementsEqual([UInt8(ascii: "=")]) {
                    i += 1
                }
                let maxLength = try ctx.args.integer(i + 1)
                if maxLength < 0 { throw CommandError("ERR The MAXLEN argument must be >= 0.") }
                i += 1
                options.strategy = .maxLength(maxLength)
                options.thresholdIndex = i
            } else if ctx.args.isKeyword(i, "minid") && more > 0 {
                if options.strategy != nil { throw incompatible }
                options.approximate = false
                if more >= 2 && ctx.args[i + 1].readableBytesView.elementsEqual([UInt8(ascii: "~")]) {
                    options.approximate = true
                    i += 1
                } else if more >= 2 && ctx.args[i + 1].readableBytesView.elementsEqual([UInt8(ascii: "=")]) {
                    i += 1
                }
                let minID = try StreamIDSyntax.parse(ctx.args[i + 1]).id
                i += 1
                options.strategy = .minID(minID)
                options.thresholdIndex = i
            } else if ctx.args.isKeyword(i, "limit") && more > 0 {
                options.limit = try ctx.args.integer(i + 1)
                if options.limit < 0 { throw CommandError("ERR The LIMIT argument must be >= 0.") }
                limitGiven = true
                i += 1
            } else if xadd && ctx.args.isKeyword(i, "nomkstream") {
                options.noMakeStream = true
            } else if xadd {
                let parsed = try StreamIDSyntax.parse(ctx.args[i], autoSequence: true)
                options.id = parsed.id
                options.sequenceGiven = parsed.sequenceGiven
                break
            } else {
                throw .syntax
            }
            i += 1
        }
        options.idIndex = i
        if options.limit != 0 && options.strategy == nil {
            throw CommandError("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
        }
        if !xadd && options.strategy == nil {
            throw CommandError("ERR syntax error, XTRIM must be called with a trimming strategy")
        }
        if ctx.client.isReplaying {
            options.limit = 0  // the logged threshold is exact
        } else if limitGiven {
            if !options.approximate { throw CommandError("ERR syntax error, LIMIT cannot be used without the special ~ option") }
        } else if options.approximate {
            let entries = Int64(ctx.limits.streamNodeMaxEntries)
            options.limit = 100 * entries
            if options.limit <= 0 || options.limit > 1_000_000 { options.limit = 10000 }
        } else {
            options.limit = 0
        }
        return options
    }

    /// The arguments as XADD/XTRIM propagate them after an approximate trim: `~` becomes `=` and the
    /// threshold the exact one reached (the length, or the first ID), so that a replay trims the same.
    static func exactTrimWords(_ options: TrimOptions, _ stream: StreamValue, words: inout [[UInt8]]) {
        guard options.approximate, options.strategy != nil else { return }
        words[options.thresholdIndex - 1] = Array("=".utf8)
        switch options.strategy! {
        case .maxLength: words[options.thresholdIndex] = RedisInteger.bytes(Int64(stream.length))
        // The first entry left, a deleted one included; none: the largest ID, which trims everything.
        case .minID: words[options.thresholdIndex] = (stream.firstStoredID ?? .max).bytes
        }
    }

    static func xadd(_ ctx: inout CommandContext) throws(CommandError) {
        let options = try parseTrimOptions(ctx, xadd: true)
        let fieldStart = options.idIndex + 1
        let fieldArguments = ctx.args.count - fieldStart
        if fieldArguments < 2 || fieldArguments % 2 == 1 { throw .arity("xadd") }
        if let id = options.id, options.sequenceGiven, id.isZero {
            throw CommandError("ERR The ID specified in XADD must be greater than 0-0")
        }
        let key = ctx.args[1]
        if options.noMakeStream, try !ctx.exists(StreamKind.self, key) {
            ctx.reply.null()
            return
        }
        let fields = (fieldStart..<ctx.args.count).map { ctx.args[$0] }
        let limits = ctx.limits
        let now = UInt64(max(0, ctx.now))
        // What the AOF gets (the ID made, an approximate trim made exact); built only when there is one.
        let logging = ctx.server.aof != nil
        var words = logging ? (0..<ctx.args.count).map { ctx.bytes($0) } : []
        let (id, trimmed) = try ctx.modify(StreamKind.self, key, create: true) { stream throws(CommandError) -> (StreamID, Int64) in
            if stream.lastID == .max {
                throw CommandError("ERR The stream has exhausted the last possible ID, unable to add more items")
            }
            let id: StreamID
            do {
                id = try stream.nextID(requested: options.id, seqGiven: options.sequenceGiven, now: now)
                try stream.append(id: id, fields, nodeMaxBytes: limits.streamNodeMaxBytes, nodeMaxEntries: limits.streamNodeMaxEntries)
            } catch StreamValue.AddError.notIncreasing {
                throw notIncreasing
            } catch {
                throw CommandError("ERR Elements are too large to be stored")
            }
            var trimmed: Int64 = 0
            if let strategy = options.strategy {
                trimmed = stream.trim(strategy, approximate: options.approximate, limit: options.limit)
                if logging { exactTrimWords(options, stream, words: &words) }
            }
            return (id, trimmed)
        }!
        ctx.reply.streamID(id)
        ctx.modified(key, "xadd", .stream)
        ctx.dirty()
        if trimmed > 0 { ctx.notify(key, "xtrim", .stream) }
        if logging && (options.id == nil || !options.sequenceGiven || options.approximate) {
            if options.id == nil || !options.sequenceGiven { words[options.idIndex] = id.bytes }
            ctx.propagate(words)
        }
        ctx.server.signalKeyReady(ctx.db, key)
    }

    static func xtrim(_ ctx: inout CommandContext) throws(CommandError) {
        let options = try parseTrimOptions(ctx, xadd: false)
        let key = ctx.args[1]
        guard try ctx.exists(StreamKind.self, key) else { return ctx.reply.integer(0) }
        var words = (0..<ctx.args.count).map { ctx.bytes($0) }
        let deleted = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> Int64 in
            let deleted = stream.trim(options.strategy!, approximate: options.approximate, limit: options.limit)
            if deleted > 0 { exactTrimWords(options, stream, words: &words) }
            return deleted
        }!
        if deleted > 0 {
            ctx.modified(key, "xtrim", .stream)
            ctx.dirty(Int(deleted))
            ctx.propagate(words)
        }
        ctx.reply.integer(deleted)
    }

    static func xlen(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(try ctx.read(StreamKind.self, ctx.args[1])?.length ?? 0)
    }

    static func xrange(_ ctx: inout CommandContext) throws(CommandError) { try range(&ctx, reverse: false) }
    static func xrevrange(_ ctx: inout CommandContext) throws(CommandError) { try range(&ctx, reverse: true) }

    private static func range(_ ctx: inout CommandContext, reverse: Bool) throws(CommandError) {
        let (startIndex, endIndex) = reverse ? (3, 2) : (2, 3)
        var (start, startExclusive) = try StreamIDSyntax.parseBound(ctx.args[startIndex], missingSequence: 0)
        if startExclusive {
            guard let next = start.incremented else { throw CommandError("ERR invalid start ID for the interval") }
            start = next
        }
        var (end, endExclusive) = try StreamIDSyntax.parseBound(ctx.args[endIndex], missingSequence: .max)
        if endExclusive {
            guard let previous = end.decremented else { throw CommandError("ERR invalid end ID for the interval") }
            end = previous
        }
        var count: Int64 = -1
        var i = 4
        while i < ctx.args.count {
            if ctx.args.isKeyword(i, "count") && i + 1 < ctx.args.count {
                count = max(0, try ctx.args.integer(i + 1))
                i += 2
            } else {
                throw .syntax
            }
        }
        guard let stream = try ctx.read(StreamKind.self, ctx.args[1]) else { return ctx.reply.array(0) }
        if count == 0 { return ctx.reply.nullArray() }
        let entries = stream.entries(from: start, to: end, reverse: reverse, limit: count < 0 ? 0 : Int(clamping: count))
        ctx.reply.array(entries.count)
        for entry in entries { ctx.reply.streamEntry(entry) }
    }

    static func xdel(_ ctx: inout CommandContext) throws(CommandError) {
        let key = ctx.args[1]
        guard try ctx.exists(StreamKind.self, key) else { return ctx.reply.integer(0) }
        var ids: [StreamID] = []
        for index in 2..<ctx.args.count { ids.append(try StreamIDSyntax.parse(ctx.args[index]).id) }
        let deleted = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> Int in
            ids.reduce(0) { $0 + (stream.delete($1) ? 1 : 0) }
        }!
        if deleted > 0 {
            ctx.modified(key, "xdel", .stream)
            ctx.dirty(deleted)
        }
        ctx.reply.integer(deleted)
    }

    static func xsetid(_ ctx: inout CommandContext) throws(CommandError) {
        let id = try StreamIDSyntax.parse(ctx.args[2]).id
        var entriesAdded: Int64 = -1
        var maxDeleted = StreamID.zero
        var i = 3
        while i < ctx.args.count {
            let more = ctx.args.count - 1 - i
            if ctx.args.isKeyword(i, "entriesadded") && more > 0 {
                entriesAdded = try ctx.args.integer(i + 1)
                if entriesAdded < 0 { throw CommandError("ERR entries_added must be positive") }
            } else if ctx.args.isKeyword(i, "maxdeletedid") && more > 0 {
                maxDeleted = try StreamIDSyntax.parse(ctx.args[i + 1]).id
                if id < maxDeleted { throw CommandError("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id") }
            } else {
                throw .syntax
            }
            i += 2
        }
        let key = ctx.args[1]
        guard try ctx.exists(StreamKind.self, key) else { throw .noSuchKey }
        try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) in
            if stream.length > 0 {
                if let top = stream.edgeID(first: false), id < top {
                    throw CommandError("ERR The ID specified in XSETID is smaller than the target stream top item")
                }
                if entriesAdded != -1 && Int64(stream.length) > entriesAdded {
                    throw CommandError("ERR The entries_added specified in XSETID is smaller than the target stream length")
                }
            }
            stream.lastID = id
            if entriesAdded != -1 { stream.entriesAdded = UInt64(entriesAdded) }
            if !maxDeleted.isZero { stream.maxDeletedID = maxDeleted }
        }
        ctx.reply.ok()
        // Redis 7.0 announces it but does not signal the key as modified: WATCH and tracking ignore it.
        ctx.notify(key, "xsetid", .stream)
        ctx.dirty()
    }
}

// MARK: Consumer groups

extension StreamCommands {
    static func noGroup(_ key: ByteBuffer, _ group: ByteBuffer) -> CommandError {
        "NOGROUP No such key '\(raw: Array(key.readableBytesView))' or consumer group '\(raw: Array(group.readableBytesView))'"
    }

    /// The XCLAIM Redis logs for a delivery or a claim, so that a replay sets the same owner, time and
    /// count (`streamPropagateXCLAIM`).
    static func claimWords(_ key: ByteBuffer, _ group: ByteBuffer, _ entry: PendingEntry, lastID: StreamID) -> [[UInt8]] {
        [Array("XCLAIM".utf8), Array(key.readableBytesView), Array(group.readableBytesView), entry.consumer.array,
         Array("0".utf8), entry.id.bytes, Array("TIME".utf8), RedisInteger.bytes(entry.deliveryTime),
         Array("RETRYCOUNT".utf8), Array(String(entry.deliveryCount).utf8), Array("FORCE".utf8),
         Array("JUSTID".utf8), Array("LASTID".utf8), lastID.bytes]
    }

    /// `XGROUP SETID key group last-id ENTRIESREAD n` (`streamPropagateGroupID`).
    static func setIDWords(_ key: ByteBuffer, _ group: ByteBuffer, _ state: StreamGroup) -> [[UInt8]] {
        [Array("XGROUP".utf8), Array("SETID".utf8), Array(key.readableBytesView), Array(group.readableBytesView),
         state.lastID.bytes, Array("ENTRIESREAD".utf8), RedisInteger.bytes(state.entriesRead)]
    }

    /// Delivers entries after `start` to `consumer` of `group` (XREADGROUP `>`): advances the group's last
    /// ID and read counter, records pending entries (unless `noAck`), and returns the entries with what
    /// to log (`streamReplyWithRange` with a group).
    static func deliver(_ stream: inout StreamValue, group name: ByteBuffer, consumer: Bytes, after start: StreamID,
                        count: Int, noAck: Bool, now: Int64, key: ByteBuffer, logging: Bool) -> (entries: [StreamEntry], log: [[[UInt8]]]) {
        guard let from = start.incremented else { return ([], []) }
        let entries = stream.entries(from: from, to: .max, limit: count)
        var log: [[[UInt8]]] = []
        var lastIDMoved = false
        for entry in entries {
            // Worked out before the group is changed: no copy of the stream may be alive then.
            let tombstonesAhead = stream.rangeHasTombstones(from: entry.id)
            let estimate = stream.entriesAdded != 0 ? stream.estimatedEntriesRead(upTo: entry.id) : nil
            stream.withGroup(name) { group in
                if entry.id > group.lastID {
                    if group.entriesRead != StreamGroup.unknownEntriesRead && !tombstonesAhead {
                        group.entriesRead &+= 1  // wraps as in Redis (ENTRIESREAD takes any value)
                    } else if let estimate {
                        group.entriesRead = estimate
                    }
                    group.lastID = entry.id
                    if noAck { lastIDMoved = true }
                }
                if !noAck {
                    let pending = PendingEntry(id: entry.id, deliveryTime: now, deliveryCount: 1, consumer: consumer)
                    group.setPending(pending)
                    if logging { log.append(claimWords(key, name, pending, lastID: group.lastID)) }
                }
            }
        }
        if logging && lastIDMoved, let group = stream.group(name) { log.append(setIDWords(key, name, group)) }
        return (entries, log)
    }

    /// Entries of the consumer's own pending list after `start` (XREADGROUP with an ID): each delivered
    /// again (time and count updated), or `[id, nil]` when the entry was deleted from the stream.
    static func history(_ stream: inout StreamValue, group name: ByteBuffer, consumer: Bytes, after start: StreamID,
                        count: Int, now: Int64) -> [(StreamID, StreamEntry?)] {
        guard let from = start.incremented, let group = stream.group(name), let owner = group.consumer(consumer) else { return [] }
        var ids: [StreamID] = []
        owner.pending.forEach(from: owner.pending.partitionIndex { $0 >= from }) { id in
            ids.append(id)
            return count == 0 || ids.count < count
        }
        var result: [(StreamID, StreamEntry?)] = []
        for id in ids {
            let entry = stream.entry(id)
            if entry != nil {
                stream.withGroup(name) { group in
                    if var pending = group.pendingEntry(id) {
                        pending.deliveryTime = now
                        pending.deliveryCount &+= 1
                        group.setPending(pending)
                    }
                }
            }
            result.append((id, entry))
        }
        return result
    }

    static func xack(_ ctx: inout CommandContext) throws(CommandError) {
        let key = ctx.args[1], name = ctx.args[2]
        guard try ctx.read(StreamKind.self, key)?.group(name) != nil else { return ctx.reply.integer(0) }
        var ids: [StreamID] = []
        for index in 3..<ctx.args.count { ids.append(try StreamIDSyntax.parse(ctx.args[index]).id) }
        let acknowledged = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> Int in
            stream.withGroup(name) { group in ids.reduce(0) { $0 + (group.removePending($1) ? 1 : 0) } } ?? 0
        }!
        ctx.dirty(acknowledged)
        ctx.reply.integer(acknowledged)
    }

    static func xpending(_ ctx: inout CommandContext) throws(CommandError) {
        let argc = ctx.args.count
        let summary = argc == 3
        if argc != 3 && (argc < 6 || argc > 9) { throw .syntax }
        var start = StreamID.zero, end = StreamID.max
        var count: Int64 = 0, minIdle: Int64 = 0
        var consumerName: ByteBuffer? = nil
        if argc >= 6 {
            var startIndex = 3
            if ctx.args.isKeyword(3, "idle") {
                minIdle = try ctx.args.integer(4)
                if argc < 8 { throw .syntax }
                startIndex += 2
            }
            count = max(0, try ctx.args.integer(startIndex + 2))
            let first = try StreamIDSyntax.parseBound(ctx.args[startIndex], missingSequence: 0)
            start = first.id
            if first.exclusive {
                guard let next = start.incremented else { throw CommandError("ERR invalid start ID for the interval") }
                start = next
            }
            let last = try StreamIDSyntax.parseBound(ctx.args[startIndex + 1], missingSequence: .max)
            end = last.id
            if last.exclusive {
                guard let previous = end.decremented else { throw CommandError("ERR invalid end ID for the interval") }
                end = previous
            }
            if startIndex + 3 < argc { consumerName = ctx.args[startIndex + 3] }
        }
        let key = ctx.args[1], name = ctx.args[2]
        guard let stream = try ctx.read(StreamKind.self, key), let group = stream.group(name) else { throw noGroup(key, name) }
        if summary {
            ctx.reply.array(4)
            ctx.reply.integer(group.pending.count)
            if group.pending.isEmpty {
                ctx.reply.null()
                ctx.reply.null()
                ctx.reply.nullArray()
                return
            }
            ctx.reply.streamID(group.pending[0].id)
            ctx.reply.streamID(group.pending[group.pending.count - 1].id)
            let owners = group.consumers.filter { !$0.pending.isEmpty }
            ctx.reply.array(owners.count)
            for owner in owners {
                ctx.reply.array(2)
                owner.name.withBytes { ctx.reply.bulk($0) }
                ctx.reply.bulk(decimal: Int64(owner.pending.count))
            }
            return
        }
        var selected: [PendingEntry] = []
        let now = ctx.now
        func consider(_ entry: PendingEntry) -> Bool {
            guard count > 0, entry.id <= end else { return false }
            if minIdle != 0 && now &- entry.deliveryTime < minIdle { return true }
            selected.append(entry)
            count -= 1
            return true
        }
        if let consumerName {
            guard let owner = group.consumer(consumerName) else { return ctx.reply.array(0) }
            owner.pending.forEach(from: owner.pending.partitionIndex { $0 >= start }) { id in
                consider(group.pendingEntry(id)!)
            }
        } else {
            group.forEachPending(from: start, consider)
        }
        ctx.reply.array(selected.count)
        for entry in selected {
            ctx.reply.array(4)
            ctx.reply.streamID(entry.id)
            entry.consumer.withBytes { ctx.reply.bulk($0) }
            ctx.reply.integer(max(0, now &- entry.deliveryTime))
            ctx.reply.integer(Int64(bitPattern: entry.deliveryCount))
        }
    }

    static func xclaim(_ ctx: inout CommandContext) throws(CommandError) {
        let key = ctx.args[1], name = ctx.args[2]
        guard try ctx.read(StreamKind.self, key)?.group(name) != nil else { throw noGroup(key, name) }
        var minIdle = try ctx.args.integer(4, or: CommandError("ERR Invalid min-idle-time argument for XCLAIM"))
        if minIdle < 0 { minIdle = 0 }
        var ids: [(StreamID, Int)] = []
        var j = 5
        while j < ctx.args.count, let id = try? StreamIDSyntax.parse(ctx.args[j]).id {
            ids.append((id, j))
            j += 1
        }
        let now = ctx.now
        var force = false, justID = false
        var retryCount: Int64 = -1
        var deliveryTime: Int64 = -1
        var lastID = StreamID.zero
        while j < ctx.args.count {
            let more = ctx.args.count - 1 - j
            if ctx.args.isKeyword(j, "force") {
                force = true
            } else if ctx.args.isKeyword(j, "justid") {
                justID = true
            } else if ctx.args.isKeyword(j, "idle") && more > 0 {
                j += 1
                deliveryTime = now &- (try ctx.args.integer(j, or: CommandError("ERR Invalid IDLE option argument for XCLAIM")))
            } else if ctx.args.isKeyword(j, "time") && more > 0 {
                j += 1
                deliveryTime = try ctx.args.integer(j, or: CommandError("ERR Invalid TIME option argument for XCLAIM"))
            } else if ctx.args.isKeyword(j, "retrycount") && more > 0 {
                j += 1
                retryCount = try ctx.args.integer(j, or: CommandError("ERR Invalid RETRYCOUNT option argument for XCLAIM"))
            } else if ctx.args.isKeyword(j, "lastid") && more > 0 {
                j += 1
                lastID = try StreamIDSyntax.parse(ctx.args[j]).id
            } else {
                throw CommandError("ERR Unrecognized XCLAIM option '\(raw: Array(ctx.args[j].readableBytesView))'")
            }
            j += 1
        }
        if deliveryTime == -1 || deliveryTime < 0 || deliveryTime > now { deliveryTime = now }
        let consumerName = ctx.args.bytes(3)
        let options = (force: force, justID: justID, retryCount: retryCount, deliveryTime: deliveryTime, lastID: lastID, minIdle: minIdle)
        var createdConsumer = false
        let (replies, log, changes) = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> ([ClaimReply], [[[UInt8]]], Int) in
            var replies: [ClaimReply] = []
            var log: [[[UInt8]]] = []
            var changes = 0
            var lastIDMoved = false
            stream.withGroup(name) { group in
                if options.lastID > group.lastID {
                    group.lastID = options.lastID
                    lastIDMoved = true
                }
            }
            var consumerReady = false
            for (id, _) in ids {
                let exists = stream.contains(id)
                let entry = exists && !options.justID ? stream.entry(id) : nil
                let snapshot = stream.group(name)!
                var pending = snapshot.pendingEntry(id)
                if !exists {
                    if let pending {
                        log.append(claimWords(key, name, pending, lastID: snapshot.lastID))
                        lastIDMoved = false
                        changes += 1
                        stream.withGroup(name) { $0.removePending(id) }
                    }
                    continue
                }
                var fresh = false
                if options.force && pending == nil {
                    // As Redis's new NACK: delivered once, then counted again below unless JUSTID.
                    pending = PendingEntry(id: id, deliveryTime: 0, deliveryCount: 1, consumer: Bytes())
                    fresh = true
                }
                guard var claimed = pending else { continue }
                if !fresh && options.minIdle != 0 && now &- claimed.deliveryTime < options.minIdle { continue }
                if !consumerReady {
                    stream.withGroup(name) { group in
                        if group.withConsumer(consumerName, { $0.seenTime = now }) == nil {
                            group.addConsumer(consumerName, seenTime: now)
                            createdConsumer = true
                        }
                    }
                    consumerReady = true
                }
                claimed.deliveryTime = options.deliveryTime
                if options.retryCount >= 0 {
                    claimed.deliveryCount = UInt64(bitPattern: options.retryCount)
                } else if !options.justID {
                    claimed.deliveryCount &+= 1
                }
                claimed.consumer = consumerName
                stream.withGroup(name) { $0.setPending(claimed) }
                replies.append(options.justID ? .id(id) : entry.map { .entry($0) } ?? .missing)
                log.append(claimWords(key, name, claimed, lastID: stream.group(name)!.lastID))
                lastIDMoved = false
                changes += 1
            }
            if lastIDMoved {
                log.append(setIDWords(key, name, stream.group(name)!))
                changes += 1
            }
            return (replies, log, changes)
        }!
        if createdConsumer {
            ctx.notify(key, "xgroup-createconsumer", .stream)
            ctx.dirty()
        }
        ctx.dirty(changes)
        ctx.reply.array(replies.count)
        for reply in replies { reply.write(&ctx.reply) }
        ctx.propagation = log
    }

    /// One element of an XCLAIM or XAUTOCLAIM reply.
    enum ClaimReply {
        case id(StreamID)
        case entry(StreamEntry)
        case missing

        func write(_ writer: inout RESPWriter) {
            switch self {
            case .id(let id): writer.streamID(id)
            case .entry(let entry): writer.streamEntry(entry)
            case .missing: writer.null()
            }
        }
    }

    static func xautoclaim(_ ctx: inout CommandContext) throws(CommandError) {
        var minIdle = try ctx.args.integer(4, or: CommandError("ERR Invalid min-idle-time argument for XAUTOCLAIM"))
        if minIdle < 0 { minIdle = 0 }
        var (start, exclusive) = try StreamIDSyntax.parseBound(ctx.args[5], missingSequence: 0)
        if exclusive {
            guard let next = start.incremented else { throw CommandError("ERR invalid start ID for the interval") }
            start = next
        }
        var count: Int64 = 100
        var justID = false
        var j = 6
        while j < ctx.args.count {
            let more = ctx.args.count - 1 - j
            if ctx.args.isKeyword(j, "count") && more > 0 {
                let error = CommandError("ERR COUNT must be > 0")
                count = try ctx.args.integer(j + 1, or: error)
                if count < 1 || count > Int64.max / 16 { throw error }
                j += 1
            } else if ctx.args.isKeyword(j, "justid") {
                justID = true
            } else {
                throw .syntax
            }
            j += 1
        }
        let key = ctx.args[1], name = ctx.args[2]
        guard try ctx.read(StreamKind.self, key)?.group(name) != nil else { throw noGroup(key, name) }
        let now = ctx.now
        let consumerName = ctx.args.bytes(3)
        var createdConsumer = false
        let outcome = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> (replies: [ClaimReply], deleted: [StreamID], cursor: StreamID, log: [[[UInt8]]]) in
            var attempts = count * 10
            var remaining = count
            var replies: [ClaimReply] = []
            var deleted: [StreamID] = []
            var log: [[[UInt8]]] = []
            var consumerReady = false
            // The pending entries from `start`, visited in order; the cursor is the one after the last visited.
            var candidates: [PendingEntry] = []
            let limit = Int(clamping: min(attempts, Int64(Int32.max))) + 1
            stream.group(name)!.forEachPending(from: start) { entry in
                candidates.append(entry)
                return candidates.count < limit
            }
            var lastVisited: StreamID? = nil
            var stoppedEarly = false
            for candidate in candidates {
                if attempts == 0 || remaining == 0 { stoppedEarly = true; break }
                attempts -= 1
                lastVisited = candidate.id
                if !stream.contains(candidate.id) {
                    log.append(claimWords(key, name, candidate, lastID: stream.group(name)!.lastID))
                    stream.withGroup(name) { $0.removePending(candidate.id) }
                    deleted.append(candidate.id)
                    remaining -= 1
                    continue
                }
                if minIdle != 0 && now &- candidate.deliveryTime < minIdle { continue }
                if !consumerReady {
                    stream.withGroup(name) { group in
                        if group.withConsumer(consumerName, { $0.seenTime = now }) == nil {
                            group.addConsumer(consumerName, seenTime: now)
                            createdConsumer = true
                        }
                    }
                    consumerReady = true
                }
                var claimed = candidate
                claimed.deliveryTime = now
                if !justID { claimed.deliveryCount &+= 1 }
                claimed.consumer = consumerName
                stream.withGroup(name) { $0.setPending(claimed) }
                replies.append(justID ? .id(candidate.id) : stream.entry(candidate.id).map { .entry($0) } ?? .missing)
                log.append(claimWords(key, name, claimed, lastID: stream.group(name)!.lastID))
                remaining -= 1
            }
            // Stopped by COUNT or the attempts: the cursor is the pending entry after the last one visited;
            // 0-0 when the list ran out.
            var cursor = StreamID.zero
            if stoppedEarly, let next = lastVisited?.incremented {
                stream.group(name)!.forEachPending(from: next) { cursor = $0.id; return false }
            }
            return (replies, deleted, cursor, log)
        }!
        if createdConsumer {
            ctx.notify(key, "xgroup-createconsumer", .stream)
            ctx.dirty()
        }
        ctx.dirty(outcome.log.count)
        ctx.reply.array(3)
        ctx.reply.streamID(outcome.cursor)
        ctx.reply.array(outcome.replies.count)
        for reply in outcome.replies { reply.write(&ctx.reply) }
        ctx.reply.array(outcome.deleted.count)
        for id in outcome.deleted { ctx.reply.streamID(id) }
        ctx.propagation = outcome.log
    }
}

// MARK: XREAD and XREADGROUP

extension StreamCommands {
    /// What XREAD / XREADGROUP asked for.
    struct ReadRequest {
        var count: Int64 = 0
        /// Milliseconds; nil without BLOCK, 0 waits forever.
        var block: Int64? = nil
        var group: ByteBuffer? = nil
        var consumer: ByteBuffer? = nil
        var noAck = false
        var keysIndex = 0
        var streams = 0
    }

    static func parseRead(_ ctx: CommandContext, group isGroupRead: Bool) throws(CommandError) -> ReadRequest {
        var request = ReadRequest()
        let argc = ctx.args.count
        var i = 1
        while i < argc {
            let more = argc - i - 1
            if ctx.args.isKeyword(i, "block") && more > 0 {
                if ctx.isScriptClient {
                    throw CommandError("ERR \(raw: Array(ctx.args[0].readableBytesView)) command is not allowed with BLOCK option from scripts")
                }
                i += 1
                let timeout = try ctx.args.integer(i, or: CommandError("ERR timeout is not an integer or out of range"))
                if timeout < 0 { throw CommandError("ERR timeout is negative") }
                request.block = timeout
            } else if ctx.args.isKeyword(i, "count") && more > 0 {
                i += 1
                request.count = max(0, try ctx.args.integer(i))
            } else if ctx.args.isKeyword(i, "streams") && more > 0 {
                request.keysIndex = i + 1
                let remaining = argc - request.keysIndex
                if remaining % 2 != 0 {
                    throw CommandError("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
                }
                request.streams = remaining / 2
                break
            } else if ctx.args.isKeyword(i, "group") && more >= 2 {
                if !isGroupRead { throw CommandError("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.") }
                request.group = ctx.args[i + 1]
                request.consumer = ctx.args[i + 2]
                i += 2
            } else if ctx.args.isKeyword(i, "noack") {
                if !isGroupRead { throw CommandError("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.") }
                request.noAck = true
            } else {
                throw .syntax
            }
            i += 1
        }
        if request.keysIndex == 0 { throw .syntax }
        if isGroupRead && request.group == nil { throw CommandError("ERR Missing GROUP option for XREADGROUP") }
        return request
    }

    static func xread(_ ctx: inout CommandContext) throws(CommandError) { try read(&ctx, group: false) }
    static func xreadgroup(_ ctx: inout CommandContext) throws(CommandError) { try read(&ctx, group: true) }

    /// The ID `>` stands for (new entries of the group) while parsing.
    static let newEntries = StreamID.max

    private static func read(_ ctx: inout CommandContext, group isGroupRead: Bool) throws(CommandError) {
        let request = try parseRead(ctx, group: isGroupRead)
        let idsIndex = request.keysIndex + request.streams
        if ctx.isRetryingBlocked {
            // The arguments were saved with the IDs resolved when the client blocked.
            var ids: [StreamID] = []
            for i in 0..<request.streams {
                let argument = ctx.args[idsIndex + i]
                ids.append(argument.readableBytesView.elementsEqual([UInt8(ascii: ">")]) ? newEntries : try StreamIDSyntax.parse(argument).id)
            }
            try serveBlocked(&ctx, request, ids: ids)
            return
        }
        // Resolve each key's ID; with a group, the key and the group must exist.
        var ids: [StreamID] = []
        for i in 0..<request.streams {
            let key = ctx.args[request.keysIndex + i]
            let stream = try ctx.read(StreamKind.self, key, touch: true)
            if let group = request.group, stream?.group(group) == nil {
                throw "NOGROUP No such key '\(raw: Array(key.readableBytesView))' or consumer group '\(raw: Array(group.readableBytesView))' in XREADGROUP with GROUP option"
            }
            let argument = ctx.args[idsIndex + i].readableBytesView
            if argument.elementsEqual([UInt8(ascii: "$")]) {
                if isGroupRead {
                    throw CommandError("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.")
                }
                ids.append(stream?.lastID ?? .zero)
            } else if argument.elementsEqual([UInt8(ascii: ">")]) {
                if !isGroupRead {
                    throw CommandError("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.")
                }
                ids.append(newEntries)
            } else {
                ids.append(try StreamIDSyntax.parse(ctx.args[idsIndex + i]).id)
            }
        }
        // Serve now what can be served.
        var served: [(key: ByteBuffer, entries: [(StreamID, StreamEntry?)])] = []
        var log: [[[UInt8]]] = []
        for i in 0..<request.streams {
            let key = ctx.args[request.keysIndex + i]
            // No copy of the stream is kept past these looks: a copy alive while XREADGROUP changes the
            // stream would make the change copy the whole stream.
            guard let (top, groupLastID) = try ctx.inspect(StreamKind.self, key, database: ctx.db, { stream in
                (stream.length > 0 ? stream.edgeID(first: false) : nil, request.group.flatMap { stream.group($0)?.lastID })
            }) else { continue }
            var after = ids[i]
            if request.group != nil {
                var serve = false
                var history = false
                if after != newEntries {
                    serve = true
                    history = true
                } else if let top, let groupLastID, top > groupLastID {
                    serve = true
                    after = groupLastID
                }
                if let entries = try readGroup(&ctx, request, key: key, after: after, serve: serve, history: history, log: &log) {
                    served.append((key, entries))
                }
                continue
            }
            guard let top, top > after else { continue }
            let from = after.incremented ?? .max
            let entries = try ctx.inspect(StreamKind.self, key, database: ctx.db) { stream in
                stream.entries(from: from, to: .max, limit: Int(clamping: request.count))
            } ?? []
            served.append((key, entries.map { ($0.id, $0) }))
        }
        if isGroupRead { ctx.propagation = log }
        if !served.isEmpty {
            replyRead(&ctx, served)
            return
        }
        guard let timeout = request.block else { return ctx.reply.nullArray() }
        if ctx.client.inTransaction || ctx.isScriptClient { return ctx.reply.nullArray() }
        // Block, remembering the IDs resolved now (`$` means the last ID at this moment) and the count
        // Redis uses for a blocked read without one.
        var words: [ByteBuffer] = [ctx.args[0], ByteBuffer(string: "COUNT"),
                                   ByteBuffer(string: String(request.count == 0 ? 1000 : request.count))]
        if let group = request.group, let consumer = request.consumer {
            words += [ByteBuffer(string: "GROUP"), group, consumer]
            if request.noAck { words.append(ByteBuffer(string: "NOACK")) }
        }
        words.append(ByteBuffer(string: "STREAMS"))
        for i in 0..<request.streams { words.append(ctx.args[request.keysIndex + i]) }
        for id in ids { words.append(id == newEntries ? ByteBuffer(string: ">") : ByteBuffer(bytes: id.bytes)) }
        let keys = (0..<request.streams).map { ctx.args[request.keysIndex + $0] }
        let original = ctx.args
        ctx.args = Arguments(words)
        ctx.server.block(ctx, keys: keys, timeout: timeout)
        ctx.args = original
    }

    /// XREADGROUP on one key: delivers new entries (`serve` and not `history`) or the consumer's pending
    /// ones (`history`); the consumer is created on the way (logged when NOACK hides it from the XCLAIMs).
    /// Nil when nothing is to be served (and then, as in Redis, no consumer is created).
    private static func readGroup(_ ctx: inout CommandContext, _ request: ReadRequest, key: ByteBuffer, after: StreamID,
                                  serve: Bool, history: Bool, log: inout [[[UInt8]]]) throws(CommandError) -> [(StreamID, StreamEntry?)]? {
        let group = request.group!, consumer = Bytes(request.consumer!)
        let now = ctx.now
        var created = false
        let count = Int(clamping: request.count)
        guard serve else { return nil }  // the consumer is created only when something is served
        let result = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> ([(StreamID, StreamEntry?)]?, [[[UInt8]]]) in
            var words: [[[UInt8]]] = []
            stream.withGroup(group) { state in
                if state.withConsumer(consumer, { $0.seenTime = now }) == nil {
                    state.addConsumer(consumer, seenTime: now)
                    created = true
                }
            }
            if created && request.noAck {
                words.append([Array("XGROUP".utf8), Array("CREATECONSUMER".utf8), Array(key.readableBytesView),
                              Array(group.readableBytesView), consumer.array])
            }
            if history {
                return (StreamCommands.history(&stream, group: group, consumer: consumer, after: after, count: count, now: now), words)
            }
            let delivered = deliver(&stream, group: group, consumer: consumer, after: after, count: count,
                                    noAck: request.noAck, now: now, key: key, logging: ctx.server.aof != nil)
            return (delivered.entries.map { ($0.id, $0) }, words + delivered.log)
        }!
        if created {
            ctx.notify(key, "xgroup-createconsumer", .stream)
            ctx.dirty()
        }
        log += result.1
        if result.0 != nil { ctx.dirty() }
        return result.0
    }

    /// The reply of XREAD/XREADGROUP: per key its entries (`[id, nil]` for a pending entry deleted from the
    /// stream); a map in RESP3.
    private static func replyRead(_ ctx: inout CommandContext, _ served: [(key: ByteBuffer, entries: [(StreamID, StreamEntry?)])]) {
        if ctx.reply.version == .v2 { ctx.reply.array(served.count) } else { ctx.reply.map(served.count) }
        for (key, entries) in served {
            if ctx.reply.version == .v2 { ctx.reply.array(2) }
            ctx.reply.bulk(key)
            ctx.reply.array(entries.count)
            for (id, entry) in entries {
                if let entry {
                    ctx.reply.streamEntry(entry)
                } else {
                    ctx.reply.array(2)
                    ctx.reply.streamID(id)
                    ctx.reply.nullArray()
                }
            }
        }
    }

    /// A blocked XREAD/XREADGROUP whose key got data (`serveClientsBlockedOnStreamKey`): served from that
    /// key only, when its last ID passed the one waited for; XREADGROUP gets an error when the key or
    /// the group is gone.
    private static func serveBlocked(_ ctx: inout CommandContext, _ request: ReadRequest, ids: [StreamID]) throws(CommandError) {
        guard let ready = ctx.readyKey else { return }
        guard let index = (0..<request.streams).first(where: { Bytes(ctx.args[request.keysIndex + $0]) == ready }) else { return }
        let key = ctx.args[request.keysIndex + index]
        let state: (lastID: StreamID, groupLastID: StreamID?)?
        do {
            state = try ctx.inspect(StreamKind.self, key, database: ctx.db) { stream in
                (stream.lastID, request.group.flatMap { stream.group($0)?.lastID })
            }
        } catch {
            state = nil
        }
        guard let state else {
            if request.group != nil { ctx.reply.error("UNBLOCKED the stream key no longer exists") }
            return
        }
        var after = ids[index]
        if request.group != nil {
            guard let groupLastID = state.groupLastID else {
                ctx.reply.error("NOGROUP the consumer group this client was blocked on no longer exists")
                return
            }
            after = groupLastID
        }
        guard state.lastID > after else { return }
        var log: [[[UInt8]]] = []
        let entries: [(StreamID, StreamEntry?)]
        if request.group != nil {
            entries = try readGroup(&ctx, request, key: key, after: after, serve: true, history: false, log: &log) ?? []
            ctx.propagation = log
        } else {
            let from = after.incremented ?? .max
            entries = (try ctx.inspect(StreamKind.self, key, database: ctx.db) { stream in
                stream.entries(from: from, to: .max, limit: Int(clamping: request.count))
            } ?? []).map { ($0.id, $0) }
        }
        replyRead(&ctx, [(key, entries)])
    }
}

// MARK: XGROUP and XINFO

extension StreamCommands {
    /// The checks every XGROUP subcommand but HELP starts with (`xgroupCommand`): the options (MKSTREAM and
    /// ENTRIESREAD for CREATE and SETID), the key (which must exist without MKSTREAM) and, for SETID,
    /// CREATECONSUMER and DELCONSUMER, the group.
    private static func groupPreamble(_ ctx: CommandContext, _ subcommand: String) throws(CommandError) -> (exists: Bool, makeStream: Bool, entriesRead: Int64) {
        var makeStream = false
        var entriesRead = StreamGroup.unknownEntriesRead
        var i = 5
        let create = subcommand == "create", setID = subcommand == "setid"
        while i < ctx.args.count {
            if create && ctx.args.isKeyword(i, "mkstream") {
                makeStream = true
                i += 1
            } else if (create || setID) && ctx.args.isKeyword(i, "entriesread") && i + 1 < ctx.args.count {
                entriesRead = try ctx.args.integer(i + 1)
                if entriesRead < 0 && entriesRead != StreamGroup.unknownEntriesRead {
                    throw CommandError("ERR value for ENTRIESREAD must be positive or -1")
                }
                i += 2
            } else {
                throw .subcommandSyntax(Array(ctx.args[1].readableBytesView), of: "xgroup")
            }
        }
        let key = ctx.args[2]
        let stream = try ctx.inspect(StreamKind.self, key, database: ctx.db, { $0 })
        if !makeStream {
            guard let stream else {
                throw CommandError("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
            }
            if ["setid", "createconsumer", "delconsumer"].contains(subcommand), stream.group(ctx.args[3]) == nil {
                throw "NOGROUP No such consumer group '\(raw: Array(ctx.args[3].readableBytesView))' for key name '\(raw: Array(key.readableBytesView))'"
            }
        }
        return (stream != nil, makeStream, entriesRead)
    }

    static func groupCreate(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 8 { throw .subcommandSyntax(Array(ctx.args[1].readableBytesView), of: "xgroup") }
        let (exists, _, entriesRead) = try groupPreamble(ctx, "create")
        let key = ctx.args[2], name = ctx.args.bytes(3)
        var id = StreamID.zero
        if ctx.args[4].readableBytesView.elementsEqual([UInt8(ascii: "$")]) {
            id = try ctx.inspect(StreamKind.self, key, database: ctx.db, { $0.lastID }) ?? .zero
        } else {
            id = try StreamIDSyntax.parse(ctx.args[4]).id
        }
        if !exists {
            _ = try ctx.modify(StreamKind.self, key, create: true) { _ throws(CommandError) in }
            ctx.server.keyModified(ctx.db, key)
        }
        let created = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> Bool in
            stream.addGroup(StreamGroup(name: name, lastID: id, entriesRead: entriesRead))
        }!
        guard created else { throw CommandError("BUSYGROUP Consumer Group name already exists") }
        ctx.reply.ok()
        ctx.dirty()
        ctx.notify(key, "xgroup-create", .stream)
    }

    static func groupSetID(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count != 5 && ctx.args.count != 7 { throw .subcommandSyntax(Array(ctx.args[1].readableBytesView), of: "xgroup") }
        let (_, _, entriesRead) = try groupPreamble(ctx, "setid")
        let key = ctx.args[2], name = ctx.args[3]
        let id: StreamID
        if ctx.args[4].readableBytesView.elementsEqual([UInt8(ascii: "$")]) {
            id = try ctx.inspect(StreamKind.self, key, database: ctx.db, { $0.lastID })!
        } else {
            id = try StreamIDSyntax.parse(ctx.args[4], strict: false).id
        }
        _ = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) in
            stream.withGroup(name) { group in
                group.lastID = id
                group.entriesRead = entriesRead
            }
        }
        ctx.reply.ok()
        ctx.dirty()
        ctx.notify(key, "xgroup-setid", .stream)
    }

    static func groupDestroy(_ ctx: inout CommandContext) throws(CommandError) {
        _ = try groupPreamble(ctx, "destroy")
        let key = ctx.args[2], name = ctx.args[3]
        let removed = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> Bool in
            stream.removeGroup(name)
        }!
        guard removed else { return ctx.reply.integer(0) }
        ctx.reply.integer(1)
        ctx.dirty()
        ctx.notify(key, "xgroup-destroy", .stream)
        ctx.server.signalKeyReady(ctx.db, key)
    }

    static func groupCreateConsumer(_ ctx: inout CommandContext) throws(CommandError) {
        _ = try groupPreamble(ctx, "createconsumer")
        let key = ctx.args[2], name = ctx.args[3], consumer = ctx.args.bytes(4)
        let now = ctx.now
        let created = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> Bool in
            stream.withGroup(name) { $0.addConsumer(consumer, seenTime: now) } ?? false
        }!
        if created {
            ctx.dirty()
            ctx.notify(key, "xgroup-createconsumer", .stream)
        }
        ctx.reply.integer(created ? 1 : 0)
    }

    static func groupDeleteConsumer(_ ctx: inout CommandContext) throws(CommandError) {
        _ = try groupPreamble(ctx, "delconsumer")
        let key = ctx.args[2], name = ctx.args[3], consumer = ctx.args[4]
        let pending = try ctx.modify(StreamKind.self, key, create: false) { stream throws(CommandError) -> Int? in
            stream.withGroup(name) { $0.deleteConsumer(consumer) } ?? nil
        }!
        guard let pending else { return ctx.reply.integer(0) }
        ctx.reply.integer(pending)
        ctx.dirty()
        ctx.notify(key, "xgroup-delconsumer", .stream)
    }

    static func groupHelp(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "XGROUP", [
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ])
    }

    static func infoHelp(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "XINFO", [
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ])
    }

    /// The stream XINFO reads; `no such key` when absent.
    private static func infoStream(_ ctx: CommandContext) throws(CommandError) -> StreamValue {
        guard let stream = try ctx.read(StreamKind.self, ctx.args[2]) else { throw .noSuchKey }
        return stream
    }

    static func infoConsumers(_ ctx: inout CommandContext) throws(CommandError) {
        let stream = try infoStream(ctx)
        guard let group = stream.group(ctx.args[3]) else {
            throw "NOGROUP No such consumer group '\(raw: Array(ctx.args[3].readableBytesView))' for key name '\(raw: Array(ctx.args[2].readableBytesView))'"
        }
        let now = ctx.now
        ctx.reply.array(group.consumers.count)
        for consumer in group.consumers {
            ctx.reply.map(3)
            ctx.reply.bulk("name")
            consumer.name.withBytes { ctx.reply.bulk($0) }
            ctx.reply.bulk("pending")
            ctx.reply.integer(consumer.pending.count)
            ctx.reply.bulk("idle")
            ctx.reply.integer(max(0, now &- consumer.seenTime))
        }
    }

    static func infoGroups(_ ctx: inout CommandContext) throws(CommandError) {
        let stream = try infoStream(ctx)
        ctx.reply.array(stream.groups.count)
        for group in stream.groups {
            ctx.reply.map(6)
            ctx.reply.bulk("name")
            group.name.withBytes { ctx.reply.bulk($0) }
            ctx.reply.bulk("consumers")
            ctx.reply.integer(group.consumers.count)
            ctx.reply.bulk("pending")
            ctx.reply.integer(group.pending.count)
            ctx.reply.bulk("last-delivered-id")
            ctx.reply.streamID(group.lastID)
            ctx.reply.bulk("entries-read")
            replyEntriesRead(&ctx, group)
            ctx.reply.bulk("lag")
            if let lag = stream.lag(of: group) { ctx.reply.integer(lag) } else { ctx.reply.null() }
        }
    }

    private static func replyEntriesRead(_ ctx: inout CommandContext, _ group: StreamGroup) {
        if group.entriesRead != StreamGroup.unknownEntriesRead { ctx.reply.integer(group.entriesRead) } else { ctx.reply.null() }
    }

    static func infoStream(_ ctx: inout CommandContext) throws(CommandError) {
        let stream = try infoStream(ctx)
        let options = ctx.args.count - 3
        var full = false
        var count: Int64 = 10
        if options > 0 {
            let syntax = CommandError.subcommandSyntax(Array(ctx.args[1].readableBytesView), of: "xinfo")
            guard options == 1 || options == 3, ctx.args.isKeyword(3, "full") else { throw syntax }
            full = true
            if options == 3 {
                guard ctx.args.isKeyword(4, "count") else { throw syntax }
                count = try ctx.args.integer(5)
                if count < 0 { count = 10 }
            }
        }
        ctx.reply.map(full ? 9 : 10)
        ctx.reply.bulk("length")
        ctx.reply.integer(stream.length)
        ctx.reply.bulk("radix-tree-keys")
        ctx.reply.integer(stream.nodeCount)
        ctx.reply.bulk("radix-tree-nodes")
        ctx.reply.integer(radixTreeNodes(stream))
        ctx.reply.bulk("last-generated-id")
        ctx.reply.streamID(stream.lastID)
        ctx.reply.bulk("max-deleted-entry-id")
        ctx.reply.streamID(stream.maxDeletedID)
        ctx.reply.bulk("entries-added")
        ctx.reply.integer(Int64(bitPattern: stream.entriesAdded))
        ctx.reply.bulk("recorded-first-entry-id")
        ctx.reply.streamID(stream.firstID)
        if !full {
            ctx.reply.bulk("groups")
            ctx.reply.integer(stream.groups.count)
            ctx.reply.bulk("first-entry")
            if let first = stream.entries(from: .zero, to: .max, limit: 1).first { ctx.reply.streamEntry(first) } else { ctx.reply.null() }
            ctx.reply.bulk("last-entry")
            if let last = stream.entries(from: .zero, to: .max, reverse: true, limit: 1).first { ctx.reply.streamEntry(last) } else { ctx.reply.null() }
            return
        }
        let limit = Int(clamping: count)
        ctx.reply.bulk("entries")
        let entries = stream.entries(from: .zero, to: .max, limit: limit)
        ctx.reply.array(entries.count)
        for entry in entries { ctx.reply.streamEntry(entry) }
        ctx.reply.bulk("groups")
        ctx.reply.array(stream.groups.count)
        for group in stream.groups {
            ctx.reply.map(7)
            ctx.reply.bulk("name")
            group.name.withBytes { ctx.reply.bulk($0) }
            ctx.reply.bulk("last-delivered-id")
            ctx.reply.streamID(group.lastID)
            ctx.reply.bulk("entries-read")
            replyEntriesRead(&ctx, group)
            ctx.reply.bulk("lag")
            if let lag = stream.lag(of: group) { ctx.reply.integer(lag) } else { ctx.reply.null() }
            ctx.reply.bulk("pel-count")
            ctx.reply.integer(group.pending.count)
            ctx.reply.bulk("pending")
            var pending: [PendingEntry] = []
            group.forEachPending(from: .zero) { entry in
                pending.append(entry)
                return limit == 0 || pending.count < limit
            }
            ctx.reply.array(pending.count)
            for entry in pending {
                ctx.reply.array(4)
                ctx.reply.streamID(entry.id)
                entry.consumer.withBytes { ctx.reply.bulk($0) }
                ctx.reply.integer(entry.deliveryTime)
                ctx.reply.integer(Int64(bitPattern: entry.deliveryCount))
            }
            ctx.reply.bulk("consumers")
            ctx.reply.array(group.consumers.count)
            for consumer in group.consumers {
                ctx.reply.map(4)
                ctx.reply.bulk("name")
                consumer.name.withBytes { ctx.reply.bulk($0) }
                ctx.reply.bulk("seen-time")
                ctx.reply.integer(consumer.seenTime)
                ctx.reply.bulk("pel-count")
                ctx.reply.integer(consumer.pending.count)
                ctx.reply.bulk("pending")
                var ids: [StreamID] = []
                consumer.pending.forEach(from: 0) { id in
                    ids.append(id)
                    return limit == 0 || ids.count < limit
                }
                ctx.reply.array(ids.count)
                for id in ids {
                    let entry = group.pendingEntry(id)!
                    ctx.reply.array(3)
                    ctx.reply.streamID(id)
                    ctx.reply.integer(entry.deliveryTime)
                    ctx.reply.integer(Int64(bitPattern: entry.deliveryCount))
                }
            }
        }
    }

    /// An estimate of Redis's `radix-tree-nodes`: the nodes of a compressed trie over the nodes' 16-byte
    /// big-endian master IDs (a chain of single-child bytes is one node, plus the node it ends in). Redis's
    /// rax splits and merges its nodes in ways this does not model, so the figure can differ from
    /// redis-server's for the same stream; nothing depends on it.
    static func radixTreeNodes(_ stream: StreamValue) -> Int {
        let keys = stream.nodeListpacks.map { $0.master.bigEndianBytes }
        guard !keys.isEmpty else { return 1 }
        // Count nodes of the compressed trie built over sorted keys of equal length.
        func count(_ range: Range<Int>, depth: Int) -> Int {
            if depth == 16 { return 1 }
            // Longest common extension of all keys in range from `depth`.
            var common = depth
            let first = keys[range.lowerBound], last = keys[range.upperBound - 1]
            while common < 16 && first[common] == last[common] { common += 1 }
            var nodes = common > depth ? 1 : 0
            if common == 16 { return nodes + 1 }
            // A branching node, and each child subtree.
            nodes += 1
            var start = range.lowerBound
            while start < range.upperBound {
                var end = start + 1
                while end < range.upperBound && keys[end][common] == keys[start][common] { end += 1 }
                nodes += count(start..<end, depth: common + 1)
                start = end
            }
            return nodes
        }
        return count(0..<keys.count, depth: 0)
    }
}
