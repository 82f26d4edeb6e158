import NovaClient
import NovaRESP

/// How a `CacheManager` lays out a value on the remote.
public enum StoredFormat: Sendable, Hashable, CaseIterable {
    /// The codec's bytes exactly (plain JSON with the default codec), so that services in other languages
    /// read and write the same keys (`json.loads(r.get("crm:customer:42"))`). What the outage replay and
    /// sliding expiry need (write time, sliding TTL) lives in a companion key inside the namespace,
    /// `crm:__novacache__:m:customer:42`, with the same TTL, holding `1 <written ms> <sliding ms>
    /// <fingerprint>`; the fingerprint (FNV-1a of the value) tells whether the value is still the one the
    /// metadata describes, so a value another program wrote is never mistaken for ours. Keys under
    /// `<namespace>:__novacache__:` are reserved; an ACL that grants `~crm:*` covers both.
    case plain
    /// A 19-byte header (`NC` 0x01, write time, sliding TTL) before the codec's bytes, in the value itself:
    /// one key per entry, but only CacheManagers can read the values. Either format reads both.
    case envelope
}

/// A value as read from or written to the remote, with the metadata the manager keeps beside it.
struct RemoteEntry: Sendable, Hashable {
    var payload: [UInt8]
    /// ms since the epoch; 0 when unknown (another program wrote the value).
    var writtenAt: Int64
    /// The sliding TTL (0: not sliding).
    var slidingMilliseconds: Int64
    /// Whether a CacheManager wrote it (its metadata matches the value).
    var isOurs: Bool


    /// Reads a value and its companion metadata (either may be absent; nil when the value is).
    init?(value: RESPValue, meta: RESPValue?) {
        guard case .bulkString(let buffer) = value else { return nil }
        let bytes = Array(buffer.readableBytesView)
        let envelope = CacheEnvelope(decoding: bytes)
        if envelope.isOurs {
            self.init(payload: envelope.payload, writtenAt: envelope.writtenAt, slidingMilliseconds: envelope.slidingMilliseconds, isOurs: true)
            return
        }
        self.init(payload: bytes, writtenAt: 0, slidingMilliseconds: 0, isOurs: false)
        if case .bulkString(let text)? = meta, let metadata = Metadata(String(buffer: text)),
            metadata.fingerprint == Self.fingerprint(bytes) {
            writtenAt = metadata.writtenAt
            slidingMilliseconds = metadata.slidingMilliseconds
            isOurs = true
        }
    }

    init(payload: [UInt8], writtenAt: Int64, slidingMilliseconds: Int64, isOurs: Bool = true) {
        self.payload = payload
        self.writtenAt = writtenAt
        self.slidingMilliseconds = slidingMilliseconds
        self.isOurs = isOurs
    }

    /// The commands that store this entry under `full` in `format`, expiring in `ttl` ms (nil: never).
    /// On a cluster they touch one hash slot (the metadata key shares the value's slot), so they can run
    /// in one transaction.
    func writeCommands(_ full: String, _ layout: KeyLayout, format: StoredFormat, ttlMilliseconds ttl: Int64?) -> [RedisCommand] {
        let expiry: [RedisArgument] = ttl.map { ["PX", .integer(max(1, $0))] } ?? []
        switch format {
        case .envelope:
            let bytes = CacheEnvelope(writtenAt: writtenAt, slidingMilliseconds: slidingMilliseconds, payload: payload).encoded
            return [RedisCommand("SET", arguments: [.string(full), .bytes(bytes)] + expiry)]
        case .plain:
            let metadata = Metadata(writtenAt: writtenAt, slidingMilliseconds: slidingMilliseconds, fingerprint: Self.fingerprint(payload))
            return [
                RedisCommand("SET", arguments: [.string(full), .bytes(payload)] + expiry),
                RedisCommand("SET", arguments: [.string(layout.metaKey(full)), .string(metadata.text)] + expiry),
            ]
        }
    }

    /// The commands that add `full` to the indexes of `tags`. Each index is a sorted set scored by expiry
    /// (+inf: never); every tagged write prunes the members that expired, so an index holds about the
    /// tag's live keys. Sent after the value (an index lives in a slot of its own on a cluster).
    static func tagCommands(_ full: String, _ layout: KeyLayout, ttlMilliseconds ttl: Int64?, tags: [String], now: Int64) -> [RedisCommand] {
        let score: RedisArgument = ttl.map { .integer(now + max(1, $0)) } ?? "+inf"
        return tags.flatMap { tag -> [RedisCommand] in
            let index = RedisArgument.string(layout.tagKey(tag))
            return [RedisCommand("ZADD", index, score, .string(full)), RedisCommand("ZREMRANGEBYSCORE", index, "-inf", .string("(\(now)"))]
        }
    }

    /// The commands that read `full` (value, remaining TTL, metadata): replies go to `init(replies:)`.
    static func readCommands(_ full: String, _ layout: KeyLayout) -> [RedisCommand] {
        [RedisCommand("GET", .string(full)), RedisCommand("PTTL", .string(full)), RedisCommand("GET", .string(layout.metaKey(full)))]
    }

