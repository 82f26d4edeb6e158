public import NovaRESP

/// The value stored under a key.
public enum Value: Sendable {
    /// A string that is a canonical 64-bit integer (Redis's `int` encoding).
    case int(Int64)
    /// An integer from 0 to 9999 that Redis holds in an object of its own instead of its shared one (a
    /// COPY, or created while a maxmemory LRU/LFU policy needed per-key clocks). Behaves as `int`; only
    /// OBJECT REFCOUNT tells them apart.
    case ownedInt(Int64)
    /// A string as set (`embstr` up to 44 bytes, `raw` above).
    case string(Bytes)
    /// A string modified in place by APPEND or SETRANGE (always `raw`); may carry spare capacity.
    case rawString(Bytes)
    case list(ListValue)
    case hash(HashValue)
    case set(SetValue)
    case zset(SortedSetValue)
    /// A stream (entries, consumer groups); may be empty.
    case stream(StreamValue)

    /// The range of Redis's shared integer objects (`OBJ_SHARED_INTEGERS`).
    public static let sharedIntegers: Range<Int64> = 0..<10000

    /// A string value with the encoding Redis would pick for `bytes` (`int` when it is a canonical integer
    /// of at most 20 characters). `sharesIntegers` false: a small integer gets an object of its own.
    public static func string(from bytes: some ContiguousBytes, sharesIntegers: Bool = true) -> Value {
        bytes.withBytes { raw in integer(parsing: raw, sharesIntegers: sharesIntegers) ?? .string(Bytes(raw)) }
    }

    /// The integer a string of `raw` bytes is kept as when it is a canonical integer (`string(from:)`'s
    /// rule, for callers that keep other strings their own way), else nil.
    @inline(__always)
    public static func integer(parsing raw: UnsafeRawBufferPointer, sharesIntegers: Bool = true) -> Value? {
        RedisInteger.parse(raw).map { integer($0, sharesIntegers: sharesIntegers) }
    }

    /// An integer string; `sharesIntegers` false: a small integer gets an object of its own.
    public static func integer(_ number: Int64, sharesIntegers: Bool = true) -> Value {
        !sharesIntegers && sharedIntegers.contains(number) ? .ownedInt(number) : .int(number)
    }

    /// True when Redis would answer this value with its shared integer object (OBJECT REFCOUNT).
    public var isSharedInteger: Bool {
        if case .int(let number) = self { return Self.sharedIntegers.contains(number) }
        return false
    }

    /// The value as Redis's `dupStringObject` copies it (COPY): a shared integer becomes an own object.
    public var duplicated: Value {
        if isSharedInteger, case .int(let number) = self { return .ownedInt(number) }
        return self
    }

    /// The name TYPE reports.
    public var typeName: StaticString {
        switch self {
        case .int, .ownedInt, .string, .rawString: return "string"
        case .list: return "list"
        case .hash: return "hash"
        case .set: return "set"
        case .zset: return "zset"
        case .stream: return "stream"
        }
    }

    /// The name OBJECT ENCODING reports.
    public var encodingName: StaticString {
        switch self {
        case .int, .ownedInt: return "int"
        case .string(let bytes): return bytes.count <= 44 ? "embstr" : "raw"
        case .rawString: return "raw"
        case .list: return "quicklist"
        case .hash(let hash): return hash.isListpack ? "listpack" : "hashtable"
        case .set(let set): return set.isIntset ? "intset" : "hashtable"
        case .zset(let zset): return zset.isListpack ? "listpack" : "skiplist"
        case .stream: return "stream"
        }
    }

    /// How much work freeing this value takes, as Redis's `lazyfreeGetFreeEffort` counts it: 1 for a
    /// string or a compact encoding (one allocation), else the number of elements.
    public var freeEffort: Int {
        switch self {
        case .int, .ownedInt, .string, .rawString: return 1
        case .list(let list): return list.count
        case .hash(let hash): return hash.isListpack ? 1 : hash.count
        case .set(let set): return set.isIntset ? 1 : set.count
        case .zset(let zset): return zset.isListpack ? 1 : zset.count
        case .stream(let stream): return stream.freeEffort
        }
    }

    /// True for a list, hash, set or sorted set without elements (never kept in a database). A stream may
    /// be empty.
    public var isEmptyCollection: Bool {
        switch self {
        case .list(let list): return list.isEmpty
        case .hash(let hash): return hash.isEmpty
        case .set(let set): return set.isEmpty
        case .zset(let zset): return zset.isEmpty
        default: return false
        }
    }

    /// The heap block of a string value (nil for an integer, an inline string or a collection), read
    /// without retaining it (`borrowing`: no copy of the value): for a prefetch of a string that is about
    /// to be read.
    @inline(__always)
    borrowing func stringBlockAddress() -> UnsafeRawPointer? {
        switch self {
        case .string(let bytes), .rawString(let bytes): return bytes.blockAddress()
        default: return nil
        }
    }

    /// True for the string family.
    public var isString: Bool {
        switch self {
        case .int, .ownedInt, .string, .rawString: return true
        default: return false
        }
    }

    /// Calls `body` with a string value's bytes (integers are formatted), or returns nil for other types.
    @inlinable
    public func withStringBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        switch self {
        case .string(let bytes), .rawString(let bytes): return try bytes.withBytes(body)
        case .int(let number), .ownedInt(let number):
            var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
            return try withUnsafeMutableBytes(of: &scratch) { out in
                let length = RedisInteger.format(number, into: out)
                return try body(UnsafeRawBufferPointer(rebasing: out[0..<length]))
            }
        default:
            return nil
        }
    }

    /// The length of a string value.
    public var stringLength: Int {
        switch self {
        case .string(let bytes), .rawString(let bytes): return bytes.count
        case .int(let number), .ownedInt(let number): return RedisInteger.formattedLength(number)
        default: return 0
        }
    }

    /// Heap bytes this value owns, for memory accounting.
    public var footprint: Int {
        switch self {
        case .int, .ownedInt: return 0
        case .string(let bytes), .rawString(let bytes): return bytes.heapFootprint
        case .list(let list): return list.footprint
        case .hash(let hash): return hash.footprint
        case .set(let set): return set.footprint
        case .zset(let zset): return zset.footprint
        case .stream(let stream): return stream.footprint
        }
    }
}

/// One key of a database with its value, absolute expiry and access clock: what a database's key record
/// holds (`KeyRecord`), as a value to read, insert or keep.
public struct Entry: ByteKeyed, Sendable {
    public let key: Bytes
    /// Expiry as Unix time in milliseconds; 0 when the key is persistent.
    public var expireAt: Int64
    public var value: Value
    /// LRU clock (seconds) or LFU state (16-bit minutes, 8-bit logarithmic counter), per eviction policy.
    public var access: UInt32

    public init(key: Bytes, value: Value, expireAt: Int64 = 0, access: UInt32 = 0) {
        self.key = key
        self.value = value
        self.expireAt = expireAt
        self.access = access
    }

    /// What this key costs in memory in a database, by the engine's accounting: its record (key,
    /// header and an inline value in one block), what a value kept outside the record owns, and the
    /// table's share.
    public var footprint: Int { key.withBytes { KeyRecord.footprint(keyLength: $0.count, expiring: expireAt != 0, value: value) } }
}
