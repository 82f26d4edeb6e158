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
    /// Unix ms after which the client gets a null reply; nil waits forever.
    let deadline: Int64?
}

/// Clients blocked on keys, served in the order they blocked when data arrives (Redis's fairness),
/// timed out by the periodic task. Guarded by the server lock.
struct BlockingState {
    var commands: [UInt64: BlockedCommand] = [:]
    var queues: [DatabaseKey: [UInt64]] = [:]
    var ready: [DatabaseKey] = []
    var readySet: Set<DatabaseKey> = []

    var count: Int { commands.count }
}

extension ServerCore {
    /// Marks `key` as having new data (a push to a list, an add to a sorted set) if someone waits on it.
    func signalKeyReady(_ database: Int, _ key: some ContiguousBytes) {
        guard !blocking.queues.isEmpty else { return }
        let entry = DatabaseKey(database: database, key: Bytes(key))
        guard blocking.queues[entry] != nil, blocking.readySet.insert(entry).inserted else { return }
        blocking.ready.append(entry)
    }

    /// After SWAPDB: every waited-on key of `database` that now exists may have data.
    func signalDatabaseReady(_ database: Int) {
        for entry in blocking.queues.keys where entry.database == database {
            if keyspace.lookupWrite(database, entry.key, [.noTouch]) != nil {
                signalKeyReady(database, entry.key)
            }
        }
    }

    /// Parks the running command until one of `keys` gets data or `timeout` (milliseconds, 0 = forever)
    /// passes. A deadline beyond the clock's range saturates: it never comes.
    func block(_ context: CommandContext, keys: [ByteBuffer], timeout: Int64) {
        let client = context.client
        let entries = keys.map { DatabaseKey(database: client.database, key: Bytes($0)) }
        let arguments = (0..<context.args.count).map { ByteBuffer(bytes: context.args[$0].readableBytesView) }
        let (end, overflow) = keyspace.now.addingReportingOverflow(timeout)
        let deadline: Int64? = timeout == 0 || overflow ? nil : end
        blocking.commands[client.id] = BlockedCommand(
            client: client, database: client.database, keys: entries, arguments: arguments, spec: context.spec,
            deadline: deadline)
        var seen = Set<DatabaseKey>()
        for entry in entries where seen.insert(entry).inserted {
            blocking.queues[entry, default: []].append(client.id)
        }
        client.isBlocked = true
    }

    /// Forgets a blocked client (served, timed out, disconnected).
    func unblock(_ client: ClientState) {
        guard let command = blocking.commands.removeValue(forKey: client.id) else { return }
        for entry in Set(command.keys) {
            blocking.queues[entry]?.removeAll { $0 == client.id }
            if blocking.queues[entry]?.isEmpty == true { blocking.queues[entry] = nil }
        }
        client.isBlocked = false
    }

    /// Serves clients blocked on keys that received data, in blocking order, until nothing is ready
    /// (serving a BLMOVE can make its destination ready in turn). Lock held.
    func serveReadyKeys() {
        while !blocking.ready.isEmpty {
            let keys = blocking.ready
            blocking.ready = []
            blocking.readySet = []
            for entry in keys {
                guard let waiting = blocking.queues[entry] else { continue }
                for id in waiting {
                    guard let command = blocking.commands[id] else { continue }
                    if !retry(command) { continue }
                }
            }
        }
    }

    /// Runs a blocked command again; true when it completed (and the client was unblocked).
    @discardableResult
    private func retry(_ command: BlockedCommand) -> Bool {
        let client = command.client
        var context = CommandContext(server: self, client: client, reply: RESPWriter(buffer: ByteBuffer(), version: client.protocolVersion))
        context.args = Arguments(command.arguments)
        context.spec = command.spec
        context.isRetryingBlocked = true
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
            for words in context.propagation ?? [] { propagate(database: command.database, words: words) }
        }
        unblock(client)
        pendingActions.append(.resume(client, context.reply.buffer))
        return true
    }

    /// Answers blocked clients whose timeout passed with a null reply (cron). Lock held.
    func expireBlockedClients(now: Int64) {
        for command in blocking.commands.values {
            guard let deadline = command.deadline, now >= deadline else { continue }
            abortBlocked(command.client, error: nil)
        }
    }

    /// Ends a client's wait early: with the timeout reply (a null array) or with `error`. False when the
    /// client is not blocked. Lock held.
    @discardableResult
    func abortBlocked(_ client: ClientState, error: String?) -> Bool {
        guard blocking.commands[client.id] != nil else { return false }
        var writer = RESPWriter(buffer: ByteBuffer(), version: client.protocolVersion)
        if let error { writer.error(error) } else { writer.nullArray() }
        unblock(client)
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
