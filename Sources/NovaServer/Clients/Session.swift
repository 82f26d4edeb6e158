package import NIOCore
import NovaRESP

/// Lets the server act on a connection from any thread (CLIENT KILL, shutdown), whatever carries it.
package protocol ConnectionControl: AnyObject, Sendable {
    /// Closes the connection once the replies already produced for it are written.
    func close()
    /// Delivers the reply of a blocked command that was served, then resumes running the client's input.
    func resume(with reply: ByteBuffer)
    /// Sends out-of-band data (pub/sub messages, invalidations) without running commands; closes the
    /// connection instead when the output it has not sent yet breaks `limit`.
    func push(_ data: ByteBuffer, limit: OutputBufferLimit)
}

/// The transport-independent part of a client connection: decodes the bytes received, runs the commands
/// in batches under the server lock and appends the replies to an output buffer.
///
/// The I/O layer (the epoll loop, or SwiftNIO for TLS and other platforms) feeds bytes in with `receive`,
/// calls `run` and writes the output. `run` stops once the output reaches the caller's limit, so that a
/// peer that does not read its replies cannot make the server buffer without bound.
final class Session {
    /// What `run` left to do.
    enum Progress {
        /// Every complete command ran; waiting for more input.
        case waiting
        /// Commands are still pending because the output reached its limit: write it, then call `run` again.
        case outputFull
        /// Write the output, then close the connection.
        case close
    }

    /// Commands decoded per batch (bounds the batch arrays).
    static let maxBatch = 4096

    let server: ServerCore
    let client: ClientState
    private var inbound = ByteBuffer()
    private var decoder: RequestDecoder
    private var batch = CommandBatch()
    private var batchIndex = 0
    private var pendingProtocolError: RESPProtocolError?
    private let queryBufferLimit: Int
    /// Traffic not yet reported to the server's statistics.
    private var bytesRead = 0
    private var bytesWritten = 0
    /// The encoded size of the batch being run, and the most input held at once (CLIENT LIST).
    private var batchBytes = 0
    private var inputPeak = 0

    init(server: ServerCore, client: ClientState, settings: ServerSettings) {
        self.server = server
        self.client = client
        self.decoder = RequestDecoder(maxBulkLength: settings.protoMaxBulkLength)
        self.queryBufferLimit = settings.clientQueryBufferLimit
    }

    /// Appends received bytes (without copying when nothing is buffered).
    func receive(_ buffer: inout ByteBuffer) {
        bytesRead += buffer.readableBytes
        if inbound.readableBytes == 0 {
            inbound = buffer
        } else {
            inbound.writeBuffer(&buffer)
        }
    }

