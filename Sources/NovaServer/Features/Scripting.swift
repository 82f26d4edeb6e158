import NIOCore
import NovaEngine
import NovaRESP
import NovaScripting

/// The script being run for a client: the `ScriptHost` its `redis.call`s go through. Commands run as a
/// separate client (Redis's "lua" client) with the caller's user and database, after the checks Redis
/// makes for scripts (no-script commands, ACL, read-only scripts, OOM, MISCONF). One instance serves
/// script after script (scripts do not nest): `start` sets it up for each.
final class ScriptRun: ScriptHost {
    /// Not counted: the server outlives every script.
    unowned(unsafe) let server: ServerCore
    /// The client that runs the script; the script client itself between scripts, so that a closed
    /// connection is not kept.
    private(set) var caller: ClientState
    let client: ClientState
    private(set) var readOnly = false
    /// The command that runs the script (EVAL and friends) and its arguments: the keys it declares.
    private(set) unowned(unsafe) var callerSpec: CommandSpec
    private(set) var callerArguments = Arguments([])
    /// Whether each deny-OOM command is checked against `maxmemory` (scripts without a shebang; those
    /// with one were checked before they started, or declared allow-oom).
    private(set) var checksMemory = true
    /// Whether a write command ran (OOM is only checked until then, as Redis does for scripts; SCRIPT KILL
    /// is refused from then on).
    private(set) var wrote = false
    /// The script's SHA1, or the function's name (the slow-script warning names it).
    private(set) var name = ""
    /// A function (FCALL) rather than a script (EVAL): FUNCTION KILL stops it, not SCRIPT KILL.
    private(set) var isFunction = false
    /// What the other commands are refused with while it is busy.
    var busyError: CommandError { isFunction ? .busyFunction : .busyScript }
    /// When the script started (monotonic nanoseconds).
    private(set) var started: UInt64 = 0
    /// Past `busy-reply-threshold`: other clients are served from the hook, with BUSY for most commands.
    private(set) var isBusy = false
    /// SCRIPT KILL asked to stop it.
    var killed = false

    /// The error Redis 7.0 stops a killed script with.
    static let killedError = "ERR Script killed by user with SCRIPT KILL..."

    init(server: ServerCore, client: ClientState, spec: CommandSpec) {
        self.server = server
        self.client = client
        caller = client
        callerSpec = spec
        context = CommandContext(server: server, client: client, reply: RESPWriter(buffer: ByteBuffer()))
    }

    /// Sets it up for the next script.
    func start(
        name: String, isFunction: Bool, caller: ClientState, readOnly: Bool, checksMemory: Bool, callerSpec: CommandSpec,
        callerArguments: Arguments
    ) {
        self.name = name
        self.isFunction = isFunction
        self.caller = caller
        self.readOnly = readOnly
        self.checksMemory = checksMemory
        self.callerSpec = callerSpec
        self.callerArguments = callerArguments
        wrote = false
        isBusy = false
        killed = false
        started = SystemClock.monotonicNanoseconds()
        context.clock = started
    }

    func scriptCall(_ arguments: [ByteBuffer], version: RESPVersion, reply: inout ByteBuffer) {
        client.protocolVersion = version
        // One context for all the script's commands. The reply's storage moves into it and back (a copy
        // would make every write reallocate); each command's time runs from the end of the previous one.
        swap(&context.reply.buffer, &reply)
        context.reply.version = version
        context.args = Arguments(arguments)
        defer {
            swap(&context.reply.buffer, &reply)
            // Drop the views of the interpreter's argument buffers: kept, they would make its next call
            // copy them instead of reusing them.
            context.args = Arguments([])
        }
        switch server.scriptCommand(context.args, run: self) {
        case .refused(let refusal):
            context.reply.error(refusal)
        case .runs(let spec):
            server.call(&context, spec)
            if spec.flags.contains(.write) { wrote = true }
        }
    }

    /// The context the script's commands run in.
    private var context: CommandContext

    func scriptMayCall(_ arguments: [ByteBuffer]) -> Bool? {
        let args = Arguments(arguments)
        guard let spec = server.commands.resolve(args) else { return nil }
        return caller.aclUser.isUnrestricted || server.acl.check(caller.aclUser, spec, args) == nil
    }

    /// Redis's `scriptInterrupt`: past `busy-reply-threshold` the script lends the server lock and serves
    /// other clients between instructions (BUSY for all but SCRIPT KILL, SHUTDOWN NOSAVE and a few more);
    /// stops once killed or when the server shuts down.
    func scriptInterrupt() -> String? {
        if killed || server.halted { return Self.killedError }
        if !isBusy {
            let threshold = Int64(server.config.value("busy-reply-threshold") ?? "") ?? 5000
            let elapsed = (SystemClock.monotonicNanoseconds() - started) / 1_000_000
            guard elapsed >= threshold else { return nil }
            isBusy = true
            server.logger.warning("Slow script detected: still in execution after \(elapsed) milliseconds. You can try killing the script using the \(isFunction ? "FUNCTION" : "SCRIPT") KILL command. Script name is: \(name).")
            server.lock.startLending()
        }
        server.serveWhileBusy()
        return killed || server.halted ? Self.killedError : nil
    }

