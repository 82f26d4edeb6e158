#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NovaRESP

/// Which operations a key pattern grants: `~p` both, `%R~p` reads, `%W~p` writes.
struct KeyPermission: OptionSet, Sendable, Hashable {
    let rawValue: UInt8
    static let read = KeyPermission(rawValue: 1)
    static let write = KeyPermission(rawValue: 2)
    static let all: KeyPermission = [.read, .write]
}

/// One `~pattern` / `%R~pattern` / `%W~pattern` rule.
struct KeyPattern: Sendable, Equatable {
    let pattern: [UInt8]
    let permission: KeyPermission

    var description: String {
        let text = String(decoding: pattern, as: UTF8.self)
        switch permission {
        case .read: return "%R~" + text
        case .write: return "%W~" + text
        default: return "~" + text
        }
    }
}

/// A set of permissions: commands, keys and channels. A user has a root selector and, from Redis 7,
/// any number of extra selectors (`(…)` rules); a command is allowed when one selector allows all of it.
struct ACLSelector: Sendable, Equatable {
    /// Allowed commands, indexed by `CommandSpec.id` (subcommands have their own ids).
    var allowed: [Bool]
    /// Commands allowed only with a given first argument (`+select|0`), by id, lowercased.
    var firstArguments: [Int: [[UInt8]]] = [:]
    /// `+@all` / `allcommands` was the last reset and no command was removed since.
    var allCommands = false
    /// Whether the rules start from everything (`+@all`) or nothing (`-@all`).
    var startsFromAll = false
    /// The command rules applied since that start, compacted: ACL LIST prints them.
    var commandRules: [String] = []
    var allKeys = false
    var keyPatterns: [KeyPattern] = []
    var allChannels = false
    var channelPatterns: [[UInt8]] = []

    init(commandCount: Int) {
        allowed = Array(repeating: false, count: commandCount)
    }

    /// Grants everything (the default user's rules).
    var isUnrestricted: Bool { allCommands && allKeys && allChannels }

    /// The `commands` part of ACL LIST / GETUSER.
    var commandsDescription: String {
        ([startsFromAll ? "+@all" : "-@all"] + commandRules).joined(separator: " ")
    }

    /// The `keys` part ("" when no key is allowed).
    var keysDescription: String {
        allKeys ? "~*" : keyPatterns.map(\.description).joined(separator: " ")
    }

    /// The `channels` part ("" when no channel is allowed).
    var channelsDescription: String {
        allChannels ? "&*" : channelPatterns.map { "&" + String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
    }

    /// The rules as ACL LIST prints them inside a user line.
    var rulesDescription: String {
        var parts: [String] = []
        let keys = keysDescription
        if !keys.isEmpty { parts.append(keys) }
        if !allChannels { parts.append("resetchannels") }
        let channels = channelsDescription
        if !channels.isEmpty { parts.append(channels) }
        parts.append(commandsDescription)
        return parts.joined(separator: " ")
    }
}

/// Why a command, key, channel or password was refused (ACL LOG `reason`; larger values win when
/// several selectors refuse, as in Redis).
enum ACLDenialReason: Int, Sendable, Comparable {
    case command = 1, key, auth, channel

    static func < (a: ACLDenialReason, b: ACLDenialReason) -> Bool { a.rawValue < b.rawValue }

    var name: String {
        switch self {
        case .command: return "command"
        case .key: return "key"
        case .auth: return "auth"
        case .channel: return "channel"
        }
    }
}

/// A refusal: the reason and the object refused (command name, key or channel).
struct ACLDenial: Sendable, Equatable {
    let reason: ACLDenialReason
    let object: [UInt8]

    /// The NOPERM error a client gets.
    func error(_ spec: CommandSpec) -> CommandError {
        switch reason {
        case .command, .auth: return CommandError("NOPERM this user has no permissions to run the '\(spec.fullName)' command")
        case .key: return CommandError("NOPERM this user has no permissions to access one of the keys used as arguments")
        case .channel: return CommandError("NOPERM this user has no permissions to access one of the channels used as arguments")
        }
    }

