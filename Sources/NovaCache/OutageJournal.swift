import NovaClient
import NovaRESP

/// The writes, deletes and clears made while the remote was unavailable, kept for replay: the latest per
/// key, bounded by `capacity` keys. Pure data (the manager keeps it under the same lock as its circuit, so
/// that "the journal is empty" and "the circuit closes" happen together); `JournalReplay` sends it.
struct OutageJournal: Sendable {
    enum Write: Sendable, Hashable {
        /// A value to store: `expireAt` (ms since the epoch, 0: never), the time it was written, its tags.
        case set(payload: [UInt8], slidingMilliseconds: Int64, expireAt: Int64, writtenAt: Int64, tags: [String])
        case delete(at: Int64)

        var time: Int64 {
            switch self {
            case .set(_, _, _, let writtenAt, _): return writtenAt
            case .delete(let at): return at
            }
        }
    }

    struct Clear: Sendable, Hashable {
        var prefix: String
        var at: Int64
    }

    struct TagInvalidation: Sendable, Hashable {
        var tag: String
        var at: Int64
    }

    /// What was taken for one replay.
    struct Batch: Sendable {
        var writes: [String: Write] = [:]
        var clears: [Clear] = []
        var tagInvalidations: [TagInvalidation] = []
        var isEmpty: Bool { writes.isEmpty && clears.isEmpty && tagInvalidations.isEmpty }
    }

    enum Outcome: Sendable, Hashable {
        case kept
        /// Over capacity: the write stays in memory only. `firstTime` is true once per journal.
        case dropped(firstTime: Bool)
    }

    let capacity: Int
    private(set) var writes: [String: Write] = [:]
    private(set) var clears: [Clear] = []
    private(set) var tagInvalidations: [TagInvalidation] = []
    private var warnedFull = false

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// Entries waiting (writes plus clears).
    var count: Int { writes.count + clears.count + tagInvalidations.count }
    var isEmpty: Bool { writes.isEmpty && clears.isEmpty && tagInvalidations.isEmpty }

    /// Keeps `write` as the latest for `key`.
    mutating func record(_ key: String, _ write: Write) -> Outcome {
        if writes[key] == nil && writes.count >= capacity {
            defer { warnedFull = true }
            return .dropped(firstTime: !warnedFull)
        }
        writes[key] = write
        return .kept
    }

    /// Keeps a clear of every key under `prefix`; the writes it covers are dropped.
    mutating func recordClear(prefix: String, at time: Int64) {
        clears.append(Clear(prefix: prefix, at: time))
        writes = writes.filter { !$0.key.hasPrefix(prefix) }
    }

    /// Keeps an invalidation of every key tagged `tag`; the journalled writes with that tag are dropped.
    mutating func recordTagInvalidation(_ tag: String, at time: Int64) {
        tagInvalidations.append(TagInvalidation(tag: tag, at: time))
        writes = writes.filter { _, write in
            if case .set(_, _, _, _, let tags) = write { return !tags.contains(tag) }
            return true
        }
    }

    /// Takes everything for a replay.
    mutating func take() -> Batch {
        defer { writes = [:]; clears = []; tagInvalidations = [] }
        return Batch(writes: writes, clears: clears, tagInvalidations: tagInvalidations)
    }

    /// Puts back what a failed replay did not send; writes journalled meanwhile are newer and win.
    mutating func restore(_ batch: Batch) {
        for (key, write) in batch.writes where writes[key] == nil { writes[key] = write }
        clears = batch.clears + clears
        tagInvalidations = batch.tagInvalidations + tagInvalidations
    }
}

/// Sends a journal batch to the remote, never over a newer value: each write runs in WATCH/MULTI/EXEC
/// only if the remote's value is absent or was written by a CacheManager no later than the journalled
/// write (a value of unknown origin is left alone).
struct JournalReplay {
    let client: any RedisCommandClient
    let format: StoredFormat
    let layout: KeyLayout

    struct Report: Sendable {
        /// Keys whose remote value is now the replayed one.
        var stored: Set<String> = []
        var replayed = 0
        var skipped = 0
        /// What was not sent because the remote failed (nil error: all sent).
        var remaining = OutageJournal.Batch()
        var error: (any Error)?
    }

