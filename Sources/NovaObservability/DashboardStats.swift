/// `GET /api/stats`: the JSON document the dashboard page polls. Counters are absolute; the page turns
/// successive documents into rates (ops/s, hit ratio over the last interval).
package enum DashboardStats {
    /// The document for `observation`.
    package static func json(_ observation: Observation) -> String {
        let report = observation.report
        func int(_ name: String) -> JSONValue { .int(report.integer(name) ?? 0) }
        func number(_ name: String) -> JSONValue { .number(report.number(name) ?? 0) }
        func text(_ name: String) -> JSONValue { .string(report[name] ?? "") }

        let maxMemory = report.integer("maxmemory") ?? 0
        let alertLevel = observation.alertRules.memory?.bytes(maxMemory: maxMemory)
        let expiring = Dictionary(uniqueKeysWithValues: report.keyspace.map { ($0.database, $0) })
        let databases = (0..<max(observation.databases, (expiring.keys.max() ?? -1) + 1)).compactMap { database -> JSONValue? in
            guard let entry = expiring[database] else { return nil }
            return .object([
                ("db", .int(database)), ("keys", .int(entry.keys)), ("expires", .int(entry.expires)),
                ("avg_ttl_ms", .int(entry.averageTTL)),
            ])
        }
        let calls = Dictionary(report.commandStats.map { ($0.command, $0.calls) }, uniquingKeysWith: { a, _ in a })
        let latency = report.latencyPercentiles
            .sorted { (calls[$0.command] ?? 0) > (calls[$1.command] ?? 0) }
            .prefix(12)
            .map { command, percentiles -> JSONValue in
                .object([
                    ("command", .string(command)), ("calls", .int(calls[command] ?? 0)),
                    ("percentiles", .object(percentiles.map { ($0.name, .number($0.microseconds)) })),
                ])
            }
        let slowlog = observation.slowlog.map { entry -> JSONValue in
            .object([
                ("id", .int(entry.id)), ("time", .int(entry.time)), ("microseconds", .int(entry.microseconds)),
                ("command", .string(entry.arguments.joined(separator: " "))), ("client", .string(entry.client)),
            ])
        }
        let alerts = observation.alerts.map { alert -> JSONValue in
            .object([("alert", .string(alert.kind.rawValue)), ("message", .string(alert.message)), ("since", .number(alert.since))])
        }
        let document: JSONValue = .object([
            ("time", .number(observation.time)),
            ("server", .object([
                ("version", text("redis_version")), ("nova_cache_version", text("nova_cache_version")),
                ("mode", text("redis_mode")), ("role", text("role")), ("port", int("tcp_port")),
                ("uptime_seconds", int("uptime_in_seconds")),
            ])),
            ("commands_processed", int("total_commands_processed")),
            ("ops_per_sec", int("instantaneous_ops_per_sec")),
            ("keyspace_hits", int("keyspace_hits")),
            ("keyspace_misses", int("keyspace_misses")),
            ("expired_keys", int("expired_keys")),
            ("evicted_keys", int("evicted_keys")),
            ("memory", .object([
                ("used", int("used_memory")), ("rss", int("used_memory_rss")), ("peak", int("used_memory_peak")),
                ("max", .int(maxMemory)), ("policy", text("maxmemory_policy")),
                ("alert_level", alertLevel.map { .int($0) } ?? .null),
            ])),
            ("clients", .object([
                ("connected", int("connected_clients")), ("blocked", int("blocked_clients")),
                ("max", int("maxclients")), ("rejected", int("rejected_connections")),
            ])),
            ("databases", .array(databases)),
            ("latency", .array(Array(latency))),
            ("slowlog", .object([("length", .int(observation.slowlogLength)), ("entries", .array(slowlog))])),
            ("persistence", .object([
                ("loading", .bool(report["loading"] == "1")),
                ("last_save_time", int("rdb_last_save_time")),
                ("changes_since_last_save", int("rdb_changes_since_last_save")),
                ("bgsave_in_progress", .bool(report["rdb_bgsave_in_progress"] == "1")),
                ("last_bgsave_status", text("rdb_last_bgsave_status")),
                ("aof_enabled", .bool(report["aof_enabled"] == "1")),
                ("aof_last_write_status", text("aof_last_write_status")),
                ("aof_rewrite_in_progress", .bool(report["aof_rewrite_in_progress"] == "1")),
                ("aof_size", int("aof_current_size")),
            ])),
            ("alerts", .array(alerts)),
        ])
        return document.text
    }
}
