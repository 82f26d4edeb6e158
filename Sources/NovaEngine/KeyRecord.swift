/// One key of a database in one heap block: its expiry, access clock, key and — for the common small
/// values — the value itself. A database's tables hold 8-byte references to records, so a key with a
/// 100-byte string costs one allocation and a table slot, as Valkey 8's embedded keys do.
///
/// The block's elements hold, from their start (16 bytes into the object, after Swift's header):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | head: access clock (low 24 bits: LRU seconds or LFU state), payload kind (4 bits), expiry flag |
/// | 4 | 2 | key length (4 bytes in the stored form, the only one that holds keys of 64 KB or more) |
/// | 6 | 2 | string length — only for an inline string |
/// | 6 or 8 | 8 | expiry, Unix ms — only for a key with one (a persistent key's record is 8 bytes shorter) |
/// | after them | key length | key |
/// | after the key | | payload |
///
/// A key with a compact collection or an integer has a 6-byte header: a listpack's own header counts its
/// elements (exactly, as no inline listpack reaches the 16-bit count's saturation), so the record does
/// not repeat it.
///
/// The payload is an integer (8 bytes, unaligned), a string of up to `maxInlineString` bytes, a compact
/// collection's listpack, or — for everything else (large forms, streams, long strings, strings
/// changed in place by APPEND or SETRANGE) — a `Value` at the next 8-byte boundary, released with the
/// record. `Bytes` and `Listpack` read an inline payload in place: a `Bytes` keeps the payload's offset
/// in its count's high bits, a `Listpack` recognises the record by its class. Neither ever writes into
/// a record: any change copies the payload out first, and the database stores the result in a record
/// made anew (or overwrites the payload in place when the record is held only by its table and the
/// new payload has the same kind and size — a SET of a same-length value, an INCR).
///
/// Records are immutable while shared: a database changes a record in place only when its table holds
/// the only reference (`isKnownUniquelyReferenced`); a snapshot's copy of a table, a value read out of
/// the record, or anything else holding it makes the write copy the record first.
@usableFromInline
final class KeyRecord: ManagedBuffer<Void, UInt8> {
    /// What the payload is.
    @usableFromInline
    enum Kind: UInt8 {
        case int = 1, ownedInt, string, list, hash, set, intset, zset, stored
    }

    /// The head's bits above the access clock: the kind (4 bits), then the expiry flag.
    static let accessMask: UInt32 = 0xFF_FFFF
    static let kindShift: UInt32 = 24
    static let expiryFlag: UInt32 = 1 << 28
    /// Where the key length (and an inline string's length above it) starts.
    static let lengthsOffset = 4

    /// The longest string kept inline (longer ones are replied to by reference, which must not pin the
    /// key with them, and gain nothing from sharing the key's block).
    static let maxInlineString = 4095
    /// The largest listpack kept inline: every change to an inline listpack copies it into a new record.
    static let maxInlineListpack = 1 << 16
    /// The largest payload offset a `Bytes` slice can express, 15 bits. A longer key (~32 KB) keeps its
    /// value in the stored form whatever it is (one rule for every kind, which also keeps the key length
    /// of every other form within its 16 bits).
    static let maxSliceOffset = 1 << 15 - 1

    /// Fixed cost of a key besides its record: the table's reference (and its share of unused array
    /// capacity) and its share of the index.
    static let tableCost = 16

    /// The head of a record of `kind`, with an expiry or not, whose access clock is `access`.
    @inline(__always)
    static func head(_ kind: Kind, expiring: Bool, access: UInt32) -> UInt32 {
        access & accessMask | UInt32(kind.rawValue) << kindShift | (expiring ? expiryFlag : 0)
    }

    /// The kinds whose header is 8 bytes (a 4-byte key length, or a string's length), as a bit set.
    private static let eightByteHeaders: UInt32 = 1 << UInt32(Kind.string.rawValue) | 1 << UInt32(Kind.stored.rawValue)