    /// ACL DRYRUN's explanation.
    var dryRunText: String {
        let text = String(decoding: object, as: UTF8.self)
        switch reason {
        case .command, .auth: return "This user has no permissions to run the '\(text)' command"
        case .key: return "This user has no permissions to access the '\(text)' key"
        case .channel: return "This user has no permissions to access the '\(text)' channel"
        }
    }
}

/// An ACL user. Connections keep a reference, so rule changes apply to them at once; the fields are
/// read and written only under the server lock.
final class ACLUser: @unchecked Sendable {
    let name: String
    var enabled = false
    var noPassword = false
    /// `sanitize-payload` / `skip-sanitize-payload` as given (no effect here: RESTORE is not offered).
    var sanitizePayload: String?
    /// Lowercase hex SHA-256 of each password, in the order they were added.
    var passwordHashes: [String] = []
    var root: ACLSelector
    var selectors: [ACLSelector] = []
    /// Cached `root.isUnrestricted && selectors.isEmpty`: dispatch skips every check for such users.
    private(set) var isUnrestricted = false

    init(name: String, commandCount: Int) {
        self.name = name
        self.root = ACLSelector(commandCount: commandCount)
    }

    func copy() -> ACLUser {
        let user = ACLUser(name: name, commandCount: 0)
        user.assign(self)
        return user
    }

    /// Takes over every rule of `other` (SETUSER applies rules to a copy, then commits).
    func assign(_ other: ACLUser) {
        enabled = other.enabled
        noPassword = other.noPassword
        sanitizePayload = other.sanitizePayload
        passwordHashes = other.passwordHashes
        root = other.root
        selectors = other.selectors
        refresh()
    }

    func refresh() { isUnrestricted = root.isUnrestricted && selectors.isEmpty }

    /// The flags GETUSER lists.
    var flags: [String] {
        var result = [enabled ? "on" : "off"]
        if noPassword { result.append("nopass") }
        if let sanitizePayload { result.append(sanitizePayload) }
        return result
    }

    /// The ACL LIST / ACL file line.
    var line: String {
        var parts = ["user", name] + flags
        parts += passwordHashes.map { "#" + $0 }
        parts.append(root.rulesDescription)
        parts += selectors.map { "(" + $0.rulesDescription + ")" }
        return parts.joined(separator: " ")
    }

    /// Whether `password` opens this user; every stored hash is compared in full, in constant time.
    func accepts(password: some Collection<UInt8>) -> Bool {
        guard enabled else { return false }
        if noPassword { return true }
        let candidate = Array(SHA256.hex(password).utf8)
        var matched = false
        for hash in passwordHashes {
            if AccessControl.constantTimeEqual(candidate, Array(hash.utf8)) { matched = true }
        }
        return matched
    }
}

/// The ACL: users, their rules, permission checks and the ACL LOG. Guarded by the server lock.
final class AccessControl: @unchecked Sendable {
    /// Redis's category names, in ACL CAT's order.
    static let categories = [
        "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog",
        "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection",
        "transaction", "scripting",
    ]

    let commands: CommandTable
    private(set) var users: [String: ACLUser] = [:]
    let defaultUser: ACLUser
    /// `acl-pubsub-default`: whether new users start with every channel.
    var channelsAllowedByDefault = false
    var log = ACLLog()

    init(commands: CommandTable) {
        self.commands = commands
        defaultUser = ACLUser(name: "default", commandCount: commands.all.count)
        resetDefaultUser()
        users["default"] = defaultUser
    }

    /// `user default on nopass ~* &* +@all`.
    func resetDefaultUser() {
        let fresh = ACLUser(name: "default", commandCount: commands.all.count)
        for rule in ["on", "nopass", "allkeys", "allchannels", "allcommands"] {
            _ = try? apply(rule, to: fresh)
        }
        defaultUser.assign(fresh)
    }

    /// Users sorted by name, as Redis lists them.
    var sortedUsers: [ACLUser] { users.values.sorted { $0.name < $1.name } }

    func user(named name: String) -> ACLUser? { users[name] }

    /// `requirepass`: the default user gets exactly this password, or `nopass` when empty.
    func setDefaultPassword(_ password: String?) {
        _ = try? apply("resetpass", to: defaultUser)
        if let password, !password.isEmpty {
            _ = try? apply(">" + password, to: defaultUser)
        } else {
            _ = try? apply("nopass", to: defaultUser)
        }
        defaultUser.refresh()
    }

