/// An error reply, with Redis's exact text (starting with the error code). The text is bytes: Redis echoes
/// client arguments into some errors verbatim, binary or not; `\(raw:)` interpolates such bytes.
public struct CommandError: Error, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// The full error line without the leading `-`, e.g. `ERR syntax error`.
    public let bytes: [UInt8]

    public init(_ message: String) { self.bytes = Array(message.utf8) }

    public init(stringLiteral value: String) { self.init(value) }

    public init(stringInterpolation: Interpolation) { self.bytes = stringInterpolation.bytes }

    /// The text, for logs (invalid UTF-8 replaced).
    public var message: String { String(decoding: bytes, as: UTF8.self) }

    public var description: String { message }

    /// The error code: the first word (`ERR`, `WRONGTYPE` …), as counted in INFO errorstats.
    public var code: String { String(decoding: bytes.prefix(while: { $0 != 32 }), as: UTF8.self) }

    /// Builds error text from literals, values and raw argument bytes.
    public struct Interpolation: StringInterpolationProtocol {
        var bytes: [UInt8] = []

        public init(literalCapacity: Int, interpolationCount: Int) { bytes.reserveCapacity(literalCapacity + 16) }

        public mutating func appendLiteral(_ literal: String) { bytes.append(contentsOf: literal.utf8) }

        public mutating func appendInterpolation(_ value: some CustomStringConvertible) {
            bytes.append(contentsOf: value.description.utf8)
        }

        /// Appends bytes verbatim (client arguments).
        public mutating func appendInterpolation(raw: [UInt8]) { bytes.append(contentsOf: raw) }
    }

    public static let syntax = CommandError("ERR syntax error")
    public static let notInteger = CommandError("ERR value is not an integer or out of range")
    public static let notFloat = CommandError("ERR value is not a valid float")
    public static let wrongType = CommandError("WRONGTYPE Operation against a key holding the wrong kind of value")
    public static let noSuchKey = CommandError("ERR no such key")
    public static let overflow = CommandError("ERR increment or decrement would overflow")
    public static let dbIndexOutOfRange = CommandError("ERR DB index is out of range")
    public static let invalidDBIndex = CommandError("ERR invalid DB index")
    public static let noAuth = CommandError("NOAUTH Authentication required.")
    public static let wrongPass = CommandError("WRONGPASS invalid username-password pair or user is disabled.")
    public static let loading = CommandError("LOADING Redis is loading the dataset in memory")
    public static let misconf = CommandError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.")
    public static let outOfMemory = CommandError("OOM command not allowed when used memory > 'maxmemory'.")
    public static let stringTooLong = CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    public static let notFloatOrNaN = CommandError("ERR increment would produce NaN or Infinity")

    /// `wrong number of arguments for 'name' command` (name as Redis prints it, `container|sub` for subcommands).
    public static func arity(_ name: String) -> CommandError {
        CommandError("ERR wrong number of arguments for '\(name)' command")
    }

    /// `invalid expire time in 'name' command`.
    public static func invalidExpire(_ command: String) -> CommandError {
        CommandError("ERR invalid expire time in '\(command)' command")
    }

    /// `unknown subcommand or wrong number of arguments for 'x'. Try NAME HELP.`
    public static func subcommandSyntax(_ subcommand: [UInt8], of container: String) -> CommandError {
        "ERR unknown subcommand or wrong number of arguments for '\(raw: subcommand)'. Try \(container.uppercased()) HELP."
    }

    /// `unknown subcommand 'x'. Try NAME HELP.`
    public static func unknownSubcommand(_ subcommand: [UInt8], of container: String) -> CommandError {
        "ERR unknown subcommand '\(raw: subcommand)'. Try \(container.uppercased()) HELP."
    }
}
