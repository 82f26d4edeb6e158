import NIOCore
import NovaEngine
import NovaRESP

/// Server commands: INFO, CONFIG, TIME, LASTSAVE, SHUTDOWN, COMMAND.
enum ServerCommands {
    static func info(_ ctx: inout CommandContext) throws(CommandError) {
        let arguments = (1..<max(1, ctx.args.count)).map { ctx.args.string($0) }
        let text = Info.render(ctx.server, sections: Info.sections(for: arguments))
        ctx.reply.verbatim(text)
    }

    static func time(_ ctx: inout CommandContext) throws(CommandError) {
        let now = SystemClock.nowMicroseconds()
        ctx.reply.array(2)
        ctx.reply.bulk(decimal: now / 1_000_000)
        ctx.reply.bulk(decimal: now % 1_000_000)
    }

    /// MONITOR: from now on the client receives every command run (see Monitor.swift). A client that is
    /// already monitoring gets no reply, as in Redis.
    static func monitor(_ ctx: inout CommandContext) throws(CommandError) {
        // Inside EXEC a client expects one reply per command, so it cannot turn into a stream.
        if ctx.client.inTransaction { throw "ERR MONITOR isn't allowed for DENY BLOCKING client" }
        guard !ctx.client.isMonitor else { return }
        ctx.server.startMonitoring(ctx.client)
        ctx.reply.ok()
    }

    static func lastsave(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(ctx.server.snapshots.lastSaveTime)
    }

    static func save(_ ctx: inout CommandContext) throws(CommandError) {
        try ctx.server.saveSynchronously()
        ctx.reply.ok()
    }

    static func bgrewriteaof(_ ctx: inout CommandContext) throws(CommandError) {
        guard !ctx.server.aofState.rewriteInProgress else {
            throw CommandError("ERR Background append only file rewriting already in progress")
        }
        guard ctx.server.startAOFRewrite(reason: "BGREWRITEAOF") else { throw CommandError("ERR") }
        ctx.reply.simpleString("Background append only file rewriting started")
    }

    static func bgsave(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 1 && !(ctx.args.count == 2 && ctx.args.isKeyword(1, "schedule")) { throw .syntax }
        guard ctx.server.startBackgroundSave(reason: "BGSAVE") else {
            throw CommandError("ERR Background save already in progress")
        }
        ctx.reply.simpleString("Background saving started")
    }

    static func shutdown(_ ctx: inout CommandContext) throws(CommandError) {
        var request = ShutdownRequest()
        var abort = false
        var save = false, nosave = false
        for index in 1..<max(1, ctx.args.count) {
            if ctx.args.isKeyword(index, "nosave") { nosave = true }
            else if ctx.args.isKeyword(index, "save") { save = true }
            else if ctx.args.isKeyword(index, "now") { request.now = true }
            else if ctx.args.isKeyword(index, "force") { request.force = true }
            else if ctx.args.isKeyword(index, "abort") { abort = true }
            else { throw .syntax }
        }
        if (abort && (save || nosave || request.now || request.force)) || (save && nosave) { throw .syntax }
        if abort { throw CommandError("ERR No shutdown in progress.") }
        // A busy script can only be interrupted by a shutdown that does not save (its writes are half done).
        if !nosave, let script = ctx.server.runningScript, script.isBusy { throw script.busyError }
        request.save = save ? true : (nosave ? false : nil)
        ctx.server.logger.notice("User requested shutdown...")
        // Save and stop running commands here, under the lock, so that a failure can be answered to this
        // client and nothing another client sends from now on is acknowledged without being saved.
        guard ctx.server.haltForShutdown(request) else {
            ctx.server.logger.warning("Errors trying to shut down the server. Check the logs for more information.")
            throw CommandError("ERR Errors trying to SHUTDOWN. Check logs.")
        }
        request.save = false
        ctx.server.pendingActions.append(.shutdown(request))
        ctx.client.closeAfterReply = true
    }

