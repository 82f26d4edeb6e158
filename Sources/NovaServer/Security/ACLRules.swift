import NIOCore
import NovaEngine
import NovaRESP

/// ACL SETUSER's rules (and the ACL file's and `user` directives'): parsing and applying them to a user.
extension AccessControl {
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

}
