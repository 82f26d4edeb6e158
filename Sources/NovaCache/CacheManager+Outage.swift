import Logging
import NovaClient
import NovaRESP
import Synchronization

/// The remote behind its circuit: the call wrapper, the circuit's actions, recovery and replay.
extension CacheManager {
    // MARK: Internals: the remote and its outages

    enum RemoteResult<R: Sendable>: Sendable {
        case ok(R)
        /// The remote could not be reached, refused the configuration, or the circuit is open.
        case unavailable
        /// The server answered with an error about the command (WRONGTYPE, OOM …).
        case failed(RedisError)
    }

    func remote<R: Sendable>(_ body: (any RedisCommandClient) async throws -> R) async -> RemoteResult<R> {
        guard state.withLock({ $0.circuit.allowsRemoteCalls }) else {
            stats.record(.remoteSkipped)
            return .unavailable
        }
        do {
            let result = try await body(client)
            state.withLock { $0.circuit.succeeded() }
            return .ok(result)
        } catch let error as RedisError {
            stats.record(.remoteError)
            if let failure = RemoteFailure(reply: error) {
                circuitFailed(failure)
                return .unavailable
            }
            logger.debug("remote error reply", metadata: ["error": "\(error)"])
            return .failed(error)
        } catch {
            stats.record(.remoteError)
            circuitFailed(.unreachable("\(error)"))
            return .unavailable
        }
    }

    /// `replies`, or the first error reply among them thrown as `RedisError`.
    static func checked(_ replies: [RESPValue]) throws -> [RESPValue] {
        for reply in replies { if case .error(let text) = reply { throw RedisError(text) } }
        return replies
    }

    func probeAtStart() async {
        if case .ok = await remote({ try await $0.send(self.probeCommand) }) {
            logger.debug("remote cache reachable", metadata: ["url": "\(configuration.url)"])
        }
    }

    func circuitFailed(_ failure: RemoteFailure) {
        var generator = SystemRandomNumberGenerator()
        let current = now
        let actions = state.withLock { $0.circuit.failed(failure, at: current, using: &generator) }
        perform(actions)
    }

    func perform(_ actions: [RemoteCircuit.Action]) {
        for action in actions {
            switch action {
            case .startRecovery:
                let task = Task { [weak self] in await self?.recover() } as Task<Void, Never>
                let kept = state.withLock { state -> Bool in
                    guard state.circuit.phase != .shutDown else { return false }
                    state.recovery = task
                    return true
                }
                if !kept { task.cancel() }
                stats.setFallback(true)
            case .warnUnreachable(let reason):
                logger.warning("remote cache unreachable; serving from the memory tier until it returns", metadata: [
                    "url": "\(configuration.url)", "reason": "\(reason)",
                ])
            case .reportMisconfigured(let reason):
                stats.setMisconfigured(true)
                logger.error("remote cache refuses this configuration; serving from the memory tier until it is fixed", metadata: [
                    "url": "\(configuration.url)", "reason": "\(reason)",
                ])
            case .announceRecovery(let outage):
                stats.setFallback(false)
                stats.setMisconfigured(false)
                stats.setPending(0)
                let snapshot = stats.snapshot
                logger.notice("remote cache recovered; normal service resumed", metadata: [
                    "url": "\(configuration.url)", "outageMs": "\(outage)",
                    "replayed": "\(snapshot.replayedWrites)", "skipped": "\(snapshot.skippedReplays)",
                ])
            }
        }
    }

