import ArgumentParser
import Foundation
import NovaClient
import NovaObservability
import NovaRESP
import Synchronization

/// `nova-cache dashboard`: the server's dashboard page and `/metrics`, served locally for any
/// Redis-protocol server (a plain redis-server too), built from INFO and SLOWLOG polling.
struct Dashboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the live dashboard (and /metrics, /api/stats) for any Redis-protocol server, built from INFO polling.",
        discussion: """
            Open the printed address in a browser. Alerts are evaluated here from --memory-warn and \
            --hit-ratio-warn (plus failed saves, AOF write errors and rejected connections); a \
            nova-cache-server's own alerts are shown as well. The page listens on 127.0.0.1 unless \
            --bind says otherwise; with --http-password it asks for that password (HTTP Basic, any user).
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The local HTTP port (0: any free port).") var port = 8080
    @Option(help: "The local address to listen on.") var bind = "127.0.0.1"
    @Option(help: "Ask the browser for this password (HTTP Basic, any user name).") var httpPassword: String?
    @Option(help: ArgumentHelp("Alert when memory used reaches this share of maxmemory (\"90%\") or amount (\"2gb\").", valueName: "threshold"))
    var memoryWarn: MemoryThreshold?
    @Option(help: ArgumentHelp("Alert when the hit ratio over the last five minutes is below this (\"80%\").", valueName: "percent"))
    var hitRatioWarn: String?
    @Option(help: "Stop after this many seconds (for scripts and tests).") var seconds: Double?

    func validate() throws {
        if let hitRatioWarn, Self.ratio(hitRatioWarn) == nil {
            throw ValidationError("--hit-ratio-warn takes a percentage between 0 and 100, such as 80%")
        }
        if bind != "127.0.0.1" && bind != "::1" && bind != "localhost" && httpPassword == nil {
            throw ValidationError("listening on \(bind) shows the server's state to the network: give --http-password as well")
        }
    }

    static func ratio(_ text: String) -> Double? {
        let trimmed = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let value = Double(trimmed), value > 0, value <= 100 else { return nil }
        return value / 100
    }

    func run() async throws {
        try await reporting {
            let url = try connection.resolvedURL()
            let client = try await connection.connect()
            defer { client.shutdown() }
            var rules = AlertRules(memory: memoryWarn, minimumHitRatio: hitRatioWarn.flatMap(Self.ratio) ?? 0)
            rules.hitRatioWindowSeconds = 300
            let databases = Int((try? await client.configValue("databases")) ?? "") ?? 16
            let source = PolledObservationSource(client: client, rules: rules, databases: databases, password: httpPassword)
            let server = ObservabilityHTTPServer(source: source)
            let bound: [(host: String, port: Int)]
            do {
                bound = try await server.start(hosts: [bind], port: port)
            } catch {
                await server.stop()
                throw CLIFailure("cannot listen on \(bind):\(port): \(oneLine(error))")
            }
            for (host, port) in bound {
                let shown = host.contains(":") ? "[\(host)]" : host
                print("Dashboard for \(url) at http://\(shown):\(port)/  (metrics: /metrics; Ctrl-C to stop)")
            }
            fflush(nil)
            if let seconds {
                try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            } else {
                // Until interrupted: SIGINT/SIGTERM end the process.
                while true { try await Task.sleep(for: .seconds(3600)) }
            }
            await server.stop()
        }
    }
}

/// Reads a server over RESP for the dashboard: INFO (everything, or all for servers without it),
/// SLOWLOG GET/LEN, and evaluates the alert rules on each reading.
final class PolledObservationSource: ObservationSource {
    private let client: RedisClient
    private let databases: Int
    private let password: String?
    private let monitor: Mutex<AlertMonitor>
    private let rules: AlertRules

    init(client: RedisClient, rules: AlertRules, databases: Int, password: String?) {
        self.client = client
        self.rules = rules
        self.databases = databases
        self.password = password
        self.monitor = Mutex(AlertMonitor(rules: rules))
    }

    func access(username: String?, password given: String?) -> ObservationAccess {
        guard let password else { return .allowed }
        guard let given else { return .credentialsRequired }
        return given == password ? .allowed : .refused
    }

    func observe() async throws -> Observation {
        let report: InfoReport
        do {
            report = try await client.infoReport("everything")
        } catch is RedisError {
            report = try await client.infoReport("all")
        }
        var slowlog: [SlowlogEntry] = []
        var length = 0
        if let entries = try? await client.send("SLOWLOG", "GET", "10").elements {
            slowlog = entries.compactMap(Self.slowlogEntry)
            if case .integer(let count)? = try? await client.send("SLOWLOG", "LEN") { length = Int(count) }
        }
        let now = Date().timeIntervalSince1970
        let sample = AlertSample(report: report, time: ProcessInfo.processInfo.systemUptime, wallTime: now)
        var alerts = monitor.withLock { monitor in
            _ = monitor.evaluate(sample)
            return monitor.active
        }
        // A nova-cache-server's own alerts (its rules, evaluated there).
        let local = Swift.Set(alerts.map(\.kind.rawValue))
        for alert in report.firingAlerts where !local.contains(alert.name) {
            guard let kind = AlertKind(rawValue: alert.name) else { continue }
            let since = report.number("alert_\(alert.name)_since") ?? now
            alerts.append(ActiveAlert(kind: kind, message: alert.reason + " (server)", since: since))
        }
        return Observation(
            report: report, databases: databases, slowlog: slowlog, slowlogLength: length,
            alerts: alerts.sorted { $0.kind < $1.kind }, alertRules: rules, time: now)
    }

    /// One SLOWLOG GET entry: id, time, microseconds, arguments, and (Redis 4+) client address and name.
    static func slowlogEntry(_ value: RESPValue) -> SlowlogEntry? {
        guard let fields = value.elements, fields.count >= 4, case .integer(let id) = fields[0],
              case .integer(let time) = fields[1], case .integer(let duration) = fields[2] else { return nil }
        let arguments = fields[3].elements?.compactMap(\.string) ?? []
        let client = fields.count > 4 ? fields[4].string ?? "" : ""
        return SlowlogEntry(id: Int(id), time: Int(time), microseconds: Int(duration), arguments: arguments, client: client)
    }
}
