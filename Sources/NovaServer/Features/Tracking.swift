import NIOCore
import NovaEngine
import NovaRESP

/// A client's CLIENT TRACKING settings.
struct TrackingState {
    /// BCAST: told about every key under `prefixes`, not just the keys it read.
    var broadcast = false
    var optIn = false
    var optOut = false
    /// NOLOOP: not told about its own writes.
    var noLoop = false
    /// The client that receives the invalidations (0: this one).
    var redirect: UInt64 = 0
    var prefixes: [Bytes] = []
    /// CLIENT CACHING YES (OPTIN) / NO (OPTOUT) was given for the next command.
    var caching = false
    /// The redirect target went away (reported once, to RESP3 clients).
    var brokenRedirect = false
}

/// Server-assisted client-side caching state (Redis's tracking table and prefix table), kept in step
/// with each client's `ClientState.tracking`. Lock held.
struct TrackingTable {
    /// Key name (in any database) → clients that read it since it last changed.
    private var keys: [Bytes: Set<UInt64>] = [:]
    /// BCAST prefix → clients tracking it.
    private var prefixes: [Bytes: Set<UInt64>] = [:]
    /// Clients with tracking on (INFO `tracking_clients`).
    private(set) var clientCount = 0
    /// BCAST prefix → keys under it changed since the last broadcast, each with the client that changed
    /// it last (0: the server itself), for NOLOOP.
    private var pendingBroadcast: [Bytes: [Bytes: UInt64]] = [:]

    /// Nothing is tracked: a write needs no lookup here.
    var isEmpty: Bool { keys.isEmpty && prefixes.isEmpty }
    /// INFO `tracking_total_keys`, `tracking_total_items`, `tracking_total_prefixes`.
    var keyCount: Int { keys.count }
    var itemCount: Int { keys.values.reduce(0) { $0 + $1.count } }
    var prefixCount: Int { prefixes.count }

    /// Turns tracking on for `client` with `options` (already validated), keeping earlier BCAST prefixes.
    mutating func enable(_ client: ClientState, _ options: TrackingState, prefixes newPrefixes: [Bytes]) {
        var state = client.tracking ?? TrackingState()
        if client.tracking == nil { clientCount += 1 }
        state.broadcast = options.broadcast
        state.optIn = options.optIn
        state.optOut = options.optOut
        state.noLoop = options.noLoop
        state.redirect = options.redirect
        state.brokenRedirect = false
        if options.broadcast {
            for prefix in newPrefixes.isEmpty ? [Bytes()] : newPrefixes where !state.prefixes.contains(prefix) {
                state.prefixes.append(prefix)
                prefixes[prefix, default: []].insert(client.id)
            }
        }
        client.tracking = state
    }

    /// Turns tracking off (CLIENT TRACKING OFF, RESET, disconnection). Keys it read stay in the table
    /// until they change; by then nobody is told.
    mutating func disable(_ client: ClientState) {
        guard let state = client.tracking else { return }
        for prefix in state.prefixes {
            prefixes[prefix]?.remove(client.id)
            if prefixes[prefix]?.isEmpty == true { prefixes[prefix] = nil }
        }
        client.tracking = nil
        clientCount -= 1
    }

    /// After a read-only command: remembers `readKeys` for a tracking client (unless BCAST, or OPTIN
    /// without CACHING YES, or OPTOUT with CACHING NO).
    mutating func remember(_ readKeys: some Sequence<Bytes>, readBy client: ClientState) {
        guard let state = client.tracking, !state.broadcast else { return }
        if (state.optIn && !state.caching) || (state.optOut && state.caching) { return }
        for key in readKeys { keys[key, default: []].insert(client.id) }
    }

    /// A key changed, by client `modifier` (0: the server): returns the clients that read it (forgotten
    /// now, as they will read it again), to be told at once, and queues it for the BCAST clients of its
    /// prefixes, who are told in one message per prefix by `takeBroadcasts`.
    mutating func keyChanged(_ key: Bytes, by modifier: UInt64) -> Set<UInt64> {
        let readers = keys.removeValue(forKey: key) ?? []
        for prefix in prefixes.keys where key.hasPrefix(prefix) {
            pendingBroadcast[prefix, default: [:]][key] = modifier
        }
        return readers
    }

    /// Whether changed keys wait for their BCAST message.
    var hasPendingBroadcasts: Bool { !pendingBroadcast.isEmpty }

