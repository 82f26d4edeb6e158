/// A malformed request frame. The server answers it with Redis's exact error text and closes the connection.
public struct RESPProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The text Redis sends after `-ERR ` for this condition, e.g. `Protocol error: invalid bulk length`.
    public let message: String

    init(_ message: String) { self.message = message }

    public var description: String { message }

    static let invalidMultibulkLength = RESPProtocolError("Protocol error: invalid multibulk length")
    static let invalidBulkLength = RESPProtocolError("Protocol error: invalid bulk length")
    static let unauthenticatedMultibulkLength = RESPProtocolError("Protocol error: unauthenticated multibulk length")
    static let unauthenticatedBulkLength = RESPProtocolError("Protocol error: unauthenticated bulk length")
    static let tooBigMultibulkCount = RESPProtocolError("Protocol error: too big mbulk count string")
    static let tooBigBulkCount = RESPProtocolError("Protocol error: too big bulk count string")
    static let tooBigInline = RESPProtocolError("Protocol error: too big inline request")
    static let unbalancedQuotes = RESPProtocolError("Protocol error: unbalanced quotes in request")

    static func expectedDollar(got byte: UInt8) -> RESPProtocolError {
        // Redis prints the offending byte raw with %c; keep it printable so the reply stays valid RESP.
        let shown = (byte == 13 || byte == 10) ? " " : String(decoding: [byte], as: UTF8.self)
        return RESPProtocolError("Protocol error: expected '$', got '\(shown)'")
    }
}
