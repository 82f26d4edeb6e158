package import NIOCore
package import NovaRESP

/// Properties of a command that dispatch, COMMAND INFO and ACL categories read (Redis's command flags).
package struct CommandFlags: OptionSet, Sendable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }

    package static let write = CommandFlags(rawValue: 1 << 0)
    package static let readonly = CommandFlags(rawValue: 1 << 1)
    /// Refused with OOM when memory is over `maxmemory`.
    package static let denyOOM = CommandFlags(rawValue: 1 << 2)
    package static let admin = CommandFlags(rawValue: 1 << 3)
    package static let pubsub = CommandFlags(rawValue: 1 << 4)
    package static let noscript = CommandFlags(rawValue: 1 << 5)
    package static let blocking = CommandFlags(rawValue: 1 << 6)
    /// Allowed while the dataset is loading.
    package static let loading = CommandFlags(rawValue: 1 << 7)
    package static let stale = CommandFlags(rawValue: 1 << 8)
    package static let skipMonitor = CommandFlags(rawValue: 1 << 9)
    package static let skipSlowlog = CommandFlags(rawValue: 1 << 10)
    package static let fast = CommandFlags(rawValue: 1 << 11)
    /// Allowed before authentication.
    package static let noAuth = CommandFlags(rawValue: 1 << 12)
    package static let mayReplicate = CommandFlags(rawValue: 1 << 13)
    package static let noMulti = CommandFlags(rawValue: 1 << 14)
    package static let allowBusy = CommandFlags(rawValue: 1 << 15)
    package static let sentinel = CommandFlags(rawValue: 1 << 16)
    package static let noMandatoryKeys = CommandFlags(rawValue: 1 << 17)
    /// Dangerous to expose (ACL category @dangerous).
    package static let dangerous = CommandFlags(rawValue: 1 << 18)
    /// Runs at once inside MULTI instead of being queued (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET).
    /// Not a Redis flag: COMMAND INFO does not print it.
    package static let transactionControl = CommandFlags(rawValue: 1 << 19)
    /// Allowed to a RESP2 client with subscriptions (the subscribe family, PING, QUIT, RESET). Not a
    /// Redis flag.
    package static let allowedWhileSubscribed = CommandFlags(rawValue: 1 << 20)
    /// Allowed on a cluster replica being imported into (Redis's ASKING flag; reported only).
    package static let asking = CommandFlags(rawValue: 1 << 21)
    /// Refused while the dataset loads asynchronously (replication; reported only).
    package static let noAsyncLoading = CommandFlags(rawValue: 1 << 22)
    /// EXEC: counts as a write, and is refused under OOM, when a command it runs is. Not a Redis flag.
    package static let runsQueuedCommands = CommandFlags(rawValue: 1 << 23)
    /// Refused with MISCONF after a failed background save as writes are: Redis makes PING fail so that
    /// health checks notice. Not a Redis flag.
    package static let refusedOnDiskError = CommandFlags(rawValue: 1 << 24)
    /// On a container: its subcommands do not end a CLIENT CACHING YES/NO (which applies to the next
    /// command otherwise). Not a Redis flag.
    package static let keepsTrackingCaching = CommandFlags(rawValue: 1 << 25)

    /// The names COMMAND INFO prints, in Redis's order (`sentinel` and our own flags are not printed).
    var names: [String] {
        let all: [(CommandFlags, String)] = [
            (.write, "write"), (.readonly, "readonly"), (.denyOOM, "denyoom"), (.admin, "admin"),
            (.pubsub, "pubsub"), (.noscript, "noscript"), (.blocking, "blocking"), (.loading, "loading"),
            (.stale, "stale"), (.skipMonitor, "skip_monitor"), (.skipSlowlog, "skip_slowlog"), (.asking, "asking"),
            (.fast, "fast"), (.noAuth, "no_auth"), (.mayReplicate, "may_replicate"),
            (.noMandatoryKeys, "no_mandatory_keys"), (.noAsyncLoading, "no_async_loading"), (.noMulti, "no_multi"),
        ]
        return all.filter { contains($0.0) }.map(\.1)
    }
}

/// The documentation group of a command (COMMAND DOCS `group`).
package enum CommandGroup: String, Sendable {
    case generic, string, list, set, hash, pubsub, transactions, connection, server, scripting
    case sortedSet = "sorted-set"
    case hyperloglog, cluster, geo, stream, bitmap

    /// The ACL category most commands of the group declare.
    var impliedCategories: [String] {
        switch self {
        case .generic: return ["keyspace"]
        case .sortedSet: return ["sortedset"]
        case .transactions: return ["transaction"]
        case .server, .cluster: return []
        default: return [rawValue]
        }
    }
}

/// Which arguments of a Pub/Sub command are channels, for ACL channel permissions.
package enum ChannelArguments: Sendable {
    /// One channel at this argument (PUBLISH).
    case one(at: Int)
    /// Every argument from this one on; patterns are matched literally against the user's channel rules.
    case all(from: Int, patterns: Bool = false)
}

/// Runs a command: reads its arguments from the context, writes its reply, or throws an error reply.
package typealias CommandHandler = @Sendable (inout CommandContext) throws(CommandError) -> Void

