import NovaEngine
import NovaObservability

/// The server's side of observability: the alerts it evaluates, INFO's `nova` section, and what its HTTP
/// listener (`http-port`) reads.
extension ServerCore {
    /// Evaluates the alert rules on the current numbers (lock held; once a second from the cron). A
    /// firing alert is logged once when it starts and once when it resolves.
    func checkAlerts() {
        let sample = AlertSample(
            time: Double(SystemClock.monotonicNanoseconds()) / 1e9, wallTime: Double(SystemClock.nowMilliseconds()) / 1000,
            usedMemory: usedMemory, maxMemory: config.settings.maxMemory,
            keyspaceHits: keyspace.stats.keyspaceHits, keyspaceMisses: keyspace.stats.keyspaceMisses,
            rejectedConnections: stats.rejectedConnections,
            lastBackgroundSaveFailed: !snapshots.lastBackgroundSaveOK, aofWriteFailed: aof?.lastWriteFailed == true)
        for transition in alertMonitor.evaluate(sample) {
            switch transition {
            case .fired(let alert):
                logger.warning("Alert \(alert.kind.rawValue) firing: \(alert.message)")
            case .resolved(let kind, let message):
                logger.notice("Alert \(kind.rawValue) resolved (was: \(message))")
            }
        }
    }

    /// INFO nova: the alerts' states and NovaCache's own persistence numbers.
    func novaInfoLines() -> [String] {
        let rules = alertMonitor.rules
        var lines = ["alerts_firing:\(alertMonitor.firing.count)"]
        for kind in AlertKind.allCases {
            let state = alertMonitor.firing[kind] != nil ? "firing" : rules.isEnabled(kind) ? "ok" : "off"
            lines.append("alert_\(kind.rawValue):\(state)")
            if let alert = alertMonitor.firing[kind] {
                lines.append("alert_\(kind.rawValue)_since:\(Int(alert.since))")
                lines.append("alert_\(kind.rawValue)_reason:\(alert.message)")
            }
        }
        // The forkless snapshot's copy-on-write so far: segments written to since the running save began.
        var copied = 0
        for (database, captured) in zip(keyspace.databases, snapshots.captured) {
            copied += database.segmentsCopied(since: captured)
        }
        lines.append("snapshot_in_progress:\(snapshots.captured.isEmpty ? 0 : 1)")
        lines.append("snapshot_segments_copied:\(copied)")
        lines.append("snapshot_segments_copied_perc:\(String(format2: snapshots.captured.isEmpty ? 0 : Double(copied) * 100 / Double(Database.segmentCount * snapshots.captured.count)))")
        lines.append("aof_fsync_lag_ms:\(aof?.fsyncLagMilliseconds ?? 0)")
        lines.append("http_port:\(config.settings.httpPort)")
        return lines
    }

    /// Everything the HTTP pages show. INFO's sections are rendered one hold of the lock each, so that a
    /// scrape never stalls commands for the whole report (about 0.4 ms for INFO everything, against
    /// 0.1 ms for its largest section); the text is parsed after the lock is released.
    func observation() -> Observation {
        var text = ""
        for section in Info.allSections {
            text += withLock { Info.render(self, sections: [section]) }
        }
        let (slowlog, length, alerts, rules, databases) = withLock {
            let entries = slowLog.entries.prefix(10).map { entry in
                SlowlogEntry(
                    id: Int(entry.id), time: Int(entry.time), microseconds: Int(entry.microseconds),
                    arguments: entry.arguments.map { String(decoding: $0, as: UTF8.self) }, client: entry.peer)
            }
            return (entries, slowLog.entries.count, alertMonitor.active, alertMonitor.rules, config.settings.databases)
        }
        return Observation(
            report: InfoReport(parsing: text), databases: databases, slowlog: slowlog, slowlogLength: length,
            alerts: alerts, alertRules: rules, time: Double(SystemClock.nowMilliseconds()) / 1000)
    }

    /// Who may read the HTTP pages: anyone when the default user needs no password (as on the RESP
    /// port), otherwise HTTP Basic with an enabled ACL user and its password (`default` and the
    /// `requirepass` password; an empty user name means `default`).
    func observationAccess(username: String?, password: String?) -> ObservationAccess {
        withLock {
            let defaultUser = acl.defaultUser
            if defaultUser.enabled && defaultUser.noPassword { return .allowed }
            guard let password else { return .credentialsRequired }
            let name = (username ?? "").isEmpty ? "default" : username!
            guard let user = acl.user(named: name), user.enabled,
                  user.accepts(password: Array(password.utf8)) else { return .refused }
            return .allowed
        }
    }
}

/// The HTTP listener's view of this server.
struct ServerObservationSource: ObservationSource {
    let server: ServerCore

    func access(username: String?, password: String?) -> ObservationAccess {
        server.observationAccess(username: username, password: password)
    }

    func observe() async throws -> Observation { server.observation() }
}
