/// An error reply, with Redis's exact text (starting with the error code).
public struct CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The full error line without the leading `-`, e.g. `ERR syntax error`.
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }

    /// The error code: the first word (`ERR`, `WRONGTYPE` …), as counted in INFO errorstats.
    public var code: Substring { message.prefix(while: { $0 != " " }) }

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

    /// `unknown subcommand 'x'. Try NAME HELP.`
    public static func unknownSubcommand(_ subcommand: String, of container: String) -> CommandError {
        CommandError("ERR unknown subcommand '\(subcommand.prefix(128))'. Try \(container.uppercased()) HELP.")
    }
}
