import NIOCore
import NovaEngine
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
