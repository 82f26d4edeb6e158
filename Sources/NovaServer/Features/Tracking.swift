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

    /// A key changed: the clients to tell — those that read it (forgotten now, as they will read it
    /// again) and the BCAST clients of its prefixes (`broadcast`).
    mutating func takeInterested(in key: Bytes) -> (readers: Set<UInt64>, broadcast: [UInt64]) {
        let readers = keys.removeValue(forKey: key) ?? []
        guard !prefixes.isEmpty else { return (readers, []) }
        var broadcast: [UInt64] = []
        for (prefix, ids) in prefixes where key.hasPrefix(prefix) { broadcast += ids }
        return (readers, broadcast)
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

    /// A key changed: tell the clients that read it, and the BCAST clients of its prefixes.
    func invalidateTrackedKey(_ key: Bytes) {
        let (readers, broadcast) = tracking.takeInterested(in: key)
        for id in readers {
            guard let client = clients[id], let state = client.tracking, !state.broadcast else { continue }
            if state.noLoop && client === currentClient { continue }
            sendInvalidation(client, keys: [key])
        }
        for id in broadcast {
            guard let client = clients[id], let state = client.tracking else { continue }
            if state.noLoop && client === currentClient { continue }
            sendInvalidation(client, keys: [key])
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
