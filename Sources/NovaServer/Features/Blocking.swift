import NIOCore
import NovaEngine
import NovaRESP

/// A key in one database: what clients block on (BLPOP) or watch (WATCH).
struct DatabaseKey: Hashable {
    let database: Int
    let key: Bytes
}

/// A command waiting for data (BLPOP and friends), with its own copy of the arguments.
struct BlockedCommand {
    let client: ClientState
    let database: Int
    let keys: [DatabaseKey]
    let arguments: [ByteBuffer]
    let spec: CommandSpec
    /// Unix ms after which the client gets `timeoutReply`; nil waits forever.
    let deadline: Int64?
    /// What a timeout (or CLIENT UNBLOCK … TIMEOUT) answers.
    var timeoutReply: TimeoutReply = .nullArray

    enum TimeoutReply {
        /// The blocking list and sorted-set commands.
        case nullArray
        /// WAIT: how many replicas acknowledged (none here).
        case integer(Int)
    }
}

/// Clients blocked on keys, served in the order they blocked when data arrives (Redis's fairness),
/// timed out by the periodic task. Keeps `ClientState.isBlocked` in step. Guarded by the server lock.
struct BlockingQueues {
    /// The parked command of each blocked client.
    private var commands: [UInt64: BlockedCommand] = [:]
    /// Blocked client IDs per key, in blocking order.
    private var queues: [DatabaseKey: [UInt64]] = [:]
    /// Keys that received data since the last serving round, in signalling order.
    private var ready: [DatabaseKey] = []
    private var readySet: Set<DatabaseKey> = []

    /// Blocked clients (INFO `blocked_clients`).
    var count: Int { commands.count }
    /// Whether some signalled key waits to be served.
    var hasReadyKeys: Bool { !ready.isEmpty }

    /// Parks `command` in the queue of each of its keys.
    mutating func add(_ command: BlockedCommand) {
        commands[command.client.id] = command
        var seen = Set<DatabaseKey>()
        for entry in command.keys where seen.insert(entry).inserted {
            queues[entry, default: []].append(command.client.id)
        }
        command.client.isBlocked = true
    }

    /// Forgets a blocked client (served, timed out, disconnected); nil when it was not blocked.
    @discardableResult
    mutating func remove(_ client: ClientState) -> BlockedCommand? {
        guard let command = commands.removeValue(forKey: client.id) else { return nil }
        for entry in Set(command.keys) {
            queues[entry]?.removeAll { $0 == client.id }
            if queues[entry]?.isEmpty == true { queues[entry] = nil }
        }
        client.isBlocked = false
        return command
    }

    /// The bytes of the arguments a blocked client's command holds (CLIENT LIST `argv-mem`); 0 if none.
    func argumentBytes(of client: ClientState) -> Int {
        commands[client.id]?.arguments.reduce(0) { $0 + $1.readableBytes } ?? 0
    }

    /// Whether `client` is parked here.
    func contains(_ client: ClientState) -> Bool { commands[client.id] != nil }

    /// Marks `entry` as having new data if someone waits on it.
    mutating func signal(_ entry: DatabaseKey) {
        guard queues[entry] != nil, readySet.insert(entry).inserted else { return }
        ready.append(entry)
    }

    /// Whether any client waits on any key (the cheap test before building a `DatabaseKey`).
    var isWaiting: Bool { !queues.isEmpty }

    /// The keys of `database` someone waits on.
    func waitedKeys(in database: Int) -> [Bytes] {
        queues.keys.filter { $0.database == database }.map(\.key)
    }

    /// The keys signalled since the last call, in signalling order; the ready list starts afresh.
    mutating func takeReadyKeys() -> [DatabaseKey] {
        defer {
            ready = []
            readySet = []
        }
        return ready
    }

    /// The commands waiting on `entry`, in blocking order.
    func waiting(on entry: DatabaseKey) -> [BlockedCommand] {
        (queues[entry] ?? []).compactMap { commands[$0] }
    }

    /// The clients whose deadline is at or before `now`.
    func timedOut(at now: Int64) -> [ClientState] {
        commands.values.compactMap { command in
            guard let deadline = command.deadline, now >= deadline else { return nil }
            return command.client
        }
    }
}

extension ServerCore {
    /// Marks `key` as having new data (a push to a list, an add to a sorted set) if someone waits on it.
    func signalKeyReady(_ database: Int, _ key: some ContiguousBytes) {
        guard blocking.isWaiting else { return }
        blocking.signal(DatabaseKey(database: database, key: Bytes(key)))
    }

    /// After SWAPDB: every waited-on key of `database` that now exists may have data.
    func signalDatabaseReady(_ database: Int) {
        for key in blocking.waitedKeys(in: database) where keyspace.lookupWrite(database, key, [.noTouch]) != nil {
            signalKeyReady(database, key)
        }
    }

