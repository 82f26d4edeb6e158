#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NovaRESP

/// A byte source for the RDB reader: a file read in 1 MiB chunks, or memory. Tracks the offset and the
/// CRC-64 of everything consumed.
public final class RDBInput {
    private var buffer: [UInt8]
    private var position = 0
    private var filled = 0
    private let descriptor: Int32?
    private var crc = CRC64()
    private var crcPosition = 0
    /// Bytes consumed before the current buffer.
    private var base = 0
    /// The total size, when known (for progress, and to refuse a length past the end before allocating
    /// for it).
    public let totalSize: Int

    /// Reads from an open file descriptor (the caller closes it).
    public init(descriptor: Int32, size: Int) {
        self.descriptor = descriptor
        self.buffer = [UInt8](repeating: 0, count: 1 << 20)
        self.totalSize = size
    }

    /// Reads from memory.
    public init(bytes: [UInt8]) {
        self.descriptor = nil
        self.buffer = bytes
        self.filled = bytes.count
        self.totalSize = bytes.count
    }

    /// The offset of the next byte.
    public var offset: Int { base + position }

    /// The checksum of everything consumed so far.
    public var checksum: UInt64 {
        updateCRC()
        return crc.value
    }

    private func updateCRC() {
        if crcPosition < position {
            buffer.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[crcPosition..<position])) }
            crcPosition = position
        }
    }

    /// Makes at least `count` bytes available at `position`; false at end of input.
    private func ensure(_ count: Int) throws(RDBError) -> Bool {
        if filled - position >= count { return true }
        guard let descriptor else { return false }
        // More than the file holds (a corrupt length): the end of input, before allocating for it.
        if totalSize > 0 && count > totalSize - offset { return false }
        updateCRC()
        // Keep the unread tail, grow for a large request, refill.
        let tail = filled - position
        if position > 0 {
            buffer.withUnsafeMutableBytes { raw in
                if tail > 0 { raw.baseAddress!.copyMemory(from: raw.baseAddress! + position, byteCount: tail) }
            }
            base += position
            position = 0
            crcPosition = 0
            filled = tail
        }
        if buffer.count < count { buffer.append(contentsOf: repeatElement(0, count: count - buffer.count)) }
        while filled < count {
            let read = buffer.withUnsafeMutableBytes { raw -> Int in
                Glibc.read(descriptor, raw.baseAddress! + filled, raw.count - filled)
            }
            if read < 0 {
                if errno == EINTR { continue }
                throw RDBError("read error: \(String(cString: strerror(errno)))", offset: offset)
            }
            if read == 0 { return false }
            filled += read
        }
        return true
    }

    /// The next byte, not consumed.
    public func peekByte() throws(RDBError) -> UInt8 {
        guard try ensure(1) else { throw RDBError("unexpected end of file", offset: offset) }
        return buffer[position]
    }

    /// Reads one byte.
    public func byte() throws(RDBError) -> UInt8 {
        guard try ensure(1) else { throw RDBError("unexpected end of file", offset: offset) }
        defer { position += 1 }
        return buffer[position]
    }

    /// Calls `body` with the next `count` bytes and consumes them.
    public func read<R>(_ count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) throws(RDBError) -> R {
        guard count >= 0, try ensure(count) else { throw RDBError("unexpected end of file", offset: offset) }
        let start = position
        position += count
        do {
            return try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<(start + count)])) }
        } catch let error as RDBError {
            throw error
        } catch {
            throw RDBError("\(error)", offset: offset)
        }
    }

    /// True when no byte is left.
    public func atEnd() throws(RDBError) -> Bool { try !ensure(1) }
}

