import NovaRESP

/// A stream entry ID: milliseconds and a sequence number, ordered as a 128-bit number.
public struct StreamID: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var ms: UInt64
    public var seq: UInt64

    public init(ms: UInt64, seq: UInt64) {
        self.ms = ms
        self.seq = seq
    }

    public static let zero = StreamID(ms: 0, seq: 0)
    public static let max = StreamID(ms: .max, seq: .max)

    public static func < (a: StreamID, b: StreamID) -> Bool { a.ms != b.ms ? a.ms < b.ms : a.seq < b.seq }

    public var isZero: Bool { ms == 0 && seq == 0 }

    /// The next ID (`streamIncrID`); nil after the last possible one.
    public var incremented: StreamID? {
        if seq == .max { return ms == .max ? nil : StreamID(ms: ms + 1, seq: 0) }
        return StreamID(ms: ms, seq: seq + 1)
    }

    /// The previous ID (`streamDecrID`); nil before 0-0.
    public var decremented: StreamID? {
        if seq == 0 { return ms == 0 ? nil : StreamID(ms: ms - 1, seq: .max) }
        return StreamID(ms: ms, seq: seq - 1)
    }

    /// `ms-seq`.
    public var description: String { "\(ms)-\(seq)" }

    /// `ms-seq` as bytes (written digit by digit: replies carry one per entry).
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(41)
        func digits(_ value: UInt64) {
            var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
            withUnsafeMutableBytes(of: &scratch) { buffer in
                var v = value
                var index = 20
                repeat {
                    index -= 1
                    buffer[index] = UInt8(truncatingIfNeeded: v % 10) + 48
                    v /= 10
                } while v > 0
                out.append(contentsOf: buffer[index..<20])
            }
        }
        digits(ms)
        out.append(UInt8(ascii: "-"))
        digits(seq)
        return out
    }

    /// The 16-byte big-endian form Redis uses as a radix-tree key and in RDB files.
    public var bigEndianBytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            out[i] = UInt8(truncatingIfNeeded: ms >> (56 - 8 * UInt64(i)))
            out[8 + i] = UInt8(truncatingIfNeeded: seq >> (56 - 8 * UInt64(i)))
        }
        return out
    }

    /// Reads the 16-byte big-endian form; nil for another length.
    public init?(bigEndian data: some Collection<UInt8>) {
        guard data.count == 16 else { return nil }
        var ms: UInt64 = 0, seq: UInt64 = 0
        for (i, byte) in data.enumerated() {
            if i < 8 { ms = ms << 8 | UInt64(byte) } else { seq = seq << 8 | UInt64(byte) }
        }
        self.init(ms: ms, seq: seq)
    }
}

/// One entry read from a stream.
public struct StreamEntry: Sendable {
    public let id: StreamID
    /// Field, value, field, value …
    public let fieldsAndValues: [Bytes]
}

/// A node of a stream: Redis's listpack of entries delta-encoded against `master`, the ID of the entry
/// that opened it, with a "master entry" of field names that entries with the same fields refer to.
///
/// Layout (as `t_stream.c`): `count deleted num-fields field… 0`, then per entry
/// `flags ms-diff seq-diff [num-fields] [field] value … lp-count` (fields only when they differ from the
/// master's).
struct StreamNode: Sendable {
    var master: StreamID
    var listpack: Listpack

    static let deletedFlag: Int64 = 1
    static let sameFieldsFlag: Int64 = 2

    /// The live and deleted entry counts, the master field count, and the offsets of the first master
    /// field and of the first entry.
    struct Header {
        var live: Int64
        var deleted: Int64
        var fieldCount: Int64
        var liveOffset: Int
        var deletedOffset: Int
        var firstField: Int
        var firstEntry: Int
    }

    var header: Header {
        let liveOffset = 6
        let (live, deletedOffset) = listpack.integer(at: liveOffset)
        let (deleted, countOffset) = listpack.integer(at: deletedOffset)
        let (fieldCount, firstField) = listpack.integer(at: countOffset)
        var offset = firstField
        for _ in 0..<fieldCount { offset = listpack.next(offset) }
        offset = listpack.next(offset)  // the master entry's terminating 0
        return Header(live: live, deleted: deleted, fieldCount: fieldCount, liveOffset: liveOffset,
                      deletedOffset: deletedOffset, firstField: firstField, firstEntry: offset)
    }

