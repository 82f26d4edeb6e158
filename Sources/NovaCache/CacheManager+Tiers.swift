import Logging
import NovaClient
import NovaRESP
import Synchronization

/// Reading and writing the two tiers, and applying invalidations to the memory tier.
extension CacheManager {
    // MARK: Internals: tiers

    var now: Int64 { configuration.clock.nowMilliseconds() }

    /// Journalled entries not yet on the remote (those a running replay took included).
    var pendingCount: Int { state.withLock { $0.journal.count + $0.replaying } }

    func freshRecord(_ full: String, options: CacheCallOptions = []) async -> MemoryTier.Record? {
        let current = now
        if !options.contains(.skipMemory) {
            if let record = memory.lookup(full, now: current), record.isFresh(at: current) {
                stats.record(.memoryHit)
                if record.slidingMilliseconds > 0 { await slide(full, record, now: current) }
                return record
            }
            stats.record(.memoryMiss)
        }
        if options.contains(.skipRemote) { return nil }
        let sequence = listener?.sequence ?? 0
        let replies = await remote { try Self.checked(try await $0.pipeline(RemoteEntry.readCommands(full, layout))) }
        guard case .ok(let values) = replies, let entry = RemoteEntry(value: values[0], meta: values[2]) else {
            if case .ok = replies { stats.record(.remoteMiss) }
            return nil
        }
        stats.record(.remoteHit)
        let remaining = (try? values[1].integer()) ?? -1
        var record = MemoryTier.Record(
            payload: entry.payload, freshUntil: remaining > 0 ? current + remaining : 0, writtenAt: entry.writtenAt,
            slidingMilliseconds: entry.slidingMilliseconds)
        if entry.slidingMilliseconds > 0 {
            record.freshUntil = current + entry.slidingMilliseconds
            record.expiresAt = record.freshUntil
            await touchRemote(full, milliseconds: entry.slidingMilliseconds)
        }
        let stillValid = !(listener?.invalidated(full, since: sequence) ?? false)
        if stillValid, !options.contains(.skipMemory) { memory.store(full, capped(record, now: current)) }
        return record
    }

    /// Restarts a sliding entry's TTL, at most once per 1% of its window (so that hot sessions do not turn
    /// every read into a remote write).
    func slide(_ full: String, _ record: MemoryTier.Record, now current: Int64) async {
        let target = current + record.slidingMilliseconds
        guard target - record.freshUntil > max(1, record.slidingMilliseconds / 100) else { return }
        memory.refresh(full, freshUntil: target)
        await touchRemote(full, milliseconds: record.slidingMilliseconds)
    }

    func touchRemote(_ full: String, milliseconds: Int64) async {
        listener?.noteOwnWrite(full)
        let result = await remote { try Self.checked(try await $0.pipeline(RemoteEntry.expireCommands(full, layout, milliseconds: milliseconds))) }
        if case .ok(let replies) = result, (try? replies[0].integer()) == 1 { return }
        listener?.undoOwnWrite(full)
    }

    func capped(_ record: MemoryTier.Record, now current: Int64) -> MemoryTier.Record {
        guard let cap = configuration.memoryTTL?.wholeMilliseconds else { return record }
        var record = record
        if record.freshUntil == 0 || record.freshUntil > current + cap { record.freshUntil = current + cap }
        return record
    }

    /// Stores `payload` in both tiers; `decoded` (a `DecodedBox` of the value the payload encodes) serves
    /// later typed reads without decoding.
    func store(
        _ full: String, _ payload: [UInt8], policy: CachePolicy, options: CacheCallOptions = [], tags: Set<String> = [],
        decoded: DecodedBoxBase? = nil
    ) async {
        let current = now
        var generator = SystemRandomNumberGenerator()
        let ttl = policy.effectiveMilliseconds(using: &generator)
        let expireAt = ttl.map { current + $0 } ?? 0
        let sliding = policy.sliding ? (ttl ?? 0) : 0
        if !options.contains(.skipMemory) {
            let record = MemoryTier.Record(payload: payload, freshUntil: expireAt, writtenAt: current, slidingMilliseconds: sliding)
            memory.store(full, capped(record, now: current), decodedValue: decoded)
            if !tags.isEmpty { localTags.add(full, to: tags) }
        }
        if options.contains(.skipRemote) { return }
        await writeRemote(full, .set(payload: payload, slidingMilliseconds: sliding, expireAt: expireAt, writtenAt: current, tags: tags.sorted()))
    }

