import NovaClient

/// The remote tier's health as a `CacheManager` sees it.
public enum RemoteStatus: Sendable, Hashable, CustomStringConvertible {
    /// Not tried yet.
    case connecting
    /// Answering; reads and writes go to the remote.
    case available
    /// Unreachable, timing out or still loading its data: the manager serves from memory, keeps writes for
    /// replay and probes the remote until it answers.
    case unavailable(reason: String)
    /// The remote answers but refuses this configuration (wrong or missing password, no permission for
    /// the namespace's keys, a database number out of range, a read-only replica): nothing will work until
    /// the configuration or the server changes. Handled like an outage (memory answers, writes are kept,
    /// probes continue), and logged as an error once.
    case misconfigured(reason: String)
    /// `shutdown()` was called.
    case shutDown

    /// Whether reads and writes reach the remote.
    public var isAvailable: Bool { self == .available }

    public var description: String {
        switch self {
        case .connecting: return "connecting"
        case .available: return "available"
        case .unavailable(let reason): return "unavailable: \(reason)"
        case .misconfigured(let reason): return "misconfigured: \(reason)"
        case .shutDown: return "shut down"
        }
    }
}

/// Why a remote call failed, as far as the circuit cares.
enum RemoteFailure: Sendable, Hashable {
    /// No answer (refused, timed out, closed) or a transient refusal (LOADING, BUSY, MASTERDOWN).
    case unreachable(String)
    /// An answer meaning "this configuration can never work".
    case misconfigured(String)

    /// The failure an error reply stands for; nil for replies about the command itself (WRONGTYPE, OOM …),
    /// which say nothing about the remote's health.
    init?(reply error: RedisError) {
        let message = error.message
        switch error.code {
        case "WRONGPASS", "NOAUTH", "NOPERM", "READONLY":
            self = .misconfigured(message)
        case "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN":
            self = .unreachable(message)
        case "ERR" where message.contains("DB index is out of range") || message.contains("invalid DB index")
            || message.contains("invalid password") || message.contains("called without any password configured"):
            self = .misconfigured(message)
        default:
            return nil
        }
    }
}

/// The outage circuit: a pure state machine over the remote's health. Transitions take the time from the
/// caller (a `CacheClock`) and return what the manager must do, so that every path is unit-tested with a
/// manual clock; the manager owns the tasks, logs and metrics.
///
/// ```
/// starting ──ok──▶ closed ──failure──▶ open ──probe ok──▶ replaying ──journal empty──▶ closed
///     └──failure──────────────────────▶  ▲                   │
///                                        └──── failure ──────┘        any ──shutdown──▶ shutDown
/// ```
struct RemoteCircuit: Sendable {
    enum Phase: Sendable, Hashable {
        case starting, closed, open, replaying, shutDown
    }

    /// What the manager does after a transition.
    enum Action: Sendable, Hashable {
        /// Start the recovery task (it probes at `nextProbeAt`).
        case startRecovery
        /// Log once that the remote cannot be reached and the memory tier answers.
        case warnUnreachable(String)
        /// Log as an error that the remote refuses the configuration (once per reason per episode).
        case reportMisconfigured(String)
        /// Log that normal service resumed after an outage that lasted `outageMilliseconds`.
        case announceRecovery(outageMilliseconds: Int64)
    }

    private(set) var phase = Phase.starting
    /// The latest failure while not closed.
    private(set) var failure: RemoteFailure?
    /// When the circuit opened (ms since the epoch), 0 when closed.
    private(set) var openedAt: Int64 = 0
    /// When the recovery task probes next.
    private(set) var nextProbeAt: Int64 = 0
    /// Failed probes in a row in this outage.
    private(set) var failedProbes = 0
    /// What this outage already logged.
    private var reportedMisconfiguration: String?
    private var warnedUnreachable = false
    let probeBackoff: Backoff

    /// - Parameters: the first wait between probes and the longest; the remote's return is noticed within
    ///   `maximum` (plus one probe's timeout).
    init(firstProbeAfter base: Duration, maximumProbeInterval maximum: Duration) {
        probeBackoff = Backoff(base: min(base, maximum), maximum: maximum)
    }

    /// Whether calls go to the remote (false while open or replaying: they are answered from memory and
    /// writes are journalled, so that replay sees every outage write).
    var allowsRemoteCalls: Bool { phase == .starting || phase == .closed }

    /// Whether writes are kept for replay.
    var journalsWrites: Bool { phase == .open || phase == .replaying }

    var status: RemoteStatus {
        switch phase {
        case .starting: return .connecting
        case .closed: return .available
        case .shutDown: return .shutDown
        case .open, .replaying:
            switch failure {
            case .misconfigured(let reason): return .misconfigured(reason: reason)
            case .unreachable(let reason): return .unavailable(reason: reason)
            case nil: return .unavailable(reason: "unknown")
            }
        }
    }

    /// A remote call was answered.
    mutating func succeeded() {
        if phase == .starting { phase = .closed }
    }

    /// A remote call (or the invalidation listener) failed with `failure` at `now`.
    mutating func failed(_ failure: RemoteFailure, at now: Int64, using generator: inout some RandomNumberGenerator) -> [Action] {
        switch phase {
        case .shutDown:
            return []
        case .starting, .closed:
            phase = .open
            openedAt = now
            failedProbes = 0
            reportedMisconfiguration = nil
            warnedUnreachable = false
            nextProbeAt = now + probeBackoff.delay(afterFailures: 1, using: &generator).wholeMilliseconds
            return [.startRecovery] + record(failure)
        case .open, .replaying:
            // The recovery task is running already; a replay that failed goes back to probing.
            phase = .open
            return record(failure)
        }
    }

    /// The recovery task's probe failed at `now`; returns when to probe next.
    mutating func probeFailed(_ failure: RemoteFailure, at now: Int64, using generator: inout some RandomNumberGenerator) -> [Action] {
        guard phase == .open || phase == .replaying else { return [] }
        phase = .open
        failedProbes += 1
        nextProbeAt = now + probeBackoff.delay(afterFailures: failedProbes + 1, using: &generator).wholeMilliseconds
        return record(failure)
    }

    /// The probe was answered: replay the journal. False when the circuit is not open (shut down).
    mutating func probeSucceeded() -> Bool {
        guard phase == .open else { return false }
        phase = .replaying
        return true
    }

    /// The replay ended; when the journal is empty (nothing written meanwhile, nothing left over) the
    /// circuit closes, else the manager replays again.
    mutating func replayFinished(journalEmpty: Bool, at now: Int64) -> [Action] {
        guard phase == .replaying, journalEmpty else { return [] }
        phase = .closed
        failure = nil
        failedProbes = 0
        defer { openedAt = 0 }
        return [.announceRecovery(outageMilliseconds: max(0, now - openedAt))]
    }

    /// Moves the next probe to `now` (a flush before shutdown does not wait out the backoff).
    mutating func probeSoon(at now: Int64) {
        if phase == .open { nextProbeAt = min(nextProbeAt, now) }
    }

    mutating func shutDown() {
        phase = .shutDown
    }

    private mutating func record(_ failure: RemoteFailure) -> [Action] {
        self.failure = failure
        switch failure {
        case .misconfigured(let reason):
            guard reportedMisconfiguration != reason else { return [] }
            reportedMisconfiguration = reason
            return [.reportMisconfigured(reason)]
        case .unreachable(let reason):
            guard !warnedUnreachable else { return [] }
            warnedUnreachable = true
            return [.warnUnreachable(reason)]
        }
    }
}
