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
