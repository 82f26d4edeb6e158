import NIOCore
import NovaEngine
import NovaRESP

/// GEO commands (Redis's geo.c): positions are sorted-set members whose score is the 52-bit geohash of
/// their longitude and latitude (NovaEngine's `GeoHash`), so every sorted-set command sees them too.
enum GeoCommands {
    // MARK: Argument parsing

    /// A longitude and latitude at `index` and `index + 1`, inside the index's limits.
    static func coordinates(_ ctx: CommandContext, at index: Int) throws(CommandError) -> (longitude: Double, latitude: Double) {
        let longitude = try ctx.args.double(index)
        let latitude = try ctx.args.double(index + 1)
        if longitude < GeoHash.longitudeRange.min || longitude > GeoHash.longitudeRange.max
            || latitude < GeoHash.latitudeRange.min || latitude > GeoHash.latitudeRange.max {
            let pair = RedisFloat.format(longitude, decimals: 6) + [UInt8(ascii: ",")] + RedisFloat.format(latitude, decimals: 6)
            throw CommandError("ERR invalid longitude,latitude pair " + String(decoding: pair, as: UTF8.self))
        }
        return (longitude, latitude)
    }

    /// Meters per unit for `m`, `km`, `ft` or `mi`.
    static func metersPerUnit(_ ctx: CommandContext, at index: Int) throws(CommandError) -> Double {
        if ctx.args.isKeyword(index, "m") { return 1 }
        if ctx.args.isKeyword(index, "km") { return 1000 }
        if ctx.args.isKeyword(index, "ft") { return 0.3048 }
        if ctx.args.isKeyword(index, "mi") { return 1609.34 }
        throw CommandError("ERR unsupported unit provided. please use M, KM, FT, MI")
    }

    /// A size (`radius`, `width`, `height`): a float with the given error, never negative.
    static func size(_ ctx: CommandContext, at index: Int, name: StaticString) throws(CommandError) -> Double {
        guard let value = RedisFloat.parseDouble(ctx.args[index].readableBytesView) else {
            throw CommandError("ERR need numeric \(name)")
        }
        return value
    }

    /// `radius unit`.
    static func radius(_ ctx: CommandContext, at index: Int) throws(CommandError) -> (GeoShape.Kind, Double) {
        let radius = try size(ctx, at: index, name: "radius")
        if radius < 0 { throw CommandError("ERR radius cannot be negative") }
        return (.radius(radius), try metersPerUnit(ctx, at: index + 1))
    }

    /// `width height unit`.
    static func box(_ ctx: CommandContext, at index: Int) throws(CommandError) -> (GeoShape.Kind, Double) {
        let width = try size(ctx, at: index, name: "width")
        let height = try size(ctx, at: index + 1, name: "height")
        if height < 0 || width < 0 { throw CommandError("ERR height or width cannot be negative") }
        return (.box(width: width, height: height), try metersPerUnit(ctx, at: index + 2))
    }

    /// The position of a member, or Redis's error when it is not in the set.
    static func position(of member: ByteBuffer, in zset: SortedSetValue) throws(CommandError) -> (longitude: Double, latitude: Double) {
        guard let score = zset.score(member) else { throw CommandError("ERR could not decode requested zset member") }
        return GeoHash.position(ofScore: score)
    }

    // MARK: Adding and reading positions

    /// GEOADD: ZADD with each `longitude latitude` turned into its geohash score; the change is logged as
    /// that ZADD, as Redis does.
    static func geoadd(_ ctx: inout CommandContext) throws(CommandError) {
        var first = 2
        var nx = false, xx = false
        while first < ctx.args.count {
            if ctx.args.isKeyword(first, "nx") { nx = true }
            else if ctx.args.isKeyword(first, "xx") { xx = true }
            else if !ctx.args.isKeyword(first, "ch") { break }
            first += 1
        }
        let given = ctx.args.count - first
        guard given % 3 == 0, !(nx && xx), given > 0 else { throw .syntax }
        var words: [[UInt8]] = [Array("zadd".utf8)] + (1..<first).map { ctx.bytes($0) }
        for index in stride(from: first, to: ctx.args.count, by: 3) {
            let position = try coordinates(ctx, at: index)
            let score = GeoHash.score(longitude: position.longitude, latitude: position.latitude)!
            words.append(RedisInteger.bytes(Int64(score)))
            words.append(ctx.bytes(index + 2))
        }
        let original = ctx.args
        ctx.args = Arguments(words.map { ByteBuffer(bytes: $0) })
        defer { ctx.args = original }
        let changesBefore = ctx.server.stats.changes
        try SortedSetCommands.zadd(&ctx)
        if ctx.server.stats.changes != changesBefore { ctx.propagate(words) }
    }

