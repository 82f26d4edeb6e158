import NIOCore
import NovaRESP

/// One client connection: decodes requests, runs each read's commands as one batch under the server lock,
/// writes all replies with one flush per read, and stops reading while the peer is not taking replies.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ServerCore
    private var client: ClientState?
    private var inbound = ByteBuffer()
    private var decoder: RequestDecoder
    private var batch = CommandBatch()
    private var output = ByteBuffer()
    private var needsFlush = false
    private var readPending = false
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
        process(context: context, client: client)
    }

    private func process(context: ChannelHandlerContext, client: ClientState) {
        while true {
            var protocolError: RESPProtocolError? = nil
            // Unauthenticated clients run one command at a time: AUTH changes the limits for what follows.
            let limit = client.isAuthenticated ? Int.max : 1
            decoder.isAuthenticated = client.isAuthenticated
            do {
                try decoder.decode(&inbound, into: &batch, maxCommands: limit)
            } catch {
                protocolError = error
            }
            if batch.isEmpty && protocolError == nil { break }
            if output.capacity > 64 * 1024 { output = context.channel.allocator.buffer(capacity: 4096) }
            output.clear()
            var writer = RESPWriter(buffer: output, version: client.protocolVersion)
            output = ByteBuffer()
            let actions = server.execute(batch, client: client, reply: &writer, bytesRead: bytesRead, bytesWritten: bytesWritten)
            bytesRead = 0
            bytesWritten = 0
            batch.removeAll()
            if let protocolError {
                writer.error(protocolError.message)
                client.closeAfterReply = true
                server.logger.debug("Protocol error from client", metadata: ["client": "\(client.address)", "error": "\(protocolError)"])
            }
            if writer.buffer.readableBytes > 0 {
                bytesWritten += writer.buffer.readableBytes
                context.write(wrapOutboundOut(writer.buffer), promise: nil)
                needsFlush = true
            }
            output = writer.buffer
            perform(actions)
            if client.closeAfterReply {
                closeAfterFlush(context: context)
                return
            }
            if limit == .max { break }
        }
        if inbound.readableBytes == 0 {
            inbound = ByteBuffer()
        } else if inbound.readableBytes > queryBufferLimit {
            server.logger.warning("Closing client that reached max query buffer length", metadata: ["client": "\(client.address)"])
            client.closeAfterReply = true
            closeAfterFlush(context: context)
        } else if inbound.readerIndex > 64 * 1024 {
            inbound.discardReadBytes()
        }
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
        }
        context.fireChannelReadComplete()
    }

    // Back-pressure: while replies are piling up unsent, stop reading more requests.
    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readPending {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