    func writeRemote(_ full: String, _ write: OutageJournal.Write) async {
        if journal(full, write) { return }
        writesInFlight.add(1, ordering: .relaxed)
        defer { writesInFlight.subtract(1, ordering: .relaxed) }
        listener?.noteOwnWrite(full)
        let format = configuration.storedFormat
        let result = await remote { client -> Bool in
            switch write {
            case .set(let payload, let sliding, let expireAt, let writtenAt, let tags):
                let entry = RemoteEntry(payload: payload, writtenAt: writtenAt, slidingMilliseconds: sliding)
                let current = self.now
                let ttl = expireAt == 0 ? nil : expireAt - current
                _ = try Self.checked(try await client.pipeline(
                    entry.writeCommands(full, self.layout, format: format, ttlMilliseconds: ttl)
                        + RemoteEntry.tagCommands(full, self.layout, ttlMilliseconds: ttl, tags: tags, now: current)))
                return true
            case .delete:
                return try Self.checked(try await client.pipeline(RemoteEntry.deleteCommands(full, self.layout)))[0].integer() > 0
            }
        }
        switch result {
        case .ok(let changed):
            if !changed { listener?.undoOwnWrite(full) }  // nothing was deleted: no invalidation will come
            if changed { await listener?.announce(key: full, using: client) }
        case .unavailable:
            listener?.undoOwnWrite(full)
            _ = journal(full, write, force: true)
        case .failed:
            listener?.undoOwnWrite(full)
        }
    }

    /// While the circuit is open (or `force`: the write just failed to reach the remote), keeps `write` for
    /// replay; false when the remote is in use.
    func journal(_ full: String, _ write: OutageJournal.Write, force: Bool = false) -> Bool {
        let outcome = state.withLock { state -> OutageJournal.Outcome? in
            guard state.circuit.journalsWrites || force else { return nil }
            return state.journal.record(full, write)
        }
        switch outcome {
        case nil:
            return false
        case .kept:
            stats.setPending(pendingCount)
        case .dropped(let firstTime):
            stats.record(.skippedReplay)
            if firstTime {
                logger.warning("outage write buffer full; further writes are kept in memory only", metadata: ["limit": "\(configuration.maxPendingWrites)"])
            }
        }
        return true
    }

    /// An invalidation from the listener: another writer changed `full`, or the server expired it. An
    /// expiry (the remote's copy was due to expire) leaves the memory copy as a stale value for fail-safe;
    /// any other change drops it.
    func invalidated(_ full: String) {
        let current = now
        if let record = memory.lookup(full, now: current), record.expiresAt != 0,
            current + Self.expiryTolerance >= record.expiresAt {
            memory.markStale(full, at: current)
            return
        }
        if memory.remove(full) { stats.record(.invalidation) }
    }

    /// Checks the memory copy of a key this process wrote against the remote once the write's
    /// invalidation came back: under BCAST tracking one invalidation may stand for our write and another
    /// writer's of the same server cycle, so only the remote can tell whether the copy is still current.
    /// A copy that differs from the remote's value is dropped as another writer's change; one the remote
    /// cannot be asked about (outage) stays, as the fail-safe copy it is.
    func ownWriteEchoed(_ full: String) {
        guard memory.lookup(full) != nil else { return }
        let start = state.withLock { state -> Bool in
            if state.verifying[full] != nil {
                state.verifying[full] = true
                return false
            }
            state.verifying[full] = false
            return true
        }
        guard start else { return }
        Task { [weak self] in
            while let self {
                await self.verifyMemoryCopy(full)
                let again = self.state.withLock { state -> Bool in
                    if state.verifying[full] == true {
                        state.verifying[full] = false
                        return true
                    }
                    state.verifying[full] = nil
                    return false
                }
                if !again { return }
            }
        }
    }

    private func verifyMemoryCopy(_ full: String) async {
        let replies = await remote { try Self.checked(try await $0.pipeline(RemoteEntry.readCommands(full, layout))) }
        guard case .ok(let values) = replies, let record = memory.lookup(full) else { return }
        if RemoteEntry(value: values[0], meta: values[2])?.payload != record.payload { invalidated(full) }
    }

    /// How early before its expiry time an invalidation still counts as the expiry (clock skew between
    /// this host and the server).
    static let expiryTolerance: Int64 = 250
}
