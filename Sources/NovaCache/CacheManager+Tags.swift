import Logging
import NovaClient
import NovaRESP
import Synchronization

/// Invalidation by tag.
extension CacheManager {
    /// Removes every entry tagged `tag` (by `set` or `getOrLoad` in any process) from the remote and from
    /// this memory tier; other processes drop their copies through coherence. During an outage the
    /// invalidation is journalled and replayed like a delete (never over a value written later).
    public func invalidate(tag: String) async {
        for key in localTags.remove(tag) { memory.remove(key) }
        let at = now
        if journalTagInvalidation(tag, at: at) { return }
        let index = layout.tagKey(tag)
        let layout = layout
        // The index's members are taken out of it before their values go, so that a key tagged again
        // meanwhile either goes too or stays indexed; no transaction is needed (on a cluster the index and
        // the values live in different slots).
        let removed = await remote { client -> [String] in
            let members = (try await client.send(RedisCommand("ZRANGE", .string(index), 0, -1)).elements ?? []).compactMap(\.string)
            for start in stride(from: 0, to: members.count, by: 250) {
                let chunk = members[start..<min(start + 250, members.count)]
                try await client.send(RedisCommand("ZREM", arguments: [.string(index)] + chunk.map { .string($0) }))
                _ = try await client.unlink(chunk.flatMap { [RedisArgument.string($0), .string(layout.metaKey($0))] })
            }
            return members
        }
        guard case .ok(let members) = removed else {
            if case .unavailable = removed { _ = journalTagInvalidation(tag, at: at, force: true) }
            return
        }
        for key in members {
            memory.remove(key)
            await listener?.announce(key: key, using: client)
        }
    }


    func journalTagInvalidation(_ tag: String, at: Int64, force: Bool = false) -> Bool {
        let journalled = state.withLock { state -> Bool in
            guard state.circuit.journalsWrites || force else { return false }
            state.journal.recordTagInvalidation(tag, at: at)
            return true
        }
        if journalled { stats.setPending(pendingCount) }
        return journalled
    }
}

/// This process's tagged memory entries (tag → keys), so that `invalidate(tag:)` empties the memory tier
/// even while the remote, which holds the shared index, is away. Bounded: past `limit` keys in all, the
/// largest tag's list is dropped (its entries then leave memory only through the remote's invalidations
/// or their TTL).
final class LocalTagIndex: Sendable {
    private let keys = Mutex<(byTag: [String: Set<String>], count: Int)>(([:], 0))
    private let limit: Int

    init(limit: Int) { self.limit = max(1, limit) }

    func add(_ key: String, to tags: Set<String>) {
        keys.withLock { state in
            for tag in tags where state.byTag[tag, default: []].insert(key).inserted { state.count += 1 }
            while state.count > limit, let largest = state.byTag.max(by: { $0.value.count < $1.value.count }) {
                state.count -= largest.value.count
                state.byTag[largest.key] = nil
            }
        }
    }

    /// The keys tagged `tag`, forgotten.
    func remove(_ tag: String) -> Set<String> {
        keys.withLock { state in
            let removed = state.byTag.removeValue(forKey: tag) ?? []
            state.count -= removed.count
            return removed
        }
    }
}
