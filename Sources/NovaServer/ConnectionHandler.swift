import NIOCore
import NovaRESP

/// One client connection: decodes requests, runs them in batches under the server lock, and writes all
/// replies of a read with one flush.
///
/// Memory stays bounded whatever the peer does: a batch stops once its replies reach `outputChunk` bytes,
/// and while the peer is not taking replies (the channel is not writable) the connection neither runs
/// more commands nor reads more requests.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Replies written per lock acquisition before the handler checks whether the peer keeps up.
    static let outputChunk = 256 * 1024
    /// Commands decoded per batch (bounds the batch arrays).
    static let maxBatch = 4096

    private let server: ServerCore
    private var client: ClientState?
    private var inbound = ByteBuffer()
    private var decoder: RequestDecoder
    private var batch = CommandBatch()
    private var batchIndex = 0
    private var pendingProtocolError: RESPProtocolError?
    private var output = ByteBuffer()
    private var needsFlush = false
    private var readPending = false
    /// Waiting for the peer to take replies before running more commands.
    private var paused = false
    private var bytesRead = 0
    private var bytesWritten = 0
    private let queryBufferLimit: Int

    init(server: ServerCore) {
        self.server = server
        let settings = server.withLock { server.config.settings }
        self.decoder = RequestDecoder(maxBulkLength: settings.protoMaxBulkLength)
        self.queryBufferLimit = settings.clientQueryBufferLimit
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let address = channel.remoteAddress.map(Self.describe) ?? "?:0"
        let local = channel.localAddress.map(Self.describe) ?? "?:0"
        guard let client = server.register(channel: channel, address: address, localAddress: local) else {
            var buffer = context.channel.allocator.buffer(capacity: 64)
            buffer.writeString("-ERR max number of clients reached\r\n")
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        self.client = client
        decoder.isAuthenticated = client.isAuthenticated
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let client { server.unregister(client) }
        client = nil
        context.fireChannelInactive()
    }

    static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .v4: return "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        case .v6: return "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        case .unixDomainSocket: return "\(address.pathname ?? ""):0"
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard let client, !client.closeAfterReply else { return }
        bytesRead += buffer.readableBytes
        if inbound.readableBytes == 0 {
            inbound = buffer
        } else {
            inbound.writeBuffer(&buffer)
        }
        if !paused { process(context: context, client: client) }
    }

    /// Decodes and runs commands until the input is exhausted, the peer stops taking replies, or the
    /// connection is to be closed.
    private func process(context: ChannelHandlerContext, client: ClientState) {
        while !paused {
            if batchIndex >= batch.count {
                batch.removeAll()
                batchIndex = 0
                if pendingProtocolError == nil {
                    // Unauthenticated clients run one command at a time: AUTH changes the limits for what follows.
                    decoder.isAuthenticated = client.isAuthenticated
                    do {
                        try decoder.decode(&inbound, into: &batch, maxCommands: client.isAuthenticated ? Self.maxBatch : 1)
                    } catch {
                        pendingProtocolError = error
                    }
                }
                if batch.isEmpty {
                    if let error = pendingProtocolError { refuse(error, context: context, client: client) }
                    break
                }
            }
            if output.capacity > 4 * Self.outputChunk { output = ByteBuffer() }
            output.clear()
            var writer = RESPWriter(buffer: output, version: client.protocolVersion)
            output = ByteBuffer()
            let actions = server.execute(
                batch, from: &batchIndex, client: client, reply: &writer, outputLimit: Self.outputChunk,
                bytesRead: bytesRead, bytesWritten: bytesWritten)
            bytesRead = 0
            bytesWritten = 0
            let produced = writer.buffer.readableBytes
            if produced > 0 {
                bytesWritten += produced
                context.write(wrapOutboundOut(writer.buffer), promise: nil)
                needsFlush = true
            }
            output = writer.buffer
            perform(actions)
            if client.closeAfterReply {
                closeAfterFlush(context: context)
                return
            }
            if produced >= Self.outputChunk {
                needsFlush = false
                context.flush()
                if !context.channel.isWritable { paused = true }
            }
        }
        if inbound.readableBytes == 0 {
            inbound = ByteBuffer()
        } else if inbound.readableBytes > queryBufferLimit {
            server.logger.warning("Closing client that reached max query buffer length", metadata: ["client": "\(client.address)"])
            client.closeAfterReply = true
            closeAfterFlush(context: context)
        } else if inbound.readerIndex > 64 * 1024 && !paused {
            inbound.discardReadBytes()
        }
    }

    /// Answers a malformed request the way Redis does and closes the connection after the reply.
    private func refuse(_ error: RESPProtocolError, context: ChannelHandlerContext, client: ClientState) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        buffer.writeString("-ERR \(error.message)\r\n")
        context.write(wrapOutboundOut(buffer), promise: nil)
        server.logger.debug("Protocol error from client", metadata: ["client": "\(client.address)", "error": "\(error)"])
        server.withLock { client.closeAfterReply = true }
        closeAfterFlush(context: context)
    }

    private func perform(_ actions: [PostAction]) {
        for action in actions {
            switch action {
            case .close(let victim):
                victim.channel?.close(promise: nil)
            case .shutdown(let request):
                server.hooks.shutdown(request)
            }
        }
    }

    private func closeAfterFlush(context: ChannelHandlerContext) {
        needsFlush = false
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
        let channel = context.channel
        promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
            if !context.channel.isWritable { paused = true }
        }
        context.fireChannelReadComplete()
    }

    // Back-pressure: no more reads while replies pile up unsent or commands wait to run.
    func read(context: ChannelHandlerContext) {
        if paused || !context.channel.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if paused, let client {
                paused = false
                process(context: context, client: client)
                if needsFlush {
                    needsFlush = false
                    context.flush()
                }
            }
            if readPending && !paused && context.channel.isWritable {
                readPending = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
