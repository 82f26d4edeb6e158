#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NovaRESP

/// The ACL wired into the server: the ACL LOG, authentication, loading users, and the connections a
/// change of users closes. Lock held.
extension ServerCore {
    /// The configured `aclfile`, absolute; nil when users live in the configuration file.
    var aclFilePath: String? {
        guard let path = config.value("aclfile"), !path.isEmpty else { return nil }
        return ConfigStore.absolute(path)
    }

    /// Records a refused command in the ACL LOG (lock held).
    func logDenial(_ denial: ACLDenial, client: ClientState, username: String? = nil) {
        acl.log.add(
            reason: denial.reason, context: client.inTransaction ? "multi" : "toplevel", object: denial.object,
            username: username ?? client.user, clientID: client.id,
            clientInfo: { client.infoLine(now: self.keyspace.now) }, now: keyspace.now,
            maxLength: Int(config.value("acllog-max-len") ?? "") ?? 128)
    }

    /// Records a failed AUTH / HELLO AUTH under the name that was tried (lock held).
    func logFailedAuthentication(username: String, client: ClientState) {
        logDenial(ACLDenial(reason: .auth, object: Array("AUTH".utf8)), client: client, username: username)
    }

    /// Closes every connection authenticated as `user` (deleted or reloaded away); the caller's own
    /// connection is closed after its reply.
    func disconnectClients(of user: ACLUser, caller: ClientState?) {
        for client in clients.all where client.aclUser === user {
            if client === caller { client.closeAfterReply = true } else { pendingActions.append(.close(client)) }
        }
    }

    /// Like Redis 7.0, closes the connections of `user` subscribed to a channel or pattern the user may no
    /// longer use (after ACL SETUSER or ACL LOAD).
    func disconnectSubscribersWithoutPermission(_ user: ACLUser, caller: ClientState?) {
        for client in clients.all where client.aclUser === user && client.isSubscriber {
            let allowed = client.channels.allSatisfy { channel in
                channel.withBytes { acl.allowsChannel(user, Array($0), isPattern: false) }
            } && client.patterns.allSatisfy { pattern in
                pattern.withBytes { acl.allowsChannel(user, Array($0), isPattern: true) }
            } && client.shardChannels.allSatisfy { channel in
                channel.withBytes { acl.allowsChannel(user, Array($0), isPattern: false) }
            }
            if allowed { continue }
            if client === caller { client.closeAfterReply = true } else { pendingActions.append(.close(client)) }
        }
    }

    /// Checks `user` / `password` against the ACL; the user on success.
    func authenticate(username: String, password: ByteBuffer) -> ACLUser? {
        guard let user = acl.user(named: username), user.accepts(password: password.readableBytesView) else { return nil }
        return user
    }

    /// Applies the `user` lines of the configuration file or the `aclfile` at start-up. Returns an error
    /// message when they are invalid (the server must not start with half its users); a bad `user` line
    /// is reported as a configuration error naming its line.
    package func loadUsersAtStartup() -> String? {
        withLock { () -> String? in
            let directives = config.userDirectives
            if aclFilePath != nil && !directives.isEmpty {
                return "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both."
            }
            if aclFilePath != nil { return loadACLFile() }
            let locations = config.userDirectiveLocations
            for (index, words) in directives.enumerated() {
                func located(_ message: String) -> String {
                    guard index < locations.count else { return message }
                    let location = locations[index]
                    return ConfigFileError(line: location.line, text: location.text, message: message, isFlag: location.isFlag).description
                }
                guard let name = words.first, AccessControl.validateName(name) else {
                    return located("Error in user declaration '\(words.first ?? "")': Usernames can't contain spaces or null characters")
                }
                do throws(AccessControl.RuleError) {
                    // Like Redis, each line describes the whole user: it starts from `reset`.
                    try acl.setUser(name, rules: ["reset"] + Array(words.dropFirst()))
                } catch {
                    return located("Error in user declaration '\(name)': Error in applying operation '\(error.rule)': \(error.message)")
                }
            }
            return nil
        }
    }

    /// ACL LOAD (and start-up with `aclfile`): all users from the file or none; clients of users that
    /// disappeared are disconnected. Lock held. Returns an error message.
    func loadACLFile() -> String? {
        guard let path = aclFilePath else { return nil }
        guard let text = ConfigStore.readFile(path) else {
            return "Error loading ACLs, opening file '\(path)': \(String(cString: strerror(errno)))"
        }
        do throws(AccessControl.RuleError) {
            let loaded = try acl.parseUsers(text, source: path)
            for user in acl.replaceUsers(loaded) { disconnectClients(of: user, caller: currentClient) }
            for user in acl.users.values { disconnectSubscribersWithoutPermission(user, caller: currentClient) }
            return nil
        } catch {
            return error.message
        }
    }
}
