#if os(Linux)
import Glibc
import CNovaSystem
import NIOCore
import NovaRESP
import NIOConcurrencyHelpers

/// The server's network transport on Linux: a few event-loop threads, each with its own epoll set, reading
/// requests straight into each connection's buffer and writing replies with one `write` per connection
/// per loop iteration.
///
/// It replaces SwiftNIO on the plain-TCP data path because NIO's per-event machinery cost more CPU per
/// request than all of Redis's user time (measurements in docs/execution-model.md). Connections are
/// level-triggered; a listener is shared by all loops with EPOLLEXCLUSIVE.
final class EpollTransport: @unchecked Sendable {
    private let server: ServerCore
    private let loops: [EpollLoop]
    private var listeners: [Int32] = []
    private let stopped = NIOLockedValueBox<(count: Int, waiters: [CheckedContinuation<Void, Never>])>((0, []))
    /// The TCP listeners (the Unix socket, if any, is not rebound).
    private var tcpListeners: [Int32] = []
    private let rebindLock = NIOLock()

    /// Opens a listener for every `bind` address on `port`; optional addresses (`-addr`) may fail.
    static func openTCPListeners(_ settings: ServerSettings) throws -> ([Int32], [(host: String, port: Int)]) {
        var fds: [Int32] = []
        var bound: [(String, Int)] = []
        for entry in settings.bind.isEmpty ? ["127.0.0.1"] : settings.bind {
            let optional = entry.hasPrefix("-")
            let host = optional ? String(entry.dropFirst()) : entry
            var port: Int32 = 0
            let fd = nova_listen(host, Int32(settings.port), Int32(settings.tcpBacklog), &port)
            if fd < 0 {
                if optional { continue }
                for listener in fds { close(listener) }
                throw TransportError(message: "Could not create server TCP listening socket \(host):\(settings.port): \(String(cString: strerror(-fd)))")
            }
            fds.append(fd)
            bound.append((host, Int(port)))
        }
        return (fds, bound)
    }

    /// Listens on the addresses and port of `settings` instead of the current ones (CONFIG SET port/bind).
    /// The new listeners are opened first, so a failure leaves the server as it was.
    func rebind(_ settings: ServerSettings) throws -> [(host: String, port: Int)] {
        try rebindLock.withLock {
            let (fresh, bound) = try Self.openTCPListeners(settings)
            let old = tcpListeners
            tcpListeners = fresh
            let remaining = NIOLockedValueBox(loops.count)
            for loop in loops {
                loop.execute {
                    loop.replaceListeners(removing: old, adding: fresh)
                    let last = remaining.withLockedValue { count -> Bool in
                        count -= 1
                        return count == 0
                    }
                    if last { for fd in old { close(fd) } }
                }
            }
            return bound
        }
    }

    init(server: ServerCore, threads: Int) {
        self.server = server
        let settings = server.withLock { server.config.settings }
        var loops: [EpollLoop] = []
        for index in 0..<max(1, threads) {
            loops.append(EpollLoop(index: index, server: server, settings: settings))
        }
        self.loops = loops
    }

    /// Binds every configured address and starts the loops. Returns the bound "host:port" strings.
    func start(settings: ServerSettings) throws -> [(host: String, port: Int)] {
        signal(SIGPIPE, SIG_IGN)
        let (tcp, bound) = try Self.openTCPListeners(settings)
        tcpListeners = tcp
        listeners = tcp
        if let path = settings.unixSocket, !path.isEmpty {
            let fd = nova_listen_unix(path, UInt32(settings.unixSocketPermissions), Int32(settings.tcpBacklog))
            if fd < 0 {
                for listener in listeners { close(listener) }
                listeners = []
                throw TransportError(message: "Failed opening Unix socket \(path): \(String(cString: strerror(-fd)))")
            }
            listeners.append(fd)
        }
        for loop in loops {
            try loop.open(listeners: listeners)
        }
        server.withLock {
            server.hooks.serveConnectionsWhileBusy = { [loops] in
                for loop in loops where loop.isCurrentThread { loop.serveWhileBusy() }
            }
        }
        for loop in loops {
            loop.start { [self] in self.loopStopped() }
        }
        return bound
    }

