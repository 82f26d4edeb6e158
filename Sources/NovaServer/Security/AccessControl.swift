import NIOCore
import NovaRESP

/// The ACL: users, their rules, permission checks and the ACL LOG. Guarded by the server lock.
final class AccessControl: @unchecked Sendable {
    /// Redis's category names, in ACL CAT's order.
    static let categories = [
        "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap", "hyperloglog",
        "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous", "connection",
        "transaction", "scripting",
    ]

    let commands: CommandTable
    /// By name; changed only by SETUSER (ACLRules.swift), DELUSER and ACL LOAD (ACLFile.swift).
    var users: [String: ACLUser] = [:]
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
