import Logging
import NovaClient
import NovaRESP
import Synchronization

/// Keeps the memory tiers of several processes coherent: one connection that receives invalidations —
/// CLIENT TRACKING in BCAST mode (prefixed by the namespace) on RESP3 servers, else a pub/sub channel on
/// which every manager announces its writes — re-established after every loss. On a cluster a node
/// reports only the keys of its own slots, so there is one tracking connection per primary, following the
/// topology (a promoted replica gets one, a demoted primary loses its own).
///
/// It also tells this process's own writes from other writers' (tracking echoes our own writes back) and
/// keeps a sequence of invalidations so that a remote read racing one does not put the old value back.
/// An echo is only probably ours: a server sends one BCAST invalidation per key per event-loop cycle, so
/// the echo of our write may also stand for another writer's write of the same cycle (and two of our
/// writes may come back as one). The manager therefore checks its copy against the server on each echo.
final class CoherenceListener: Sendable {
    enum Mode: Sendable { case none, tracking, pubSub }

    /// What the listener reports to its manager.
    struct Events: Sendable {
        /// Another writer changed (or the server expired) the key.
        var keyInvalidated: @Sendable (String) -> Void
        /// The invalidation that this process's own write of the key was waiting for arrived; it may
        /// also cover another writer's write of the same server cycle.
        var ownWriteEchoed: @Sendable (String) -> Void
        /// Every key under the prefix changed (FLUSHDB, a clear by another manager).
        var prefixInvalidated: @Sendable (String) -> Void
        /// The connection was lost: invalidations may have been missed.
        var connectionLost: @Sendable () -> Void
        /// The connection could not be made; `RemoteFailure` when the server refused the configuration.
        var connectFailed: @Sendable (RemoteFailure?) -> Void
    }

    static let channel = "__novacache__:invalidate"

    private struct State: Sendable {
        var mode = Mode.none
        /// The live connections, by node (one entry, "", for a single server).
        var connections: [String: RedisConnection] = [:]
        /// The cluster nodes with a listener running (connected or reconnecting).
        var listening: Set<String> = []
        var ready = false
        var stopped = false
        /// Own remote writes whose tracking invalidation has not arrived yet (key → count, last time).
        var ownWrites: [String: (count: Int, at: Int64)] = [:]
        /// Counts invalidations; `invalidatedAt` remembers the count at each key's last one and `flushedAt`
        /// at the last whole-namespace one.
        var sequence: UInt64 = 0
        var invalidatedAt: [String: UInt64] = [:]
        var flushedAt: UInt64 = 0

        mutating func noteInvalidation(of key: String?) {
            sequence &+= 1
            if let key, invalidatedAt.count < 10_000 {
                invalidatedAt[key] = sequence
            } else {
                invalidatedAt = [:]
                flushedAt = sequence
            }
        }
    }

    private let state = Mutex(State())
    private let url: RedisURL
    private let cluster: RedisClusterClient?
    private let requested: CacheManager.Coherence
    private let keyPrefix: String
    private let layout: KeyLayout
    private let instanceID: UInt64
    private let clock: any CacheClock
    private let backoff: Backoff
    private let logger: Logger

    init(
        url: RedisURL, cluster: RedisClusterClient?, coherence: CacheManager.Coherence, keyPrefix: String, clock: any CacheClock,
        backoff: Backoff, logger: Logger
    ) {
        self.url = url
        self.cluster = cluster
        requested = coherence
        self.keyPrefix = keyPrefix
        layout = KeyLayout(prefix: keyPrefix, slotTagged: cluster != nil)
        self.clock = clock
        self.backoff = backoff
        self.logger = logger
        instanceID = UInt64.random(in: 1...UInt64.max)
    }

    /// The mechanism in use now (`none` while disconnected).
    var mode: Mode { state.withLock { $0.mode } }

    /// Whether the listener connected once (or found the server cannot do it).
    var isReady: Bool { state.withLock { $0.ready } }