    /// GEOPOS: each member's longitude and latitude (the center of its cell), nil for a missing one.
    static func geopos(_ ctx: inout CommandContext) throws(CommandError) {
        let zset = try ctx.read(SortedSetKind.self, ctx.args[1])
        ctx.reply.array(ctx.args.count - 2)
        for index in 2..<ctx.args.count {
            guard let score = zset?.score(ctx.args[index]) else {
                ctx.reply.nullArray()
                continue
            }
            let position = GeoHash.position(ofScore: score)
            ctx.reply.array(2)
            ctx.reply.humanDouble(position.longitude)
            ctx.reply.humanDouble(position.latitude)
        }
    }

    /// GEOHASH: each member's 11-character standard geohash, nil for a missing one.
    static func geohash(_ ctx: inout CommandContext) throws(CommandError) {
        let zset = try ctx.read(SortedSetKind.self, ctx.args[1])
        ctx.reply.array(ctx.args.count - 2)
        for index in 2..<ctx.args.count {
            guard let score = zset?.score(ctx.args[index]) else {
                ctx.reply.null()
                continue
            }
            ctx.reply.bulk(GeoHash.standardHash(ofScore: score))
        }
    }

    /// GEODIST `key member1 member2 [unit]`: the distance with four decimals, nil when a member is missing.
    static func geodist(_ ctx: inout CommandContext) throws(CommandError) {
        var metersPerUnit = 1.0
        if ctx.args.count == 5 {
            metersPerUnit = try Self.metersPerUnit(ctx, at: 4)
        } else if ctx.args.count > 5 {
            throw .syntax
        }
        guard let zset = try ctx.read(SortedSetKind.self, ctx.args[1]),
              let score1 = zset.score(ctx.args[2]), let score2 = zset.score(ctx.args[3]) else {
            return ctx.reply.null()
        }
        let from = GeoHash.position(ofScore: score1), to = GeoHash.position(ofScore: score2)
        let meters = GeoHash.distance(fromLongitude: from.longitude, latitude: from.latitude,
                                      toLongitude: to.longitude, latitude: to.latitude)
        ctx.reply.bulk(RedisFloat.fixedPoint(meters / metersPerUnit, decimals: 4))
    }

    // MARK: Searching

    /// Which search command runs (Redis's `georadiusGeneric` flags).
    struct Search: OptionSet {
        let rawValue: Int
        /// GEORADIUS: center and radius as arguments 2–5.
        static let fromCoordinates = Search(rawValue: 1 << 0)
        /// GEORADIUSBYMEMBER: a member and radius as arguments 2–4.
        static let fromMember = Search(rawValue: 1 << 1)
        /// The _RO variants: no STORE / STOREDIST.
        static let noStore = Search(rawValue: 1 << 2)
        /// GEOSEARCH's FROM… / BY… arguments.
        static let geosearch = Search(rawValue: 1 << 3)
        /// GEOSEARCHSTORE: the destination is argument 1, STOREDIST a flag.
        static let store = Search(rawValue: 1 << 4)
    }

