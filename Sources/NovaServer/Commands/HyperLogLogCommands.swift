import Foundation
import NIOCore
import NovaEngine
import NovaRESP

/// HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST (Redis's hyperloglog.c). The values
/// are plain strings in Redis's representation (NovaEngine's `HyperLogLog`).
enum HyperLogLogCommands {
    static let notHyperLogLog = CommandError("WRONGTYPE Key is not a valid HyperLogLog string value.")
    static let corrupt = CommandError("INVALIDOBJ Corrupted HLL object detected")

    static func error(_ problem: HyperLogLog.Problem) -> CommandError {
        problem == .corrupt ? corrupt : notHyperLogLog
    }

    /// The HyperLogLog at `ref`, after the type and header checks (Redis's `isHLLObjectOrReply`).
    static func hyperLogLog(_ ctx: CommandContext, _ ref: EntryRef) throws(CommandError) -> HyperLogLog {
        let bytes: Bytes
        switch try StringCommands.stringValue(ctx, ref) {
        case .string(let stored), .rawString(let stored): bytes = stored
        // An integer-encoded string is never one (Redis checks for an sds string first).
        default: throw notHyperLogLog
        }
        do {
            return try HyperLogLog(validating: bytes.array)
        } catch {
            throw Self.error(error)
        }
    }

    /// Stores a changed HyperLogLog back, keeping the key's TTL, or adds it as a new key.
    static func store(_ ctx: CommandContext, _ hll: HyperLogLog, at ref: EntryRef?, key: ByteBuffer) {
        let value = Value.rawString(Bytes(hll.bytes))
        if let ref {
            ctx.keyspace.setValue(ctx.db, ref, value)
        } else {
            ctx.keyspace.insert(ctx.db, Bytes(key), value)
        }
    }

    static var sparseMaxBytes: (CommandContext) -> Int { { $0.server.config.settings.hllSparseMaxBytes } }

    static func pfadd(_ ctx: inout CommandContext) throws(CommandError) {
        let ref = ctx.keyspace.lookupWrite(ctx.db, ctx.args[1])
        var hll = try ref.map { ref throws(CommandError) in try hyperLogLog(ctx, ref) } ?? HyperLogLog()
        var updated = ref == nil ? 1 : 0
        let limit = sparseMaxBytes(ctx)
        for index in 2..<ctx.args.count {
            do {
                if try ctx.args[index].withUnsafeReadableBytes({ raw throws(HyperLogLog.Problem) in
                    try hll.add(raw, sparseMaxBytes: limit)
                }) { updated += 1 }
            } catch {
                // What was added before the corrupt part stays, unannounced, as in Redis.
                if updated > 0 { store(ctx, hll, at: ref, key: ctx.args[1]) }
                throw Self.error(error)
            }
        }
        if updated > 0 {
            hll.invalidateCache()
            store(ctx, hll, at: ref, key: ctx.args[1])
            ctx.dirty(updated)
            ctx.modified(ctx.args[1], "pfadd", .string)
        }
        ctx.reply.integer(updated > 0 ? 1 : 0)
    }

