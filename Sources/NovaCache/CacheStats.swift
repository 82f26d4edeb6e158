import Metrics
import Synchronization

/// Counters of a `CacheManager` since it started, as one consistent snapshot.
public struct CacheStats: Sendable, Hashable, CustomStringConvertible {
    public var memoryHits = 0
    public var memoryMisses = 0
    public var remoteHits = 0
    public var remoteMisses = 0
    /// Loader runs by `getOrLoad` (one per single-flight group).
    public var loaderCalls = 0
    public var loaderFailures = 0
    /// Stale values returned because the loader failed.
    public var staleServed = 0
    /// Remote calls that failed to get an answer (connection refused, timeout, closed).
    public var remoteErrors = 0
    /// Remote calls skipped because the remote was known to be down (circuit open).
    public var remoteSkipped = 0
    /// Whether the manager is serving from memory only now.
    public var fallbackActive = false
    /// Outages seen (transitions into fallback).
    public var outages = 0
    /// Writes and deletes made during outages and replayed after recovery.
    public var replayedWrites = 0
    /// Outage writes not replayed: expired meanwhile, or the remote had a newer value.
    public var skippedReplays = 0
    /// Writes made during an outage that are waiting for the remote.
    public var pendingReplays = 0
    /// Memory-tier entries dropped because another process changed the key.
    public var invalidations = 0
    public var memoryEntries = 0
    public var memoryBytes = 0
    public var memoryEvictions = 0

    public init() {}

    /// Hits in either tier over lookups (every lookup asks the memory tier first; 0 before any lookup).
    public var hitRatio: Double {
        let lookups = memoryHits + memoryMisses
        return lookups == 0 ? 0 : Double(memoryHits + remoteHits) / Double(lookups)
    }

    public var description: String {
        "memory \(memoryHits) hits/\(memoryMisses) misses, remote \(remoteHits) hits/\(remoteMisses) misses, "
            + "loader \(loaderCalls) calls (\(loaderFailures) failed, \(staleServed) stale served), "
            + "remote errors \(remoteErrors), skipped \(remoteSkipped), fallback \(fallbackActive), outages \(outages), "
            + "replayed \(replayedWrites) (\(skippedReplays) skipped, \(pendingReplays) pending), invalidations \(invalidations), "
            + "memory \(memoryEntries) entries / \(memoryBytes) bytes / \(memoryEvictions) evicted"
    }
}

/// The manager's counters, kept as a snapshot struct and mirrored to swift-metrics.
final class StatsRecorder: Sendable {
    enum Event: Sendable {
        case memoryHit, memoryMiss, remoteHit, remoteMiss, loaderCall, loaderFailure, staleServed, remoteError
        case remoteSkipped, replayed, skippedReplay, invalidation
    }

    private let state = Mutex(CacheStats())
    private let counters: [Counter]
    private let fallbackGauge: Gauge
    private let pendingGauge: Gauge
    private let outageCounter: Counter

    init(label: String) {
        let dimensions = [("cache", label)]
        func counter(_ name: String, _ extra: [(String, String)] = []) -> Counter {
            Counter(label: "novacache_\(name)", dimensions: dimensions + extra)
        }
        counters = [
            counter("lookups_total", [("tier", "memory"), ("result", "hit")]),
            counter("lookups_total", [("tier", "memory"), ("result", "miss")]),
            counter("lookups_total", [("tier", "remote"), ("result", "hit")]),
            counter("lookups_total", [("tier", "remote"), ("result", "miss")]),
            counter("loader_calls_total"),
            counter("loader_failures_total"),
            counter("stale_served_total"),
            counter("remote_errors_total"),
            counter("remote_skipped_total"),
            counter("replayed_writes_total"),
            counter("skipped_replays_total"),
            counter("invalidations_total"),
        ]
        fallbackGauge = Gauge(label: "novacache_fallback_active", dimensions: dimensions)
        pendingGauge = Gauge(label: "novacache_pending_replays", dimensions: dimensions)
        outageCounter = counter("outages_total")
    }

    func record(_ event: Event, count: Int = 1) {
        state.withLock { stats in
            switch event {
            case .memoryHit: stats.memoryHits += count
            case .memoryMiss: stats.memoryMisses += count
            case .remoteHit: stats.remoteHits += count
            case .remoteMiss: stats.remoteMisses += count
            case .loaderCall: stats.loaderCalls += count
            case .loaderFailure: stats.loaderFailures += count
            case .staleServed: stats.staleServed += count
            case .remoteError: stats.remoteErrors += count
            case .remoteSkipped: stats.remoteSkipped += count
            case .replayed: stats.replayedWrites += count
            case .skippedReplay: stats.skippedReplays += count
            case .invalidation: stats.invalidations += count
            }
        }
        let index: Int = switch event {
        case .memoryHit: 0
        case .memoryMiss: 1
        case .remoteHit: 2
        case .remoteMiss: 3
        case .loaderCall: 4
        case .loaderFailure: 5
        case .staleServed: 6
        case .remoteError: 7
        case .remoteSkipped: 8
        case .replayed: 9
        case .skippedReplay: 10
        case .invalidation: 11
        }
        counters[index].increment(by: count)
    }

    func setFallback(_ active: Bool) {
        let entered = state.withLock { stats -> Bool in
            defer { stats.fallbackActive = active }
            if active && !stats.fallbackActive { stats.outages += 1; return true }
            return false
        }
        if entered { outageCounter.increment() }
        fallbackGauge.record(active ? 1 : 0)
    }

    func setPending(_ count: Int) {
        state.withLock { $0.pendingReplays = count }
        pendingGauge.record(count)
    }

    var snapshot: CacheStats { state.withLock { $0 } }
}
