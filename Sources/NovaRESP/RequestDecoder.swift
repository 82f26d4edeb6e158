public import NIOCore

/// Decodes client requests the way Redis's `processMultibulkBuffer` / `processInlineBuffer` do:
/// RESP multibulk frames (`*N\r\n$len\r\n...`) and inline commands (`SET a b\r\n`).
///
/// The decoder is incremental: it keeps the state of a partly received command (how many arguments are
/// left, the length of the bulk being read) so that a large command arriving in many reads is scanned once.
/// The arguments of a partly received command wait at the end of the caller's batch, so one batch must be
/// used with one decoder; they are copied out of the caller's buffer when decoding stops mid-command, so
/// that the buffer is not shared and the next read can reuse it in place.
/// Every length is validated before anything is reserved for it.
public struct RequestDecoder: Sendable {
    /// Longest header or inline line accepted without a terminator (Redis's `PROTO_INLINE_MAX_SIZE`).
    public static let maxInlineLength = 64 * 1024

    /// Largest bulk argument accepted (`proto-max-bulk-len`).
    public var maxBulkLength: Int
    /// Largest number of arguments in one multibulk command.
    public var maxArgumentCount: Int
    /// When false, Redis's stricter limits for clients that have not authenticated apply
    /// (at most 10 arguments, bulks of at most 16384 bytes).
    public var isAuthenticated: Bool = true

    private var remainingArguments = 0
    private var bulkLength = -1

    /// Creates a decoder with Redis's default limits.
    public init(maxBulkLength: Int = 512 * 1024 * 1024, maxArgumentCount: Int = 1024 * 1024) {
        self.maxBulkLength = maxBulkLength
        self.maxArgumentCount = maxArgumentCount
    }

    /// True when part of a command has been consumed from the buffer but the command is not complete.
    public var isMidCommand: Bool { remainingArguments > 0 }

    /// Decodes every complete command in `buffer` into `batch`, consuming their bytes.
    ///
    /// Commands decoded before a protocol error stay in `batch`; Redis runs them before replying
    /// with the error and closing the connection. Decoding stops once `batch` holds `maxCommands` commands
    /// (one at a time for unauthenticated clients, whose limits change once they authenticate).
    public mutating func decode(
        _ buffer: inout ByteBuffer, into batch: inout CommandBatch, maxCommands: Int = .max
    ) throws(RESPProtocolError) {
        let firstAppended = batch.arguments.count
        defer { if remainingArguments > 0 { batch.ownPendingArguments(from: firstAppended) } }
        while batch.count < maxCommands {
            if remainingArguments == 0 {
                guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
                if first == UInt8(ascii: "*") {
                    guard case .number(let count) = try readHeader(&buffer, tooLong: .tooBigMultibulkCount)
                    else { return }
                    guard let count, count <= maxArgumentCount else { throw .invalidMultibulkLength }
                    if count > 10 && !isAuthenticated { throw .unauthenticatedMultibulkLength }
                    if count <= 0 { continue }
                    remainingArguments = Int(count)
                } else {
                    guard let arguments = try readInline(&buffer) else { return }
                    if !arguments.isEmpty { batch.append(arguments) }
                    continue
                }
            }
            while remainingArguments > 0 {
                if bulkLength < 0 {
                    guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
                    guard case .number(let length) = try readHeader(&buffer, tooLong: .tooBigBulkCount, expectingDollar: first)
                    else { return }
                    guard let length, length >= 0, length <= maxBulkLength else { throw .invalidBulkLength }
                    if length > 16384 && !isAuthenticated { throw .unauthenticatedBulkLength }
                    bulkLength = Int(length)
                }
                // Redis skips the two bytes after the payload without checking that they are CRLF.
                guard buffer.readableBytes >= bulkLength + 2 else { return }
                batch.appendArgument(buffer.readSlice(length: bulkLength)!)
                buffer.moveReaderIndex(forwardBy: 2)
                bulkLength = -1
                remainingArguments -= 1
            }
            batch.finishCommand()
        }
    }

    private enum Header {
        case incomplete
        /// The number on the line, nil when it is not a valid integer.
        case number(Int64?)
    }