    /// An entry's position and shape inside the listpack.
    struct Slot {
        var id: StreamID
        var flags: Int64
        var flagsOffset: Int
        /// Offset of the first field (or value, with the master's fields).
        var fieldsOffset: Int
        var fieldCount: Int
        var next: Int
        var isDeleted: Bool { flags & StreamNode.deletedFlag != 0 }
        var sameFields: Bool { flags & StreamNode.sameFieldsFlag != 0 }
    }

    /// The entry at `offset` (which must not be the terminator).
    func slot(at offset: Int, masterFields: Int64) -> Slot {
        let (flags, msOffset) = listpack.integer(at: offset)
        let (msDelta, seqOffset) = listpack.integer(at: msOffset)
        let (seqDelta, afterID) = listpack.integer(at: seqOffset)
        let id = StreamID(ms: master.ms &+ UInt64(bitPattern: msDelta), seq: master.seq &+ UInt64(bitPattern: seqDelta))
        var position = afterID
        let fieldCount: Int
        let fieldsOffset: Int
        if flags & Self.sameFieldsFlag != 0 {
            fieldCount = Int(masterFields)
            fieldsOffset = position
            for _ in 0..<fieldCount { position = listpack.next(position) }
        } else {
            let (count, first) = listpack.integer(at: position)
            fieldCount = Int(count)
            fieldsOffset = first
            position = first
            for _ in 0..<(fieldCount * 2) { position = listpack.next(position) }
        }
        position = listpack.next(position)  // lp-count
        return Slot(id: id, flags: flags, flagsOffset: offset, fieldsOffset: fieldsOffset, fieldCount: fieldCount, next: position)
    }

    /// The fields and values of an entry.
    func fields(of slot: Slot, header: Header) -> [Bytes] {
        var result: [Bytes] = []
        result.reserveCapacity(slot.fieldCount * 2)
        var position = slot.fieldsOffset
        if slot.sameFields {
            var field = header.firstField
            for _ in 0..<slot.fieldCount {
                result.append(listpack.value(at: field))
                result.append(listpack.value(at: position))
                field = listpack.next(field)
                position = listpack.next(position)
            }
        } else {
            for _ in 0..<(slot.fieldCount * 2) {
                result.append(listpack.value(at: position))
                position = listpack.next(position)
            }
        }
        return result
    }

    /// Offsets of every entry, in order (reverse walks and lookups by position).
    func slots() -> [Slot] {
        let header = self.header
        var result: [Slot] = []
        result.reserveCapacity(Int(header.live + header.deleted))
        var offset = header.firstEntry
        while !listpack.isEnd(offset) {
            let slot = slot(at: offset, masterFields: header.fieldCount)
            result.append(slot)
            offset = slot.next
        }
        return result
    }

    /// The ID of the last entry, deleted or not (`lpGetEdgeStreamID`).
    var lastEntryID: StreamID {
        // The last element is the lp-count of the last entry: walk back that many elements.
        var offset = listpack.byteCount - 1
        offset = listpack.previous(offset)!
        let (count, _) = listpack.integer(at: offset)
        for _ in 0..<count { offset = listpack.previous(offset)! }
        let header = self.header
        return slot(at: offset, masterFields: header.fieldCount).id
    }
}

/// A pending entry of a consumer group: delivered to `consumer`, not acknowledged yet. Ordered (and
/// equal) by ID only.
public struct PendingEntry: Comparable, Sendable {
    public var id: StreamID
    /// Unix ms of the last delivery.
    public var deliveryTime: Int64
    public var deliveryCount: UInt64
    public var consumer: Bytes

    public init(id: StreamID, deliveryTime: Int64, deliveryCount: UInt64, consumer: Bytes) {
        self.id = id
        self.deliveryTime = deliveryTime
        self.deliveryCount = deliveryCount
        self.consumer = consumer
    }

    /// A probe for lookups by ID.
    static func probe(_ id: StreamID) -> PendingEntry { PendingEntry(id: id, deliveryTime: 0, deliveryCount: 0, consumer: Bytes()) }

    public static func < (a: PendingEntry, b: PendingEntry) -> Bool { a.id < b.id }
    public static func == (a: PendingEntry, b: PendingEntry) -> Bool { a.id == b.id }
}

/// A consumer of a group with the IDs delivered to it and not acknowledged.
public struct StreamConsumer: Sendable {
    public let name: Bytes
    /// Unix ms the consumer was last seen (read or claimed).
    public var seenTime: Int64
    public var pending = CountedBTree<StreamID>()

    public init(name: Bytes, seenTime: Int64) {
        self.name = name
        self.seenTime = seenTime
    }
}

