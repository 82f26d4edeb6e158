import NovaEngine

extension CommandContext {
    /// Records that the command changed `key` (in the client's database unless `database` is given), as
    /// Redis's `signalModifiedKey` plus `notifyKeyspaceEvent(type, event)`: clients watching the key fail
    /// their EXEC, and the event is announced to keyspace-notification subscribers.
    func modified(_ key: some ContiguousBytes, _ event: StaticString, _ type: KeyspaceEventFlags, database: Int? = nil) {
        let database = database ?? db
        server.keyModified(database, key)
        server.notifyKeyspaceEvent(type, event, key, database: database)
        // A collection left empty was deleted: Redis announces that too, right after.
        if !type.isDisjoint(with: [.list, .set, .hash, .zset]) && server.keyspaceEventFlags.contains(.generic)
            && keyspace.databases[database].find(key) == nil {
            server.notifyKeyspaceEvent(.generic, "del", key, database: database)
        }
    }

    /// Announces an event that is not a modification of its own (`del` after a collection was emptied
    /// is one: the modification was already recorded).
    func notify(_ key: some ContiguousBytes, _ event: StaticString, _ type: KeyspaceEventFlags, database: Int? = nil) {
        server.notifyKeyspaceEvent(type, event, key, database: database ?? db)
    }
}

extension ServerCore {
    /// Publishes a keyspace event if `notify-keyspace-events` enables its class: `event` on
    /// `__keyspace@<db>__:<key>` and the key on `__keyevent@<db>__:<event>`.
    func notifyKeyspaceEvent(_ type: KeyspaceEventFlags, _ event: StaticString, _ key: some ContiguousBytes, database: Int) {
        let flags = keyspaceEventFlags
        guard flags.contains(type) else { return }
        let eventBytes = Bytes(event.withUTF8Buffer { Array($0) })
        if flags.contains(.keyspace) {
            var channel = Array("__keyspace@\(database)__:".utf8)
            key.withBytes { channel.append(contentsOf: $0) }
            publish(Bytes(channel), eventBytes)
        }
        if flags.contains(.keyevent) {
            let channel = Array("__keyevent@\(database)__:".utf8) + eventBytes.array
            publish(Bytes(channel), Bytes(key))
        }
    }

    /// A key the engine removed on its own (expiry, eviction): logged as DEL in the append-only file,
    /// watchers invalidated, `expired` / `evicted` announced.
    func keyRemoved(_ database: Int, _ key: Bytes, _ reason: RemovalReason) {
        if aof != nil {
            key.withBytes { raw in
                Array("DEL".utf8).withUnsafeBytes { propagate(database: database, [$0, raw]) }
            }
        }
        keyModified(database, key)
        switch reason {
        case .expired: notifyKeyspaceEvent(.expired, "expired", key, database: database)
        case .evicted: notifyKeyspaceEvent(.evicted, "evicted", key, database: database)
        }
    }
}
