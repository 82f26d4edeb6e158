/// An error reply, with Redis's exact text (starting with the error code). The text is bytes: Redis echoes
/// client arguments into some errors verbatim, binary or not; `\(raw:)` interpolates such bytes.
package struct CommandError: Error, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// The full error line without the leading `-`, e.g. `ERR syntax error`.
    package let bytes: [UInt8]

    package init(_ message: String) { self.bytes = Array(message.utf8) }

    package init(stringLiteral value: String) { self.init(value) }

    package init(stringInterpolation: Interpolation) { self.bytes = stringInterpolation.bytes }

    /// The text, for logs (invalid UTF-8 replaced).
    package var message: String { String(decoding: bytes, as: UTF8.self) }

    package var description: String { message }

    /// The error code: the first word (`ERR`, `WRONGTYPE` …), as counted in INFO errorstats.
    package var code: String { String(decoding: bytes.prefix(while: { $0 != 32 }), as: UTF8.self) }

    /// Builds error text from literals, values and raw argument bytes.
    package struct Interpolation: StringInterpolationProtocol {
        var bytes: [UInt8] = []

        package init(literalCapacity: Int, interpolationCount: Int) { bytes.reserveCapacity(literalCapacity + 16) }

        package mutating func appendLiteral(_ literal: String) { bytes.append(contentsOf: literal.utf8) }

        package mutating func appendInterpolation(_ value: some CustomStringConvertible) {
            bytes.append(contentsOf: value.description.utf8)
        }

        /// Appends bytes verbatim (client arguments).
        package mutating func appendInterpolation(raw: [UInt8]) { bytes.append(contentsOf: raw) }
    }

    package static let syntax = CommandError("ERR syntax error")
    package static let notInteger = CommandError("ERR value is not an integer or out of range")
    package static let notFloat = CommandError("ERR value is not a valid float")
    package static let wrongType = CommandError("WRONGTYPE Operation against a key holding the wrong kind of value")
    package static let noSuchKey = CommandError("ERR no such key")
    package static let overflow = CommandError("ERR increment or decrement would overflow")
    package static let dbIndexOutOfRange = CommandError("ERR DB index is out of range")
    package static let invalidDBIndex = CommandError("ERR invalid DB index")
    package static let noAuth = CommandError("NOAUTH Authentication required.")
    package static let wrongPass = CommandError("WRONGPASS invalid username-password pair or user is disabled.")
    package static let loading = CommandError("LOADING Redis is loading the dataset in memory")
    /// Refused while a script runs past busy-reply-threshold.
    package static let busyScript = CommandError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    /// Refused while a function runs past busy-reply-threshold.
    package static let busyFunction = CommandError("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.")
    package static let misconf = CommandError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.")
    package static let outOfMemory = CommandError("OOM command not allowed when used memory > 'maxmemory'.")
    package static let stringTooLong = CommandError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    package static let notFloatOrNaN = CommandError("ERR increment would produce NaN or Infinity")

    /// `wrong number of arguments for 'name' command` (name as Redis prints it, `container|sub` for subcommands).
    package static func arity(_ name: String) -> CommandError {
        CommandError("ERR wrong number of arguments for '\(name)' command")
    }

    /// `invalid expire time in 'name' command`.
    package static func invalidExpire(_ command: String) -> CommandError {
        CommandError("ERR invalid expire time in '\(command)' command")
    }

    /// `unknown subcommand or wrong number of arguments for 'x'. Try NAME HELP.`
    package static func subcommandSyntax(_ subcommand: [UInt8], of container: String) -> CommandError {
        "ERR unknown subcommand or wrong number of arguments for '\(raw: subcommand)'. Try \(container.uppercased()) HELP."
    }

    /// `unknown subcommand 'x'. Try NAME HELP.`
    package static func unknownSubcommand(_ subcommand: [UInt8], of container: String) -> CommandError {
        "ERR unknown subcommand '\(raw: subcommand)'. Try \(container.uppercased()) HELP."
    }
}