    /// Closes the connections; `run` returns.
    func stop() {
        let connections = state.withLock { state in
            state.stopped = true
            return Array(state.connections.values)
        }
        for connection in connections { connection.close() }
    }

    // MARK: Own writes and the invalidation sequence

    /// The invalidation count now: pass it to `invalidated(_:since:)` after a remote read.
    var sequence: UInt64 { state.withLock { $0.sequence } }

    /// Whether `key` was invalidated after `sequence` was read.
    func invalidated(_ key: String, since sequence: UInt64) -> Bool {
        state.withLock { $0.flushedAt > sequence || ($0.invalidatedAt[key] ?? 0) > sequence }
    }

    /// Notes a remote write of this process: the tracking invalidation it causes is not another writer's.
    func noteOwnWrite(_ key: String) {
        let current = clock.nowMilliseconds()
        state.withLock { state in
            guard state.mode == .tracking else { return }
            if state.ownWrites.count > 10_000 { state.ownWrites = state.ownWrites.filter { current - $0.value.at < 10_000 } }
            state.ownWrites[key, default: (0, current)].count += 1
            state.ownWrites[key]!.at = current
        }
    }

    /// Takes back `noteOwnWrite` for a write that changed nothing (no invalidation will come).
    func undoOwnWrite(_ key: String) {
        state.withLock { state in
            guard let entry = state.ownWrites[key] else { return }
            if entry.count <= 1 { state.ownWrites[key] = nil } else { state.ownWrites[key]!.count -= 1 }
        }
    }

    /// Tells the others (pub/sub mode) that `key` changed.
    func announce(key: String, using client: any RedisCommandClient) async {
        guard mode == .pubSub else { return }
        _ = try? await client.publish(.string("\(instanceID)\nk\n\(key)"), to: Self.channel)
    }

    /// Tells the others (pub/sub mode) that every key under `prefix` changed.
    func announce(prefix: String, using client: any RedisCommandClient) async {
        guard mode == .pubSub else { return }
        _ = try? await client.publish(.string("\(instanceID)\np\n\(prefix)"), to: Self.channel)
    }

    // MARK: The connection

    /// Keeps the connection (on a cluster, one per primary) until `stop()`, reporting through `events`.
    func run(_ events: Events) async {
        guard let cluster else {
            await listen(to: url, node: "", events) { true }
            return
        }
        // Every primary of the current topology gets a listener; a listener whose node is no longer a
        // primary ends after its connection does.
        await withTaskGroup(of: Void.self) { group in
            while !Task.isCancelled, !state.withLock({ $0.stopped }) {
                var primaries = (try? await cluster.topology().primaries.map(\.address)) ?? []
                // A cluster delivers every PUBLISH to every node: pub/sub needs one connection, not one per primary.
                if requested == .pubSub { primaries = Array(primaries.prefix(1)) }
                for address in primaries where state.withLock({ $0.listening.insert(address.description).inserted }) {
                    group.addTask {
                        await self.listen(to: cluster.url(of: address), node: address.description, events) {
                            (try? await cluster.topology().primaries.contains { $0.address == address }) ?? true
                        }
                        self.state.withLock { _ = $0.listening.remove(address.description) }
                    }
                }
                let connected = state.withLock { state in
                    if !primaries.isEmpty, primaries.allSatisfy({ state.connections[$0.description] != nil }) { state.ready = true }
                    return state.ready
                }
                try? await Task.sleep(for: connected ? .seconds(1) : .milliseconds(50))
            }
            group.cancelAll()
        }
    }

