import NIOCore
import NovaEngine
import NovaRESP

/// Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO (Redis's bitops.c).
/// Bitmaps are strings: the bit algorithms are NovaEngine's `Bitmap` and `BitField`.
enum BitmapCommands {
    static let offsetError = CommandError("ERR bit offset is not an integer or out of range")
    static let typeError = CommandError("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")

    /// A bit offset argument (Redis's `getBitOffsetFromArgument`): `#n` means field n of `fieldBits` bits
    /// when `fieldBits` is given; the byte it falls in must be below proto-max-bulk-len.
    static func bitOffset(_ ctx: CommandContext, _ index: Int, fieldBits: Int? = nil) throws(CommandError) -> Int {
        var argument = ctx.args[index]
        var multiplier: Int64 = 1
        if let fieldBits, argument.readableBytesView.first == UInt8(ascii: "#") {
            argument.moveReaderIndex(forwardBy: 1)
            multiplier = Int64(fieldBits)
        }
        guard let parsed = argument.withUnsafeReadableBytes({ RedisInteger.parse($0) }) else { throw offsetError }
        let (offset, overflow) = parsed.multipliedReportingOverflow(by: multiplier)
        guard !overflow, offset >= 0, offset >> 3 < Int64(ctx.server.config.settings.protoMaxBulkLength) else {
            throw offsetError
        }
        return Int(offset)
    }