/// A consumer group: its last delivered ID, its read counter, its pending entries list and consumers
/// (sorted by name, as Redis's radix tree orders them).
public struct StreamGroup: Sendable {
    /// `entries-read` when it is not known.
    public static let unknownEntriesRead: Int64 = -1

    public let name: Bytes
    public var lastID: StreamID
    public var entriesRead: Int64
    public var pending = CountedBTree<PendingEntry>()
    public private(set) var consumers: [StreamConsumer] = []

    public init(name: Bytes, lastID: StreamID, entriesRead: Int64) {
        self.name = name
        self.lastID = lastID
        self.entriesRead = entriesRead
    }

    /// The index of the consumer named `name`, or where it would be inserted.
    func consumerPosition(_ name: some ContiguousBytes) -> (index: Int, found: Bool) {
        name.withBytes { name in
            var low = 0, high = consumers.count
            while low < high {
                let middle = (low + high) / 2
                let order = consumers[middle].name.withBytes { ByteCompare.compare($0, name) }
                if order == 0 { return (middle, true) }
                if order < 0 { low = middle + 1 } else { high = middle }
            }
            return (low, false)
        }
    }

    /// The consumer named `name`.
    public func consumer(_ name: some ContiguousBytes) -> StreamConsumer? {
        let (index, found) = consumerPosition(name)
        return found ? consumers[index] : nil
    }

    /// Creates a consumer; false when it exists.
    @discardableResult
    public mutating func addConsumer(_ name: Bytes, seenTime: Int64) -> Bool {
        let (index, found) = consumerPosition(name)
        guard !found else { return false }
        consumers.insert(StreamConsumer(name: name, seenTime: seenTime), at: index)
        return true
    }

    /// Runs `body` on the consumer named `name`; nil when there is none.
    @discardableResult
    public mutating func withConsumer<R>(_ name: some ContiguousBytes, _ body: (inout StreamConsumer) -> R) -> R? {
        let (index, found) = consumerPosition(name)
        guard found else { return nil }
        return body(&consumers[index])
    }

    /// Deletes a consumer and its pending entries from the group's list; returns how many it had, or nil
    /// when there is no such consumer.
    public mutating func deleteConsumer(_ name: some ContiguousBytes) -> Int? {
        let (index, found) = consumerPosition(name)
        guard found else { return nil }
        let consumer = consumers.remove(at: index)
        consumer.pending.forEach(from: 0) { id in
            pending.remove(PendingEntry.probe(id))
            return true
        }
        return consumer.pending.count
    }

    /// The pending entry for `id`.
    public func pendingEntry(_ id: StreamID) -> PendingEntry? {
        let index = pending.partitionIndex { $0.id >= id }
        guard index < pending.count else { return nil }
        let entry = pending[index]
        return entry.id == id ? entry : nil
    }

    /// Records (or replaces) a pending entry and keeps the consumers' lists in step: an entry owned by
    /// another consumer moves to `entry.consumer`.
    public mutating func setPending(_ entry: PendingEntry) {
        if let old = pendingEntry(entry.id) {
            pending.remove(old)
            if old.consumer != entry.consumer {
                _ = withConsumer(old.consumer) { $0.pending.remove(entry.id) }
            }
        }
        pending.insert(entry)
        _ = withConsumer(entry.consumer) { $0.pending.insert(entry.id) }
    }

    /// Removes a pending entry (XACK, or a claim of an entry deleted from the stream); false when absent.
    @discardableResult
    public mutating func removePending(_ id: StreamID) -> Bool {
        guard let old = pendingEntry(id) else { return false }
        pending.remove(old)
        _ = withConsumer(old.consumer) { $0.pending.remove(id) }
        return true
    }

    /// Pending entries from `start` upwards until `body` returns false.
    public func forEachPending(from start: StreamID, _ body: (PendingEntry) -> Bool) {
        pending.forEach(from: pending.partitionIndex { $0.id >= start }, body)
    }
}

/// A stream (Redis's stream type): entries in nodes (listpacks, split as Redis splits them), the
/// counters Redis keeps (length, last ID, first ID, largest deleted ID, entries ever added), and the
/// consumer groups. Copy-on-write.
public struct StreamValue: @unchecked Sendable {
    final class Storage {
        var nodes: [StreamNode] = []
        var length = 0
        var lastID = StreamID.zero
        var firstID = StreamID.zero
        var maxDeletedID = StreamID.zero
        var entriesAdded: UInt64 = 0
        var groups: [StreamGroup] = []
        /// The nodes' listpack bytes, kept up to date so that the footprint costs nothing to read.
        var nodeBytes = 0