    /// The BCAST messages due, as Redis sends them after each round of commands: for each prefix (in
    /// byte order) with changed keys, its clients and the keys (in byte order, each once) with who changed
    /// them. The queue starts afresh.
    mutating func takeBroadcasts() -> [(clients: Set<UInt64>, keys: [(key: Bytes, modifier: UInt64)])] {
        defer { pendingBroadcast = [:] }
        func precedes(_ a: Bytes, _ b: Bytes) -> Bool { a.array.lexicographicallyPrecedes(b.array) }
        return pendingBroadcast.keys.sorted(by: precedes).compactMap { prefix in
            guard let clients = prefixes[prefix], let changed = pendingBroadcast[prefix] else { return nil }
            let keys = changed.keys.sorted(by: precedes).map { (key: $0, modifier: changed[$0] ?? 0) }
            return (clients, keys)
        }
    }

    /// FLUSHDB / FLUSHALL: every key changed; the table starts afresh.
    mutating func forgetAllKeys() { keys = [:] }
}

extension ServerCore {
    /// After a read-only command: remembers its keys for a tracking client.
    func rememberTrackedKeys(_ client: ClientState, _ spec: CommandSpec, _ args: Arguments) {
        guard client.tracking != nil else { return }
        let arguments = (0..<args.count).map { args[$0] }
        tracking.remember(spec.keyIndexes(arguments).lazy.map { Bytes(args[$0]) }, readBy: client)
    }

    /// A key changed: tell the clients that read it now; the BCAST clients of its prefixes hear of it in
    /// the next `sendTrackingBroadcasts`.
    func invalidateTrackedKey(_ key: Bytes) {
        for id in tracking.keyChanged(key, by: currentClient?.id ?? 0) {
            guard let client = clients[id], let state = client.tracking, !state.broadcast else { continue }
            if state.noLoop && client === currentClient { continue }
            sendInvalidation(client, keys: [key])
        }
    }

    /// Sends each BCAST client one message per prefix with the keys changed under it since the last call
    /// (a NOLOOP client's own changes left out). Run after each batch of commands and each cron step.
    func sendTrackingBroadcasts() {
        guard tracking.hasPendingBroadcasts else { return }
        for (ids, keys) in tracking.takeBroadcasts() {
            for id in ids {
                guard let client = clients[id], let state = client.tracking else { continue }
                let told = state.noLoop ? keys.filter { $0.modifier != id } : keys
                if !told.isEmpty { sendInvalidation(client, keys: told.map(\.key)) }
            }
        }
    }

    /// FLUSHDB / FLUSHALL: every tracking client is told that everything changed (a null key list).
    func invalidateAllTracked() {
        guard tracking.clientCount > 0 else { return }
        for client in clients.all where client.tracking != nil {
            sendInvalidation(client, keys: nil)
        }
        tracking.forgetAllKeys()
    }

    /// Sends an `invalidate` push (RESP3) or a `__redis__:invalidate` message (a RESP2 redirect target
    /// that is subscribed) with `keys`, nil meaning all keys.
    private func sendInvalidation(_ client: ClientState, keys: [Bytes]?) {
        guard let state = client.tracking else { return }
        var target = client
        if state.redirect != 0 {
            guard let redirected = clients[state.redirect] else {
                if !state.brokenRedirect {
                    client.tracking?.brokenRedirect = true
                    if client.protocolVersion == .v3 {
                        deliver(to: client) { writer in
                            writer.push(2)
                            writer.bulk("tracking-redir-broken")
                            writer.integer(Int64(state.redirect))
                        }
                    }
                }
                return
            }
            target = redirected
        }
        let usesPush = target.protocolVersion == .v3
        guard usesPush || (state.redirect != 0 && target.isSubscriber) else { return }
        deliver(to: target) { writer in
            if usesPush {
                writer.push(2)
                writer.bulk("invalidate")
            } else {
                writer.array(3)
                writer.bulk("message")
                writer.bulk("__redis__:invalidate")
            }
            if let keys {
                writer.array(keys.count)
                for key in keys { key.withBytes { writer.bulk($0) } }
            } else if usesPush {
                writer.nullArray()
            } else {
                writer.null()
            }
        }
    }
}

extension Bytes {
    /// Whether these bytes start with `prefix`.
    func hasPrefix(_ prefix: Bytes) -> Bool {
        withBytes { bytes in prefix.withBytes { p in bytes.count >= p.count && bytes.starts(with: p) } }
    }
}
