import Foundation
import Logging
import MCP
import NIOCore
import NIOHTTP1

/// The client side of MCP's Streamable HTTP for upstreams.
///
/// Every message is a POST; the answer is JSON, or an event stream whose events are messages (progress
/// notifications, then the response), each delivered as it arrives. Once the session is initialized a
/// GET opens the standalone stream on which the server sends what belongs to no request (`list_changed`
/// notifications); it is opened again when it ends, with `Last-Event-ID`, until the transport disconnects
/// or the server says it offers none (405). Written here because the SDK's HTTP client transport hands
/// event streams to the client unparsed on Linux.
actor HTTPUpstreamTransport: Transport {
    nonisolated let logger: Logger
    private let endpoint: URL
    private let headers: [String: String]
    private let http: StreamingHTTPClient
    private var sessionID: String?
    private var protocolVersion: String?
    private var listening: Task<Void, Never>?
    private let stream: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    /// Responses and events longer than this fail the request.
    static let maxMessageBytes = 64 << 20
    /// The wait before the standalone stream is opened again, when the server did not say (`retry`).
    static let defaultReconnectDelay: Duration = .seconds(1)

    /// - Parameter trustedCertificates: a PEM file of the authorities an `https` upstream's certificate is
    ///   checked against (the system's when nil).
    init(endpoint: URL, headers: [String: String], trustedCertificates: String? = nil, logger: Logger) throws {
        self.endpoint = endpoint
        self.headers = headers
        self.logger = logger
        http = try StreamingHTTPClient(trustedCertificates: trustedCertificates)
        (stream, continuation) = AsyncThrowingStream.makeStream()
    }

    /// The server answered 404 to a request in a session: it no longer knows the session, and did not
    /// process the message. The client must initialize a new session (and may send the message again).
    struct SessionExpired: Error, CustomStringConvertible {
        var description: String { "the upstream ended the session" }
    }

    func connect() async throws {}

    func disconnect() async {
        listening?.cancel()
        listening = nil
        if let sessionID {
            _ = try? await http.send(.DELETE, to: endpoint, headers: requestHeaders(accept: nil, sessionID: sessionID)).collect(upTo: 1 << 16)
        }
        sessionID = nil
        continuation.finish()
    }

    func receive() -> AsyncThrowingStream<Data, any Error> { stream }

    func send(_ data: Data) async throws {
        var fields = requestHeaders(accept: "application/json, text/event-stream", sessionID: sessionID)
        fields.append(("Content-Type", "application/json"))
        logger.trace("upstream POST", metadata: ["bytes": "\(data.count)"])
        let response = try await http.send(.POST, to: endpoint, headers: fields, body: data)
        logger.trace("upstream answered", metadata: ["status": "\(response.status)"])
        if let id = response.header("Mcp-Session-Id") { sessionID = id }
        switch response.status {
        case 202, 204:
            if isInitializedNotification(data) { startListening() }
            return
        case 200..<300:
            break
        case 404 where sessionID != nil:
            // The server forgot the session (it restarted, or expired it): the message was not processed.
            sessionID = nil
            listening?.cancel()
            listening = nil
            throw SessionExpired()
        default:
            let body = (try? await response.collect(upTo: 4096)).map { String(buffer: $0) } ?? ""
            throw MCPError.internalError("HTTP \(response.status): \(body.prefix(200))")
        }
        if response.header("Content-Type")?.contains("text/event-stream") == true {
            _ = try await deliverEvents(of: response)
        } else {
            let body = try await response.collect(upTo: Self.maxMessageBytes)
            if body.readableBytes > 0 { deliver(Data(body.readableBytesView)) }
        }
    }

    /// Hands every event's data to the client as it arrives; returns the parser (its last event ID and
    /// retry delay) when the stream ends.
    private func deliverEvents(of response: StreamingHTTPClient.Response, parser start: EventStreamParser = EventStreamParser(maxEventBytes: maxMessageBytes)) async throws -> EventStreamParser {
        var parser = start
        for try await chunk in response.body {
            for event in try parser.feed(chunk.readableBytesView) where event.type == "message" && !event.data.isEmpty {
                deliver(Data(event.data.utf8))
            }
        }
        if let event = parser.finish(), event.type == "message", !event.data.isEmpty { deliver(Data(event.data.utf8)) }
        return parser
    }

    private func deliver(_ message: Data) {
        noteProtocolVersion(message)
        continuation.yield(message)
    }

    /// Opens the standalone stream in a task of its own (once per session).
    private func startListening() {
        guard listening == nil, sessionID != nil else { return }
        listening = Task { await listen() }
    }

    /// The standalone GET stream, opened again after it ends until the task is cancelled, the session is
    /// gone, or the server offers none.
    private func listen() async {
        var parser = EventStreamParser(maxEventBytes: Self.maxMessageBytes)
        var failures = 0
        while !Task.isCancelled, let sessionID {
            do {
                var fields = requestHeaders(accept: "text/event-stream", sessionID: sessionID)
                if let last = parser.lastEventID { fields.append(("Last-Event-ID", last)) }
                let response = try await http.send(.GET, to: endpoint, headers: fields)
                switch response.status {
                case 200 where response.header("Content-Type")?.contains("text/event-stream") == true:
                    logger.debug("upstream notification stream open", metadata: ["upstream": "\(endpoint)"])
                    failures = 0
                    parser = try await deliverEvents(of: response, parser: parser)
                case 405:
                    logger.debug("upstream offers no notification stream", metadata: ["upstream": "\(endpoint)"])
                    return
                case 404:
                    return  // the session ended; the next POST finds out and the client connects again
                default:
                    failures += 1
                    logger.debug("upstream notification stream refused", metadata: ["upstream": "\(endpoint)", "status": "\(response.status)"])
                }
            } catch {
                if Task.isCancelled { return }
                failures += 1
                logger.debug("upstream notification stream ended", metadata: ["upstream": "\(endpoint)", "error": "\(error)"])
            }
            let asked = parser.retryMilliseconds.map { Duration.milliseconds($0) } ?? Self.defaultReconnectDelay
            try? await Task.sleep(for: asked * (1 << min(failures, 5)))
        }
    }

    private func requestHeaders(accept: String?, sessionID: String?) -> [(String, String)] {
        var fields = headers.map { ($0.key, $0.value) }
        if let accept { fields.append(("Accept", accept)) }
        if let sessionID { fields.append(("Mcp-Session-Id", sessionID)) }
        if let protocolVersion { fields.append(("MCP-Protocol-Version", protocolVersion)) }
        return fields
    }

    private func isInitializedNotification(_ message: Data) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any] else { return false }
        return object["method"] as? String == "notifications/initialized"
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