        init() {}

        func copy() -> Storage {
            let other = Storage()
            other.nodes = nodes
            other.length = length
            other.lastID = lastID
            other.firstID = firstID
            other.maxDeletedID = maxDeletedID
            other.entriesAdded = entriesAdded
            other.groups = groups
            other.nodeBytes = nodeBytes
            return other
        }
    }

    private var storage = Storage()

    public init() {}

    private mutating func unique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// Live entries.
    public var length: Int { storage.length }
    /// The last ID ever generated (entries may have been deleted since).
    public var lastID: StreamID {
        get { storage.lastID }
        set { unique(); storage.lastID = newValue }
    }
    /// The first entry's ID as recorded (0-0 when empty).
    public var firstID: StreamID { storage.firstID }
    /// The largest ID ever deleted.
    public var maxDeletedID: StreamID {
        get { storage.maxDeletedID }
        set { unique(); storage.maxDeletedID = newValue }
    }
    /// Entries ever added.
    public var entriesAdded: UInt64 {
        get { storage.entriesAdded }
        set { unique(); storage.entriesAdded = newValue }
    }
    /// The nodes (Redis's `radix-tree-keys`).
    public var nodeCount: Int { storage.nodes.count }
    /// The consumer groups, by name.
    public var groups: [StreamGroup] { storage.groups }

    // MARK: Adding

    /// Why an entry could not be added.
    public enum AddError: Error {
        /// The ID is not above the last one (or no ID is left).
        case notIncreasing
        /// The fields and values are over 4 GB together.
        case tooLarge
    }

    /// The ID XADD gives a new entry: `requested` as is (`seqGiven`), `ms-*` (the next sequence in that
    /// millisecond), or automatic from `now`.
    public func nextID(requested: StreamID?, seqGiven: Bool, now: UInt64) throws(AddError) -> StreamID {
        let last = storage.lastID
        let id: StreamID
        if let requested {
            if seqGiven {
                id = requested
            } else if last.ms == requested.ms {
                guard last.seq != .max else { throw .notIncreasing }
                id = StreamID(ms: last.ms, seq: last.seq + 1)
            } else {
                id = requested
            }
            guard id > last else { throw .notIncreasing }
        } else if now > last.ms {
            id = StreamID(ms: now, seq: 0)
        } else {
            guard let next = last.incremented else { throw .notIncreasing }
            id = next
        }
        return id
    }

    /// The largest a node may grow (`STREAM_LISTPACK_MAX_SIZE`).
    static let maxNodeBytes = 1 << 30