    // MARK: CONFIG

    static func configGet(_ ctx: inout CommandContext) throws(CommandError) {
        let patterns = (2..<ctx.args.count).map { ctx.args.string($0) }
        let pairs = ctx.server.config.get(patterns)
        ctx.reply.map(pairs.count)
        for (name, value) in pairs {
            ctx.reply.bulk(name)
            ctx.reply.bulk(value)
        }
    }

    static func configSet(_ ctx: inout CommandContext) throws(CommandError) {
        // Parameters and values in pairs: an odd count is a syntax error in Redis 7.0 (arity aside).
        guard ctx.args.count % 2 == 0 else { throw .syntax }
        let pairs = stride(from: 2, to: ctx.args.count, by: 2).map { (ctx.args.string($0), ctx.args.string($0 + 1)) }
        let config = ctx.server.config
        let before = config.snapshot()
        let previous = config.settings
        try config.set(pairs)
        let settings = config.settings
        if settings.port != previous.port || settings.bind != previous.bind {
            if let message = ctx.server.hooks.rebind(settings) {
                config.restore(before)
                let name = settings.port != previous.port ? "port" : "bind"
                let reason = name == "port" ? "Unable to listen on this port" : "Failed to bind to specified addresses."
                ctx.server.logger.warning("CONFIG SET \(name) failed: \(message)")
                throw CommandError("ERR CONFIG SET failed (possibly related to argument '\(name)') - \(reason)")
            }
        }
        if settings.tls != previous.tls, let message = ctx.server.hooks.reloadTLS(settings.tls) {
            config.restore(before)
            ctx.server.logger.warning("CONFIG SET tls failed: \(message)")
            throw CommandError("ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs.")
        }
        ctx.server.applySettings()
        if settings.appendOnly != previous.appendOnly || settings.appendFsync != previous.appendFsync {
            ctx.server.applyAOFSettings()
        }
        ctx.reply.ok()
    }

    static func configResetstat(_ ctx: inout CommandContext) throws(CommandError) {
        let server = ctx.server
        let (dirty, changes) = (server.stats.dirty, server.stats.changes)
        server.stats = ServerStats()
        (server.stats.dirty, server.stats.changes) = (dirty, changes)
        server.keyspace.stats = KeyspaceStats()
        server.commandStats = Array(repeating: CommandStatistics(), count: server.commandStats.count)
        server.errorStats = [:]
        server.latencyHistograms = Array(repeating: LatencyHistogram(), count: server.latencyHistograms.count)
        LazyFreer.shared.resetStatistics()
        ctx.reply.ok()
    }

    static func configRewrite(_ ctx: inout CommandContext) throws(CommandError) {
        try ctx.server.config.rewrite(userLines: ctx.server.aclFilePath == nil ? ctx.server.acl.sortedUsers.map(\.line) : nil)
        ctx.server.logger.notice("CONFIG REWRITE executed with success.")
        ctx.reply.ok()
    }