    /// Reads a `*N` or `$N` line. Like Redis, the line ends at the first `\r` and the byte after it is
    /// skipped unchecked.
    private func readHeader(
        _ buffer: inout ByteBuffer,
        tooLong: RESPProtocolError,
        expectingDollar first: UInt8? = nil
    ) throws(RESPProtocolError) -> Header {
        guard let cr = buffer.withUnsafeReadableBytes({ $0.firstIndex(of: 13) }) else {
            if buffer.readableBytes > Self.maxInlineLength { throw tooLong }
            return .incomplete
        }
        guard cr + 2 <= buffer.readableBytes else { return .incomplete }
        if let first, first != UInt8(ascii: "$") { throw .expectedDollar(got: first) }
        let value = buffer.withUnsafeReadableBytes { bytes in
            RedisInteger.parse(UnsafeRawBufferPointer(rebasing: bytes[1..<cr]))
        }
        buffer.moveReaderIndex(forwardBy: cr + 2)
        return .number(value)
    }

    private func readInline(_ buffer: inout ByteBuffer) throws(RESPProtocolError) -> [ByteBuffer]? {
        let newline = buffer.withUnsafeReadableBytes { $0.firstIndex(of: 10) }
        guard let newline else {
            if buffer.readableBytes > Self.maxInlineLength { throw .tooBigInline }
            return nil
        }
        let arguments = buffer.withUnsafeReadableBytes { bytes -> [[UInt8]]? in
            var end = newline
            if end > 0 && bytes[end - 1] == 13 { end -= 1 }
            return InlineSplitter.split(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
        }
        guard let arguments else { throw .unbalancedQuotes }
        buffer.moveReaderIndex(forwardBy: newline + 1)
        return arguments.map { ByteBuffer(bytes: $0) }
    }
}

/// Splits an inline command line into arguments with the quoting rules of Redis's `sdssplitargs`:
/// double quotes with `\n \r \t \b \a \xHH` escapes, single quotes with `\'`, a closing quote must be
/// followed by a space or the end. Returns nil for unbalanced quotes.
public enum InlineSplitter {
    /// Splits `line`; a NUL byte ends the line as it does for Redis's C string.
    public static func split(_ line: UnsafeRawBufferPointer) -> [[UInt8]]? {
        let end = line.firstIndex(of: 0) ?? line.count
        var position = 0
        var result: [[UInt8]] = []
        func isSpace(_ c: UInt8) -> Bool { c == 32 || (c >= 9 && c <= 13) }
        func hexValue(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        func at(_ i: Int) -> UInt8 { i < end ? line[i] : 0 }
        while true {
            while position < end && isSpace(line[position]) { position += 1 }
            if position >= end { return result }
            var current: [UInt8] = []
            var inDouble = false
            var inSingle = false
            var done = false
            while !done {
                let c = at(position)
                if inDouble {
                    if c == UInt8(ascii: "\\") && at(position + 1) == UInt8(ascii: "x"),
                       let high = hexValue(at(position + 2)), let low = hexValue(at(position + 3)) {
                        current.append(high * 16 + low)
                        position += 3
                    } else if c == UInt8(ascii: "\\") && at(position + 1) != 0 {
                        position += 1
                        switch at(position) {
                        case UInt8(ascii: "n"): current.append(10)
                        case UInt8(ascii: "r"): current.append(13)
                        case UInt8(ascii: "t"): current.append(9)
                        case UInt8(ascii: "b"): current.append(8)
                        case UInt8(ascii: "a"): current.append(7)
                        case let other: current.append(other)
                        }
                    } else if c == UInt8(ascii: "\"") {
                        let next = at(position + 1)
                        if next != 0 && !isSpace(next) { return nil }
                        done = true
                    } else if c == 0 {
                        return nil
                    } else {
                        current.append(c)
                    }
                } else if inSingle {
                    if c == UInt8(ascii: "\\") && at(position + 1) == UInt8(ascii: "'") {
                        position += 1
                        current.append(UInt8(ascii: "'"))
                    } else if c == UInt8(ascii: "'") {
                        let next = at(position + 1)
                        if next != 0 && !isSpace(next) { return nil }
                        done = true
                    } else if c == 0 {
                        return nil
                    } else {
                        current.append(c)
                    }
                } else {
                    switch c {
                    case 32, 10, 13, 9, 0: done = true
                    case UInt8(ascii: "\""): inDouble = true
                    case UInt8(ascii: "'"): inSingle = true
                    default: current.append(c)
                    }
                }
                if position < end { position += 1 }
            }
            result.append(current)
        }
    }
}
