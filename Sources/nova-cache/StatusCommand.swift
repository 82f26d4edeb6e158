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
        // What the messages name: the URL (password masked), or a cluster's seeds.
        let target = connection.namesCluster ? "cluster \(connection.clusterSeedsText)" : url.description
        let client: RedisClient
        let report: InfoReport
        do {
            switch try await connection.connectRemote() {
            case .cluster(let cluster):
                try await clusterStatus(cluster)
                return
            case .server(let server):
                client = server
            }
            report = try await client.infoReport()
        } catch let exit as ExitCode {
            throw exit
        } catch let failure as CLIFailure {
            throw failure.reported()
        } catch let error as RedisError {
            // It answered, with an error: reachable but not usable.
            let reason = Self.unhealthyReason(error)
            if json {
                try printJSON(["reachable": true, "healthy": false, "url": target, "problems": [reason]])
            } else {
                print("\(target): UNHEALTHY (\(reason))")
            }
            throw ExitCode(2)
        } catch {
            let reason = oneLine(error)
            if json {
                try printJSON(["reachable": false, "url": target, "error": reason])
            } else {
                print("\(target): UNREACHABLE (\(reason))")
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

extension Status {
    /// One node of a cluster as `status` shows it.
    struct NodeRow {
        var node: RedisClusterNode
        var slots = 0
        var reachable = false
        var version = "?"
        var usedMemory = 0
        var usedMemoryHuman = "?"
        var clients = "?"
        var keys = 0
        var problems: [String] = []

        var object: [String: Any] {
            [
                "address": node.address.description, "id": node.id, "role": node.isPrimary ? "primary" : "replica",
                "slots": slots, "reachable": reachable, "version": version, "used_memory": usedMemory,
                "connected_clients": Int(clients) ?? 0, "keys": keys, "healthy": reachable && problems.isEmpty, "problems": problems,
            ]
        }
    }

    /// A cluster's state and one line per node; exit code 2 when the cluster is not `ok`, a slot is not
    /// served, or a node is unreachable or unhealthy.
    func clusterStatus(_ cluster: RedisClusterClient) async throws {
        defer { cluster.shutdown() }
        let seeds = cluster.configuration.seeds.map { $0.clusterAddressText }.joined(separator: ",")
        let topology: RedisClusterTopology
        do {
            topology = try await cluster.topology()
        } catch {
            if json {
                try printJSON(["reachable": false, "cluster": true, "seeds": seeds, "error": oneLine(error)])
            } else {
                print("cluster \(seeds): UNREACHABLE (\(oneLine(error)))")
            }
            throw ExitCode(1)
        }
        var rows: [NodeRow] = []
        for shard in topology.shards {
            for node in [shard.primary] + shard.replicas {
                var row = NodeRow(node: node)
                if node.isPrimary { row.slots = shard.slots.reduce(0) { $0 + $1.count } }
                // CLUSTER SHARDS says `loading` for a replica whose offset is still 0 (an idle new one):
                // the node's own INFO decides that; only `failed` counts here.
                if node.health == "failed" { row.problems.append("failed") }
                do {
                    let info = try await cluster.info(at: node.address)
                    row.reachable = true
                    row.version = info["redis_version"] ?? "?"
                    row.usedMemory = Int(info["used_memory"] ?? "") ?? 0
                    row.usedMemoryHuman = info["used_memory_human"] ?? "?"
                    row.clients = info["connected_clients"] ?? "?"
                    row.keys = keyspace(info).first { $0.db == 0 }?.keys ?? 0
                    if info["rdb_last_bgsave_status"] == "err" { row.problems.append("last background save failed") }
                    if info["aof_last_write_status"] == "err" { row.problems.append("last AOF write failed") }
                    if info["loading"] == "1" { row.problems.append("loading the dataset") }
                    if node.isPrimary == false, info["master_link_status"] == "down" { row.problems.append("link to its primary down") }
                } catch {
                    row.problems.append("unreachable (\(oneLine(error)))")
                }
                rows.append(row)
            }
        }
        var state = "unknown"
        for row in rows where row.node.isPrimary && row.reachable {
            guard let text = try? await cluster.send(RedisCommand("CLUSTER", "INFO"), to: row.node.address).string else { continue }
            state = InfoReport(parsing: text).dictionary["cluster_state"] ?? state
            // Nodes the cluster knows but the slot map leaves out: failed primaries that lost their slots.
            let nodes = (try? await cluster.send(RedisCommand("CLUSTER", "NODES"), to: row.node.address).string) ?? ""
            for line in nodes.split(whereSeparator: \.isNewline) {
                let fields = line.split(separator: " ")
                guard fields.count >= 3, let address = RedisClusterNode.Address(String(fields[1].prefix { $0 != "@" })),
                    !rows.contains(where: { $0.node.address == address }) else { continue }
                let flags = fields[2].split(separator: ",")
                var missing = NodeRow(node: RedisClusterNode(
                    id: String(fields[0]), address: address, isPrimary: flags.contains("master"), health: "failed"))
                missing.problems.append(flags.contains("fail") || flags.contains("fail?") ? "failed" : "serves no slots")
                rows.append(missing)
            }
            break
        }
        let served = topology.coveredSlots
        var problems: [String] = []
        if state != "ok" { problems.append("cluster_state \(state)") }
        if served < HashSlot.count { problems.append("\(HashSlot.count - served) slots not served") }
        for row in rows where !row.problems.isEmpty { problems.append("\(row.node.address): \(row.problems.joined(separator: ", "))") }
        let primaries = rows.filter { $0.node.isPrimary && $0.slots > 0 }.count
        if json {
            try printJSON([
                "reachable": true, "cluster": true, "healthy": problems.isEmpty, "problems": problems, "seeds": seeds,
                "state": state, "slots_served": served, "primaries": primaries, "replicas": rows.filter { !$0.node.isPrimary }.count,
                "keys": rows.filter(\.node.isPrimary).reduce(0) { $0 + $1.keys }, "nodes": rows.map(\.object),
            ])
        } else {
            print("cluster \(seeds): \(problems.isEmpty ? "OK" : "UNHEALTHY (\(problems.joined(separator: "; ")))")")
            print("  state \(state), \(served)/\(HashSlot.count) slots served, \(primaries) primaries, \(rows.filter { !$0.node.isPrimary }.count) replicas, \(rows.filter(\.node.isPrimary).reduce(0) { $0 + $1.keys }) keys")
            let table = [["node", "role", "slots", "version", "memory", "clients", "keys", "health"]] + rows.map { row in
                [row.node.address.description, row.node.isPrimary ? "primary" : "replica", row.slots > 0 ? "\(row.slots)" : "-",
                 row.version, row.usedMemoryHuman, row.clients, "\(row.keys)", row.problems.isEmpty ? "ok" : row.problems.joined(separator: ", ")]
            }
            let widths = (0..<8).map { column in table.map { $0[column].count }.max() ?? 0 }
            for line in table {
                print("  " + zip(line, widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
            }
        }
        if !problems.isEmpty { throw ExitCode(2) }
    }
}

extension RedisURL {
    /// `host:port` of a TCP URL (no credentials), else the URL's description.
    var clusterAddressText: String {
        if case .tcp(let host, let port) = endpoint { return RedisClusterNode.Address(host: host, port: port).description }
        return description
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
        case "ERR" where error.message.contains("cluster support disabled"):
            "not a cluster (cluster support disabled): give one server's URL, not several hosts"
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
