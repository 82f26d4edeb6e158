import NIOCore
import NovaEngine
import NovaRESP

/// Sorted-set commands (BZPOPMIN, BZPOPMAX and BZMPOP wait through BlockingCommands).
enum SortedSetCommands {
    // MARK: Adding and removing

    /// ZADD's option flags.
    struct AddOptions {
        var nx = false, xx = false, gt = false, lt = false, ch = false, incr = false
    }

    /// ZADD and ZINCRBY (`incr` with the pair at arguments 2 and 3).
    static func add(_ ctx: inout CommandContext, options initial: AddOptions, scoreIndex initialIndex: Int) throws(CommandError) {
        var options = initial
        var scoreIndex = initialIndex
        if initialIndex == 2 && !options.incr {
            while scoreIndex < ctx.args.count {
                if ctx.args.isKeyword(scoreIndex, "nx") { options.nx = true }
                else if ctx.args.isKeyword(scoreIndex, "xx") { options.xx = true }
                else if ctx.args.isKeyword(scoreIndex, "ch") { options.ch = true }
                else if ctx.args.isKeyword(scoreIndex, "incr") { options.incr = true }
                else if ctx.args.isKeyword(scoreIndex, "gt") { options.gt = true }
                else if ctx.args.isKeyword(scoreIndex, "lt") { options.lt = true }
                else { break }
                scoreIndex += 1
            }
        }
        let elements = ctx.args.count - scoreIndex
        guard elements > 0, elements % 2 == 0 else { throw .syntax }
        if options.nx && options.xx { throw CommandError("ERR XX and NX options at the same time are not compatible") }
        if (options.gt && options.nx) || (options.lt && options.nx) || (options.gt && options.lt) {
            throw CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
        }
        if options.incr && elements > 2 { throw CommandError("ERR INCR option supports a single increment-element pair") }
        var scores: [Double] = []
        for index in stride(from: scoreIndex, to: ctx.args.count, by: 2) { scores.append(try ctx.args.double(index)) }

        let args = ctx.args
        let limits = ctx.limits
        struct Outcome { var added = 0, updated = 0, processed = 0, score = 0.0 }
        let outcome = try ctx.modify(SortedSetKind.self, args[1], create: !options.xx) { zset throws(CommandError) -> Outcome in
            var outcome = Outcome()
            for (position, given) in scores.enumerated() {
                let member = args[scoreIndex + 1 + position * 2]
                var score = given
                if let current = zset.score(member) {
                    if options.nx { continue }
                    if options.incr {
                        score += current
                        if score.isNaN { throw CommandError("ERR resulting score is not a number (NaN)") }
                    }
                    if (options.lt && score >= current) || (options.gt && score <= current) { continue }
                    if score != current {
                        zset.set(Bytes(member), score: score, limits: limits)
                        outcome.updated += 1
                    }
                } else if !options.xx {
                    zset.set(Bytes(member), score: score, limits: limits)
                    outcome.added += 1
                } else {
                    continue
                }
                outcome.processed += 1
                outcome.score = score
            }
            return outcome
        } ?? Outcome()
        ctx.dirty(outcome.added + outcome.updated)
        if outcome.added + outcome.updated > 0 { ctx.modified(args[1], options.incr ? "zincr" : "zadd", .zset) }
        if outcome.added > 0 { ctx.server.signalKeyReady(ctx.db, args[1]) }
        if options.incr {
            if outcome.processed > 0 { ctx.reply.double(outcome.score) } else { ctx.reply.null() }
        } else {
            ctx.reply.integer(options.ch ? outcome.added + outcome.updated : outcome.added)
        }
    }

    static func zadd(_ ctx: inout CommandContext) throws(CommandError) { try add(&ctx, options: AddOptions(), scoreIndex: 2) }

    static func zincrby(_ ctx: inout CommandContext) throws(CommandError) {
        var options = AddOptions()
        options.incr = true
        try add(&ctx, options: options, scoreIndex: 2)
    }

