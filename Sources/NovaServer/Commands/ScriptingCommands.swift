import NIOCore
import NovaEngine
import NovaScripting

/// EVAL, EVALSHA, their read-only variants, and SCRIPT: Lua scripts run by `LuaScripting` with the
/// server's commands behind `redis.call` (Features/Scripting.swift).
enum ScriptingCommands {
    static func eval(_ ctx: inout CommandContext) throws(CommandError) {
        try evaluate(&ctx, readOnly: false)
    }

    static func evalReadOnly(_ ctx: inout CommandContext) throws(CommandError) {
        try evaluate(&ctx, readOnly: true)
    }

    static func evalsha(_ ctx: inout CommandContext) throws(CommandError) {
        let count = try keyCount(ctx)
        try ctx.server.runScript(&ctx, .script(sha(ctx)), keyCount: count, readOnly: false)
    }

    static func evalshaReadOnly(_ ctx: inout CommandContext) throws(CommandError) {
        let count = try keyCount(ctx)
        try ctx.server.runScript(&ctx, .script(sha(ctx)), keyCount: count, readOnly: true)
    }

    private static func evaluate(_ ctx: inout CommandContext, readOnly: Bool) throws(CommandError) {
        let sha = try load(ctx, Array(ctx.args[1].readableBytesView))
        let count = try keyCount(ctx)
        try ctx.server.runScript(&ctx, .script(sha), keyCount: count, readOnly: readOnly)
    }

    /// EVAL's numkeys, with its errors.
    private static func keyCount(_ ctx: CommandContext) throws(CommandError) -> Int {
        let count = try ctx.args.integer(2)
        guard count >= 0 else { throw CommandError("ERR Number of keys can't be negative") }
        guard count <= ctx.args.count - 3 else { throw CommandError("ERR Number of keys can't be greater than number of args") }
        return Int(count)
    }

    /// EVALSHA's SHA1 argument (lowercased; anything but 40 characters matches no script).
    private static func sha(_ ctx: CommandContext) -> String {
        ctx.args[1].withUnsafeReadableBytes { ctx.server.scripting.sha(forArgument: $0) }
    }

    private static func load(_ ctx: CommandContext, _ body: [UInt8]) throws(CommandError) -> String {
        do {
            return try ctx.server.scripting.load(body)
        } catch {
            switch error {
            case .script(let message): throw CommandError(message)
            }
        }
    }

    static func scriptLoad(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.bulk(try load(ctx, Array(ctx.args[2].readableBytesView)))
    }

    static func scriptExists(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.array(ctx.args.count - 2)
        let scripting = ctx.server.lua
        for index in 2..<ctx.args.count {
            ctx.reply.integer(scripting?.exists(ctx.args.string(index)) == true ? 1 : 0)
        }
    }

    static func scriptFlush(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 3 || (ctx.args.count == 3 && !ctx.args.isKeyword(2, "async") && !ctx.args.isKeyword(2, "sync")) {
            throw CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
        }
        ctx.server.lua?.flush()
        ctx.reply.ok()
    }

    static func scriptKill(_ ctx: inout CommandContext) throws(CommandError) {
        try kill(&ctx, function: false)
    }

    /// SCRIPT KILL and FUNCTION KILL: each stops only its own kind, and neither a script that wrote.
    static func kill(_ ctx: inout CommandContext, function: Bool) throws(CommandError) {
        guard let run = ctx.server.runningScript else { throw CommandError("NOTBUSY No scripts in execution right now.") }
        if run.wrote {
            throw CommandError("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.")
        }
        guard run.isFunction == function else { throw run.busyError }
        run.killed = true
        ctx.server.logger.warning("\(function ? "Function" : "Lua script") killed by user with \(function ? "FUNCTION" : "SCRIPT") KILL.")
        ctx.reply.ok()
    }

    static func scriptDebug(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.isKeyword(2, "no") {
            ctx.reply.ok()
        } else if ctx.args.isKeyword(2, "yes") || ctx.args.isKeyword(2, "sync") {
            throw CommandError("ERR SCRIPT DEBUG is not supported by this server; use redis.log to trace scripts")
        } else {
            throw CommandError("ERR Use SCRIPT DEBUG YES/SYNC/NO")
        }
    }

    static func scriptHelp(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "SCRIPT", [
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ])
    }
}
