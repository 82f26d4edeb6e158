import NovaRESP
package import NovaObservability
package import NovaEngine

/// Typed values of the parameters the server acts on, derived from the configuration after each change.
package struct ServerSettings: Sendable {
    /// `client-output-buffer-limit` for normal clients and for Pub/Sub subscribers.
    package var normalOutputLimit = OutputBufferLimit()
    package var pubsubOutputLimit = OutputBufferLimit(hard: 32 << 20, soft: 8 << 20, softSeconds: 60)
    /// The replica class, which Redis also applies to MONITOR clients.
    package var replicaOutputLimit = OutputBufferLimit(hard: 256 << 20, soft: 64 << 20, softSeconds: 60)
    package var port = 6379
    package var bind: [String] = ["127.0.0.1"]
    package var databases = 16
    package var requirePass: String? = nil
    package var dir = "."
    package var dbFilename = "dump.rdb"
    package var logLevel = "notice"
    package var maxMemory = 0
    package var evictionPolicy = EvictionPolicy.noeviction
    package var maxMemorySamples = 5
    package var lfuLogFactor = 10
    package var lfuDecayTime = 1
    package var hz = 10
    package var activeExpireEffort = 1
    package var timeout = 0
    /// `slowlog-log-slower-than` (microseconds; negative: off) and `slowlog-max-len`.
    package var slowlogSlowerThan = 10_000
    package var slowlogMaxLength = 128
    package var tcpKeepalive = 300
    package var tcpBacklog = 511
    package var maxClients = 10000
    package var protoMaxBulkLength = 512 * 1024 * 1024
    /// `hll-sparse-max-bytes`: the largest sparse HyperLogLog before it becomes dense.
    package var hllSparseMaxBytes = 3000
    package var clientQueryBufferLimit = 1024 * 1024 * 1024
    package var protectedMode = true
    package var saveRules: [(seconds: Int, changes: Int)] = [(3600, 1), (300, 100), (60, 10000)]
    package var notifyKeyspaceEvents = ""
    package var shutdownOnSigterm = "default"
    package var shutdownOnSigint = "default"
    package var appendOnly = false
    package var appendFsync = "everysec"
    package var ioThreads = 1
    package var unixSocket: String? = nil
    package var unixSocketPermissions = 0
    /// TLS: the port (0: no TLS listener) and the files and options of `tls-*`.
    package var tls = TLSSettings()
    /// `http-port`: the observability listener (0: none).
    package var httpPort = 0
    /// `alert-memory`, `alert-hit-ratio`, `alert-hit-ratio-window`, `alert-rejected-connections`.
    package var alertRules = AlertRules()
}

/// The `tls-*` parameters the TLS listener uses.
package struct TLSSettings: Sendable, Equatable {
    package var port = 0
    package var certFile = ""
    package var keyFile = ""
    package var keyFilePassword = ""
    package var caCertFile = ""
    package var caCertDir = ""
    /// `yes` (clients must present a certificate the CA signed), `optional` or `no`.
    package var authClients = "yes"
    /// `tls-protocols`, e.g. "TLSv1.2 TLSv1.3"; empty: TLS 1.2 and 1.3.
    package var protocols = ""
    /// `tls-ciphers` (TLS 1.2 cipher list, OpenSSL syntax).
    package var ciphers = ""
}

/// One class of `client-output-buffer-limit`: a client whose unsent output exceeds `hard` bytes, or
/// stays above `soft` bytes for `softSeconds`, is disconnected. Zero disables a limit.
package struct OutputBufferLimit: Sendable, Equatable {
    package var hard = 0
    package var soft = 0
    package var softSeconds = 0

    package init(hard: Int = 0, soft: Int = 0, softSeconds: Int = 0) {
        self.hard = hard
        self.soft = soft
        self.softSeconds = softSeconds
    }

    package var isUnlimited: Bool { hard == 0 && soft == 0 }

    /// Whether `pending` bytes break the limit at `now` (ms); `softSince` remembers when the soft limit
    /// was first exceeded and is reset once the output drops below it.
    package func isExceeded(pending: Int, now: Int64, softSince: inout Int64?) -> Bool {
        if hard > 0 && pending >= hard { return true }
        guard soft > 0, pending >= soft else {
            softSince = nil
            return false
        }
        let since = softSince ?? now
        softSince = since
        return now - since >= Int64(softSeconds) * 1000
    }
}

