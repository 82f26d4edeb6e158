import NIOCore
import NovaEngine
import NovaRESP

/// Connection commands: PING, ECHO, QUIT, RESET, SELECT, HELLO, AUTH, CLIENT.
enum ConnectionCommands {
    /// The version this server reports to clients (the Redis release whose behaviour it follows).
    static let redisVersion = "7.0.15"

    static func ping(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 2 { throw .arity(ctx.spec.fullName) }
        if ctx.client.isSubscriber && ctx.client.protocolVersion == .v2 {
            // A RESP2 subscriber reads every reply as a message frame.
            ctx.reply.array(2)
            ctx.reply.bulk("pong")
            if ctx.args.count == 2 { ctx.reply.bulk(ctx.args[1]) } else { ctx.reply.bulk("") }
        } else if ctx.args.count == 2 {
            ctx.reply.bulk(ctx.args[1])
        } else {
            ctx.reply.simpleString("PONG")
        }
    }

    static func echo(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.bulk(ctx.args[1])
    }

    static func quit(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.ok()
        ctx.client.closeAfterReply = true
    }

    static func reset(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.server.stopMonitoring(ctx.client)
        ctx.server.discardTransaction(ctx.client)
        ctx.server.pubsub.unsubscribeAll(ctx.client)
        ctx.server.tracking.disable(ctx.client)
        ctx.client.reset(defaultUser: ctx.server.acl.defaultUser)
        ctx.reply.version = .v2
        ctx.reply.simpleString("RESET")
    }

    static func select(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.client.database = try KeyCommands.databaseIndex(ctx, 1)
        ctx.reply.ok()
    }

    /// Authenticates the connection as `user`, or records the failure in the ACL LOG and throws WRONGPASS.
    /// Failures are not written to the server log: a password-guessing client must not fill the disk.
    static func logIn(_ ctx: CommandContext, user: ByteBuffer, password: ByteBuffer) throws(CommandError) {
        let name = String(buffer: user)
        guard let account = ctx.server.authenticate(username: name, password: password) else {
            ctx.server.logFailedAuthentication(username: name, client: ctx.client)
            throw .wrongPass
        }
        ctx.client.aclUser = account
        ctx.client.isAuthenticated = true
    }

    static func auth(_ ctx: inout CommandContext) throws(CommandError) {
        if ctx.args.count > 3 { throw .syntax }
        if ctx.args.count == 2 {
            let defaultUser = ctx.server.acl.defaultUser
            guard !defaultUser.noPassword else {
                throw CommandError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
            }
            try logIn(ctx, user: ByteBuffer(string: "default"), password: ctx.args[1])
        } else {
            try logIn(ctx, user: ctx.args[1], password: ctx.args[2])
        }
        ctx.reply.ok()
    }

    /// Client names and library attributes: printable ASCII without spaces.
    static func isValidClientAttribute(_ buffer: ByteBuffer) -> Bool {
        buffer.readableBytesView.allSatisfy { $0 >= 33 && $0 <= 126 }
    }

