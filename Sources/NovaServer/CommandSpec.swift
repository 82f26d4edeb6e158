public import NIOCore
import NovaRESP

/// Properties of a command that dispatch, COMMAND INFO and ACL categories read (Redis's command flags).
public struct CommandFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let write = CommandFlags(rawValue: 1 << 0)
    public static let readonly = CommandFlags(rawValue: 1 << 1)
    /// Refused with OOM when memory is over `maxmemory`.
    public static let denyOOM = CommandFlags(rawValue: 1 << 2)
    public static let admin = CommandFlags(rawValue: 1 << 3)
    public static let pubsub = CommandFlags(rawValue: 1 << 4)
    public static let noscript = CommandFlags(rawValue: 1 << 5)
    public static let blocking = CommandFlags(rawValue: 1 << 6)
    /// Allowed while the dataset is loading.
    public static let loading = CommandFlags(rawValue: 1 << 7)
    public static let stale = CommandFlags(rawValue: 1 << 8)
    public static let skipMonitor = CommandFlags(rawValue: 1 << 9)
    public static let skipSlowlog = CommandFlags(rawValue: 1 << 10)
    public static let fast = CommandFlags(rawValue: 1 << 11)
    /// Allowed before authentication.
    public static let noAuth = CommandFlags(rawValue: 1 << 12)
    public static let mayReplicate = CommandFlags(rawValue: 1 << 13)
    public static let noMulti = CommandFlags(rawValue: 1 << 14)
    public static let allowBusy = CommandFlags(rawValue: 1 << 15)
    public static let sentinel = CommandFlags(rawValue: 1 << 16)
    public static let noMandatoryKeys = CommandFlags(rawValue: 1 << 17)
    /// Dangerous to expose (ACL category @dangerous).
    public static let dangerous = CommandFlags(rawValue: 1 << 18)
    /// Runs at once inside MULTI instead of being queued (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET).
    /// Not a Redis flag: COMMAND INFO does not print it.
    public static let transactionControl = CommandFlags(rawValue: 1 << 19)
    /// Allowed to a RESP2 client with subscriptions (the subscribe family, PING, QUIT, RESET). Not a
    /// Redis flag.
    public static let allowedWhileSubscribed = CommandFlags(rawValue: 1 << 20)

    /// The names COMMAND INFO prints, in Redis's order.
    var names: [String] {
        let all: [(CommandFlags, String)] = [
            (.write, "write"), (.readonly, "readonly"), (.denyOOM, "denyoom"), (.admin, "admin"),
            (.pubsub, "pubsub"), (.noscript, "noscript"), (.blocking, "blocking"), (.loading, "loading"),
            (.stale, "stale"), (.skipMonitor, "skip_monitor"), (.skipSlowlog, "skip_slowlog"), (.fast, "fast"),
            (.noAuth, "no_auth"), (.mayReplicate, "may_replicate"), (.sentinel, "sentinel"),
            (.noMandatoryKeys, "no_mandatory_keys"), (.noMulti, "no_multi"), (.allowBusy, "allow_busy"),
        ]
        return all.filter { contains($0.0) }.map(\.1)
    }
}

/// The documentation group of a command (COMMAND DOCS `group`).
public enum CommandGroup: String, Sendable {
    case generic, string, list, set, hash, pubsub, transactions, connection, server, scripting
    case sortedSet = "sorted-set"
    case hyperloglog, cluster, geo, stream, bitmap
}

/// Where the keys are among a command's arguments: Redis's (first, last, step); last -1 means "to the end"
/// (-2: all but the last argument). Commands such as ZUNIONSTORE and BLMPOP also take `numkeys` keys after
/// a count argument (Redis's "movablekeys").
public struct KeyPositions: Sendable, Equatable {
    public let first: Int
    public let last: Int
    public let step: Int
    /// The index of the `numkeys` argument whose keys follow it; 0 when there is none.
    public let numkeysIndex: Int

    public init(_ first: Int, _ last: Int, _ step: Int, numkeysAt numkeysIndex: Int = 0) {
        self.first = first
        self.last = last
        self.step = step
        self.numkeysIndex = numkeysIndex
    }

    /// Only the `numkeys` keys after argument `numkeysIndex`.
    public init(numkeysAt numkeysIndex: Int) { self.init(0, 0, 0, numkeysAt: numkeysIndex) }

    public static let none = KeyPositions(0, 0, 0)
    public static let single = KeyPositions(1, 1, 1)
    public static let all = KeyPositions(1, -1, 1)

    /// Whether the key positions depend on the arguments (COMMAND INFO's `movablekeys`).
    public var isMovable: Bool { numkeysIndex > 0 }