    static func zrem(_ ctx: inout CommandContext) throws(CommandError) {
        let args = ctx.args
        let removed = try ctx.modify(SortedSetKind.self, args[1], create: false) { zset throws(CommandError) -> Int in
            var removed = 0
            for index in 2..<args.count where zset.remove(args[index]) { removed += 1 }
            return removed
        } ?? 0
        ctx.dirty(removed)
        if removed > 0 { ctx.modified(args[1], "zrem", .zset) }
        ctx.reply.integer(removed)
    }

    // MARK: Reading single members

    static func zscore(_ ctx: inout CommandContext) throws(CommandError) {
        guard let score = try ctx.read(SortedSetKind.self, ctx.args[1])?.score(ctx.args[2]) else { return ctx.reply.null() }
        ctx.reply.double(score)
    }

    static func zmscore(_ ctx: inout CommandContext) throws(CommandError) {
        let zset = try ctx.read(SortedSetKind.self, ctx.args[1])
        ctx.reply.array(ctx.args.count - 2)
        for index in 2..<ctx.args.count {
            if let score = zset?.score(ctx.args[index]) { ctx.reply.double(score) } else { ctx.reply.null() }
        }
    }

    static func zcard(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(try ctx.read(SortedSetKind.self, ctx.args[1])?.count ?? 0)
    }

    /// ZRANK / ZREVRANK `key member [WITHSCORE]` (WITHSCORE as Redis 7.2).
    static func rank(_ ctx: inout CommandContext, reversed: Bool) throws(CommandError) {
        if ctx.args.count > 4 { throw .arity(ctx.spec.fullName) }
        let withScore = ctx.args.count == 4
        if withScore && !ctx.args.isKeyword(3, "withscore") { throw .syntax }
        guard let zset = try ctx.read(SortedSetKind.self, ctx.args[1]), let rank = zset.rank(ctx.args[2]) else {
            return withScore ? ctx.reply.nullArray() : ctx.reply.null()
        }
        let position = reversed ? zset.count - 1 - rank : rank
        if withScore {
            ctx.reply.array(2)
            ctx.reply.integer(position)
            ctx.reply.double(zset[rank].score)
        } else {
            ctx.reply.integer(position)
        }
    }

    static func zrank(_ ctx: inout CommandContext) throws(CommandError) { try rank(&ctx, reversed: false) }
    static func zrevrank(_ ctx: inout CommandContext) throws(CommandError) { try rank(&ctx, reversed: true) }

    // MARK: Ranges

    /// Parses a score interval bound (`1.5`, `(1.5`, `-inf`, `+inf`) as Redis's `zslParseRange`.
    static func scoreRange(_ ctx: CommandContext, min minIndex: Int, max maxIndex: Int) throws(CommandError) -> ScoreRange {
        func bound(_ index: Int) -> (Double, Bool)? {
            let view = ctx.args[index].readableBytesView
            if view.first == UInt8(ascii: "(") {
                return RedisFloat.parseRangeBound(view.dropFirst()).map { ($0, true) }
            }
            return RedisFloat.parseRangeBound(view).map { ($0, false) }
        }
        guard let low = bound(minIndex), let high = bound(maxIndex) else {
            throw CommandError("ERR min or max is not a float")
        }
        return ScoreRange(min: low.0, max: high.0, minExclusive: low.1, maxExclusive: high.1)
    }

    /// Parses a member interval (`-`, `+`, `[a`, `(a`) as Redis's `zslParseLexRange`.
    static func lexRange(_ ctx: CommandContext, min minIndex: Int, max maxIndex: Int) throws(CommandError) -> LexRange {
        func bound(_ index: Int) -> LexBound? {
            let view = ctx.args[index].readableBytesView
            guard let first = view.first else { return nil }
            switch first {
            case UInt8(ascii: "+"): return view.count == 1 ? .plusInfinity : nil
            case UInt8(ascii: "-"): return view.count == 1 ? .minusInfinity : nil
            case UInt8(ascii: "("): return .value(Bytes(Array(view.dropFirst())), exclusive: true)
            case UInt8(ascii: "["): return .value(Bytes(Array(view.dropFirst())), exclusive: false)
            default: return nil
            }
        }
        guard let low = bound(minIndex), let high = bound(maxIndex) else {
            throw CommandError("ERR min or max not valid string range item")
        }
        return LexRange(min: low, max: high)
    }

