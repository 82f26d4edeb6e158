import NIOCore

/// Server-sent events (the `text/event-stream` format) read incrementally: bytes go in as the network
/// delivers them, whole events come out.
///
/// Follows the EventSource specification's parsing rules: lines end with LF, CRLF or CR; a blank line
/// dispatches the event; `data` lines are joined with newlines; `id` sets the last event ID (kept across
/// events, sent back as `Last-Event-ID` on reconnecting); `retry` sets the reconnection delay; lines
/// starting with `:` are comments; an event without data is not dispatched. Split on bytes, not on
/// `Character`s: in a Swift `String` "\r\n" is a single character.
struct EventStreamParser {
    /// One dispatched event.
    struct Event: Equatable, Sendable {
        var type: String
        var data: String
        /// The last event ID at the time of dispatch (nil when the stream never set one).
        var lastEventID: String?
    }

    /// Lines or events longer than this fail the stream (a peer that never ends one).
    let maxEventBytes: Int
    private(set) var lastEventID: String?
    /// The reconnection delay the server asked for, in milliseconds.
    private(set) var retryMilliseconds: Int?

    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var type = ""
    /// The previous chunk ended with CR: an LF at the start of the next one belongs to it.
    private var afterCarriageReturn = false

    init(maxEventBytes: Int = 64 << 20) {
        self.maxEventBytes = maxEventBytes
    }

    enum Failure: Error, CustomStringConvertible {
        case eventTooLong(Int)
        var description: String {
            switch self {
            case .eventTooLong(let limit): return "an event-stream event longer than \(limit) bytes"
            }
        }
    }

    /// The events completed by `bytes`.
    mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [Event] {
        var events: [Event] = []
        for byte in bytes {
            if afterCarriageReturn {
                afterCarriageReturn = false
                if byte == UInt8(ascii: "\n") { continue }
            }
            switch byte {
            case UInt8(ascii: "\n"):
                if let event = endLine() { events.append(event) }
            case UInt8(ascii: "\r"):
                afterCarriageReturn = true
                if let event = endLine() { events.append(event) }
            default:
                line.append(byte)
                if line.count + data.count > maxEventBytes { throw Failure.eventTooLong(maxEventBytes) }
            }
        }
        return events
    }

    /// The stream ended: an event that was not finished by a blank line is dispatched all the same (a
    /// lenient reading of servers that close right after their last `data` line).
    mutating func finish() -> Event? {
        _ = endLine()
        return dispatch()
    }

    private mutating func endLine() -> Event? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty { return dispatch() }
        if line.first == UInt8(ascii: ":") { return nil }
        let field: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            field = line[...]
            value = []
        }
        switch String(decoding: field, as: UTF8.self) {
        case "data":
            if hasData { data.append(UInt8(ascii: "\n")) }
            data += value
            hasData = true
        case "event":
            type = String(decoding: value, as: UTF8.self)
        case "id":
            if !value.contains(0) { lastEventID = String(decoding: value, as: UTF8.self) }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
                retryMilliseconds = Int(String(decoding: value, as: UTF8.self))
            }
        default:
            break
        }
        return nil
    }

    private mutating func dispatch() -> Event? {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            type = ""
        }
        guard hasData else { return nil }
        return Event(type: type.isEmpty ? "message" : type, data: String(decoding: data, as: UTF8.self), lastEventID: lastEventID)
    }
}