    static func hello(_ ctx: inout CommandContext) throws(CommandError) {
        var version: Int64 = 0
        var next = 1
        if ctx.args.count >= 2 {
            version = try ctx.args.integer(1, or: CommandError("ERR Protocol version is not an integer or out of range"))
            next = 2
            if version < 2 || version > 3 { throw CommandError("NOPROTO unsupported protocol version") }
        }
        var credentials: (ByteBuffer, ByteBuffer)? = nil
        var name: ByteBuffer? = nil
        var index = next
        while index < ctx.args.count {
            let more = ctx.args.count - 1 - index
            if ctx.args.isKeyword(index, "auth") && more >= 2 {
                credentials = (ctx.args[index + 1], ctx.args[index + 2])
                index += 3
            } else if ctx.args.isKeyword(index, "setname") && more >= 1 {
                let candidate = ctx.args[index + 1]
                guard isValidClientAttribute(candidate) || candidate.readableBytes == 0 else {
                    throw CommandError("ERR Client names cannot contain spaces, newlines or special characters.")
                }
                name = candidate
                index += 2
            } else {
                throw CommandError("ERR Syntax error in HELLO option '\(raw: ctx.args.printable(index))'")
            }
        }
        if let (user, password) = credentials {
            try logIn(ctx, user: user, password: password)
        }
        guard ctx.client.isAuthenticated else {
            throw CommandError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
        }
        if let name { ctx.client.name = name.readableBytes == 0 ? nil : String(buffer: name) }
        if version != 0 {
            ctx.client.protocolVersion = version == 3 ? .v3 : .v2
            ctx.reply.version = ctx.client.protocolVersion
        }
        ctx.reply.map(7)
        ctx.reply.bulk("server")
        ctx.reply.bulk("redis")
        ctx.reply.bulk("version")
        ctx.reply.bulk(redisVersion)
        ctx.reply.bulk("proto")
        ctx.reply.integer(ctx.client.protocolVersion.rawValue)
        ctx.reply.bulk("id")
        ctx.reply.integer(Int64(ctx.client.id))
        ctx.reply.bulk("mode")
        ctx.reply.bulk("standalone")
        ctx.reply.bulk("role")
        ctx.reply.bulk("master")
        ctx.reply.bulk("modules")
        ctx.reply.array(0)
    }

    // MARK: CLIENT

    static func clientID(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(Int64(ctx.client.id))
    }

    static func clientSetname(_ ctx: inout CommandContext) throws(CommandError) {
        let name = ctx.args[2]
        guard name.readableBytes == 0 || isValidClientAttribute(name) else {
            throw CommandError("ERR Client names cannot contain spaces, newlines or special characters.")
        }
        ctx.client.name = name.readableBytes == 0 ? nil : String(buffer: name)
        ctx.reply.ok()
    }

    static func clientGetname(_ ctx: inout CommandContext) throws(CommandError) {
        if let name = ctx.client.name { ctx.reply.bulk(name) } else { ctx.reply.null() }
    }

    static func clientSetinfo(_ ctx: inout CommandContext) throws(CommandError) {
        let attribute = ctx.args.lowercased(2)
        guard attribute == "lib-name" || attribute == "lib-ver" else {
            throw CommandError("ERR Unrecognized option '\(raw: ctx.args.printable(2))'")
        }
        let value = ctx.args[3]
        guard value.readableBytes == 0 || isValidClientAttribute(value) else {
            throw CommandError("ERR \(raw: ctx.args.printable(2)) cannot contain spaces, newlines or special characters.")
        }
        let text = value.readableBytes == 0 ? nil : String(buffer: value)
        if attribute == "lib-name" { ctx.client.libraryName = text } else { ctx.client.libraryVersion = text }
        ctx.reply.ok()
    }

    static func clientInfo(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.client.lastCommandSpec = ctx.spec
        ctx.reply.verbatim(ctx.client.infoLine(now: ctx.now, argumentBytes: ctx.args.byteCount) + "\n")
    }