    /// Probes the remote on the circuit's schedule with a connection of its own (the pool's reconnect
    /// backoff does not delay it); when it answers, replays the journal until it is empty and closes the
    /// circuit.
    func recover() async {
        var generator = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            // Sleeps in short steps: `flush` may move the next probe forward.
            let wait = state.withLock { $0.circuit.nextProbeAt } - now
            if wait > 0 {
                try? await Task.sleep(for: .milliseconds(min(wait, 50)))
                continue
            }
            if let failure = await probe() {
                let current = now
                perform(state.withLock { $0.circuit.probeFailed(failure, at: current, using: &generator) })
                continue
            }
            guard state.withLock({ $0.circuit.probeSucceeded() }) else { return }
            client.resetBackoff()
            logger.notice("remote cache reachable again; replaying outage writes", metadata: [
                "url": "\(configuration.url)", "writes": "\(pendingCount)",
            ])
            if await replayUntilEmpty(using: &generator) { return }
        }
    }

    /// Replays until the journal stays empty (true: the circuit closed) or the remote fails again.
    func replayUntilEmpty(using generator: inout SystemRandomNumberGenerator) async -> Bool {
        let replay = JournalReplay(client: client, format: configuration.storedFormat, layout: layout)
        while !Task.isCancelled {
            // The circuit may have opened again meanwhile (the invalidation connection dropped): probe first.
            let taken = state.withLock { state -> OutageJournal.Batch? in
                guard state.circuit.phase == .replaying else { return nil }
                let batch = state.journal.take()
                state.replaying = batch.writes.count + batch.clears.count + batch.tagInvalidations.count
                return batch
            }
            guard let batch = taken else { return false }
            let report = await replay.run(batch, now: now)
            stats.record(.replayed, count: report.replayed)
            stats.record(.skippedReplay, count: report.skipped)
            // Other processes may have changed anything meanwhile: keep only what the remote now holds from
            // this process and what is still to be replayed.
            let pending = state.withLock { state in
                if report.error != nil { state.journal.restore(report.remaining) }
                state.replaying = 0
                return Set(state.journal.writes.keys)
            }
            memory.removeAll(except: pending.union(report.stored))
            if let error = report.error {
                let failure = (error as? RedisError).flatMap { RemoteFailure(reply: $0) } ?? .unreachable("\(error)")
                if case .unreachable = failure { logger.warning("replay interrupted; will retry", metadata: ["error": "\(error)"]) }
                let current = now
                perform(state.withLock { $0.circuit.probeFailed(failure, at: current, using: &generator) })
                stats.setPending(pendingCount)
                return false
            }
            let current = now
            let actions = state.withLock { state in state.circuit.replayFinished(journalEmpty: state.journal.isEmpty, at: current) }
            if !actions.isEmpty {
                perform(actions)
                return true
            }
        }
        return false
    }

    /// What a probe asks: PTTL of a reserved key of the namespace. Unlike PING it is refused while the
    /// server loads its data, and it needs what every read needs (a key pattern the ACL user may read, a
    /// command it may run), so a probe succeeds only when the cache can really work.
    var probeCommand: RedisCommand { RedisCommand("PTTL", .string(layout.reserved + "probe")) }

    /// Nil when the remote answers `probeCommand` on a fresh connection (handshake included: AUTH,
    /// SELECT), else why not. On a cluster the probe asks every primary (a probe key in one of its slots)
    /// through the cluster client, which finds a promoted replica after a failover: the manager leaves
    /// its fallback only when every shard answers.
    func probe() async -> RemoteFailure? {
        do {
            if let cluster = client as? RedisClusterClient {
                // Every shard must answer: a probe key in one slot of each primary.
                cluster.resetBackoff()
                let probes = try await cluster.topology().shards.compactMap { shard in
                    shard.slots.first.map { RedisCommand("PTTL", .string(layout.reserved + "probe{" + HashSlot.tag(forSlot: $0.lowerBound) + "}")) }
                }
                _ = try Self.checked(try await cluster.pipeline(probes))
                return nil
            }
            let connection = try await RedisConnection.connect(to: configuration.url)
            defer { connection.close() }
            _ = try await connection.send(probeCommand)
            return nil
        } catch let error as RedisError {
            return RemoteFailure(reply: error)
        } catch {
            return .unreachable("\(error)")
        }
    }
}
