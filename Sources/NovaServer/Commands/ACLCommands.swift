#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NovaRESP

/// ACL SETUSER / DELUSER / LIST / USERS / WHOAMI / GETUSER / CAT / LOG / SAVE / LOAD / DRYRUN / GENPASS.
enum ACLCommands {
    static func setuser(_ ctx: inout CommandContext) throws(CommandError) {
        let name = ctx.args.string(2)
        guard AccessControl.validateName(name) else {
            throw CommandError("ERR Usernames can't contain spaces or null characters")
        }
        let rules = (3..<ctx.args.count).map { ctx.args.string($0) }
        let user: ACLUser
        do {
            user = try ctx.server.acl.setUser(name, rules: rules)
        } catch {
            throw CommandError("ERR Error in ACL SETUSER modifier '\(error.rule)': \(error.message)")
        }
        ctx.server.disconnectSubscribersWithoutPermission(user, caller: ctx.client)
        ctx.reply.ok()
    }

    static func deluser(_ ctx: inout CommandContext) throws(CommandError) {
        let names = (2..<ctx.args.count).map { ctx.args.string($0) }
        if names.contains("default") { throw CommandError("ERR The 'default' user cannot be removed") }
        var deleted = 0
        for name in names {
            guard let user = ctx.server.acl.deleteUser(name) else { continue }
            deleted += 1
            ctx.server.disconnectClients(of: user, caller: ctx.client)
        }
        ctx.reply.integer(Int64(deleted))
    }

    static func list(_ ctx: inout CommandContext) throws(CommandError) {
        let users = ctx.server.acl.sortedUsers
        ctx.reply.array(users.count)
        for user in users { ctx.reply.bulk(user.line) }
    }

    static func users(_ ctx: inout CommandContext) throws(CommandError) {
        let users = ctx.server.acl.sortedUsers
        ctx.reply.array(users.count)
        for user in users { ctx.reply.bulk(user.name) }
    }

    static func whoami(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.bulk(ctx.client.user)
    }

    static func getuser(_ ctx: inout CommandContext) throws(CommandError) {
        guard let user = ctx.server.acl.user(named: ctx.args.string(2)) else {
            ctx.reply.null()
            return
        }
        ctx.reply.map(6)
        ctx.reply.bulk("flags")
        ctx.reply.array(user.flags.count)
        for flag in user.flags { ctx.reply.bulk(flag) }
        ctx.reply.bulk("passwords")
        ctx.reply.array(user.passwordHashes.count)
        for hash in user.passwordHashes { ctx.reply.bulk(hash) }
        writeSelector(&ctx, user.root)
        ctx.reply.bulk("selectors")
        ctx.reply.array(user.selectors.count)
        for selector in user.selectors {
            ctx.reply.map(3)
            writeSelector(&ctx, selector)
        }
    }

    private static func writeSelector(_ ctx: inout CommandContext, _ selector: ACLSelector) {
        ctx.reply.bulk("commands")
        ctx.reply.bulk(selector.commandsDescription)
        ctx.reply.bulk("keys")
        ctx.reply.bulk(selector.keysDescription)
        ctx.reply.bulk("channels")
        ctx.reply.bulk(selector.channelsDescription)
    }

    static func cat(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 3 { throw .arity(ctx.spec.fullName) }
        guard ctx.args.count == 3 else {
            ctx.reply.array(AccessControl.categories.count)
            for category in AccessControl.categories { ctx.reply.bulk(category) }
            return
        }
        let category = ctx.args.lowercased(2)
        guard AccessControl.categories.contains(category) else {
            throw CommandError("ERR Unknown category '\(raw: ctx.args.printable(2))'")
        }
        let names = ctx.server.commands.all
            .filter { $0.handler != nil && $0.aclCategories.contains(category) }
            .map(\.fullName)
        ctx.reply.array(names.count)
        for name in names { ctx.reply.bulk(name) }
    }

