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

/// Server-assisted client-side caching state (Redis's tracking table and prefix table). Lock held.
struct TrackingTables {
    /// Key name (in any database) → clients that read it since it last changed.
    var keys: [Bytes: Set<UInt64>] = [:]
    /// BCAST prefix → clients tracking it.
    var prefixes: [Bytes: Set<UInt64>] = [:]
    /// Clients with tracking on.
    var clientCount = 0

    var isEmpty: Bool { keys.isEmpty && prefixes.isEmpty }
}

extension ServerCore {
    /// Turns tracking on for `client` with `options` (already validated), keeping earlier BCAST prefixes.
    func enableTracking(_ client: ClientState, _ options: TrackingState, prefixes: [Bytes]) {
        var state = client.tracking ?? TrackingState()
        if client.tracking == nil { tracking.clientCount += 1 }
        state.broadcast = options.broadcast
        state.optIn = options.optIn
        state.optOut = options.optOut
        state.noLoop = options.noLoop
        state.redirect = options.redirect
        state.brokenRedirect = false
        if options.broadcast {
            for prefix in prefixes.isEmpty ? [Bytes()] : prefixes where !state.prefixes.contains(prefix) {
                state.prefixes.append(prefix)
                tracking.prefixes[prefix, default: []].insert(client.id)
            }
        }
        client.tracking = state
    }

    /// Turns tracking off (CLIENT TRACKING OFF, RESET, disconnection). Keys it read stay in the table
    /// until they change; by then nobody is told.
    func disableTracking(_ client: ClientState) {
        guard let state = client.tracking else { return }
        for prefix in state.prefixes {
            tracking.prefixes[prefix]?.remove(client.id)
            if tracking.prefixes[prefix]?.isEmpty == true { tracking.prefixes[prefix] = nil }
        }
        client.tracking = nil
        tracking.clientCount -= 1
    }

    /// After a read-only command: remembers its keys for a tracking client (unless BCAST, or OPTIN
    /// without CACHING YES, or OPTOUT with CACHING NO).
    func rememberTrackedKeys(_ client: ClientState, _ spec: CommandSpec, _ args: Arguments) {
        guard let state = client.tracking, !state.broadcast else { return }
        if (state.optIn && !state.caching) || (state.optOut && state.caching) { return }
        let arguments = (0..<args.count).map { args[$0] }
        for index in spec.keyIndexes(arguments) {
            tracking.keys[Bytes(args[index]), default: []].insert(client.id)
        }
    }

    /// A key changed: tell the clients that read it, and the BCAST clients of its prefixes.
    func invalidateTrackedKey(_ key: Bytes) {
        if let readers = tracking.keys.removeValue(forKey: key) {
            for id in readers {
                guard let client = clients[id], let state = client.tracking, !state.broadcast else { continue }
                if state.noLoop && client === currentClient { continue }
                sendInvalidation(client, keys: [key])
            }
        }
        guard !tracking.prefixes.isEmpty else { return }
        for (prefix, ids) in tracking.prefixes where key.hasPrefix(prefix) {
            for id in ids {
                guard let client = clients[id], let state = client.tracking else { continue }
                if state.noLoop && client === currentClient { continue }
                sendInvalidation(client, keys: [key])
            }
        }
    }

    /// FLUSHDB / FLUSHALL: every tracking client is told that everything changed (a null key list).
    func invalidateAllTracked() {
        guard tracking.clientCount > 0 else { return }
        for client in clients.values where client.tracking != nil {
            sendInvalidation(client, keys: nil)
        }
        tracking.keys = [:]
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