    /// The script ended: threads waiting for the lock go back to waiting for it; the caller and its
    /// arguments are let go.
    func finish() {
        if isBusy { server.lock.stopLending() }
        isBusy = false
        caller = client
        callerArguments = Arguments([])
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

    /// The interpreter of function libraries (its own, as in Redis), created when the first is loaded.
    var functions: LuaScripting {
        if let functionEngine { return functionEngine }
        let created = LuaScripting()
        functionEngine = created
        return created
    }

    /// What a script may do with a command it calls.
    enum ScriptCommand {
        /// It runs.
        case runs(CommandSpec)
        /// It is refused, as Redis 7.0 words it.
        case refused(String)
    }

    /// Whether a command called from a script runs (and which), or why it is refused.
    func scriptCommand(_ args: Arguments, run: ScriptRun) -> ScriptCommand {
        guard let spec = commands.resolve(args) else { return .refused("ERR Unknown Redis command called from script") }
        if let refusal = scriptRefusal(spec, args, run: run) { return .refused(refusal) }
        return .runs(spec)
    }

    /// Why the command `spec` called from a script is refused, as Redis 7.0 words it; nil when it may run.
    private func scriptRefusal(_ spec: CommandSpec, _ args: Arguments, run: ScriptRun) -> String? {
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
            noteOutOfMemoryRejection()
            return String(decoding: CommandError.outOfMemory.bytes, as: UTF8.self)
        }
        return nil
    }

    /// What EVAL or FCALL runs.
    enum ScriptTarget {
        /// A cached script, by SHA1.
        case script(String)
        /// A library's function.
        case function(FunctionLibrary.Function)
    }

    /// Runs a script or function for the command in `context` (EVAL and friends once the script was found
    /// or compiled, FCALL once the function was found) with its first `keyCount` arguments after numkeys
    /// as keys: its commands' effects logged to the AOF (between MULTI and EXEC when there are several),
    /// not the EVAL itself.
    func runScript(_ context: inout CommandContext, _ target: ScriptTarget, keyCount: Int, readOnly: Bool) throws(CommandError) {
        // EVAL is flagged skip-monitor so that monitors see it before the commands it runs, as in Redis.
        if !monitors.isEmpty && !context.client.isReplaying { feedMonitors(context.client, context.spec, context.args) }
        let keys = context.args.scriptValues(3..<3 + keyCount)
        let arguments = context.args.scriptValues(3 + keyCount..<context.args.count)
        let name: String
        let flags: ScriptFlags
        switch target {
        case .script(let sha):
            name = sha
            flags = scripting.flags(of: sha) ?? ScriptFlags()
        case .function(let function):
            name = function.name
            flags = function.flags
        }
        // Scripts that declare flags (and functions) are checked before they run (Redis 7.0's rules).
        if flags.hasShebang {
            if readOnly && !flags.noWrites { throw CommandError("ERR Can not execute a script with write flag using *_ro command.") }
            let maxMemory = config.settings.maxMemory
            if !flags.allowOOM && !flags.noWrites && maxMemory > 0 && !context.client.isReplaying && !enforceMaxMemory(maxMemory) {
                noteOutOfMemoryRejection()
                throw .outOfMemory
            }
        }
        let client = scriptClient
        client.aclUser = context.client.aclUser
        client.database = context.client.database
        client.isReplaying = context.client.isReplaying
        let run = reusableScriptRun ?? ScriptRun(server: self, client: client, spec: context.spec)
        reusableScriptRun = run
        run.start(name: name, isFunction: { if case .function = target { true } else { false } }(),
            caller: context.client, readOnly: readOnly || flags.noWrites, checksMemory: !flags.hasShebang,
            callerSpec: context.spec, callerArguments: context.args)
        runningScript = run
        defer { runningScript = nil }
        let ownsGroup = aofState.group == nil
        if ownsGroup { beginPropagationGroup() }
        let replyStart = context.reply.buffer.writerIndex
        let found = switch target {
        case .script(let sha): scripting.run(sha: sha, keys: keys, arguments: arguments, host: run, reply: &context.reply)
        case .function(let function): functions.call(function: function.name, keys: keys, arguments: arguments, host: run, reply: &context.reply)
        }
        run.finish()
        if halted {
            // SHUTDOWN NOSAVE stopped it: as in Redis, which exits from the script, none of it is logged
            // and its caller gets no reply.
            if ownsGroup { aofState.group = nil }
            context.reply.rewind(to: replyStart)
            context.client.closeAfterReply = true
        } else if ownsGroup {
            endPropagationGroup(database: client.database)
        }
        context.propagation = []  // the commands it ran were logged; the script itself is not
        guard found else { throw CommandError("NOSCRIPT No matching script. Please use EVAL.") }
    }

    /// Serves other clients once from a busy script's hook (lock held, and lent to waiting threads): their
    /// handed-over sections, then this thread's own connections.
    func serveWhileBusy() {
        lock.serveLent()
        hooks.serveConnectionsWhileBusy()
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