/// Reads an RDB snapshot into databases (Redis 7.0's format, versions 1 to 10, with LZF strings and
/// integer encodings).
public struct RDBReader {
    private let input: RDBInput
    /// What was found besides keys.
    public private(set) var aux: [String: String] = [:]
    /// The code of each function library the file holds (FUNCTION LOAD), in file order.
    public private(set) var functionLibraries: [[UInt8]] = []
    /// Keys loaded, and keys skipped because they had expired.
    public private(set) var keysLoaded = 0
    public private(set) var keysExpired = 0
    /// Encoding limits for the collections loaded (OBJECT ENCODING as Redis would report after a load).
    public var limits = EncodingLimits()
    /// Whether small integer strings load as Redis's shared objects (see `Keyspace.sharesIntegers`).
    public var sharesIntegers = true
    /// Called every 65,536 keys with the byte offset and the number of keys loaded (progress logging).
    public var progress: ((_ offset: Int, _ keys: Int) -> Void)?
    private var version = 0

    public init(_ input: RDBInput) { self.input = input }

    /// Loads everything into `databases`, skipping keys expired at `now`, restoring access clocks as
    /// `clock` says. Verifies the checksum when the file has one.
    public mutating func load(into databases: [Database], now: Int64, clock: AccessClockKind = .none) throws(RDBError) {
        let magic = try input.read(9) { Array($0) }
        guard magic.count == 9, Array(magic[0..<5]) == Array("REDIS".utf8),
              let parsed = Int(String(decoding: magic[5..<9], as: UTF8.self)) else {
            throw RDBError("Wrong signature trying to load DB from file", offset: 0)
        }
        guard parsed >= 1 && parsed <= RDBFormat.newestReadable else {
            throw RDBError("Can't handle RDB format version \(parsed)", offset: 5)
        }
        version = parsed
        var db = 0
        // Reused for every key and every plain string value.
        var key: [UInt8] = []
        var text: [UInt8] = []
        var expireAt: Int64 = 0
        var idle: Int64? = nil
        var frequency: UInt8? = nil
        while true {
            let type = try input.byte()
            switch type {
            case RDBFormat.opExpireTimeMs:
                expireAt = try input.read(8) { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
                continue
            case RDBFormat.opExpireTime:
                expireAt = try input.read(4) { Int64(Int32(littleEndian: $0.loadUnaligned(as: Int32.self))) } * 1000
                continue
            case RDBFormat.opIdle:
                idle = Int64(try length())
                continue
            case RDBFormat.opFreq:
                frequency = try input.byte()
                continue
            case RDBFormat.opSelectDB:
                let selected = try length()
                guard selected < databases.count else {
                    throw RDBError("FATAL: Data file was created with a Redis server configured to handle more than \(databases.count) databases. Exiting", offset: input.offset)
                }
                db = selected
                continue
            case RDBFormat.opResizeDB:
                // A hint, trusted only as far as the input could hold that many keys (3 bytes each at
                // least: type, key length, value length).
                let keys = try length()
                _ = try length()
                let plausible = input.totalSize > 0 ? input.totalSize / 3 : 1 << 20
                databases[db].reserveCapacity(forAdditionalKeys: min(keys, plausible))
                continue
            case RDBFormat.opAux:
                let key = String(decoding: try string(), as: UTF8.self)
                let value = String(decoding: try string(), as: UTF8.self)
                aux[key] = value
                continue
            case RDBFormat.opFunction2:
                functionLibraries.append(try string())
                continue
            case RDBFormat.opFunctionPreGA:
                throw RDBError("Pre-GA function format not supported", offset: input.offset)
            case RDBFormat.opModuleAux:
                throw RDBError("The RDB file contains module data, which NovaCache cannot load", offset: input.offset)
            case RDBFormat.opEOF:
                if version >= 5 {
                    let computed = input.checksum
                    let stored = try input.read(8) { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                    if stored != 0 && stored != computed {
                        throw RDBError("Wrong RDB checksum expected: (\(String(stored, radix: 16))) got: (\(String(computed, radix: 16))). Aborting now.", offset: input.offset)
                    }
                }
                return
            default:
                let keyOffset = input.offset
                try string(into: &key)
                // A plain string (most keys) goes from the file's bytes into its record, copied once.
                var value = Value.int(0)
                var isText = false
                if type == RDBFormat.typeString {
                    try string(into: &text)
                    if let integer = text.withUnsafeBytes({ Value.integer(parsing: $0, sharesIntegers: sharesIntegers) }) {
                        value = integer
                    } else {
                        isText = true
                    }
                } else {
                    value = try self.value(type: type)
                }
                defer {
                    expireAt = 0
                    idle = nil
                    frequency = nil
                }
                if expireAt != 0 && expireAt < now {
                    keysExpired += 1
                    continue
                }
                // Redis skips empty collections (they can only come from old or foreign writers).
                if !isText && value.isEmptyCollection { continue }
                let database = databases[db]
                let hash = key.withUnsafeBytes { KeyHashing.hash($0) }
                if key.withUnsafeBytes({ database.find(raw: $0, hash: hash) }) != nil {
                    throw RDBError("RDB has duplicated key '\(Bytes(key))' in DB \(db)", offset: keyOffset)
                }
                var access: UInt32 = clock == .lfu ? LFU.initial(nowMs: now) : LRU.clock(nowMs: now)
                if clock == .lru, let idle { access = LRU.clock(idleSeconds: idle, nowMs: now) }
                if clock == .lfu, let frequency { access = (access & ~0xFF) | UInt32(frequency) }
                key.withUnsafeBytes { key in
                    if isText {
                        _ = text.withUnsafeBytes { database.insert(key: key, string: $0, expireAt: expireAt, access: access, hash: hash) }
                    } else {
                        _ = database.insert(key: key, value: value, expireAt: expireAt, access: access, hash: hash)
                    }
                }
                keysLoaded += 1
                if keysLoaded & 0xFFFF == 0 { progress?(input.offset, keysLoaded) }
            }
        }
    }

    /// Redis's length encoding of a full 64-bit value (stream IDs and counters).
    func length64() throws(RDBError) -> UInt64 {
        let first = try input.peekByte()
        if first == RDBFormat.length64Bit {
            _ = try input.byte()
            return try input.read(8) { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
        }
        return UInt64(try length())
    }

    /// Redis's length encoding; integer-encoded strings report `encoded`.
    private func lengthOrEncoding() throws(RDBError) -> (value: Int, encoded: Bool) {
        let first = try input.byte()
        switch first >> 6 {
        case 0:
            return (Int(first & 0x3F), false)
        case 1:
            let second = try input.byte()
            return (Int(first & 0x3F) << 8 | Int(second), false)
        case 3:
            return (Int(first & 0x3F), true)
        default:
            if first == RDBFormat.length32Bit {
                return (Int(try input.read(4) { UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self)) }), false)
            }
            if first == RDBFormat.length64Bit {
                let value = try input.read(8) { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
                guard value <= UInt64(Int.max) else { throw RDBError("length out of range", offset: input.offset) }
                return (Int(value), false)
            }
            throw RDBError("Unknown length encoding \(first) in rdbLoadLen()", offset: input.offset)
        }
    }

    func length() throws(RDBError) -> Int {
        let (value, encoded) = try lengthOrEncoding()
        if encoded { throw RDBError("unexpected encoded value where a length was expected", offset: input.offset) }
        return value
    }

    /// A string, raw, integer-encoded or LZF-compressed.
    func string() throws(RDBError) -> [UInt8] {
        var bytes: [UInt8] = []
        try string(into: &bytes)
        return bytes
    }

    /// Reads a string into `out`, replacing its contents and keeping its storage (the load loop reuses
    /// one buffer for every key and plain string value instead of allocating an array for each).
    func string(into out: inout [UInt8]) throws(RDBError) {
        out.removeAll(keepingCapacity: true)
        let (value, encoded) = try lengthOrEncoding()
        guard encoded else {
            try input.read(value) { out.append(contentsOf: $0) }
            return
        }
        func integer(_ number: Int64) {
            var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
            withUnsafeMutableBytes(of: &scratch) { digits in
                let length = RedisInteger.format(number, into: digits)
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: digits[0..<length]))
            }
        }
        switch value {
        case RDBFormat.encodingInt8:
            integer(Int64(Int8(bitPattern: try input.byte())))
        case RDBFormat.encodingInt16:
            integer(Int64(try input.read(2) { Int16(littleEndian: $0.loadUnaligned(as: Int16.self)) }))
        case RDBFormat.encodingInt32:
            integer(Int64(try input.read(4) { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) }))
        case RDBFormat.encodingLZF:
            let compressedLength = try length()
            let originalLength = try length()
            let offset = input.offset
            let valid = try input.read(compressedLength) { compressed -> Bool in
                guard LZF.isPlausible(compressed, expectedLength: originalLength) else { return false }
                out.append(contentsOf: repeatElement(0, count: originalLength))
                return out.withUnsafeMutableBufferPointer { LZF.decompress(compressed, into: $0) }
            }
            guard valid else { throw RDBError("Invalid LZF compressed string", offset: offset) }
        default:
            throw RDBError("Unknown RDB string encoding type \(value)", offset: input.offset)
        }
    }

    /// A binary double (ZSET_2).
    private func binaryDouble() throws(RDBError) -> Double {
        Double(bitPattern: try input.read(8) { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
    }

    /// A double written as text with a length byte (the old ZSET type): 253 nan, 254 +inf, 255 -inf.
    private func textDouble() throws(RDBError) -> Double {
        let length = try input.byte()
        switch length {
        case 253: return .nan
        case 254: return .infinity
        case 255: return -.infinity
        default:
            let text = try input.read(Int(length)) { Array($0) }
            guard let value = RedisFloat.parseDouble(text) ?? Double(String(decoding: text, as: UTF8.self)) else {
                throw RDBError("Invalid double value", offset: input.offset)
            }
            return value
        }
    }

    private func compact(_ decode: ([UInt8]) throws(CompactEncodings.Malformed) -> [[UInt8]]) throws(RDBError) -> [[UInt8]] {
        let blob = try string()
        do {
            return try decode(blob)
        } catch {
            throw RDBError("Malformed compact encoding", offset: input.offset)
        }
    }

    private func pairs(_ flat: [[UInt8]]) throws(RDBError) -> [([UInt8], [UInt8])] {
        guard flat.count % 2 == 0 else { throw RDBError("Odd number of elements in a paired encoding", offset: input.offset) }
        return stride(from: 0, to: flat.count, by: 2).map { (flat[$0], flat[$0 + 1]) }
    }

    private func hash(_ pairs: [([UInt8], [UInt8])]) -> Value {
        var hash = HashValue()
        for (field, value) in pairs { hash.set(Bytes(field), Bytes(value), limits: limits) }
        hash.deriveEncoding(limits: limits)
        return .hash(hash)
    }

    private func zset(_ pairs: [([UInt8], Double)]) throws(RDBError) -> Value {
        var zset = SortedSetValue()
        for (member, score) in pairs {
            if score.isNaN { throw RDBError("Zset with NAN score detected", offset: input.offset) }
            zset.set(Bytes(member), score: score, limits: limits)
        }
        zset.deriveEncoding(limits: limits)
        return .zset(zset)
    }

    private func set(_ members: [[UInt8]]) -> Value {
        var set = SetValue()
        for member in members { set.add(Bytes(member), limits: limits) }
        set.deriveEncoding(limits: limits)
        return .set(set)
    }

    private func value(type: UInt8) throws(RDBError) -> Value {
        switch type {
        case RDBFormat.typeString:
            return Value.string(from: try string(), sharesIntegers: sharesIntegers)
        case RDBFormat.typeList:
            let count = try length()
            var list = ListValue()
            for _ in 0..<count { list.append(Bytes(try string())) }
            return .list(list)
        case RDBFormat.typeSet:
            let count = try length()
            var members: [[UInt8]] = []
            members.reserveCapacity(min(count, 1 << 16))
            for _ in 0..<count { members.append(try string()) }
            return set(members)
        case RDBFormat.typeHash:
            let count = try length()
            var fields: [([UInt8], [UInt8])] = []
            for _ in 0..<count { fields.append((try string(), try string())) }
            return hash(fields)
        case RDBFormat.typeZSet, RDBFormat.typeZSet2:
            let count = try length()
            var members: [([UInt8], Double)] = []
            for _ in 0..<count {
                let member = try string()
                members.append((member, type == RDBFormat.typeZSet2 ? try binaryDouble() : try textDouble()))
            }
            return try zset(members)
        case RDBFormat.typeListZiplist:
            return .list(ListValue(try compact(CompactEncodings.ziplist).map { Bytes($0) }))
        case RDBFormat.typeListQuicklist, RDBFormat.typeListQuicklist2:
            let nodes = try length()
            var list = ListValue()
            for _ in 0..<nodes {
                var container = 2  // packed
                if type == RDBFormat.typeListQuicklist2 { container = try length() }
                if container == 1 {
                    list.append(Bytes(try string()))  // a plain node holds one large element
                } else {
                    let items = type == RDBFormat.typeListQuicklist2
                        ? try compact(CompactEncodings.listpack) : try compact(CompactEncodings.ziplist)
                    for item in items { list.append(Bytes(item)) }
                }
            }
            return .list(list)
        case RDBFormat.typeSetIntset:
            return set(try compact(CompactEncodings.intset))
        case RDBFormat.typeHashZipmap:
            return hash(try pairs(try compact(CompactEncodings.zipmap)))
        case RDBFormat.typeHashZiplist:
            return hash(try pairs(try compact(CompactEncodings.ziplist)))
        case RDBFormat.typeHashListpack:
            return hash(try pairs(try compact(CompactEncodings.listpack)))
        case RDBFormat.typeZSetZiplist, RDBFormat.typeZSetListpack:
            let flat = type == RDBFormat.typeZSetListpack
                ? try compact(CompactEncodings.listpack) : try compact(CompactEncodings.ziplist)
            var members: [([UInt8], Double)] = []
            for (member, score) in try pairs(flat) {
                guard let value = RedisFloat.parseDouble(score) else { throw RDBError("Invalid zset score", offset: input.offset) }
                members.append((member, value))
            }
            return try zset(members)
        case RDBFormat.typeStreamListpacks, RDBFormat.typeStreamListpacks2:
            return .stream(try stream(version2: type == RDBFormat.typeStreamListpacks2))
        case RDBFormat.typeModule, RDBFormat.typeModule2:
            throw RDBError("The RDB file contains module data, which NovaCache cannot load", offset: input.offset)
        default:
            throw RDBError("Unknown RDB object type \(type)", offset: input.offset)
        }
    }
}

extension RDBReader {
    /// The body of a DUMP-style payload (everything before the 2-byte RDB version and the CRC64), or nil
    /// when the footer is missing, the version is newer than this reader knows or the checksum is wrong
    /// (Redis's `verifyDumpPayload`).
    static func verifiedPayloadBody(_ payload: [UInt8]) -> [UInt8]? {
        guard payload.count >= 10 else { return nil }
        let footer = payload.count - 10
        let version = Int(payload[footer]) | Int(payload[footer + 1]) << 8
        let stored = payload[(footer + 2)...].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard version <= RDBFormat.newestReadable, stored == CRC64.checksum(Array(payload[..<(footer + 2)])) else { return nil }
        return Array(payload[..<footer])
    }

    /// The value of a DUMP payload (RESTORE): nil when its version or checksum is wrong (Redis's "DUMP
    /// payload version or checksum are wrong"); throws when the data is malformed ("Bad data format"),
    /// including an empty collection, which Redis refuses to load.
    public static func dumpPayload(
        _ payload: [UInt8], limits: EncodingLimits, sharesIntegers: Bool = true
    ) throws(RDBError) -> Value? {
        guard verifiedPayloadBody(payload) != nil else { return nil }
        // Redis reads the value from the whole payload: a value running into the footer loads with it.
        var reader = RDBReader(RDBInput(bytes: payload))
        reader.limits = limits
        reader.sharesIntegers = sharesIntegers
        let value = try reader.value(type: try reader.input.byte())
        if value.isEmptyCollection { throw RDBError("Empty keys skipped", offset: 0) }
        return value
    }

    /// The libraries of a FUNCTION DUMP payload; nil when its version or checksum is wrong.
    public static func functionsPayload(_ payload: [UInt8]) throws(RDBError) -> [[UInt8]]? {
        guard let body = verifiedPayloadBody(payload) else { return nil }
        let reader = RDBReader(RDBInput(bytes: body))
        var libraries: [[UInt8]] = []
        while try !reader.input.atEnd() {
            let type = try reader.input.byte()
            if type == RDBFormat.opFunctionPreGA { throw RDBError("Pre-GA function format not supported", offset: 0) }
            guard type == RDBFormat.opFunction2 else { throw RDBError("given type is not a function", offset: 0) }
            libraries.append(try reader.string())
        }
        return libraries
    }
}

extension RDBReader {
    /// A stream (`RDB_TYPE_STREAM_LISTPACKS` of Redis 5–6.2, `_2` of 7.0), as `rdbLoadObject` reads it.
    func stream(version2: Bool) throws(RDBError) -> StreamValue {
        func fail(_ message: String) -> RDBError { RDBError(message, offset: input.offset) }
        func id() throws(RDBError) -> StreamID { StreamID(ms: try length64(), seq: try length64()) }
        func rawID() throws(RDBError) -> StreamID {
            try input.read(16) { StreamID(bigEndian: $0)! }
        }
        func milliseconds() throws(RDBError) -> Int64 {
            try input.read(8) { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
        }
        let nodeCount = try length()
        var nodes: [(master: StreamID, listpack: [UInt8])] = []
        for _ in 0..<nodeCount {
            guard let master = StreamID(bigEndian: try string()) else { throw fail("Stream node key entry is not the size of a stream ID") }
            nodes.append((master, try string()))
        }
        let length = try length()
        let lastID = try id()
        var firstID = StreamID.zero, maxDeletedID = StreamID.zero
        var entriesAdded = UInt64(length)
        if version2 {
            firstID = try id()
            maxDeletedID = try id()
            entriesAdded = try length64()
        }
        let groupCount = try self.length()
        var groups: [StreamGroup] = []
        for _ in 0..<groupCount {
            let name = Bytes(try string())
            let groupLastID = try id()
            var entriesRead = StreamGroup.unknownEntriesRead
            if version2 { entriesRead = Int64(bitPattern: try length64()) }
            var group = StreamGroup(name: name, lastID: groupLastID, entriesRead: entriesRead)
            var pending: [StreamID: (time: Int64, count: UInt64)] = [:]
            let pendingCount = try self.length()
            var order: [StreamID] = []
            for _ in 0..<pendingCount {
                let entryID = try rawID()
                let time = try milliseconds()
                let count = try length64()
                guard pending[entryID] == nil else { throw fail("Duplicated global PEL entry loading stream consumer group") }
                pending[entryID] = (time, count)
                order.append(entryID)
            }
            let consumerCount = try self.length()
            var owned = Set<StreamID>()
            for _ in 0..<consumerCount {
                let consumerName = Bytes(try string())
                let seen = try milliseconds()
                guard group.addConsumer(consumerName, seenTime: seen) else { throw fail("Duplicated consumer name in stream consumer group") }
                let ownedCount = try self.length()
                for _ in 0..<ownedCount {
                    let entryID = try rawID()
                    guard let info = pending[entryID], owned.insert(entryID).inserted else {
                        throw fail("Consumer PEL entry not found in the group's global PEL")
                    }
                    group.setPending(PendingEntry(id: entryID, deliveryTime: info.time, deliveryCount: info.count, consumer: consumerName))
                }
            }
            guard owned.count == order.count else { throw fail("Stream consumer group has PEL entries without a consumer") }
            groups.append(group)
        }
        guard let stream = StreamValue(nodes: nodes, length: length, lastID: lastID, firstID: firstID,
                                       maxDeletedID: maxDeletedID, entriesAdded: entriesAdded, groups: groups) else {
            throw fail("Malformed stream listpack")
        }
        var loaded = stream
        if !version2 { loaded.deriveVersion2Counters() }
        return loaded
    }
}
