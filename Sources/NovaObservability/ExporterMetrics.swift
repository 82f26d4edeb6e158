import Prometheus
import Synchronization

/// `GET /metrics`: an `Observation` as Prometheus text, produced with swift-prometheus under the metric
/// names and labels of the widely used redis_exporter (`redis_commands_processed_total`,
/// `redis_memory_used_bytes`, `redis_db_keys{db="db0"}`, `redis_commands_duration_seconds_total{cmd="get"}`
/// …), so that dashboards and alert rules written for Redis work unchanged; NovaCache's own series are
/// named `nova_*`.
///
/// INFO's counters are absolute; the registry's counters only go up. Each scrape adds the difference
/// since the previous one, and resets a counter when the server's went down (CONFIG RESETSTAT, restart).
/// Series that vanished from INFO (a command's stats after a reset) are unregistered.
package final class ExporterMetrics: Sendable {
    private let state = Mutex(State())

    private struct SeriesKey: Hashable {
        var name: String
        var labels: [String]
    }

    private struct State {
        var registry = PrometheusCollectorRegistry()
        var counters: [SeriesKey: (counter: Counter, value: Double)] = [:]
        var gauges: [SeriesKey: Gauge] = [:]
        var seen: Set<SeriesKey> = []
    }

    package init() {}

    /// The Prometheus text (format 0.0.4) for `observation`.
    package func render(_ observation: Observation) -> [UInt8] {
        state.withLock { state in
            state.seen.removeAll(keepingCapacity: true)
            Self.record(observation, into: &state)
            for key in state.counters.keys where !state.seen.contains(key) {
                state.registry.unregisterCounter(state.counters.removeValue(forKey: key)!.counter)
            }
            for key in state.gauges.keys where !state.seen.contains(key) {
                state.registry.unregisterGauge(state.gauges.removeValue(forKey: key)!)
            }
            var buffer = state.registry.emitToBuffer()
            Self.appendLatencySummary(observation.report, to: &buffer)
            return buffer
        }
    }

    /// A label value in the text format: backslash, double quote and line feed escaped.
    static func labelValue(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// `redis_latency_percentiles_usec`, a summary per command as redis_exporter writes it from INFO
    /// latencystats (quantiles named by percent, `_sum` and `_count` from commandstats). swift-prometheus
    /// has no summary type, so these lines are written here in the same text format.
    static func appendLatencySummary(_ report: InfoReport, to buffer: inout [UInt8]) {
        let latencies = report.latencyPercentiles
        guard !latencies.isEmpty else { return }
        let stats = Dictionary(report.commandStats.map { ($0.command, $0) }, uniquingKeysWith: { a, _ in a })
        var text = "# HELP redis_latency_percentiles_usec A summary of latency percentile distribution per command\n"
        text += "# TYPE redis_latency_percentiles_usec summary\n"
        for (command, percentiles) in latencies {
            let label = "cmd=\"" + labelValue(command) + "\""
            for (name, microseconds) in percentiles where name.hasPrefix("p") {
                text += "redis_latency_percentiles_usec{\(label),quantile=\"\(name.dropFirst())\"} \(microseconds)\n"
            }
            let stat = stats[command]
            text += "redis_latency_percentiles_usec_sum{\(label)} \(Int(stat?.microseconds ?? 0))\n"
            text += "redis_latency_percentiles_usec_count{\(label)} \(stat?.calls ?? 0)\n"
        }
        buffer.append(contentsOf: text.utf8)
    }

    // MARK: The mapping

    /// INFO fields exported as gauges: (INFO name, metric name without `redis_`).
    static let gaugeFields: [(String, String)] = [
        ("uptime_in_seconds", "uptime_in_seconds"), ("process_id", "process_id"),
        ("connected_clients", "connected_clients"), ("blocked_clients", "blocked_clients"),
        ("tracking_clients", "tracking_clients"), ("clients_in_timeout_table", "clients_in_timeout_table"),
        ("cluster_connections", "cluster_connections"), ("cluster_enabled", "cluster_enabled"),
        ("io_threads_active", "io_threads_active"),
        ("client_recent_max_output_buffer", "client_recent_max_output_buffer_bytes"),
        ("client_recent_max_input_buffer", "client_recent_max_input_buffer_bytes"),
        ("allocator_allocated", "allocator_allocated_bytes"),
        ("used_memory", "memory_used_bytes"), ("used_memory_rss", "memory_used_rss_bytes"),
        ("used_memory_peak", "memory_used_peak_bytes"), ("used_memory_lua", "memory_used_lua_bytes"),
        ("used_memory_overhead", "memory_used_overhead_bytes"), ("used_memory_dataset", "memory_used_dataset_bytes"),
        ("used_memory_scripts", "memory_used_scripts_bytes"), ("maxmemory", "memory_max_bytes"),
        ("mem_fragmentation_ratio", "mem_fragmentation_ratio"), ("mem_fragmentation_bytes", "mem_fragmentation_bytes"),
        ("mem_clients_slaves", "mem_clients_slaves"), ("mem_clients_normal", "mem_clients_normal"),
        ("mem_not_counted_for_evict", "mem_not_counted_for_eviction_bytes"),
        ("expired_stale_perc", "expired_stale_percentage"),
        ("expired_time_cap_reached_count", "expired_time_cap_reached_total"),
        ("lazyfree_pending_objects", "lazyfree_pending_objects"), ("active_defrag_running", "active_defrag_running"),
        ("active_defrag_hits", "defrag_hits"), ("active_defrag_misses", "defrag_misses"),
        ("active_defrag_key_hits", "defrag_key_hits"), ("active_defrag_key_misses", "defrag_key_misses"),
        ("migrate_cached_sockets", "migrate_cached_sockets_total"),
        ("tracking_total_items", "tracking_total_items"), ("tracking_total_keys", "tracking_total_keys"),
        ("tracking_total_prefixes", "tracking_total_prefixes"),
        ("number_of_cached_scripts", "number_of_cached_scripts"),
        ("loading", "loading_dump_file"), ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
        ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"), ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
        ("rdb_last_bgsave_status", "rdb_last_bgsave_status"), ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
        ("rdb_current_bgsave_time_sec", "rdb_current_bgsave_duration_sec"), ("rdb_last_cow_size", "rdb_last_cow_size_bytes"),
        ("aof_enabled", "aof_enabled"), ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
        ("aof_rewrite_scheduled", "aof_rewrite_scheduled"), ("aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec"),
        ("aof_current_rewrite_time_sec", "aof_current_rewrite_duration_sec"), ("aof_last_cow_size", "aof_last_cow_size_bytes"),
        ("aof_current_size", "aof_current_size_bytes"), ("aof_base_size", "aof_base_size_bytes"),
        ("aof_pending_rewrite", "aof_pending_rewrite"), ("aof_buffer_length", "aof_buffer_length"),
        ("aof_pending_bio_fsync", "aof_pending_bio_fsync"), ("aof_delayed_fsync", "aof_delayed_fsync"),
        ("aof_last_bgrewrite_status", "aof_last_bgrewrite_status"), ("aof_last_write_status", "aof_last_write_status"),
        ("module_fork_in_progress", "module_fork_in_progress"), ("module_fork_last_cow_size", "module_fork_last_cow_size"),
        ("instantaneous_ops_per_sec", "instantaneous_ops_per_sec"),
        ("instantaneous_input_kbps", "instantaneous_input_kbps"), ("instantaneous_output_kbps", "instantaneous_output_kbps"),
        ("pubsub_channels", "pubsub_channels"), ("pubsub_patterns", "pubsub_patterns"),
        ("connected_slaves", "connected_slaves"), ("repl_backlog_size", "replication_backlog_bytes"),
        ("repl_backlog_active", "repl_backlog_is_active"), ("repl_backlog_first_byte_offset", "repl_backlog_first_byte_offset"),
        ("repl_backlog_histlen", "repl_backlog_history_bytes"), ("master_repl_offset", "master_repl_offset"),
        ("second_repl_offset", "second_repl_offset"), ("slave_expires_tracked_keys", "slave_expires_tracked_keys"),
        ("sync_full", "replica_resyncs_full"), ("sync_partial_ok", "replica_partial_resync_accepted"),
        ("sync_partial_err", "replica_partial_resync_denied"),
    ]

    /// INFO fields exported as counters.
    static let counterFields: [(String, String)] = [
        ("total_connections_received", "connections_received_total"),
        ("total_commands_processed", "commands_processed_total"),
        ("rejected_connections", "rejected_connections_total"),
        ("total_net_input_bytes", "net_input_bytes_total"), ("total_net_output_bytes", "net_output_bytes_total"),
        ("expired_keys", "expired_keys_total"), ("evicted_keys", "evicted_keys_total"),
        ("keyspace_hits", "keyspace_hits_total"), ("keyspace_misses", "keyspace_misses_total"),
        ("used_cpu_sys", "cpu_sys_seconds_total"), ("used_cpu_user", "cpu_user_seconds_total"),
        ("used_cpu_sys_children", "cpu_sys_children_seconds_total"),
        ("used_cpu_user_children", "cpu_user_children_seconds_total"),
        ("used_cpu_sys_main_thread", "cpu_sys_main_thread_seconds_total"),
        ("used_cpu_user_main_thread", "cpu_user_main_thread_seconds_total"),
        ("total_error_replies", "total_error_replies"), ("unexpected_error_replies", "unexpected_error_replies"),
        ("dump_payload_sanitizations", "dump_payload_sanitizations"),
        ("total_reads_processed", "total_reads_processed"), ("total_writes_processed", "total_writes_processed"),
        ("io_threaded_reads_processed", "io_threaded_reads_processed"),
        ("io_threaded_writes_processed", "io_threaded_writes_processed"),
    ]

    /// A field's value as redis_exporter reads it: numbers, `75.00%`, and `ok`/`err` as 1/0.
    static func value(_ text: String) -> Double? {
        switch text {
        case "ok", "up": return 1
        case "err", "fail", "down": return 0
        default: return Double(text.hasSuffix("%") ? String(text.dropLast()) : text)
        }
    }

    private static func record(_ observation: Observation, into state: inout State) {
        let report = observation.report
        func gauge(_ name: String, _ value: Double, _ help: String, _ labels: [(String, String)] = []) {
            let key = SeriesKey(name: name, labels: labels.flatMap { [$0.0, $0.1] })
            state.seen.insert(key)
            let gauge = state.gauges[key] ?? {
                let made = state.registry.makeGauge(
                    descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
                state.gauges[key] = made
                return made
            }()
            gauge.set(to: value)
        }
        func counter(_ name: String, _ value: Double, _ help: String, _ labels: [(String, String)] = []) {
            let key = SeriesKey(name: name, labels: labels.flatMap { [$0.0, $0.1] })
            state.seen.insert(key)
            if var entry = state.counters[key] {
                if value < entry.value {
                    entry.counter.reset()
                    entry.value = 0
                }
                if value > entry.value { entry.counter.increment(by: value - entry.value) }
                entry.value = value
                state.counters[key] = entry
            } else {
                let made = state.registry.makeCounter(
                    descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
                if value > 0 { made.increment(by: value) }
                state.counters[key] = (made, value)
            }
        }

        gauge("redis_up", 1, "Information about the Redis instance")
        for (field, name) in gaugeFields {
            if let text = report[field], let value = value(text) { gauge("redis_" + name, value, name + " metric") }
        }
        for (field, name) in counterFields {
            if let text = report[field], let value = value(text) { counter("redis_" + name, value, name + " metric") }
        }
        if let fork = report.number("latest_fork_usec") { gauge("redis_latest_fork_seconds", fork / 1e6, "latest_fork_seconds metric") }
        if let uptime = report.number("uptime_in_seconds") {
            gauge("redis_start_time_seconds", (observation.time - uptime).rounded(), "Start time of the Redis instance since unix epoch in seconds.")
        }
        gauge("redis_instance_info", 1, "Information about the Redis instance", [
            ("role", report["role"] ?? ""), ("redis_version", report["redis_version"] ?? ""),
            ("redis_build_id", report["redis_build_id"] ?? ""), ("redis_mode", report["redis_mode"] ?? ""),
            ("os", report["os"] ?? ""), ("maxmemory_policy", report["maxmemory_policy"] ?? ""),
            ("tcp_port", report["tcp_port"] ?? ""), ("run_id", report["run_id"] ?? ""),
            ("process_id", report["process_id"] ?? ""),
        ])
        if let maxMemory = report.number("maxmemory") { gauge("redis_config_maxmemory", maxMemory, "config_maxmemory metric") }
        if let maxClients = report.number("maxclients") { gauge("redis_config_maxclients", maxClients, "config_maxclients metric") }

        for stat in report.commandStats {
            let labels = [("cmd", stat.command)]
            counter("redis_commands_total", Double(stat.calls), "Total number of calls per command", labels)
            counter("redis_commands_duration_seconds_total", stat.microseconds / 1e6, "Total amount of time in seconds spent per command", labels)
            counter("redis_commands_rejected_calls_total", Double(stat.rejectedCalls), "Total number of errors prior command execution per command", labels)
            counter("redis_commands_failed_calls_total", Double(stat.failedCalls), "Total number of errors within command execution per command", labels)
        }
        for (code, count) in report.errorStats {
            counter("redis_errors_total", Double(count), "Total number of errors per error type", [("err", code)])
        }
        var keyspace = Dictionary(uniqueKeysWithValues: report.keyspace.map { ($0.database, $0) })
        for database in 0..<max(observation.databases, (keyspace.keys.max() ?? -1) + 1) {
            let entry = keyspace.removeValue(forKey: database)
            let labels = [("db", "db\(database)")]
            gauge("redis_db_keys", Double(entry?.keys ?? 0), "Total number of keys by DB", labels)
            gauge("redis_db_keys_expiring", Double(entry?.expires ?? 0), "Total number of expiring keys by DB", labels)
            if let entry {
                gauge("redis_db_avg_ttl_seconds", Double(entry.averageTTL) / 1000, "Avg TTL in seconds", labels)
            }
        }
        gauge("redis_slowlog_length", Double(observation.slowlogLength), "Total slowlog")
        gauge("redis_slowlog_last_id", Double(observation.slowlog.first?.id ?? 0), "Last id of slowlog")
        gauge("redis_last_slow_execution_duration_seconds", Double(observation.slowlog.first?.microseconds ?? 0) / 1e6,
              "The amount of time needed for last slow execution, in seconds")

        // NovaCache's own series.
        let firing = Set(observation.alerts.map(\.kind))
        for kind in AlertKind.allCases where observation.alertRules.isEnabled(kind) || firing.contains(kind) {
            gauge("nova_alert_firing", firing.contains(kind) ? 1 : 0, "1 while the alert fires, 0 when it is enabled and quiet", [("alert", kind.rawValue)])
        }
        if let copied = report.number("snapshot_segments_copied") {
            gauge("nova_snapshot_segments_copied", copied, "Keyspace segments copied on write since the running background save began (0 when none runs)")
        }
        if let lag = report.number("aof_fsync_lag_ms") {
            gauge("nova_aof_fsync_lag_seconds", lag / 1000, "Time since the append-only file was last fsynced while writes wait for it")
        }
    }
}