    /// Appends an entry with ID `id` (above `lastID`) and `fieldsAndValues` (field, value, …), opening a
    /// new node when the last one is full by `nodeMaxBytes`/`nodeMaxEntries` (Redis's
    /// `stream-node-max-bytes`/`-entries`).
    public mutating func append(id: StreamID, _ fieldsAndValues: [some ContiguousBytes], nodeMaxBytes: Int, nodeMaxEntries: Int) throws(AddError) {
        let total = fieldsAndValues.reduce(0) { $0 + $1.withBytes { $0.count } }
        guard total <= Self.maxNodeBytes else { throw .tooLarge }
        unique()
        let fieldCount = fieldsAndValues.count / 2
        var openNew = storage.nodes.isEmpty
        if !openNew {
            let limit = nodeMaxBytes == 0 || nodeMaxBytes > Self.maxNodeBytes ? Self.maxNodeBytes : nodeMaxBytes
            let last = storage.nodes[storage.nodes.count - 1]
            if last.listpack.byteCount + total >= limit {
                openNew = true
            } else if nodeMaxEntries > 0 {
                let header = last.header
                if header.live + header.deleted >= nodeMaxEntries { openNew = true }
            }
            if openNew { storage.nodes[storage.nodes.count - 1].listpack.shrink() }
        }
        var flags: Int64 = 0
        var encoded: [UInt8] = []
        var elements = 0
        if openNew {
            var node = StreamNode(master: id, listpack: Listpack())
            Listpack.encode(integer: 1, into: &encoded)
            Listpack.encode(integer: 0, into: &encoded)
            Listpack.encode(integer: Int64(fieldCount), into: &encoded)
            for i in 0..<fieldCount { fieldsAndValues[2 * i].withBytes { Listpack.encode($0, into: &encoded) } }
            Listpack.encode(integer: 0, into: &encoded)
            node.listpack.append(encoded: encoded, count: 4 + fieldCount)
            storage.nodeBytes += node.listpack.byteCount
            storage.nodes.append(node)
            flags = StreamNode.sameFieldsFlag
            encoded.removeAll(keepingCapacity: true)
        } else {
            let index = storage.nodes.count - 1
            let header = storage.nodes[index].header
            replaceInteger(node: index, at: header.liveOffset, with: header.live + 1)
            let updated = storage.nodes[index].header
            if updated.fieldCount == fieldCount {
                var offset = updated.firstField
                var same = true
                for i in 0..<fieldCount {
                    let equal = fieldsAndValues[2 * i].withBytes { storage.nodes[index].listpack.element(at: offset, equals: $0) }
                    if !equal { same = false; break }
                    offset = storage.nodes[index].listpack.next(offset)
                }
                if same { flags = StreamNode.sameFieldsFlag }
            }
        }
        let index = storage.nodes.count - 1
        let master = storage.nodes[index].master
        Listpack.encode(integer: flags, into: &encoded)
        Listpack.encode(integer: Int64(bitPattern: id.ms &- master.ms), into: &encoded)
        Listpack.encode(integer: Int64(bitPattern: id.seq &- master.seq), into: &encoded)
        elements = 3
        let same = flags & StreamNode.sameFieldsFlag != 0
        if !same {
            Listpack.encode(integer: Int64(fieldCount), into: &encoded)
            elements += 1
        }
        for i in 0..<fieldCount {
            if !same {
                fieldsAndValues[2 * i].withBytes { Listpack.encode($0, into: &encoded) }
                elements += 1
            }
            fieldsAndValues[2 * i + 1].withBytes { Listpack.encode($0, into: &encoded) }
            elements += 1
        }
        let lpCount = Int64(fieldCount + 3 + (same ? 0 : fieldCount + 1))
        Listpack.encode(integer: lpCount, into: &encoded)
        elements += 1
        storage.nodes[index].listpack.append(encoded: encoded, count: elements)
        storage.nodeBytes += encoded.count
        storage.length += 1
        storage.entriesAdded &+= 1
        storage.lastID = id
        if storage.length == 1 { storage.firstID = id }
    }

    // MARK: Reading

    /// The index of the node that may hold `id` (the last whose master is at or below it), or 0.
    private func nodeIndex(for id: StreamID) -> Int {
        var low = 0, high = storage.nodes.count
        while low < high {
            let middle = (low + high) / 2
            if storage.nodes[middle].master <= id { low = middle + 1 } else { high = middle }
        }
        return Swift.max(0, low - 1)
    }

    /// Live entries with IDs from `start` to `end` (inclusive), ascending or with `reverse` descending,
    /// until `body` returns false.
    public func forEach(from start: StreamID, to end: StreamID, reverse: Bool = false, _ body: (StreamEntry) -> Bool) {
        guard start <= end, !storage.nodes.isEmpty else { return }
        if !reverse {
            var index = nodeIndex(for: start)
            while index < storage.nodes.count {
                let node = storage.nodes[index]
                if node.master > end { return }
                let header = node.header
                var offset = header.firstEntry
                while !node.listpack.isEnd(offset) {
                    let slot = node.slot(at: offset, masterFields: header.fieldCount)
                    offset = slot.next
                    if slot.id > end { return }
                    if slot.isDeleted || slot.id < start { continue }
                    if !body(StreamEntry(id: slot.id, fieldsAndValues: node.fields(of: slot, header: header))) { return }
                }
                index += 1
            }
        } else {
            var index = nodeIndex(for: end)
            while index >= 0 {
                let node = storage.nodes[index]
                let header = node.header
                for slot in node.slots().reversed() {
                    if slot.id < start { return }
                    if slot.isDeleted || slot.id > end { continue }
                    if !body(StreamEntry(id: slot.id, fieldsAndValues: node.fields(of: slot, header: header))) { return }
                }
                if node.master < start { return }
                index -= 1
            }
        }
    }

    /// Live entries from `start` to `end`, at most `limit` (0: all).
    public func entries(from start: StreamID, to end: StreamID, reverse: Bool = false, limit: Int = 0) -> [StreamEntry] {
        var result: [StreamEntry] = []
        forEach(from: start, to: end, reverse: reverse) { entry in
            result.append(entry)
            return limit == 0 || result.count < limit
        }
        return result
    }

    /// The live entry with ID `id`.
    public func entry(_ id: StreamID) -> StreamEntry? {
        var found: StreamEntry? = nil
        forEach(from: id, to: id) { found = $0; return false }
        return found
    }

