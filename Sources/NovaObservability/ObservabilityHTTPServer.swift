import NIOCore
import NIOHTTP1
import NIOPosix
package import NIOSSL
import Synchronization

/// Whether a request may read the observability pages.
package enum ObservationAccess: Sendable, Equatable {
    case allowed
    /// Credentials are needed and none were given: 401 with a Basic challenge.
    case credentialsRequired
    /// The credentials given were refused: 401.
    case refused
}

/// Where the pages' data comes from: the server's own state, or a Redis-protocol server polled over the
/// network (`nova-cache dashboard`).
package protocol ObservationSource: Sendable {
    /// Checks HTTP Basic credentials (nil when the request had none).
    func access(username: String?, password: String?) -> ObservationAccess
    /// Reads the current state.
    func observe() async throws -> Observation
}

/// The HTTP listener for `/metrics` (Prometheus), `/api/stats` (JSON) and `/` (the dashboard page), on
/// SwiftNIO's HTTP/1.1 codec, optionally behind TLS.
///
/// It is bounded like the RESP port: at most `maximumConnections` open at once (more are closed on
/// accept), idle connections are closed after a minute, request bodies are discarded as they arrive.
package final class ObservabilityHTTPServer: Sendable {
    private let source: any ObservationSource
    private let tls: NIOSSLContext?
    private let metrics = ExporterMetrics()
    private let group: MultiThreadedEventLoopGroup
    private let listeners = Mutex<[any Channel]>([])
    private let openConnections = Atomic<Int>(0)
    /// Open connections allowed at once.
    package let maximumConnections: Int

    /// A listener for `source`; `tls` makes it HTTPS.
    package init(source: any ObservationSource, tls: NIOSSLContext? = nil, maximumConnections: Int = 128) {
        self.source = source
        self.tls = tls
        self.maximumConnections = maximumConnections
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Binds `port` on each of `hosts` (a `-` prefix marks an address that may be missing, `*` and `::*`
    /// are wildcards, as in `bind`); returns the bound (host, port) pairs.
    package func start(hosts: [String], port: Int) async throws -> [(host: String, port: Int)] {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.configure(channel) }
            }
        var bound: [any Channel] = []
        for entry in hosts.isEmpty ? ["127.0.0.1"] : hosts {
            let optional = entry.hasPrefix("-")
            var host = optional ? String(entry.dropFirst()) : entry
            if host == "*" { host = "0.0.0.0" }
            if host == "::*" { host = "::" }
            do {
                bound.append(try await bootstrap.bind(host: host, port: port).get())
            } catch {
                if optional { continue }
                for channel in bound { try? await channel.close() }
                throw error
            }
        }
        listeners.withLock { $0 = bound }
        return bound.compactMap { channel in channel.localAddress.map { ($0.ipAddress ?? "?", $0.port ?? 0) } }
    }

    /// Closes the listeners and every connection.
    package func stop() async {
        let channels = listeners.withLock { channels -> [any Channel] in
            defer { channels = [] }
            return channels
        }
        for channel in channels { try? await channel.close() }
        try? await group.shutdownGracefully()
    }

    private func configure(_ channel: any Channel) throws {
        let count = openConnections.wrappingAdd(1, ordering: .relaxed).newValue
        channel.closeFuture.whenComplete { [self] _ in openConnections.wrappingSubtract(1, ordering: .relaxed) }
        if count > maximumConnections {
            channel.close(promise: nil)
            return
        }
        let pipeline = channel.pipeline.syncOperations
        if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
        try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(60)))
        try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
        try pipeline.addHandler(ObservabilityHTTPHandler(server: self))
    }

    // MARK: Routes

    /// A response, before it is written.
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
        var headers: [(String, String)] = []
    }

    /// Answers one request.
    func respond(method: HTTPMethod, uri: String, authorization: String?) async -> Response {
        guard method == .GET || method == .HEAD else {
            return Response(status: .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: Array("Only GET and HEAD are served.\n".utf8), headers: [("Allow", "GET, HEAD")])
        }
        let credentials = authorization.flatMap(BasicCredentials.init(header:))
        switch source.access(username: credentials?.username, password: credentials?.password) {
        case .allowed:
            break
        case .credentialsRequired, .refused:
            return Response(
                status: .unauthorized, contentType: "text/plain; charset=utf-8",
                body: Array("Authentication required: HTTP Basic with an ACL user (or any user name and the requirepass password).\n".utf8),
                headers: [("WWW-Authenticate", "Basic realm=\"nova-cache\", charset=\"UTF-8\"")])
        }
        let path = String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        switch path {
        case "/", "/index.html":
            return Response(status: .ok, contentType: "text/html; charset=utf-8", body: Array(DashboardPage.html.utf8), headers: DashboardPage.securityHeaders)
        case "/dashboard.js":
            return Response(status: .ok, contentType: "text/javascript; charset=utf-8", body: Array(DashboardPage.script.utf8))
        case "/dashboard.css":
            return Response(status: .ok, contentType: "text/css; charset=utf-8", body: Array(DashboardPage.style.utf8))
        case "/metrics", "/api/stats":
            do {
                let observation = try await source.observe()
                if path == "/metrics" {
                    return Response(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.render(observation))
                }
                return Response(status: .ok, contentType: "application/json", body: Array(DashboardStats.json(observation).utf8))
            } catch {
                if path == "/metrics" {
                    // As redis_exporter: the scrape succeeds and says the server is down.
                    return Response(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array("# TYPE redis_up gauge\nredis_up 0\n".utf8))
                }
                let body = JSONValue.object([("error", .string("\(error)"))]).text
                return Response(status: .serviceUnavailable, contentType: "application/json", body: Array(body.utf8))
            }
        default:
            return Response(status: .notFound, contentType: "text/plain; charset=utf-8", body: Array("Not found. Pages: / (dashboard), /metrics (Prometheus), /api/stats (JSON).\n".utf8))
        }
    }
}