    static func clientList(_ ctx: inout CommandContext) throws(CommandError) {
        var ids: Set<UInt64>? = nil
        var index = 2
        while index < ctx.args.count {
            if ctx.args.isKeyword(index, "type") && index + 1 < ctx.args.count {
                let type = ctx.args.lowercased(index + 1)
                guard ["normal", "master", "replica", "slave", "pubsub"].contains(type) else {
                    throw CommandError("ERR Unknown client type '\(raw: ctx.args.printable(index + 1))'")
                }
                let matching = Set(ctx.server.clients.all.filter { $0.clientType == (type == "slave" ? "replica" : type) }.map(\.id))
                ids = ids.map { $0.intersection(matching) } ?? matching
                index += 2
            } else if ctx.args.isKeyword(index, "id") && index + 1 < ctx.args.count {
                var chosen = Set<UInt64>()
                index += 1
                while index < ctx.args.count {
                    let value = try ctx.args.integer(index, or: CommandError("ERR Invalid client ID"))
                    // Like Redis, an id no client can have (0, negative) matches nothing.
                    if value > 0 { chosen.insert(UInt64(value)) }
                    index += 1
                }
                ids = ids.map { $0.intersection(chosen) } ?? chosen
            } else {
                throw .syntax
            }
        }
        ctx.client.lastCommandSpec = ctx.spec
        let now = ctx.now
        let caller = ctx.client, callerArguments = ctx.args.byteCount
        let text = ctx.server.clients.all.sorted { $0.id < $1.id }
            .filter { ids?.contains($0.id) ?? true }
            .map { client in
                let arguments = client === caller ? callerArguments : ctx.server.blocking.argumentBytes(of: client)
                return client.infoLine(now: now, argumentBytes: arguments) + "\n"
            }.joined()
        ctx.reply.verbatim(text)
    }

    /// CLIENT REPLY ON|OFF|SKIP (see `ClientState.ReplyMode`).
    static func clientReply(_ ctx: inout CommandContext) throws(CommandError) {
        let client = ctx.client
        if ctx.args.isKeyword(2, "on") {
            client.replyMode = .on
            client.replySkipNext = false
            ctx.reply.ok()
        } else if ctx.args.isKeyword(2, "off") {
            client.replyMode = .off
        } else if ctx.args.isKeyword(2, "skip") {
            if client.replyMode != .off { client.replySkipNext = true }
        } else {
            throw .syntax
        }
    }

    static func clientKill(_ ctx: inout CommandContext) throws(CommandError) {
        let server = ctx.server
        if ctx.args.count == 3 {
            let address = ctx.args.string(2)
            guard let victim = server.clients.all.first(where: { $0.address == address }) else {
                throw CommandError("ERR No such client")
            }
            kill(ctx, victim)
            ctx.reply.ok()
            return
        }
        var id: UInt64? = nil, address: String? = nil, localAddress: String? = nil, user: String? = nil
        var skipMe = true
        var typeFilter: String? = nil
        var index = 2
        while index < ctx.args.count {
            guard index + 1 < ctx.args.count else { throw .syntax }
            if ctx.args.isKeyword(index, "id") {
                let value = try ctx.args.integer(index + 1, or: CommandError("ERR client-id should be greater than 0"))
                guard value > 0 else { throw CommandError("ERR client-id should be greater than 0") }
                id = UInt64(value)
            } else if ctx.args.isKeyword(index, "addr") {
                address = ctx.args.string(index + 1)
            } else if ctx.args.isKeyword(index, "laddr") {
                localAddress = ctx.args.string(index + 1)
            } else if ctx.args.isKeyword(index, "user") {
                let name = ctx.args.string(index + 1)
                guard ctx.server.acl.user(named: name) != nil else {
                    throw CommandError("ERR No such user '\(raw: ctx.args.printable(index + 1))'")
                }
                user = name
            } else if ctx.args.isKeyword(index, "type") {
                let type = ctx.args.lowercased(index + 1)
                guard ["normal", "master", "replica", "slave", "pubsub"].contains(type) else {
                    throw CommandError("ERR Unknown client type '\(raw: ctx.args.printable(index + 1))'")
                }
                typeFilter = type
            } else if ctx.args.isKeyword(index, "skipme") {
                if ctx.args.isKeyword(index + 1, "yes") { skipMe = true }
                else if ctx.args.isKeyword(index + 1, "no") { skipMe = false }
                else { throw .syntax }
            } else {
                throw .syntax
            }
            index += 2
        }
        var killed = 0
        for victim in server.clients.all {
            if let id, victim.id != id { continue }
            if let address, victim.address != address { continue }
            if let localAddress, victim.localAddress != localAddress { continue }
            if let user, victim.user != user { continue }
            if let typeFilter, victim.clientType != (typeFilter == "slave" ? "replica" : typeFilter) { continue }
            if skipMe && victim === ctx.client { continue }
            kill(ctx, victim)
            killed += 1
        }
        ctx.reply.integer(killed)
    }

