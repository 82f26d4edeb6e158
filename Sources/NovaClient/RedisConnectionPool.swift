public import Logging
public import NIOCore
public import NIOPosix
import Synchronization
public import NovaRESP

/// Connections to one server, shared by many tasks.
///
/// Ordinary commands are multiplexed: each goes to the open connection with the fewest commands in flight,
/// and the pool opens another connection (up to `maximumConnections`) when all are busy. Commands that
/// change a connection's state (WATCH/MULTI, blocking pops) lease a connection for themselves with
/// `withConnection`. A failed connect makes the pool wait before the next attempt (exponential backoff
/// with jitter); until then commands fail at once with `RedisClientError.backingOff` instead of waiting
/// for another connect timeout.
public final class RedisConnectionPool: Sendable {
    /// Pool sizing and health checks.
    public struct Configuration: Sendable {
        /// Connections kept open (opened at start and re-opened by the health check).
        public var minimumConnections = 1
        public var maximumConnections = 8
        /// How often idle connections are checked with PING; nil disables the checks.
        public var healthCheckInterval: Duration? = .seconds(10)
        public var backoff = Backoff()

        public init(minimumConnections: Int = 1, maximumConnections: Int = 8) {
            self.minimumConnections = minimumConnections
            self.maximumConnections = max(1, maximumConnections)
        }
    }

    public let url: RedisURL
    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(PoolState())
    private let healthCheck = Mutex<Task<Void, Never>?>(nil)

    private struct PoolState {
        var shared: [RedisConnection] = []
        var idleLeasable: [RedisConnection] = []
        var leased = 0
        var connecting = 0
        var failures = 0
        var retryAt: ContinuousClock.Instant?
        var lastError = ""
        var waiters: [CheckedContinuation<RedisConnection?, Never>] = []
        /// Tasks waiting for a connection being opened (all connections at the maximum are still connecting).
        var openWaiters: [CheckedContinuation<Void, Never>] = []
        var closed = false

        var total: Int { shared.count + idleLeasable.count + leased + connecting }

        mutating func prune() {
            shared.removeAll { !$0.isActive }
            idleLeasable.removeAll { !$0.isActive }
        }
    }

