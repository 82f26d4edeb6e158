import DequeModule

/// The conditions an operator is warned about.
package enum AlertKind: String, Sendable, CaseIterable, Comparable {
    /// Memory used reached `alert-memory`.
    case memory
    /// The keyspace hit ratio over the window fell below `alert-hit-ratio`.
    case hitRatio = "hit_ratio"
    /// The last background save failed.
    case backgroundSave = "bgsave"
    /// The last write or fsync of the append-only file failed.
    case aofWrite = "aof_write"
    /// Connections were refused (maxclients) within the window.
    case rejectedConnections = "rejected_connections"

    package static func < (a: AlertKind, b: AlertKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// When each alert fires. A rule that is nil or zero is off.
package struct AlertRules: Sendable, Equatable {
    /// Fires when memory used reaches this level; resolves below 95% of it (no flapping at the edge).
    package var memory: MemoryThreshold?
    /// Fires when hits / (hits + misses) over `hitRatioWindowSeconds` is below this share (0…1).
    package var minimumHitRatio: Double = 0
    package var hitRatioWindowSeconds: Double = 300
    /// Fewer lookups than this in the window say nothing about the ratio: the alert does not fire.
    package var hitRatioMinimumLookups = 100
    /// Fires when connections were rejected within `rejectedConnectionsWindowSeconds`.
    package var rejectedConnections = true
    package var rejectedConnectionsWindowSeconds: Double = 60
    /// Fire while the last background save or AOF write has failed.
    package var backgroundSave = true
    package var aofWrite = true

    package init(memory: MemoryThreshold? = nil, minimumHitRatio: Double = 0, hitRatioWindowSeconds: Double = 300) {
        self.memory = memory
        self.minimumHitRatio = minimumHitRatio
        self.hitRatioWindowSeconds = hitRatioWindowSeconds
    }

    /// Whether `kind` is evaluated at all.
    package func isEnabled(_ kind: AlertKind) -> Bool {
        switch kind {
        case .memory: memory != nil
        case .hitRatio: minimumHitRatio > 0
        case .backgroundSave: backgroundSave
        case .aofWrite: aofWrite
        case .rejectedConnections: rejectedConnections
        }
    }
}

/// What the alerts look at, taken from the server at one moment.
package struct AlertSample: Sendable {
    /// Seconds on a clock that only moves forward.
    package var time: Double
    /// Seconds since 1970, for `since` stamps.
    package var wallTime: Double
    package var usedMemory: Int
    package var maxMemory: Int
    package var keyspaceHits: Int
    package var keyspaceMisses: Int
    package var rejectedConnections: Int
    package var lastBackgroundSaveFailed: Bool
    package var aofWriteFailed: Bool

    package init(
        time: Double, wallTime: Double, usedMemory: Int, maxMemory: Int, keyspaceHits: Int, keyspaceMisses: Int,
        rejectedConnections: Int, lastBackgroundSaveFailed: Bool, aofWriteFailed: Bool
    ) {
        self.time = time
        self.wallTime = wallTime
        self.usedMemory = usedMemory
        self.maxMemory = maxMemory
        self.keyspaceHits = keyspaceHits
        self.keyspaceMisses = keyspaceMisses
        self.rejectedConnections = rejectedConnections
        self.lastBackgroundSaveFailed = lastBackgroundSaveFailed
        self.aofWriteFailed = aofWriteFailed
    }

    /// The sample an INFO report gives (any Redis-protocol server).
    package init(report: InfoReport, time: Double, wallTime: Double) {
        self.init(
            time: time, wallTime: wallTime, usedMemory: report.integer("used_memory") ?? 0,
            maxMemory: report.integer("maxmemory") ?? 0, keyspaceHits: report.integer("keyspace_hits") ?? 0,
            keyspaceMisses: report.integer("keyspace_misses") ?? 0,
            rejectedConnections: report.integer("rejected_connections") ?? 0,
            lastBackgroundSaveFailed: report["rdb_last_bgsave_status"] == "err",
            aofWriteFailed: report["aof_last_write_status"] == "err")
    }
}

/// An alert that is firing.
package struct ActiveAlert: Sendable, Equatable {
    package var kind: AlertKind
    /// What is wrong, in one line for an operator.
    package var message: String
    /// When it started firing (seconds since 1970).
    package var since: Double

    package init(kind: AlertKind, message: String, since: Double) {
        self.kind = kind
        self.message = message
        self.since = since
    }
}

/// A change of an alert's state.
package enum AlertTransition: Sendable, Equatable {
    case fired(ActiveAlert)
    case resolved(AlertKind, message: String)
}

/// Evaluates `AlertRules` against successive samples and remembers which alerts fire. Each alert reports
/// once when it starts firing and once when it resolves.
package struct AlertMonitor: Sendable {
    package var rules: AlertRules
    /// The alerts firing now, by kind.
    package private(set) var firing: [AlertKind: ActiveAlert] = [:]
    /// Recent counters for the windowed rules, oldest first.
    private var history: Deque<(time: Double, hits: Int, misses: Int, rejected: Int)> = []

    package init(rules: AlertRules) { self.rules = rules }

    /// The firing alerts in a stable order.
    package var active: [ActiveAlert] { firing.values.sorted { $0.kind < $1.kind } }

    /// Takes a new sample; returns the alerts that started firing or resolved.
    /// - Complexity: O(samples in the longest window) at worst, amortised O(1).
    package mutating func evaluate(_ sample: AlertSample) -> [AlertTransition] {
        // Counters that went down were reset (CONFIG RESETSTAT, a restart): the old history is meaningless.
        if let last = history.last,
           sample.keyspaceHits < last.hits || sample.keyspaceMisses < last.misses || sample.rejectedConnections < last.rejected {
            history.removeAll()
        }
        history.append((sample.time, sample.keyspaceHits, sample.keyspaceMisses, sample.rejectedConnections))
        let longest = max(rules.hitRatioWindowSeconds, rules.rejectedConnectionsWindowSeconds)
        // Keep one sample at or before the window's start so that the window is fully covered.
        while history.count > 2, history[1].time <= sample.time - longest { history.removeFirst() }

        var transitions: [AlertTransition] = []
        for kind in AlertKind.allCases {
            let condition = rules.isEnabled(kind) ? self.condition(kind, sample) : nil
            switch (firing[kind], condition) {
            case (nil, let message?):
                let alert = ActiveAlert(kind: kind, message: message, since: sample.wallTime)
                firing[kind] = alert
                transitions.append(.fired(alert))
            case (var alert?, let message?):
                alert.message = message
                firing[kind] = alert
            case (let alert?, nil):
                firing[kind] = nil
                transitions.append(.resolved(kind, message: alert.message))
            case (nil, nil):
                break
            }
        }
        return transitions
    }

    /// The sample at or just before `seconds` ago (the oldest kept when history is shorter).
    private func baseline(_ seconds: Double, now: Double) -> (time: Double, hits: Int, misses: Int, rejected: Int)? {
        history.last { $0.time <= now - seconds } ?? history.first
    }

    /// The problem `kind` describes in `sample`, or nil when it is fine.
    private func condition(_ kind: AlertKind, _ sample: AlertSample) -> String? {
        switch kind {
        case .memory:
            guard let threshold = rules.memory, let limit = threshold.bytes(maxMemory: sample.maxMemory) else { return nil }
            // Once firing it stays until memory is below 95% of the level.
            let level = firing[.memory] == nil ? limit : limit - limit / 20
            guard sample.usedMemory >= level else { return nil }
            if case .percent = threshold.kind {
                return "memory used \(formatBytes(sample.usedMemory)) reached the alert level \(threshold) of maxmemory \(formatBytes(sample.maxMemory)) (\(formatBytes(limit)))"
            }
            return "memory used \(formatBytes(sample.usedMemory)) reached the alert level \(formatBytes(limit))"
        case .hitRatio:
            guard let start = baseline(rules.hitRatioWindowSeconds, now: sample.time) else { return nil }
            let hits = sample.keyspaceHits - start.hits
            let lookups = hits + sample.keyspaceMisses - start.misses
            guard lookups >= rules.hitRatioMinimumLookups else { return nil }
            let ratio = Double(hits) / Double(lookups)
            guard ratio < rules.minimumHitRatio else { return nil }
            return "hit ratio \(percent(ratio)) over the last \(Int(sample.time - start.time))s is below \(percent(rules.minimumHitRatio)) (\(lookups) lookups)"
        case .backgroundSave:
            return sample.lastBackgroundSaveFailed ? "the last background save failed" : nil
        case .aofWrite:
            return sample.aofWriteFailed ? "the last write to the append-only file failed" : nil
        case .rejectedConnections:
            guard let start = baseline(rules.rejectedConnectionsWindowSeconds, now: sample.time) else { return nil }
            let rejected = sample.rejectedConnections - start.rejected
            guard rejected > 0 else { return nil }
            return "\(rejected) connection\(rejected == 1 ? "" : "s") rejected in the last \(Int(rules.rejectedConnectionsWindowSeconds))s (maxclients reached)"
        }
    }

    private func percent(_ ratio: Double) -> String {
        let tenths = (ratio * 1000).rounded()
        return "\(Int(tenths) / 10).\(Int(tenths) % 10)%"
    }
}

/// Bytes as Redis's `*_human` fields print them (`1.50M`).
package func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "K", "M", "G", "T", "P"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    if unit == 0 { return "\(bytes)B" }
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)\(units[unit])"
}
