import NIOCore
import NovaEngine
import NovaRESP
import NovaScripting

/// One script being run for a client: the `ScriptHost` its `redis.call`s go through. Commands run as a
/// separate client (Redis's "lua" client) with the caller's user and database, after the checks Redis
/// makes for scripts (no-script commands, ACL, read-only scripts, OOM, MISCONF).
final class ScriptRun: ScriptHost {
    unowned let server: ServerCore
    let caller: ClientState
    let client: ClientState
    let readOnly: Bool
    /// The command that runs the script (EVAL and friends) and its arguments: the keys it declares.
    unowned(unsafe) let callerSpec: CommandSpec
    let callerArguments: Arguments
    /// Whether each deny-OOM command is checked against `maxmemory` (scripts without a shebang; those
    /// with one were checked before they started, or declared allow-oom).
    let checksMemory: Bool
    /// Whether a write command ran (OOM is only checked until then, as Redis does for scripts).
    private(set) var wrote = false

    init(
        server: ServerCore, caller: ClientState, client: ClientState, readOnly: Bool, checksMemory: Bool,
        callerSpec: CommandSpec, callerArguments: Arguments
    ) {
        self.server = server
        self.callerSpec = callerSpec
        self.callerArguments = callerArguments
        self.checksMemory = checksMemory
        self.caller = caller
        self.client = client
        self.readOnly = readOnly
    }

    func scriptCall(_ arguments: [ByteBuffer], version: RESPVersion) -> ByteBuffer {
        client.protocolVersion = version
        var context = CommandContext(server: server, client: client, reply: RESPWriter(buffer: ByteBuffer()))
        context.args = Arguments(arguments)
        context.clock = SystemClock.monotonicNanoseconds()
        if let refusal = server.scriptRefusal(context.args, run: self) {
            context.reply.error(refusal)
            return context.reply.buffer
        }
        let spec = server.commands.resolve(context.args)!
        server.call(&context, spec)
        if spec.flags.contains(.write) { wrote = true }
        return context.reply.buffer
    }

    func scriptMayCall(_ arguments: [ByteBuffer]) -> Bool? {
        let args = Arguments(arguments)
        guard let spec = server.commands.resolve(args) else { return nil }
        return caller.aclUser.isUnrestricted || server.acl.check(caller.aclUser, spec, args) == nil
    }

    func scriptLog(level: Int, message: String) {
        switch level {
        case 0: server.logger.debug("\(message)")
        case 1: server.logger.info("\(message)")
        case 2: server.logger.notice("\(message)")
        default: server.logger.warning("\(message)")
        }
    }
}

extension CommandTable {
    /// The command (or subcommand) `args` name, nil when there is none.
    func resolve(_ args: Arguments) -> CommandSpec? {
        guard let spec = lookup(args[0]) else { return nil }
        if !spec.subcommands.isEmpty && args.count >= 2 { return subcommand(of: spec, args[1]) }
        return spec
    }
}

extension ServerCore {
    /// The interpreter, created when the first script is loaded.
    var scripting: LuaScripting {
        if let lua { return lua }
        let created = LuaScripting()
        lua = created
        return created
    }

    /// Why a command called from a script is refused, as Redis 7.0 words it; nil when it may run.
    func scriptRefusal(_ args: Arguments, run: ScriptRun) -> String? {
        guard let spec = commands.resolve(args) else { return "ERR Unknown Redis command called from script" }
        guard spec.accepts(argumentCount: args.count) else { return "ERR Wrong number of args calling Redis command from script" }
        if spec.flags.contains(.noscript) { return "ERR This Redis command is not allowed from script" }
        let user = run.caller.aclUser
        if !user.isUnrestricted && !run.caller.isReplaying, let denial = acl.check(user, spec, args) {
            acl.log.add(
                reason: denial.reason, context: "lua", object: denial.object, username: user.name, clientID: run.caller.id,
                clientInfo: { run.caller.infoLine(now: self.keyspace.now) }, now: keyspace.now,
                maxLength: Int(config.value("acllog-max-len") ?? "") ?? 128)
            switch denial.reason {
            case .command, .auth: return "ERR The user executing the script can't run this command or subcommand"
            case .key: return "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments"
            case .channel: return "ERR The user executing the script can't publish to the channel mentioned in the command"
            }
        }
        let write = spec.flags.contains(.write)
        if write && run.readOnly { return "ERR Write commands are not allowed from read-only scripts." }
        if write && !run.caller.isReplaying && writesDeniedByDiskError { return String(decoding: CommandError.misconf.bytes, as: UTF8.self) }
        let maxMemory = config.settings.maxMemory
        if maxMemory > 0 && run.checksMemory && !run.wrote && spec.flags.contains(.denyOOM) && !run.caller.isReplaying && !enforceMaxMemory(maxMemory) {
            return String(decoding: CommandError.outOfMemory.bytes, as: UTF8.self)
        }
        return nil
    }

    /// Runs the cached script `sha` for the command in `context` (EVAL and friends, after the script was
    /// found or compiled): KEYS and ARGV from its arguments, its commands' effects logged to the AOF
    /// (between MULTI and EXEC when there are several), not the EVAL itself.
    func runScript(_ context: inout CommandContext, sha: String, readOnly: Bool) throws(CommandError) {
        let count = try context.args.integer(2)
        guard count >= 0 else { throw CommandError("ERR Number of keys can't be negative") }
        guard count <= context.args.count - 3 else { throw CommandError("ERR Number of keys can't be greater than number of args") }
        // EVAL is flagged skip-monitor so that monitors see it before the commands it runs, as in Redis.
        if !monitors.isEmpty && !context.client.isReplaying { feedMonitors(context.client, context.spec, context.args) }
        let keys = (0..<Int(count)).map { context.args[3 + $0] }
        let arguments = (3 + Int(count)..<context.args.count).map { context.args[$0] }
        // Scripts that declare flags are checked before they run (Redis 7.0's rules for shebang scripts).
        let flags = scripting.flags(of: sha) ?? ScriptFlags()
        if flags.hasShebang {
            if readOnly && !flags.noWrites { throw CommandError("ERR Can not execute a script with write flag using *_ro command.") }
            let maxMemory = config.settings.maxMemory
            if !flags.allowOOM && !flags.noWrites && maxMemory > 0 && !context.client.isReplaying && !enforceMaxMemory(maxMemory) {
                throw .outOfMemory
            }
        }
        let client = scriptClient
        client.aclUser = context.client.aclUser
        client.database = context.client.database
        client.isReplaying = context.client.isReplaying
        let run = ScriptRun(server: self, caller: context.client, client: client, readOnly: readOnly || flags.noWrites, checksMemory: !flags.hasShebang,
            callerSpec: context.spec, callerArguments: context.args)
        runningScript = run
        defer { runningScript = nil }
        let ownsGroup = aofState.group == nil
        if ownsGroup { beginPropagationGroup() }
        let found = scripting.run(sha: sha, keys: keys, arguments: arguments, host: run, reply: &context.reply)
        if ownsGroup { endPropagationGroup(database: client.database) }
        context.propagation = []  // the commands it ran were logged; the script itself is not
        guard found else { throw CommandError("NOSCRIPT No matching script. Please use EVAL.") }
    }

    /// The client scripts' commands run as (Redis's "lua" client).
    var scriptClient: ClientState {
        if let luaClient { return luaClient }
        let client = ClientState(id: 0, connection: nil, address: "lua", localAddress: "", now: keyspace.now, user: acl.defaultUser)
        client.isAuthenticated = true
        luaClient = client
        return client
    }
}