/// The classes of `notify-keyspace-events`.
package struct KeyspaceEventFlags: OptionSet, Sendable, CustomStringConvertible {
    package let rawValue: Int
    package init(rawValue: Int) { self.rawValue = rawValue }

    package static let keyspace = KeyspaceEventFlags(rawValue: 1 << 0)
    package static let keyevent = KeyspaceEventFlags(rawValue: 1 << 1)
    package static let generic = KeyspaceEventFlags(rawValue: 1 << 2)
    package static let string = KeyspaceEventFlags(rawValue: 1 << 3)
    package static let list = KeyspaceEventFlags(rawValue: 1 << 4)
    package static let set = KeyspaceEventFlags(rawValue: 1 << 5)
    package static let hash = KeyspaceEventFlags(rawValue: 1 << 6)
    package static let zset = KeyspaceEventFlags(rawValue: 1 << 7)
    package static let expired = KeyspaceEventFlags(rawValue: 1 << 8)
    package static let evicted = KeyspaceEventFlags(rawValue: 1 << 9)
    package static let stream = KeyspaceEventFlags(rawValue: 1 << 10)
    package static let keyMiss = KeyspaceEventFlags(rawValue: 1 << 11)
    package static let module = KeyspaceEventFlags(rawValue: 1 << 12)
    package static let new = KeyspaceEventFlags(rawValue: 1 << 13)
    /// `A`: every class except key-miss and new-key.
    package static let all: KeyspaceEventFlags = [.generic, .string, .list, .set, .hash, .zset, .expired, .evicted, .stream, .module]

    /// Parses Redis's flag letters; nil for an unknown letter.
    package init?(parsing text: String) {
        var flags: KeyspaceEventFlags = []
        for character in text {
            switch character {
            case "A": flags.formUnion(.all)
            case "g": flags.insert(.generic)
            case "$": flags.insert(.string)
            case "l": flags.insert(.list)
            case "s": flags.insert(.set)
            case "h": flags.insert(.hash)
            case "z": flags.insert(.zset)
            case "x": flags.insert(.expired)
            case "e": flags.insert(.evicted)
            case "K": flags.insert(.keyspace)
            case "E": flags.insert(.keyevent)
            case "t": flags.insert(.stream)
            case "m": flags.insert(.keyMiss)
            case "d": flags.insert(.module)
            case "n": flags.insert(.new)
            default: return nil
            }
        }
        self = flags
    }

    /// The canonical letters kept in the configuration: `description`, plus `n` when `A` hides it.
    package var storedText: String {
        isSuperset(of: .all) && contains(.new) ? description + "n" : description
    }

    /// The canonical letters, in Redis's order (as CONFIG GET prints them).
    package var description: String {
        var text = ""
        if isSuperset(of: .all) {
            text = "A"
        } else {
            let letters: [(KeyspaceEventFlags, String)] = [
                (.generic, "g"), (.string, "$"), (.list, "l"), (.set, "s"), (.hash, "h"), (.zset, "z"),
                (.expired, "x"), (.evicted, "e"), (.stream, "t"), (.module, "d"), (.new, "n"),
            ]
            for (flag, letter) in letters where contains(flag) { text += letter }
        }
        if contains(.keyspace) { text += "K" }
        if contains(.keyevent) { text += "E" }
        if contains(.keyMiss) { text += "m" }
        return text
    }
}

