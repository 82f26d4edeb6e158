import NIOCore
import NovaEngine

/// The commands a client queued between MULTI and EXEC.
final class Transaction {
    /// A queued command with its own copy of the arguments.
    struct Command {
        let spec: CommandSpec
        let arguments: [ByteBuffer]
    }

    var commands: [Command] = []
    /// A command was refused while queueing (unknown, wrong arity, NOAUTH, OOM …): EXEC answers EXECABORT.
    var failed = false
    /// The union of the queued commands' flags: EXEC counts as a write (MISCONF) or as deny-OOM when a
    /// queued command does.
    var flags: CommandFlags = []
}

/// WATCH bookkeeping (Redis's `watched_keys` and `touchWatchedKey` family): which clients watch which
/// keys, kept in step with each client's `ClientState.watchedKeys`. A client whose watched key changes
/// gets `watchInvalidated`, and its next EXEC fails. A key that had already expired when watched and is
/// then simply deleted counts as unchanged, as in Redis. Lock held.
struct WatchTable {
    private var watchers: [DatabaseKey: [ClientState]] = [:]

    /// Nobody watches anything: a write needs no lookup here.
    var isEmpty: Bool { watchers.isEmpty }

    /// Watches `entry` for the client's next EXEC; `expired` tells whether the key is logically expired
    /// now (present but past its TTL).
    mutating func watch(_ client: ClientState, _ entry: DatabaseKey, expired: Bool) {
        guard client.watchedKeys[entry] == nil else { return }
        client.watchedKeys[entry] = expired
        watchers[entry, default: []].append(client)
    }

    /// Forgets every key the client watches (EXEC, DISCARD, UNWATCH, RESET, disconnection).
    mutating func unwatchAll(_ client: ClientState) {
        for entry in client.watchedKeys.keys {
            watchers[entry]?.removeAll { $0 === client }
            if watchers[entry]?.isEmpty == true { watchers[entry] = nil }
        }
        client.watchedKeys = [:]
        client.watchInvalidated = false
    }

    /// `entry` was written, deleted, expired or evicted; `present` tells whether it exists afterwards.
    func keyChanged(_ entry: DatabaseKey, present: @autoclosure () -> Bool) {
        guard let clients = watchers[entry] else { return }
        let present = present()
        for client in clients {
            if client.watchedKeys[entry] == true && !present {
                client.watchedKeys[entry] = false  // an expired key deleted: no logical change
                continue
            }
            client.watchInvalidated = true
        }
    }

    /// Before `database` is emptied or has its contents replaced: `presence` tells, for a watched key,
    /// whether it is in the database now and whether it will be in the replacement.
    func databaseReplaced(_ database: Int, presence: (Bytes) -> (now: Bool, after: Bool)) {
        for (entry, clients) in watchers where entry.database == database {
            let (now, after) = presence(entry.key)
            guard now || after else { continue }
            for client in clients {
                if client.watchedKeys[entry] == true && !after {
                    client.watchedKeys[entry] = false
                    continue
                }
                client.watchInvalidated = true
            }
        }
    }
}

extension ServerCore {
    /// Ends the client's transaction without running it, and forgets its watched keys.
    func discardTransaction(_ client: ClientState) {
        client.transaction = nil
        watches.unwatchAll(client)
    }

    /// Watches `key` of the client's database for its next EXEC.
    func watch(_ client: ClientState, _ key: ByteBuffer) {
        let entry = DatabaseKey(database: client.database, key: Bytes(key))
        watches.watch(client, entry, expired: isLogicallyExpired(entry))
    }

    /// A key was written, deleted, expired or evicted: clients watching it fail their next EXEC, and
    /// tracking clients that read it are told (CLIENT TRACKING).
    func keyModified(_ database: Int, _ key: some ContiguousBytes) {
        if !tracking.isEmpty { invalidateTrackedKey(Bytes(key)) }
        // A stream deleted or replaced under a blocked XREADGROUP ends its wait (Redis's
        // `signalDeletedKeyAsReady`); other waiters find nothing new and go on waiting.
        signalKeyReady(database, key)
        guard !watches.isEmpty else { return }
        let entry = DatabaseKey(database: database, key: Bytes(key))
        watches.keyChanged(entry, present: keyspace.databases[database].find(entry.key) != nil)
    }

    /// Before FLUSHDB / FLUSHALL empties `database` or SWAPDB replaces its contents with those of
    /// `replacement`: watched keys present in either change.
    func databaseReplaced(_ database: Int, with replacement: Int? = nil) {
        guard !watches.isEmpty else { return }
        watches.databaseReplaced(database) { key in
            (keyspace.databases[database].find(key) != nil,
             replacement.map { keyspace.databases[$0].find(key) != nil } ?? false)
        }
    }

    /// Whether a watched key that was live when watched has expired since (EXEC checks this, as the key
    /// may not have been deleted yet).
    func watchedKeyExpired(_ client: ClientState) -> Bool {
        client.watchedKeys.contains { entry, expiredWhenWatched in
            !expiredWhenWatched && isLogicallyExpired(entry)
        }
    }

    private func isLogicallyExpired(_ entry: DatabaseKey) -> Bool {
        let database = keyspace.databases[entry.database]
        guard let ref = database.find(entry.key) else { return false }
        let expireAt = database.expireAt(ref)
        return expireAt != 0 && keyspace.now > expireAt
    }

    /// Runs the queued commands of the client's transaction, replying with an array of their replies.
    /// The append-only file gets them between MULTI and EXEC when more than one command is logged.
    func runTransaction(_ context: inout CommandContext, _ transaction: Transaction) {
        context.reply.array(transaction.commands.count)
        beginPropagationGroup()
        // EXEC's own arguments are back in the context when its handler returns.
        let execArguments = context.args
        defer { context.args = execArguments }
        for command in transaction.commands {
            context.args = Arguments(command.arguments)
            // Rules may have changed since the command was queued: check again, as Redis does.
            let client = context.client
            if !client.aclUser.isUnrestricted && !client.isReplaying,
               let denial = acl.check(client.aclUser, command.spec, context.args) {
                logDenial(denial, client: client)
                let reason = denial.error(command.spec).bytes.dropFirst("NOPERM ".utf8.count)
                let error = CommandError("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: \(raw: Array(reason))")
                context.reply.error(error.bytes)
                countError(error)
                continue
            }
            call(&context, command.spec)
        }
        endPropagationGroup(database: context.client.database)
    }
}
