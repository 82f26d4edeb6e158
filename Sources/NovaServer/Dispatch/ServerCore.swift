package import NIOCore
import NIOConcurrencyHelpers
package import Logging
package import NovaEngine
package import NovaRESP
import NovaScripting
import NovaObservability

/// What a session reports of its buffers with each batch, for CLIENT LIST (see `ClientBuffers`).
package struct BufferReport {
    /// Input received and not decoded yet.
    package var unparsed: Int
    /// The encoded size of the whole batch being run.
    package var batchBytes: Int
    package var free: Int
    package var capacity: Int
    package var peak: Int
    package var pendingOutput: Int

    package init(unparsed: Int, batchBytes: Int, free: Int, capacity: Int, peak: Int, pendingOutput: Int) {
        (self.unparsed, self.batchBytes, self.free, self.capacity, self.peak, self.pendingOutput) =
            (unparsed, batchBytes, free, capacity, peak, pendingOutput)
    }

    /// The figures with commands from `start` on still to run (the batch's bytes shared evenly among
    /// its commands: a decoded command's own size is not kept).
    func figures(_ batch: CommandBatch, from start: Int) -> ClientBuffers {
        var result = ClientBuffers()
        let remaining = batch.count == 0 ? 0 : batchBytes * (batch.count - min(start, batch.count)) / batch.count
        result.queryBuffer = unparsed + remaining
        result.queryBufferFree = free
        result.readBufferSize = capacity
        result.readBufferPeak = peak
        result.pendingOutput = pendingOutput
        return result
    }
}

/// Counters for INFO stats.
package struct ServerStats: Sendable {
    package var totalConnectionsReceived = 0
    package var totalCommandsProcessed = 0
    package var netInputBytes = 0
    package var netOutputBytes = 0
    package var rejectedConnections = 0
    package var totalErrorReplies = 0
    package var totalReads = 0
    package var totalWrites = 0
    /// Keys changed since the last successful save (`rdb_changes_since_last_save`).
    package var dirty = 0
    /// Keys changed since start, never reset: whether a command changed anything is told by this
    /// counter, because a save inside the command (FLUSHALL, SAVE) resets `dirty`.
    package var changes = 0
}

/// Per-command counters for INFO commandstats.
package struct CommandStatistics: Sendable {
    package var calls = 0
    package var microseconds = 0.0
    package var rejectedCalls = 0
    package var failedCalls = 0
}

/// Something to do after the server lock is released (closing a channel can re-enter the server).
package enum PostAction: Sendable {
    case close(ClientState)
    /// A blocked command was served (or timed out): deliver its reply and resume the client's input.
    case resume(ClientState, ByteBuffer)
    /// The executing client is now blocked: stop running its input until `resume`.
    case blocked
    case shutdown(ShutdownRequest)
}

/// How SHUTDOWN (or a signal) asked the server to stop.
package struct ShutdownRequest: Sendable, Equatable {
    /// Save a snapshot first: nil follows the configured save rules.
    package var save: Bool?
    package var now = false
    package var force = false

    package init(save: Bool? = nil, now: Bool = false, force: Bool = false) {
        self.save = save
        self.now = now
        self.force = force
    }
}

/// Hooks the hosting service installs so that commands can reach beyond the engine.
package struct ServerHooks: Sendable {
    /// Called (outside the lock) when SHUTDOWN succeeded.
    package var shutdown: @Sendable (ShutdownRequest) -> Void = { _ in }
    /// Moves the listeners to the configured port and addresses; returns an error message on failure.
    package var rebind: @Sendable (ServerSettings) -> String? = { _ in nil }
    /// Re-reads the TLS certificates after CONFIG SET of a `tls-*` parameter; returns an error message.
    package var reloadTLS: @Sendable (TLSSettings) -> String? = { _ in nil }
    /// Serves the calling thread's own connections once, without waiting (a script past
    /// `busy-reply-threshold` calls it from its hook, lock held).
    package var serveConnectionsWhileBusy: @Sendable () -> Void = {}
    package init() {}
}

