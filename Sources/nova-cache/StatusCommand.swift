import ArgumentParser
import Foundation
import NovaClient
import NovaObservability

/// `nova-cache status`: is the server healthy? Exit code 0 yes, 1 unreachable, 2 reachable but unhealthy.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reachability, version, uptime, memory, clients, keys and persistence state.",
        discussion: """
            Exit code: 0 healthy, 1 unreachable, 2 reachable but unhealthy (loading, busy, a password \
            missing or refused, a failed save or AOF write), with the reason on the first line.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(help: ArgumentHelp(
        "Unhealthy when memory used reaches this share of maxmemory (\"90%\") or this many bytes (\"2gb\").",
        valueName: "threshold"))
    var memoryWarn: MemoryThreshold?

    func run() async throws {
        let url = try connection.resolvedURL()
        let client: RedisClient
        let report: InfoReport
        do {
            client = try await connection.connect()
            report = try await client.infoReport()
        } catch let error as RedisError {
            // It answered, with an error: reachable but not usable.
            let reason = Self.unhealthyReason(error)
            if json {
                try printJSON(["reachable": true, "healthy": false, "url": url.description, "problems": [reason]])
            } else {
                print("\(url): UNHEALTHY (\(reason))")
            }
            throw ExitCode(2)
        } catch {
            let reason = oneLine(error)
            if json {
                try printJSON(["reachable": false, "url": url.description, "error": reason])
            } else {
                print("\(url): UNREACHABLE (\(reason))")
            }
            throw ExitCode(1)
        }
        defer { client.shutdown() }
        let info = report.dictionary
        var problems: [String] = []
        if info["rdb_last_bgsave_status"] == "err" { problems.append("last background save failed") }
        if info["aof_last_write_status"] == "err" { problems.append("last AOF write failed") }
        if info["loading"] == "1" { problems.append("loading the dataset") }
        let used = Int(info["used_memory"] ?? "") ?? 0
        let maxMemory = Int(info["maxmemory"] ?? "") ?? 0
        if maxMemory > 0 && used > maxMemory && info["maxmemory_policy"] == "noeviction" {
            problems.append("memory used \(formatBytes(used)) is over maxmemory \(formatBytes(maxMemory)) with noeviction: writes are refused")
        } else if let memoryWarn, let limit = memoryWarn.bytes(maxMemory: maxMemory), used >= limit {
            problems.append("memory used \(formatBytes(used)) reached the warning threshold \(memoryWarn) (\(formatBytes(limit)))")
        }
        // A nova-cache-server's own alerts (INFO nova); save and AOF failures are reported above already.
        for alert in report.firingAlerts where alert.name != "bgsave" && alert.name != "aof_write" {
            problems.append("alert \(alert.name): \(alert.reason)")
        }
        let keys = keyspace(info)
        let lastSave = Int(info["rdb_last_save_time"] ?? "") ?? 0
        if json {
            var object: [String: Any] = ["reachable": true, "healthy": problems.isEmpty, "problems": problems]
            object["url"] = url.description
            object["version"] = info["redis_version"] ?? ""
            object["uptime_seconds"] = Int(info["uptime_in_seconds"] ?? "") ?? 0
            object["role"] = info["role"] ?? ""
            object["used_memory"] = Int(info["used_memory"] ?? "") ?? 0
            object["maxmemory"] = maxMemory
            object["connected_clients"] = Int(info["connected_clients"] ?? "") ?? 0
            object["keys"] = Dictionary(uniqueKeysWithValues: keys.map { ("db\($0.db)", $0.keys) })
            object["last_save_time"] = lastSave
            object["last_bgsave_status"] = info["rdb_last_bgsave_status"] ?? ""
            object["changes_since_last_save"] = Int(info["rdb_changes_since_last_save"] ?? "") ?? 0
            object["aof_enabled"] = info["aof_enabled"] == "1"
            try printJSON(object)
        } else {
            let maxmemory = info["maxmemory_human"].map { $0 == "0B" ? "no limit" : $0 } ?? "?"
            let saved = lastSave > 0 ? ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(lastSave))) : "never"
            print("""
                \(url): \(problems.isEmpty ? "OK" : "UNHEALTHY (\(problems.joined(separator: ", ")))")
                  version      \(info["redis_version"] ?? "?")  (\(info["role"] ?? "?"), up \(formatUptime(Int(info["uptime_in_seconds"] ?? "") ?? 0)))
                  memory       \(info["used_memory_human"] ?? "?") used / \(maxmemory)
                  clients      \(info["connected_clients"] ?? "?")
                  keys         \(keys.isEmpty ? "none" : keys.map { "db\($0.db)=\($0.keys)" }.joined(separator: " "))
                  persistence  last save \(saved) (\(info["rdb_last_bgsave_status"] ?? "?")), \(info["rdb_changes_since_last_save"] ?? "?") changes since, AOF \(info["aof_enabled"] == "1" ? "on" : "off")
                """)
        }
        if !problems.isEmpty { throw ExitCode(2) }
    }
}

/// `--memory-warn` takes the same levels as the server's `alert-memory`.
extension MemoryThreshold: ExpressibleByArgument {
    init?(argument: String) { self.init(parsing: argument) }
}

extension Status {
    /// The state an error reply shows, in a few words.
    static func unhealthyReason(_ error: RedisError) -> String {
        switch error.code {
        case "NOAUTH": "a password is required: give one in the URL or NOVA_CACHE_PASSWORD"
        case "WRONGPASS": "the password (or user) was refused"
        case "LOADING": "loading the dataset into memory"
        case "BUSY": "busy running a script"
        case "MASTERDOWN": "a replica without its primary"
        default: error.message
        }
    }
}

func formatUptime(_ seconds: Int) -> String {
    if seconds >= 86400 { return "\(seconds / 86400)d \(seconds % 86400 / 3600)h" }
    if seconds >= 3600 { return "\(seconds / 3600)h \(seconds % 3600 / 60)m" }
    if seconds >= 60 { return "\(seconds / 60)m \(seconds % 60)s" }
    return "\(seconds)s"
}