    /// The commands that delete `full` (the first reply counts the value).
    static func deleteCommands(_ full: String, _ layout: KeyLayout) -> [RedisCommand] {
        [RedisCommand("DEL", .string(full)), RedisCommand("DEL", .string(layout.metaKey(full)))]
    }

    /// The commands that restart `full`'s TTL (the first reply says whether the value exists).
    static func expireCommands(_ full: String, _ layout: KeyLayout, milliseconds: Int64) -> [RedisCommand] {
        [RedisCommand("PEXPIRE", .string(full), .integer(milliseconds)), RedisCommand("PEXPIRE", .string(layout.metaKey(full)), .integer(milliseconds))]
    }

    /// FNV-1a (64 bits) of `bytes`: cheap, and enough to tell the value the metadata was written with from
    /// one another program wrote later.
    static func fingerprint(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// The companion key's content: `1 <written ms> <sliding ms> <fingerprint hex>`.
    struct Metadata: Sendable, Hashable {
        var writtenAt: Int64
        var slidingMilliseconds: Int64
        var fingerprint: UInt64

        init(writtenAt: Int64, slidingMilliseconds: Int64, fingerprint: UInt64) {
            self.writtenAt = writtenAt
            self.slidingMilliseconds = slidingMilliseconds
            self.fingerprint = fingerprint
        }

        init?(_ text: String) {
            let fields = text.split(separator: " ")
            guard fields.count == 4, fields[0] == "1", let written = Int64(fields[1]), let sliding = Int64(fields[2]),
                let fingerprint = UInt64(fields[3], radix: 16)
            else { return nil }
            self.init(writtenAt: written, slidingMilliseconds: sliding, fingerprint: fingerprint)
        }

        var text: String { "1 \(writtenAt) \(slidingMilliseconds) \(String(fingerprint, radix: 16))" }
    }
}

/// Where a manager's keys live: values under the namespace prefix; beside them, under
/// `<prefix>__novacache__:`, the plain format's metadata (`m:<key>`) and the tag indexes (`t:<tag>`).
///
/// On a cluster a value's metadata must share its hash slot (they are written and watched together), so
/// there the metadata key carries the value's slot as a hash tag: `crm:__novacache__:m:{3bk}customer:42`.
struct KeyLayout: Sendable, Hashable {
    /// The namespace with its colon (`crm:`), or empty.
    let prefix: String
    /// `<prefix>__novacache__:`: keys the manager keeps for itself.
    let reserved: String
    /// Whether metadata keys carry their value's hash slot (cluster layout).
    let slotTagged: Bool
    private let metaPrefix: String

    init(prefix: String, slotTagged: Bool = false) {
        self.prefix = prefix
        self.slotTagged = slotTagged
        reserved = prefix + "__novacache__:"
        metaPrefix = reserved + "m:"
    }

    /// The companion key of the value `full` (`crm:customer:42` → `crm:__novacache__:m:customer:42`, on a
    /// cluster `crm:__novacache__:m:{<slot tag>}customer:42`).
    func metaKey(_ full: String) -> String {
        let rest = full.hasPrefix(prefix) ? full.dropFirst(prefix.count) : Substring(full)
        guard slotTagged else { return metaPrefix + rest }
        return metaPrefix + "{" + HashSlot.tag(forSlot: HashSlot.of(full)) + "}" + rest
    }

    /// The sorted set of the keys tagged `tag` (scored by their expiry time).
    func tagKey(_ tag: String) -> String { reserved + "t:" + tag }

    /// The SCAN patterns (globs) that find every key to remove under `prefix`: a namespace's own keys
    /// match its prefix, a sub-namespace's metadata (`crm:eu:` → `crm:__novacache__:m:eu:`) does not.
    /// Filter what they find with `clears(_:prefix:)`.
    func scanPatterns(clearing prefix: String) -> [String] {
        let own = CacheManager.globEscaped(prefix) + "*"
        if metaPrefix.hasPrefix(prefix) { return [own] }
        let rest = prefix.hasPrefix(self.prefix) ? prefix.dropFirst(self.prefix.count) : Substring(prefix)
        let meta = CacheManager.globEscaped(metaPrefix) + (slotTagged ? "{*}" : "") + CacheManager.globEscaped(String(rest)) + "*"
        return [own, meta]
    }

    /// Whether a key found by `scanPatterns(clearing: prefix)` goes when `prefix` is cleared.
    func clears(_ name: String, prefix: String) -> Bool {
        isMetaKey(name) ? valueKey(ofMeta: name).hasPrefix(prefix) : name.hasPrefix(prefix)
    }

    /// Whether `name` is one of the manager's own keys (metadata or tag index), not a value.
    func isReserved(_ name: String) -> Bool { name.hasPrefix(reserved) }

    /// Whether `name` is a companion key.
    func isMetaKey(_ name: String) -> Bool { name.hasPrefix(metaPrefix) }

    /// The value a companion key describes.
    func valueKey(ofMeta name: String) -> String {
        var rest = name.dropFirst(metaPrefix.count)
        if slotTagged, rest.hasPrefix("{"), let close = rest.firstIndex(of: "}") { rest = rest[rest.index(after: close)...] }
        return prefix + rest
    }
}