    /// Where the expiry (or, without one, the key) starts in a record with head `head`.
    @inline(__always)
    static func expireOffset(_ head: UInt32) -> Int {
        6 + 2 * Int(truncatingIfNeeded: eightByteHeaders >> (head >> kindShift & 0xF) & 1)
    }

    /// Where the key starts in a record with head `head`.
    @inline(__always)
    static func keyOffset(_ head: UInt32) -> Int { expireOffset(head) + (head & expiryFlag != 0 ? 8 : 0) }

    /// The key length in a record with head `head` whose 32 bits at `lengthsOffset` are `lengths`.
    @inline(__always)
    static func keyLength(_ head: UInt32, _ lengths: UInt32) -> Int {
        Int(head >> kindShift & 0xF == UInt32(Kind.stored.rawValue) ? lengths : lengths & 0xFFFF)
    }

    /// The offset of the payload in a record whose elements start at `elements`.
    @inline(__always)
    static func payloadOffset(_ elements: UnsafeMutablePointer<UInt8>) -> Int {
        let raw = UnsafeRawPointer(elements)
        let head = raw.load(as: UInt32.self)
        return keyOffset(head) + keyLength(head, raw.load(fromByteOffset: lengthsOffset, as: UInt32.self))
    }

    /// The head's kind.
    @inline(__always)
    static func kind(_ head: UInt32) -> Kind { Kind(rawValue: UInt8(truncatingIfNeeded: head >> kindShift & 0xF)).unsafelyUnwrapped }

    deinit {
        guard kind == .stored else { return }
        _ = withUnsafeMutablePointerToElements { storedValuePointer($0).move() }
    }

    // MARK: Making records

    /// How a value is laid out after a key of `keyLength` bytes.
    struct Plan {
        var kind: Kind
        /// An inline string's length (the header's 16 bits after the key length).
        var stringLength = 0
        /// The number of element bytes the record needs.
        var size: Int
    }

    static func plan(keyLength: Int, expiring: Bool, value: Value) -> Plan {
        /// The plan for an inline payload of `kind` and `bytes`, if the key leaves it sliceable.
        func inline(_ kind: Kind, _ bytes: Int, stringLength: Int = 0) -> Plan? {
            let payload = keyOffset(head(kind, expiring: expiring, access: 0)) + keyLength
            return payload <= maxSliceOffset ? Plan(kind: kind, stringLength: stringLength, size: payload + bytes) : nil
        }
        /// A listpack goes inline when its header counts its `entries` exactly (the record reads the
        /// count there) and it is small enough to copy on every change.
        func listpack(_ kind: Kind, _ compact: Listpack?, entries: Int) -> Plan? {
            guard let compact, compact.headerCount == entries else { return nil }
            let bytes = compact.byteCount
            return bytes <= maxInlineListpack ? inline(kind, bytes) : nil
        }
        let planned: Plan?
        switch value {
        case .int: planned = inline(.int, 8)
        case .ownedInt: planned = inline(.ownedInt, 8)
        case .string(let bytes): planned = stringPlan(keyLength: keyLength, expiring: expiring, count: bytes.count)
        case .list(let list): planned = listpack(.list, list.compact, entries: list.count)
        case .hash(let hash): planned = listpack(.hash, hash.compact, entries: 2 * hash.count)
        case .set(let set): planned = listpack(set.isIntset ? .intset : .set, set.compact, entries: set.count)
        case .zset(let zset): planned = listpack(.zset, zset.compact, entries: 2 * zset.count)
        case .rawString, .stream: planned = nil
        }
        if let planned { return planned }
        let payload = keyOffset(head(.stored, expiring: expiring, access: 0)) + keyLength
        return Plan(kind: .stored, size: storedOffset(payload) + MemoryLayout<Value>.size)
    }

