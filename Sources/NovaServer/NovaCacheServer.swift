public import NIOCore
public import NIOPosix
import NIOConcurrencyHelpers
public import Logging
public import ServiceLifecycle
import NovaEngine

/// The network server as a swift-service-lifecycle `Service`: listens on the configured addresses, runs
/// the periodic tasks (active expiry, memory and rate sampling, idle timeouts), and shuts down gracefully
/// on SIGTERM/SIGINT or SHUTDOWN: stop accepting, let replies in flight go out, close connections.
public final class NovaCacheServer: Service, @unchecked Sendable {
    /// The shared state every connection works on.
    public let core: ServerCore
    private let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    private let shutdownRequests: AsyncStream<ShutdownRequest>
    private let shutdownContinuation: AsyncStream<ShutdownRequest>.Continuation
    private let state = NIOLockedValueBox(State())

    private struct State {
        var listeners: [any Channel] = []
        var boundAddresses: [SocketAddress] = []
        var cron: RepeatedTask?
        var started = false
    }

    /// Creates a server for `config`. `threads` event loops serve connections (default: one per core).
    public init(config: ConfigStore, logger: Logger, threads: Int = System.coreCount, group: MultiThreadedEventLoopGroup? = nil) {
        self.core = ServerCore(config: config, logger: logger)
        if let group {
            self.group = group
            self.ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
            self.ownsGroup = true
        }
        (shutdownRequests, shutdownContinuation) = AsyncStream.makeStream(of: ShutdownRequest.self)
        let continuation = shutdownContinuation
        core.hooks.shutdown = { request in continuation.yield(request) }
    }

    /// The addresses the server listens on, once started.
    public var boundAddresses: [SocketAddress] { state.withLockedValue { $0.boundAddresses } }

    /// Binds the listeners and starts the periodic tasks. Throws when no address could be bound.
    public func start() async throws {
        let settings = core.withLock { core.config.settings }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: Int32(settings.tcpBacklog))
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: settings.tcpKeepalive > 0 ? 1 : 0)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 * 1024, high: 1024 * 1024))
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [core] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: core))
                }
            }
        var listeners: [any Channel] = []
        for entry in settings.bind.isEmpty ? ["127.0.0.1"] : settings.bind {
            let optional = entry.hasPrefix("-")
            var host = optional ? String(entry.dropFirst()) : entry
            if host == "*" { host = "0.0.0.0" }
            if host == "::*" { host = "::" }
            do {
                listeners.append(try await bootstrap.bind(host: host, port: settings.port).get())
            } catch {
                if optional { continue }
                for listener in listeners { try? await listener.close() }
                core.logger.critical("Could not create server TCP listening socket \(host):\(settings.port): \(error)")
                throw error
            }
        }
        let addresses = listeners.compactMap(\.localAddress)
        core.withLock { core.listeningPort = addresses.first?.port ?? settings.port }
        let cron = scheduleCron(hz: settings.hz)
        state.withLockedValue {
            $0.listeners = listeners
            $0.boundAddresses = addresses
            $0.cron = cron
            $0.started = true
        }
        for address in addresses {
            core.logger.notice("Ready to accept connections tcp", metadata: ["address": "\(address)"])
        }
    }

    /// Service entry point: starts, then runs until graceful shutdown or SHUTDOWN.
    public func run() async throws {
        if !state.withLockedValue({ $0.started }) { try await start() }
        let continuation = shutdownContinuation
        let request: ShutdownRequest = await withGracefulShutdownHandler {
            var iterator = shutdownRequests.makeAsyncIterator()
            return await iterator.next() ?? ShutdownRequest()
        } onGracefulShutdown: {
            continuation.yield(ShutdownRequest())
        }
        await stop(request)
    }

    /// Asks a running server to shut down (as the SHUTDOWN command does).
    public func requestShutdown(_ request: ShutdownRequest = ShutdownRequest()) {
        shutdownContinuation.yield(request)
    }

    /// Stops accepting, closes every connection once its pending replies are written, and stops the loops.
    public func stop(_ request: ShutdownRequest = ShutdownRequest()) async {
        let (listeners, cron) = state.withLockedValue { state -> ([any Channel], RepeatedTask?) in
            defer {
                state.listeners = []
                state.cron = nil
            }
            return (state.listeners, state.cron)
        }
        core.logger.notice("Received shutdown request, preparing to shut down")
        cron?.cancel()
        for listener in listeners { try? await listener.close() }
        let channels = core.withLock { core.clients.values.compactMap(\.channel) }
        for channel in channels {
            try? await channel.writeAndFlush(ByteBuffer()).get()
            try? await channel.close()
        }
        if ownsGroup { try? await group.shutdownGracefully() }
        core.logger.notice("NovaCache is now ready to exit, bye bye...")
        shutdownContinuation.finish()
    }

    // MARK: Periodic tasks

    private func scheduleCron(hz: Int) -> RepeatedTask {
        let interval = TimeAmount.milliseconds(Int64(1000 / max(1, min(hz, 500))))
        return group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { [core] _ in
            Self.cron(core)
        }
    }

    /// One tick: active expiry within a time budget, memory and rate samples, idle-client timeouts.
    static func cron(_ core: ServerCore) {
        let start = SystemClock.monotonicNanoseconds()
        let effort = core.withLock { core.config.settings.activeExpireEffort }
        let budget = UInt64(1_000_000 * effort)
        // Small chunks keep the lock hold short; other clients get in between chunks. Stop after one full
        // sweep or when the time budget is spent; the next tick continues where this one stopped.
        var visited = 0
        while true {
            let (segments, total) = core.withLock { () -> (Int, Int) in
                core.keyspace.now = SystemClock.nowMilliseconds()
                let visited = core.keyspace.activeExpireCycle(maxExamined: 2048).visitedSegments
                return (visited, core.keyspace.databases.count * Database.segmentCount)
            }
            visited += segments
            if visited >= total { break }
            if SystemClock.monotonicNanoseconds() &- start > budget {
                core.withLock { core.keyspace.stats.expiredTimeCapReachedCount += 1 }
                break
            }
        }
        var idle: [any Channel] = []
        core.withLock {
            let now = SystemClock.nowMilliseconds()
            core.sampleMemory()
            core.opsSamples.record(value: core.stats.totalCommandsProcessed, at: now)
            core.inputSamples.record(value: core.stats.netInputBytes, at: now)
            core.outputSamples.record(value: core.stats.netOutputBytes, at: now)
            let maxMemory = core.config.settings.maxMemory
            if maxMemory > 0 { _ = core.enforceMaxMemory(maxMemory) }
            let timeout = Int64(core.config.settings.timeout) * 1000
            if timeout > 0 {
                for client in core.clients.values where now - client.lastInteraction > timeout {
                    if let channel = client.channel { idle.append(channel) }
                }
            }
        }
        for channel in idle { channel.close(promise: nil) }
    }
}