    static func configHelp(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "CONFIG", [
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ])
    }

    // MARK: COMMAND

    static func command(_ ctx: inout CommandContext) throws(CommandError) {
        let specs = ctx.server.commands.commands
        ctx.reply.array(specs.count)
        for spec in specs { CommandDocs.writeInfo(spec, &ctx.reply) }
    }

    static func commandCount(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(ctx.server.commands.commands.count)
    }

    static func commandInfo(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count == 2 { return try command(&ctx) }
        ctx.reply.array(ctx.args.count - 2)
        for index in 2..<ctx.args.count {
            if let spec = ctx.server.commands.resolve(ctx.args.string(index)) {
                CommandDocs.writeInfo(spec, &ctx.reply)
            } else {
                ctx.reply.nullArray()
            }
        }
    }

    static func commandDocs(_ ctx: inout CommandContext) throws(CommandError) {
        var specs: [CommandSpec] = []
        if ctx.args.count == 2 {
            specs = ctx.server.commands.commands
        } else {
            for index in 2..<ctx.args.count {
                if let spec = ctx.server.commands.resolve(ctx.args.string(index)) { specs.append(spec) }
            }
        }
        ctx.reply.map(specs.count)
        for spec in specs {
            ctx.reply.bulk(spec.fullName)
            CommandDocs.writeDocs(spec, &ctx.reply)
        }
    }

    static func commandList(_ ctx: inout CommandContext) throws(CommandError) {
        var names: [String] = []
        let all = ctx.server.commands.all
        if ctx.args.count == 2 {
            names = all.map(\.fullName)
        } else {
            guard ctx.args.count == 5, ctx.args.isKeyword(2, "filterby") else { throw .syntax }
            let value = ctx.args.string(4)
            if ctx.args.isKeyword(3, "module") {
                names = []
            } else if ctx.args.isKeyword(3, "aclcat") {
                let category = value.lowercased()
                names = all.filter { $0.aclCategories.contains(category) }.map(\.fullName)
            } else if ctx.args.isKeyword(3, "pattern") {
                names = all.filter { RedisGlob.matches(value, $0.fullName, ignoringCase: true) }.map(\.fullName)
            } else {
                throw .syntax
            }
        }
        ctx.reply.array(names.count)
        for name in names { ctx.reply.bulk(name) }
    }

    /// The command named by COMMAND GETKEYS / GETKEYSANDFLAGS and the key arguments of the call.
    /// The command named by COMMAND GETKEYS(ANDFLAGS)'s arguments and its keys, with Redis's checks in
    /// Redis's order: an unknown command, one without keys, the arity, then arguments keys cannot be read
    /// from (a bad `numkeys`).
    static func keysOfCall(_ ctx: CommandContext) throws(CommandError) -> [(key: ByteBuffer, flags: KeySpecFlags)] {
        guard var spec = ctx.server.commands.lookup(ctx.args[2]) else {
            throw CommandError("ERR Invalid command specified")
        }
        let callArguments = Array((2..<ctx.args.count).map { ctx.args[$0] })
        if !spec.subcommands.isEmpty && callArguments.count >= 2,
           let sub = ctx.server.commands.subcommand(of: spec, callArguments[1]) {
            spec = sub
        }
        if !spec.hasKeys { throw CommandError("ERR The command has no key arguments") }
        guard spec.accepts(argumentCount: callArguments.count) else {
            throw CommandError("ERR Invalid number of arguments specified for command")
        }
        let keys = spec.keyReferences(callArguments)
        if keys.isEmpty && !spec.flags.contains(.noMandatoryKeys) {
            throw CommandError("ERR Invalid arguments specified for command")
        }
        return keys.map { (callArguments[$0.index], $0.flags) }
    }

    static func commandGetkeys(_ ctx: inout CommandContext) throws(CommandError) {
        let keys = try keysOfCall(ctx)
        ctx.reply.array(keys.count)
        for (key, _) in keys { ctx.reply.bulk(key) }
    }

    static func commandGetkeysandflags(_ ctx: inout CommandContext) throws(CommandError) {
        let keys = try keysOfCall(ctx)
        ctx.reply.array(keys.count)
        for (key, flags) in keys {
            ctx.reply.array(2)
            ctx.reply.bulk(key)
            let names = flags.names
            ctx.reply.set(names.count)
            for name in names { ctx.reply.simpleString(name) }
        }
    }

    static func commandHelp(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "COMMAND", [
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ])
    }
}

extension ServerCommands {
    /// ROLE: a primary without replicas (replication offset 0, no replicas), as redis-server answers
    /// when it has never had one.
    static func role(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.array(3)
        ctx.reply.bulk("master")
        ctx.reply.integer(0)
        ctx.reply.array(0)
    }