    // MARK: SETUSER

    /// An error in one rule: Redis reports `Error in ACL SETUSER modifier '<rule>': <message>`.
    struct RuleError: Error, Sendable {
        let rule: String
        let message: String
    }

    static func validateName(_ name: String) -> Bool {
        !name.isEmpty && !name.utf8.contains(where: { $0 == 32 || $0 == 0 })
    }

    /// ACL SETUSER: creates the user if needed and applies `rules` in order, all or nothing.
    /// Returns the user (new or updated).
    @discardableResult
    func setUser(_ name: String, rules: [String]) throws(RuleError) -> ACLUser {
        let existing = users[name]
        let working = existing?.copy() ?? newUser(name)
        for rule in try Self.groupSelectors(rules) {
            try apply(rule, to: working)
        }
        working.refresh()
        if let existing {
            existing.assign(working)
            return existing
        }
        users[name] = working
        return working
    }

    private func newUser(_ name: String) -> ACLUser {
        let user = ACLUser(name: name, commandCount: commands.all.count)
        user.root.allChannels = channelsAllowedByDefault
        return user
    }

    /// Joins arguments that form one `(…)` selector across spaces, as Redis does.
    static func groupSelectors(_ rules: [String]) throws(RuleError) -> [String] {
        var result: [String] = []
        var open: String?
        for rule in rules {
            if var partial = open {
                partial += " " + rule
                if rule.hasSuffix(")") {
                    result.append(partial)
                    open = nil
                } else {
                    open = partial
                }
            } else if rule.hasPrefix("(") && !rule.hasSuffix(")") {
                open = rule
            } else {
                result.append(rule)
            }
        }
        if let open {
            throw RuleError(rule: open, message: "Unmatched parenthesis in acl selector starting at '\(open)'.")
        }
        return result
    }

