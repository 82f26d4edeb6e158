import NIOCore
import NovaEngine

/// The periodic task (Redis's `serverCron`), run `hz` times a second by the server process: active
/// expiry within a time budget, memory and rate samples, eviction, save rules and AOF rewrite triggers,
/// idle-client and blocking timeouts.
extension ServerCore {
    /// One tick. Takes the lock in short holds (expiry runs in chunks so that clients get in between),
    /// and performs connection actions (timeouts' replies, idle closes) after releasing it.
    package func runCron() {
        // After the final save nothing may change the data or start another save.
        if withLock({ halted }) { return }
        let (activeExpiry, budget) = withLock { (activeExpireEnabled, UInt64(1_000_000 * config.settings.activeExpireEffort)) }
        if activeExpiry { expireActively(budgetNanoseconds: budget) }
        var idle: [any ConnectionControl] = []
        sampleMemoryFromCron()
        let actions = withLock { () -> [PostAction] in
            let now = SystemClock.nowMilliseconds()
            if clientPause.isOver(now: now) { unpauseClients() }
            peakMemory = max(peakMemory, usedMemory)
            rates.record(stats, at: now)
            if now - lastAlertCheck >= 1000 {
                lastAlertCheck = now
                checkAlerts()
            }
            let maxMemory = config.settings.maxMemory
            if maxMemory > 0 { _ = enforceMaxMemory(maxMemory) }
            checkSaveRules(now: now)
            checkAutoRewrite()
            let timeout = Int64(config.settings.timeout) * 1000
            if timeout > 0 {
                for client in clients.all where !client.isBlocked && now - client.lastInteraction > timeout {
                    if let connection = client.connection { idle.append(connection) }
                }
            }
            keyspace.now = now
            expireBlockedClients(now: now)
            sendTrackingBroadcasts()
            defer { pendingActions.removeAll() }
            return pendingActions
        }
        performDetached(actions)
        for connection in idle { connection.close() }
    }

    /// Samples keys with a TTL and deletes the expired ones, in chunks of 2,048 examined keys, until one
    /// full sweep is done or the budget is spent; the next tick continues where this one stopped.
    private func expireActively(budgetNanoseconds budget: UInt64) {
        let start = SystemClock.monotonicNanoseconds()
        var visited = 0
        while true {
            let (segments, total) = withLock { () -> (Int, Int) in
                keyspace.now = SystemClock.nowMilliseconds()
                let visited = keyspace.activeExpireCycle(maxExamined: 2048).visitedSegments
                sendTrackingBroadcasts()
                return (visited, keyspace.databases.count * Database.segmentCount)
            }
            visited += segments
            if visited >= total { break }
            if SystemClock.monotonicNanoseconds() &- start > budget {
                withLock { keyspace.stats.expiredTimeCapReachedCount += 1 }
                break
            }
        }
        let milliseconds = Int((SystemClock.monotonicNanoseconds() &- start) / 1_000_000)
        if milliseconds > 0 { withLock { addLatencySampleIfNeeded("expire-cycle", milliseconds: milliseconds) } }
    }
}

/// INFO's `instantaneous_ops_per_sec`, `instantaneous_input_kbps` and `instantaneous_output_kbps`.
struct InstantaneousRates: Sendable {
    var operations = RateSampler()
    var inputBytes = RateSampler()
    var outputBytes = RateSampler()

    mutating func record(_ stats: ServerStats, at now: Int64) {
        operations.record(value: stats.totalCommandsProcessed, at: now)
        inputBytes.record(value: stats.netInputBytes, at: now)
        outputBytes.record(value: stats.netOutputBytes, at: now)
    }
}

/// A moving average over the last 16 samples of a counter, as Redis computes instantaneous metrics.
struct RateSampler: Sendable {
    private var samples = [Double](repeating: 0, count: 16)
    private var index = 0
    private var lastTime: Int64 = 0
    private var lastValue = 0

    mutating func record(value: Int, at time: Int64) {
        defer {
            lastTime = time
            lastValue = value
        }
        guard lastTime > 0, time > lastTime else { return }
        samples[index] = Double(value - lastValue) * 1000 / Double(time - lastTime)
        index = (index + 1) % samples.count
    }

    var average: Double { samples.reduce(0, +) / Double(samples.count) }
}