    static func georadius(_ ctx: inout CommandContext) throws(CommandError) { try search(&ctx, key: 1, [.fromCoordinates]) }
    static func georadiusReadOnly(_ ctx: inout CommandContext) throws(CommandError) { try search(&ctx, key: 1, [.fromCoordinates, .noStore]) }
    static func georadiusbymember(_ ctx: inout CommandContext) throws(CommandError) { try search(&ctx, key: 1, [.fromMember]) }
    static func georadiusbymemberReadOnly(_ ctx: inout CommandContext) throws(CommandError) { try search(&ctx, key: 1, [.fromMember, .noStore]) }
    static func geosearch(_ ctx: inout CommandContext) throws(CommandError) { try search(&ctx, key: 1, [.geosearch]) }
    static func geosearchstore(_ ctx: inout CommandContext) throws(CommandError) { try search(&ctx, key: 2, [.geosearch, .store]) }

    /// Every search command, with Redis's order of checks: the source's type, the fixed arguments, the
    /// options left to right (each checked as it is read), the combination rules, then the search. A
    /// missing source answers an empty result only after all of that (deleting a STORE destination).
    static func search(_ ctx: inout CommandContext, key keyIndex: Int, _ kind: Search) throws(CommandError) {
        let zset = try ctx.read(SortedSetKind.self, ctx.args[keyIndex])
        var center: (longitude: Double, latitude: Double)? = nil
        var shape: (GeoShape.Kind, Double)? = nil
        var storeKey: ByteBuffer? = nil
        var storeDistance = false
        let optionsStart: Int
        if kind.contains(.fromCoordinates) {
            optionsStart = 6
            center = try coordinates(ctx, at: 2)
            shape = try radius(ctx, at: 4)
        } else if kind.contains(.fromMember) {
            optionsStart = 5
            if let zset {
                center = try position(of: ctx.args[2], in: zset)
                shape = try radius(ctx, at: 3)
            }
        } else {
            optionsStart = kind.contains(.store) ? 3 : 2
            if kind.contains(.store) { storeKey = ctx.args[1] }
        }

        var withDistance = false, withHash = false, withCoordinates = false
        var fromMember = false, fromCoordinates = false, byRadius = false, byBox = false
        var ascending: Bool? = nil
        var any = false
        var count = 0
        var index = optionsStart
        while index < ctx.args.count {
            let remaining = ctx.args.count - index - 1
            let storeAllowed = !kind.contains(.noStore) && !kind.contains(.geosearch)
            if ctx.args.isKeyword(index, "withdist") {
                withDistance = true
            } else if ctx.args.isKeyword(index, "withhash") {
                withHash = true
            } else if ctx.args.isKeyword(index, "withcoord") {
                withCoordinates = true
            } else if ctx.args.isKeyword(index, "any") {
                any = true
            } else if ctx.args.isKeyword(index, "asc") {
                ascending = true
            } else if ctx.args.isKeyword(index, "desc") {
                ascending = false
            } else if ctx.args.isKeyword(index, "count") && remaining >= 1 {
                let value = try ctx.args.integer(index + 1)
                if value <= 0 { throw CommandError("ERR COUNT must be > 0") }
                count = Int(value)
                index += 1
            } else if ctx.args.isKeyword(index, "store") && remaining >= 1 && storeAllowed {
                storeKey = ctx.args[index + 1]
                storeDistance = false
                index += 1
            } else if ctx.args.isKeyword(index, "storedist") && remaining >= 1 && storeAllowed {
                storeKey = ctx.args[index + 1]
                storeDistance = true
                index += 1
            } else if ctx.args.isKeyword(index, "storedist") && kind.contains(.geosearch) && kind.contains(.store) {
                storeDistance = true
            } else if ctx.args.isKeyword(index, "frommember") && remaining >= 1 && kind.contains(.geosearch) && !fromCoordinates {
                // Without a source the member cannot be looked up: parsing goes on, the answer is empty.
                if let zset { center = try position(of: ctx.args[index + 1], in: zset) }
                fromMember = true
                index += 1
            } else if ctx.args.isKeyword(index, "fromlonlat") && remaining >= 2 && kind.contains(.geosearch) && !fromMember {
                center = try coordinates(ctx, at: index + 1)
                fromCoordinates = true
                index += 2
            } else if ctx.args.isKeyword(index, "byradius") && remaining >= 2 && kind.contains(.geosearch) && !byBox {
                shape = try radius(ctx, at: index + 1)
                byRadius = true
                index += 2
            } else if ctx.args.isKeyword(index, "bybox") && remaining >= 3 && kind.contains(.geosearch) && !byRadius {
                shape = try box(ctx, at: index + 1)
                byBox = true
                index += 3
            } else {
                throw .syntax
            }
            index += 1
        }

        if storeKey != nil && (withDistance || withHash || withCoordinates) {
            let name = kind.contains(.store) ? "GEOSEARCHSTORE" : "STORE option in GEORADIUS"
            throw CommandError("ERR \(name) is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
        }
        if kind.contains(.geosearch) && !(fromMember || fromCoordinates) {
            throw CommandError("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for \(ctx.args.string(0))")
        }
        if kind.contains(.geosearch) && !(byRadius || byBox) {
            throw CommandError("ERR exactly one of BYRADIUS and BYBOX can be specified for \(ctx.args.string(0))")
        }
        if any && count == 0 { throw CommandError("ERR the ANY argument requires COUNT argument") }

        guard let zset, let center, let shape else {
            if let storeKey {
                if ctx.keyspace.delete(ctx.db, storeKey) {
                    ctx.dirty()
                    ctx.modified(storeKey, "del", .generic)
                }
                ctx.reply.integer(0)
            } else {
                ctx.reply.array(0)
            }
            return
        }

        // COUNT without an order means the closest ones, unless ANY asks for whichever come first.
        if count != 0 && ascending == nil && !any { ascending = true }
        let area = GeoShape(longitude: center.longitude, latitude: center.latitude, kind: shape.0, metersPerUnit: shape.1)
        var points = zset.geoMembers(in: area, limit: any ? count : nil)
        if points.isEmpty && storeKey == nil { return ctx.reply.array(0) }
        let returned = count == 0 ? points.count : min(count, points.count)
        if let ascending {
            // All of them: a stable sort, as glibc's qsort (a merge sort) is; the first COUNT: Redis's pqsort,
            // whose order of equal distances differs.
            if returned == points.count {
                points.sort { ascending ? $0.distance < $1.distance : $0.distance > $1.distance }
            } else {
                PartialQuickSort.sort(&points, keeping: 0, through: returned - 1) { a, b in
                    let order = a.distance > b.distance ? 1 : (a.distance == b.distance ? 0 : -1)
                    return ascending ? order : -order
                }
            }
        }

        guard let storeKey else {
            let extras = (withDistance ? 1 : 0) + (withCoordinates ? 1 : 0) + (withHash ? 1 : 0)
            ctx.reply.array(returned)
            for point in points.prefix(returned) {
                if extras > 0 { ctx.reply.array(extras + 1) }
                point.member.withBytes { ctx.reply.bulk($0) }
                if withDistance { ctx.reply.bulk(RedisFloat.fixedPoint(point.distance / area.metersPerUnit, decimals: 4)) }
                if withHash { ctx.reply.integer(Int64(point.score)) }
                if withCoordinates {
                    ctx.reply.array(2)
                    ctx.reply.humanDouble(point.longitude)
                    ctx.reply.humanDouble(point.latitude)
                }
            }
            return
        }

        // The result is built as a skiplist and converted when small, as Redis's
        // zsetConvertToListpackIfNeeded does.
        let stored = points.prefix(returned)
        let limits = ctx.limits
        let staysSkiplist = stored.count > limits.zsetMaxListpackEntries
            || stored.contains { $0.member.count > limits.zsetMaxListpackValue }
        var result = SortedSetValue(listpack: !staysSkiplist)
        for point in stored {
            result.set(point.member, score: storeDistance ? point.distance / area.metersPerUnit : point.score, limits: limits)
        }
        ctx.store(.zset(result), at: storeKey, event: kind.contains(.geosearch) ? "geosearchstore" : "georadiusstore", .zset)
        if returned > 1 { ctx.dirty(returned - 1) }
        ctx.reply.integer(returned)
    }
}
