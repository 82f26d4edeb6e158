import NovaRESP

/// Writes an RDB snapshot. Output goes through a 64 KiB buffer to `sink` (a file, or memory in tests);
/// the CRC-64 is computed on the way.
public struct RDBWriter {
    private var buffer: [UInt8] = []
    private var crc = CRC64()
    private var compressor = LZFCompressor()
    private let sink: ([UInt8]) throws -> Void
    /// Compress strings longer than 20 bytes with LZF (`rdbcompression`).
    public var compress: Bool
    /// Write the checksum (`rdbchecksum`); zero otherwise, as Redis does.
    public var checksum: Bool
    /// Bytes produced so far.
    public private(set) var bytesWritten = 0

    public init(compress: Bool = true, checksum: Bool = true, sink: @escaping ([UInt8]) throws -> Void) {
        self.compress = compress
        self.checksum = checksum
        self.sink = sink
        buffer.reserveCapacity(64 * 1024)
    }

    mutating func flushIfNeeded() throws {
        if buffer.count >= 64 * 1024 { try flush() }
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        if checksum { buffer.withUnsafeBytes { crc.update($0) } }
        bytesWritten += buffer.count
        try sink(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func byte(_ value: UInt8) { buffer.append(value) }

    mutating func bytes(_ raw: UnsafeRawBufferPointer) { buffer.append(contentsOf: raw) }

    /// Redis's length encoding.
    mutating func length(_ value: Int) { length64(UInt64(value)) }

    /// Redis's length encoding of a full 64-bit value (stream IDs and counters).
    mutating func length64(_ value: UInt64) {
        if value < 1 << 6 {
            byte(UInt8(value))
        } else if value < 1 << 14 {
            byte(UInt8(value >> 8) | RDBFormat.length14Bit << 6)
            byte(UInt8(value & 0xFF))
        } else if value <= UInt64(UInt32.max) {
            byte(RDBFormat.length32Bit)
            withUnsafeBytes(of: UInt32(value).bigEndian) { bytes($0) }
        } else {
            byte(RDBFormat.length64Bit)
            withUnsafeBytes(of: value.bigEndian) { bytes($0) }
        }
    }

    /// The special integer encoding, when `value` fits 32 bits.
    mutating func integerEncoding(_ value: Int64) -> Bool {
        let special = RDBFormat.encodedValue << 6
        if value >= Int64(Int8.min) && value <= Int64(Int8.max) {
            byte(special | UInt8(RDBFormat.encodingInt8))
            byte(UInt8(bitPattern: Int8(value)))
        } else if value >= Int64(Int16.min) && value <= Int64(Int16.max) {
            byte(special | UInt8(RDBFormat.encodingInt16))
            withUnsafeBytes(of: Int16(value).littleEndian) { bytes($0) }
        } else if value >= Int64(Int32.min) && value <= Int64(Int32.max) {
            byte(special | UInt8(RDBFormat.encodingInt32))
            withUnsafeBytes(of: Int32(value).littleEndian) { bytes($0) }
        } else {
            return false
        }
        return true
    }

    /// A string as Redis saves it: integer-encoded when it is a short canonical integer, LZF-compressed
    /// when long and compressible, raw otherwise.
    public mutating func string(_ raw: UnsafeRawBufferPointer) throws {
        if raw.count <= 11, let number = RedisInteger.parse(raw), integerEncoding(number) {
            return try flushIfNeeded()
        }
        if compress && raw.count > 20, let compressed = compressor.compress(raw), compressed.count < raw.count - 4 {
            byte(RDBFormat.encodedValue << 6 | UInt8(RDBFormat.encodingLZF))
            length(compressed.count)
            length(raw.count)
            compressed.withUnsafeBytes { bytes($0) }
            return try flushIfNeeded()
        }
        length(raw.count)
        bytes(raw)
        try flushIfNeeded()
    }

    /// A string given as text.
    public mutating func string(_ text: String) throws {
        var text = text
        try text.withUTF8 { try string(UnsafeRawBufferPointer($0)) }
    }

    /// An integer saved as a string (`rdbSaveLongLongAsStringObject`).
    mutating func integerString(_ value: Int64) throws {
        if !integerEncoding(value) {
            let text = String(value)
            try string(text)
        }
        try flushIfNeeded()
    }

    /// The file header: magic, version and auxiliary fields.
    public mutating func header(aux: [(String, String)]) throws {
        let magic = Array("REDIS".utf8) + Array(paddedVersion(RDBFormat.version).utf8)
        magic.withUnsafeBytes { bytes($0) }
        for (key, value) in aux {
            byte(RDBFormat.opAux)
            try string(key)
            if let number = Int64(value) { try integerString(number) } else { try string(value) }
        }
    }

    /// Function libraries (FUNCTION LOAD), by their code: Redis 7.0 writes them after the header.
    public mutating func functions(_ libraries: [[UInt8]]) throws {
        for code in libraries {
            byte(RDBFormat.opFunction2)
            try code.withUnsafeBytes { try string($0) }
        }
    }

    /// FUNCTION DUMP's payload: the libraries as in a snapshot, the RDB version (2 bytes) and a CRC64 of
    /// everything before it, as Redis's DUMP payloads.
    public static func functionsPayload(_ libraries: [[UInt8]], compress: Bool = true) -> [UInt8] {
        var payload: [UInt8] = []
        var writer = RDBWriter(compress: compress, checksum: false) { payload += $0 }
        try? writer.functions(libraries)
        try? writer.flush()
        withUnsafeBytes(of: UInt16(RDBFormat.version).littleEndian) { payload += $0 }
        withUnsafeBytes(of: CRC64.checksum(payload).littleEndian) { payload += $0 }
        return payload
    }

    /// One database: SELECTDB, RESIZEDB and every key not expired at `now`.
    /// `clock` decides whether LRU idle times or LFU counters are saved.
    public mutating func database(
        _ index: Int, _ snapshot: DatabaseSnapshot, now: Int64, clock: AccessClockKind = .none
    ) throws {
        guard snapshot.count > 0 else { return }
        byte(RDBFormat.opSelectDB)
        length(index)
        byte(RDBFormat.opResizeDB)
        length(snapshot.count)
        length(snapshot.volatileCount)
        try snapshot.forEach { entry in
            if entry.expireAt != 0 && entry.expireAt < now { return }
            try self.entry(entry, now: now, clock: clock)
        }
    }

    /// One key with its expiry and access clock.
    public mutating func entry(_ entry: Entry, now: Int64, clock: AccessClockKind = .none) throws {
        if entry.expireAt != 0 {
            byte(RDBFormat.opExpireTimeMs)
            withUnsafeBytes(of: entry.expireAt.littleEndian) { bytes($0) }
        }
        switch clock {
        case .none: break
        case .lru:
            byte(RDBFormat.opIdle)
            length(Int(LRU.idleSeconds(since: entry.access, nowMs: now)))
        case .lfu:
            byte(RDBFormat.opFreq)
            byte(UInt8(entry.access & 0xFF))
        }
        try value(entry.value, key: entry.key)
    }

    /// DUMP's payload for one value: its RDB type and encoding (no key), the RDB version (2 bytes) and a
    /// CRC64 of everything before it, as Redis's `createDumpPayload`.
    public static func dumpPayload(_ value: Value, compress: Bool = true) -> [UInt8] {
        var payload: [UInt8] = []
        var writer = RDBWriter(compress: compress, checksum: false) { payload += $0 }
        try? writer.value(value, key: nil)
        try? writer.flush()
        withUnsafeBytes(of: UInt16(RDBFormat.version).littleEndian) { payload += $0 }
        withUnsafeBytes(of: CRC64.checksum(payload).littleEndian) { payload += $0 }
        return payload
    }

    /// The type byte, the key (none in a DUMP payload) and the value's encoding.
    mutating func value(_ value: Value, key: Bytes?) throws {
        func type(_ code: UInt8) throws {
            byte(code)
            if let key { try key.withBytes { try string($0) } }
        }
        switch value {
        case .int(let number), .ownedInt(let number):
            try type(RDBFormat.typeString)
            try integerString(number)
        case .string(let bytes), .rawString(let bytes):
            try type(RDBFormat.typeString)
            try bytes.withBytes { try string($0) }
        case .list(let list):
            // The plain list type: every Redis version since 1.0 loads it.
            try type(RDBFormat.typeList)
            length(list.count)
            try list.forEach(in: 0..<list.count) { item in
                try string(item)
                return true
            }
        case .set(let set):
            try type(RDBFormat.typeSet)
            length(set.count)
            try set.forEach { try string($0) }
        case .hash(let hash):
            try type(RDBFormat.typeHash)
            length(hash.count)
            try hash.forEach { field, value in
                try string(field)
                try string(value)
            }
        case .zset(let zset):
            try type(RDBFormat.typeZSet2)
            length(zset.count)
            // Lowest score last, as Redis writes them, so that loading appends in order.
            try zset.forEachReversed(from: zset.count - 1) { element in
                try element.member.withBytes { try string($0) }
                withUnsafeBytes(of: element.score.bitPattern.littleEndian) { bytes($0) }
                return true
            }
        case .stream(let stream):
            try type(RDBFormat.typeStreamListpacks2)
            try self.stream(stream)
        }
        try flushIfNeeded()
    }

    /// A stream as Redis 7.0 saves it (`RDB_TYPE_STREAM_LISTPACKS_2`): each node as its master ID (16 bytes,
    /// big-endian) and its listpack, the counters, then each group with its pending entries and consumers.
    mutating func stream(_ stream: StreamValue) throws {
        let nodes = stream.nodeListpacks
        length(nodes.count)
        for (master, listpack) in nodes {
            try master.bigEndianBytes.withUnsafeBytes { try string($0) }
            try listpack.withUnsafeBytes { try string($0) }
            try flushIfNeeded()
        }
        length(stream.length)
        length64(stream.lastID.ms)
        length64(stream.lastID.seq)
        length64(stream.firstID.ms)
        length64(stream.firstID.seq)
        length64(stream.maxDeletedID.ms)
        length64(stream.maxDeletedID.seq)
        length64(stream.entriesAdded)
        length(stream.groups.count)
        for group in stream.groups {
            try group.name.withBytes { try string($0) }
            length64(group.lastID.ms)
            length64(group.lastID.seq)
            length64(UInt64(bitPattern: group.entriesRead))
            length(group.pending.count)
            group.pending.forEach(from: 0) { entry in
                entry.id.bigEndianBytes.withUnsafeBytes { bytes($0) }
                withUnsafeBytes(of: entry.deliveryTime.littleEndian) { bytes($0) }
                length64(entry.deliveryCount)
                return true
            }
            try flushIfNeeded()
            length(group.consumers.count)
            for consumer in group.consumers {
                try consumer.name.withBytes { try string($0) }
                withUnsafeBytes(of: consumer.seenTime.littleEndian) { bytes($0) }
                length(consumer.pending.count)
                consumer.pending.forEach(from: 0) { id in
                    id.bigEndianBytes.withUnsafeBytes { bytes($0) }
                    return true
                }
                try flushIfNeeded()
            }
        }
    }

    /// The EOF opcode and the checksum; flushes everything.
    public mutating func finish() throws {
        byte(RDBFormat.opEOF)
        try flush()
        let sum = checksum ? crc.value : 0
        withUnsafeBytes(of: sum.littleEndian) { bytes($0) }
        bytesWritten += buffer.count
        try sink(buffer)
        buffer.removeAll()
    }
}

/// What a snapshot keeps of each key's access clock (per the eviction policy, as Redis).
public enum AccessClockKind: Sendable {
    case none, lru, lfu
}

/// Four digits, zero-padded (RDB versions).
func paddedVersion(_ value: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: Swift.max(0, 4 - digits.count)) + digits
}