    /// The plan for an inline string of `count` bytes, or nil when it is too long or the key leaves no
    /// room for its offset (then it is a stored value).
    @inline(__always)
    static func stringPlan(keyLength: Int, expiring: Bool, count: Int) -> Plan? {
        let payload = keyOffset(head(.string, expiring: expiring, access: 0)) + keyLength
        return count <= maxInlineString && payload <= maxSliceOffset
            ? Plan(kind: .string, stringLength: count, size: payload + count) : nil
    }

    /// Whether `value` under `record`'s key is kept in the stored form (outside the payload): at once
    /// for the forms that never go inline, by the record's layout plan for the rest.
    static func keepsStoredForm(_ value: Value, in record: KeyRecord) -> Bool {
        switch value {
        case .rawString, .stream: return true
        case .list(let list) where !list.isCompact: return true
        case .hash(let hash) where !hash.isListpack: return true
        case .set(let set) where !set.isCompact: return true
        case .zset(let zset) where !zset.isListpack: return true
        default: return plan(keyLength: record.keyLength, expiring: record.expireAt != 0, value: value).kind == .stored
        }
    }

    @inline(__always)
    static func storedOffset(_ payload: Int) -> Int { (payload + 7) & ~7 }

    /// A record for `key` holding `value`.
    static func make(key: UnsafeRawBufferPointer, value: Value, expireAt: Int64, access: UInt32) -> KeyRecord {
        let plan = plan(keyLength: key.count, expiring: expireAt != 0, value: value)
        return make(key: key, plan: plan, expireAt: expireAt, access: access) { raw, payload in
            writePayload(value, plan, raw, payload)
        }
    }