/// One connection's requests: answered in order (SwiftNIO's pipelining helper holds later ones back).
private final class ObservabilityHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: ObservabilityHTTPServer
    private var head: HTTPRequestHead?

    init(server: ObservabilityHTTPServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            let server = self.server
            let authorization = head.headers.first(name: "authorization")
            let promise = context.eventLoop.makePromise(of: ObservabilityHTTPServer.Response.self)
            promise.completeWithTask { await server.respond(method: head.method, uri: head.uri, authorization: authorization) }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            promise.futureResult.whenSuccess { response in
                let (handler, context) = bound.value
                handler.write(response, for: head, context: context)
            }
        }
    }

    private func write(_ response: ObservabilityHTTPServer.Response, for request: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// The user and password of an `Authorization: Basic …` header.
package struct BasicCredentials: Sendable, Equatable {
    package var username: String
    package var password: String

    /// Nil when the header is not Basic or its value is not base64 of `user:password`.
    package init?(header: String) {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic", let decoded = Base64.decode(parts[1].filter { $0 != " " }),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        username = String(decoding: decoded[..<colon], as: UTF8.self)
        password = String(decoding: decoded[(colon + 1)...], as: UTF8.self)
    }
}

/// Standard base64 (RFC 4648 §4), with or without padding.
package enum Base64 {
    /// The bytes `text` encodes; nil when it is not base64.
    package static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for byte in text.utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            default: return nil
            }
            guard padding == 0 else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        guard padding <= 2, bits < 6 else { return nil }
        return output
    }

    /// `bytes` in base64 with padding.
    package static func encode(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { value |= UInt32(byte) << UInt32(16 - 8 * offset) }
            for position in 0..<4 {
                if position <= chunk.count {
                    out.append(alphabet[Int(value >> UInt32(18 - 6 * position) & 63)])
                } else {
                    out.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
