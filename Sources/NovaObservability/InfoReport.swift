/// INFO's text parsed once: every `name:value` field with the section it came from, and typed views of
/// the structured lines (`cmdstat_*`, `errorstat_*`, `latency_percentiles_usec_*`, `db<N>`, `alert_*`).
///
/// The metrics, the dashboard and the alerts all read this one type, whether the report came from this
/// server's own INFO or from any Redis-protocol server polled over the network (`nova-cache dashboard`).
package struct InfoReport: Sendable {
    /// One line of the report.
    package struct Field: Sendable, Equatable {
        /// The section's title as printed after `# ` (`Server`, `Commandstats`, …).
        package var section: String
        package var name: String
        package var value: String
    }

    /// Every field in report order.
    package private(set) var fields: [Field] = []
    private var index: [String: Int] = [:]

    /// Parses INFO's reply text (CRLF or LF line ends; `# Section` headings).
    package init(parsing text: String) {
        var section = ""
        for rawLine in text.split(whereSeparator: \.isNewline) {
            if rawLine.hasPrefix("#") {
                section = String(rawLine.dropFirst().drop(while: { $0 == " " }))
                continue
            }
            guard let colon = rawLine.firstIndex(of: ":") else { continue }
            let field = Field(section: section, name: String(rawLine[..<colon]), value: String(rawLine[rawLine.index(after: colon)...]))
            index[field.name] = fields.count
            fields.append(field)
        }
    }

    /// A field's text, or nil when the report does not have it.
    package subscript(name: String) -> String? { index[name].map { fields[$0].value } }

    /// A field as an integer (nil when missing or not a number).
    package func integer(_ name: String) -> Int? { self[name].flatMap { Int($0) } }

    /// A field as a number (`1.25`, `75.00%` reads as 75).
    package func number(_ name: String) -> Double? {
        guard var text = self[name] else { return nil }
        if text.hasSuffix("%") { text.removeLast() }
        return Double(text)
    }

    /// The fields of one section (by its title, case-insensitive).
    package func section(_ title: String) -> [Field] {
        fields.filter { $0.section.lowercased() == title.lowercased() }
    }

    // MARK: Structured lines

    /// Parses `a=1,b=2` into pairs, in order.
    package static func pairs(_ text: String) -> [(String, String)] {
        text.split(separator: ",").compactMap { part -> (String, String)? in
            let halves = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard halves.count == 2 else { return nil }
            return (String(halves[0]), String(halves[1]))
        }
    }

    /// One `cmdstat_<name>` line.
    package struct CommandStat: Sendable, Equatable {
        /// The command's name as INFO prints it (`get`, `config|set`).
        package var command: String
        package var calls: Int
        package var microseconds: Double
        package var rejectedCalls: Int
        package var failedCalls: Int
    }

    /// Per-command call counts and time (INFO commandstats).
    package var commandStats: [CommandStat] {
        fields.compactMap { field in
            guard field.name.hasPrefix("cmdstat_") else { return nil }
            var stat = CommandStat(command: String(field.name.dropFirst(8)), calls: 0, microseconds: 0, rejectedCalls: 0, failedCalls: 0)
            for (key, value) in Self.pairs(field.value) {
                switch key {
                case "calls": stat.calls = Int(value) ?? 0
                case "usec": stat.microseconds = Double(value) ?? 0
                case "rejected_calls": stat.rejectedCalls = Int(value) ?? 0
                case "failed_calls": stat.failedCalls = Int(value) ?? 0
                default: break
                }
            }
            return stat
        }
    }

    /// Error replies by error code (INFO errorstats: `errorstat_ERR:count=3`).
    package var errorStats: [(code: String, count: Int)] {
        fields.compactMap { field in
            guard field.name.hasPrefix("errorstat_") else { return nil }
            let count = Self.pairs(field.value).first { $0.0 == "count" }.flatMap { Int($0.1) } ?? 0
            return (String(field.name.dropFirst(10)), count)
        }
    }

    /// Latency percentiles per command, in microseconds (INFO latencystats:
    /// `latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=5.023`).
    package var latencyPercentiles: [(command: String, percentiles: [(name: String, microseconds: Double)])] {
        fields.compactMap { field in
            guard field.name.hasPrefix("latency_percentiles_usec_") else { return nil }
            let values = Self.pairs(field.value).compactMap { key, value -> (String, Double)? in
                Double(value).map { (key, $0) }
            }
            return (String(field.name.dropFirst(25)), values)
        }
    }

    /// One database's line of INFO keyspace.
    package struct KeyspaceEntry: Sendable, Equatable {
        package var database: Int
        package var keys: Int
        package var expires: Int
        /// Average time to live of the expiring keys, in milliseconds.
        package var averageTTL: Int
    }

    /// The databases that hold keys (INFO keyspace: `db0:keys=3,expires=1,avg_ttl=0`).
    package var keyspace: [KeyspaceEntry] {
        fields.compactMap { field in
            guard field.name.hasPrefix("db"), let database = Int(field.name.dropFirst(2)) else { return nil }
            var entry = KeyspaceEntry(database: database, keys: 0, expires: 0, averageTTL: 0)
            for (key, value) in Self.pairs(field.value) {
                switch key {
                case "keys": entry.keys = Int(value) ?? 0
                case "expires": entry.expires = Int(value) ?? 0
                case "avg_ttl": entry.averageTTL = Int(value) ?? 0
                default: break
                }
            }
            return entry
        }.sorted { $0.database < $1.database }
    }

    /// The alerts a nova-cache-server reports as firing (INFO nova: `alert_memory:firing`, with
    /// `alert_memory_reason:…`), with their reasons; empty for other servers.
    package var firingAlerts: [(name: String, reason: String)] {
        fields.compactMap { field in
            guard field.name.hasPrefix("alert_"), field.value == "firing" else { return nil }
            let name = String(field.name.dropFirst(6))
            return (name, self["alert_\(name)_reason"] ?? "")
        }
    }
}
