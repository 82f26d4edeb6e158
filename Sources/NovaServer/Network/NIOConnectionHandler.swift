import NIOCore
import NIOPosix

/// A connection carried by SwiftNIO (used where the epoll transport is not available, and for TLS).
final class NIOConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Replies produced per `Session.run` before checking that the peer keeps up.
    static let outputChunk = 256 * 1024

    /// Acts on a NIO connection from any thread.
    final class Control: ConnectionControl, @unchecked Sendable {
        let channel: any Channel
        /// The handler, touched only on the channel's event loop.
        var handler: NIOConnectionHandler?
        var context: ChannelHandlerContext?

        init(channel: any Channel) { self.channel = channel }

        func close() { channel.close(promise: nil) }

        func resume(with reply: ByteBuffer) {
            channel.eventLoop.execute { [self] in
                guard let handler, let context else { return }
                handler.resume(context, reply)
            }
        }

        /// Pushed bytes not yet written to the socket, and since when they exceed the soft limit (event
        /// loop only).
        private var pendingPushBytes = 0
        private var softLimitSince: Int64?

        func push(_ data: ByteBuffer, limit: OutputBufferLimit) {
            channel.eventLoop.execute { [self] in
                let size = data.readableBytes
                pendingPushBytes += size
                if !limit.isUnlimited
                    && limit.isExceeded(pending: pendingPushBytes, now: SystemClock.nowMilliseconds(), softSince: &softLimitSince) {
                    channel.close(promise: nil)
                    return
                }
                let written = channel.eventLoop.makePromise(of: Void.self)
                written.futureResult.whenComplete { [self] _ in pendingPushBytes -= size }
                channel.writeAndFlush(data, promise: written)
            }
        }
    }

    private let server: ServerCore
    private var session: Session?
    private var control: Control?
    private var output = ByteBuffer()
    private var needsFlush = false
    /// Waiting for the peer to take replies before running more commands or reading more.
    private var paused = false

    init(server: ServerCore) {
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let address = channel.remoteAddress.map(Self.describe) ?? "?:0"
        let local = channel.localAddress.map(Self.describe) ?? "?:0"
        let control = Control(channel: channel)
        control.handler = self
        control.context = context
        self.control = control
        guard let client = server.register(connection: control, address: address, localAddress: local) else {
            var buffer = context.channel.allocator.buffer(capacity: 64)
            buffer.writeString("-ERR max number of clients reached\r\n")
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        if let refusal = server.protectedModeRefusal(peer: address) {
            server.unregister(client)
            var buffer = context.channel.allocator.buffer(capacity: refusal.utf8.count)
            buffer.writeString(refusal)
            context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        session = Session(server: server, client: client, settings: server.withConnectionLock { server.config.settings })
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let session { server.unregister(session.client) }
        session = nil
        control?.handler = nil
        control?.context = nil
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
        guard let session else { return }
        var buffer = unwrapInboundIn(data)
        session.receive(&buffer)
        if !paused { run(context, session) }
    }

    private func run(_ context: ChannelHandlerContext, _ session: Session) {
        while true {
            let progress = session.run(into: &output, limit: Self.outputChunk)
            if output.readableBytes > 0 {
                session.sent(output.readableBytes)
                context.write(wrapOutboundOut(output), promise: nil)
                output = ByteBuffer()
                needsFlush = true
            }
            switch progress {
            case .waiting:
                return
            case .close:
                needsFlush = false
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
                return
            case .outputFull:
                needsFlush = false
                context.flush()
                if !context.channel.isWritable {
                    pause(context)
                    return
                }
            }
        }
    }

    /// A blocked command was served: its reply goes first, then the pending input runs.
    func resume(_ context: ChannelHandlerContext, _ reply: ByteBuffer) {
        guard let session else { return }
        session.unblocked()
        context.write(wrapOutboundOut(reply), promise: nil)
        needsFlush = true
        if !paused { run(context, session) }
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
            if !context.channel.isWritable { pause(context) }
        }
        context.fireChannelReadComplete()
    }

    private func pause(_ context: ChannelHandlerContext) {
        guard !paused else { return }
        paused = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, paused, let session {
            paused = false
            run(context, session)
            if needsFlush {
                needsFlush = false
                context.flush()
            }
            if !paused {
                context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