    /// Whether a live entry has ID `id`.
    public func contains(_ id: StreamID) -> Bool { entry(id) != nil }

    /// The first or last live entry's ID (`streamGetEdgeID` skipping deleted entries).
    public func edgeID(first: Bool) -> StreamID? {
        var found: StreamID? = nil
        forEach(from: .zero, to: .max, reverse: !first) { found = $0.id; return false }
        return found
    }

    /// The ID of the first entry still in a node, deleted or not (`streamGetEdgeID` keeping tombstones).
    public var firstStoredID: StreamID? {
        guard let node = storage.nodes.first else { return nil }
        let header = node.header
        return node.listpack.isEnd(header.firstEntry) ? nil : node.slot(at: header.firstEntry, masterFields: header.fieldCount).id
    }

    // MARK: Deleting and trimming

    /// Marks the entry `id` deleted (a node left without live entries goes); false when absent. Updates
    /// the length, the largest deleted ID and the first ID as XDEL does.
    @discardableResult
    public mutating func delete(_ id: StreamID) -> Bool {
        guard !storage.nodes.isEmpty else { return false }
        let index = nodeIndex(for: id)
        guard storage.nodes[index].master <= id else { return false }
        let header = storage.nodes[index].header
        var offset = header.firstEntry
        var target: StreamNode.Slot? = nil
        while !storage.nodes[index].listpack.isEnd(offset) {
            let slot = storage.nodes[index].slot(at: offset, masterFields: header.fieldCount)
            if slot.id == id { target = slot; break }
            if slot.id > id { break }
            offset = slot.next
        }
        guard let slot = target, !slot.isDeleted else { return false }
        unique()
        markDeleted(node: index, slot: slot, header: header)
        storage.length -= 1
        if id > storage.maxDeletedID { storage.maxDeletedID = id }
        if storage.length == 0 {
            storage.firstID = .zero
        } else if id == storage.firstID {
            storage.firstID = edgeID(first: true) ?? .zero
        }
        return true
    }

    /// Flags one entry deleted in its node and updates the node's counters, or drops the node when it was
    /// its last live entry (`streamIteratorRemoveEntry`).
    private mutating func markDeleted(node index: Int, slot: StreamNode.Slot, header: StreamNode.Header) {
        if header.live == 1 {
            storage.nodeBytes -= storage.nodes.remove(at: index).listpack.byteCount
            return
        }
        replaceInteger(node: index, at: slot.flagsOffset, with: slot.flags | StreamNode.deletedFlag)
        replaceInteger(node: index, at: header.liveOffset, with: header.live - 1)
        let updated = storage.nodes[index].header
        replaceInteger(node: index, at: updated.deletedOffset, with: updated.deleted + 1)
    }

    /// Replaces an integer of a node's listpack, keeping the byte count.
    private mutating func replaceInteger(node index: Int, at offset: Int, with value: Int64) {
        let before = storage.nodes[index].listpack.byteCount
        storage.nodes[index].listpack.replaceInteger(at: offset, with: value)
        storage.nodeBytes += storage.nodes[index].listpack.byteCount - before
    }

    /// How XADD and XTRIM trim.
    public enum TrimStrategy: Sendable {
        case maxLength(Int64)
        case minID(StreamID)
    }

    /// Trims as `streamTrim`: whole nodes first; then, unless `approximate`, entries inside the first node
    /// left. `limit` (0: none) caps the entries removed with whole nodes. Returns the entries removed.
    @discardableResult
    public mutating func trim(_ strategy: TrimStrategy, approximate: Bool, limit: Int64) -> Int64 {
        unique()
        var deleted: Int64 = 0
        while !storage.nodes.isEmpty {
            if case .maxLength(let maxLength) = strategy, Int64(storage.length) <= maxLength { break }
            let node = storage.nodes[0]
            let header = node.header
            let entries = header.live
            if limit != 0 && deleted + entries > limit { break }
            let removeNode: Bool
            switch strategy {
            case .maxLength(let maxLength): removeNode = Int64(storage.length) - entries >= maxLength
            case .minID(let minID): removeNode = node.lastEntryID < minID
            }
            if removeNode {
                storage.nodeBytes -= storage.nodes.removeFirst().listpack.byteCount
                storage.length -= Int(entries)
                deleted += entries
                continue
            }
            if approximate { break }
            // Mark entries deleted inside this node, from its start.
            var removedHere: Int64 = 0
            var offset = header.firstEntry
            while !storage.nodes[0].listpack.isEnd(offset) {
                let slot = storage.nodes[0].slot(at: offset, masterFields: header.fieldCount)
                let stop: Bool
                switch strategy {
                case .maxLength(let maxLength): stop = Int64(storage.length) <= maxLength
                case .minID(let minID): stop = slot.id >= minID
                }
                if stop { break }
                if !slot.isDeleted {
                    replaceInteger(node: 0, at: slot.flagsOffset, with: slot.flags | StreamNode.deletedFlag)
                    removedHere += 1
                    storage.length -= 1
                }
                offset = slot.next
            }
            deleted += removedHere
            let current = storage.nodes[0].header
            replaceInteger(node: 0, at: current.liveOffset, with: entries - removedHere)
            let afterLive = storage.nodes[0].header
            replaceInteger(node: 0, at: afterLive.deletedOffset, with: header.deleted + removedHere)
            break
        }
        storage.firstID = storage.length == 0 ? .zero : edgeID(first: true) ?? .zero
        return deleted
    }

