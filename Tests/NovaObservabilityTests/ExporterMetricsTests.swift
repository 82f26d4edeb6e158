import Testing
@testable import NovaObservability

@Suite("Prometheus metrics")
struct ExporterMetricsTests {
    func observation(_ info: String, databases: Int = 2, alerts: [ActiveAlert] = [], rules: AlertRules = AlertRules()) -> Observation {
        Observation(
            report: InfoReport(parsing: info), databases: databases,
            slowlog: [SlowlogEntry(id: 7, time: 1_700_000_000, microseconds: 25_000, arguments: ["DEBUG", "SLEEP", "0.025"], client: "127.0.0.1:5000")],
            slowlogLength: 3, alerts: alerts, alertRules: rules, time: 1_700_000_100)
    }

    /// The value of one series in the text (`name{labels}` exactly as written), or nil.
    func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test("redis_exporter's names, types and labels")
    func names() {
        let metrics = ExporterMetrics()
        let text = String(decoding: metrics.render(observation("""
            # Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:100\r\nprocess_id:42\r\ntcp_port:6379\r\n\
            # Memory\r\nused_memory:1000\r\nmaxmemory:4000\r\nmaxmemory_policy:allkeys-lru\r\n\
            # Persistence\r\nrdb_last_bgsave_status:err\r\naof_last_write_status:ok\r\n\
            # Stats\r\ntotal_commands_processed:10\r\nkeyspace_hits:4\r\nlatest_fork_usec:1500\r\n\
            # Commandstats\r\ncmdstat_get:calls=5,usec=20,usec_per_call=4.00,rejected_calls=0,failed_calls=1\r\n\
            # Errorstats\r\nerrorstat_ERR:count=2\r\n\
            # Latencystats\r\nlatency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=5.023\r\n\
            # Keyspace\r\ndb1:keys=9,expires=2,avg_ttl=3000\r\n
            """)), as: UTF8.self)
        #expect(text.contains("# TYPE redis_commands_processed_total counter"))
        #expect(value(text, "redis_commands_processed_total") == 10)
        #expect(value(text, "redis_keyspace_hits_total") == 4)
        #expect(text.contains("# TYPE redis_memory_used_bytes gauge"))
        #expect(value(text, "redis_memory_used_bytes") == 1000)
        #expect(value(text, "redis_memory_max_bytes") == 4000)
        #expect(value(text, "redis_rdb_last_bgsave_status") == 0)
        #expect(value(text, "redis_aof_last_write_status") == 1)
        #expect(value(text, "redis_latest_fork_seconds") == 0.0015)
        #expect(value(text, "redis_start_time_seconds") == 1_700_000_000)
        #expect(value(text, #"redis_commands_total{cmd="get"}"#) == 5)
        #expect(value(text, #"redis_commands_duration_seconds_total{cmd="get"}"#) == 0.00002)
        #expect(value(text, #"redis_commands_failed_calls_total{cmd="get"}"#) == 1)
        #expect(value(text, #"redis_errors_total{err="ERR"}"#) == 2)
        // Every database up to `databases` is reported, empty ones with zero keys (as redis_exporter).
        #expect(value(text, #"redis_db_keys{db="db0"}"#) == 0)
        #expect(value(text, #"redis_db_keys{db="db1"}"#) == 9)
        #expect(value(text, #"redis_db_keys_expiring{db="db1"}"#) == 2)
        #expect(value(text, #"redis_db_avg_ttl_seconds{db="db1"}"#) == 3)
        #expect(value(text, "redis_slowlog_length") == 3)
        #expect(value(text, "redis_slowlog_last_id") == 7)
        #expect(value(text, "redis_last_slow_execution_duration_seconds") == 0.025)
        #expect(text.contains("# TYPE redis_latency_percentiles_usec summary"))
        #expect(value(text, #"redis_latency_percentiles_usec{cmd="get",quantile="99.9"}"#) == 5.023)
        #expect(value(text, #"redis_latency_percentiles_usec_count{cmd="get"}"#) == 5)
        #expect(text.contains(#"redis_instance_info{"#) && text.contains(#"maxmemory_policy="allkeys-lru""#))
        #expect(value(text, #"nova_alert_firing{alert="bgsave"}"#) == 0)
        #expect(value(text, #"nova_alert_firing{alert="memory"}"#) == nil)
    }

    @Test("counters follow INFO's absolute values, restart after a reset, and vanished series go away")
    func counters() {
        let metrics = ExporterMetrics()
        func render(_ commands: Int, getCalls: Int?) -> String {
            var info = "# Stats\r\ntotal_commands_processed:\(commands)\r\n"
            if let getCalls { info += "# Commandstats\r\ncmdstat_get:calls=\(getCalls),usec=1\r\n" }
            return String(decoding: metrics.render(observation(info)), as: UTF8.self)
        }
        #expect(value(render(100, getCalls: 3), "redis_commands_processed_total") == 100)
        #expect(value(render(250, getCalls: 8), "redis_commands_processed_total") == 250)
        let afterReset = render(4, getCalls: nil)
        #expect(value(afterReset, "redis_commands_processed_total") == 4)
        #expect(!afterReset.contains(#"cmd="get""#))
        #expect(value(render(9, getCalls: 1), #"redis_commands_total{cmd="get"}"#) == 1)
    }

    @Test("alerts are series of their own; label values are escaped")
    func alertsAndEscaping() {
        let metrics = ExporterMetrics()
        let alert = ActiveAlert(kind: .memory, message: "m", since: 1)
        let text = String(decoding: metrics.render(observation(
            "# Server\r\nos:Linux \"quoted\\\" name\r\n# Latencystats\r\nlatency_percentiles_usec_we\"ird:p50=1\r\n",
            alerts: [alert], rules: AlertRules(memory: MemoryThreshold(parsing: "90%")))), as: UTF8.self)
        #expect(value(text, #"nova_alert_firing{alert="memory"}"#) == 1)
        #expect(text.contains(#"os="Linux \"quoted\\\" name""#))
        #expect(text.contains(#"redis_latency_percentiles_usec{cmd="we\"ird",quantile="50"} 1.0"#))
    }

    @Test("the dashboard document carries what the page draws")
    func dashboardDocument() {
        let json = DashboardStats.json(observation(
            "# Memory\r\nused_memory:950\r\nmaxmemory:1000\r\n# Keyspace\r\ndb1:keys=9,expires=2,avg_ttl=3000\r\n",
            alerts: [ActiveAlert(kind: .memory, message: "memory <high>", since: 5)],
            rules: AlertRules(memory: MemoryThreshold(parsing: "90%"))))
        #expect(json.contains(#""memory":{"used":950,"#))
        #expect(json.contains(#""alert_level":900"#))
        #expect(json.contains(#""databases":[{"db":1,"keys":9,"expires":2,"avg_ttl_ms":3000}]"#))
        #expect(json.contains(#""alerts":[{"alert":"memory","message":"memory \u003chigh>","since":5}]"#))
        #expect(json.contains(#""command":"DEBUG SLEEP 0.025""#))
    }
}