    static func zcount(_ ctx: inout CommandContext) throws(CommandError) {
        let range = try scoreRange(ctx, min: 2, max: 3)
        ctx.reply.integer(try ctx.read(SortedSetKind.self, ctx.args[1])?.ranks(in: range).count ?? 0)
    }

    static func zlexcount(_ ctx: inout CommandContext) throws(CommandError) {
        let range = try lexRange(ctx, min: 2, max: 3)
        ctx.reply.integer(try ctx.read(SortedSetKind.self, ctx.args[1])?.ranks(in: range).count ?? 0)
    }

    enum RangeKind {
        case rank, score, lex

        /// The keyspace event of ZREMRANGEBY*.
        var removeEvent: StaticString {
            switch self {
            case .rank: "zremrangebyrank"
            case .score: "zremrangebyscore"
            case .lex: "zremrangebylex"
            }
        }
    }

    /// Redis's rank normalisation for ZRANGE / ZREMRANGEBYRANK: nil for an empty range.
    static func rankRange(_ start: Int64, _ end: Int64, count: Int) -> Range<Int>? {
        let length = Int64(count)
        var start = start < 0 ? start + length : start
        var end = end < 0 ? end + length : end
        if start < 0 { start = 0 }
        guard start <= end, start < length else { return nil }
        if end >= length { end = length - 1 }
        return Int(start)..<Int(end + 1)
    }