    private func loopStopped() {
        let waiters = stopped.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.count += 1
            guard state.count == loops.count else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Stops accepting, writes what is pending, closes every connection and ends the loop threads.
    func stop() async {
        for loop in loops { loop.execute { loop.shutdown() } }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = stopped.withLockedValue { state -> Bool in
                if state.count == loops.count { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        for listener in Set(listeners + tcpListeners) { close(listener) }
        listeners = []
        tcpListeners = []
    }
}

struct TransportError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Starts a detached OS thread running `body`.
func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    let result = pthread_create(&thread, nil, { argument in
        let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        box.body()
        return nil
    }, context)
    precondition(result == 0, "pthread_create failed: \(result)")
    pthread_detach(thread)
}

/// One event-loop thread.
final class EpollLoop: @unchecked Sendable {
    let index: Int
    let server: ServerCore
    let settings: ServerSettings
    private var epoll: Int32 = -1
    private var wakeup: Int32 = -1
    private var listeners: Set<Int32> = []
    /// Connections by descriptor (owned by this loop's thread).
    private var connections: [EpollConnection?] = []
    private var pendingFlush: [EpollConnection] = []
    private var running = true
    private let tasks = NIOLockedValueBox<[@Sendable () -> Void]>([])
    /// The loop's thread, once it runs.
    private var thread: pthread_t?
    /// The connection whose commands are running (a busy script's caller is never served meanwhile).
    var active: EpollConnection?
    private var servingWhileBusy = false
    /// Connections whose input this turn read, to run once all are read (`runReceived`), and the next
    /// of them to run.
    private var received: [EpollConnection] = []
    private var receivedNext = 0
    /// Their next commands' first keys (kept between turns for its capacity).
    private var receivedKeys: [(db: Int, key: ByteBuffer)] = []

    init(index: Int, server: ServerCore, settings: ServerSettings) {
        self.index = index
        self.server = server
        self.settings = settings
    }

    func open(listeners: [Int32]) throws {
        epoll = nova_epoll_create()
        wakeup = nova_eventfd()
        guard epoll >= 0, wakeup >= 0 else {
            throw TransportError(message: "epoll/eventfd: \(String(cString: strerror(-min(epoll, wakeup))))")
        }
        let added = nova_epoll_add(epoll, wakeup, 1, 0, 0)
        guard added == 0 else { throw TransportError(message: "epoll_ctl: \(String(cString: strerror(-added)))") }
        for listener in listeners {
            let result = nova_epoll_add(epoll, listener, 1, 0, 1)
            guard result == 0 else { throw TransportError(message: "epoll_ctl: \(String(cString: strerror(-result)))") }
            self.listeners.insert(listener)
        }
    }

    func start(onStop: @escaping @Sendable () -> Void) {
        startThread { [self] in
            run()
            onStop()
        }
    }

    /// Stops watching `old` listeners and starts watching `new` ones (on this loop's thread).
    func replaceListeners(removing old: [Int32], adding new: [Int32]) {
        for fd in old where listeners.contains(fd) {
            _ = nova_epoll_remove(epoll, fd)
            listeners.remove(fd)
        }
        guard running else { return }
        for fd in new where nova_epoll_add(epoll, fd, 1, 0, 1) == 0 {
            listeners.insert(fd)
        }
    }

    /// Runs `task` on this loop's thread (callable from any thread).
    func execute(_ task: @escaping @Sendable () -> Void) {
        tasks.withLockedValue { $0.append(task) }
        nova_eventfd_signal(wakeup)
    }

    /// Whether the caller runs on this loop's thread.
    var isCurrentThread: Bool {
        guard let thread else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    /// Serves this loop's connections once without waiting, from a script running on this thread past
    /// `busy-reply-threshold` (their commands get BUSY, or run when allowed). The script's own connection
    /// is left alone, and so are queued tasks (pushed messages, resumed clients): they wait for its end.
    func serveWhileBusy() {
        guard !servingWhileBusy else { return }
        servingWhileBusy = true
        defer { servingWhileBusy = false }
        var fds = [Int32](repeating: 0, count: 64)
        var flags = [UInt32](repeating: 0, count: 64)
        let count = nova_epoll_wait(epoll, &fds, &flags, 64, 0)
        for i in 0..<Int(max(0, count)) {
            let fd = fds[i]
            if fd == wakeup { continue }
            if listeners.contains(fd) {
                accept(from: fd)
            } else if let connection = connection(fd), connection !== active {
                if flags[i] & 2 != 0 { connection.writable() }
                if flags[i] & 1 != 0 { connection.readable() }
            }
        }
        // Input this turn read before the script began runs now, as it would have had it come later.
        processReceived()
        let waiting = pendingFlush.filter { $0 === active }
        pendingFlush.removeAll { $0 === active }
        flushPending()
        pendingFlush = waiting
    }

    private func run() {
        thread = pthread_self()
        var fds = [Int32](repeating: 0, count: 256)
        var flags = [UInt32](repeating: 0, count: 256)
        while running {
            let count = nova_epoll_wait(epoll, &fds, &flags, 256, -1)
            if count < 0 {
                server.logger.critical("epoll_wait failed: \(String(cString: strerror(-count)))")
                break
            }
            // Tasks first: data pushed to a connection (a published message) before a client's next
            // command arrived must go out before that command's reply, as in Redis.
            runTasks()
            for i in 0..<Int(count) {
                let fd = fds[i]
                if fd == wakeup {
                    nova_eventfd_drain(wakeup)
                    runTasks()
                } else if listeners.contains(fd) {
                    accept(from: fd)
                } else if let connection = connection(fd) {
                    if flags[i] & 2 != 0 { connection.writable() }
                    if flags[i] & 1 != 0 && connection.receive() { received.append(connection) }
                }
            }
            runReceived()
            flushPending()
        }
        for case let connection? in connections { connection.closeNow() }
        connections = []
        close(epoll)
        close(wakeup)
    }

    /// Runs the input this turn read, connection by connection, after prefetching what their next
    /// commands look up: with 50 clients sending one command each, a turn reads about 25 of them, whose
    /// lookups' cache misses then overlap instead of following one another.
    private func runReceived() {
        if received.count >= 2 {
            for connection in received {
                if let next = connection.session?.nextKey() { receivedKeys.append(next) }
            }
            server.prefetch(nextKeys: receivedKeys)
            receivedKeys.removeAll(keepingCapacity: true)
        }
        processReceived()
        received.removeAll(keepingCapacity: true)
        receivedNext = 0
    }

    /// Runs the connections of `received` not run yet (a busy script's own connection, the active one,
    /// is running already).
    private func processReceived() {
        while receivedNext < received.count {
            let connection = received[receivedNext]
            receivedNext += 1
            if connection !== active { connection.process() }
        }
    }

    private func runTasks() {
        let pending = tasks.withLockedValue { tasks -> [@Sendable () -> Void] in
            defer { tasks = [] }
            return tasks
        }
        for task in pending { task() }
    }

    private func connection(_ fd: Int32) -> EpollConnection? {
        let index = Int(fd)
        return index < connections.count ? connections[index] : nil
    }

    /// The open connection `handle` belongs to (a closed one's descriptor may serve another by now).
    func connection(of handle: EpollConnectionHandle) -> EpollConnection? {
        guard let connection = connection(handle.fd), connection.handle === handle else { return nil }
        return connection
    }

    private func accept(from listener: Int32) {
        var peer = [CChar](repeating: 0, count: 128)
        var local = [CChar](repeating: 0, count: 128)
        while true {
            let fd = nova_accept(listener, Int32(settings.tcpKeepalive), &peer, 128, &local, 128)
            if fd < 0 {
                if -fd != EAGAIN && -fd != EWOULDBLOCK {
                    server.logger.warning("Accepting client connection: \(String(cString: strerror(-fd)))")
                }
                return
            }
            let address = peer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let localAddress = local.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let connection = EpollConnection(loop: self, fd: fd)
            guard let client = server.register(connection: connection.handle, address: address, localAddress: localAddress) else {
                let message = "-ERR max number of clients reached\r\n"
                _ = message.withCString { nova_write(fd, $0, strlen($0)) }
                Glibc.close(fd)
                continue
            }
            if let refusal = server.protectedModeRefusal(peer: address) {
                server.unregister(client)
                _ = refusal.withCString { nova_write(fd, $0, strlen($0)) }
                // Half-close and drop what the client already sent, so that closing does not reset the
                // connection before the client has read the explanation.
                Glibc.shutdown(fd, Int32(SHUT_WR))
                var scratch = [UInt8](repeating: 0, count: 4096)
                while scratch.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) > 0 {}
                Glibc.close(fd)
                continue
            }
            connection.session = Session(server: server, client: client, settings: settings)
            let index = Int(fd)
            if index >= connections.count {
                connections.append(contentsOf: repeatElement(nil, count: index - connections.count + 1))
            }
            connections[index] = connection
            _ = nova_epoll_add(epoll, fd, 1, 0, 0)
        }
    }

    func scheduleFlush(_ connection: EpollConnection) {
        guard !connection.queuedForFlush else { return }
        connection.queuedForFlush = true
        pendingFlush.append(connection)
    }

    private func flushPending() {
        // Writing may queue more connections (a resumed reader); handle those in the next round.
        while !pendingFlush.isEmpty {
            let batch = pendingFlush
            pendingFlush.removeAll(keepingCapacity: true)
            for connection in batch {
                connection.queuedForFlush = false
                connection.flush()
            }
        }
    }

    func updateInterest(_ connection: EpollConnection, readable: Bool, writable: Bool) {
        _ = nova_epoll_modify(epoll, connection.fd, readable ? 1 : 0, writable ? 1 : 0)
    }

    func forget(_ connection: EpollConnection) {
        _ = nova_epoll_remove(epoll, connection.fd)
        if connection.fd < connections.count && connections[Int(connection.fd)] === connection {
            connections[Int(connection.fd)] = nil
        }
    }

    /// Stops accepting and closes connections once their pending replies are written.
    func shutdown() {
        for listener in listeners { _ = nova_epoll_remove(epoll, listener) }
        listeners = []
        for case let connection? in connections {
            connection.flush()
            connection.closeNow()
        }
        running = false
    }
}

/// What other threads hold of an `EpollConnection` (the client's state refers to it, weakly, for CLIENT
/// KILL, a served blocked command, a published message): each call hops to the loop's thread and acts on
/// the connection registered there under `fd` if it is still this handle's. The connection itself is never
/// referenced weakly: that would move every retain and release of it — several per command — to a side
/// table.
final class EpollConnectionHandle: ConnectionControl, @unchecked Sendable {
    unowned let loop: EpollLoop
    let fd: Int32

    init(loop: EpollLoop, fd: Int32) {
        self.loop = loop
        self.fd = fd
    }

    func close() {
        loop.execute { [self] in loop.connection(of: self)?.close() }
    }

    func resume(with reply: ByteBuffer) {
        loop.execute { [self] in loop.connection(of: self)?.resume(with: reply) }
    }

    func push(_ data: ByteBuffer, limit: OutputBufferLimit) {
        loop.execute { [self] in loop.connection(of: self)?.push(data, limit: limit) }
    }
}

/// One client connection on an epoll loop. All state is touched only on the loop's thread; other threads
/// act on it through its `handle`.
final class EpollConnection: @unchecked Sendable {
    /// Replies produced per `Session.run` before they are written out.
    static let outputChunk = 256 * 1024

    unowned let loop: EpollLoop
    let fd: Int32
    var session: Session?
    private var output = ByteBuffer()
    /// Large values the replies in `output` refer to, in order, the first possibly partly sent.
    private var references: [ReplyReference] = []
    /// Bytes of `references[0]` already sent.
    private var referenceSent = 0
    /// Bytes of `references` not sent yet.
    private var referencedBytes = 0
    private var wantsWrite = false
    private var readPaused = false
    private var closing = false
    private var closed = false
    var queuedForFlush = false
    /// When the unsent output first exceeded the soft output-buffer limit.
    private var softLimitSince: Int64?

    /// What other threads hold of this connection.
    let handle: EpollConnectionHandle

    init(loop: EpollLoop, fd: Int32) {
        self.loop = loop
        self.fd = fd
        handle = EpollConnectionHandle(loop: loop, fd: fd)
    }

    /// Closes the connection once the replies already produced are written (`ConnectionControl.close`,
    /// on the loop's thread).
    func close() {
        closing = true
        flush()
    }

    /// `ConnectionControl.resume(with:)` on the loop's thread.
    func resume(with reply: ByteBuffer) {
        guard !closed, let session else { return }
        session.unblocked()
        var reply = reply
        output.writeBuffer(&reply)
        process()
        if hasPendingOutput { loop.scheduleFlush(self) }
    }

    /// `ConnectionControl.push(_:limit:)` on the loop's thread.
    func push(_ data: ByteBuffer, limit: OutputBufferLimit) {
        guard !closed, !closing else { return }
        var data = data
        output.writeBuffer(&data)
        if !limit.isUnlimited
            && limit.isExceeded(pending: output.readableBytes + referencedBytes, now: SystemClock.nowMilliseconds(), softSince: &softLimitSince) {
            loop.server.logger.warning(
                "Client closed for overcoming of output buffer limits.",
                metadata: ["client": "\(session?.client.address ?? "?")", "pending": "\(output.readableBytes + referencedBytes)"])
            closeNow()
            return
        }
        loop.scheduleFlush(self)
    }

    func readable() {
        if receive() { process() }
    }

    /// Reads what the peer sent into the session; true when there is input to run (`process`).
    func receive() -> Bool {
        guard !closed, !readPaused, !closing, let session else { return false }
        let count = session.receive { buffer in nova_read(fd, buffer.baseAddress, buffer.count) }
        if count == 0 || (count < 0 && -count != EAGAIN && -count != EWOULDBLOCK) {
            closeNow()
            return false
        }
        return count > 0
    }

    /// Runs the session's buffered commands and queues their replies for writing.
    func process() {
        let outer = loop.active
        loop.active = self
        defer { loop.active = outer }
        while !closed, let session {
            let progress = session.run(
                into: &output, references: &references, referencedBytes: &referencedBytes, acceptsReferences: true,
                limit: Self.outputChunk)
            switch progress {
            case .waiting:
                if hasPendingOutput { loop.scheduleFlush(self) }
                return
            case .close:
                closing = true
                flush()
                return
            case .outputFull:
                flush()
                if closed || hasPendingOutput {
                    // The peer is not taking replies: stop reading until it does (back-pressure).
                    if !closed && !readPaused {
                        readPaused = true
                        loop.updateInterest(self, readable: false, writable: true)
                    }
                    return
                }
            }
        }
    }

    func writable() { flush() }

    /// Whether replies are waiting to be written.
    private var hasPendingOutput: Bool { output.readableBytes > 0 || !references.isEmpty }

    /// Writes as much of the pending output as the socket takes: one `write` of the buffer, or a
    /// `writev` of the buffer's pieces and the referenced values between them. Returns the byte count or
    /// -errno.
    private func writePending() -> Int {
        guard !references.isEmpty else {
            return output.withUnsafeReadableBytes { nova_write(fd, $0.baseAddress, $0.count) }
        }
        let maxPieces = 64
        return output.withUnsafeReadableBytes { pending in
            withUnsafeTemporaryAllocation(of: iovec.self, capacity: maxPieces) { pieces in
                let start = output.readerIndex
                var position = start
                var count = 0
                var complete = true
                for (index, reference) in references.enumerated() {
                    if count + 2 > maxPieces {
                        complete = false
                        break
                    }
                    if reference.offset > position {
                        pieces[count] = iovec(
                            iov_base: UnsafeMutableRawPointer(mutating: pending.baseAddress! + (position - start)),
                            iov_len: reference.offset - position)
                        count += 1
                        position = reference.offset
                    }
                    let skip = index == 0 ? referenceSent : 0
                    pieces[count] = iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: reference.bytes.baseAddress! + skip),
                        iov_len: reference.bytes.count - skip)
                    count += 1
                }
                if complete && position < start + pending.count {
                    pieces[count] = iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: pending.baseAddress! + (position - start)),
                        iov_len: start + pending.count - position)
                    count += 1
                }
                return nova_writev(fd, pieces.baseAddress, Int32(count))
            }
        }
    }

    /// Marks `written` bytes of the pending output as sent, in order across the buffer and the references.
    private func consume(_ written: Int) {
        var left = written
        while left > 0 {
            guard let first = references.first else {
                output.moveReaderIndex(forwardBy: left)
                return
            }
            let before = first.offset - output.readerIndex
            if before > 0 {
                let take = min(before, left)
                output.moveReaderIndex(forwardBy: take)
                left -= take
                continue
            }
            let take = min(first.bytes.count - referenceSent, left)
            referenceSent += take
            referencedBytes -= take
            left -= take
            if referenceSent == first.bytes.count {
                references.removeFirst()
                referenceSent = 0
            }
        }
    }

    /// Writes pending replies; closes when closing and done; resumes a paused reader once drained.
    func flush() {
        guard !closed else { return }
        while hasPendingOutput {
            let written = writePending()
            if written > 0 {
                consume(written)
                session?.sent(written)
            } else if -written == EAGAIN || -written == EWOULDBLOCK {
                break
            } else {
                closeNow()
                return
            }
        }
        if hasPendingOutput {
            if !wantsWrite {
                wantsWrite = true
                loop.updateInterest(self, readable: !readPaused && !closing, writable: true)
            }
            return
        }
        if output.capacity > 1024 * 1024 { output = ByteBuffer() } else { output.clear() }
        if closing {
            closeNow()
            return
        }
        if wantsWrite || readPaused {
            wantsWrite = false
            let resume = readPaused
            readPaused = false
            loop.updateInterest(self, readable: true, writable: false)
            if resume { process() }
        }
    }

    func closeNow() {
        guard !closed else { return }
        closed = true
        output = ByteBuffer()
        references = []
        referencedBytes = 0
        loop.forget(self)
        Glibc.close(fd)
        if let session { loop.server.unregister(session.client) }
        // Nothing may keep a closed connection's buffers: its session goes with it.
        session = nil
    }
}
#endif
