public import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import NIOCore
public import NIOPosix
import NIOSSL
public import NovaRESP
import Synchronization

/// Why a connection attempt failed, in one short line ("Connection refused", "unknown host db.example",
/// "timed out after 5 s"): NIO's errors nest the same cause inside several descriptions.
func connectFailureReason(_ error: any Error) -> String {
    switch error {
    case let error as NIOConnectionError:
        if let first = error.connectionErrors.first { return connectFailureReason(first.error) }
        if let dns = error.dnsAError ?? error.dnsAAAAError { return connectFailureReason(dns) }
        return "no address for host \(error.host)"
    case let error as IOError:
        return String(cString: strerror(error.errnoCode))
    case let error as SocketAddressError.UnknownHost:
        return "unknown host \(error.host)"
    case let error as SocketAddressError:
        switch error {
        case .unknown(let host, _): return "unknown host \(host)"
        default: return "\(error)"
        }
    case let error as ChannelError:
        switch error {
        case .connectTimeout(let amount): return "timed out after \(Double(amount.nanoseconds) / 1e9) s"
        default: return "\(error)"
        }
    default:
        return "\(error)"
    }
}

/// One connection to a Redis-protocol server: commands are pipelined (many in flight, replies matched in
/// order); pushes (pub/sub messages, tracking invalidations) go to a separate handler.
///
/// Safe to use from any task. The handshake (HELLO with RESP2 fallback, AUTH, SETNAME, SELECT) runs before
/// `connect` returns.
public final class RedisConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<RESPClientHandler>
    private let timeout: Duration?
    private let state = Mutex(ConnectionState())

    private struct ConnectionState {
        var protocolVersion = 2
        var inFlight = 0
    }

    /// The RESP version in use: 3 after a successful `HELLO 3`, else 2.
    public var protocolVersion: Int { state.withLock { $0.protocolVersion } }

    /// Commands sent and not yet answered.
    public var inFlight: Int { state.withLock { $0.inFlight } }

    /// Whether the connection can still carry commands.
    public var isActive: Bool { channel.isActive }

    /// A future that completes when the connection closes.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    private init(channel: any Channel, handler: NIOLoopBound<RESPClientHandler>, timeout: Duration?) {
        self.channel = channel
        self.handler = handler
        self.timeout = timeout
    }

    /// Connects and runs the handshake for `url`.
    /// - Parameters:
    ///   - url: where to connect, with the credentials, database and timeouts of the handshake.
    ///   - group: the event loops the connection runs on.
    ///   - logger: receives the connection's debug lines.
    ///   - onPush: receives RESP3 push frames (and, after `enterSubscriberMode`, every frame) on the
    ///     connection's event loop.
    public static func connect(
        to url: RedisURL,
        on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "nova.client"),
        onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let sslContext = try url.tls.map { try makeSSLContext($0) }
        var serverHostname: String? = nil
        if case .tcp(let host, _) = url.endpoint, !host.isIPAddress { serverHostname = host }
        let hostname = serverHostname
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount.nanoseconds(Int64(url.connectTimeout.nanoseconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: hostname))
                    }
                    try channel.pipeline.syncOperations.addHandler(RESPClientHandler(onPush: onPush))
                }
            }
        let channel: any Channel
        do {
            switch url.endpoint {
            case .tcp(let host, let port):
                bootstrap = bootstrap.channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
                channel = try await bootstrap.connect(host: host, port: port).get()
            case .unixSocket(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch {
            throw RedisClientError.connectFailed(url: url.description, reason: connectFailureReason(error))
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: RESPClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        let connection = RedisConnection(channel: channel, handler: handler, timeout: url.commandTimeout)
        do {
            try await connection.handshake(url)
        } catch {
            connection.close()
            throw error
        }
        logger.debug("connected", metadata: ["url": "\(url)", "resp": "\(connection.protocolVersion)"])
        return connection
    }

    private func handshake(_ url: RedisURL) async throws {
        var authenticated = false
        if url.protocolVersion == 3 {
            var arguments: [RedisArgument] = ["3"]
            if let password = url.password {
                arguments += ["AUTH", .string(url.username ?? "default"), .string(password)]
            }
            if let name = url.clientName { arguments += ["SETNAME", .string(name)] }
            let reply = try await sendRaw(RedisCommand("HELLO", arguments: arguments))
            if case .error(let text) = reply {
                let error = RedisError(text)
                // Servers before 6.0 do not know HELLO; others may refuse RESP3: both mean RESP2.
                guard error.code == "NOPROTO" || text.hasPrefix("ERR unknown command") else { throw error }
            } else {
                state.withLock { $0.protocolVersion = 3 }
                authenticated = true
            }
        }
        if !authenticated {
            if let password = url.password {
                if let user = url.username {
                    try await send(RedisCommand("AUTH", .string(user), .string(password)))
                } else {
                    try await send(RedisCommand("AUTH", .string(password)))
                }
            }
            if let name = url.clientName { try await send(RedisCommand("CLIENT", "SETNAME", .string(name))) }
        }
        if url.database != 0 { try await send(RedisCommand("SELECT", .integer(Int64(url.database)))) }
        if url.readOnly { try await send(RedisCommand("READONLY")) }
    }

    /// Sends `command`; an error reply is thrown as `RedisError`.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        let reply = try await sendRaw(command, timeout: timeout)
        if case .error(let text) = reply { throw RedisError(text) }
        return reply
    }

    /// Sends `command` and returns the reply as it came, error replies included.
    public func sendRaw(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        try await pipeline([command], timeout: timeout)[0]
    }

    /// Sends every command in one write and returns the replies in order (error replies as `.error`).
    public func pipeline(_ commands: [RedisCommand], timeout: Duration? = nil) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        var buffer = channel.allocator.buffer(capacity: 64 * commands.count)
        for command in commands { command.encode(into: &buffer) }
        let promises = (0..<commands.count).map { _ in channel.eventLoop.makePromise(of: RESPValue.self) }
        let deadline = (timeout ?? self.timeout).map { NIODeadline.now() + TimeAmount.nanoseconds(Int64($0.nanoseconds)) }
        state.withLock { $0.inFlight += commands.count }
        defer { state.withLock { $0.inFlight -= commands.count } }
        let handler = self.handler
        let payload = buffer
        if channel.eventLoop.inEventLoop {
            handler.value.send(payload, promises: promises, deadline: deadline)
        } else {
            channel.eventLoop.execute { handler.value.send(payload, promises: promises, deadline: deadline) }
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(promises.count)
        for promise in promises { replies.append(try await promise.futureResult.get()) }
        return replies
    }

    /// Runs WATCH `keys` (when any), then MULTI, the commands and EXEC in one write.
    /// - Returns: the replies of the commands, or nil when EXEC was aborted by a WATCHed key.
    /// - Throws: `RedisError` for an error reply to WATCH, MULTI or EXEC. When EXEC was refused because a
    ///   command was refused while queued, the error is EXECABORT — or, when a cluster redirected that
    ///   command (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), the redirection itself, so that a cluster client can
    ///   follow it.
    public func transaction(_ commands: [RedisCommand], watching keys: [RedisArgument] = []) async throws -> [RESPValue]? {
        if !keys.isEmpty { try await send(RedisCommand("WATCH", arguments: keys)) }
        let replies = try await pipeline([RedisCommand("MULTI")] + commands + [RedisCommand("EXEC")])
        if case .error(let text) = replies[0] { throw RedisError(text) }
        switch replies.last! {
        case .null:
            return nil
        case .error(let text):
            for case .error(let refused) in replies.dropFirst().dropLast() {
                let error = RedisError(refused)
                if error.isClusterRedirection { throw error }
            }
            throw RedisError(text)
        case let value:
            guard let items = value.elements else { throw RedisClientError.unexpectedReply(value) }
            return items
        }
    }

    /// Sends a command whose answers arrive as pushes (SUBSCRIBE and friends once subscribed): no reply is
    /// awaited, the confirmation comes to the push handler.
    public func sendWithoutReply(_ command: RedisCommand) {
        var buffer = channel.allocator.buffer(capacity: 64)
        command.encode(into: &buffer)
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// From now on every frame goes to the push handler (RESP2 pub/sub, where messages are plain arrays and
    /// one SUBSCRIBE gets several replies).
    public func enterSubscriberMode() async throws {
        let handler = self.handler
        try await channel.eventLoop.submit { handler.value.subscriberMode = true }.get()
    }

    /// Closes the connection; commands still waiting fail with `connectionClosed`.
    public func close() {
        channel.close(promise: nil)
    }

    private static func makeSSLContext(_ tls: RedisURL.TLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let ca = tls.caCertificatePath { configuration.trustRoots = .file(ca) }
        switch tls.verification {
        case .full: configuration.certificateVerification = .fullVerification
        case .noHostname: configuration.certificateVerification = .noHostnameVerification
        case .none: configuration.certificateVerification = .none
        }
        if let cert = tls.certificatePath {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) }
        }
        if let key = tls.keyPath {
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

extension String {
    var isIPAddress: Bool {
        contains(":") || split(separator: ".").count == 4 && allSatisfy { $0 == "." || $0.isNumber }
    }
}

/// Matches replies to commands in order and routes pushes; lives on the channel's event loop.
final class RESPClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RESPValue>
        let deadline: NIODeadline?
    }

    private var pending = CircularBuffer<Pending>()
    private var received: ByteBuffer?
    private let decoder = RESPValueDecoder()
    private let onPush: (@Sendable (RESPValue) -> Void)?
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var closedError: (any Error)?
    var subscriberMode = false

    init(onPush: (@Sendable (RESPValue) -> Void)?) { self.onPush = onPush }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(RedisClientError.connectionClosed)
        self.context = nil
    }

    func send(_ buffer: ByteBuffer, promises: [EventLoopPromise<RESPValue>], deadline: NIODeadline?) {
        guard let context, closedError == nil, context.channel.isActive else {
            let error = closedError ?? RedisClientError.connectionClosed
            for promise in promises { promise.fail(error) }
            return
        }
        for promise in promises { pending.append(Pending(promise: promise, deadline: deadline)) }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        armTimer()
    }

    private func armTimer() {
        guard timer == nil, let context, let deadline = pending.first?.deadline else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let first = pending.first else { return }
            if let deadline = first.deadline, deadline <= .now() {
                closedError = RedisClientError.timeout
                failAll(RedisClientError.timeout)
                self.context?.close(promise: nil)
            } else {
                armTimer()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if received == nil || received!.readableBytes == 0 {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        while received != nil {
            let value: RESPValue?
            do {
                value = try decoder.decode(&received!)
            } catch {
                closedError = RedisClientError.protocolError(error.description)
                failAll(closedError!)
                context.close(promise: nil)
                return
            }
            guard let value else { break }
            deliver(value)
        }
        if received?.readableBytes == 0 { received = nil } else { received?.discardReadBytes() }
    }

    private func deliver(_ value: RESPValue) {
        if case .push = value {
            onPush?(value)
        } else if subscriberMode && pending.isEmpty {
            onPush?(value)
        } else if let first = pending.popFirst() {
            first.promise.succeed(value)
            if pending.isEmpty { timer?.cancel(); timer = nil }
        } else {
            // A reply nobody asked for: the stream is out of step; close rather than mismatch replies.
            closedError = RedisClientError.protocolError("unexpected reply")
            context?.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(closedError ?? RedisClientError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closedError = closedError ?? RedisClientError.connectFailed(url: "\(context.remoteAddress.map { "\($0)" } ?? "?")", reason: connectFailureReason(error))
        failAll(closedError!)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        timer?.cancel()
        timer = nil
        while let first = pending.popFirst() { first.promise.fail(error) }
    }
}
