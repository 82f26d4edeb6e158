import ArgumentParser
import Foundation
import NovaClient
import NovaObservability

/// `nova-cache stats`: commands, ops/s, hits and misses, expired and evicted keys.
struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Commands processed, ops/s, keyspace hits/misses and hit ratio, expired and evicted keys.")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Refresh every SECONDS (in place on a terminal, one block per refresh otherwise), with sparklines of ops/s and hit ratio.") var watch: Double?
    @Option(help: "With --watch: stop after this many refreshes.") var count: Int?
    @Flag(help: "Print JSON (one object per refresh with --watch).") var json = false

    struct Sample {
        var commands = 0
        var opsPerSecond = 0.0
        var hits = 0
        var misses = 0
        var expired = 0
        var evicted = 0
        var keys: Int?
        var usedMemory = 0
        var maxMemory = 0
        var usedMemoryHuman = ""
        var at = Date()

        var hitRatio: Double { hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses) }
    }

    /// The database whose key count is shown: the one --db or the URL names (0 on a cluster).
    var db: Int? { connection.namesCluster ? 0 : try? connection.namedDatabase() }

    /// The counters of a server, or the sums over every node of a cluster (keys: over the primaries).
    func sample(_ remote: Remote) async throws -> Sample {
        switch remote {
        case .server(let client):
            return sample(try await client.info(), keysOf: db)
        case .cluster(let cluster):
            var total = Sample()
            for node in try await cluster.topology().nodes {
                let part = sample(try await cluster.info(at: node.address), keysOf: node.isPrimary ? 0 : nil)
                total.commands += part.commands
                total.opsPerSecond += part.opsPerSecond
                total.hits += part.hits
                total.misses += part.misses
                total.expired += part.expired
                total.evicted += part.evicted
                total.usedMemory += part.usedMemory
                total.maxMemory += part.maxMemory
                if let keys = part.keys { total.keys = (total.keys ?? 0) + keys }
            }
            total.usedMemoryHuman = formatBytes(total.usedMemory)
            return total
        }
    }

    private func sample(_ info: [String: String], keysOf db: Int?) -> Sample {
        func number(_ name: String) -> Int { Int(info[name] ?? "") ?? 0 }
        var sample = Sample(
            commands: number("total_commands_processed"),
            opsPerSecond: Double(info["instantaneous_ops_per_sec"] ?? "") ?? 0,
            hits: number("keyspace_hits"), misses: number("keyspace_misses"),
            expired: number("expired_keys"), evicted: number("evicted_keys"))
        sample.usedMemory = number("used_memory")
        sample.maxMemory = number("maxmemory")
        sample.usedMemoryHuman = info["used_memory_human"] ?? "?"
        if let db { sample.keys = keyspace(info).first { $0.db == db }?.keys ?? 0 }
        return sample
    }

    func object(_ sample: Sample, interval: (ops: Double, ratio: Double)? = nil) -> [String: Any] {
        var object: [String: Any] = [
            "total_commands_processed": sample.commands, "instantaneous_ops_per_sec": sample.opsPerSecond,
            "keyspace_hits": sample.hits, "keyspace_misses": sample.misses, "hit_ratio": sample.hitRatio,
            "expired_keys": sample.expired, "evicted_keys": sample.evicted,
            "used_memory": sample.usedMemory, "maxmemory": sample.maxMemory,
        ]
        if let keys = sample.keys { object["db"] = db ?? 0; object["keys"] = keys }
        if let interval { object["interval_ops_per_sec"] = interval.ops; object["interval_hit_ratio"] = interval.ratio }
        return object
    }

    func lines(_ sample: Sample) -> [String] {
        var lines = [
            "commands processed  \(sample.commands)",
            "ops/s               \(Int(sample.opsPerSecond))",
            "keyspace hits       \(sample.hits)",
            "keyspace misses     \(sample.misses)",
            String(format: "hit ratio           %.1f%%", sample.hitRatio * 100),
            "expired keys        \(sample.expired)",
            "evicted keys        \(sample.evicted)",
            "memory used         \(sample.usedMemoryHuman)"
                + (sample.maxMemory > 0
                    ? String(format: " of %@ (%.0f%%)", formatBytes(sample.maxMemory), Double(sample.usedMemory) * 100 / Double(sample.maxMemory))
                    : " (no maxmemory)"),
        ]
        if let keys = sample.keys { lines.append("keys in db\(db ?? 0)         \(keys)") }
        return lines
    }

    func run() async throws {
        try await reporting {
            let client = try await connection.connectRemote()
            defer { client.shutdown() }
            guard let watch else {
                let current = try await sample(client)
                if json { try printJSON(object(current)) } else { print(lines(current).joined(separator: "\n")) }
                return
            }
            guard watch > 0 else { throw CLIFailure("--watch needs a positive number of seconds", exitCode: 2) }
            var previous = try await sample(client)
            var opsHistory: [Double] = []
            var ratioHistory: [Double] = []
            var printed = 0
            var refreshes = 0
            while count.map({ refreshes < $0 }) ?? true {
                try await Task.sleep(for: .milliseconds(Int(watch * 1000)))
                let current = try await sample(client)
                let seconds = max(0.001, current.at.timeIntervalSince(previous.at))
                // The interval's own rates: INFO's counters are totals since start.
                let ops = Double(max(0, current.commands - previous.commands - 1)) / seconds
                let lookups = (current.hits - previous.hits) + (current.misses - previous.misses)
                let ratio = lookups > 0 ? Double(current.hits - previous.hits) / Double(lookups) : (ratioHistory.last ?? 0)
                opsHistory = Array((opsHistory + [ops]).suffix(40))
                ratioHistory = Array((ratioHistory + [ratio]).suffix(40))
                refreshes += 1
                if json {
                    try printJSON(object(current, interval: (ops, ratio)))
                } else {
                    var screen = lines(current)
                    screen.append(String(format: "ops/s (interval)    %-8.0f %@", ops, sparkline(opsHistory, maximum: nil)))
                    screen.append(String(format: "hit ratio (interval)%6.1f%%  %@", ratio * 100, sparkline(ratioHistory, maximum: 1)))
                    if isatty(1) == 1 {
                        if printed > 0 { print("\u{1B}[\(printed)A", terminator: "") }  // back to the top, redraw in place
                        for line in screen { print("\u{1B}[2K" + line) }
                        printed = screen.count
                    } else {
                        // A pipe or a file: one block per refresh, no terminal codes.
                        if refreshes > 1 { print("") }
                        print(screen.joined(separator: "\n"))
                    }
                }
                fflush(nil)
                previous = current
            }
        }
    }
}

/// A text sparkline of `values` scaled to `maximum` (or their own maximum).
func sparkline(_ values: [Double], maximum: Double?) -> String {
    let bars = Array("▁▂▃▄▅▆▇█")
    let top = maximum ?? max(values.max() ?? 0, 1)
    return String(values.map { value in
        let index = top > 0 ? Int((value / top * Double(bars.count - 1)).rounded()) : 0
        return bars[min(max(index, 0), bars.count - 1)]
    })
}
