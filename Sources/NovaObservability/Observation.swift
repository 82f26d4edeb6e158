/// Everything the metrics page and the dashboard show, read from a server at one moment.
package struct Observation: Sendable {
    /// INFO everything (or INFO all from servers that do not know `everything`).
    package var report: InfoReport
    /// The number of databases (`databases`): empty ones are reported with zero keys.
    package var databases: Int
    /// The newest slow log entries, newest first.
    package var slowlog: [SlowlogEntry]
    /// SLOWLOG LEN.
    package var slowlogLength: Int
    /// The alerts firing now.
    package var alerts: [ActiveAlert]
    /// The rules they were evaluated with (the dashboard draws the memory alert band from them).
    package var alertRules: AlertRules
    /// Seconds since 1970 when the observation was taken.
    package var time: Double

    package init(
        report: InfoReport, databases: Int, slowlog: [SlowlogEntry], slowlogLength: Int, alerts: [ActiveAlert],
        alertRules: AlertRules, time: Double
    ) {
        self.report = report
        self.databases = databases
        self.slowlog = slowlog
        self.slowlogLength = slowlogLength
        self.alerts = alerts
        self.alertRules = alertRules
        self.time = time
    }
}

/// One SLOWLOG GET entry.
package struct SlowlogEntry: Sendable, Equatable {
    package var id: Int
    /// When the command ran (seconds since 1970).
    package var time: Int
    package var microseconds: Int
    /// The command and its arguments as logged (long ones already shortened by the server).
    package var arguments: [String]
    /// `ip:port` of the client, when known.
    package var client: String

    package init(id: Int, time: Int, microseconds: Int, arguments: [String], client: String) {
        self.id = id
        self.time = time
        self.microseconds = microseconds
        self.arguments = arguments
        self.client = client
    }
}