    /// WAIT numreplicas timeout: with no replicas none acknowledges, so it answers 0 at once when
    /// `numreplicas` is 0 or less (or inside MULTI), and otherwise blocks until the timeout (forever for
    /// 0) as Redis does, then answers 0. CLIENT UNBLOCK ends it early the same way.
    static func wait(_ ctx: inout CommandContext) throws(CommandError) {
        let wanted = try ctx.args.integer(1)
        let timeoutError = CommandError("ERR timeout is not an integer or out of range")
        let timeout = try ctx.args.integer(2, or: timeoutError)
        guard timeout >= 0 else { throw CommandError("ERR timeout is negative") }
        let acknowledged = 0
        if acknowledged >= wanted || ctx.client.inTransaction || ctx.isRetryingBlocked {
            ctx.reply.integer(acknowledged)
            return
        }
        ctx.server.block(ctx, keys: [], timeout: timeout, timeoutReply: .integer(acknowledged))
    }

    /// LOLWUT [VERSION v] [arguments]: version 5 draws Georg Nees's "Schotter" (columns, squares per row,
    /// squares per column), version 6 a skyline (columns, rows), both as Redis 7.0 draws them
    /// (Features/Lolwut.swift); every other version prints the Redis version this server follows.
    static func lolwut(_ ctx: inout CommandContext) throws(CommandError) {
        var version = 7
        var first = 1
        if ctx.args.count >= 3 && ctx.args.string(1).lowercased() == "version" {
            version = Int(clamping: try ctx.args.integer(2))
            first = 3
        }
        let versionLine = "Redis ver. \(NovaCacheVersion.redisCompatible)\n"
        var numbers = version == 5 ? [66, 8, 12] : [80, 20]
        guard version == 5 || version == 6 else {
            ctx.reply.verbatim(versionLine)
            return
        }
        for index in first..<min(ctx.args.count, first + numbers.count) {
            numbers[index - first] = Int(clamping: try ctx.args.integer(index))
        }
        if version == 5 {
            let art = Lolwut.schotter(
                columns: min(1000, max(1, numbers[0])), squaresPerRow: min(200, max(1, numbers[1])),
                squaresPerColumn: min(200, max(1, numbers[2])))
            ctx.reply.verbatim(bytes: art + Array(("\nGeorg Nees - schotter, plotter on paper, 1968. " + versionLine).utf8))
        } else {
            let art = Lolwut.skyline(columns: min(1000, max(1, numbers[0])), rows: min(1000, max(1, numbers[1])))
            ctx.reply.verbatim(bytes: art + Array(("\nDedicated to the 8 bit game developers of past and present.\n"
                + "Original 8 bit image from Plaguemon by hikikomori. " + versionLine).utf8))
        }
    }
}

/// SLOWLOG GET, LEN, RESET, HELP.
enum SlowLogCommands {
    static func get(_ ctx: inout CommandContext) throws(CommandError) {
        guard ctx.args.count <= 3 else { throw .subcommandSyntax(ctx.args.printable(1, limit: 128), of: "slowlog") }
        let entries = ctx.server.slowLog.entries
        var count = 10
        if ctx.args.count == 3 {
            let message = CommandError("ERR count should be greater than or equal to -1")
            let value = try ctx.args.integer(2, or: message)
            guard value >= -1 else { throw message }
            count = value == -1 ? entries.count : Int(clamping: value)
        }
        let shown = entries.prefix(count)
        ctx.reply.array(shown.count)
        for entry in shown {
            ctx.reply.array(6)
            ctx.reply.integer(entry.id)
            ctx.reply.integer(entry.time)
            ctx.reply.integer(entry.microseconds)
            ctx.reply.array(entry.arguments.count)
            for argument in entry.arguments { ctx.reply.bulk(argument) }
            ctx.reply.bulk(entry.peer)
            ctx.reply.bulk(entry.clientName)
        }
    }

    static func len(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(ctx.server.slowLog.entries.count)
    }

    static func reset(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.server.slowLog.reset()
        ctx.reply.ok()
    }

    static func help(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "SLOWLOG", [
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ])
    }
}