    /// Applies one rule to `user` (not yet committed).
    func apply(_ rule: String, to user: ACLUser) throws(RuleError) {
        func fail(_ message: String) -> RuleError { RuleError(rule: rule, message: message) }
        let lowered = rule.lowercased()
        switch lowered {
        case "on": user.enabled = true
        case "off": user.enabled = false
        case "nopass":
            user.noPassword = true
            user.passwordHashes = []
        case "resetpass":
            user.noPassword = false
            user.passwordHashes = []
        case "sanitize-payload", "skip-sanitize-payload": user.sanitizePayload = lowered
        case "clearselectors": user.selectors = []
        case "reset":
            for step in ["resetpass", "resetkeys", "resetchannels", "off", "clearselectors", "-@all"] {
                try apply(step, to: user)
            }
            if channelsAllowedByDefault { try apply("allchannels", to: user) }
            user.sanitizePayload = "sanitize-payload"
        default:
            if rule.hasPrefix(">") {
                let hash = SHA256.hex(rule.utf8.dropFirst())
                if !user.passwordHashes.contains(hash) { user.passwordHashes.append(hash) }
                user.noPassword = false
            } else if rule.hasPrefix("#") {
                let hash = String(rule.dropFirst())
                guard Self.isPasswordHash(hash) else {
                    throw fail("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
                }
                if !user.passwordHashes.contains(hash) { user.passwordHashes.append(hash) }
                user.noPassword = false
            } else if rule.hasPrefix("<") || rule.hasPrefix("!") {
                let hash = rule.hasPrefix("<") ? SHA256.hex(rule.utf8.dropFirst()) : String(rule.dropFirst())
                if rule.hasPrefix("!") && !Self.isPasswordHash(hash) {
                    throw fail("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
                }
                guard let index = user.passwordHashes.firstIndex(of: hash) else {
                    throw fail("The password you are trying to remove from the user does not exist")
                }
                user.passwordHashes.remove(at: index)
            } else if rule.hasPrefix("(") && rule.hasSuffix(")") {
                var selector = ACLSelector(commandCount: commands.all.count)
                selector.allChannels = channelsAllowedByDefault
                let inner = rule.dropFirst().dropLast().split(separator: " ").map(String.init)
                for part in inner {
                    do {
                        try applySelectorRule(part, to: &selector)
                    } catch {
                        throw fail(error.message)
                    }
                }
                user.selectors.append(selector)
            } else {
                do {
                    try applySelectorRule(rule, to: &user.root)
                } catch {
                    throw fail(error.message)
                }
            }
        }
    }

    static func isPasswordHash(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    private struct SelectorRuleError: Error {
        let message: String
    }

    private static let syntaxError = SelectorRuleError(message: "Syntax error")

    /// Applies a key, channel or command rule to one selector.
    private func applySelectorRule(_ rule: String, to selector: inout ACLSelector) throws(SelectorRuleError) {
        let lowered = rule.lowercased()
        switch lowered {
        case "allkeys":
            selector.allKeys = true
            selector.keyPatterns = []
            return
        case "resetkeys":
            selector.allKeys = false
            selector.keyPatterns = []
            return
        case "allchannels":
            selector.allChannels = true
            selector.channelPatterns = []
            return
        case "resetchannels":
            selector.allChannels = false
            selector.channelPatterns = []
            return
        case "allcommands", "+@all":
            setAllCommands(&selector, true)
            return
        case "nocommands", "-@all":
            setAllCommands(&selector, false)
            return
        default:
            break
        }
        let bytes = Array(rule.utf8)
        if bytes.first == UInt8(ascii: "~") || bytes.first == UInt8(ascii: "%") {
            try addKeyPattern(bytes, to: &selector)
        } else if bytes.first == UInt8(ascii: "&") {
            if selector.allChannels {
                throw SelectorRuleError(message: "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")
            }
            let pattern = Array(bytes.dropFirst())
            if pattern == [UInt8(ascii: "*")] {
                selector.allChannels = true
                selector.channelPatterns = []
            } else if !selector.channelPatterns.contains(pattern) {
                selector.channelPatterns.append(pattern)
            }
        } else if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") {
            try applyCommandRule(rule, allow: bytes.first == UInt8(ascii: "+"), to: &selector)
        } else {
            throw Self.syntaxError
        }
    }

    private func addKeyPattern(_ bytes: [UInt8], to selector: inout ACLSelector) throws(SelectorRuleError) {
        if selector.allKeys {
            throw SelectorRuleError(message: "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")
        }
        var permission: KeyPermission = .all
        var patternStart = 1
        if bytes[0] == UInt8(ascii: "%") {
            permission = []
            var index = 1
            while index < bytes.count && bytes[index] != UInt8(ascii: "~") {
                switch bytes[index] {
                case UInt8(ascii: "R"), UInt8(ascii: "r"): permission.insert(.read)
                case UInt8(ascii: "W"), UInt8(ascii: "w"): permission.insert(.write)
                default: throw Self.syntaxError
                }
                index += 1
            }
            guard index < bytes.count, !permission.isEmpty else { throw Self.syntaxError }
            patternStart = index + 1
        }
        let pattern = Array(bytes[patternStart...])
        if pattern == [UInt8(ascii: "*")] && permission == .all {
            selector.allKeys = true
            selector.keyPatterns = []
            return
        }
        let entry = KeyPattern(pattern: pattern, permission: permission)
        if !selector.keyPatterns.contains(entry) { selector.keyPatterns.append(entry) }
    }

    private func setAllCommands(_ selector: inout ACLSelector, _ allow: Bool) {
        for index in selector.allowed.indices { selector.allowed[index] = allow }
        selector.allCommands = allow
        selector.startsFromAll = allow
        selector.commandRules = []
        selector.firstArguments = [:]
    }

    /// `+cmd`, `-cmd`, `+container|sub`, `+cmd|firstarg`, `+@category`, `-@category`.
    private func applyCommandRule(_ rule: String, allow: Bool, to selector: inout ACLSelector) throws(SelectorRuleError) {
        let unknown = SelectorRuleError(message: "Unknown command or category name in ACL")
        let target = String(rule.dropFirst()).lowercased()
        if target.hasPrefix("@") {
            let category = String(target.dropFirst())
            guard Self.categories.contains(category) else { throw unknown }
            for spec in commands.all where spec.handler != nil && spec.aclCategories.contains(category) {
                selector.allowed[spec.id] = allow
                if !allow { selector.firstArguments[spec.id] = nil }
            }
            // A container follows its subcommands: allowed when any is.
            for spec in commands.commands where !spec.subcommands.isEmpty {
                selector.allowed[spec.id] = spec.subcommands.contains { selector.allowed[$0.id] }
            }
            if !allow { selector.allCommands = false }
            selector.commandRules.append((allow ? "+@" : "-@") + category)
            return
        }
        let parts = target.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let spec = commands.lookup(parts[0]) else { throw unknown }
        if parts.count == 2 {
            if let sub = spec.subcommands.first(where: { $0.name == parts[1] }) {
                selector.allowed[sub.id] = allow
                selector.allowed[spec.id] = spec.subcommands.contains { selector.allowed[$0.id] }
            } else if spec.subcommands.isEmpty && !parts[1].isEmpty {
                // First-argument rule (deprecated in Redis 7 but accepted): only additions.
                guard allow else { throw SelectorRuleError(message: "Allowing first-arg of a subcommand is not supported") }
                if !selector.allowed[spec.id] {
                    let argument = Array(parts[1].utf8)
                    if !(selector.firstArguments[spec.id] ?? []).contains(argument) {
                        selector.firstArguments[spec.id, default: []].append(argument)
                    }
                }
            } else {
                throw unknown
            }
        } else {
            selector.allowed[spec.id] = allow
            selector.firstArguments[spec.id] = nil
            for sub in spec.subcommands {
                selector.allowed[sub.id] = allow
            }
            // An earlier rule for this command (or its subcommands) says nothing more.
            selector.commandRules.removeAll { existing in
                let name = existing.dropFirst()
                return name == target || name.hasPrefix(target + "|")
            }
        }
        if !allow { selector.allCommands = false }
        let text = (allow ? "+" : "-") + target
        selector.commandRules.removeAll { $0 == text || (parts.count == 2 && $0.dropFirst() == target) }
        selector.commandRules.append(text)
    }

    // MARK: Checks

    /// Whether `user` may run `spec` with `args` (name first); nil when allowed.
    func check(_ user: ACLUser, _ spec: CommandSpec, _ args: Arguments) -> ACLDenial? {
        if user.isUnrestricted { return nil }
        var worst: ACLDenial?
        for selector in [user.root] + user.selectors {
            guard let denial = check(selector, spec, args) else { return nil }
            if worst == nil || denial.reason > worst!.reason { worst = denial }
        }
        return worst
    }

    private func check(_ selector: ACLSelector, _ spec: CommandSpec, _ args: Arguments) -> ACLDenial? {
        // Like Redis, commands that run before authentication (AUTH, HELLO, QUIT, RESET) are never refused.
        if !selector.allCommands && !selector.allowed[spec.id] && !spec.flags.contains(.noAuth) {
            let allowedFirst = args.count > 1 && (selector.firstArguments[spec.id] ?? []).contains { argument in
                Array(args.string(1).lowercased().utf8) == argument
            }
            if !allowedFirst { return ACLDenial(reason: .command, object: Array(spec.fullName.utf8)) }
        }
        if !selector.allKeys {
            let arguments = (0..<args.count).map { args[$0] }
            for reference in spec.keyReferences(arguments) {
                let key = Array(args[reference.index].readableBytesView)
                let needed = reference.flags.aclPermission
                let granted = selector.keyPatterns.contains { pattern in
                    pattern.permission.isSuperset(of: needed) && RedisGlob.matches(pattern.pattern, key)
                }
                if !granted { return ACLDenial(reason: .key, object: key) }
            }
        }
        if !selector.allChannels, let channels = spec.channels {
            let (first, end, isPattern): (Int, Int, Bool)
            switch channels {
            case .one(let index): (first, end, isPattern) = (index, min(args.count, index + 1), false)
            case let .all(index, patterns): (first, end, isPattern) = (index, args.count, patterns)
            }
            var index = first
            while index < end {
                let channel = Array(args[index].readableBytesView)
                let granted = selector.channelPatterns.contains { pattern in
                    isPattern ? pattern == channel : RedisGlob.matches(pattern, channel)
                }
                if !granted { return ACLDenial(reason: .channel, object: channel) }
                index += 1
            }
        }
        return nil
    }

    /// Whether `user` may subscribe to `channel` (a pattern for PSUBSCRIBE, matched literally), by any of
    /// its selectors.
    func allowsChannel(_ user: ACLUser, _ channel: [UInt8], isPattern: Bool) -> Bool {
        ([user.root] + user.selectors).contains { selector in
            selector.allChannels || selector.channelPatterns.contains { pattern in
                isPattern ? pattern == channel : RedisGlob.matches(pattern, channel)
            }
        }
    }

    // MARK: Files

    /// Parses ACL-file text (`user <name> <rules…>` lines) into a fresh set of users; throws the first
    /// problem as `<file>:<line>: <message>`.
    func parseUsers(_ text: String, source: String) throws(RuleError) -> [String: ACLUser] {
        let staging = AccessControl(commands: commands)
        staging.channelsAllowedByDefault = channelsAllowedByDefault
        staging.users = [:]
        var seen: Set<String> = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: " \t\r")
            if line.isEmpty || line.hasPrefix("#") { continue }
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            func fail(_ message: String) -> RuleError {
                RuleError(rule: "", message: "\(source):\(index + 1): \(message)")
            }
            guard words.count >= 2, words[0] == "user" else {
                throw fail("line should start with user keyword")
            }
            guard Self.validateName(words[1]) else { throw fail("Usernames can't contain spaces or null characters") }
            guard seen.insert(words[1]).inserted else { throw fail("Duplicate user '\(words[1])' found") }
            do {
                try staging.setUser(words[1], rules: Array(words.dropFirst(2)))
            } catch {
                throw fail("Error in applying operation '\(error.rule)': \(error.message)")
            }
        }
        return staging.users
    }