    // MARK: Lag and read counters (Redis 7.0)

    /// Whether a deleted entry may lie between `start` and `end` (`streamRangeHasTombstones`).
    public func rangeHasTombstones(from start: StreamID, to end: StreamID = .max) -> Bool {
        let maxDeleted = storage.maxDeletedID
        if storage.length == 0 || maxDeleted.isZero { return false }
        if storage.firstID > maxDeleted { return false }
        return start <= maxDeleted && maxDeleted <= end
    }

    /// The logical read counter of `id` when it can be known (`streamEstimateDistanceFromFirstEverEntry`),
    /// else `StreamGroup.unknownEntriesRead`.
    public func estimatedEntriesRead(upTo id: StreamID) -> Int64 {
        let added = Int64(bitPattern: storage.entriesAdded)
        if storage.entriesAdded == 0 { return 0 }
        if storage.length == 0 && id <= storage.lastID { return added }
        if id == storage.lastID { return added }
        if id > storage.lastID { return StreamGroup.unknownEntriesRead }
        let maxDeleted = storage.maxDeletedID
        // Wrapping, as Redis's C arithmetic: XSETID ENTRIESADDED and XGROUP … ENTRIESREAD take any value.
        if maxDeleted.isZero || maxDeleted < storage.firstID {
            if id < storage.firstID { return added &- Int64(storage.length) }
            if id == storage.firstID { return added &- Int64(storage.length) &+ 1 }
        }
        return StreamGroup.unknownEntriesRead
    }

    /// A group's lag (`streamReplyWithCGLag`); nil when it cannot be known.
    public func lag(of group: StreamGroup) -> Int64? {
        let added = Int64(bitPattern: storage.entriesAdded)
        if storage.entriesAdded == 0 { return 0 }
        if group.entriesRead != StreamGroup.unknownEntriesRead && !rangeHasTombstones(from: group.lastID) {
            return added &- group.entriesRead
        }
        let estimate = estimatedEntriesRead(upTo: group.lastID)
        return estimate == StreamGroup.unknownEntriesRead ? nil : added &- estimate
    }

    // MARK: Groups

    private func groupPosition(_ name: some ContiguousBytes) -> (index: Int, found: Bool) {
        name.withBytes { name in
            var low = 0, high = storage.groups.count
            while low < high {
                let middle = (low + high) / 2
                let order = storage.groups[middle].name.withBytes { ByteCompare.compare($0, name) }
                if order == 0 { return (middle, true) }
                if order < 0 { low = middle + 1 } else { high = middle }
            }
            return (low, false)
        }
    }

    /// The group named `name`.
    public func group(_ name: some ContiguousBytes) -> StreamGroup? {
        let (index, found) = groupPosition(name)
        return found ? storage.groups[index] : nil
    }

    /// Creates a group; false when the name is taken.
    public mutating func addGroup(_ group: StreamGroup) -> Bool {
        let (index, found) = groupPosition(group.name)
        guard !found else { return false }
        unique()
        storage.groups.insert(group, at: index)
        return true
    }

    /// Deletes a group; false when there is none.
    public mutating func removeGroup(_ name: some ContiguousBytes) -> Bool {
        let (index, found) = groupPosition(name)
        guard found else { return false }
        unique()
        storage.groups.remove(at: index)
        return true
    }

    /// Runs `body` on the group named `name`; nil when there is none.
    @discardableResult
    public mutating func withGroup<R>(_ name: some ContiguousBytes, _ body: (inout StreamGroup) -> R) -> R? {
        let (index, found) = groupPosition(name)
        guard found else { return nil }
        unique()
        return body(&storage.groups[index])
    }

