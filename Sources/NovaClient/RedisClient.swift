public import Logging
public import NIOCore
public import NIOPosix
public import NovaRESP

/// An async Redis client: a connection pool plus typed helpers for the string, key, hash and pub/sub
/// commands. Anything else goes through `send(_:)`.
///
/// ```swift
/// let client = try RedisClient(url: "redis://:secret@127.0.0.1:6379/1")
/// try await client.set("greeting", "hello", expiresIn: .seconds(60))
/// let text = try await client.get("greeting")?.string
/// ```
public final class RedisClient: RedisCommandClient {
    public let pool: RedisConnectionPool
    public var url: RedisURL { pool.url }
    private let group: any EventLoopGroup
    private let logger: Logger

    /// A client for `url`; no connection is made until the first command (or `pool.start()`).
    public init(
        url: RedisURL, pool configuration: RedisConnectionPool.Configuration = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "nova.client")
    ) {
        self.group = group
        self.logger = logger
        pool = RedisConnectionPool(url: url, configuration: configuration, group: group, logger: logger)
        pool.start()
    }

    /// A client for the URL text (see `RedisURL`).
    public convenience init(url: String, logger: Logger = Logger(label: "nova.client")) throws {
        self.init(url: try RedisURL(url), logger: logger)
    }

    /// A client for `REDIS_URL`, else `redis://127.0.0.1:6379/0`.
    public convenience init(logger: Logger = Logger(label: "nova.client")) throws {
        self.init(url: try RedisURL.fromEnvironment(), logger: logger)
    }

    /// Closes every connection.
    public func shutdown() { pool.shutdown() }

    /// Runs `body` on a leased connection (see `RedisConnectionPool.withConnection`); `key` does not
    /// matter on one server.
    public func withConnection<R: Sendable>(forKey key: RedisArgument?, _ body: (RedisConnection) async throws -> R) async throws -> R {
        try await pool.withConnection(body)
    }

    /// Forgets the pool's failed connects (see `RedisConnectionPool.resetBackoff`).
    public func resetBackoff() { pool.resetBackoff() }

    /// Sends any command; an error reply is thrown as `RedisError`.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        try await pool.send(command)
    }

    /// Sends the commands in one write; each reply (or error reply) in order.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await pool.pipeline(commands)
    }

    /// Runs MULTI, the commands and EXEC on one leased connection.
    /// - Returns: the replies of the commands, or nil when EXEC was aborted by a WATCHed key.
    public func transaction(_ commands: [RedisCommand], watching keys: [RedisArgument]) async throws -> [RESPValue]? {
        try await pool.withConnection { connection in try await connection.transaction(commands, watching: keys) }
    }

    /// Every key matching `pattern`, by SCAN (never KEYS, which blocks the server).
    public func scanKeys(matching pattern: String, count: Int) async throws -> [ByteBuffer] {
        try await pool.scanKeys(matching: pattern, count: count)
    }

    /// When SET writes.
    public enum SetCondition: Sendable { case always, ifAbsent, ifPresent }

    /// The remaining time to live of a key.
    public enum TimeToLive: Sendable, Hashable, CustomStringConvertible {
        case missing, persistent
        case expiresIn(Duration)

        /// In words and human units: `missing`, `no expiry`, `expires in 1h 1m 11s`.
        public var description: String {
            switch self {
            case .missing: return "missing"
            case .persistent: return "no expiry"
            case .expiresIn(let duration):
                let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
                if milliseconds < 1000 { return "expires in \(milliseconds) ms" }
                let seconds = milliseconds / 1000
                let parts = [(seconds / 86400, "d"), (seconds % 86400 / 3600, "h"), (seconds % 3600 / 60, "m"), (seconds % 60, "s")]
                let shown = parts.drop { $0.0 == 0 }.filter { $0.0 > 0 }.map { "\($0.0)\($0.1)" }
                return "expires in " + shown.joined(separator: " ")
            }
        }
    }

    // MARK: Pub/Sub

    /// Subscribes on a connection of its own; the messages arrive as an `AsyncSequence` that ends (throwing)
    /// when the connection is lost. Cancel the iterating task or call `RedisSubscription.close()` to stop.
    /// Sharded channels must share a hash slot on a cluster node; any set of them works on a single server.
    public func subscribe(channels: [String], patterns: [String], shardChannels: [String]) async throws -> RedisSubscription {
        let request = RedisSubscription.Request(
            url: url, channels: channels, patterns: patterns, shardChannelGroups: shardChannels.isEmpty ? [] : [shardChannels])
        return try await RedisSubscription.open([request], group: group, logger: logger)
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

extension RESPValue {
    /// A bulk string's bytes, nil for a null reply; an error reply is thrown.
    public func bulk() throws -> ByteBuffer? {
        switch self {
        case .bulkString(let bytes): return bytes
        case .simpleString(let text): return ByteBuffer(string: text)
        case .verbatim(_, let text): return ByteBuffer(string: text)
        case .null: return nil
        case .error(let text): throw RedisError(text)
        default: throw RedisClientError.unexpectedReply(self)
        }
    }

    /// An integer reply; an error reply is thrown.
    public func integer() throws -> Int64 {
        switch self {
        case .integer(let value): return value
        case .error(let text): throw RedisError(text)
        default: throw RedisClientError.unexpectedReply(self)
        }
    }
}
