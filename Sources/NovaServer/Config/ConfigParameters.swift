/// How a configuration parameter's value is parsed, validated and printed.
enum ConfigKind: Sendable {
    /// `yes` / `no`.
    case bool
    /// An integer within bounds, written plainly, with memory units, as a percent, or in octal.
    case integer(min: Int64, max: Int64, style: NumericStyle)
    /// One of a fixed set of names; `multiple` allows several names at once (shutdown-on-sigterm).
    case enumeration([String], multiple: Bool = false)
    /// Free text; `validate` returns an error message for a bad value.
    case string(validate: (@Sendable (String) -> String?)? = nil)
    /// A parameter with its own syntax.
    case special(SpecialConfig)
}

enum NumericStyle: Sendable {
    case plain, memory, memoryOrPercent, octal
}

enum SpecialConfig: Sendable {
    case dir, save, clientOutputBufferLimit, oomScoreAdjValues, notifyKeyspaceEvents, bind, replicaOf
    case latencyPercentiles
}

struct ConfigFlags: OptionSet, Sendable {
    let rawValue: Int
    /// Only settable at start-up.
    static let immutable = ConfigFlags(rawValue: 1)
    /// Refused by CONFIG SET unless `enable-protected-configs` allows it.
    static let protected = ConfigFlags(rawValue: 2)
    /// Holds a secret: never logged.
    static let sensitive = ConfigFlags(rawValue: 4)
    /// Not listed by CONFIG GET patterns; reachable by exact name.
    static let hidden = ConfigFlags(rawValue: 8)
    /// The value is a list of words (CONFIG SET splits it like a config-file line).
    static let multiArgument = ConfigFlags(rawValue: 16)
}

/// One parameter that redis.conf, `--name value` flags, CONFIG GET and CONFIG SET understand.
struct ConfigParameter: Sendable {
    let name: String
    let alias: String?
    let kind: ConfigKind
    /// The canonical form of the default, as CONFIG GET prints it.
    let defaultValue: String
    let flags: ConfigFlags

    init(_ name: String, alias: String? = nil, _ kind: ConfigKind, _ defaultValue: String, _ flags: ConfigFlags = []) {
        self.name = name
        self.alias = alias
        self.kind = kind
        self.defaultValue = defaultValue
        var flags = flags
        if case .special(let special) = kind, [.save, .clientOutputBufferLimit, .oomScoreAdjValues, .bind, .replicaOf, .latencyPercentiles].contains(special) {
            flags.insert(.multiArgument)
        }
        if case .enumeration(_, true) = kind { flags.insert(.multiArgument) }
        self.flags = flags
    }
}

/// Every parameter of Redis 7.0's configuration, with Redis's types, bounds and defaults. Parameters that
/// have no effect in NovaCache (replication, cluster, TLS tuning, defragmentation …) are validated and
/// stored so that tools and config files written for Redis keep working; docs/configuration.md lists which
/// ones take effect.
enum ConfigCatalog {
    static let intMax = Int64(Int32.max)
    static let intMin = Int64(Int32.min)
    static let longMax = Int64.max
    static let uintMax = Int64(UInt32.max)

    static func bool(_ name: String, alias: String? = nil, _ value: Bool, _ flags: ConfigFlags = []) -> ConfigParameter {
        ConfigParameter(name, alias: alias, .bool, value ? "yes" : "no", flags)
    }

    static func int(
        _ name: String, alias: String? = nil, _ min: Int64, _ max: Int64, _ value: Int64,
        _ style: NumericStyle = .plain, _ flags: ConfigFlags = []
    ) -> ConfigParameter {
        let text = style == .octal ? String(value, radix: 8) : String(value)
        return ConfigParameter(name, alias: alias, .integer(min: min, max: max, style: style), text, flags)
    }

    static func string(
        _ name: String, alias: String? = nil, _ value: String = "", _ flags: ConfigFlags = [],
        validate: (@Sendable (String) -> String?)? = nil
    ) -> ConfigParameter {
        ConfigParameter(name, alias: alias, .string(validate: validate), value, flags)
    }

    static func choice(
        _ name: String, _ names: [String], _ value: String, _ flags: ConfigFlags = [], multiple: Bool = false
    ) -> ConfigParameter {
        ConfigParameter(name, .enumeration(names, multiple: multiple), value, flags)
    }

