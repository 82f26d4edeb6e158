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
    /// Remote calls that failed: no answer (connection refused, timeout, closed) or an error reply.
    public var remoteErrors = 0
    /// Remote calls skipped because the remote was known to be down (circuit open).
    public var remoteSkipped = 0
    /// Whether the manager is serving from memory only now.
    public var fallbackActive = false
    /// Whether the remote refuses this configuration (wrong or missing password, no permission, bad
    /// database): `CacheManager.remoteStatus` says why.
    public var misconfigured = false
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
    /// Background reloads started by `CachePolicy.eagerRefresh`.
    public var eagerRefreshes = 0
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
            + "remote errors \(remoteErrors), skipped \(remoteSkipped), fallback \(fallbackActive)\(misconfigured ? " (misconfigured)" : ""), outages \(outages), "
            + "replayed \(replayedWrites) (\(skippedReplays) skipped, \(pendingReplays) pending), invalidations \(invalidations), "
            + "memory \(memoryEntries) entries / \(memoryBytes) bytes / \(memoryEvictions) evicted"
    }
}

/// The manager's counters: atomics on the hot path, copied into swift-metrics by `publishMetrics()` (the
/// manager calls it every second), so that a memory-tier hit costs a few atomic adds and no metrics call.
final class StatsRecorder: Sendable {
    enum Event: Int, CaseIterable, Sendable {
        case memoryHit, memoryMiss, remoteHit, remoteMiss, loaderCall, loaderFailure, staleServed, remoteError
        case remoteSkipped, replayed, skippedReplay, invalidation, eagerRefresh
    }

    /// One atomic per event, inline in this object (stable addresses, and counting a hit does not retain
    /// anything; an array of boxed atomics cost a retain and a release per event). The count is
    /// `Event.allCases.count`, checked in `init`.
    private let events = InlineArray<13, Atomic<Int>> { _ in Atomic(0) }
    private let fallback = Atomic<Bool>(false)
    private let misconfigured = Atomic<Bool>(false)
    private let outages = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let published = Mutex<[Int]>([])
    private let counters: [Counter]
    private let fallbackGauge: Gauge
    private let misconfiguredGauge: Gauge
    private let pendingGauge: Gauge
    private let outageCounter: Counter

    init(label: String) {
        let dimensions = [("cache", label)]
        func counter(_ name: String, _ extra: [(String, String)] = []) -> Counter {
            Counter(label: "novacache_\(name)", dimensions: dimensions + extra)
        }
        counters = Event.allCases.map { event -> Counter in
            switch event {
            case .memoryHit: return counter("lookups_total", [("tier", "memory"), ("result", "hit")])
            case .memoryMiss: return counter("lookups_total", [("tier", "memory"), ("result", "miss")])
            case .remoteHit: return counter("lookups_total", [("tier", "remote"), ("result", "hit")])
            case .remoteMiss: return counter("lookups_total", [("tier", "remote"), ("result", "miss")])
            case .loaderCall: return counter("loader_calls_total")
            case .loaderFailure: return counter("loader_failures_total")
            case .staleServed: return counter("stale_served_total")
            case .remoteError: return counter("remote_errors_total")
            case .remoteSkipped: return counter("remote_skipped_total")
            case .replayed: return counter("replayed_writes_total")
            case .skippedReplay: return counter("skipped_replays_total")
            case .invalidation: return counter("invalidations_total")
            case .eagerRefresh: return counter("eager_refreshes_total")
            }
        }
        fallbackGauge = Gauge(label: "novacache_fallback_active", dimensions: dimensions)
        misconfiguredGauge = Gauge(label: "novacache_remote_misconfigured", dimensions: dimensions)
        pendingGauge = Gauge(label: "novacache_pending_replays", dimensions: dimensions)
        outageCounter = counter("outages_total")
        published.withLock { $0 = Array(repeating: 0, count: Event.allCases.count) }
        precondition(Event.allCases.count == events.count, "one counter per event")
    }

    @inline(__always)
    func record(_ event: Event, count: Int = 1) {
        // wrappingAdd is one `lock xadd`; the trapping add is a load and a compare-exchange loop.
        events[event.rawValue].wrappingAdd(count, ordering: .relaxed)
    }

    func setFallback(_ active: Bool) {
        let was = fallback.exchange(active, ordering: .relaxed)
        if active && !was {
            outages.add(1, ordering: .relaxed)
            outageCounter.increment()
        }
        fallbackGauge.record(active ? 1 : 0)
    }

    func setMisconfigured(_ active: Bool) {
        misconfigured.store(active, ordering: .relaxed)
        misconfiguredGauge.record(active ? 1 : 0)
    }

    func setPending(_ count: Int) {
        pending.store(count, ordering: .relaxed)
        pendingGauge.record(count)
    }

    /// Adds what happened since the last call to the swift-metrics counters.
    func publishMetrics() {
        let current = events.indices.map { events[$0].load(ordering: .relaxed) }
        let deltas = published.withLock { last -> [Int] in
            defer { last = current }
            return zip(current, last).map { $0 - $1 }
        }
        for (index, delta) in deltas.enumerated() where delta > 0 { counters[index].increment(by: delta) }
    }

    var snapshot: CacheStats {
        func count(_ event: Event) -> Int { events[event.rawValue].load(ordering: .relaxed) }
        var stats = CacheStats()
        stats.memoryHits = count(.memoryHit)
        stats.memoryMisses = count(.memoryMiss)
        stats.remoteHits = count(.remoteHit)
        stats.remoteMisses = count(.remoteMiss)
        stats.loaderCalls = count(.loaderCall)
        stats.loaderFailures = count(.loaderFailure)
        stats.staleServed = count(.staleServed)
        stats.remoteErrors = count(.remoteError)
        stats.remoteSkipped = count(.remoteSkipped)
        stats.replayedWrites = count(.replayed)
        stats.skippedReplays = count(.skippedReplay)
        stats.invalidations = count(.invalidation)
        stats.eagerRefreshes = count(.eagerRefresh)
        stats.fallbackActive = fallback.load(ordering: .relaxed)
        stats.misconfigured = misconfigured.load(ordering: .relaxed)
        stats.outages = outages.load(ordering: .relaxed)
        stats.pendingReplays = pending.load(ordering: .relaxed)
        return stats
    }
}