/// One command as declared in the command table. Immutable once the table is built.
package final class CommandSpec: @unchecked Sendable {
    /// Lowercase name (`get`, or `list` for CLIENT LIST).
    package let name: String
    /// `name`, or `container|name` for a subcommand.
    package let fullName: String
    /// Redis arity: N means exactly N arguments (name included), -N means at least N.
    package let arity: Int
    package let flags: CommandFlags
    /// Where the keys are (Redis 7.0's key specs, with how each key is used).
    package let keySpecs: [KeySpec]
    /// For specs flagged `variableFlags`: the flags a key gets from the call's arguments (SET … GET
    /// reads the old value).
    package let variableKeyFlags: (@Sendable (_ arguments: [ByteBuffer], _ key: KeyReference) -> KeySpecFlags)?
    /// For commands whose key specs cannot be followed (`unknown`): the keys of a call as the command's own
    /// finder gives them (Redis's getkeys_proc, SORT's `sortGetKeys`).
    package let keyFinder: (@Sendable (_ arguments: [ByteBuffer]) -> [KeyReference])?
    /// COMMAND INFO's first key, last key and step, derived from the key specs as Redis derives them.
    package let legacyKeyRange: (first: Int, last: Int, step: Int)
    /// Keys are not all in the legacy range (COMMAND INFO's `movablekeys`).
    package let hasMovableKeys: Bool
    /// Redis's command tips (`nondeterministic_output`, `request_policy:all_shards` …), for COMMAND INFO.
    package let tips: [String]
    /// ACL categories declared for the command where its group does not say them (Redis's
    /// `acl_categories`); nil: the group's.
    package let explicitCategories: [String]?
    /// The channel arguments ACL channel rules apply to; nil for commands without channels.
    package let channels: ChannelArguments?
    package let group: CommandGroup
    /// The Redis version that introduced the command.
    package let since: String
    /// One line for COMMAND DOCS and help.
    package let summary: String
    /// Redis's complexity note; empty where Redis has none (MONITOR).
    package let complexity: String
    /// The arguments after the name, in Redis's documentation syntax with annotations
    /// (`key condition=[NX | XX]@2.6.12`; see `CommandArgument`).
    package let syntax: String
    /// The documented arguments, parsed from `syntax` (empty if it does not parse; a unit test checks
    /// every command's).
    let arguments: [CommandArgument]
    /// Changes by version (COMMAND DOCS `history`), oldest first.
    package let history: [(version: String, change: String)]
    /// Deprecated in favour of another command (COMMAND DOCS `doc_flags`, `deprecated_since`, `replaced_by`).
    package let deprecation: Deprecation?
    /// A command for operators and tests rather than applications (COMMAND DOCS `doc_flags` `syscmd`).
    package let isSystemCommand: Bool
    /// Nil for a container whose subcommands do the work.
    package let handler: CommandHandler?
    /// Subcommands of a container (CLIENT, CONFIG …).
    package let subcommands: [CommandSpec]
    /// Index into the server's per-command statistics; assigned once when the table is built.
    package internal(set) var id = 0
    /// The container for a subcommand.
    package internal(set) weak var parent: CommandSpec?

    package init(
        _ name: String, arity: Int, flags: CommandFlags = [], keys: [KeySpec] = [],
        variableKeyFlags: (@Sendable (_ arguments: [ByteBuffer], _ key: KeyReference) -> KeySpecFlags)? = nil,
        keyFinder: (@Sendable (_ arguments: [ByteBuffer]) -> [KeyReference])? = nil,
        group: CommandGroup, since: String, summary: String, complexity: String = "O(1)", syntax: String = "",
        history: [(version: String, change: String)] = [], deprecated: Deprecation? = nil, tips: [String] = [], categories: [String]? = nil, channels: ChannelArguments? = nil, container: String? = nil,
        systemCommand: Bool = false, subcommands: [CommandSpec] = [], handler: CommandHandler?
    ) {
        self.name = name
        self.fullName = container.map { "\($0)|\(name)" } ?? name
        self.arity = arity
        self.flags = flags
        self.keySpecs = keys
        self.variableKeyFlags = variableKeyFlags
        self.keyFinder = keyFinder
        let legacy = KeyExtraction.legacyRange(keys)
        self.legacyKeyRange = (legacy.first, legacy.last, legacy.step)
        self.hasMovableKeys = legacy.movable
        self.tips = tips
        self.explicitCategories = categories
        self.channels = channels
        self.group = group
        self.since = since
        self.summary = summary
        self.complexity = complexity
        self.syntax = syntax
        self.arguments = CommandArgument.parse(syntax) ?? []
        self.history = history
        self.deprecation = deprecated
        self.isSystemCommand = systemCommand
        self.handler = handler
        self.subcommands = subcommands
    }


    /// Whether `count` arguments (name included) satisfy the arity.
    
    package func accepts(argumentCount count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }

    /// The ACL categories of this command (`read`, `fast` …, without the `@`), in Redis's order: the
    /// explicit ones (Redis's `acl_categories`; by default the one its group implies) and those its flags
    /// imply.
    package var aclCategories: [String] {
        var categories: Set<String> = Set(explicitCategories ?? group.impliedCategories)
        if flags.contains(.write) { categories.insert("write") }
        // As Redis's setImplicitACLCategories: read-only scripting commands (EVAL_RO) are not @read.
        if flags.contains(.readonly) && !categories.contains("scripting") { categories.insert("read") }
        if flags.contains(.admin) { categories.formUnion(["admin", "dangerous"]) }
        if flags.contains(.dangerous) { categories.insert("dangerous") }
        if flags.contains(.pubsub) { categories.insert("pubsub") }
        if flags.contains(.blocking) { categories.insert("blocking") }
        categories.insert(flags.contains(.fast) ? "fast" : "slow")
        return AccessControl.categories.filter(categories.contains)
    }
}

/// A deprecated command's replacement, for COMMAND DOCS.
package struct Deprecation: Sendable {
    package let since: String
    /// Markdown, as Redis writes it (`` `SET` with the `!GET` argument ``).
    package let replacedBy: String

    package init(since: String, replacedBy: String) {
        self.since = since
        self.replacedBy = replacedBy
    }
}