    static let all: [ConfigParameter] = [
        // Booleans
        bool("rdbchecksum", true, .immutable),
        bool("daemonize", false, .immutable),
        bool("io-threads-do-reads", false, .immutable),
        bool("always-show-logo", false, .immutable),
        bool("protected-mode", true),
        bool("rdbcompression", true),
        bool("rdb-del-sync-files", false),
        bool("activerehashing", true),
        bool("stop-writes-on-bgsave-error", true),
        bool("set-proc-title", true, .immutable),
        bool("dynamic-hz", true),
        bool("lazyfree-lazy-eviction", false),
        bool("lazyfree-lazy-expire", false),
        bool("lazyfree-lazy-server-del", false),
        bool("lazyfree-lazy-user-del", false),
        bool("lazyfree-lazy-user-flush", false),
        bool("repl-disable-tcp-nodelay", false),
        bool("repl-diskless-sync", true),
        bool("aof-rewrite-incremental-fsync", true),
        bool("no-appendfsync-on-rewrite", false),
        bool("cluster-require-full-coverage", true),
        bool("rdb-save-incremental-fsync", true),
        bool("aof-load-truncated", true),
        bool("aof-use-rdb-preamble", true),
        bool("aof-timestamp-enabled", false),
        bool("cluster-replica-no-failover", alias: "cluster-slave-no-failover", false),
        bool("replica-lazy-flush", alias: "slave-lazy-flush", false),
        bool("replica-serve-stale-data", alias: "slave-serve-stale-data", true),
        bool("replica-read-only", alias: "slave-read-only", true),
        bool("replica-ignore-maxmemory", alias: "slave-ignore-maxmemory", true),
        bool("replica-ignore-disk-write-errors", false),
        bool("jemalloc-bg-thread", true),
        bool("activedefrag", false),
        bool("syslog-enabled", false, .immutable),
        bool("cluster-enabled", false, .immutable),
        bool("appendonly", false),
        bool("cluster-allow-reads-when-down", false),
        bool("cluster-allow-pubsubshard-when-down", true),
        bool("crash-log-enabled", true),
        bool("crash-memcheck-enabled", true),
        bool("use-exit-on-panic", false, .hidden),
        bool("disable-thp", true, .immutable),
        bool("cluster-allow-replica-migration", true),
        bool("replica-announced", true),
        bool("latency-tracking", true),
        bool("aof-disable-auto-gc", false),
        bool("tls-cluster", false),
        bool("tls-replication", false),
        bool("tls-prefer-server-ciphers", false),
        bool("tls-session-caching", true),

        // Strings
        string("aclfile", "", .immutable),
        string("unixsocket", "", .immutable),
        string("pidfile", "", .immutable),
        string("replica-announce-ip", alias: "slave-announce-ip"),
        string("masteruser", "", .sensitive),
        string("cluster-announce-ip"),
        string("cluster-config-file", "nodes.conf", .immutable),
        string("cluster-announce-hostname"),
        string("syslog-ident", "redis", .immutable),
        string("dbfilename", "dump.rdb", .protected) { value in
            value.contains("/") ? "dbfilename can't be a path, just a filename" : nil
        },
        string("appendfilename", "appendonly.aof", .immutable) { value in
            value.contains("/") ? "appendfilename can't be a path, just a filename" : nil
        },
        string("appenddirname", "appendonlydir", .immutable) { value in
            value.contains("/") ? "appenddirname can't be a path, just a dirname" : nil
        },
        string("server_cpulist", "", .immutable),
        string("bio_cpulist", "", .immutable),
        string("aof_rewrite_cpulist", "", .immutable),
        string("bgsave_cpulist", "", .immutable),
        string("ignore-warnings"),
        string("proc-title-template", "{title} {listen-addr} {server-mode}"),
        string("bind-source-addr"),
        string("logfile", "", .immutable),
        string("masterauth", "", .sensitive),
        string("requirepass", "", .sensitive),
        string("tls-cert-file"),
        string("tls-key-file"),
        string("tls-key-file-pass", "", .sensitive),
        string("tls-client-cert-file"),
        string("tls-client-key-file"),
        string("tls-client-key-file-pass", "", .sensitive),
        string("tls-dh-params-file"),
        string("tls-ca-cert-file"),
        string("tls-ca-cert-dir"),
        string("tls-protocols"),
        string("tls-ciphers"),
        string("tls-ciphersuites"),

        // Enumerations
        choice("supervised", ["upstart", "systemd", "auto", "no"], "no", .immutable),
        choice("syslog-facility", ["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"], "local0", .immutable),
        choice("repl-diskless-load", ["disabled", "on-empty-db", "swapdb"], "disabled"),
        choice("loglevel", ["debug", "verbose", "notice", "warning"], "notice"),
        // Valkey 8.1's `log-format` (legacy, logfmt), plus json; NovaCache reads it at start-up.
        choice("log-format", ["legacy", "logfmt", "json"], "legacy", .immutable),
        choice("maxmemory-policy", ["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"], "noeviction"),
        choice("appendfsync", ["everysec", "always", "no"], "everysec"),
        choice("oom-score-adj", ["no", "yes", "relative", "absolute"], "no"),
        choice("acl-pubsub-default", ["allchannels", "resetchannels"], "resetchannels"),
        choice("sanitize-dump-payload", ["no", "yes", "clients"], "no"),
        choice("enable-protected-configs", ["no", "yes", "local"], "no", .immutable),
        choice("enable-debug-command", ["no", "yes", "local"], "no", .immutable),
        choice("enable-module-command", ["no", "yes", "local"], "no", .immutable),
        choice("cluster-preferred-endpoint-type", ["ip", "hostname", "unknown-endpoint"], "ip"),
        choice("propagation-error-behavior", ["ignore", "panic", "panic-on-replicas"], "ignore"),
        choice("shutdown-on-sigint", ["default", "save", "nosave", "now", "force"], "default", multiple: true),
        choice("shutdown-on-sigterm", ["default", "save", "nosave", "now", "force"], "default", multiple: true),
        choice("tls-auth-clients", ["no", "yes", "optional"], "yes"),

        // Integers
        int("databases", 1, intMax, 16, .plain, .immutable),
        int("port", 0, 65535, 6379),
        int("io-threads", 1, 128, 1, .plain, .immutable),
        int("auto-aof-rewrite-percentage", 0, intMax, 100),
        int("cluster-replica-validity-factor", alias: "cluster-slave-validity-factor", 0, intMax, 10),
        int("list-max-listpack-size", alias: "list-max-ziplist-size", intMin, intMax, -2),
        int("tcp-keepalive", 0, intMax, 300),
        int("cluster-migration-barrier", 0, intMax, 1),
        int("active-defrag-cycle-min", 1, 99, 1),
        int("active-defrag-cycle-max", 1, 99, 25),
        int("active-defrag-threshold-lower", 0, 1000, 10),
        int("active-defrag-threshold-upper", 0, 1000, 100),
        int("lfu-log-factor", 0, intMax, 10),
        int("lfu-decay-time", 0, intMax, 1),
        int("replica-priority", alias: "slave-priority", 0, intMax, 100),
        int("repl-diskless-sync-delay", 0, intMax, 5),
        int("maxmemory-samples", 1, intMax, 5),
        int("maxmemory-eviction-tenacity", 0, 100, 10),
        int("timeout", 0, intMax, 0),
        int("replica-announce-port", alias: "slave-announce-port", 0, 65535, 0),
        int("tcp-backlog", 0, intMax, 511, .plain, .immutable),
        int("cluster-port", 0, 65535, 0, .plain, .immutable),
        int("cluster-announce-bus-port", 0, 65535, 0),
        int("cluster-announce-port", 0, 65535, 0),
        int("cluster-announce-tls-port", 0, 65535, 0),
        int("repl-timeout", 1, intMax, 60),
        int("repl-ping-replica-period", alias: "repl-ping-slave-period", 1, intMax, 10),
        int("list-compress-depth", 0, intMax, 0),
        int("rdb-key-save-delay", intMin, intMax, 0, .plain, .hidden),
        int("key-load-delay", intMin, intMax, 0, .plain, .hidden),
        int("active-expire-effort", 1, 10, 1),
        int("hz", 0, intMax, 10),
        int("min-replicas-to-write", alias: "min-slaves-to-write", 0, intMax, 0),
        int("min-replicas-max-lag", alias: "min-slaves-max-lag", 0, intMax, 10),
        int("watchdog-period", 0, intMax, 0, .plain, .hidden),
        int("shutdown-timeout", 0, intMax, 10),
        int("repl-diskless-sync-max-replicas", 0, intMax, 0),
        int("socket-mark-id", 0, uintMax, 0),
        int("tls-port", 0, 65535, 0),
        // NovaCache's observability: the HTTP listener (/metrics, /api/stats, the dashboard) and alerts.
        int("http-port", 0, 65535, 0, .plain, .immutable),
        int("alert-memory", -100, longMax, 0, .memoryOrPercent),
        int("alert-hit-ratio", 0, 100, 0),
        int("alert-hit-ratio-window", 10, 86400, 300),
        bool("alert-rejected-connections", true),
        int("tls-session-cache-size", 0, intMax, 20 * 1024),
        int("tls-session-cache-timeout", 0, intMax, 300),
        int("maxclients", 1, uintMax, 10000),
        int("unixsocketperm", 0, 0o777, 0, .octal, .immutable),
        int("active-defrag-max-scan-fields", 1, longMax, 1000),
        int("slowlog-max-len", 0, longMax, 128),
        int("acllog-max-len", 0, longMax, 128),
        int("busy-reply-threshold", alias: "lua-time-limit", 0, longMax, 5000),
        int("cluster-node-timeout", 0, longMax, 15000),
        int("slowlog-log-slower-than", -1, longMax, 10000),
        int("latency-monitor-threshold", 0, longMax, 0),
        int("proto-max-bulk-len", 1024 * 1024, longMax, 512 * 1024 * 1024, .memory),
        int("stream-node-max-entries", 0, longMax, 100),
        int("repl-backlog-size", 1, longMax, 1024 * 1024, .memory),
        int("maxmemory", 0, longMax, 0, .memory),
        int("cluster-link-sendbuf-limit", 0, longMax, 0, .memory),
        int("hash-max-listpack-entries", alias: "hash-max-ziplist-entries", 0, longMax, 512),
        int("set-max-intset-entries", 0, longMax, 512),
        int("zset-max-listpack-entries", alias: "zset-max-ziplist-entries", 0, longMax, 128),
        int("active-defrag-ignore-bytes", 1, longMax, 100 << 20, .memory),
        int("hash-max-listpack-value", alias: "hash-max-ziplist-value", 0, longMax, 64, .memory),
        int("stream-node-max-bytes", 0, longMax, 4096, .memory),
        int("zset-max-listpack-value", alias: "zset-max-ziplist-value", 0, longMax, 64, .memory),
        int("hll-sparse-max-bytes", 0, longMax, 3000, .memory),
        int("tracking-table-max-keys", 0, longMax, 1_000_000),
        int("client-query-buffer-limit", 1024 * 1024, longMax, 1024 * 1024 * 1024, .memory),
        int("maxmemory-clients", -100, longMax, 0, .memoryOrPercent),
        int("repl-backlog-ttl", 0, longMax, 3600),
        int("auto-aof-rewrite-min-size", 0, longMax, 64 * 1024 * 1024, .memory),
        int("loading-process-events-interval-bytes", 1024, intMax, 2 * 1024 * 1024, .plain, .hidden),

        // Parameters with their own syntax
        ConfigParameter("dir", .special(.dir), "", .protected),
        ConfigParameter("save", .special(.save), "3600 1 300 100 60 10000"),
        ConfigParameter(
            "client-output-buffer-limit", .special(.clientOutputBufferLimit),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
        ConfigParameter("oom-score-adj-values", .special(.oomScoreAdjValues), "0 200 800"),
        ConfigParameter("notify-keyspace-events", .special(.notifyKeyspaceEvents), ""),
        ConfigParameter("bind", .special(.bind), "127.0.0.1"),
        ConfigParameter("replicaof", alias: "slaveof", .special(.replicaOf), "", .immutable),
        ConfigParameter("latency-tracking-info-percentiles", .special(.latencyPercentiles), "50 99 99.9"),
    ]
}
