public import NIOCore

/// One argument of a command: bytes on the wire, built from whatever the caller holds.
public enum RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case bytes([UInt8])
    case buffer(ByteBuffer)
    case integer(Int64)
    case double(Double)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }

    /// How a double goes on the wire: Swift's shortest round-trip form, `+inf`/`-inf` for infinities.
    static func text(of value: Double) -> String {
        value.isInfinite ? (value > 0 ? "+inf" : "-inf") : "\(value)"
    }

    func write(into buffer: inout ByteBuffer) {
        switch self {
        case .string(let text):
            buffer.writeBulkHeader(text.utf8.count)
            buffer.writeString(text)
        case .bytes(let bytes):
            buffer.writeBulkHeader(bytes.count)
            buffer.writeBytes(bytes)
        case .buffer(let bytes):
            buffer.writeBulkHeader(bytes.readableBytes)
            buffer.writeImmutableBuffer(bytes)
        case .integer(let value):
            let text = String(value)
            buffer.writeBulkHeader(text.utf8.count)
            buffer.writeString(text)
        case .double(let value):
            let text = Self.text(of: value)
            buffer.writeBulkHeader(text.utf8.count)
            buffer.writeString(text)
        }
        buffer.writeStaticString("\r\n")
    }
}

/// A command as sent: its name and arguments (`RedisCommand("SET", "k", .bytes(v), "EX", 60)`).
public struct RedisCommand: Sendable, Hashable, CustomStringConvertible {
    public var arguments: [RedisArgument]

    public init(_ name: String, _ arguments: RedisArgument...) {
        self.arguments = [.string(name)] + arguments
    }

    public init(_ name: String, arguments: [RedisArgument]) {
        self.arguments = [.string(name)] + arguments
    }

    /// The upper-cased command name.
    public var name: String {
        if case .string(let text) = arguments.first { return text.uppercased() }
        return ""
    }

    /// Appends the command as a RESP array of bulk strings.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        buffer.writeString(String(arguments.count))
        buffer.writeStaticString("\r\n")
        for argument in arguments { argument.write(into: &buffer) }
    }

    /// The command with arguments after its name elided (logs never show values or passwords).
    public var description: String { "\(name) (\(arguments.count - 1) arguments)" }
}

extension ByteBuffer {
    fileprivate mutating func writeBulkHeader(_ count: Int) {
        writeInteger(UInt8(ascii: "$"))
        writeString(String(count))
        writeStaticString("\r\n")
    }
}