    static func pfcount(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 2 {
            // The cardinality of the union, from the maximum of each register.
            var registers = [UInt8](repeating: 0, count: HyperLogLog.registerCount)
            for index in 1..<ctx.args.count {
                guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[index], ctx.readOptions) else { continue }
                let hll = try hyperLogLog(ctx, ref)
                do { try hll.merge(into: &registers) } catch { throw Self.error(error) }
            }
            ctx.reply.integer(Int64(bitPattern: HyperLogLog.estimate(registers: registers)))
            return
        }
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[1], ctx.readOptions) else {
            ctx.reply.integer(0)
            return
        }
        var hll = try hyperLogLog(ctx, ref)
        if let cached = hll.cachedCardinality {
            ctx.reply.integer(Int64(bitPattern: cached))
            return
        }
        let cardinality: UInt64
        do { cardinality = try hll.estimate() } catch { throw Self.error(error) }
        // The cache is part of the string: storing it is a change (WATCH, tracking, the AOF), but no event.
        hll.cacheCardinality(cardinality)
        store(ctx, hll, at: ref, key: ctx.args[1])
        ctx.server.keyModified(ctx.db, ctx.args[1])
        ctx.dirty()
        ctx.reply.integer(Int64(bitPattern: cardinality))
    }

    static func pfmerge(_ ctx: inout CommandContext) throws(CommandError) {
        var registers = [UInt8](repeating: 0, count: HyperLogLog.registerCount)
        var useDense = false
        for index in 1..<ctx.args.count {
            guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[index], ctx.readOptions) else { continue }
            let hll = try hyperLogLog(ctx, ref)
            if hll.encoding == .dense { useDense = true }
            do { try hll.merge(into: &registers) } catch { throw Self.error(error) }
        }
        let ref = ctx.keyspace.lookupWrite(ctx.db, ctx.args[1])
        var hll = try ref.map { ref throws(CommandError) in try hyperLogLog(ctx, ref) } ?? HyperLogLog()
        if useDense {
            do { try hll.convertToDense() } catch { throw Self.error(error) }
        }
        let limit = sparseMaxBytes(ctx)
        for (register, value) in registers.enumerated() where value > 0 {
            // Redis ignores a corrupt destination's failures here; the sources were checked above.
            _ = try? hll.set(register: register, atLeast: value, sparseMaxBytes: limit)
        }
        hll.invalidateCache()
        store(ctx, hll, at: ref, key: ctx.args[1])
        ctx.modified(ctx.args[1], "pfadd", .string)
        ctx.dirty()
        ctx.reply.ok()
    }

    static func pfdebug(_ ctx: inout CommandContext) throws(CommandError) {
        guard let ref = ctx.keyspace.lookupWrite(ctx.db, ctx.args[2]) else {
            throw CommandError("ERR The specified key does not exist")
        }
        var hll = try hyperLogLog(ctx, ref)
        /// Converts to dense in place; a change of encoding is propagated (dirty) but not announced.
        func densify(_ ctx: inout CommandContext) throws(CommandError) -> Bool {
            let converted: Bool
            do { converted = try hll.convertToDense() } catch { throw Self.error(error) }
            if converted {
                store(ctx, hll, at: ref, key: ctx.args[2])
                ctx.dirty()
            }
            return converted
        }
        if ctx.args.isKeyword(1, "getreg") {
            _ = try densify(&ctx)
            ctx.reply.array(HyperLogLog.registerCount)
            for index in 0..<HyperLogLog.registerCount { ctx.reply.integer(Int(hll.register(index))) }
        } else if ctx.args.isKeyword(1, "decode") {
            guard hll.encoding == .sparse else { throw CommandError("ERR HLL encoding is not sparse") }
            ctx.reply.bulk(hll.decodedOpcodes())
        } else if ctx.args.isKeyword(1, "encoding") {
            ctx.reply.simpleString(hll.encoding == .dense ? "dense" : "sparse")
        } else if ctx.args.isKeyword(1, "todense") {
            ctx.reply.integer(try densify(&ctx) ? 1 : 0)
        } else {
            throw CommandError("ERR Unknown PFDEBUG subcommand '\(ctx.args.string(1))'")
        }
    }

    /// PFSELFTEST: Redis's two checks, on this implementation — every register value survives the dense
    /// packing, and ten million adds to a sparse and a dense HyperLogLog agree with each other and stay
    /// within six standard errors of the truth at each power of ten.
    static func pfselftest(_ ctx: inout CommandContext) throws(CommandError) {
        var random = SystemRandomNumberGenerator()
        var dense = HyperLogLog()
        do { try dense.convertToDense() } catch { throw corrupt }
        for _ in 0..<100 {
            var expected = [UInt8](repeating: 0, count: HyperLogLog.registerCount)
            for index in 0..<HyperLogLog.registerCount {
                expected[index] = UInt8.random(in: 0...63, using: &random)
                dense.setDenseRegister(index, expected[index])
            }
            for index in 0..<HyperLogLog.registerCount where dense.register(index) != expected[index] {
                throw CommandError("ERR TESTFAILED Register \(index) should be \(expected[index]) but is \(dense.register(index))")
            }
        }
        dense = HyperLogLog()
        do { try dense.convertToDense() } catch { throw corrupt }
        var sparse = HyperLogLog()
        let limit = sparseMaxBytes(ctx)
        let relativeError = 1.04 / Double(HyperLogLog.registerCount).squareRoot()
        let seed = UInt64.random(in: 0...UInt64.max, using: &random)
        var checkpoint: UInt64 = 1
        for count in 1...UInt64(10_000_000) {
            var element = (count ^ seed).littleEndian
            do {
                try withUnsafeBytes(of: &element) { raw throws(HyperLogLog.Problem) in
                    _ = try dense.add(raw, sparseMaxBytes: limit)
                    _ = try sparse.add(raw, sparseMaxBytes: limit)
                }
            } catch {
                throw corrupt
            }
            guard count == checkpoint else { continue }
            if count < UInt64(limit / 2) && sparse.encoding != .sparse {
                throw CommandError("ERR TESTFAILED sparse encoding not used")
            }
            let estimate: UInt64, sparseEstimate: UInt64
            do {
                estimate = try dense.estimate()
                sparseEstimate = try sparse.estimate()
            } catch {
                throw corrupt
            }
            if estimate != sparseEstimate { throw CommandError("ERR TESTFAILED dense/sparse disagree") }
            let maxError = count == 10 ? 1 : UInt64((relativeError * 6 * Double(checkpoint)).rounded(.up))
            let error = estimate > count ? estimate - count : count - estimate
            if error > maxError {
                throw CommandError("ERR TESTFAILED Too big error. card:\(checkpoint) abserr:\(error)")
            }
            checkpoint *= 10
        }
        ctx.reply.ok()
    }
}