    /// The shared body of ZRANGE, ZRANGESTORE and the legacy range commands (Redis's `zrangeGenericCommand`):
    /// the source key at `keyIndex`, then the two bounds, then options. `kind`/`reversed` are fixed by
    /// the legacy commands and chosen by BYSCORE / BYLEX / REV otherwise.
    static func rangeGeneric(
        _ ctx: inout CommandContext, keyIndex: Int, store: Bool, kind fixedKind: RangeKind?, reversed fixedReversed: Bool?
    ) throws(CommandError) {
        var kind = fixedKind
        var reversed = fixedReversed
        var withScores = false
        var offset: Int64 = 0
        var limit: Int64 = -1
        var index = keyIndex + 3
        while index < ctx.args.count {
            let remaining = ctx.args.count - index - 1
            if !store && ctx.args.isKeyword(index, "withscores") {
                withScores = true
            } else if ctx.args.isKeyword(index, "limit") && remaining >= 2 {
                offset = try ctx.args.integer(index + 1)
                limit = try ctx.args.integer(index + 2)
                index += 2
            } else if fixedReversed == nil && reversed == nil && ctx.args.isKeyword(index, "rev") {
                reversed = true
            } else if fixedKind == nil && kind == nil && ctx.args.isKeyword(index, "bylex") {
                kind = .lex
            } else if fixedKind == nil && kind == nil && ctx.args.isKeyword(index, "byscore") {
                kind = .score
            } else {
                throw .syntax
            }
            index += 1
        }
        let rangeKind = kind ?? .rank
        let isReversed = reversed ?? false
        if limit != -1 && rangeKind == .rank {
            throw CommandError("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        }
        if withScores && rangeKind == .lex {
            throw CommandError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        }
        // Reversed score and member ranges are written max first.
        var minIndex = keyIndex + 1
        var maxIndex = keyIndex + 2
        if isReversed && rangeKind != .rank { swap(&minIndex, &maxIndex) }

        enum Bounds { case ranks(Int64, Int64), scores(ScoreRange), members(LexRange) }
        let bounds: Bounds
        switch rangeKind {
        case .rank: bounds = .ranks(try ctx.args.integer(minIndex), try ctx.args.integer(maxIndex))
        case .score: bounds = .scores(try scoreRange(ctx, min: minIndex, max: maxIndex))
        case .lex: bounds = .members(try lexRange(ctx, min: minIndex, max: maxIndex))
        }

        let elements: [ScoredMember]
        if let zset = try ctx.read(SortedSetKind.self, ctx.args[keyIndex]) {
            switch bounds {
            case .ranks(let start, let end):
                if let ranks = rankRange(start, end, count: zset.count) {
                    let selected = isReversed
                        ? (zset.count - ranks.upperBound)..<(zset.count - ranks.lowerBound)
                        : ranks
                    elements = zset.elements(ranks: selected, reversed: isReversed)
                } else {
                    elements = []
                }
            case .scores(let range):
                elements = limited(zset, zset.ranks(in: range), reversed: isReversed, offset: offset, limit: limit)
            case .members(let range):
                elements = offset < 0 ? [] : zset.elements(in: range, reversed: isReversed, offset: Int(clamping: offset),
                                                          limit: limit < 0 ? nil : Int(clamping: limit))
            }
        } else {
            elements = []
        }

        storeOrReply(&ctx, elements, store: store ? "zrangestore" : nil, withScores: withScores)
    }

    /// The end of every range and algebra command: the result stored at argument 1 (replying its size,
    /// announcing `event`), or replied when there is no event.
    ///
    /// ZRANGESTORE starts with the encoding its size suggests and converts while adding, as Redis's
    /// `zsetTypeCreate`; ZUNIONSTORE / ZINTERSTORE / ZDIFFSTORE build a skiplist and convert once at the end
    /// (`zsetConvertToListpackIfNeeded`), so a -0 score survives there when the result stays a skiplist.
    static func storeOrReply(
        _ ctx: inout CommandContext, _ elements: [ScoredMember], store event: StaticString?, withScores: Bool,
        convertAtEnd: Bool = false
    ) {
        if let event {
            let limits = ctx.limits
            let staysSkiplist = convertAtEnd && (elements.count > limits.zsetMaxListpackEntries
                || elements.contains { $0.member.count > limits.zsetMaxListpackValue })
            var result = SortedSetValue(listpack: !staysSkiplist)
            for element in elements { result.set(element.member, score: element.score, limits: ctx.limits) }
            ctx.store(.zset(result), at: ctx.args[1], event: event, .zset)
            ctx.reply.integer(result.count)
        } else {
            ctx.replyScored(elements, withScores: withScores)
        }
    }

    /// Applies LIMIT offset count to the elements at `ranks` walked in the requested direction.
    static func limited(_ zset: SortedSetValue, _ ranks: Range<Int>, reversed: Bool, offset: Int64, limit: Int64) -> [ScoredMember] {
        guard offset >= 0, offset < Int64(ranks.count) else { return [] }
        let available = ranks.count - Int(offset)
        let taken = limit < 0 ? available : min(available, Int(clamping: limit))
        let selected = reversed
            ? (ranks.upperBound - Int(offset) - taken)..<(ranks.upperBound - Int(offset))
            : (ranks.lowerBound + Int(offset))..<(ranks.lowerBound + Int(offset) + taken)
        return zset.elements(ranks: selected, reversed: reversed)
    }

    static func zrange(_ ctx: inout CommandContext) throws(CommandError) {
        try rangeGeneric(&ctx, keyIndex: 1, store: false, kind: nil, reversed: nil)
    }
    static func zrangestore(_ ctx: inout CommandContext) throws(CommandError) {
        try rangeGeneric(&ctx, keyIndex: 2, store: true, kind: nil, reversed: nil)
    }
    static func zrevrange(_ ctx: inout CommandContext) throws(CommandError) {
        try rangeGeneric(&ctx, keyIndex: 1, store: false, kind: .rank, reversed: true)
    }
    static func zrangebyscore(_ ctx: inout CommandContext) throws(CommandError) {
        try rangeGeneric(&ctx, keyIndex: 1, store: false, kind: .score, reversed: false)
    }
    static func zrevrangebyscore(_ ctx: inout CommandContext) throws(CommandError) {
        try rangeGeneric(&ctx, keyIndex: 1, store: false, kind: .score, reversed: true)
    }
    static func zrangebylex(_ ctx: inout CommandContext) throws(CommandError) {
        try rangeGeneric(&ctx, keyIndex: 1, store: false, kind: .lex, reversed: false)
    }
    static func zrevrangebylex(_ ctx: inout CommandContext) throws(CommandError) {
        try rangeGeneric(&ctx, keyIndex: 1, store: false, kind: .lex, reversed: true)
    }

    // MARK: Removing ranges

    static func removeRange(_ ctx: inout CommandContext, _ kind: RangeKind) throws(CommandError) {
        enum Bounds { case ranks(Int64, Int64), scores(ScoreRange), members(LexRange) }
        let bounds: Bounds
        switch kind {
        case .rank: bounds = .ranks(try ctx.args.integer(2), try ctx.args.integer(3))
        case .score: bounds = .scores(try scoreRange(ctx, min: 2, max: 3))
        case .lex: bounds = .members(try lexRange(ctx, min: 2, max: 3))
        }
        let removed = try ctx.modify(SortedSetKind.self, ctx.args[1], create: false) { zset throws(CommandError) -> Int in
            switch bounds {
            case .ranks(let start, let end):
                guard let ranks = rankRange(start, end, count: zset.count) else { return 0 }
                return zset.removeRanks(ranks)
            case .scores(let range): return zset.removeRanks(zset.ranks(in: range))
            case .members(let range): return zset.removeRanks(zset.ranks(in: range))
            }
        } ?? 0
        ctx.dirty(removed)
        if removed > 0 { ctx.modified(ctx.args[1], kind.removeEvent, .zset) }
        ctx.reply.integer(removed)
    }

    static func zremrangebyrank(_ ctx: inout CommandContext) throws(CommandError) { try removeRange(&ctx, .rank) }
    static func zremrangebyscore(_ ctx: inout CommandContext) throws(CommandError) { try removeRange(&ctx, .score) }
    static func zremrangebylex(_ ctx: inout CommandContext) throws(CommandError) { try removeRange(&ctx, .lex) }

    // MARK: Popping

    /// Pops up to `count` lowest (or highest) elements from the first non-empty sorted set of `keys`;
    /// nil when all are empty or absent. WRONGTYPE stops at the first key of another type, as Redis.
    static func pop(_ ctx: inout CommandContext, keys: [ByteBuffer], highest: Bool, count: Int) throws(CommandError) -> (key: ByteBuffer, popped: [ScoredMember])? {
        for key in keys {
            guard try ctx.exists(SortedSetKind.self, key) else { continue }
            let popped = try ctx.modify(SortedSetKind.self, key, create: false) { zset throws(CommandError) -> [ScoredMember] in
                let taken = min(count, zset.count)
                let ranks = highest ? (zset.count - taken)..<zset.count : 0..<taken
                let elements = zset.elements(ranks: ranks, reversed: highest)
                for element in elements { zset.remove(element.member) }
                return elements
            } ?? []
            ctx.dirty(popped.count)
            ctx.modified(key, highest ? "zpopmax" : "zpopmin", .zset)
            ctx.propagate([Array(highest ? "ZPOPMAX".utf8 : "ZPOPMIN".utf8), Array(key.readableBytesView),
                           RedisInteger.bytes(Int64(popped.count))])
            return (key, popped)
        }
        return nil
    }

    /// ZPOPMIN / ZPOPMAX `key [count]`: flat pairs, nested in RESP3 when a count is given.
    static func popCommand(_ ctx: inout CommandContext, highest: Bool) throws(CommandError) {
        if ctx.args.count > 3 { throw .syntax }
        var count = 1
        if ctx.args.count == 3 {
            count = Int(clamping: try ListCommands.positiveCount(ctx, 2))
        }
        if count == 0 {
            _ = try ctx.exists(SortedSetKind.self, ctx.args[1])
            return ctx.reply.array(0)
        }
        guard let (_, popped) = try pop(&ctx, keys: [ctx.args[1]], highest: highest, count: count) else {
            return ctx.reply.array(0)
        }
        if ctx.args.count == 3 {
            ctx.replyScored(popped, withScores: true)
        } else {
            ctx.reply.array(popped.count * 2)
            for element in popped {
                element.member.withBytes { ctx.reply.bulk($0) }
                ctx.reply.double(element.score)
            }
        }
    }

    static func zpopmin(_ ctx: inout CommandContext) throws(CommandError) { try popCommand(&ctx, highest: false) }
    static func zpopmax(_ ctx: inout CommandContext) throws(CommandError) { try popCommand(&ctx, highest: true) }

    /// `numkeys key [key ...] MIN|MAX [COUNT count]` of ZMPOP / BZMPOP.
    static func parseMultiPop(_ ctx: CommandContext, numkeysIndex: Int) throws(CommandError) -> ListCommands.MultiPop {
        try ListCommands.parseMultiPop(ctx, numkeysIndex: numkeysIndex, ends: ("min", "max"))
    }

    /// Pops for ZMPOP / BZMPOP, replying `[key, [[member, score] ...]]`; false when nothing was there.
    static func multiPop(_ ctx: inout CommandContext, _ request: ListCommands.MultiPop) throws(CommandError) -> Bool {
        guard let (key, popped) = try pop(&ctx, keys: request.keys, highest: request.end == .right, count: request.count) else {
            return false
        }
        ctx.reply.array(2)
        ctx.reply.bulk(key)
        ctx.reply.array(popped.count)
        for element in popped {
            ctx.reply.array(2)
            element.member.withBytes { ctx.reply.bulk($0) }
            ctx.reply.double(element.score)
        }
        return true
    }

    static func zmpop(_ ctx: inout CommandContext) throws(CommandError) {
        let request = try parseMultiPop(ctx, numkeysIndex: 1)
        if try !multiPop(&ctx, request) { ctx.reply.nullArray() }
    }

    // MARK: Random members

    static func zrandmember(_ ctx: inout CommandContext) throws(CommandError) {
        guard ctx.args.count >= 3 else {
            guard let zset = try ctx.read(SortedSetKind.self, ctx.args[1]), !zset.isEmpty else { return ctx.reply.null() }
            zset[Int.random(in: 0..<zset.count)].member.withBytes { ctx.reply.bulk($0) }
            return
        }
        let count = try RandomPick.count(ctx, 2)
        var withScores = false
        if ctx.args.count > 4 || (ctx.args.count == 4 && !ctx.args.isKeyword(3, "withscores")) { throw .syntax }
        if ctx.args.count == 4 {
            withScores = true
            if count < -(Int64.max / 2) || count > Int64.max / 2 { throw CommandError("ERR value is out of range") }
        }
        guard let zset = try ctx.read(SortedSetKind.self, ctx.args[1]) else { return ctx.reply.array(0) }
        if count < 0 {
            let picks = zset.isEmpty ? 0 : Int(-count)
            let pairs = withScores && ctx.reply.version == .v3
            ctx.replyPicks(picks, from: zset.count, length: withScores && !pairs ? picks * 2 : picks) { reply, index in
                let element = zset[index]
                if pairs { reply.array(2) }
                element.member.withBytes { reply.bulk($0) }
                if withScores { reply.double(element.score) }
            }
            return
        }
        let picked = RandomPick.indexes(count: count, size: zset.count).map { zset[$0] }
        ctx.replyScored(picked, withScores: withScores)
    }

    // MARK: Set algebra

    /// One input of ZUNION / ZINTER / ZDIFF: a sorted set, a plain set (scores 1), or nothing.
    enum Source {
        case zset(SortedSetValue)
        case set(SetValue)
        case missing

        var count: Int {
            switch self {
            case .zset(let z): return z.count
            case .set(let s): return s.count
            case .missing: return 0
            }
        }

        func score(_ member: Bytes) -> Double? {
            switch self {
            case .zset(let z): return z.score(member)
            case .set(let s): return s.contains(member) ? 1 : nil
            case .missing: return nil
            }
        }

        var elements: [ScoredMember] {
            switch self {
            case .zset(let z): return z.allElements
            case .set(let s): return s.members.map { ScoredMember(score: 1, member: $0) }
            case .missing: return []
            }
        }
    }

    enum Aggregate { case sum, min, max }
    enum Operation {
        case union, inter, diff

        var storeEvent: StaticString {
            switch self {
            case .inter: "zinterstore"
            case .union: "zunionstore"
            case .diff: "zdiffstore"
            }
        }
    }

    struct AlgebraRequest {
        var sources: [Source] = []
        var weights: [Double] = []
        var aggregate = Aggregate.sum
        var withScores = false
        var limit: Int64 = 0
    }

    /// Parses `numkeys key [key ...]` and the options of Redis's `zunionInterDiffGenericCommand`.
    static func parseAlgebra(_ ctx: CommandContext, numkeysIndex: Int, operation: Operation, store: Bool, cardinalityOnly: Bool) throws(CommandError) -> AlgebraRequest {
        let numkeys = try ctx.args.integer(numkeysIndex)
        guard numkeys >= 1 else {
            throw CommandError("ERR at least 1 input key is needed for '\(ctx.spec.fullName)' command")
        }
        guard numkeys <= Int64(ctx.args.count - numkeysIndex - 1) else { throw .syntax }
        var request = AlgebraRequest()
        let first = numkeysIndex + 1
        let end = first + Int(numkeys)
        for index in first..<end {
            let key = ctx.args[index]
            let ref = store ? ctx.keyspace.lookupWrite(ctx.db, key) : ctx.keyspace.lookupRead(ctx.db, key, ctx.readOptions)
            guard let ref else {
                request.sources.append(.missing)
                continue
            }
            let source: Source? = ctx.keyspace.withValue(ctx.db, ref) { value in
                switch value {
                case .zset(let z): return .zset(z)
                case .set(let s): return .set(s)
                default: return nil
                }
            }
            guard let source else { throw .wrongType }
            request.sources.append(source)
        }
        request.weights = Array(repeating: 1, count: Int(numkeys))
        var index = end
        while index < ctx.args.count {
            let remaining = ctx.args.count - index
            if operation != .diff && !cardinalityOnly && remaining >= Int(numkeys) + 1 && ctx.args.isKeyword(index, "weights") {
                index += 1
                for position in 0..<Int(numkeys) {
                    guard let weight = RedisFloat.parseDouble(ctx.args[index].readableBytesView) else {
                        throw CommandError("ERR weight value is not a float")
                    }
                    request.weights[position] = weight
                    index += 1
                }
            } else if operation != .diff && !cardinalityOnly && remaining >= 2 && ctx.args.isKeyword(index, "aggregate") {
                if ctx.args.isKeyword(index + 1, "sum") { request.aggregate = .sum }
                else if ctx.args.isKeyword(index + 1, "min") { request.aggregate = .min }
                else if ctx.args.isKeyword(index + 1, "max") { request.aggregate = .max }
                else { throw .syntax }
                index += 2
            } else if !store && !cardinalityOnly && ctx.args.isKeyword(index, "withscores") {
                request.withScores = true
                index += 1
            } else if cardinalityOnly && remaining >= 2 && ctx.args.isKeyword(index, "limit") {
                request.limit = try ListCommands.positiveCount(ctx, index + 1, "LIMIT can't be negative")
                index += 2
            } else {
                throw .syntax
            }
        }
        return request
    }

    /// Combines the sources: the result in ascending (score, member) order.
    ///
    /// Scores follow Redis's arithmetic exactly, including where infinities meet: inputs are walked
    /// smallest first (a stable order by size, as Redis's merge-sorted `zuiCompareByCardinality`), a
    /// weighted score that is NaN (`inf * 0`) becomes 0 when it starts an element's total but not when
    /// it is added to one in an intersection, and a NaN sum becomes 0.
    static func combine(_ request: AlgebraRequest, _ operation: Operation) -> [ScoredMember] {
        func weighted(_ score: Double, _ weight: Double) -> Double {
            let value = score * weight
            return value.isNaN ? 0 : value
        }
        func aggregate(_ total: Double, _ value: Double) -> Double {
            switch request.aggregate {
            case .sum:
                let sum = total + value
                return sum.isNaN ? 0 : sum
            case .min: return value < total ? value : total
            case .max: return value > total ? value : total
            }
        }
        let bySize = request.sources.indices.sorted {
            (request.sources[$0].count, $0) < (request.sources[$1].count, $1)
        }
        var result: [Bytes: Double] = [:]
        switch operation {
        case .diff:
            let others = request.sources.dropFirst()
            for element in request.sources[0].elements where !others.contains(where: { $0.score(element.member) != nil }) {
                result[element.member] = element.score
            }
        case .inter:
            // Walk the smallest input, probe the others (as Redis, which orders inputs by size).
            guard let smallest = bySize.first else { return [] }
            outer: for element in request.sources[smallest].elements {
                var score = weighted(element.score, request.weights[smallest])
                for other in bySize.dropFirst() {
                    guard let found = request.sources[other].score(element.member) else { continue outer }
                    score = aggregate(score, found * request.weights[other])
                }
                result[element.member] = score
            }
        case .union:
            for position in bySize {
                for element in request.sources[position].elements {
                    let score = weighted(element.score, request.weights[position])
                    if let existing = result[element.member] {
                        result[element.member] = aggregate(existing, score)
                    } else {
                        result[element.member] = score
                    }
                }
            }
        }
        return result.map { ScoredMember(score: $0.value, member: $0.key) }.sorted()
    }

    static func algebra(_ ctx: inout CommandContext, _ operation: Operation, store: Bool) throws(CommandError) {
        let request = try parseAlgebra(ctx, numkeysIndex: store ? 2 : 1, operation: operation, store: store, cardinalityOnly: false)
        let elements = combine(request, operation)
        storeOrReply(&ctx, elements, store: store ? operation.storeEvent : nil, withScores: request.withScores,
                     convertAtEnd: true)
    }

    static func zunion(_ ctx: inout CommandContext) throws(CommandError) { try algebra(&ctx, .union, store: false) }
    static func zinter(_ ctx: inout CommandContext) throws(CommandError) { try algebra(&ctx, .inter, store: false) }
    static func zdiff(_ ctx: inout CommandContext) throws(CommandError) { try algebra(&ctx, .diff, store: false) }
    static func zunionstore(_ ctx: inout CommandContext) throws(CommandError) { try algebra(&ctx, .union, store: true) }
    static func zinterstore(_ ctx: inout CommandContext) throws(CommandError) { try algebra(&ctx, .inter, store: true) }
    static func zdiffstore(_ ctx: inout CommandContext) throws(CommandError) { try algebra(&ctx, .diff, store: true) }

    static func zintercard(_ ctx: inout CommandContext) throws(CommandError) {
        let request = try parseAlgebra(ctx, numkeysIndex: 1, operation: .inter, store: false, cardinalityOnly: true)
        let count = combine(request, .inter).count
        ctx.reply.integer(request.limit > 0 ? min(count, Int(clamping: request.limit)) : count)
    }

    static func zscan(_ ctx: inout CommandContext) throws(CommandError) {
        try CollectionScan.run(&ctx, { ctx throws(CommandError) in
            try ctx.read(SortedSetKind.self, ctx.args[1])?.allElements.flatMap { [$0.member, Bytes(RedisFloat.format($0.score))] }
        }, items: { scan, flat in
            stride(from: 0, to: flat.count, by: 2).filter { scan.matches(flat[$0]) }.flatMap { [flat[$0], flat[$0 + 1]] }
        })
    }
}

extension CommandContext {
    /// Sorted-set elements as ZRANGE replies them: members only, or with scores flat (RESP2) or as
    /// [member, score] pairs (RESP3).
    mutating func replyScored(_ elements: [ScoredMember], withScores: Bool) {
        guard withScores else {
            reply.array(elements.count)
            for element in elements { element.member.withBytes { reply.bulk($0) } }
            return
        }
        let nested = reply.version == .v3
        reply.array(nested ? elements.count : elements.count * 2)
        for element in elements {
            if nested { reply.array(2) }
            element.member.withBytes { reply.bulk($0) }
            reply.double(element.score)
        }
    }
}