extension ServerSettings {
    /// The typed view of a configuration's canonical values (after every change).
    init(values: [String: String]) {
        var s = ServerSettings()
        func int(_ name: String) -> Int { Int(values[name] ?? "") ?? 0 }
        s.port = int("port")
        s.bind = (values["bind"] ?? "").split(separator: " ").map(String.init)
        s.databases = int("databases")
        let pass = values["requirepass"] ?? ""
        s.requirePass = pass.isEmpty ? nil : pass
        s.dir = values["dir"] ?? "."
        s.dbFilename = values["dbfilename"] ?? "dump.rdb"
        s.logLevel = values["loglevel"] ?? "notice"
        s.maxMemory = Int(clamping: UInt64(values["maxmemory"] ?? "") ?? 0)
        s.evictionPolicy = EvictionPolicy(rawValue: values["maxmemory-policy"] ?? "") ?? .noeviction
        s.maxMemorySamples = int("maxmemory-samples")
        s.lfuLogFactor = int("lfu-log-factor")
        s.lfuDecayTime = int("lfu-decay-time")
        s.hz = int("hz")
        s.activeExpireEffort = int("active-expire-effort")
        s.timeout = int("timeout")
        s.slowlogSlowerThan = int("slowlog-log-slower-than")
        s.slowlogMaxLength = int("slowlog-max-len")
        s.tcpKeepalive = int("tcp-keepalive")
        s.tcpBacklog = int("tcp-backlog")
        s.maxClients = int("maxclients")
        s.protoMaxBulkLength = int("proto-max-bulk-len")
        s.hllSparseMaxBytes = int("hll-sparse-max-bytes")
        s.clientQueryBufferLimit = int("client-query-buffer-limit")
        s.protectedMode = values["protected-mode"] == "yes"
        let save = (values["save"] ?? "").split(separator: " ").compactMap { Int($0) }
        s.saveRules = stride(from: 0, to: save.count - 1, by: 2).map { (save[$0], save[$0 + 1]) }
        s.notifyKeyspaceEvents = values["notify-keyspace-events"] ?? ""
        s.shutdownOnSigterm = values["shutdown-on-sigterm"] ?? "default"
        s.shutdownOnSigint = values["shutdown-on-sigint"] ?? "default"
        s.appendOnly = values["appendonly"] == "yes"
        s.appendFsync = values["appendfsync"] ?? "everysec"
        s.ioThreads = max(1, int("io-threads"))
        let socket = values["unixsocket"] ?? ""
        s.unixSocket = socket.isEmpty ? nil : socket
        s.unixSocketPermissions = Int(values["unixsocketperm"] ?? "0", radix: 8) ?? 0
        let limits = ConfigStore.parseBufferLimits(values["client-output-buffer-limit"] ?? "")
        func limit(_ name: String) -> OutputBufferLimit {
            let (hard, soft, seconds) = limits[name] ?? (0, 0, 0)
            return OutputBufferLimit(hard: Int(clamping: hard), soft: Int(clamping: soft), softSeconds: Int(clamping: seconds))
        }
        s.normalOutputLimit = limit("normal")
        s.pubsubOutputLimit = limit("pubsub")
        s.replicaOutputLimit = limit("slave")
        s.tls = TLSSettings(
            port: int("tls-port"), certFile: values["tls-cert-file"] ?? "", keyFile: values["tls-key-file"] ?? "",
            keyFilePassword: values["tls-key-file-pass"] ?? "", caCertFile: values["tls-ca-cert-file"] ?? "",
            caCertDir: values["tls-ca-cert-dir"] ?? "", authClients: values["tls-auth-clients"] ?? "yes",
            protocols: values["tls-protocols"] ?? "", ciphers: values["tls-ciphers"] ?? "")
        s.httpPort = int("http-port")
        let memoryAlert = values["alert-memory"] ?? "0"
        s.alertRules = AlertRules(
            memory: memoryAlert == "0" || memoryAlert == "0%" ? nil : MemoryThreshold(parsing: memoryAlert),
            minimumHitRatio: Double(int("alert-hit-ratio")) / 100,
            hitRatioWindowSeconds: Double(max(10, int("alert-hit-ratio-window"))))
        s.alertRules.rejectedConnections = values["alert-rejected-connections"] != "no"
        self = s
    }
}
