import DequeModule
import NovaRESP

/// SLOWLOG: the commands that ran for at least `slowlog-log-slower-than` microseconds, newest first, at
/// most `slowlog-max-len` of them, each with its arguments as Redis keeps them (at most 32, each cut to
/// 128 bytes, secrets redacted), the client's address and name. Guarded by the server lock.
struct SlowLog {
    struct Entry: Equatable {
        let id: Int64
        /// Unix seconds when the command ran.
        let time: Int64
        let microseconds: Int64
        let arguments: [[UInt8]]
        let peer: String
        let clientName: String
    }

    /// Newest first; a deque, so that a long log (`slowlog-max-len` in the millions, every command
    /// logged) costs O(1) per entry, as Redis's list does.
    private(set) var entries: Deque<Entry> = []
    private var nextID: Int64 = 0

    static let maxArguments = 32
    static let maxArgumentBytes = 128

    /// Records a command when it took at least `threshold` microseconds (a negative threshold logs
    /// nothing), dropping the oldest entries beyond `maxLength`.
    mutating func record(
        _ arguments: Arguments, redacted: Set<Int>, microseconds: Int64, threshold: Int, maxLength: Int,
        time: Int64, peer: String, clientName: String
    ) {
        guard threshold >= 0, microseconds >= threshold else { return }
        entries.prepend(Entry(
            id: nextID, time: time, microseconds: microseconds,
            arguments: Self.kept(arguments, redacted: redacted), peer: peer, clientName: clientName))
        nextID += 1
        if entries.count > maxLength { entries.removeLast(entries.count - maxLength) }
    }

    /// Empties the log (SLOWLOG RESET); IDs keep increasing, as in Redis.
    mutating func reset() { entries.removeAll() }

    /// The arguments as Redis stores them: past 32, the last kept one says how many more there were;
    /// a longer argument keeps its first 128 bytes and says how many more it had.
    static func kept(_ arguments: Arguments, redacted: Set<Int>) -> [[UInt8]] {
        let count = min(arguments.count, maxArguments)
        return (0..<count).map { index in
            if count != arguments.count && index == count - 1 {
                return Array("... (\(arguments.count - count + 1) more arguments)".utf8)
            }
            if redacted.contains(index) { return Array("(redacted)".utf8) }
            let bytes = arguments[index].readableBytesView
            guard bytes.count > maxArgumentBytes else { return Array(bytes) }
            return Array(bytes.prefix(maxArgumentBytes)) + Array("... (\(bytes.count - maxArgumentBytes) more bytes)".utf8)
        }
    }
}

extension ServerCore {
    /// After a command ran for `nanoseconds`: logged when slow enough (lock held). The thresholds are
    /// copied from the configuration by `applySettings`, so a fast command costs one comparison.
    @inline(__always)
    func recordIfSlow(_ context: CommandContext, _ spec: CommandSpec, nanoseconds: UInt64) {
        let microseconds = Int64(nanoseconds / 1000)
        guard slowLogLimits.slowerThan >= 0, microseconds >= slowLogLimits.slowerThan,
              !spec.flags.contains(.skipSlowlog), !context.client.isReplaying else { return }
        let client = context.client
        slowLog.record(
            context.args, redacted: Self.redactedArguments(spec, context.args), microseconds: microseconds,
            threshold: slowLogLimits.slowerThan, maxLength: slowLogLimits.maxLength,
            time: SystemClock.nowMilliseconds() / 1000, peer: client.address, clientName: client.name ?? "")
    }
}