    /// Replaces every user with `loaded`. The default user object is kept (connections reference it) and
    /// reset unless `loaded` defines it. Returns the users that no longer exist, whose clients must go.
    func replaceUsers(_ loaded: [String: ACLUser]) -> [ACLUser] {
        var removed: [ACLUser] = []
        for (name, user) in users where name != "default" {
            if let replacement = loaded[name] { user.assign(replacement) } else { removed.append(user) }
        }
        var next: [String: ACLUser] = ["default": defaultUser]
        if let newDefault = loaded["default"] { defaultUser.assign(newDefault) } else { resetDefaultUser() }
        for (name, user) in loaded where name != "default" {
            next[name] = users[name] ?? user
        }
        users = next
        return removed
    }

    func deleteUser(_ name: String) -> ACLUser? {
        users.removeValue(forKey: name)
    }

    /// Every user as ACL file text.
    var fileText: String { sortedUsers.map(\.line).joined(separator: "\n") + "\n" }

    /// Compares secrets without an early exit, so timing does not reveal how much of a guess was right.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}

/// ACL LOG: recent refusals, newest first, with repeats within a minute merged into one entry.
struct ACLLog: Sendable {
    struct Entry: Sendable {
        var count: Int
        let reason: ACLDenialReason
        let context: String
        let object: [UInt8]
        let username: String
        var createdAt: Int64
        var clientInfo: String
        /// The client `clientInfo` describes and when it was taken.
        var clientID: UInt64
        var clientInfoTime: Int64
    }