    func run(_ batch: OutageJournal.Batch, now current: Int64) async -> Report {
        var report = Report()
        report.remaining = batch
        do {
            for clear in batch.clears {
                // Values first (each with its metadata), then metadata left without a value.
                for pattern in layout.scanPatterns(clearing: clear.prefix) {
                    for key in try await client.scanKeys(matching: pattern) {
                        let name = String(buffer: key)
                        guard layout.clears(name, prefix: clear.prefix) else { continue }
                        if !layout.isReserved(name) {
                            _ = try await compareAndWrite(name, notNewerThan: clear.at, RemoteEntry.deleteCommands(name, layout))
                        } else if !layout.isMetaKey(name) {
                            _ = try await client.delete(.string(name))  // a tag index of a cleared namespace
                        } else if try await client.exists(.string(layout.valueKey(ofMeta: name))) == 0 {
                            _ = try await client.delete(.string(name))
                        }
                    }
                }
                report.remaining.clears.removeFirst()
            }
            for invalidation in batch.tagInvalidations {
                let index = RedisArgument.string(layout.tagKey(invalidation.tag))
                let members = try await client.send(RedisCommand("ZRANGE", index, 0, -1)).elements ?? []
                for member in members {
                    guard let name = member.string else { continue }
                    _ = try await compareAndWrite(name, notNewerThan: invalidation.at, RemoteEntry.deleteCommands(name, layout))
                }
                if !members.isEmpty { _ = try await client.send(RedisCommand("ZREM", arguments: [index] + members.compactMap { $0.string.map { .string($0) } })) }
                report.replayed += 1
                report.remaining.tagInvalidations.removeFirst()
            }
            for (key, write) in batch.writes {
                switch write {
                case .set(let payload, let sliding, let expireAt, let writtenAt, let tags):
                    if expireAt != 0 && expireAt <= current {
                        report.skipped += 1
                    } else {
                        let entry = RemoteEntry(payload: payload, writtenAt: writtenAt, slidingMilliseconds: sliding)
                        let ttl = expireAt == 0 ? nil : expireAt - current
                        let commands = entry.writeCommands(key, layout, format: format, ttlMilliseconds: ttl)
                        if try await compareAndWrite(key, notNewerThan: writtenAt, commands) {
                            _ = try CacheManager.checked(try await client.pipeline(
                                RemoteEntry.tagCommands(key, layout, ttlMilliseconds: ttl, tags: tags, now: current)))
                            report.replayed += 1
                            report.stored.insert(key)
                        } else {
                            report.skipped += 1
                        }
                    }
                case .delete(let at):
                    if try await compareAndWrite(key, notNewerThan: at, RemoteEntry.deleteCommands(key, layout)) {
                        report.replayed += 1
                    } else {
                        report.skipped += 1
                    }
                }
                report.remaining.writes[key] = nil
            }
        } catch {
            report.error = error
        }
        return report
    }

    /// Runs `commands` in MULTI/EXEC unless the remote holds a value newer than `time` or of unknown
    /// origin; WATCH on the value and its metadata makes the check and the write atomic.
    private func compareAndWrite(_ key: String, notNewerThan time: Int64, _ commands: [RedisCommand]) async throws -> Bool {
        try await client.withConnection(forKey: .string(key)) { connection -> Bool in
            for _ in 0..<5 {
                try await connection.send(RedisCommand("WATCH", .string(key), .string(layout.metaKey(key))))
                let replies = try await connection.pipeline([RedisCommand("GET", .string(key)), RedisCommand("GET", .string(layout.metaKey(key)))])
                switch replies[0] {
                case .bulkString:
                    guard let entry = RemoteEntry(value: replies[0], meta: replies[1]), entry.isOurs, entry.writtenAt <= time else {
                        try await connection.send(RedisCommand("UNWATCH"))
                        return false
                    }
                case .null:
                    if commands.allSatisfy({ $0.name == "DEL" }) {
                        try await connection.send(RedisCommand("UNWATCH"))
                        return true  // already gone
                    }
                case .error(let text) where !text.hasPrefix("WRONGTYPE"):
                    throw RedisError(text)
                default:
                    try await connection.send(RedisCommand("UNWATCH"))
                    return false  // another type: not ours
                }
                let outcome = try await connection.pipeline([RedisCommand("MULTI")] + commands + [RedisCommand("EXEC")])
                // A refused command (NOPERM, OOM) is refused when queued and aborts the transaction.
                for reply in outcome.dropFirst() { if case .error(let text) = reply { throw RedisError(text) } }
                if outcome.last != .null { return true }
            }
            return false
        }
    }
}
