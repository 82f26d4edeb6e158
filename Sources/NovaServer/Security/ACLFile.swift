import NIOCore
import NovaRESP

/// The ACL file (`aclfile`): parsing users from its text, replacing the users, and writing it.
extension AccessControl {
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

}