    /// C's `atoi`, which Redis 7.0's key extraction uses on `numkeys` (the command itself then parses it
    /// strictly): leading white space, a sign, the digits up to the first other byte, saturated to 64
    /// bits by strtol and truncated to an int. So "2abc" counts 2 keys, and 4294967297 counts 1.
    static func atoi(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        var index = 0
        while index < bytes.count, bytes[index] == 32 || (bytes[index] >= 9 && bytes[index] <= 13) { index += 1 }
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        var magnitude: UInt64 = 0
        var saturated = false
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[index] - 48))
            if o1 || o2 { saturated = true }
            magnitude = sum
            index += 1
        }
        let value: Int64
        if negative {
            value = saturated || magnitude > UInt64(Int64.max) ? Int64.min : -Int64(magnitude)
        } else {
            value = saturated || magnitude > UInt64(Int64.max) ? Int64.max : Int64(magnitude)
        }
        return Int32(truncatingIfNeeded: value)
    }

    /// Whether the command takes keys at all.
    public var isEmpty: Bool { first == 0 && numkeysIndex == 0 }

    /// The indexes of the key arguments of a call (`arguments` includes the command name).
    ///
    /// As Redis 7.0: `numkeys` is read strictly first (its key specs); when that fails, leniently with
    /// `atoi` (its fallback, the commands' getkeys callbacks), which list the fixed keys (a destination)
    /// after the counted ones; when both fail, no keys at all.
    public func indexes(_ arguments: [ByteBuffer]) -> [Int] {
        let count = arguments.count
        var fixed: [Int] = []
        if first > 0, first < count {
            let end = last < 0 ? count + last : min(last, count - 1)
            if end >= first { fixed = Array(stride(from: first, through: end, by: max(step, 1))) }
        }
        guard numkeysIndex > 0 else { return fixed }
        guard numkeysIndex < count else { return [] }
        func counted(_ numkeys: Int64) -> [Int]? {
            guard numkeys > 0, numkeys < Int64(count - numkeysIndex) else { return nil }
            return Array((numkeysIndex + 1)...(numkeysIndex + Int(numkeys)))
        }
        let argument = arguments[numkeysIndex]
        if let strict = argument.withUnsafeReadableBytes({ RedisInteger.parse($0) }), let keys = counted(strict) {
            return fixed + keys
        }
        if let keys = counted(Int64(argument.withUnsafeReadableBytes { Self.atoi($0) })) {
            return keys + fixed
        }
        return []
    }
}

/// Runs a command: reads its arguments from the context, writes its reply, or throws an error reply.
public typealias CommandHandler = @Sendable (inout CommandContext) throws(CommandError) -> Void

/// One command as declared in the command table. Immutable once the table is built.
public final class CommandSpec: @unchecked Sendable {
    /// Lowercase name (`get`, or `list` for CLIENT LIST).
    public let name: String
    /// `name`, or `container|name` for a subcommand.
    public let fullName: String
    /// Redis arity: N means exactly N arguments (name included), -N means at least N.
    public let arity: Int
    public let flags: CommandFlags
    public let keys: KeyPositions
    public let group: CommandGroup
    /// The Redis version that introduced the command.
    public let since: String
    /// One line for COMMAND DOCS and help.
    public let summary: String
    public let complexity: String
    /// The arguments after the name, in Redis's documentation syntax (`key value [NX | XX]`).
    public let syntax: String
    /// Nil for a container whose subcommands do the work.
    public let handler: CommandHandler?
    /// Subcommands of a container (CLIENT, CONFIG …).
    public let subcommands: [CommandSpec]
    /// Index into the server's per-command statistics; assigned once when the table is built.
    public internal(set) var id = 0
    /// The container for a subcommand.
    public internal(set) weak var parent: CommandSpec?

    public init(
        _ name: String, arity: Int, flags: CommandFlags = [], keys: KeyPositions = .none,
        group: CommandGroup, since: String, summary: String, complexity: String = "O(1)", syntax: String = "",
        container: String? = nil, subcommands: [CommandSpec] = [], handler: CommandHandler?
    ) {
        self.name = name
        self.fullName = container.map { "\($0)|\(name)" } ?? name
        self.arity = arity
        self.flags = flags
        self.keys = keys
        self.group = group
        self.since = since
        self.summary = summary
        self.complexity = complexity
        self.syntax = syntax
        self.handler = handler
        self.subcommands = subcommands
    }

    /// Whether `count` arguments (name included) satisfy the arity.
    
    public func accepts(argumentCount count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }

    /// The ACL categories Redis derives for this command (`@read`, `@fast` …), without the `@`.
    public var aclCategories: [String] {
        var categories: [String] = []
        if flags.contains(.write) { categories.append("write") }
        if flags.contains(.readonly) { categories.append("read") }
        switch group {
        case .generic: categories.append("keyspace")
        case .string: categories.append("string")
        case .list: categories.append("list")
        case .set: categories.append("set")
        case .sortedSet: categories.append("sortedset")
        case .hash: categories.append("hash")
        case .pubsub: categories.append("pubsub")
        case .transactions: categories.append("transaction")
        case .connection: categories.append("connection")
        case .scripting: categories.append("scripting")
        case .hyperloglog: categories.append("hyperloglog")
        case .geo: categories.append("geo")
        case .stream: categories.append("stream")
        case .bitmap: categories.append("bitmap")
        case .server, .cluster: break
        }
        if flags.contains(.admin) { categories.append("admin") }
        if flags.contains(.admin) || flags.contains(.dangerous) { categories.append("dangerous") }
        if flags.contains(.blocking) { categories.append("blocking") }
        categories.append(flags.contains(.fast) ? "fast" : "slow")
        return categories
    }
}
