import Foundation
import Logging
import MCP

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The client side of MCP's Streamable HTTP for upstreams: every message is a POST; the answer is JSON, or
/// an event stream whose `data:` lines are messages (progress notifications, then the response).
///
/// Written here because the SDK's HTTP client transport hands an event stream to the client unparsed on
/// Linux. Each POST's stream is read whole before its messages are delivered, so progress arrives with
/// the result; the standalone GET stream (server-initiated notifications outside a request) is not
/// opened, so an HTTP upstream's `list_changed` reaches the gateway only inside a response.
actor HTTPUpstreamTransport: Transport {
    nonisolated let logger: Logger
    private let endpoint: URL
    private let headers: [String: String]
    private let session: URLSession
    private var sessionID: String?
    private var protocolVersion: String?
    private let stream: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation

    init(endpoint: URL, headers: [String: String], logger: Logger) {
        self.endpoint = endpoint
        self.headers = headers
        self.logger = logger
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 300
        session = URLSession(configuration: configuration)
        (stream, continuation) = AsyncThrowingStream.makeStream()
    }

    func connect() async throws {}

    func disconnect() async {
        if let sessionID {
            var request = URLRequest(url: endpoint)
            request.httpMethod = "DELETE"
            request.setValue(sessionID, forHTTPHeaderField: "Mcp-Session-Id")
            _ = try? await session.data(for: request)
        }
        sessionID = nil
        continuation.finish()
    }

    func send(_ data: Data) async throws {
        var request = URLRequest(url: endpoint)
        request.httpMethod = "POST"
        request.httpBody = data
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("application/json, text/event-stream", forHTTPHeaderField: "Accept")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let sessionID { request.setValue(sessionID, forHTTPHeaderField: "Mcp-Session-Id") }
        if let protocolVersion { request.setValue(protocolVersion, forHTTPHeaderField: "MCP-Protocol-Version") }
        logger.trace("upstream POST", metadata: ["bytes": "\(data.count)"])
        let (body, response) = try await session.data(for: request)
        logger.trace("upstream answered", metadata: ["bytes": "\(body.count)", "status": "\((response as? HTTPURLResponse)?.statusCode ?? 0)"])
        guard let http = response as? HTTPURLResponse else { throw MCPError.internalError("not an HTTP response") }
        if let id = http.value(forHTTPHeaderField: "Mcp-Session-Id") { sessionID = id }
        switch http.statusCode {
        case 202, 204: return
        case 200..<300: break
        case 404 where sessionID != nil:
            sessionID = nil
            throw MCPError.connectionClosed
        default:
            throw MCPError.internalError("HTTP \(http.statusCode): \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        let type = http.value(forHTTPHeaderField: "Content-Type") ?? ""
        let messages = type.contains("text/event-stream") ? Self.events(in: body) : [body]
        for message in messages where !message.isEmpty {
            noteProtocolVersion(message)
            continuation.yield(message)
        }
    }

    func receive() -> AsyncThrowingStream<Data, any Error> { stream }

    /// The `data` of each event in a whole event stream (multi-line data joined by newlines, as the
    /// EventSource specification says).
    static func events(in body: Data) -> [Data] {
        var events: [Data] = []
        var current: [String] = []
        // Split on bytes: in a Swift String "\r\n" is one Character, not a "\n" after a "\r".
        for raw in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let line = String(decoding: raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw, as: UTF8.self)
            if line.isEmpty {
                if !current.isEmpty { events.append(Data(current.joined(separator: "\n").utf8)) }
                current = []
            } else if line.hasPrefix("data:") {
                var value = line.dropFirst(5)
                if value.first == " " { value = value.dropFirst() }
                current.append(String(value))
            }
        }
        if !current.isEmpty { events.append(Data(current.joined(separator: "\n").utf8)) }
        return events
    }

    /// Remembers the protocol version the initialize result agreed on (later requests must carry it).
    private func noteProtocolVersion(_ message: Data) {
        guard protocolVersion == nil,
            let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any],
            let result = object["result"] as? [String: Any], let version = result["protocolVersion"] as? String
        else { return }
        protocolVersion = version
    }
}
