import NIOCore
import NovaEngine
import NovaRESP
import NovaScripting

/// FUNCTION and FCALL: libraries of Lua functions (`LuaFunctions.swift` in NovaScripting), run like
/// scripts (Features/Scripting.swift) under the flags each function declared.
enum FunctionCommands {
    static func fcall(_ ctx: inout CommandContext) throws(CommandError) {
        try call(&ctx, readOnly: false)
    }

    static func fcallReadOnly(_ ctx: inout CommandContext) throws(CommandError) {
        try call(&ctx, readOnly: true)
    }

    /// Redis 7.0's order: the function is looked up before numkeys is read.
    private static func call(_ ctx: inout CommandContext, readOnly: Bool) throws(CommandError) {
        guard let function = ctx.server.functionEngine?.function(named: ctx.args.string(1)) else {
            throw CommandError("ERR Function not found")
        }
        let count = try ctx.args.integer(2, or: CommandError("ERR Bad number of keys provided"))
        guard count <= ctx.args.count - 3 else { throw CommandError("ERR Number of keys can't be greater than number of args") }
        guard count >= 0 else { throw CommandError("ERR Number of keys can't be negative") }
        try ctx.server.runScript(&ctx, .function(function), keyCount: Int(count), readOnly: readOnly)
    }

    static func load(_ ctx: inout CommandContext) throws(CommandError) {
        var replace = false
        var index = 2
        while index < ctx.args.count - 1 {
            guard ctx.args.isKeyword(index, "replace") else { throw CommandError("ERR Unknown option given: \(ctx.args.string(index))") }
            replace = true
            index += 1
        }
        guard index == ctx.args.count - 1 else { throw CommandError("ERR Function code is missing") }
        do {
            ctx.reply.bulk(try ctx.server.functions.loadLibrary(Array(ctx.args[index].readableBytesView), replace: replace))
            ctx.dirty()  // a change like a key's: logged to the AOF, counted by the save rules
        } catch {
            switch error {
            case .script(let message): throw CommandError(message)
            }
        }
    }

    static func delete(_ ctx: inout CommandContext) throws(CommandError) {
        guard ctx.server.functionEngine?.deleteLibrary(ctx.args.string(2)) == true else {
            throw CommandError("ERR Library not found")
        }
        ctx.dirty()
        ctx.reply.ok()
    }

    static func flush(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 3 || (ctx.args.count == 3 && !ctx.args.isKeyword(2, "async") && !ctx.args.isKeyword(2, "sync")) {
            throw CommandError("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
        }
        ctx.server.functionEngine?.flushLibraries()
        ctx.dirty()
        ctx.reply.ok()
    }

    static func list(_ ctx: inout CommandContext) throws(CommandError) {
        var pattern: [UInt8]?
        var withCode = false
        var index = 2
        while index < ctx.args.count {
            if ctx.args.isKeyword(index, "withcode") {
                if withCode { throw CommandError("ERR Unknown argument \(ctx.args.string(index))") }
                withCode = true
            } else if ctx.args.isKeyword(index, "libraryname") {
                if pattern != nil { throw CommandError("ERR Unknown argument \(ctx.args.string(index))") }
                index += 1
                guard index < ctx.args.count else { throw CommandError("ERR library name argument was not given") }
                pattern = Array(ctx.args[index].readableBytesView)
            } else {
                throw CommandError("ERR Unknown argument \(ctx.args.string(index))")
            }
            index += 1
        }
        let libraries = (ctx.server.functionEngine?.libraries.values.map { $0 } ?? [])
            .filter { library in pattern.map { RedisGlob.matches($0, Array(library.name.utf8)) } ?? true }
            .sorted { $0.name < $1.name }
        ctx.reply.array(libraries.count)
        for library in libraries {
            ctx.reply.map(withCode ? 4 : 3)
            ctx.reply.bulk("library_name")
            ctx.reply.bulk(library.name)
            ctx.reply.bulk("engine")
            ctx.reply.bulk("LUA")
            ctx.reply.bulk("functions")
            ctx.reply.array(library.functions.count)
            for function in library.functions.sorted(by: { $0.name < $1.name }) {
                ctx.reply.map(3)
                ctx.reply.bulk("name")
                ctx.reply.bulk(function.name)
                ctx.reply.bulk("description")
                if let description = function.description { ctx.reply.bulk(description) } else { ctx.reply.null() }
                ctx.reply.bulk("flags")
                ctx.reply.set(function.flagNames.count)
                for flag in function.flagNames { ctx.reply.simpleString(flag) }
            }
            if withCode {
                ctx.reply.bulk("library_code")
                ctx.reply.bulk(library.code)
            }
        }
    }

    static func stats(_ ctx: inout CommandContext) throws(CommandError) {
        let server = ctx.server
        if let run = server.runningScript, !run.isFunction { throw run.busyError }
        ctx.reply.map(2)
        ctx.reply.bulk("running_script")
        if let run = server.runningScript {
            ctx.reply.map(3)
            ctx.reply.bulk("name")
            ctx.reply.bulk(run.name)
            ctx.reply.bulk("command")
            ctx.reply.array(run.callerArguments.count)
            for index in 0..<run.callerArguments.count { ctx.reply.bulk(run.callerArguments[index]) }
            ctx.reply.bulk("duration_ms")
            ctx.reply.integer(Int((SystemClock.monotonicNanoseconds() - run.started) / 1_000_000))
        } else {
            ctx.reply.null()
        }
        ctx.reply.bulk("engines")
        ctx.reply.map(1)
        ctx.reply.bulk("LUA")
        ctx.reply.map(2)
        ctx.reply.bulk("libraries_count")
        ctx.reply.integer(server.functionEngine?.libraries.count ?? 0)
        ctx.reply.bulk("functions_count")
        ctx.reply.integer(server.functionEngine?.functionCount ?? 0)
    }

    static func dump(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.bulk(RDBWriter.functionsPayload(ctx.server.libraryCodes, compress: ctx.server.config.value("rdbcompression") == "yes"))
    }

    static func restore(_ ctx: inout CommandContext) throws(CommandError) {
        var flush = false, replace = false
        if ctx.args.count > 4 { throw CommandError("ERR wrong number of arguments for 'function|restore' command") }
        if ctx.args.count == 4 {
            if ctx.args.isKeyword(3, "flush") { flush = true }
            else if ctx.args.isKeyword(3, "replace") { replace = true }
            else if !ctx.args.isKeyword(3, "append") { throw CommandError("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.") }
        }
        let decoded: [[UInt8]]?
        do {
            decoded = try RDBReader.functionsPayload(Array(ctx.args[2].readableBytesView))
        } catch {
            throw CommandError("ERR \(error.message)")
        }
        guard let libraries = decoded else { throw CommandError("ERR DUMP payload version or checksum are wrong") }
        do {
            try ctx.server.installLibraries(libraries, replacing: flush, replace: replace)
        } catch {
            switch error {
            case .script(let message): throw CommandError(message)
            }
        }
        ctx.dirty()
        ctx.reply.ok()
    }

    static func kill(_ ctx: inout CommandContext) throws(CommandError) {
        try ScriptingCommands.kill(&ctx, function: true)
    }

    static func help(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "FUNCTION", [
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ])
    }
}