    /// One connection's life: connect, turn tracking on (or subscribe), wait for the loss, reconnect with
    /// backoff while `stillWanted`.
    private func listen(to url: RedisURL, node: String, _ events: Events, stillWanted: () async -> Bool) async {
        var failures = 0
        while !Task.isCancelled, !state.withLock({ $0.stopped }), await stillWanted() {
            do {
                let connection = try await RedisConnection.connect(to: url) { [weak self] frame in
                    self?.handlePush(frame, events)
                }
                var mode = Mode.none
                if requested != .pubSub, connection.protocolVersion == 3 {
                    var arguments: [RedisArgument] = ["TRACKING", "ON", "BCAST"]
                    if !keyPrefix.isEmpty { arguments += ["PREFIX", .string(keyPrefix)] }
                    if case .simpleString = try await connection.sendRaw(RedisCommand("CLIENT", arguments: arguments)) {
                        mode = .tracking
                    }
                }
                if mode == .none && requested != .tracking {
                    if connection.protocolVersion == 2 { try await connection.enterSubscriberMode() }
                    connection.sendWithoutReply(RedisCommand("SUBSCRIBE", .string(Self.channel)))
                    mode = .pubSub
                }
                if mode == .none {
                    logger.warning("server does not support CLIENT TRACKING; memory tier is not kept coherent")
                    connection.close()
                    state.withLock { $0.ready = true }
                    return
                }
                let stopped = state.withLock { state -> Bool in
                    state.mode = mode
                    state.connections[node] = connection
                    if cluster == nil { state.ready = true }
                    return state.stopped
                }
                if stopped { connection.close(); return }
                failures = 0
                logger.debug("invalidation listener connected", metadata: ["mode": "\(mode)", "node": "\(node)"])
                try? await connection.closeFuture.get()
                state.withLock { state in
                    state.mode = .none
                    state.connections[node] = nil
                    state.ownWrites = [:]
                }
                if Task.isCancelled || state.withLock({ $0.stopped }) { return }
                events.connectionLost()
            } catch let error as RedisError {
                failures += 1
                events.connectFailed(RemoteFailure(reply: error))
            } catch {
                failures += 1
                events.connectFailed(nil)
            }
            try? await Task.sleep(for: backoff.delay(afterFailures: max(1, failures)))
        }
    }

    private func handlePush(_ frame: RESPValue, _ events: Events) {
        guard let items = frame.elements, let kind = items.first?.string else { return }
        switch kind {
        case "invalidate" where items.count == 2:
            if let keys = items[1].elements {
                for key in keys {
                    // Metadata and tag indexes change with their values: the value's invalidation is enough.
                    if let text = key.string, !layout.isReserved(text) { invalidate(text, events) }
                }
            } else {
                invalidateAll(prefix: keyPrefix, events)  // FLUSHDB/FLUSHALL: a null key list
            }
        case "message" where items.count == 3:
            guard let payload = try? items[2].bulk() else { return }
            let text = String(buffer: payload)
            let parts = text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, UInt64(parts[0]) != instanceID else { return }
            if parts[1] == "k" { invalidate(String(parts[2]), events) } else if parts[1] == "p" { invalidateAll(prefix: String(parts[2]), events) }
        default:
            break
        }
    }

    /// Passes on an invalidation as another writer's, or as the echo of this process's own write.
    private func invalidate(_ key: String, _ events: Events) {
        let current = clock.nowMilliseconds()
        let own = state.withLock { state -> Bool in
            // Either way a remote read racing it must not store what it read: the echo may cover
            // another writer's write too.
            state.noteInvalidation(of: key)
            if let entry = state.ownWrites[key], entry.count > 0, current - entry.at < 10_000 {
                if entry.count == 1 { state.ownWrites[key] = nil } else { state.ownWrites[key]!.count -= 1 }
                return true
            }
            state.ownWrites[key] = nil
            return false
        }
        if own { events.ownWriteEchoed(key) } else { events.keyInvalidated(key) }
    }

    private func invalidateAll(prefix: String, _ events: Events) {
        state.withLock { $0.noteInvalidation(of: nil); $0.ownWrites = [:] }
        events.prefixInvalidated(prefix)
    }
}