    /// The string at `key` for reading (nil when missing), after the type check.
    static func readString(_ ctx: CommandContext, _ index: Int = 1) throws(CommandError) -> Value? {
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[index], ctx.readOptions) else { return nil }
        return try StringCommands.stringValue(ctx, ref)
    }

    /// Runs `body` on the string at argument 1 made at least `length` bytes long (zero-filled), creating
    /// it when missing (Redis's `lookupStringForBitCommand`); `body` is told whether the key was created
    /// or grew, which counts as a change whatever the bits.
    static func withBitString<R>(
        _ ctx: inout CommandContext, length: Int, _ body: (UnsafeMutableRawBufferPointer, _ grew: Bool) -> R
    ) throws(CommandError) -> R {
        let db = ctx.db
        guard let ref = ctx.keyspace.lookupWrite(db, ctx.args[1]) else {
            var bytes = Bytes()
            let result = bytes.withMutableBytes(count: length) { body($0, true) }
            ctx.keyspace.insert(db, Bytes(ctx.args[1]), .rawString(bytes))
            return result
        }
        // Only the length: a copy of the value held here would make the write below copy the string.
        let current = try StringCommands.stringValue(ctx, ref).stringLength
        let newLength = max(current, length)
        return ctx.keyspace.modifyValue(db, ref) { value -> R in
            var bytes: Bytes
            switch value {
            case .rawString(let existing), .string(let existing): bytes = existing
            default: bytes = value.withStringBytes { Bytes($0) }!
            }
            value = .int(0)  // the block uniquely held, so that the bits change in place
            let result = bytes.withMutableBytes(count: newLength, reservingGrowth: true) { body($0, newLength != current) }
            value = .rawString(bytes)
            return result
        }
    }

    static func setbit(_ ctx: inout CommandContext) throws(CommandError) {
        let offset = try bitOffset(ctx, 2)
        let bitError = CommandError("ERR bit is not an integer or out of range")
        let on = try ctx.args.integer(3, or: bitError)
        guard on == 0 || on == 1 else { throw bitError }
        let (old, grew) = try withBitString(&ctx, length: offset >> 3 + 1) { bytes, grew in
            (Bitmap.setBit(at: offset, to: on == 1, in: bytes), grew)
        }
        if grew || old != (on == 1) {
            ctx.dirty()
            ctx.modified(ctx.args[1], "setbit", .string)
        }
        ctx.reply.integer(old ? 1 : 0)
    }

    static func getbit(_ ctx: inout CommandContext) throws(CommandError) {
        let offset = try bitOffset(ctx, 2)
        guard let value = try readString(ctx) else {
            ctx.reply.integer(0)
            return
        }
        ctx.reply.integer(value.withStringBytes { Bitmap.bit(at: offset, in: $0) }! ? 1 : 0)
    }

    /// The `BYTE | BIT` argument of BITCOUNT and BITPOS: true for BIT.
    static func isBitUnit(_ ctx: CommandContext, _ index: Int) throws(CommandError) -> Bool {
        if ctx.args.isKeyword(index, "bit") { return true }
        if ctx.args.isKeyword(index, "byte") { return false }
        throw .syntax
    }

    /// Converts a start/end pair to a bit range of a string of `length` bytes as Redis does (negative
    /// indexes from the end, clamped); nil for an empty range.
    static func bitRange(start: Int64, end: Int64, length: Int, inBits: Bool) -> ClosedRange<Int>? {
        let total = inBits ? Int64(length) << 3 : Int64(length)
        var start = start, end = end
        if start < 0 { start = total + start }
        if end < 0 { end = total + end }
        if start < 0 { start = 0 }
        if end < 0 { end = 0 }
        if end >= total { end = total - 1 }
        guard start <= end else { return nil }
        return inBits ? Int(start)...Int(end) : Int(start) << 3...(Int(end) << 3 + 7)
    }

    static func bitcount(_ ctx: inout CommandContext) throws(CommandError) {
        // Redis looks the key up first: a missing key answers 0 whatever the arguments.
        guard let value = try readString(ctx) else {
            ctx.reply.integer(0)
            return
        }
        let length = value.stringLength
        var range: ClosedRange<Int>?
        switch ctx.args.count {
        case 2:
            range = length == 0 ? nil : 0...(length << 3 - 1)
        case 4, 5:
            let start = try ctx.args.integer(2), end = try ctx.args.integer(3)
            if start < 0 && end < 0 && start > end {
                ctx.reply.integer(0)
                return
            }
            let inBits = ctx.args.count == 5 ? try isBitUnit(ctx, 4) : false
            range = bitRange(start: start, end: end, length: length, inBits: inBits)
        default:
            throw .syntax
        }
        guard let range else {
            ctx.reply.integer(0)
            return
        }
        ctx.reply.integer(value.withStringBytes { Bitmap.count($0, bits: range) }!)
    }

    static func bitpos(_ ctx: inout CommandContext) throws(CommandError) {
        let bit = try ctx.args.integer(2)
        guard bit == 0 || bit == 1 else { throw CommandError("ERR The bit argument must be 1 or 0.") }
        // A missing key is an endless run of zeros.
        guard let value = try readString(ctx) else {
            ctx.reply.integer(bit == 1 ? -1 : 0)
            return
        }
        let length = value.stringLength
        var range: ClosedRange<Int>?
        var endGiven = false
        switch ctx.args.count {
        case 3:
            range = length == 0 ? nil : 0...(length << 3 - 1)
        case 4, 5, 6:
            let start = try ctx.args.integer(3)
            let inBits = ctx.args.count == 6 ? try isBitUnit(ctx, 5) : false
            var end: Int64 = inBits ? Int64(length) << 3 - 1 : Int64(length) - 1
            if ctx.args.count >= 5 {
                end = try ctx.args.integer(4)
                endGiven = true
            }
            range = bitRange(start: start, end: end, length: length, inBits: inBits)
        default:
            throw .syntax
        }
        guard let range else {
            ctx.reply.integer(-1)
            return
        }
        if let found = value.withStringBytes({ Bitmap.position(of: bit == 1, in: $0, bits: range) })! {
            ctx.reply.integer(found)
        } else if bit == 0 && !endGiven {
            // Looking for a clear bit with no end given: the string continues with zeros.
            ctx.reply.integer(range.upperBound + 1)
        } else {
            ctx.reply.integer(-1)
        }
    }

    static func bitop(_ ctx: inout CommandContext) throws(CommandError) {
        let operation: Bitmap.Operation
        if ctx.args.isKeyword(1, "and") { operation = .and }
        else if ctx.args.isKeyword(1, "or") { operation = .or }
        else if ctx.args.isKeyword(1, "xor") { operation = .xor }
        else if ctx.args.isKeyword(1, "not") { operation = .not }
        else { throw .syntax }
        if operation == .not && ctx.args.count != 4 {
            throw CommandError("ERR BITOP NOT must be called with a single source key.")
        }
        var sources: [[UInt8]] = []
        for index in 3..<ctx.args.count {
            let value = try readString(ctx, index)
            sources.append(value?.withStringBytes { Array($0) } ?? [])
        }
        let result = Bitmap.combine(operation, sources)
        let destination = ctx.args[2]
        if result.isEmpty {
            if ctx.keyspace.delete(ctx.db, destination) {
                ctx.dirty()
                ctx.modified(destination, "del", .generic)
            }
        } else {
            ctx.keyspace.set(ctx.db, destination, .rawString(Bytes(result)))
            ctx.dirty()
            ctx.modified(destination, "set", .string)
        }
        ctx.reply.integer(result.count)
    }

    // MARK: BITFIELD

    /// One BITFIELD operation, parsed.
    struct FieldOperation {
        enum Kind { case get, set, incrby }
        var kind: Kind
        var signed: Bool
        var bits: Int
        var offset: Int
        var argument: Int64
        var overflow: BitField.Overflow
    }

    /// An `i<bits>` / `u<bits>` type argument.
    static func fieldType(_ ctx: CommandContext, _ index: Int) throws(CommandError) -> (signed: Bool, bits: Int) {
        var argument = ctx.args[index]
        guard let first = argument.readInteger(as: UInt8.self), first == UInt8(ascii: "i") || first == UInt8(ascii: "u"),
              let bits = argument.withUnsafeReadableBytes({ RedisInteger.parse($0) }) else { throw typeError }
        let signed = first == UInt8(ascii: "i")
        guard bits >= 1, bits <= (signed ? 64 : 63) else { throw typeError }
        return (signed, Int(bits))
    }

    /// Parses every operation first, as Redis does: an error anywhere means nothing runs.
    static func fieldOperations(_ ctx: CommandContext) throws(CommandError) -> [FieldOperation] {
        var operations: [FieldOperation] = []
        var overflow = BitField.Overflow.wrap
        var index = 2
        while index < ctx.args.count {
            let remaining = ctx.args.count - index - 1
            let kind: FieldOperation.Kind
            if ctx.args.isKeyword(index, "get") && remaining >= 2 { kind = .get }
            else if ctx.args.isKeyword(index, "set") && remaining >= 3 { kind = .set }
            else if ctx.args.isKeyword(index, "incrby") && remaining >= 3 { kind = .incrby }
            else if ctx.args.isKeyword(index, "overflow") && remaining >= 1 {
                if ctx.args.isKeyword(index + 1, "wrap") { overflow = .wrap }
                else if ctx.args.isKeyword(index + 1, "sat") { overflow = .saturate }
                else if ctx.args.isKeyword(index + 1, "fail") { overflow = .fail }
                else { throw CommandError("ERR Invalid OVERFLOW type specified") }
                index += 2
                continue
            } else {
                throw .syntax
            }
            let type = try fieldType(ctx, index + 1)
            let offset = try bitOffset(ctx, index + 2, fieldBits: type.bits)
            let argument = kind == .get ? 0 : try ctx.args.integer(index + 3)
            operations.append(FieldOperation(kind: kind, signed: type.signed, bits: type.bits, offset: offset,
                                             argument: argument, overflow: overflow))
            index += kind == .get ? 3 : 4
        }
        return operations
    }

    static func bitfield(_ ctx: inout CommandContext) throws(CommandError) { try bitfield(&ctx, readOnly: false) }
    static func bitfieldReadOnly(_ ctx: inout CommandContext) throws(CommandError) { try bitfield(&ctx, readOnly: true) }

    /// BITFIELD GET reads the key as is; any SET or INCRBY grows the string to the furthest bit written
    /// (creating it) before the operations run in order.
    @Sendable static func bitfieldKeyFlags(_ arguments: [ByteBuffer], _ key: KeyReference) -> KeySpecFlags {
        let writes = arguments.dropFirst(2).contains { argument in
            let word = String(buffer: argument).lowercased()
            return word == "set" || word == "incrby"
        }
        return writes ? [.rw, .access, .update] : [.ro, .access]
    }

    static func bitfield(_ ctx: inout CommandContext, readOnly: Bool) throws(CommandError) {
        let operations = try fieldOperations(ctx)
        let writes = operations.filter { $0.kind != .get }
        if writes.isEmpty {
            let value = try readString(ctx) ?? .rawString(Bytes())
            ctx.reply.array(operations.count)
            value.withStringBytes { raw in
                for operation in operations {
                    if operation.signed {
                        ctx.reply.integer(BitField.signed(raw, offset: operation.offset, bits: operation.bits))
                    } else {
                        ctx.reply.integer(Int64(bitPattern: BitField.unsigned(raw, offset: operation.offset, bits: operation.bits)))
                    }
                }
            }
            return
        }
        if readOnly { throw CommandError("ERR BITFIELD_RO only supports the GET subcommand") }
        let highest = writes.map { $0.offset + $0.bits - 1 }.max()!
        // Replies are gathered inside the write and sent after it. A write counts as a change when the
        // key was created or grew, or when the field's value changed (Redis 7.0.15): a refused or
        // same-value write alone announces nothing.
        var changes = 0
        let replies = try withBitString(&ctx, length: highest >> 3 + 1) { bytes, grew -> [Int64?] in
            operations.map { operation in
                let (reply, changed) = run(operation, on: bytes)
                if operation.kind != .get && reply != nil && (grew || changed) { changes += 1 }
                return reply
            }
        }
        ctx.reply.array(replies.count)
        for reply in replies {
            if let reply { ctx.reply.integer(reply) } else { ctx.reply.null() }
        }
        if changes > 0 {
            ctx.dirty(changes)
            ctx.modified(ctx.args[1], "setbit", .string)
        }
    }

    /// Runs one operation on the (grown) string: its reply (nil when OVERFLOW FAIL refused it) and whether
    /// the field's value changed.
    static func run(_ operation: FieldOperation, on bytes: UnsafeMutableRawBufferPointer) -> (reply: Int64?, changed: Bool) {
        let raw = UnsafeRawBufferPointer(bytes)
        let offset = operation.offset, bits = operation.bits
        if operation.signed {
            let old = BitField.signed(raw, offset: offset, bits: bits)
            switch operation.kind {
            case .get:
                return (old, false)
            case .set, .incrby:
                let isIncrement = operation.kind == .incrby
                let overflowed = isIncrement
                    ? BitField.signedOverflow(old, operation.argument, bits: bits, operation.overflow)
                    : BitField.signedOverflow(operation.argument, 0, bits: bits, operation.overflow)
                if overflowed != nil && operation.overflow == .fail { return (nil, false) }
                let new = overflowed ?? (isIncrement ? old &+ operation.argument : operation.argument)
                BitField.set(bytes, offset: offset, bits: bits, to: UInt64(bitPattern: new))
                return (isIncrement ? new : old, new != old)
            }
        }
        let old = BitField.unsigned(raw, offset: offset, bits: bits)
        switch operation.kind {
        case .get:
            return (Int64(bitPattern: old), false)
        case .set, .incrby:
            let isIncrement = operation.kind == .incrby
            let overflowed = isIncrement
                ? BitField.unsignedOverflow(old, operation.argument, bits: bits, operation.overflow)
                : BitField.unsignedOverflow(UInt64(bitPattern: operation.argument), 0, bits: bits, operation.overflow)
            if overflowed != nil && operation.overflow == .fail { return (nil, false) }
            let new = overflowed ?? (isIncrement ? old &+ UInt64(bitPattern: operation.argument) : UInt64(bitPattern: operation.argument))
            BitField.set(bytes, offset: offset, bits: bits, to: new)
            return (Int64(bitPattern: isIncrement ? new : old), new != old)
        }
    }
}
