#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
package import Logging
import NovaObservability
import NIOConcurrencyHelpers

/// Writes log lines to standard error or to a file (`logfile`), in the layout `log-format` chooses:
/// redis-server's (`pid:M dd Mon yyyy hh:mm:ss.mmm * message`), logfmt (as Valkey 8.1's `log-format
/// logfmt`), or one JSON object per line for log shippers.
package struct ServerLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level
    private let sink: Sink
    private let format: Format

    /// The line layouts of `log-format`.
    package enum Format: String, Sendable {
        case legacy, logfmt, json
    }

    final class Sink: @unchecked Sendable {
        let lock = NIOLock()
        let file: UnsafeMutablePointer<FILE>

        init(path: String?) {
            if let path, !path.isEmpty, let handle = fopen(path, "a") {
                file = handle
            } else {
                file = fdopen(2, "a")
            }
        }

        func write(_ line: String) {
            lock.withLock {
                fputs(line, file)
                fflush(file)
            }
        }
    }

    /// A handler at `level` writing to `path` (standard error when nil or empty) in `format`.
    package init(level: Logger.Level, path: String? = nil, format: Format = .legacy) {
        self.logLevel = level
        self.sink = Sink(path: path)
        self.format = format
    }

    /// The redis.conf name of a level (`loglevel`'s words).
    static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "debug"
        case .info: "verbose"
        case .notice: "notice"
        default: "warning"
        }
    }

    /// `text` as a JSON string literal.
    static func jsonString(_ text: String) -> String { JSONValue.quoted(text) }

    /// A logfmt value: bare when it has no space, quote or equals sign, else quoted with escapes.
    static func logfmtValue(_ text: String) -> String {
        text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) ? jsonString(text) : text
    }

    /// The swift-log level for a redis.conf `loglevel`.
    package static func level(forRedisLevel name: String) -> Logger.Level {
        switch name {
        case "debug": return .debug
        case "verbose": return .info
        case "warning": return .warning
        default: return .notice
        }
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        localtime_r(&seconds, &parts)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func pad(_ value: Int32, _ width: Int = 2) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let stamp = "\(parts.tm_mday) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) \(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(Int32(time.tv_nsec / 1_000_000), 3))"
        let mark: String
        switch event.level {
        case .trace, .debug: mark = "."
        case .info: mark = "-"
        case .notice: mark = "*"
        default: mark = "#"
        }
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let fields = all.sorted { $0.key < $1.key }
        switch format {
        case .legacy:
            let details = fields.isEmpty ? "" : " " + fields.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            sink.write("\(getpid()):M \(stamp) \(mark) \(event.message)\(details)\n")
        case .logfmt, .json:
            var utc = tm()
            gmtime_r(&seconds, &utc)
            let iso = "\(utc.tm_year + 1900)-\(pad(utc.tm_mon + 1))-\(pad(utc.tm_mday))T\(pad(utc.tm_hour)):\(pad(utc.tm_min)):\(pad(utc.tm_sec)).\(pad(Int32(time.tv_nsec / 1_000_000), 3))Z"
            let pairs = [("timestamp", iso), ("pid", String(getpid())), ("role", "primary"), ("level", Self.levelName(event.level)),
                         ("message", "\(event.message)")]
                // Metadata that repeats a fixed field with the same value is left out; a different value
                // keeps its own key, prefixed, so that no key appears twice.
                + fields.compactMap { field -> (String, String)? in
                    let value = "\(field.value)"
                    switch (field.key, value) {
                    case ("pid", String(getpid())): return nil
                    case ("timestamp", _), ("pid", _), ("role", _), ("level", _), ("message", _): return ("metadata_" + field.key, value)
                    default: return (field.key, value)
                    }
                }
            if format == .json {
                sink.write("{" + pairs.map { "\(Self.jsonString($0.0)):\($0.0 == "pid" ? $0.1 : Self.jsonString($0.1))" }.joined(separator: ",") + "}\n")
            } else {
                sink.write(pairs.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ") + "\n")
            }
        }
    }
}