    private(set) var entries: [Entry] = []

    /// Records a refusal. `clientInfo` (a CLIENT LIST line, costly to build) is taken for a new entry,
    /// and for a repeat only when another client or at least a second has passed: a password-guessing
    /// client must not make each refusal expensive for everyone else.
    mutating func add(
        reason: ACLDenialReason, context: String, object: [UInt8], username: String, clientID: UInt64,
        clientInfo: () -> String, now: Int64, maxLength: Int
    ) {
        if let index = entries.firstIndex(where: {
            $0.reason == reason && $0.context == context && $0.object == object && $0.username == username
                && now - $0.createdAt <= 60_000
        }) {
            var entry = entries.remove(at: index)
            entry.count += 1
            entry.createdAt = now
            if entry.clientID != clientID || now - entry.clientInfoTime >= 1000 {
                entry.clientInfo = clientInfo()
                entry.clientID = clientID
                entry.clientInfoTime = now
            }
            entries.insert(entry, at: 0)
        } else {
            entries.insert(Entry(count: 1, reason: reason, context: context, object: object, username: username,
                                 createdAt: now, clientInfo: clientInfo(), clientID: clientID, clientInfoTime: now), at: 0)
        }
        if entries.count > maxLength { entries.removeLast(entries.count - maxLength) }
    }

    mutating func reset() { entries = [] }
}