    /// Reads from a descriptor straight into the inbound buffer. Returns the byte count, 0 at end of
    /// file, or -errno.
    func receive(reading body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        if inbound.readableBytes == 0 && inbound.readerIndex > 0 { inbound.clear() }
        var result = 0
        inbound.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 * 1024) { pointer in
            result = body(pointer)
            return max(0, result)
        }
        if result > 0 { bytesRead += result }
        return result
    }

    /// Records bytes written to the peer.
    func sent(_ count: Int) { bytesWritten += count }

    /// Waiting for a blocked command to be served; input is kept but not run.
    private(set) var isBlocked = false

    /// The blocked command was served: its reply goes out and input runs again.
    func unblocked() { isBlocked = false }

    /// Runs the buffered commands, appending replies to `output` until it holds `limit` bytes.
    func run(into output: inout ByteBuffer, limit: Int) -> Progress {
        var references: [ReplyReference] = []
        var referencedBytes = 0
        return run(into: &output, references: &references, referencedBytes: &referencedBytes, acceptsReferences: false, limit: limit)
    }

    /// `run` for a transport that writes with `writev`: large values are not copied into `output` but
    /// appended to `references` (their bytes belong before `output`'s byte at each one's offset), with
    /// their total in `referencedBytes`; `limit` counts both.
    func run(
        into output: inout ByteBuffer, references: inout [ReplyReference], referencedBytes: inout Int,
        acceptsReferences: Bool, limit: Int
    ) -> Progress {
        if client.closeAfterReply { return .close }
        if isBlocked { return .waiting }
        while true {
            if batchIndex >= batch.count {
                decodeNextBatch()
                if batch.isEmpty {
                    if let error = pendingProtocolError { return refuse(error, output: &output) }
                    break
                }
            }
            if output.readableBytes + referencedBytes >= limit { return .outputFull }
            var writer = RESPWriter(buffer: output, version: client.protocolVersion)
            writer.acceptsReferences = acceptsReferences
            swap(&writer.references, &references)
            writer.referencedBytes = referencedBytes
            output = ByteBuffer()
            let buffers = BufferReport(
                unparsed: inbound.readableBytes, batchBytes: batchBytes, free: inbound.writableBytes,
                capacity: inbound.capacity, peak: inputPeak, pendingOutput: writer.pendingBytes)
            let actions = server.execute(
                batch, from: &batchIndex, client: client, reply: &writer, outputLimit: limit,
                bytesRead: bytesRead, bytesWritten: bytesWritten, buffers: buffers)
            bytesRead = 0
            bytesWritten = 0
            output = writer.buffer
            swap(&writer.references, &references)
            referencedBytes = writer.referencedBytes
            if !actions.isEmpty { perform(actions) }
            if client.closeAfterReply { return .close }
            if isBlocked { return .waiting }
        }
        if inbound.readableBytes == 0 {
            inbound.clear()
            if inbound.capacity > 1024 * 1024 { inbound = ByteBuffer() }
        } else if inbound.readableBytes > queryBufferLimit {
            server.logger.warning("Closing client that reached max query buffer length", metadata: ["client": "\(client.address)"])
            return .close
        } else if inbound.readerIndex > 64 * 1024 {
            inbound.discardReadBytes()
        }
        return .waiting
    }

    /// Replaces the batch that ran with the next commands buffered (none once a protocol error is pending).
    private func decodeNextBatch() {
        batch.removeAll()
        batchIndex = 0
        guard pendingProtocolError == nil else { return }
        // Unauthenticated clients run one command at a time: AUTH changes the limits that follow.
        decoder.isAuthenticated = client.isAuthenticated
        inputPeak = max(inputPeak, inbound.readableBytes)
        let before = inbound.readerIndex
        do {
            try decoder.decode(&inbound, into: &batch, maxCommands: client.isAuthenticated ? Self.maxBatch : 1)
        } catch {
            pendingProtocolError = error
        }
        batchBytes = inbound.readerIndex - before
    }

    /// The database and first key (second argument) of the next command `run` will run, decoding the
    /// buffered input when the last batch has run; nil when no command is ready. For prefetching only:
    /// the second argument of a command without keys is something else.
    func nextKey() -> (db: Int, key: ByteBuffer)? {
        if client.closeAfterReply || isBlocked { return nil }
        if batchIndex >= batch.count { decodeNextBatch() }
        guard batchIndex < batch.count else { return nil }
        let range = batch.range(of: batchIndex)
        return range.count >= 2 ? (client.database, batch.arguments[range.lowerBound + 1]) : nil
    }

    /// Answers a malformed request the way Redis does; the connection closes after the reply.
    private func refuse(_ error: RESPProtocolError, output: inout ByteBuffer) -> Progress {
        output.writeString("-ERR \(error.message)\r\n")
        server.logger.debug("Protocol error from client", metadata: ["client": "\(client.address)", "error": "\(error)"])
        server.withConnectionLock { client.closeAfterReply = true }
        return .close
    }

    private func perform(_ actions: [PostAction]) {
        for action in actions {
            switch action {
            case .close(let victim):
                victim.connection?.close()
            case .resume(let target, let reply):
                target.connection?.resume(with: reply)
            case .blocked:
                isBlocked = true
            case .shutdown(let request):
                server.hooks.shutdown(request)
            }
        }
    }
}
