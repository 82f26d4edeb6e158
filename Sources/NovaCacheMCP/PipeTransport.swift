import Foundation
import Logging
import MCP
import NIOCore
import NIOPosix

/// MCP's stdio framing (one JSON-RPC message per line) on a pair of pipes, event-driven through SwiftNIO.
///
/// The SDK's `StdioTransport` polls a non-blocking descriptor and sleeps 10 ms whenever it finds nothing,
/// which put 8 ms on every call through the gateway (measured with `scripts/bench-gateway`: a cache hit
/// took 10 ms against 2 ms for calling the Python upstream directly). This one is woken by the event loop
/// when a line arrives. It duplicates the descriptors it is given when created and owns the duplicates,
/// so the caller may close its own at once.
actor PipeTransport: Transport {
    nonisolated let logger: Logger
    /// Duplicates of the given descriptors, until `connect` hands them to SwiftNIO.
    private var owned: (input: CInt, output: CInt)?
    private var writer: NIOAsyncChannelOutboundWriter<ByteBuffer>?
    private var reading: Task<Void, Never>?
    private let stream: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    /// Lines longer than this end the connection (a peer that never sends a newline).
    static let maxMessageBytes = 64 << 20

    /// - Parameters:
    ///   - input: the descriptor messages are read from (a pipe, a socket or a terminal).
    ///   - output: the descriptor messages are written to.
    init(input: CInt, output: CInt, logger: Logger) {
        let ownedInput = dup(input), ownedOutput = dup(output)
        owned = ownedInput >= 0 && ownedOutput >= 0 ? (ownedInput, ownedOutput) : nil
        if owned == nil {
            if ownedInput >= 0 { close(ownedInput) }
            if ownedOutput >= 0 { close(ownedOutput) }
        }
        self.logger = logger
        (stream, continuation) = AsyncThrowingStream.makeStream()
    }

    deinit {
        if let owned {
            close(owned.input)
            close(owned.output)
        }
    }

    /// The process's own stdin and stdout.
    static func standard(logger: Logger) -> PipeTransport {
        PipeTransport(input: STDIN_FILENO, output: STDOUT_FILENO, logger: logger)
    }

    func connect() async throws {
        guard reading == nil else { return }
        guard let (ownedInput, ownedOutput) = owned else { throw MCPError.internalError("the descriptors could not be duplicated") }
        owned = nil
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .takingOwnershipOfDescriptors(input: ownedInput, output: ownedOutput) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
        } catch {
            close(ownedInput)
            close(ownedOutput)
            throw error
        }
        let (ready, readyContinuation) = AsyncStream<NIOAsyncChannelOutboundWriter<ByteBuffer>>.makeStream()
        reading = Task { [continuation, logger] in
            do {
                try await channel.executeThenClose { inbound, outbound in
                    readyContinuation.yield(outbound)
                    readyContinuation.finish()
                    var pending = ByteBuffer()
                    for try await var chunk in inbound {
                        pending.writeBuffer(&chunk)
                        while let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                            let length = newline - pending.readerIndex
                            let line = pending.readSlice(length: length)!
                            pending.moveReaderIndex(forwardBy: 1)
                            if line.readableBytes > 0 { continuation.yield(Data(line.readableBytesView)) }
                        }
                        guard pending.readableBytes <= Self.maxMessageBytes else { throw MCPError.parseError("a message longer than 64 MiB") }
                        pending.discardReadBytes()
                    }
                }
                continuation.finish()
            } catch {
                logger.debug("pipe transport ended", metadata: ["error": "\(error)"])
                continuation.finish(throwing: error)
            }
            readyContinuation.finish()
        }
        for await outbound in ready { writer = outbound }
        guard writer != nil else { throw MCPError.connectionClosed }
    }

    func disconnect() async {
        writer?.finish()
        writer = nil
        reading?.cancel()
        continuation.finish()
    }

    func send(_ data: Data) async throws {
        guard let writer else { throw MCPError.connectionClosed }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.count + 1)
        buffer.writeBytes(data)
        buffer.writeInteger(UInt8(ascii: "\n"))
        try await writer.write(buffer)
    }

    func receive() -> AsyncThrowingStream<Data, any Error> { stream }
}