    /// Parks the running command until one of `keys` gets data or `timeout` (milliseconds, 0 = forever)
    /// passes. A deadline beyond the clock's range saturates: it never comes.
    func block(_ context: CommandContext, keys: [ByteBuffer], timeout: Int64, timeoutReply: BlockedCommand.TimeoutReply = .nullArray) {
        let client = context.client
        let arguments = (0..<context.args.count).map { ByteBuffer(bytes: context.args[$0].readableBytesView) }
        let (end, overflow) = keyspace.now.addingReportingOverflow(timeout)
        blocking.add(BlockedCommand(
            client: client, database: client.database,
            keys: keys.map { DatabaseKey(database: client.database, key: Bytes($0)) },
            arguments: arguments, spec: context.spec, deadline: timeout == 0 || overflow ? nil : end,
            timeoutReply: timeoutReply))
    }

    /// Serves clients blocked on keys that received data, in blocking order, until nothing is ready
    /// (serving a BLMOVE can make its destination ready in turn). Lock held.
    func serveReadyKeys() {
        while blocking.hasReadyKeys {
            for entry in blocking.takeReadyKeys() {
                // A command served earlier in this loop has left the queue: `retry` skips it.
                for command in blocking.waiting(on: entry) where blocking.contains(command.client) {
                    retry(command, readyKey: entry.key)
                }
            }
        }
    }

    /// Runs a blocked command again; true when it completed (and the client was unblocked).
    @discardableResult
    private func retry(_ command: BlockedCommand, readyKey: Bytes) -> Bool {
        let client = command.client
        var context = CommandContext(server: self, client: client, reply: RESPWriter(buffer: ByteBuffer(), version: client.protocolVersion))
        context.args = Arguments(command.arguments)
        context.spec = command.spec
        context.isRetryingBlocked = true
        context.readyKey = readyKey
        let savedDatabase = client.database
        client.database = command.database
        defer { client.database = savedDatabase }
        let changesBefore = stats.changes
        do {
            try command.spec.handler?(&context)
        } catch {
            // A key now holds another type (or the destination does): Redis keeps such a client waiting.
            return false
        }
        guard context.reply.buffer.readableBytes > 0 else { return false }
        if aof != nil && stats.changes != changesBefore {
            propagate(database: command.database, commands: context.propagation ?? [])
        }
        blocking.remove(client)
        pendingActions.append(.resume(client, context.reply.buffer))
        return true
    }

    /// Answers blocked clients whose timeout passed with a null reply (cron). Lock held.
    func expireBlockedClients(now: Int64) {
        for client in blocking.timedOut(at: now) { abortBlocked(client, error: nil) }
    }

    /// Ends a client's wait early: with the timeout reply (a null array) or with `error`. False when the
    /// client is not blocked. Lock held.
    @discardableResult
    func abortBlocked(_ client: ClientState, error: String?) -> Bool {
        guard let command = blocking.remove(client) else { return false }
        var writer = RESPWriter(buffer: ByteBuffer(), version: client.protocolVersion)
        if let error {
            writer.error(error)
        } else {
            switch command.timeoutReply {
            case .nullArray: writer.nullArray()
            case .integer(let value): writer.integer(value)
            }
        }
        pendingActions.append(.resume(client, writer.buffer))
        return true
    }

    /// Runs the actions that cannot run under the lock (from threads other than connection loops).
    func performDetached(_ actions: [PostAction]) {
        for action in actions {
            switch action {
            case .close(let client): client.connection?.close()
            case .resume(let client, let reply): client.connection?.resume(with: reply)
            case .shutdown(let request): hooks.shutdown(request)
            case .blocked: break
            }
        }
    }
}

/// Parses a blocking timeout in seconds (fractions allowed) as Redis's `getTimeoutFromObjectOrReply`:
/// a long double, times 1000, rounded up to whole milliseconds (so 1e-300 waits 1 ms, and -0.0001
/// rounds to 0: wait forever). A product that does not fit in 64 bits (infinity, 1e16 s and up) is what C's conversion
/// turns into LLONG_MIN on x86-64, hence "negative", never a trap.
enum BlockingTimeout {
    /// The timeout in milliseconds; 0 waits forever.
    static func parse(_ ctx: CommandContext, _ index: Int) throws(CommandError) -> Int64 {
        guard let seconds = RedisFloat.parseLongDouble(ctx.args[index].readableBytesView) else {
            throw CommandError("ERR timeout is not a float or out of range")
        }
        guard let milliseconds = Int64(exactly: (seconds * 1000).rounded(.up)), milliseconds >= 0 else {
            throw CommandError("ERR timeout is negative")
        }
        return milliseconds
    }
}