    // MARK: Persistence and accounting

    /// The nodes as (master ID, listpack bytes), in order (RDB).
    public var nodeListpacks: [(master: StreamID, listpack: [UInt8])] {
        storage.nodes.map { ($0.master, $0.listpack.bytes) }
    }

    /// Rebuilds a stream from RDB parts; nil when a node is malformed. Counters are taken as given.
    public init?(nodes: [(master: StreamID, listpack: [UInt8])], length: Int, lastID: StreamID, firstID: StreamID,
                 maxDeletedID: StreamID, entriesAdded: UInt64, groups: [StreamGroup]) {
        var live = 0
        for (master, bytes) in nodes {
            guard let listpack = Listpack(validating: bytes), listpack.firstOffset != nil else { return nil }
            let node = StreamNode(master: master, listpack: listpack)
            guard Self.isWellFormed(node), storage.nodes.last.map({ $0.master < master }) ?? true else { return nil }
            live += Int(node.header.live)
            storage.nodeBytes += listpack.byteCount
            storage.nodes.append(node)
        }
        guard live == length else { return nil }
        storage.length = length
        storage.lastID = lastID
        storage.firstID = firstID
        storage.maxDeletedID = maxDeletedID
        storage.entriesAdded = entriesAdded
        storage.groups = groups.sorted { $0.name < $1.name }
    }

    /// After loading Redis 5–6.2's format, which has neither: the first ID and each group's read counter,
    /// derived as Redis 7.0 derives them.
    mutating func deriveVersion2Counters() {
        unique()
        storage.firstID = edgeID(first: true) ?? .zero
        for index in storage.groups.indices {
            storage.groups[index].entriesRead = estimatedEntriesRead(upTo: storage.groups[index].lastID)
        }
    }

    /// Whether a node's elements follow the stream layout (integers where integers belong, counts that
    /// add up), so that reading it can never run past its end.
    static func isWellFormed(_ node: StreamNode) -> Bool {
        var elements: [Listpack.Element] = []
        var offset = 6
        while !node.listpack.isEnd(offset) {
            let (element, next) = node.listpack.element(at: offset)
            elements.append(element)
            offset = next
        }
        func integer(_ i: Int) -> Int64? {
            guard i < elements.count, case .integer(let value) = elements[i] else { return nil }
            return value
        }
        // Counts are checked against the elements present before any arithmetic, so that no value in the
        // data can overflow it. A node may have no live entry left (a MINID trim can leave only tombstones).
        guard let live = integer(0), let deleted = integer(1), let fields = integer(2), fields >= 0,
              fields < elements.count, live >= 0, deleted >= 0,
              3 + Int(fields) < elements.count, integer(3 + Int(fields)) == 0 else { return false }
        var i = 4 + Int(fields)
        var entries: Int64 = 0, deletedSeen: Int64 = 0
        while i < elements.count {
            guard let flags = integer(i), integer(i + 1) != nil, integer(i + 2) != nil else { return false }
            i += 3
            var count = Int(fields)
            if flags & StreamNode.sameFieldsFlag == 0 {
                guard let own = integer(i), own >= 0, own < elements.count else { return false }
                count = Int(own) * 2
                i += 1
            }
            i += count
            // lp-count: the entry's element count, which walking backwards relies on.
            let own = flags & StreamNode.sameFieldsFlag == 0
            guard i < elements.count, integer(i) == Int64(count + 3 + (own ? 1 : 0)) else { return false }
            i += 1
            if flags & StreamNode.deletedFlag != 0 { deletedSeen += 1 } else { entries += 1 }
        }
        return entries == live && deletedSeen == deleted
    }

    /// Heap bytes, by the engine's accounting: O(groups), as every write asks for it.
    public var footprint: Int {
        var total = 96 + storage.nodes.count * (MemoryLayout<StreamNode>.stride + 32) + storage.nodeBytes
        for group in storage.groups {
            total += 96 + group.name.heapFootprint + group.pending.count * (MemoryLayout<PendingEntry>.stride + 24)
                + group.consumers.count * (MemoryLayout<StreamConsumer>.stride + 64)
        }
        return total
    }

    /// Elements freeing it takes (`lazyfreeGetFreeEffort`): nodes, plus groups times their pending
    /// entries.
    public var freeEffort: Int {
        var effort = storage.nodes.count
        if let first = storage.groups.first { effort += storage.groups.count * (1 + first.pending.count) }
        return effort
    }
}
