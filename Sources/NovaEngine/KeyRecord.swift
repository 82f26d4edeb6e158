/// One key of a database in one heap block: its expiry, access clock, key and — for the common small
/// values — the value itself. A database's tables hold 8-byte references to records, so a key with a
/// 100-byte string costs one allocation and a table slot, as Valkey 8's embedded keys do.
///
/// The block's elements hold, from their start (16 bytes into the object, after Swift's header):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | access clock (LRU seconds or LFU state) |
/// | 4 | 4 | key length |
/// | 8 | 1 | payload kind (`Kind`), and in the top bit whether an expiry follows |
/// | 9 | 3 | string length or element count of an inline payload |
/// | 12 | 8 | expiry, Unix ms — only for a key with one (a persistent key's record is 8 bytes shorter) |
/// | 12 or 20 | key length | key |
/// | after the key | | payload |
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

    static let keyLengthOffset = 4
    static let infoOffset = 8
    static let expireOffset = 12
    /// The info field's flag for a record with an expiry.
    static let expiryFlag: UInt32 = 0x80

    /// The longest string kept inline (longer ones are replied to by reference, which must not pin the
    /// key with them, and gain nothing from sharing the key's block).
    static let maxInlineString = 4095
    /// The largest listpack kept inline: every change to an inline listpack copies it into a new record.
    static let maxInlineListpack = 1 << 16
    /// The largest element count the 24-bit field holds.
    static let maxInlineCount = 1 << 24 - 1
    /// The largest payload offset a `Bytes` slice can express, 15 bits (a string under a key longer than
    /// this, ~32 KB, is kept in the stored form; so is a listpack, to keep one rule).
    static let maxSliceOffset = 1 << 15 - 1

    /// Fixed cost of a key besides its record: the table's reference (and its share of unused array
    /// capacity) and its share of the index.
    static let tableCost = 16

    /// The offset of the key after a header with info field `info`.
    @inline(__always)
    static func keyOffset(_ info: UInt32) -> Int { info & expiryFlag != 0 ? 20 : 12 }

    /// The offset of the key for a record with (`expiring`) or without an expiry.
    @inline(__always)
    static func keyOffset(expiring: Bool) -> Int { expiring ? 20 : 12 }

    /// The offset of the payload in a record whose elements start at `elements`.
    @inline(__always)
    static func payloadOffset(_ elements: UnsafeMutablePointer<UInt8>) -> Int {
        let raw = UnsafeRawPointer(elements)
        return keyOffset(raw.load(fromByteOffset: infoOffset, as: UInt32.self))
            + Int(raw.load(fromByteOffset: keyLengthOffset, as: UInt32.self))
    }

    /// The info field's kind.
    @inline(__always)
    static func kind(_ info: UInt32) -> Kind { Kind(rawValue: UInt8(truncatingIfNeeded: info & 0x7F)).unsafelyUnwrapped }

    deinit {
        guard kind == .stored else { return }
        _ = withUnsafeMutablePointerToElements { storedValuePointer($0).move() }
    }

    // MARK: Making records

    /// How a value is laid out after a key of `keyLength` bytes.
    struct Plan {
        var kind: Kind
        /// The 24-bit field: a string's length or a compact collection's element count.
        var small = 0
        /// The number of element bytes the record needs.
        var size: Int
    }

    static func plan(keyLength: Int, expiring: Bool, value: Value) -> Plan {
        let payload = keyOffset(expiring: expiring) + keyLength
        let sliceable = payload <= maxSliceOffset
        func listpack(_ kind: Kind, _ compact: Listpack?, _ count: Int) -> Plan? {
            guard sliceable, let compact, count <= maxInlineCount else { return nil }
            let bytes = compact.byteCount
            return bytes <= maxInlineListpack ? Plan(kind: kind, small: count, size: payload + bytes) : nil
        }
        let inline: Plan?
        switch value {
        case .int: inline = Plan(kind: .int, size: payload + 8)
        case .ownedInt: inline = Plan(kind: .ownedInt, size: payload + 8)
        case .string(let bytes):
            let count = bytes.count
            inline = sliceable && count <= maxInlineString ? Plan(kind: .string, small: count, size: payload + count) : nil
        case .list(let list): inline = listpack(.list, list.compact, list.count)
        case .hash(let hash): inline = listpack(.hash, hash.compact, hash.count)
        case .set(let set): inline = listpack(set.isIntset ? .intset : .set, set.compact, set.count)
        case .zset(let zset): inline = listpack(.zset, zset.compact, zset.count)
        case .rawString, .stream: inline = nil
        }
        return inline ?? Plan(kind: .stored, size: storedOffset(payload) + MemoryLayout<Value>.size)
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
        let expiring = expireAt != 0
        let plan = plan(keyLength: key.count, expiring: expiring, value: value)
        let record = unsafeDowncast(create(minimumCapacity: plan.size) { _ in () }, to: KeyRecord.self)
        record.withUnsafeMutablePointerToElements { elements in
            let raw = UnsafeMutableRawPointer(elements)
            raw.storeBytes(of: access, as: UInt32.self)
            raw.storeBytes(of: UInt32(key.count), toByteOffset: keyLengthOffset, as: UInt32.self)
            if expiring { raw.storeBytes(of: expireAt, toByteOffset: expireOffset, as: Int64.self) }
            let keyOffset = keyOffset(expiring: expiring)
            if !key.isEmpty { (raw + keyOffset).copyMemory(from: key.baseAddress!, byteCount: key.count) }
            writePayload(value, plan, raw, expiring: expiring, keyOffset + key.count)
        }
        return record
    }

    /// Writes the info field and payload of `value`, laid out by `plan`, at `payload`.
    private static func writePayload(_ value: Value, _ plan: Plan, _ raw: UnsafeMutableRawPointer, expiring: Bool, _ payload: Int) {
        let info = UInt32(plan.kind.rawValue) | (expiring ? expiryFlag : 0) | UInt32(plan.small) << 8
        raw.storeBytes(of: info, toByteOffset: infoOffset, as: UInt32.self)
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
                    writePayload(value, plan, UnsafeMutableRawPointer(elements), expiring: expiring, payloadOffset(elements))
                    return 0
                }
            }
        }
        let before = record.footprint
        record = record.remade(with: value)
        return record.footprint - before
    }

    // MARK: Fields

    @inline(__always)
    private func field<T>(_ offset: Int, _ type: T.Type) -> T {
        withUnsafeMutablePointerToElements { UnsafeRawPointer($0).load(fromByteOffset: offset, as: T.self) }
    }

    /// Expiry as Unix time in milliseconds; 0 when persistent.
    @usableFromInline
    var expireAt: Int64 {
        withUnsafeMutablePointerToElements { elements in
            let raw = UnsafeRawPointer(elements)
            guard raw.load(fromByteOffset: Self.infoOffset, as: UInt32.self) & Self.expiryFlag != 0 else { return 0 }
            return raw.loadUnaligned(fromByteOffset: Self.expireOffset, as: Int64.self)
        }
    }

    /// This record with expiry `expireAt` (0: none): changed in place when `unique` and it had an expiry
    /// and keeps one, else a new record (adding or removing the field changes the layout).
    func replacingExpiry(_ expireAt: Int64, unique: Bool) -> KeyRecord {
        let had = self.expireAt != 0
        if unique && had && expireAt != 0 {
            withUnsafeMutablePointerToElements {
                UnsafeMutableRawPointer($0).storeBytes(of: expireAt, toByteOffset: Self.expireOffset, as: Int64.self)
            }
            return self
        }
        if !had && expireAt == 0 { return self }
        return withKeyBytes { KeyRecord.make(key: $0, value: value, expireAt: expireAt, access: access) }
    }

    /// The key's length in bytes.
    var keyLength: Int { Int(field(Self.keyLengthOffset, UInt32.self)) }

    /// The access clock. Set only on a record held by its table alone.
    @usableFromInline
    var access: UInt32 {
        get { field(0, UInt32.self) }
        set { withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0).storeBytes(of: newValue, as: UInt32.self) } }
    }

    var kind: Kind { Self.kind(field(Self.infoOffset, UInt32.self)) }

    /// The element bytes in use: header, key and payload.
    var elementSize: Int {
        withUnsafeMutablePointerToElements { elements in
            let raw = UnsafeRawPointer(elements)
            let info = raw.load(fromByteOffset: Self.infoOffset, as: UInt32.self)
            let payload = Self.payloadOffset(elements)
            switch Self.kind(info) {
            case .int, .ownedInt: return payload + 8
            case .string: return payload + Int(info >> 8)
            case .list, .hash, .set, .intset, .zset:
                return payload + Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: payload, as: UInt32.self)))
            case .stored: return Self.storedOffset(payload) + MemoryLayout<Value>.size
            }
        }
    }

    private func storedValuePointer(_ elements: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<Value> {
        (UnsafeMutableRawPointer(elements) + Self.storedOffset(Self.payloadOffset(elements))).assumingMemoryBound(to: Value.self)
    }

    /// Calls `body` with the key's bytes, in place.
    @usableFromInline
    func withKeyBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeMutablePointerToElements { elements in
            let raw = UnsafeRawPointer(elements)
            let length = Int(raw.load(fromByteOffset: Self.keyLengthOffset, as: UInt32.self))
            let start = Self.keyOffset(raw.load(fromByteOffset: Self.infoOffset, as: UInt32.self))
            return try body(UnsafeRawBufferPointer(start: elements + start, count: length))
        }
    }

    /// The value. An inline string or listpack is read in place (the value holds this record); a stored
    /// value is copied (its storage is shared, copy-on-write).
    @usableFromInline
    var value: Value {
        withUnsafeMutablePointerToElements { elements -> Value in
            let raw = UnsafeRawPointer(elements)
            let info = raw.load(fromByteOffset: Self.infoOffset, as: UInt32.self)
            let small = Int(info >> 8)
            let payload = Self.payloadOffset(elements)
            switch Self.kind(info) {
            case .int: return .int(raw.loadUnaligned(fromByteOffset: payload, as: Int64.self))
            case .ownedInt: return .ownedInt(raw.loadUnaligned(fromByteOffset: payload, as: Int64.self))
            case .string: return .string(Bytes(sharing: self, offset: payload, count: small))
            case .list: return .list(ListValue(compact: Listpack(inRecord: self), count: small))
            case .hash: return .hash(HashValue(compact: Listpack(inRecord: self), count: small))
            case .set: return .set(SetValue(compact: Listpack(inRecord: self), count: small, isIntset: false))
            case .intset: return .set(SetValue(compact: Listpack(inRecord: self), count: small, isIntset: true))
            case .zset: return .zset(SortedSetValue(compact: Listpack(inRecord: self), count: small))
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
            return block === self && bytes.count == Int(field(Self.infoOffset, UInt32.self) >> 8)
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
