import NIOCore
import NovaRESP

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

/// Permission checks: whether a user may run a command on its keys and channels.
extension AccessControl {
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

}