    /// A record for `key` holding the string `bytes` (not an integer's digits: those are `Value.int`),
    /// copied once, straight from where they are (a command's argument).
    static func make(key: UnsafeRawBufferPointer, string bytes: UnsafeRawBufferPointer, expireAt: Int64, access: UInt32) -> KeyRecord {
        guard let plan = stringPlan(keyLength: key.count, expiring: expireAt != 0, count: bytes.count) else {
            return make(key: key, value: .string(Bytes(bytes)), expireAt: expireAt, access: access)
        }
        return make(key: key, plan: plan, expireAt: expireAt, access: access) { raw, payload in
            if !bytes.isEmpty { (raw + payload).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        }
    }

    /// A record laid out by `plan`: the header and key written here, the payload by `writePayload`
    /// (given the elements and the payload's offset).
    @inline(__always)
    private static func make(
        key: UnsafeRawBufferPointer, plan: Plan, expireAt: Int64, access: UInt32,
        writePayload: (UnsafeMutableRawPointer, Int) -> Void
    ) -> KeyRecord {
        let expiring = expireAt != 0
        let record = unsafeDowncast(create(minimumCapacity: plan.size) { _ in () }, to: KeyRecord.self)
        record.withUnsafeMutablePointerToElements { elements in
            let raw = UnsafeMutableRawPointer(elements)
            let head = head(plan.kind, expiring: expiring, access: access)
            raw.storeBytes(of: head, as: UInt32.self)
            if plan.kind == .stored {
                raw.storeBytes(of: UInt32(key.count), toByteOffset: lengthsOffset, as: UInt32.self)
            } else {
                raw.storeBytes(of: UInt16(key.count), toByteOffset: lengthsOffset, as: UInt16.self)
                if plan.kind == .string {
                    raw.storeBytes(of: UInt16(plan.stringLength), toByteOffset: lengthsOffset + 2, as: UInt16.self)
                }
            }
            if expiring { raw.storeBytes(of: expireAt, toByteOffset: expireOffset(head), as: Int64.self) }
            let keyOffset = keyOffset(head)
            if !key.isEmpty { (raw + keyOffset).copyMemory(from: key.baseAddress!, byteCount: key.count) }
            writePayload(raw, keyOffset + key.count)
        }
        return record
    }

    /// Writes the payload of `value`, laid out by `plan`, at `payload` (the header says its kind and
    /// length already).
    private static func writePayload(_ value: Value, _ plan: Plan, _ raw: UnsafeMutableRawPointer, _ payload: Int) {
        func copy(_ bytes: UnsafeRawBufferPointer) {
            if !bytes.isEmpty { (raw + payload).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        }
        switch (plan.kind, value) {
        case (.int, .int(let number)), (.ownedInt, .ownedInt(let number)):
            raw.storeBytes(of: number, toByteOffset: payload, as: Int64.self)
        case (.string, .string(let bytes)): bytes.withBytes(copy)
        case (.list, .list(let list)): list.compact.unsafelyUnwrapped.withUnsafeBytes(copy)
        case (.hash, .hash(let hash)): hash.compact.unsafelyUnwrapped.withUnsafeBytes(copy)
        case (.set, .set(let set)), (.intset, .set(let set)): set.compact.unsafelyUnwrapped.withUnsafeBytes(copy)
        case (.zset, .zset(let zset)): zset.compact.unsafelyUnwrapped.withUnsafeBytes(copy)
        default:
            (raw + storedOffset(payload)).initializeMemory(as: Value.self, repeating: value, count: 1)
        }
    }

    /// A record with the same contents, for a write to a shared one.
    func copied() -> KeyRecord { remade(with: value) }

    /// A new record with this one's key, expiry and access clock holding `value`.
    func remade(with value: Value) -> KeyRecord {
        withKeyBytes { KeyRecord.make(key: $0, value: value, expireAt: expireAt, access: access) }
    }

    /// Puts `value` in `record`: in place when `unique` (the table holds the only reference) and the
    /// payload keeps its kind and size, else in a new record. Returns the change in footprint.
    static func replaceValue(_ record: inout KeyRecord, with value: Value, unique: Bool) -> Int {
        if unique {
            let current = record.kind
            let expiring = record.expireAt != 0
            let plan = plan(keyLength: record.keyLength, expiring: expiring, value: value)
            if plan.kind == current && plan.size == record.elementSize {
                return record.withUnsafeMutablePointerToElements { elements in
                    if current == .stored {
                        let pointer = record.storedValuePointer(elements)
                        let before = pointer.pointee.footprint
                        pointer.pointee = value
                        return value.footprint - before
                    }
                    writePayload(value, plan, UnsafeMutableRawPointer(elements), payloadOffset(elements))
                    return 0
                }
            }
        }
        let before = record.footprint
        record = record.remade(with: value)
        return record.footprint - before
    }

    /// Puts the string `bytes` in `record` (as `replaceValue` does with a `Value`): copied over the
    /// payload when `unique` and it is an inline string of the same length, else into a new record.
    static func replaceValue(_ record: inout KeyRecord, withString bytes: UnsafeRawBufferPointer, unique: Bool) -> Int {
        if unique && record.kind == .string {
            let fits = record.withUnsafeMutablePointerToElements { elements in
                let raw = UnsafeMutableRawPointer(elements)
                guard Int(raw.load(fromByteOffset: lengthsOffset + 2, as: UInt16.self)) == bytes.count else { return false }
                if !bytes.isEmpty { (raw + payloadOffset(elements)).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
                return true
            }
            if fits { return 0 }
        }
        let before = record.footprint
        let (expireAt, access) = (record.expireAt, record.access)
        record = record.withKeyBytes { KeyRecord.make(key: $0, string: bytes, expireAt: expireAt, access: access) }
        return record.footprint - before
    }

    // MARK: Fields

    @inline(__always)
    private func field<T>(_ offset: Int, _ type: T.Type) -> T {
        withUnsafeMutablePointerToElements { UnsafeRawPointer($0).load(fromByteOffset: offset, as: T.self) }
    }

    /// The head: access clock, kind and expiry flag.
    @inline(__always)
    private var head: UInt32 { field(0, UInt32.self) }

    /// Expiry as Unix time in milliseconds; 0 when persistent.
    @usableFromInline
    var expireAt: Int64 {
        withUnsafeMutablePointerToElements { elements in
            let raw = UnsafeRawPointer(elements)
            let head = raw.load(as: UInt32.self)
            guard head & Self.expiryFlag != 0 else { return 0 }
            return raw.loadUnaligned(fromByteOffset: Self.expireOffset(head), as: Int64.self)
        }
    }

    /// This record with expiry `expireAt` (0: none): changed in place when `unique` and it had an expiry
    /// and keeps one, else a new record (adding or removing the field changes the layout).
    func replacingExpiry(_ expireAt: Int64, unique: Bool) -> KeyRecord {
        let had = self.expireAt != 0
        if unique && had && expireAt != 0 {
            withUnsafeMutablePointerToElements {
                let raw = UnsafeMutableRawPointer($0)
                raw.storeBytes(of: expireAt, toByteOffset: Self.expireOffset(raw.load(as: UInt32.self)), as: Int64.self)
            }
            return self
        }
        if !had && expireAt == 0 { return self }
        return withKeyBytes { KeyRecord.make(key: $0, value: value, expireAt: expireAt, access: access) }
    }

    /// The key's length in bytes.
    var keyLength: Int { Self.keyLength(head, field(Self.lengthsOffset, UInt32.self)) }

    /// The access clock: its low 24 bits (`LRU.clockMask`; an LFU state fits them). Set only on a
    /// record held by its table alone.
    @usableFromInline
    var access: UInt32 {
        get { head & Self.accessMask }
        set {
            withUnsafeMutablePointerToElements {
                let raw = UnsafeMutableRawPointer($0)
                raw.storeBytes(of: raw.load(as: UInt32.self) & ~Self.accessMask | newValue & Self.accessMask, as: UInt32.self)
            }
        }
    }

    var kind: Kind { Self.kind(head) }

    /// The element bytes in use: header, key and payload.
    var elementSize: Int {
        withUnsafeMutablePointerToElements { elements in
            let raw = UnsafeRawPointer(elements)
            let payload = Self.payloadOffset(elements)
            switch Self.kind(raw.load(as: UInt32.self)) {
            case .int, .ownedInt: return payload + 8
            case .string: return payload + Int(raw.load(fromByteOffset: Self.lengthsOffset + 2, as: UInt16.self))
            case .list, .hash, .set, .intset, .zset:
                return payload + Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: payload, as: UInt32.self)))
            case .stored: return Self.storedOffset(payload) + MemoryLayout<Value>.size
            }
        }
    }

