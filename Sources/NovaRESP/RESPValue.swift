public import NIOCore

/// A decoded RESP2 or RESP3 reply, as a client sees it.
public indirect enum RESPValue: Sendable, Hashable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    case bulkString(ByteBuffer)
    case array([RESPValue])
    /// `$-1`, `*-1` or RESP3 `_`.
    case null
    case double(Double)
    case boolean(Bool)
    case bigNumber(String)
    case verbatim(format: String, text: String)
    case map([(RESPValue, RESPValue)])
    case set([RESPValue])
    case push([RESPValue])

    public static func == (lhs: RESPValue, rhs: RESPValue) -> Bool {
        switch (lhs, rhs) {
        case let (.simpleString(a), .simpleString(b)), let (.error(a), .error(b)), let (.bigNumber(a), .bigNumber(b)):
            return a == b
        case let (.integer(a), .integer(b)): return a == b
        case let (.bulkString(a), .bulkString(b)): return a == b
        case let (.array(a), .array(b)), let (.set(a), .set(b)), let (.push(a), .push(b)): return a == b
        case (.null, .null): return true
        case let (.double(a), .double(b)): return a == b || (a.isNaN && b.isNaN)
        case let (.boolean(a), .boolean(b)): return a == b
        case let (.verbatim(f1, t1), .verbatim(f2, t2)): return f1 == f2 && t1 == t2
        case let (.map(a), .map(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(String(describing: self))
    }

    /// The text of a simple, bulk or verbatim string.
    public var string: String? {
        switch self {
        case .simpleString(let s), .bigNumber(let s): return s
        case .bulkString(let b): return String(buffer: b)
        case .verbatim(_, let text): return text
        default: return nil
        }
    }

    /// The bytes of a bulk or simple string.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let b): return Array(b.readableBytesView)
        case .simpleString(let s): return Array(s.utf8)
        default: return nil
        }
    }

    /// The elements of an array, set or push.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let a), .set(let a), .push(let a): return a
        default: return nil
        }
    }
}

/// A reply that is not valid RESP.
public struct RESPDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
}

/// Decodes RESP2/RESP3 replies incrementally: `decode` returns nil, consuming nothing, until a whole value
/// is buffered.
public struct RESPValueDecoder: Sendable {
    /// The deepest nesting accepted, so that hostile input cannot exhaust the stack.
    public var maxDepth = 64

    public init() {}

    /// Decodes one value from the front of `buffer`, or returns nil when more bytes are needed.
    public func decode(_ buffer: inout ByteBuffer) throws(RESPDecodingError) -> RESPValue? {
        var copy = buffer
        guard let value = try decodeValue(&copy, depth: 0) else { return nil }
        buffer = copy
        return value
    }

    private func line(_ buffer: inout ByteBuffer) -> String? {
        guard let cr = buffer.withUnsafeReadableBytes({ bytes -> Int? in
            var i = 0
            while i + 1 < bytes.count {
                if bytes[i] == 13 && bytes[i + 1] == 10 { return i }
                i += 1
            }
            return nil
        }) else { return nil }
        let text = buffer.readString(length: cr)!
        buffer.moveReaderIndex(forwardBy: 2)
        return text
    }

    private func number(_ text: String) throws(RESPDecodingError) -> Int64 {
        guard let value = Int64(text) else { throw RESPDecodingError(description: "bad number '\(text)'") }
        return value
    }

    private func decodeValue(_ buffer: inout ByteBuffer, depth: Int) throws(RESPDecodingError) -> RESPValue? {
        guard depth <= maxDepth else { throw RESPDecodingError(description: "nesting deeper than \(maxDepth)") }
        guard let type = buffer.readInteger(as: UInt8.self) else { return nil }
        guard let header = line(&buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .simpleString(header)
        case UInt8(ascii: "-"): return .error(header)
        case UInt8(ascii: ":"): return .integer(try number(header))
        case UInt8(ascii: "_"): return .null
        case UInt8(ascii: "#"): return .boolean(header == "t")
        case UInt8(ascii: "("): return .bigNumber(header)
        case UInt8(ascii: ","):
            switch header {
            case "inf": return .double(.infinity)
            case "-inf": return .double(-.infinity)
            case "nan": return .double(.nan)
            default:
                guard let value = Double(header) else { throw RESPDecodingError(description: "bad double") }
                return .double(value)
            }
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            let length = try number(header)
            if length < 0 { return .null }
            guard buffer.readableBytes >= Int(length) + 2 else { return nil }
            let payload = buffer.readSlice(length: Int(length))!
            buffer.moveReaderIndex(forwardBy: 2)
            if type == UInt8(ascii: "$") { return .bulkString(payload) }
            let text = String(buffer: payload)
            if type == UInt8(ascii: "!") { return .error(text) }
            let format = String(text.prefix(3))
            return .verbatim(format: format, text: String(text.dropFirst(4)))
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            let count = try number(header)
            if count < 0 { return .null }
            let isMap = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
            let total = isMap ? Int(count) * 2 : Int(count)
            var items: [RESPValue] = []
            items.reserveCapacity(min(total, 4096))
            for _ in 0..<total {
                guard let item = try decodeValue(&buffer, depth: depth + 1) else { return nil }
                items.append(item)
            }
            switch type {
            case UInt8(ascii: "~"): return .set(items)
            case UInt8(ascii: ">"): return .push(items)
            case UInt8(ascii: "*"): return .array(items)
            default:
                let pairs = stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }
                if type == UInt8(ascii: "|") {
                    // An attribute precedes the real reply; clients ignore it.
                    _ = pairs
                    return try decodeValue(&buffer, depth: depth)
                }
                return .map(pairs)
            }
        default:
            throw RESPDecodingError(description: "unknown RESP type byte \(type)")
        }
    }
}