    static func log(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 3 { throw .arity(ctx.spec.fullName) }
        var count = 10  // Redis's default
        if ctx.args.count == 3 {
            if ctx.args.isKeyword(2, "reset") {
                ctx.server.acl.log.reset()
                ctx.reply.ok()
                return
            }
            count = max(0, Int(try ctx.args.integer(2)))
        }
        let entries = ctx.server.acl.log.entries.prefix(count)
        ctx.reply.array(entries.count)
        for entry in entries {
            ctx.reply.map(7)
            ctx.reply.bulk("count")
            ctx.reply.integer(Int64(entry.count))
            ctx.reply.bulk("reason")
            ctx.reply.bulk(entry.reason.name)
            ctx.reply.bulk("context")
            ctx.reply.bulk(entry.context)
            ctx.reply.bulk("object")
            ctx.reply.bulk(entry.object)
            ctx.reply.bulk("username")
            ctx.reply.bulk(entry.username)
            ctx.reply.bulk("age-seconds")
            ctx.reply.double(Double(max(0, ctx.now - entry.createdAt)) / 1000)
            ctx.reply.bulk("client-info")
            ctx.reply.bulk(entry.clientInfo)
        }
    }

    static let noFileMessage = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."

    static func save(_ ctx: inout CommandContext) throws(CommandError) {
        guard let path = ctx.server.aclFilePath else { throw CommandError(noFileMessage) }
        let temporary = path + ".tmp-\(getpid())"
        guard ConfigStore.writeFile(temporary, ctx.server.acl.fileText), rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CommandError("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
                .logged(ctx.server, "Saving the ACL file \(path) failed: \(reason)")
        }
        ctx.reply.ok()
    }

    static func load(_ ctx: inout CommandContext) throws(CommandError) {
        guard ctx.server.aclFilePath != nil else { throw CommandError(noFileMessage) }
        if let message = ctx.server.loadACLFile() { throw CommandError("ERR \(message)") }
        ctx.reply.ok()
    }

    static func dryrun(_ ctx: inout CommandContext) throws(CommandError) {
        let name = ctx.args.string(2)
        guard let user = ctx.server.acl.user(named: name) else { throw CommandError("ERR User '\(name)' not found") }
        let commandArgs = Arguments((3..<ctx.args.count).map { ctx.args[$0] })
        guard var spec = ctx.server.commands.lookup(commandArgs[0]) else {
            throw CommandError("ERR Command '\(raw: ctx.args.printable(3))' not found")
        }
        if !spec.subcommands.isEmpty && commandArgs.count >= 2,
           let sub = ctx.server.commands.subcommand(of: spec, commandArgs[1]) {
            spec = sub
        }
        guard spec.accepts(argumentCount: commandArgs.count) else { throw .arity(spec.fullName) }
        if let denial = ctx.server.acl.check(user, spec, commandArgs) {
            ctx.reply.bulk(denial.dryRunText)
        } else {
            ctx.reply.ok()
        }
    }

    static func genpass(_ ctx: inout CommandContext) throws(CommandError) {
        var bits = 256
        if ctx.args.count > 3 { throw .arity(ctx.spec.fullName) }
        if ctx.args.count == 3 {
            let requested = try ctx.args.integer(2)
            guard requested > 0 && requested <= 4096 else {
                throw CommandError("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
            }
            bits = Int(requested)
        }
        let characters = (bits + 3) / 4
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        let text = (0..<characters).map { _ in digits[Int.random(in: 0..<16, using: &generator)] }
        ctx.reply.bulk(text)
    }

    static func help(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "ACL", [
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ])
    }
}

extension CommandError {
    /// Logs `detail` (which may name paths, never secrets) and returns the error unchanged.
    func logged(_ server: ServerCore, _ detail: String) -> CommandError {
        server.logger.warning("\(detail)")
        return self
    }
}

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
    /// message when they are invalid (the server must not start with half its users).
    package func loadUsersAtStartup() -> String? {
        withLock { () -> String? in
            let directives = config.userDirectives
            if aclFilePath != nil && !directives.isEmpty {
                return "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both."
            }
            if aclFilePath != nil { return loadACLFile() }
            for words in directives {
                guard let name = words.first, AccessControl.validateName(name) else {
                    return "Error in user declaration '\(words.first ?? "")': Usernames can't contain spaces or null characters"
                }
                do throws(AccessControl.RuleError) {
                    // Like Redis, each line describes the whole user: it starts from `reset`.
                    try acl.setUser(name, rules: ["reset"] + Array(words.dropFirst()))
                } catch {
                    return "Error in user declaration '\(name)': Error in applying operation '\(error.rule)': \(error.message)"
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