    private func storedValuePointer(_ elements: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<Value> {
        (UnsafeMutableRawPointer(elements) + Self.storedOffset(Self.payloadOffset(elements))).assumingMemoryBound(to: Value.self)
    }

    /// Where the block of a string kept outside the record (longer than `maxInlineString`) starts, or nil
    /// for any other value: a reply reads such a string by first retaining its block, a cache miss of its
    /// own after the record's, which a prefetch can overlap. Reads only the record.
    var storedStringBlock: UnsafeRawPointer? {
        withUnsafeMutablePointerToElements { elements -> UnsafeRawPointer? in
            guard Self.kind(UnsafeRawPointer(elements).load(as: UInt32.self)) == .stored else { return nil }
            return storedValuePointer(elements).pointee.stringBlockAddress()
        }
    }

    /// Calls `body` with the key's bytes, in place.
    @usableFromInline
    func withKeyBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeMutablePointerToElements { elements in
            let raw = UnsafeRawPointer(elements)
            let head = raw.load(as: UInt32.self)
            let length = Self.keyLength(head, raw.load(fromByteOffset: Self.lengthsOffset, as: UInt32.self))
            return try body(UnsafeRawBufferPointer(start: elements + Self.keyOffset(head), count: length))
        }
    }

    /// The value. An inline string or listpack is read in place (the value holds this record); a stored
    /// value is copied (its storage is shared, copy-on-write).
    @usableFromInline
    var value: Value {
        withUnsafeMutablePointerToElements { elements -> Value in
            let raw = UnsafeRawPointer(elements)
            let payload = Self.payloadOffset(elements)
            /// The element count in an inline listpack's header.
            var entries: Int { Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: payload + 4, as: UInt16.self))) }
            switch Self.kind(raw.load(as: UInt32.self)) {
            case .int: return .int(raw.loadUnaligned(fromByteOffset: payload, as: Int64.self))
            case .ownedInt: return .ownedInt(raw.loadUnaligned(fromByteOffset: payload, as: Int64.self))
            case .string:
                let count = Int(raw.load(fromByteOffset: Self.lengthsOffset + 2, as: UInt16.self))
                return .string(Bytes(sharing: self, offset: payload, count: count))
            case .list: return .list(ListValue(compact: Listpack(inRecord: self), count: entries))
            case .hash: return .hash(HashValue(compact: Listpack(inRecord: self), count: entries / 2))
            case .set: return .set(SetValue(compact: Listpack(inRecord: self), count: entries, isIntset: false))
            case .intset: return .set(SetValue(compact: Listpack(inRecord: self), count: entries, isIntset: true))
            case .zset: return .zset(SortedSetValue(compact: Listpack(inRecord: self), count: entries / 2))
            case .stored: return storedValuePointer(elements).pointee
            }
        }
    }

    /// Whether `value` is still this record's value as read (a string or listpack that is this record's
    /// payload, or the same integer): nothing to write back.
    func holds(_ value: Value) -> Bool {
        switch (kind, value) {
        case (.int, .int(let number)), (.ownedInt, .ownedInt(let number)):
            return number == withUnsafeMutablePointerToElements {
                UnsafeRawPointer($0).loadUnaligned(fromByteOffset: Self.payloadOffset($0), as: Int64.self)
            }
        case (.string, .string(let bytes)):
            guard case .heap(let block, _) = bytes.storage else { return false }
            return block === self && bytes.count == Int(field(Self.lengthsOffset + 2, UInt16.self))
        case (.list, .list(let list)): return list.compact?.isPayload(of: self) == true
        case (.hash, .hash(let hash)): return hash.compact?.isPayload(of: self) == true
        case (.set, .set(let set)), (.intset, .set(let set)): return set.compact?.isPayload(of: self) == true
        case (.zset, .zset(let zset)): return zset.compact?.isPayload(of: self) == true
        default: return false
        }
    }

    /// Exchanges the stored value with `value`, moving both (no reference counting): taking the value
    /// out while it changes leaves it held only by the caller, so a collection's storage is modified in
    /// place, and a placeholder stays in the record until the value is exchanged back. Only for the
    /// stored kind.
    func exchangeStoredValue(_ value: inout Value) {
        withUnsafeMutablePointerToElements { swap(&storedValuePointer($0).pointee, &value) }
    }

    /// What this key costs in memory, by the engine's accounting: the record's block, what a stored
    /// value owns, and the table's share.
    var footprint: Int {
        guard kind == .stored else { return blockCost }
        return blockCost + withUnsafeMutablePointerToElements { storedValuePointer($0).pointee.footprint }
    }

    /// The record's block and the table's share, without what a stored value owns.
    var blockCost: Int { Self.tableCost + MemoryEstimate.allocation(16 + elementSize) }

    /// What a record for a key of `keyLength` bytes, with an expiry or not, holding `value` costs (as
    /// `footprint`).
    static func footprint(keyLength: Int, expiring: Bool, value: Value) -> Int {
        let plan = plan(keyLength: keyLength, expiring: expiring, value: value)
        return tableCost + MemoryEstimate.allocation(16 + plan.size) + (plan.kind == .stored ? value.footprint : 0)
    }

    /// The key, value, expiry and access clock as an `Entry` (the key copied: an entry kept elsewhere
    /// does not pin the record).
    var entry: Entry {
        Entry(key: withKeyBytes { Bytes($0) }, value: value, expireAt: expireAt, access: access)
    }
}

extension KeyRecord: ByteKeyed {
    /// The key (a copy; `withKeyBytes` reads it in place).
    @usableFromInline
    var key: Bytes { withKeyBytes { Bytes($0) } }
}