    public init(
        url: RedisURL, configuration: Configuration = Configuration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "nova.client")
    ) {
        self.url = url
        self.configuration = configuration
        self.group = group
        self.logger = logger
    }

    /// Opens the minimum connections in the background and starts the health checks.
    public func start() {
        healthCheck.withLock { task in
            guard task == nil else { return }
            task = Task { [weak self] in
                await self?.fillToMinimum()
                while !Task.isCancelled {
                    guard let interval = self?.configuration.healthCheckInterval else { return }
                    try? await Task.sleep(for: interval)
                    await self?.checkHealth()
                }
            }
        }
    }

    /// Closes every connection; later commands fail with `shutDown`.
    public func shutdown() {
        let (connections, waiters) = state.withLock { state in
            state.closed = true
            defer { state.shared = []; state.idleLeasable = []; state.waiters = [] }
            return (state.shared + state.idleLeasable, state.waiters)
        }
        healthCheck.withLock { $0?.cancel() }
        for connection in connections { connection.close() }
        for waiter in waiters { waiter.resume(returning: nil) }
        let openWaiters = state.withLock { state in
            defer { state.openWaiters = [] }
            return state.openWaiters
        }
        for waiter in openWaiters { waiter.resume() }
    }

    /// Connections open now (shared and leased).
    public var openConnections: Int { state.withLock { $0.prune(); return $0.shared.count + $0.idleLeasable.count + $0.leased } }

    /// Whether the last connect attempt failed (the pool is backing off).
    public var isBackingOff: Bool { state.withLock { $0.failures > 0 } }

    /// Forgets the failed connects, so that the next command connects at once instead of waiting out the
    /// backoff: for a caller that learned by other means (a probe of its own) that the server is back.
    public func resetBackoff() {
        state.withLock { state in
            state.failures = 0
            state.retryAt = nil
        }
    }

    /// Sends `command` on a shared connection; an error reply is thrown as `RedisError`.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        try await sharedConnection().send(command, timeout: timeout)
    }

    /// Sends the commands in one write on one shared connection; error replies come back as `.error`.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await sharedConnection().pipeline(commands)
    }

    /// Every key matching `pattern` on this server, by SCAN (never KEYS, which blocks the server), `count`
    /// per step.
    public func scanKeys(matching pattern: String, count: Int) async throws -> [ByteBuffer] {
        var cursor = "0"
        var keys: [ByteBuffer] = []
        repeat {
            let reply = try await send(RedisCommand("SCAN", .string(cursor), "MATCH", .string(pattern), "COUNT", .integer(Int64(count))))
            guard let parts = reply.elements, parts.count == 2, let next = parts[0].string, let batch = parts[1].elements else {
                throw RedisClientError.unexpectedReply(reply)
            }
            cursor = next
            for key in batch { if let bytes = try key.bulk() { keys.append(bytes) } }
        } while cursor != "0"
        return keys
    }

    /// Runs `body` with a connection nobody else uses meanwhile (WATCH/MULTI/EXEC, blocking commands).
    /// The body must leave the connection as it found it (same database, no transaction, not subscribed);
    /// when it throws, the connection is closed rather than reused.
    public func withConnection<R: Sendable>(_ body: (RedisConnection) async throws -> R) async throws -> R {
        let connection = try await lease()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            connection.close()
            release(connection)
            throw error
        }
    }

    // MARK: Internals

    private func sharedConnection() async throws -> RedisConnection {
        while true {
            if let connection = try await trySharedConnection() { return connection }
        }
    }

    /// A shared connection, or nil after waiting for connections being opened (then try again).
    private func trySharedConnection() async throws -> RedisConnection? {
        enum Choice { case use(RedisConnection), open, wait, fail(any Error) }
        let choice: Choice = state.withLock { state in
            if state.closed { return .fail(RedisClientError.shutDown) }
            state.prune()
            let best = state.shared.min { $0.inFlight < $1.inFlight }
            if let best, best.inFlight == 0 || state.total >= configuration.maximumConnections {
                return .use(best)
            }
            if let idle = state.idleLeasable.popLast() {
                state.shared.append(idle)
                return .use(idle)
            }
            if state.total >= configuration.maximumConnections {
                if let best { return .use(best) }
                return state.connecting > 0 ? .wait : .fail(RedisClientError.connectionClosed)
            }
            if let error = backoffError(&state) {
                if let best { return .use(best) }
                return .fail(error)
            }
            state.connecting += 1
            return .open
        }
        switch choice {
        case .use(let connection): return connection
        case .fail(let error): throw error
        case .wait:
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Bool in
                    guard state.connecting > 0, !state.closed else { return true }
                    state.openWaiters.append(continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
            return nil
        case .open:
            return try await open(shared: true)
        }
    }

    private func lease() async throws -> RedisConnection {
        enum Choice { case use(RedisConnection), open, wait, fail(any Error) }
        let choice: Choice = state.withLock { state in
            if state.closed { return .fail(RedisClientError.shutDown) }
            state.prune()
            if let idle = state.idleLeasable.popLast() {
                state.leased += 1
                return .use(idle)
            }
            if let index = state.shared.firstIndex(where: { $0.inFlight == 0 }),
                state.total >= configuration.maximumConnections {
                state.leased += 1
                return .use(state.shared.remove(at: index))
            }
            if state.total >= configuration.maximumConnections { return .wait }
            if let error = backoffError(&state) { return .fail(error) }
            state.connecting += 1
            return .open
        }
        switch choice {
        case .use(let connection): return connection
        case .fail(let error): throw error
        case .open:
            return try await open(shared: false)
        case .wait:
            let connection = await withCheckedContinuation { continuation in
                state.withLock { $0.waiters.append(continuation) }
            }
            guard let connection else { throw RedisClientError.shutDown }
            return connection
        }
    }

    private func release(_ connection: RedisConnection) {
        let waiter: CheckedContinuation<RedisConnection?, Never>? = state.withLock { state in
            if connection.isActive && !state.closed, !state.waiters.isEmpty {
                return state.waiters.removeFirst()  // stays leased, handed over
            }
            state.leased -= 1
            if connection.isActive && !state.closed { state.idleLeasable.append(connection) }
            return nil
        }
        if let waiter {
            waiter.resume(returning: connection)
        } else if !connection.isActive {
            wakeWaiterWithNewConnection()
        }
    }

    /// A leased connection died while others wait at the maximum: let one waiter open a fresh one.
    private func wakeWaiterWithNewConnection() {
        let waiter: CheckedContinuation<RedisConnection?, Never>? = state.withLock { state in
            guard !state.waiters.isEmpty, state.total < configuration.maximumConnections else { return nil }
            state.connecting += 1
            return state.waiters.removeFirst()
        }
        guard let waiter else { return }
        Task {
            waiter.resume(returning: try? await open(shared: false))
        }
    }

    /// The error to fail with while the backoff after failed connects lasts (nil: try now).
    private func backoffError(_ state: inout PoolState) -> (any Error)? {
        guard let retryAt = state.retryAt, ContinuousClock.now < retryAt else { return nil }
        return RedisClientError.backingOff(url: url.description, failures: state.failures, lastError: state.lastError)
    }

    /// Opens a connection (the caller counted it in `connecting`) and adds it to the shared ones or counts
    /// it as leased, recording success or failure for the backoff.
    private func open(shared: Bool) async throws -> RedisConnection {
        defer {
            let waiters = state.withLock { state in
                defer { state.openWaiters = [] }
                return state.openWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
        do {
            let connection = try await RedisConnection.connect(to: url, on: group, logger: logger)
            let wasFailing = state.withLock { state in
                state.connecting -= 1
                if shared { state.shared.append(connection) } else { state.leased += 1 }
                defer { state.failures = 0; state.retryAt = nil }
                return state.failures > 0
            }
            if wasFailing { logger.info("reconnected", metadata: ["url": "\(url)"]) }
            if state.withLock({ $0.closed }) {
                connection.close()
                throw RedisClientError.shutDown
            }
            return connection
        } catch let error as RedisError {
            state.withLock { $0.connecting -= 1 }
            throw error  // the server answered (wrong password, bad database): no backoff
        } catch {
            let failures = state.withLock { state in
                state.connecting -= 1
                state.failures += 1
                state.lastError = "\(error)"
                state.retryAt = ContinuousClock.now + configuration.backoff.delay(afterFailures: state.failures)
                return state.failures
            }
            logger.debug("connect failed", metadata: ["url": "\(url)", "failures": "\(failures)", "error": "\(error)"])
            throw error
        }
    }

    private func fillToMinimum() async {
        while true {
            let shouldOpen = state.withLock { state -> Bool in
                state.prune()
                guard !state.closed, state.total < configuration.minimumConnections, backoffError(&state) == nil else {
                    return false
                }
                state.connecting += 1
                return true
            }
            guard shouldOpen, (try? await open(shared: true)) != nil else { return }
        }
    }

    private func checkHealth() async {
        let idle = state.withLock { state in
            state.prune()
            return (state.shared + state.idleLeasable).filter { $0.inFlight == 0 }
        }
        for connection in idle {
            do {
                _ = try await connection.send(RedisCommand("PING"))
            } catch {
                connection.close()
            }
        }
        await fillToMinimum()
    }
}