/// The state shared by all connections: keyspace, configuration, clients and statistics, all guarded by
/// one lock taken once per batch of commands read from a connection.
///
/// The execution model (one lock, taken per read batch, event loops parsing and encoding in parallel
/// outside it) is explained with measurements in docs/execution-model.md.
package final class ServerCore: @unchecked Sendable {
    let lock = ServerLock()

    // Everything below is guarded by `lock`, and none of it is visible outside this module: the
    // executables and tests go through `register`, `execute` and `withLock`-taking methods.
    let keyspace: Keyspace
    let config: ConfigStore
    let commands: CommandTable
    var stats = ServerStats()
    var commandStats: [CommandStatistics]
    var errorStats: [String: Int] = [:]
    private(set) var clients = ClientRegistry()
    var pendingActions: [PostAction] = []
    /// Clients waiting in blocking commands.
    var blocking = BlockingQueues()
    /// `notify-keyspace-events`, parsed.
    var keyspaceEventFlags: KeyspaceEventFlags = []
    /// Pub/Sub subscriptions.
    var pubsub = PubSubRegistry()
    /// Clients in MONITOR mode, in the order they entered it.
    var monitors: [ClientState] = []
    /// CLIENT TRACKING tables.
    var tracking = TrackingTable()
    /// ACL users, rules and log.
    let acl: AccessControl
    /// The `requirepass` value last given to the default user (nil before the first).
    private var appliedRequirePass: String?? = nil
    /// The client whose batch is running (NOLOOP tracking); nil for the server's own work.
    var currentClient: ClientState?
    /// Clients watching each key (WATCH).
    var watches = WatchTable()
    /// SLOWLOG, and its thresholds from the configuration.
    var slowLog = SlowLog()
    var slowLogLimits = (slowerThan: 10_000, maxLength: 128)
    /// Per-command latency histograms (`latency-tracking`), by command id; each allocates its buckets on
    /// its command's first call.
    var latencyHistograms: [LatencyHistogram]
    /// LATENCY's spikes, and the settings both read on every command.
    var latencyMonitor = LatencyMonitor()
    var latencySettings = (tracking: true, monitorThreshold: 0)
    /// INFO's instantaneous rates, sampled by the cron.
    var rates = InstantaneousRates()
    /// Snapshot and loading state (INFO persistence, LASTSAVE, save rules).
    var snapshots = SnapshotState()
    /// The append-only file when `appendonly` is on.
    var aof: AppendOnlyFile?
    var aofState = AOFState()
    /// Highest used_memory seen.
    var peakMemory = 0
    /// Allocated bytes once the server was set up, before any data (MEMORY STATS `startup.allocated`).
    var startupMemory = 0
    /// Allocator-reported bytes in use at the last sample, and the engine footprint at that moment.
    var memorySample = (allocated: 0, footprint: 0)
    /// When `memorySample` was taken (monotonic ns).
    var memorySampleTime: UInt64 = 0
    /// How long the last allocator sample took (ns): glibc's `mallinfo2` walks every free chunk, so on a
    /// large, churned heap it costs milliseconds (4-5 ms at 1.4 GB of 16 KB values).
    var memorySampleCost: UInt64 = 0
    /// CLIENT PAUSE state, and whether a pause is set (the one test dispatch makes per command).
    var clientPause = ClientPause()
    var isPaused = false
    /// DEBUG SET-ACTIVE-EXPIRE: whether the cron deletes expired keys.
    var activeExpireEnabled = true
    /// INFO `master_replid`: the run ID until DEBUG CHANGE-REPL-ID draws a new one.
    lazy var replicationID = runID
    /// DEBUG QUICKLIST-PACKED-THRESHOLD (accepted and kept; lists here have no packed/plain nodes).
    var quicklistPackedThreshold = 1 << 30
    /// Shutting down after the final save (or the decision not to save): no command runs any more, and
    /// clients that send one are disconnected without a reply.
    var halted = false
    /// The Lua interpreter (created by the first script: see `scripting`) and the client its commands
    /// run as.
    var lua: LuaScripting?
    var luaClient: ClientState?
    /// The script running now.
    var runningScript: ScriptRun?
    /// Commands refused with OOM since the last log line about them, and when that was (monotonic ns).
    var oomLog: (rejected: Int, lastLogged: UInt64) = (0, 0)
    /// The one `ScriptRun`, reused by every script (created by the first).
    var reusableScriptRun: ScriptRun?
    /// The function libraries' interpreter (FUNCTION LOAD), created on first use.
    var functionEngine: LuaScripting?
    /// The alerts (`alert-*` settings), evaluated once a second by the cron.
    var alertMonitor = AlertMonitor(rules: AlertRules())
    var lastAlertCheck: Int64 = 0

    package let logger: Logger
    var hooks = ServerHooks()
    /// Unix ms when the server started.
    package let startTime: Int64
    /// 40 hex characters identifying this run.
    package let runID: String
    /// Bound addresses (`ip:port`) for INFO and logs.
    var listeningPort = 0

    package init(config: ConfigStore, logger: Logger, commands: CommandTable? = nil) {
        self.config = config
        self.logger = logger
        let table = commands ?? CommandTable(CommandRegistry.all, renames: config.renamedCommands)
        self.commands = table
        self.commandStats = Array(repeating: CommandStatistics(), count: table.all.count)
        self.latencyHistograms = Array(repeating: LatencyHistogram(), count: table.all.count)
        let now = SystemClock.nowMilliseconds()
        self.startTime = now
        self.snapshots.lastSaveTime = now / 1000
        self.keyspace = Keyspace(databaseCount: config.settings.databases, now: now)
        self.acl = AccessControl(commands: table)
        var generator = SystemRandomNumberGenerator()
        self.runID = (0..<40).map { _ in String(Int.random(in: 0..<16, using: &generator), radix: 16) }.joined()
        applySettings()
        sampleMemory()
        startupMemory = memorySample.allocated
        keyspace.removalObserver = { [unowned self] database, key, reason in keyRemoved(database, key, reason) }
        keyspace.deferredRelease = { LazyFreer.shared.release($0) }
    }

    /// Runs a whole batch (tests and embedders that do not stream).
    package func execute(_ batch: CommandBatch, client: ClientState, reply: inout RESPWriter) -> [PostAction] {
        var start = 0
        return execute(batch, from: &start, client: client, reply: &reply)
    }

    /// Runs `body` with the lock held.
    package func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        try lock.withLock(body)
    }

    /// Runs `body` with the lock held, on a busy script's thread if one lends it (see `ServerLock`): for
    /// the transports' connection-serving paths, which must go on answering while a script is busy.
    package func withConnectionLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        try lock.withLock(lendable: true, body)
    }

    /// Thresholds for the compact encodings OBJECT ENCODING reports.
    package internal(set) var encodingLimits = EncodingLimits()

    /// Copies configuration values the engine acts on into it (after start-up and CONFIG SET).
    func applySettings() {
        let settings = config.settings
        func int(_ name: String, _ fallback: Int) -> Int { Int(config.value(name) ?? "") ?? fallback }
        encodingLimits.hashMaxListpackEntries = int("hash-max-listpack-entries", 512)
        encodingLimits.hashMaxListpackValue = int("hash-max-listpack-value", 64)
        encodingLimits.setMaxIntsetEntries = int("set-max-intset-entries", 512)
        encodingLimits.zsetMaxListpackEntries = int("zset-max-listpack-entries", 128)
        encodingLimits.zsetMaxListpackValue = int("zset-max-listpack-value", 64)
        encodingLimits.streamNodeMaxBytes = int("stream-node-max-bytes", 4096)
        encodingLimits.streamNodeMaxEntries = int("stream-node-max-entries", 100)
        keyspaceEventFlags = KeyspaceEventFlags(parsing: settings.notifyKeyspaceEvents) ?? []
        keyspace.insertionObserver = keyspaceEventFlags.contains(.new) ? { [unowned self] database, key in
            notifyKeyspaceEvent(.new, "new", key, database: database)
        } : nil
        keyspace.evictionPolicy = settings.evictionPolicy
        keyspace.sharesIntegers = settings.maxMemory == 0 || !settings.evictionPolicy.needsPerKeyClock
        keyspace.evictionSamples = settings.maxMemorySamples
        keyspace.lfuLogFactor = settings.lfuLogFactor
        keyspace.lfuDecayTime = settings.lfuDecayTime
        slowLogLimits = (settings.slowlogSlowerThan, settings.slowlogMaxLength)
        alertMonitor.rules = settings.alertRules
        var lazy: LazyFreeing = []
        for (name, event) in [("lazyfree-lazy-expire", LazyFreeing.expire), ("lazyfree-lazy-eviction", .eviction),
                              ("lazyfree-lazy-user-del", .userDelete), ("lazyfree-lazy-user-flush", .userFlush)]
        where config.value(name) == "yes" { lazy.insert(event) }
        keyspace.lazyFreeing = lazy
        latencySettings = (config.value("latency-tracking") == "yes", int("latency-monitor-threshold", 0))
        acl.channelsAllowedByDefault = config.value("acl-pubsub-default") == "allchannels"
        // Like Redis, `requirepass` sets the default user's only password when it is set (not on every
        // CONFIG SET of another parameter, which would undo ACL SETUSER default).
        if appliedRequirePass != .some(settings.requirePass) {
            acl.setDefaultPassword(settings.requirePass)
            appliedRequirePass = .some(settings.requirePass)
        }
    }

    // MARK: Clients

    /// Redis's refusal of a non-loopback client while protected mode is on and the default user has no
    /// password; nil when `address` (`ip:port` or `[ip6]:port`) may be served. Like Redis, only 127.0.0.1
    /// and ::1 count as loopback.
    package func protectedModeRefusal(peer address: String) -> String? {
        let (protected, open) = lock.withLock(lendable: true) { (config.settings.protectedMode, acl.defaultUser.noPassword) }
        guard protected && open else { return nil }
        let host = address.hasPrefix("[")
            ? String(address.dropFirst().prefix { $0 != "]" })
            : String(address.prefix { $0 != ":" })
        if host == "127.0.0.1" || host == "::1" { return nil }
        return Self.protectedModeMessage
    }

    /// The text Redis 7.0 sends before closing such a connection.
    static let protectedModeMessage = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n"

    /// Registers a new connection. Returns nil (and counts a rejection) when `maxclients` is reached.
    package func register(connection: (any ConnectionControl)?, address: String, localAddress: String) -> ClientState? {
        lock.withLock(lendable: true) {
            if clients.count >= config.settings.maxClients {
                stats.rejectedConnections += 1
                return nil
            }
            let client = clients.add { id in
                ClientState(id: id, connection: connection, address: address, localAddress: localAddress,
                            now: SystemClock.nowMilliseconds(), user: acl.defaultUser)
            }
            stats.totalConnectionsReceived += 1
            return client
        }
    }

    /// Forgets a closed connection.
    package func unregister(_ client: ClientState) {
        lock.withLock(lendable: true) {
            blocking.remove(client)
            clientPause.remove(client)
            watches.unwatchAll(client)
            pubsub.unsubscribeAll(client)
            tracking.disable(client)
            stopMonitoring(client)
            clients.remove(client)
        }
    }

    // MARK: Execution

    /// Runs commands of a batch from one connection under a single lock acquisition, writing replies into
    /// `reply`, starting at `start`. Stops early when the client asked to be closed (QUIT) or when the
    /// replies written reach `outputLimit` bytes (the connection resumes once they are sent), and sets
    /// `start` to the first command not run. Returns actions to perform after the lock is released.
    ///
    /// `bytesRead` and `bytesWritten` are the connection's traffic since its last batch, for INFO.
    package func execute(
        _ batch: CommandBatch, from start: inout Int, client: ClientState, reply: inout RESPWriter,
        outputLimit: Int = .max, bytesRead: Int = 0, bytesWritten: Int = 0, buffers: BufferReport? = nil
    ) -> [PostAction] {
        var appendOnly: AppendOnlyFile? = nil
        defer {
            // Written (and fsynced with `appendfsync always`) before the caller sends the replies.
            if let appendOnly, appendOnly.hasPending { appendOnly.flush() }
        }
        return lock.withLock(lendable: true) {
            defer { appendOnly = aof }
            if halted {
                client.closeAfterReply = true
                return []
            }
            stats.netInputBytes += bytesRead
            stats.netOutputBytes += bytesWritten
            stats.totalReads += 1
            // While a script is busy this runs nested in it (see ServerLock): its time, client and pending
            // actions are put back afterwards.
            let (outerNow, outerClient, outerActions) = (keyspace.now, currentClient, pendingActions)
            pendingActions = []
            defer { (currentClient, pendingActions) = (outerClient, outerActions) }
            let now = SystemClock.nowMilliseconds()
            keyspace.now = now
            defer { if runningScript != nil { keyspace.now = outerNow } }
            client.lastInteraction = now
            if let buffers { client.buffers = buffers.figures(batch, from: start) }
            defer { if let buffers { client.buffers = buffers.figures(batch, from: start) } }
            var context = CommandContext(server: self, client: client, reply: reply)
            currentClient = client
            reply = RESPWriter(buffer: ByteBuffer())
            // One clock read per command: each command's time runs from the end of the previous one.
            context.clock = SystemClock.monotonicNanoseconds()
            // The batch's storage goes into the context once; each command moves the window over it.
            context.args = Arguments(storage: batch.arguments, range: 0..<0)
            var prefetched = start
            while start < batch.count && !client.closeAfterReply && !client.isBlocked && !halted
                    && context.reply.pendingBytes < outputLimit {
                if start >= prefetched { prefetched = prefetchKeys(batch, from: start, db: client.database) }
                context.args.select(batch.range(of: start))
                if client.replyMode == .on && !client.replySkipNext {
                    dispatch(&context)
                } else {
                    dispatchWithoutReply(&context)
                }
                // Postponed by CLIENT PAUSE: the command runs again when the client resumes.
                if client.isPostponed { break }
                start += 1
            }
            reply = context.reply
            sendTrackingBroadcasts()
            if client.isBlocked { pendingActions.append(.blocked) }
            return pendingActions
        }
    }

    /// Commands of a pipeline (or keys of one command) prefetched at a time.
    static let prefetchWindow = 16
    /// The longest key a prefetch hashes (a pipeline's first arguments include ECHO's and EVAL's).
    static let prefetchKeyLimit = 1024

    /// Starts loading what the next commands of a pipeline will read under their first key (the second
    /// argument, where almost every command with a key has one), so that the cache misses of up to
    /// `prefetchWindow` lookups overlap (`Keyspace.prefetch`). Returns the end of the window. A single
    /// command or a small database is not worth it; an argument that is no key costs a hash.
    private func prefetchKeys(_ batch: CommandBatch, from start: Int, db: Int) -> Int {
        let end = min(batch.count, start + Self.prefetchWindow)
        Self.prefetch(keyspace, db, count: end - start) { offset in
            let range = batch.range(of: start + offset)
            return range.count >= 2 ? batch.arguments[range.lowerBound + 1] : nil
        }
        return end
    }

    /// Prefetches what several clients' next commands read under their first keys (`keys`: each one's
    /// database and key, from `Session.nextKey`), so that the lookups of the clients one turn of an event
    /// loop serves overlap their cache misses as a pipeline's do. Only the first key's database is
    /// prefetched (clients almost always share one). Skipped while another thread holds the lock: a
    /// prefetch is not worth waiting for.
    func prefetch(nextKeys keys: [(db: Int, key: ByteBuffer)]) {
        guard let db = keys.first?.db else { return }
        lock.withLockIfFree {
            Self.prefetch(keyspace, db, count: keys.count) { keys[$0].db == db ? keys[$0].key : nil }
        }
    }

    /// Hashes the keys `key(0..<count)` names (nil: the command has none) and prefetches what looking
    /// them up in `db` reads (`Keyspace.prefetch`): the one way a pipeline and a multi-key command get
    /// their lookups' cache misses to overlap. Not for fewer than two keys or a database small enough to
    /// stay cached; a key over `prefetchKeyLimit` bytes is skipped (a pipeline's first arguments include
    /// ECHO's and EVAL's, rarely keys, not worth hashing twice).
    static func prefetch(_ keyspace: Keyspace, _ db: Int, count: Int, key: (Int) -> ByteBuffer?) {
        guard count >= 2, keyspace.prefetchPays(db) else { return }
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: count) { hashes in
            var found = 0
            for index in 0..<count {
                guard let buffer = key(index), buffer.readableBytes <= prefetchKeyLimit else { continue }
                hashes[found] = buffer.withUnsafeReadableBytes { KeyHashing.hash($0) }
                found += 1
            }
            keyspace.prefetch(db, hashes: UnsafeBufferPointer(rebasing: hashes[0..<found]))
        }
    }

    /// `dispatch` for a client that turned replies off or skips this one (CLIENT REPLY): what the command
    /// writes is dropped, unless it turned replies back on (CLIENT REPLY ON's `+OK`). A SKIP covers the
    /// one command after it, as Redis's `resetClient` moves it along.
    private func dispatchWithoutReply(_ context: inout CommandContext) {
        let client = context.client
        if client.replySkipNext {  // the previous command was CLIENT REPLY SKIP
            client.replySkipNext = false
            client.replyMode = .skip
        }
        let mark = context.reply.buffer.writerIndex
        dispatch(&context)
        if client.replyMode != .on { context.reply.rewind(to: mark) }
        if client.replyMode == .skip { client.replyMode = .on }
    }

    /// Looks up, checks and runs one command (lock held).
    func dispatch(_ context: inout CommandContext) {
        // The client and arguments are read from `context` where used: local copies would be a retain and
        // a release each on every command.
        guard var spec = commands.lookup(context.args[0]) else {
            var text: [UInt8] = []
            var index = 1
            while index < context.args.count && text.count < 128 {
                text += [39] + context.args.printable(index, limit: 128 - text.count) + [39, 32]
                index += 1
            }
            reject(&context, nil, "ERR unknown command '\(raw: context.args.printable(0, limit: 128))', with args beginning with: \(raw: text)")
            return
        }
        if !spec.subcommands.isEmpty && context.args.count >= 2 {
            guard let sub = commands.subcommand(of: spec, context.args[1]) else {
                reject(&context, nil, .unknownSubcommand(context.args.printable(1, limit: 128), of: spec.name))
                return
            }
            spec = sub
        }
        context.client.lastCommandSpec = spec
        guard spec.accepts(argumentCount: context.args.count) else {
            reject(&context, spec, .arity(spec.fullName))
            return
        }
        if !context.client.isAuthenticated && !spec.flags.contains(.noAuth) {
            reject(&context, spec, .noAuth)
            return
        }
        if spec.flags.contains(.noMulti) && context.client.inTransaction {
            reject(&context, spec, "ERR Command not allowed inside a transaction")
            return
        }
        if !context.client.aclUser.isUnrestricted && !context.client.isReplaying, let denial = acl.check(context.client.aclUser, spec, context.args) {
            logDenial(denial, client: context.client)
            reject(&context, spec, denial.error(spec))
            return
        }
        let replaying = context.client.isReplaying
        if snapshots.loading && !spec.flags.contains(.loading) && !replaying {
            reject(&context, spec, .loading)
            return
        }
        // A script past busy-reply-threshold serves other clients from its hook: only a few commands run.
        if let script = runningScript, script.isBusy, !spec.flags.contains(.allowBusy) {
            reject(&context, spec, script.busyError)
            return
        }
        // EXEC counts as a write and as deny-OOM when a queued command does.
        let queuedFlags = spec.flags.contains(.runsQueuedCommands) ? context.client.transaction?.flags ?? [] : []
        let maxMemory = config.settings.maxMemory
        if maxMemory > 0 && !replaying {
            // Redis's used memory includes the command's own arguments (its query buffer), so a value
            // bigger than the room left is refused, not stored; count them the same way.
            let denyOOM = spec.flags.contains(.denyOOM) || queuedFlags.contains(.denyOOM)
            if !enforceMaxMemory(maxMemory, incoming: denyOOM ? context.args.byteCount : 0) && denyOOM {
                reject(&context, spec, .outOfMemory)
                noteOutOfMemoryRejection()
                return
            }
        }
        if (spec.flags.contains(.write) || queuedFlags.contains(.write) || spec.flags.contains(.refusedOnDiskError))
            && !replaying && writesDeniedByDiskError {
            reject(&context, spec, .misconf)
            return
        }
        if context.client.isSubscriber && context.client.protocolVersion == .v2 && !spec.flags.contains(.allowedWhileSubscribed) {
            reject(&context, spec, "ERR Can't execute '\(spec.fullName)': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
            return
        }
        guard spec.handler != nil else {
            reject(&context, spec, .arity(spec.fullName))
            return
        }
        if isPaused && postponeIfPaused(context, spec.flags.union(queuedFlags)) { return }
        if let transaction = context.client.transaction, !spec.flags.contains(.transactionControl) {
            transaction.commands.append(Transaction.Command(
                spec: spec, arguments: (0..<context.args.count).map { ByteBuffer(bytes: context.args[$0].readableBytesView) }))
            transaction.flags.formUnion(spec.flags)
            context.reply.simpleString("QUEUED")
            return
        }
        call(&context, spec)
        // CLIENT CACHING applies to the next command only (to EXEC's inside MULTI).
        if context.client.tracking?.caching == true && !context.client.inTransaction
            && spec.parent?.flags.contains(.keepsTrackingCaching) != true {
            context.client.tracking?.caching = false
        }
        // Blocked clients are served once the script that made their keys ready has finished.
        if blocking.hasReadyKeys && runningScript == nil { serveReadyKeys() }
    }

    /// Runs one command that passed dispatch's checks (directly, or queued by MULTI and run by EXEC):
    /// its handler, statistics and append-only logging. Lock held.
    ///
    /// The client and arguments are read from `context` where they are used rather than copied up front:
    /// each copy held across the handler is a retain and a release on every command.
    func call(_ context: inout CommandContext, _ spec: CommandSpec) {
        context.spec = spec
        stats.totalCommandsProcessed += 1
        let changesBefore = stats.changes
        let database = context.client.database
        context.propagation = nil
        do {
            try spec.handler!(&context)
        } catch {
            context.reply.error(error.bytes)
            commandStats[spec.id].failedCalls += 1
            countError(error)
        }
        if spec.flags.contains(.readonly) {
            // Keys read are tracked for the client that sent the command. When a script's command reads,
            // Redis 7.0 tracks the keys the script declared (its KEYS) for the client that ran it; a
            // script command's own keys are not tracked otherwise.
            if context.client.tracking != nil {
                if spec.group != .scripting { rememberTrackedKeys(context.client, spec, context.args) }
            } else if let run = runningScript, context.client === run.client, run.caller.tracking != nil {
                rememberTrackedKeys(run.caller, run.callerSpec, run.callerArguments)
            }
        }
        // Like Redis: a command is logged when it changed something, as rewritten by its handler.
        if aof != nil && !context.client.isReplaying && (stats.changes != changesBefore || context.propagation != nil) {
            if let rewritten = context.propagation {
                propagate(database: database, commands: rewritten)
            } else {
                propagate(database: database, arguments: context.args)
            }
        }
        if !monitors.isEmpty && !context.client.isReplaying && !spec.flags.contains(.admin)
            && !spec.flags.contains(.skipMonitor) {
            feedMonitors(context.client, spec, context.args)
        }
        let end = SystemClock.monotonicNanoseconds()
        commandStats[spec.id].calls += 1
        commandStats[spec.id].microseconds += Double(end &- context.clock) / 1000
        recordIfSlow(context, spec, nanoseconds: end &- context.clock)
        if !context.client.isBlocked { recordLatency(spec, nanoseconds: end &- context.clock) }
        context.clock = end
        context.client.lastCommandSpec = spec
    }

    /// Answers a command refused before it ran. Inside MULTI the refusal also dooms the transaction, and a
    /// refused EXEC discards it with EXECABORT naming the reason, as Redis's `rejectCommand`.
    private func reject(_ context: inout CommandContext, _ spec: CommandSpec?, _ error: CommandError) {
        context.clock = SystemClock.monotonicNanoseconds()
        let client = context.client
        if let spec { commandStats[spec.id].rejectedCalls += 1 }
        if spec?.flags.contains(.runsQueuedCommands) == true {
            // Redis's own error texts ("ERR …") lose their code here; shared ones (NOAUTH, OOM …) keep it.
            let reason = error.bytes.starts(with: Array("ERR ".utf8)) ? Array(error.bytes.dropFirst(4)) : error.bytes
            let abort = CommandError("EXECABORT Transaction discarded because of: \(raw: reason)")
            context.reply.error(abort.bytes)
            countError(abort)
            discardTransaction(client)
            return
        }
        client.transaction?.failed = true
        context.reply.error(error.bytes)
        countError(error)
    }

    func countError(_ error: CommandError) {
        stats.totalErrorReplies += 1
        let code = error.code
        // Like Redis, keep the table small if clients invent error codes.
        if errorStats[code] != nil || errorStats.count < 128 { errorStats[code, default: 0] += 1 }
    }

    // MARK: Memory

    /// Bytes in use, as INFO reports them and as `maxmemory` is compared against: the allocator's figure
    /// at the last sample plus what the engine accounted for since.
    package var usedMemory: Int {
        max(0, memorySample.allocated + (keyspace.footprint - memorySample.footprint))
    }

    /// Takes a fresh allocator sample (INFO, MEMORY, and maxmemory when over the limit).
    func sampleMemory() {
        let start = SystemClock.monotonicNanoseconds()
        let allocated = ProcessMemory.allocatedBytes()
        recordMemorySample(allocated: allocated, footprint: keyspace.footprint, start: start)
    }

    /// The sample INFO and MEMORY STATS report from: a fresh one, unless the last is younger than the
    /// cron's spacing. Each sample holds the lock while glibc walks its free chunks (4-5 ms on a large,
    /// churned heap), so an exporter scraping many times a second would otherwise stall every client
    /// that often; what the engine allocated since the sample is counted either way (`usedMemory`).
    func refreshMemorySample() {
        if SystemClock.monotonicNanoseconds() &- memorySampleTime >= memorySampleSpacing { sampleMemory() }
    }

    func recordMemorySample(allocated: Int, footprint: Int, start: UInt64) {
        memorySample = (allocated, footprint)
        memorySampleTime = SystemClock.monotonicNanoseconds()
        memorySampleCost = memorySampleTime &- start
        peakMemory = max(peakMemory, allocated)
    }

    /// How old a sample may be before the cron takes another: at least a
    /// millisecond, and a hundred times what the last one cost, so that sampling never takes more than
    /// 1% of a core (every cron tick sampled a 1.4 GB heap in 4-5 ms: 4% of the server's CPU in a 16 KB
    /// GET benchmark, with the lock held).
    var memorySampleSpacing: UInt64 { max(1_000_000, memorySampleCost &* 100) }

    /// The cron's sample: when one is due, taken outside the lock (clients go on meanwhile). Allocations
    /// made while it runs may be counted both in it and in the engine's change since `footprint`, which
    /// errs on the high side for maxmemory until the next sample.
    func sampleMemoryFromCron() {
        let footprint = withLock { () -> Int? in
            SystemClock.monotonicNanoseconds() &- memorySampleTime >= memorySampleSpacing ? keyspace.footprint : nil
        }
        guard let footprint else { return }
        let start = SystemClock.monotonicNanoseconds()
        let allocated = ProcessMemory.allocatedBytes()
        withLock { recordMemorySample(allocated: allocated, footprint: footprint, start: start) }
    }

    /// The largest reply a command whose size no data bounds may build (random picks with repetition):
    /// the hard limit of `client-output-buffer-limit normal` when one is set, else 64 MB. Building it
    /// holds the server lock (64 MB of SRANDMEMBER picks take ~0.3 s here), so the default stays well
    /// below what would stall every other client for seconds.
    var maxReplyBytes: Int {
        let hard = config.settings.normalOutputLimit.hard
        return hard > 0 ? hard : Self.defaultMaxReplyBytes
    }

    static let defaultMaxReplyBytes = 64 << 20

    /// Evicts keys until memory in use plus `incoming` bytes (a command's arguments) is under `limit`;
    /// false when it stays above.
    func enforceMaxMemory(_ limit: Int, incoming: Int = 0) -> Bool {
        if usedMemory + incoming <= limit { return true }
        // The cron's sample may predate memory given back since (a large request's buffer, taken while it
        // was being read): over the limit, decide on a sample at most a millisecond old. (Not the cron's
        // longer spacing: a write right after a refused large one must see its buffer gone.)
        if SystemClock.monotonicNanoseconds() &- memorySampleTime > 1_000_000 {
            sampleMemory()
            if usedMemory + incoming <= limit { return true }
        }
        // Nothing is evicted during CLIENT PAUSE (no write runs then either).
        if isPaused { return true }
        let overhead = memorySample.allocated - memorySample.footprint + incoming
        let start = SystemClock.monotonicNanoseconds()
        defer {
            addLatencySampleIfNeeded("eviction-cycle", milliseconds: Int((SystemClock.monotonicNanoseconds() &- start) / 1_000_000))
        }
        return keyspace.evict(toFit: limit, overhead: overhead)
    }

    /// Counts a command refused with OOM and logs the refusals, at most once a minute (the first at
    /// once): Redis leaves no trace of them in its log, and an operator needs one.
    func noteOutOfMemoryRejection() {
        oomLog.rejected += 1
        let now = SystemClock.monotonicNanoseconds()
        guard oomLog.lastLogged == 0 || now &- oomLog.lastLogged >= 60_000_000_000 else { return }
        let since = oomLog.lastLogged == 0 ? "" : " in the last \((now &- oomLog.lastLogged) / 1_000_000_000) s"
        logger.warning("Refused \(oomLog.rejected) command(s)\(since) with OOM: used memory \(usedMemory) bytes is over maxmemory \(config.settings.maxMemory) bytes and maxmemory-policy \(config.value("maxmemory-policy") ?? "?") could not free enough")
        oomLog = (0, now)
    }
}

