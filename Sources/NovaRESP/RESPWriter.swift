public import NIOCore

/// The protocol a connection speaks, chosen with `HELLO`.
public enum RESPVersion: Int, Sendable, Hashable {
    case v2 = 2
    case v3 = 3
}

/// Encodes replies straight into an outbound buffer, choosing the RESP2 or RESP3 form of each type.
///
/// Handlers write their replies through this type instead of building reply values, so a reply costs no
/// allocation beyond the bytes themselves.
public struct RESPWriter: Sendable {
    /// The encoded bytes (without the payloads in `references`).
    public var buffer: ByteBuffer
    /// The protocol the peer expects.
    public var version: RESPVersion
    /// Large payloads written by reference instead of copied into `buffer`, in order; only when
    /// `acceptsReferences` (a connection that can write them with `writev`). Each one's bytes belong
    /// before `buffer`'s byte at its `offset`.
    public var references: [ReplyReference] = []
    /// Whether `bulk(reference:owner:)` may defer a payload; otherwise it copies.
    public var acceptsReferences = false
    /// The bytes of `references` not yet written out.
    public var referencedBytes = 0

    public init(buffer: ByteBuffer, version: RESPVersion = .v2) {
        self.buffer = buffer
        self.version = version
    }

    @usableFromInline
    mutating func header(_ prefix: UInt8, _ value: Int) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 24) { out in
            out[0] = prefix
            let digits = RedisInteger.format(Int64(value), into: UnsafeMutableRawBufferPointer(start: out.baseAddress! + 1, count: out.count - 1))
            out[digits + 1] = 13
            out[digits + 2] = 10
            return digits + 3
        }
    }

    @usableFromInline
    mutating func crlf() { buffer.writeInteger(0x0D0A as UInt16) }

    /// Writes `prefix`, optionally the payload's length and CRLF (a bulk header), the payload and CRLF in
    /// one reservation of the buffer: every separate ByteBuffer write pays for capacity and exclusivity
    /// checks, which showed as ~8% of a PING.
    @usableFromInline
    mutating func frame(_ prefix: UInt8, _ payload: UnsafeRawBufferPointer, lengthHeader: Bool) {
        let count = payload.count
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count + 26) { out in
            out[0] = prefix
            var at = 1
            if lengthHeader {
                at += RedisInteger.format(Int64(count), into: UnsafeMutableRawBufferPointer(start: out.baseAddress! + 1, count: out.count - 1))
                out[at] = 13
                out[at + 1] = 10
                at += 2
            }
            if count > 0 { (out.baseAddress! + at).copyMemory(from: payload.baseAddress!, byteCount: count) }
            at += count
            out[at] = 13
            out[at + 1] = 10
            return at + 2
        }
    }

    /// `+OK`.
    @inlinable
    public mutating func ok() { buffer.writeStaticString("+OK\r\n") }

    /// A status reply such as `+PONG`.
    @inlinable
    public mutating func simpleString(_ text: StaticString) {
        text.withUTF8Buffer { frame(UInt8(ascii: "+"), UnsafeRawBufferPointer($0), lengthHeader: false) }
    }

    /// A status reply built at run time; CR and LF are replaced by spaces to keep the frame valid.
    public mutating func simpleString(_ text: String) {
        writeSanitized(UInt8(ascii: "+"), text)
    }

    /// An error reply. `message` starts with the error code (`ERR`, `WRONGTYPE` …), as Redis sends it.
    public mutating func error(_ message: String) {
        writeSanitized(UInt8(ascii: "-"), message)
    }

    /// An error reply from raw bytes (Redis echoes client arguments into some errors); CR and LF become
    /// spaces.
    public mutating func error(_ message: [UInt8]) {
        buffer.writeInteger(UInt8(ascii: "-"))
        buffer.writeBytes(message.lazy.map { $0 == 13 || $0 == 10 ? 32 : $0 })
        crlf()
    }

    /// `prefix`, `text` with CR and LF replaced by spaces, CRLF.
    private mutating func writeSanitized(_ prefix: UInt8, _ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            if utf8.contains(where: { $0 == 13 || $0 == 10 }) {
                buffer.writeInteger(prefix)
                _ = buffer.writeBytes(utf8.lazy.map { $0 == 13 || $0 == 10 ? 32 : $0 })
                crlf()
            } else {
                frame(prefix, UnsafeRawBufferPointer(utf8), lengthHeader: false)
            }
        }
    }

    /// An integer reply.
    @inlinable
    public mutating func integer(_ value: Int) { header(UInt8(ascii: ":"), value) }

    /// An integer reply.
    @inlinable
    public mutating func integer(_ value: Int64) { header(UInt8(ascii: ":"), Int(value)) }

    /// A bulk string.
    @inlinable
    public mutating func bulk(_ bytes: UnsafeRawBufferPointer) {
        frame(UInt8(ascii: "$"), bytes, lengthHeader: true)
    }

    /// The smallest payload `bulk(reference:owner:)` defers: below it a copy costs less than a separate
    /// piece of the `writev`.
    public static let referenceThreshold = 4096

    /// A bulk string whose payload lives in `owner` (an immutable heap block kept alive by the reference):
    /// deferred without a copy when the writer accepts references and the payload is large, else copied.
    public mutating func bulk(reference bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        guard acceptsReferences, bytes.count >= Self.referenceThreshold else { return bulk(bytes) }
        header(UInt8(ascii: "$"), bytes.count)
        references.append(ReplyReference(offset: buffer.writerIndex, bytes: bytes, owner: owner))
        referencedBytes += bytes.count
        crlf()
    }

    /// The reply's size, deferred payloads included.
    @inlinable
    public var pendingBytes: Int { buffer.readableBytes + referencedBytes }

    /// Drops what was written after `mark` (a `buffer.writerIndex` taken before), deferred payloads too.
    public mutating func rewind(to mark: Int) {
        buffer.moveWriterIndex(to: mark)
        while let last = references.last, last.offset >= mark {
            referencedBytes -= last.bytes.count
            references.removeLast()
        }
    }

    /// A bulk string.
    @inlinable
    public mutating func bulk(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { frame(UInt8(ascii: "$"), $0, lengthHeader: true) }
    }

    /// A bulk string.
    @inlinable
    public mutating func bulk(_ bytes: some Collection<UInt8>) {
        header(UInt8(ascii: "$"), bytes.count)
        buffer.writeBytes(bytes)
        crlf()
    }

    /// A bulk string holding `text`'s UTF-8.
    public mutating func bulk(_ text: String) {
        var text = text
        text.withUTF8 { bulk(UnsafeRawBufferPointer($0)) }
    }

    /// A bulk string holding the decimal form of `value` (how Redis returns integer-encoded strings).
    @inlinable
    public mutating func bulk(decimal value: Int64) {
        let length = RedisInteger.formattedLength(value)
        header(UInt8(ascii: "$"), length)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length + 2) { out in
            _ = RedisInteger.format(value, into: out)
            out[length] = 13
            out[length + 1] = 10
            return length + 2
        }
    }

    /// A null bulk (`$-1` in RESP2, `_` in RESP3).
    @inlinable
    public mutating func null() {
        if version == .v3 { buffer.writeStaticString("_\r\n") } else { buffer.writeStaticString("$-1\r\n") }
    }

    /// A null array (`*-1` in RESP2, `_` in RESP3).
    @inlinable
    public mutating func nullArray() {
        if version == .v3 { buffer.writeStaticString("_\r\n") } else { buffer.writeStaticString("*-1\r\n") }
    }

    /// The header of an array of `count` elements.
    @inlinable
    public mutating func array(_ count: Int) { header(UInt8(ascii: "*"), count) }

    /// The header of a map of `count` pairs (a flat array of 2×count elements in RESP2).
    @inlinable
    public mutating func map(_ count: Int) {
        if version == .v3 { header(UInt8(ascii: "%"), count) } else { header(UInt8(ascii: "*"), count * 2) }
    }

    /// The header of a set of `count` elements (an array in RESP2).
    @inlinable
    public mutating func set(_ count: Int) {
        header(version == .v3 ? UInt8(ascii: "~") : UInt8(ascii: "*"), count)
    }

    /// The header of an out-of-band push message (an array in RESP2).
    @inlinable
    public mutating func push(_ count: Int) {
        header(version == .v3 ? UInt8(ascii: ">") : UInt8(ascii: "*"), count)
    }

    /// A boolean (`#t`/`#f` in RESP3, `:1`/`:0` in RESP2).
    @inlinable
    public mutating func boolean(_ value: Bool) {
        if version == .v3 {
            buffer.writeStaticString(value ? "#t\r\n" : "#f\r\n")
        } else {
            buffer.writeStaticString(value ? ":1\r\n" : ":0\r\n")
        }
    }

    /// A double as Redis 7.0 formats it (`%.17g`, `inf`, `-inf`): a RESP3 double or a RESP2 bulk string.
    public mutating func double(_ value: Double) {
        double(text: RedisFloat.format(value))
    }

    /// A double already formatted: a RESP3 double or a RESP2 bulk string.
    private mutating func double(text: [UInt8]) {
        if version == .v3 {
            buffer.writeInteger(UInt8(ascii: ","))
            buffer.writeBytes(text)
            crlf()
        } else {
            bulk(text)
        }
    }

    /// A double in Redis's "human" long-double form (`%.17Lf` without trailing zeros, as
    /// `addReplyHumanLongDouble`): a RESP3 double or a RESP2 bulk string. GEOPOS and WITHCOORD use it.
    public mutating func humanDouble(_ value: Double) {
        double(text: RedisFloat.formatHuman(Float80(value)) ?? RedisFloat.format(value))
    }

    /// A verbatim string (RESP3 `=`, with a three-letter format such as `txt`), a bulk string in RESP2.
    public mutating func verbatim(_ text: String, format: StaticString = "txt") {
        guard version == .v3 else { return bulk(text) }
        var text = text
        text.withUTF8 { utf8 in
            header(UInt8(ascii: "="), utf8.count + 4)
            buffer.writeStaticString(format)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeBytes(UnsafeRawBufferPointer(utf8))
        }
        crlf()
    }

    /// `verbatim` for text already in UTF-8 bytes.
    public mutating func verbatim(bytes text: [UInt8], format: StaticString = "txt") {
        guard version == .v3 else { return bulk(text) }
        header(UInt8(ascii: "="), text.count + 4)
        buffer.writeStaticString(format)
        buffer.writeInteger(UInt8(ascii: ":"))
        buffer.writeBytes(text)
        crlf()
    }

    /// Appends bytes that are already encoded RESP.
    @inlinable
    public mutating func raw(_ bytes: StaticString) { buffer.writeStaticString(bytes) }
}

/// A payload a reply refers to instead of copying: the bytes go out before `offset` in the reply buffer.
/// `owner` keeps them alive (and, being a second reference, makes any later in-place change copy first).
public struct ReplyReference: @unchecked Sendable {
    public let offset: Int
    public let bytes: UnsafeRawBufferPointer
    public let owner: AnyObject

    public init(offset: Int, bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.offset = offset
        self.bytes = bytes
        self.owner = owner
    }
}