    private static func kill(_ ctx: CommandContext, _ victim: ClientState) {
        if victim === ctx.client {
            victim.closeAfterReply = true
        } else {
            ctx.server.pendingActions.append(.close(victim))
        }
    }

    /// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP], with Redis's
    /// checks in Redis's order.
    static func clientTracking(_ ctx: inout CommandContext) throws(CommandError) {
        var options = TrackingState()
        var prefixes: [Bytes] = []
        var index = 3
        while index < ctx.args.count {
            let more = index + 1 < ctx.args.count
            if ctx.args.isKeyword(index, "redirect") && more {
                index += 1
                if options.redirect != 0 { throw CommandError("ERR A client can only redirect to a single other client") }
                let id = try ctx.args.integer(index)
                guard id > 0, ctx.server.clients[UInt64(id)] != nil else {
                    throw CommandError("ERR The client ID you want redirect to does not exist")
                }
                options.redirect = UInt64(id)
            } else if ctx.args.isKeyword(index, "bcast") {
                options.broadcast = true
            } else if ctx.args.isKeyword(index, "optin") {
                options.optIn = true
            } else if ctx.args.isKeyword(index, "optout") {
                options.optOut = true
            } else if ctx.args.isKeyword(index, "noloop") {
                options.noLoop = true
            } else if ctx.args.isKeyword(index, "prefix") && more {
                index += 1
                prefixes.append(Bytes(ctx.args[index]))
            } else {
                throw .syntax
            }
            index += 1
        }
        let client = ctx.client
        if ctx.args.isKeyword(2, "off") {
            ctx.server.tracking.disable(client)
            return ctx.reply.ok()
        }
        guard ctx.args.isKeyword(2, "on") else { throw .syntax }
        if !options.broadcast && !prefixes.isEmpty { throw CommandError("ERR PREFIX option requires BCAST mode to be enabled") }
        if let current = client.tracking {
            if current.broadcast != options.broadcast {
                throw CommandError("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
            }
        }
        if options.broadcast && (options.optIn || options.optOut) {
            throw CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
        }
        if options.optIn && options.optOut { throw CommandError("ERR You can't specify both OPTIN mode and OPTOUT mode") }
        if let current = client.tracking, (options.optIn && current.optOut) || (options.optOut && current.optIn) {
            throw CommandError("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.")
        }
        if options.broadcast {
            func overlap(_ a: Bytes, _ b: Bytes) -> Bool { a.hasPrefix(b) || b.hasPrefix(a) }
            for (position, prefix) in prefixes.enumerated() {
                if let existing = client.tracking?.prefixes.first(where: { overlap($0, prefix) }) {
                    throw CommandError("ERR Prefix '\(raw: prefix.array)' overlaps with an existing prefix '\(raw: existing.array)'. Prefixes for a single client must not overlap.")
                }
                if let other = prefixes[(position + 1)...].first(where: { overlap($0, prefix) }) {
                    throw CommandError("ERR Prefix '\(raw: prefix.array)' overlaps with another provided prefix '\(raw: other.array)'. Prefixes for a single client must not overlap.")
                }
            }
        }
        ctx.server.tracking.enable(client, options, prefixes: prefixes)
        ctx.reply.ok()
    }

    /// CLIENT CACHING YES|NO: whether the next command's keys are tracked (OPTIN / OPTOUT modes).
    static func clientCaching(_ ctx: inout CommandContext) throws(CommandError) {
        guard let state = ctx.client.tracking else {
            throw CommandError("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
        }
        if ctx.args.isKeyword(2, "yes") {
            guard state.optIn else { throw CommandError("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.") }
        } else if ctx.args.isKeyword(2, "no") {
            guard state.optOut else { throw CommandError("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.") }
        } else {
            throw .syntax
        }
        ctx.client.tracking?.caching = true
        ctx.reply.ok()
    }

    static func clientGetredir(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(ctx.client.tracking.map { Int64($0.redirect) } ?? -1)
    }

    static func clientTrackinginfo(_ ctx: inout CommandContext) throws(CommandError) {
        var flags: [String] = []
        if let state = ctx.client.tracking {
            flags.append("on")
            if state.broadcast { flags.append("bcast") }
            if state.optIn {
                flags.append("optin")
                if state.caching { flags.append("caching-yes") }
            }
            if state.optOut {
                flags.append("optout")
                if state.caching { flags.append("caching-no") }
            }
            if state.noLoop { flags.append("noloop") }
            if state.brokenRedirect { flags.append("broken_redirect") }
        } else {
            flags.append("off")
        }
        ctx.reply.map(3)
        ctx.reply.bulk("flags")
        ctx.reply.set(flags.count)
        for flag in flags { ctx.reply.bulk(flag) }
        ctx.reply.bulk("redirect")
        ctx.reply.integer(ctx.client.tracking.map { Int64($0.redirect) } ?? -1)
        ctx.reply.bulk("prefixes")
        ctx.replyArray((ctx.client.tracking?.prefixes ?? []).sorted { $0.array.lexicographicallyPrecedes($1.array) })
    }

    /// CLIENT UNBLOCK id [TIMEOUT | ERROR]: ends another client's blocking command early.
    static func clientUnblock(_ ctx: inout CommandContext) throws(CommandError) {
        guard ctx.args.count <= 4 else { throw .subcommandSyntax(Array(ctx.args[1].readableBytesView), of: "client") }
        var error: String? = nil
        if ctx.args.count == 4 {
            if ctx.args.isKeyword(3, "error") {
                error = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
            } else if !ctx.args.isKeyword(3, "timeout") {
                throw CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
            }
        }
        let id = try ctx.args.integer(2)
        let target = id > 0 ? ctx.server.clients[UInt64(id)] : nil
        ctx.reply.integer(target.map { ctx.server.abortBlocked($0, error: error) } == true ? 1 : 0)
    }

    /// CLIENT PAUSE timeout [WRITE | ALL] (milliseconds; ALL by default).
    static func clientPause(_ ctx: inout CommandContext) throws(CommandError) {
        var mode = ClientPause.Mode.all
        if ctx.args.count == 4 {
            if ctx.args.isKeyword(3, "write") {
                mode = .write
            } else if !ctx.args.isKeyword(3, "all") {
                throw CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
            }
        }
        let timeout = try ctx.args.integer(2, or: CommandError("ERR timeout is not an integer or out of range"))
        guard timeout >= 0 else { throw CommandError("ERR timeout is negative") }
        let (end, overflow) = ctx.now.addingReportingOverflow(timeout)
        ctx.server.pauseClients(mode, until: timeout == 0 ? 0 : overflow ? .max : end)
        ctx.reply.ok()
    }

    /// CLIENT UNPAUSE: ends a pause at once.
    static func clientUnpause(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.server.unpauseClients()
        ctx.reply.ok()
    }

    static func clientNoEvict(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.client.noEvict = try onOff(ctx, 2)
        ctx.reply.ok()
    }

    static func clientNoTouch(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.client.noTouch = try onOff(ctx, 2)
        ctx.reply.ok()
    }

    static func onOff(_ ctx: CommandContext, _ index: Int) throws(CommandError) -> Bool {
        if ctx.args.isKeyword(index, "on") { return true }
        if ctx.args.isKeyword(index, "off") { return false }
        throw .syntax
    }

    static func clientHelp(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "CLIENT", [
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
        ])
    }
}
