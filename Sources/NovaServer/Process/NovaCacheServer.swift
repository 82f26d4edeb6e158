#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
package import Logging
import ServiceLifecycle
import NovaEngine
import NovaObservability

/// A configuration problem found while starting (ACL rules, …).
package struct StartupError: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

/// The network server as a swift-service-lifecycle `Service`: listens on the configured addresses, runs
/// the periodic tasks (active expiry, memory and rate sampling, idle timeouts), and shuts down gracefully
/// on SIGTERM/SIGINT or SHUTDOWN: stop accepting, let replies in flight go out, close connections.
package final class NovaCacheServer: Service, @unchecked Sendable {
    /// The shared state every connection works on.
    package let core: ServerCore
    private let threads: Int
    private let shutdownRequests: AsyncStream<ShutdownRequest>
    private let shutdownContinuation: AsyncStream<ShutdownRequest>.Continuation
    private let state = NIOLockedValueBox(State())

    private struct State {
        var started = false
        var stopped = false
        var cronRunning = false
        var bound: [(host: String, port: Int)] = []
        #if os(Linux)
        var transport: EpollTransport?
        #endif
        var group: MultiThreadedEventLoopGroup?
        var listeners: [any Channel] = []
        var tls: TLSListener?
        var http: ObservabilityHTTPServer?
    }

    /// Which network transport carries plain TCP connections.
    package enum TransportKind: Sendable {
        /// The epoll event loops (Linux; the default there).
        case epoll
        /// SwiftNIO (the default elsewhere).
        case nio
    }

    private let transportKind: TransportKind

    /// One event-loop thread per core.
    package static var defaultThreads: Int { System.coreCount }

    /// Creates a server for `config`, serving connections on `threads` event-loop threads.
    package init(
        config: ConfigStore, logger: Logger, threads: Int = NovaCacheServer.defaultThreads,
        transport: TransportKind? = nil
    ) {
        self.core = ServerCore(config: config, logger: logger)
        self.threads = max(1, threads)
        #if os(Linux)
        self.transportKind = transport ?? .epoll
        #else
        self.transportKind = .nio
        #endif
        (shutdownRequests, shutdownContinuation) = AsyncStream.makeStream(of: ShutdownRequest.self)
        let continuation = shutdownContinuation
        core.hooks.shutdown = { request in continuation.yield(request) }
    }

    /// The (host, port) pairs the server listens on, once started.
    package var boundAddresses: [(host: String, port: Int)] { state.withLockedValue { $0.bound } }

    /// Binds the listeners and starts the loops and the periodic tasks. Throws when an address cannot be
    /// bound.
    package func start() async throws {
        if let problem = core.loadUsersAtStartup() {
            throw StartupError(message: problem.hasPrefix("*** FATAL") ? problem : "Aborting startup because of ACL errors: \(problem)")
        }
        let settings = core.withLock { core.config.settings }
        // The alerts' first sample, before any connection: a rejection in the first second counts.
        core.withLock {
            core.lastAlertCheck = SystemClock.nowMilliseconds()
            core.checkAlerts()
        }
        // Clients may connect while the dataset loads; they get -LOADING until it is in memory.
        // With appendonly yes the AOF wins when it exists (as Redis); otherwise the snapshot is loaded and,
        // with appendonly yes, a first AOF is written from it before any write is accepted.
        let snapshotPath = settings.dir + "/" + settings.dbFilename
        let appendOnly: AppendOnlyFile? = settings.appendOnly
            ? core.withLock { core.makeAppendOnlyFile() } : nil
        let loadAOF = appendOnly.map { FileIO.size($0.manifestPath) != nil } ?? false
        let loadSnapshot = !loadAOF && FileIO.size(snapshotPath) != nil
        if loadAOF || loadSnapshot || appendOnly != nil {
            core.withLock {
                core.snapshots.loading = true
                core.snapshots.loadingStart = SystemClock.nowMilliseconds()
            }
        }
        let bound: [(host: String, port: Int)]
        #if os(Linux)
        if transportKind == .epoll {
            let transport = EpollTransport(server: core, threads: threads)
            bound = try transport.start(settings: settings)
            state.withLockedValue { $0.transport = transport }
            core.hooks.rebind = { [core] settings in
                do {
                    let bound = try transport.rebind(settings)
                    core.listeningPort = bound.first?.port ?? settings.port
                    for (host, port) in bound {
                        core.logger.notice("Ready to accept connections tcp", metadata: ["address": "\(host):\(port)"])
                    }
                    return nil
                } catch {
                    return "\(error)"
                }
            }
        } else {
            bound = try await startNIO(settings)
        }
        #else
        bound = try await startNIO(settings)
        #endif
        core.withLock { core.listeningPort = bound.first?.port ?? settings.port }
        if settings.tls.port > 0 {
            let listener = try TLSListener(server: core, tls: settings.tls, threads: threads)
            for (host, port) in try await listener.start(settings) {
                core.logger.notice("Ready to accept connections tls", metadata: ["address": "\(host):\(port)"])
            }
            state.withLockedValue { $0.tls = listener }
            core.hooks.reloadTLS = { tls in listener.reload(tls) }
        }
        if settings.httpPort > 0 {
            // The pages use the RESP port's certificates when TLS is on.
            let context = settings.tls.port > 0 ? try TLSListener.makeContext(settings.tls) : nil
            let http = ObservabilityHTTPServer(source: ServerObservationSource(server: core), tls: context)
            do {
                for (host, port) in try await http.start(hosts: settings.bind, port: settings.httpPort) {
                    core.logger.notice("Ready to accept connections http\(context == nil ? "" : "s") (dashboard, /metrics)", metadata: ["address": "\(host):\(port)"])
                }
            } catch {
                await http.stop()
                throw error
            }
            state.withLockedValue { $0.http = http }
        }
        state.withLockedValue {
            $0.bound = bound
            $0.started = true
            $0.cronRunning = true
        }
        startCron()
        for (host, port) in bound {
            core.logger.notice("Ready to accept connections tcp", metadata: ["address": "\(host):\(port)"])
        }
        if loadAOF || loadSnapshot || appendOnly != nil {
            Thread { [core] in
                do {
                    if let appendOnly, loadAOF {
                        let start = SystemClock.monotonicNanoseconds()
                        let loaded = try core.loadAppendOnly(file: appendOnly)
                        try appendOnly.resume(manifest: loaded.manifest, baseSize: loaded.base, totalSize: loaded.total)
                        core.withLock { core.aof = appendOnly }
                        let seconds = Double(SystemClock.monotonicNanoseconds() - start) / 1e9
                        core.logger.notice("DB loaded from append only file", metadata: ["seconds": "\(String(format2: seconds))"])
                    } else {
                        if loadSnapshot { try core.loadSnapshot(path: snapshotPath) }
                        if let appendOnly { try core.createAppendOnly(appendOnly) }
                    }
                } catch {
                    // Never start on a partial dataset: a later save would overwrite the good files.
                    core.logger.critical("Fatal error loading the DB, exiting", metadata: ["error": "\(error)"])
                    exit(1)
                }
                core.withLock { core.snapshots.loading = false }
            }.start()
        }
        startAOFSyncThread()
    }

    /// With `appendfsync everysec`, fsyncs the AOF once a second off the event loops.
    private func startAOFSyncThread() {
        startPeriodicThread(intervalMilliseconds: 1000) { [self, core] in
            guard state.withLockedValue({ $0.cronRunning }) else { return false }
            if let file = core.withLock({ core.aof }), file.fsyncPolicy == "everysec" { file.syncIfNeeded() }
            return true
        }
    }

    /// Starts the SwiftNIO transport (platforms without epoll, and a comparison point on Linux).
    private func startNIO(_ settings: ServerSettings) async throws -> [(host: String, port: Int)] {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let bootstrap = NIOListening.bootstrap(group: group, settings: settings) { [core] channel in
            try channel.pipeline.syncOperations.addHandler(NIOConnectionHandler(server: core))
        }
        let listeners: [any Channel]
        do {
            listeners = try await NIOListening.bind(bootstrap, addresses: settings.bind, port: settings.port)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        state.withLockedValue {
            $0.group = group
            $0.listeners = listeners
        }
        return listeners.compactMap { channel in channel.localAddress.map { ($0.ipAddress ?? "?", $0.port ?? 0) } }
    }

    /// Service entry point: starts, then runs until graceful shutdown or SHUTDOWN.
    package func run() async throws {
        if !state.withLockedValue({ $0.started }) { try await start() }
        let continuation = shutdownContinuation
        await withGracefulShutdownHandler {
            var iterator = shutdownRequests.makeAsyncIterator()
            while true {
                let request = await iterator.next() ?? ShutdownRequest(save: false)
                // Like Redis: if the final save fails, keep running (unless forced) rather than lose data.
                if haltBeforeExit(request) { break }
            }
        } onGracefulShutdown: { [core] in
            // A signal (SIGTERM, SIGINT): said before the final save, as redis-server does.
            core.logger.notice("Received shutdown request, scheduling shutdown...")
            continuation.yield(ShutdownRequest())
        }
        await stop()
    }

    /// Saves a snapshot if `request` (or the save rules) ask for it and stops running commands
    /// (`ServerCore.haltForShutdown`). False, still serving, when saving failed and `request` is not forced.
    private func haltBeforeExit(_ request: ShutdownRequest) -> Bool {
        core.withLock { core.haltForShutdown(request) }
    }

    /// Asks a running server to shut down (as the SHUTDOWN command does).
    package func requestShutdown(_ request: ShutdownRequest = ShutdownRequest()) {
        shutdownContinuation.yield(request)
    }

    /// Stops accepting, closes every connection once its pending replies are written, stops the loops.
    /// Saving, if wanted, is done before (see `run`).
    package func stop() async {
        let alreadyStopped = state.withLockedValue { state -> Bool in
            defer {
                state.stopped = true
                state.cronRunning = false
            }
            return state.stopped
        }
        if alreadyStopped { return }
        if let file = core.withLock({ core.aof }) {
            file.close()
            core.logger.notice("Calling fsync() on the AOF file.")
        }
        #if os(Linux)
        if let transport = state.withLockedValue({ $0.transport }) { await transport.stop() }
        #endif
        let (group, listeners, tls, http) = state.withLockedValue { ($0.group, $0.listeners, $0.tls, $0.http) }
        if let http { await http.stop() }
        if let tls {
            let connections = core.withLock { core.clients.all.compactMap(\.connection) }
            for connection in connections { connection.close() }
            await tls.stop()
        }
        if let group {
            for listener in listeners { try? await listener.close() }
            let connections = core.withLock { core.clients.all.compactMap(\.connection) }
            for connection in connections { connection.close() }
            try? await group.shutdownGracefully()
        }
        core.logger.notice("NovaCache is now ready to exit, bye bye...")
        shutdownContinuation.finish()
    }

    // MARK: Periodic tasks

    private func startCron() {
        let hz = core.withLock { core.config.settings.hz }
        startPeriodicThread(intervalMilliseconds: 1000 / max(1, min(hz, 500))) { [self, core] in
            guard state.withLockedValue({ $0.cronRunning }) else { return false }
            core.runCron()
            return true
        }
        // Once a second, outside the server lock: memory freed by closed connections and deleted keys
        // goes back to the system (see FreeMemoryReclaimer).
        let reclaimer = NIOLockedValueBox(FreeMemoryReclaimer())
        startPeriodicThread(intervalMilliseconds: 1000) { [self, core] in
            guard state.withLockedValue({ $0.cronRunning }) else { return false }
            let allocated = core.withLock { core.memorySample.allocated }
            _ = reclaimer.withLockedValue { $0.tick(allocated: allocated) }
            return true
        }
    }

    /// Runs `tick` every `intervalMilliseconds` on its own thread until it returns false.
    private func startPeriodicThread(intervalMilliseconds: Int, _ tick: @escaping @Sendable () -> Bool) {
        let thread = Thread { 
            var delay = timespec(tv_sec: intervalMilliseconds / 1000, tv_nsec: (intervalMilliseconds % 1000) * 1_000_000)
            while true {
                var remaining = timespec()
                nanosleep(&delay, &remaining)
                if !tick() { return }
            }
        }
        thread.start()
    }
}

/// A plain OS thread running a closure.
final class Thread: @unchecked Sendable {
    private let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    func start() {
        #if os(Linux)
        startThread(body)
        #else
        let body = self.body
        DispatchQueue.global().async { body() }
        #endif
    }
}