/// What a command handler works with: the server, the calling client, its arguments and its reply.
package struct CommandContext {
    package let server: ServerCore
    package let client: ClientState
    package var args: Arguments
    package var reply: RESPWriter
    /// The command being run. Not counted: specs live as long as the command table (set on every command).
    package unowned(unsafe) var spec: CommandSpec
    /// Monotonic time at which the current command started.
    var clock: UInt64 = 0

    init(server: ServerCore, client: ClientState, reply: RESPWriter) {
        self.server = server
        self.client = client
        self.args = Arguments([])
        self.reply = reply
        self.spec = server.commands.all[0]
        self.reply.version = client.protocolVersion
    }

    /// The engine.
    package var keyspace: Keyspace { server.keyspace }
    /// The client's selected database.
    package var db: Int { client.database }
    /// The time commands see (Unix ms), fixed for the batch.
    package var now: Int64 { server.keyspace.now }

    /// Lookup options for reads by this client (CLIENT NO-TOUCH).
    package var readOptions: Keyspace.LookupOptions { client.noTouch ? [.noTouch] : [] }

    /// Whether new small integer strings use Redis's shared objects (see `Keyspace.sharesIntegers`).
    var sharesIntegers: Bool { keyspace.sharesIntegers }

    /// Records that keys were changed (for save rules and INFO).
    package func dirty(_ changes: Int = 1) {
        server.stats.dirty += changes
        server.stats.changes &+= changes
    }

    /// True while a blocked command is run again because one of its keys got data: it must not block again.
    var isRetryingBlocked = false
    /// The key whose data woke the blocked command being run again (XREAD serves that key only).
    var readyKey: Bytes? = nil

    /// Whether this command runs inside a script (Redis's Lua client).
    var isScriptClient: Bool { client === server.luaClient }

    /// What the append-only file records for this command instead of its own arguments (nil: as sent).
    var propagation: [[[UInt8]]]? = nil

    /// Logs `commands` instead of the command as sent (absolute expiry times, DEL for GETDEL …).
    mutating func propagate(_ commands: [[UInt8]]...) {
        propagation = (propagation ?? []) + commands
    }

    /// Logs the command as sent even when it changed nothing (Redis's `forceCommandPropagation`).
    mutating func propagateAsSent() {
        propagate((0..<args.count).map { bytes($0) })
    }

    /// The bytes of argument `index`.
    func bytes(_ index: Int) -> [UInt8] { Array(args[index].readableBytesView) }

    /// Starts loading what looking up this command's keys `args[first]`, `args[first + step]`, … will
    /// read, up to `ServerCore.prefetchWindow` of them, so that a multi-key command (MGET, MSET, DEL,
    /// EXISTS) pays their cache misses together, as a pipeline's prefetch does across commands. Returns
    /// the argument index after the window; call again when the loop reaches it. Nothing is prefetched
    /// for fewer than two keys or a database small enough to stay cached (`Keyspace.prefetchPays`).
    func prefetchKeys(from first: Int, step: Int = 1) -> Int {
        let end = min(args.count, first + ServerCore.prefetchWindow * step)
        ServerCore.prefetch(keyspace, db, count: (end - first + step - 1) / step) { args[first + $0 * step] }
        return end
    }
}
