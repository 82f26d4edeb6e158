import DequeModule
import NIOCore

/// CLIENT PAUSE: while a pause lasts, commands it covers (every command with ALL; with WRITE, writes and
/// an EXEC whose transaction writes) are postponed, not refused: the client stops where it is and its
/// command runs once the pause ends, in the order clients were postponed. Keys whose TTL passes meanwhile
/// read as missing but stay (no expiry, no eviction), so that the data does not change. Guarded by the
/// server lock.
struct ClientPause {
    enum Mode: Equatable {
        case write, all
    }

    /// Nil when not paused.
    private(set) var mode: Mode?
    /// Unix ms when the pause ends.
    private(set) var end: Int64 = 0
    /// Clients waiting for the pause to end, in the order they were stopped.
    private(set) var postponed: Deque<ClientState> = []

    /// Starts or changes the pause: the latest mode applies, the later end time wins (Redis 7.0).
    mutating func pause(_ mode: Mode, until end: Int64) {
        self.mode = mode
        self.end = max(self.end, end)
    }

    /// Whether the pause holds back `flags` (the command's, with a transaction's for EXEC) at `now`.
    func holds(_ flags: CommandFlags, now: Int64) -> Bool {
        guard let mode, now < end else { return false }
        return mode == .all || flags.contains(.write)
    }

    /// Whether a pause is set whose end has come (the cron and dispatch end it).
    func isOver(now: Int64) -> Bool { mode != nil && now >= end }

    mutating func postpone(_ client: ClientState) {
        client.isPostponed = true
        client.isBlocked = true
        postponed.append(client)
    }

    /// Forgets a disconnected client.
    mutating func remove(_ client: ClientState) {
        guard client.isPostponed else { return }
        postponed.removeAll { $0 === client }
        client.isPostponed = false
        client.isBlocked = false
    }

    /// Ends the pause; returns the clients to resume, in order.
    mutating func unpause() -> Deque<ClientState> {
        mode = nil
        end = 0
        defer { postponed = [] }
        for client in postponed {
            client.isPostponed = false
            client.isBlocked = false
        }
        return postponed
    }
}

extension ServerCore {
    /// CLIENT PAUSE (lock held).
    func pauseClients(_ mode: ClientPause.Mode, until end: Int64) {
        clientPause.pause(mode, until: end)
        keyspace.deletionsPaused = true
        isPaused = true
    }

    /// Ends the pause (CLIENT UNPAUSE, or its time is up): expiry and eviction resume and the postponed
    /// clients run the command they stopped at (lock held).
    func unpauseClients() {
        keyspace.deletionsPaused = false
        isPaused = false
        for client in clientPause.unpause() {
            pendingActions.append(.resume(client, ByteBuffer()))
        }
    }

    /// Called when a pause is set: postpones the command in `context` when the pause covers it (the
    /// caller then leaves it unrun). Ends a pause whose time is up first.
    func postponeIfPaused(_ context: CommandContext, _ flags: CommandFlags) -> Bool {
        let now = SystemClock.nowMilliseconds()
        if clientPause.isOver(now: now) {
            unpauseClients()
            return false
        }
        guard !context.client.isReplaying, clientPause.holds(flags, now: now) else { return false }
        clientPause.postpone(context.client)
        return true
    }
}
