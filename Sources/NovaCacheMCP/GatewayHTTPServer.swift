import Foundation
public import Logging
import MCP
import NIOCore
import NIOHTTP1
import NIOPosix

/// The gateway's Streamable HTTP endpoint: one MCP session (a `Server` and its transport) per client that
/// initializes, found again by its `Mcp-Session-Id`; sessions idle for `sessionTimeout` are closed.
///
/// HTTP/1.1 over SwiftNIO; a response that is an event stream is written as it is produced. The SDK's
/// request validation applies (Accept, Content-Type, protocol version, and Origin limited to loopback
/// unless the gateway listens elsewhere).
public actor GatewayHTTPServer {
    public nonisolated let settings: GatewayConfiguration.HTTP
    private let gateway: Gateway
    private let logger: Logger
    private let sessionTimeout: Duration
    private var sessions: [String: Session] = [:]
    private var channel: (any Channel)?
    private var serving: Task<Void, Never>?
    private var sweeping: Task<Void, Never>?

    struct Session {
        let server: Server
        let transport: StatefulHTTPServerTransport
        var lastUsed: ContinuousClock.Instant
    }

    public init(gateway: Gateway, settings: GatewayConfiguration.HTTP, logger: Logger, sessionTimeout: Duration = .seconds(3600)) {
        self.gateway = gateway
        self.settings = settings
        self.logger = logger
        self.sessionTimeout = sessionTimeout
    }

    /// Binds and starts accepting; returns `host:port` as bound (port 0 picks a free one).
    public func start() async throws -> String {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: 256)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .bind(host: settings.host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        channel = server.channel
        serving = Task { [weak self] in
            try? await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await self?.serve(connection) }
                    }
                }
            }
        }
        sweeping = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(30))
                await self?.closeIdleSessions()
            }
        }
        let address = server.channel.localAddress
        return "\(address?.ipAddress ?? settings.host):\(address?.port ?? settings.port)"
    }

    /// Stops accepting and closes every session.
    public func stop() async {
        sweeping?.cancel()
        try? await channel?.close()
        serving?.cancel()
        for id in Array(sessions.keys) { await close(id) }
    }

    /// Reads requests from one connection and answers each in turn.
    private nonisolated func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let started):
                    head = started
                    body.clear()
                case .body(var chunk):
                    // Requests are JSON-RPC messages; 4 MiB is far above any real one.
                    guard body.readableBytes + chunk.readableBytes <= 4 << 20 else { throw HTTPServerError.tooLarge }
                    body.writeBuffer(&chunk)
                case .end:
                    guard let request = head else { continue }
                    head = nil
                    let response = await respond(to: request, body: body)
                    try await write(response, version: request.version, keepAlive: request.isKeepAlive, to: outbound)
                    if !request.isKeepAlive { return }
                }
            }
        }
    }

    private enum HTTPServerError: Error { case tooLarge }

    private func respond(to head: HTTPRequestHead, body: ByteBuffer) async -> HTTPResponse {
        let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
        guard path == settings.path else { return .error(statusCode: 404, .invalidRequest("Not Found: the MCP endpoint is \(settings.path)")) }
        var headers: [String: String] = [:]
        for (name, value) in head.headers { headers[name] = headers[name].map { "\($0), \(value)" } ?? value }
        let request = HTTPRequest(method: head.method.rawValue, headers: headers, body: body.readableBytes > 0 ? Data(body.readableBytesView) : nil, path: path)
        if let id = request.header(HTTPHeaderName.sessionID) {
            guard var session = sessions[id] else { return .error(statusCode: 404, .invalidRequest("Not Found: no such session (expired or closed)")) }
            session.lastUsed = .now
            sessions[id] = session
            let response = await session.transport.handleRequest(request)
            if head.method == .DELETE, response.statusCode == 200 { await close(id) }
            return response
        }
        guard head.method == .POST, let data = request.body, Self.isInitialize(data) else {
            return .error(statusCode: 400, .invalidRequest("Bad Request: no \(HTTPHeaderName.sessionID) header, and not an initialize request"))
        }
        return await openSession(for: request)
    }

    private func openSession(for request: HTTPRequest) async -> HTTPResponse {
        let id = UUID().uuidString
        let loopback = ["127.0.0.1", "localhost", "::1"].contains(settings.host)
        let transport = StatefulHTTPServerTransport(
            sessionIDGenerator: FixedSessionID(id: id),
            validationPipeline: StandardValidationPipeline(validators: [
                loopback ? OriginValidator.localhost() : OriginValidator.disabled,
                AcceptHeaderValidator(mode: .sseRequired), ContentTypeValidator(), ProtocolVersionValidator(), SessionValidator(),
            ]),
            logger: logger
        )
        let server = await gateway.makeServer()
        await gateway.bind(server)
        do {
            try await server.start(transport: transport)
        } catch {
            await gateway.remove(server)
            return .error(statusCode: 500, .internalError("cannot start a session: \(error)"))
        }
        sessions[id] = Session(server: server, transport: transport, lastUsed: .now)
        let response = await transport.handleRequest(request)
        if case .error = response { await close(id) }
        return response
    }

    private func close(_ id: String) async {
        guard let session = sessions.removeValue(forKey: id) else { return }
        await session.server.stop()
        await session.transport.disconnect()
        await gateway.remove(session.server)
    }

    private func closeIdleSessions() async {
        let now = ContinuousClock.now
        for (id, session) in sessions where now - session.lastUsed > sessionTimeout {
            logger.info("closing an idle MCP session", metadata: ["session": "\(id)"])
            await close(id)
        }
    }

    /// Whether a request body is (or, in a batch, contains) an `initialize` request.
    static func isInitialize(_ body: Data) -> Bool {
        guard let parsed = try? JSONSerialization.jsonObject(with: body) else { return false }
        let messages = (parsed as? [Any]) ?? [parsed]
        return messages.contains { ($0 as? [String: Any])?["method"] as? String == "initialize" }
    }

    private nonisolated func write(
        _ response: HTTPResponse, version: HTTPVersion, keepAlive: Bool, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.statusCode))
        for (name, value) in response.headers { head.headers.add(name: name, value: value) }
        if case .stream(let events, _) = response {
            // An event stream: chunked, each event written as soon as it comes.
            head.headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            try await outbound.write(.head(head))
            do {
                for try await chunk in events { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: chunk)))) }
            } catch {}
            try await outbound.write(.end(nil))
            return
        }
        let body = response.bodyData ?? Data()
        head.headers.replaceOrAdd(name: "Content-Length", value: "\(body.count)")
        if !keepAlive { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        try await outbound.write(.head(head))
        if !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try await outbound.write(.end(nil))
    }
}

private struct FixedSessionID: SessionIDGenerator {
    let id: String
    func generateSessionID() -> String { id }
}
