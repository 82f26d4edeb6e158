#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
package import Logging
import NIOConcurrencyHelpers

/// Writes log lines in redis-server's layout (`pid:M dd Mon yyyy hh:mm:ss.mmm * message`) to standard
/// error or to a file (`logfile`).
package struct ServerLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level
    private let sink: Sink

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

    /// A handler at `level` writing to `path` (standard error when nil or empty).
    package init(level: Logger.Level, path: String? = nil) {
        self.logLevel = level
        self.sink = Sink(path: path)
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
        let details = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        sink.write("\(getpid()):M \(stamp) \(mark) \(event.message)\(details)\n")
    }
}
