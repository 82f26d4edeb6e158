public import NovaRESP

/// An error reply from the server, e.g. `WRONGTYPE Operation against a key holding the wrong kind of value`.
public struct RedisError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The error's code: its first word (`ERR`, `WRONGTYPE`, `NOAUTH`, `WRONGPASS`, `EXECABORT` …).
    public let code: String
    /// The whole reply text, code included, as the server sent it.
    public let message: String

    /// Parses an error reply's text.
    public init(_ message: String) {
        self.message = message
        let first = message.prefix { $0 != " " }
        code = first.isEmpty ? "ERR" : String(first)
    }

    public var description: String { message }

    /// Whether a cluster sent the command elsewhere or asked to retry it: MOVED, ASK, TRYAGAIN or
    /// CLUSTERDOWN.
    public var isClusterRedirection: Bool {
        ["MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"].contains(code)
    }
}

/// Why a command could not get a reply (as opposed to the server answering with an error).
public enum RedisClientError: Error, Sendable, CustomStringConvertible {
    /// The connection could not be made; the URL is shown without its password.
    case connectFailed(url: String, reason: String)
    /// No reply within the command timeout; the connection was closed, since later replies would no longer
    /// match their commands.
    case timeout
    /// The connection closed before the reply arrived.
    case connectionClosed
    /// The pool is waiting before its next reconnect attempt (after `failures` failed attempts).
    case backingOff(url: String, failures: Int, lastError: String)
    /// The client or pool was shut down.
    case shutDown
    /// The reply was not valid RESP.
    case protocolError(String)
    /// The reply had another shape than the command promises.
    case unexpectedReply(RESPValue)

    public var description: String {
        switch self {
        case .connectFailed(let url, let reason): return "cannot connect to \(url): \(reason)"
        case .timeout: return "command timed out"
        case .connectionClosed: return "connection closed"
        case .backingOff(let url, let failures, let lastError):
            return "\(url) unreachable (\(failures) failed attempts, last: \(lastError)); waiting before retrying"
        case .shutDown: return "client shut down"
        case .protocolError(let text): return "protocol error: \(text)"
        case .unexpectedReply(let value): return "unexpected reply \(value)"
        }
    }
}
