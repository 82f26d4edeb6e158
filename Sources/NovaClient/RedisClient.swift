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
public final class RedisClient: Sendable {
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

    /// Sends any command; an error reply is thrown as `RedisError`.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        try await pool.send(command)
    }

    /// Sends any command built from its words.
    @discardableResult
    public func send(_ name: String, _ arguments: RedisArgument...) async throws -> RESPValue {
        try await pool.send(RedisCommand(name, arguments: arguments))
    }

    /// Sends the commands in one write; each reply (or error reply) in order.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await pool.pipeline(commands)
    }

    /// Runs MULTI, the commands and EXEC on one leased connection.
    /// - Returns: the replies of the commands, or nil when EXEC was aborted by a WATCHed key.
    public func transaction(_ commands: [RedisCommand], watching keys: [RedisArgument] = []) async throws -> [RESPValue]? {
        try await pool.withConnection { connection -> [RESPValue]? in
            if !keys.isEmpty { try await connection.send(RedisCommand("WATCH", arguments: keys)) }
            let replies = try await connection.pipeline([RedisCommand("MULTI")] + commands + [RedisCommand("EXEC")])
            for reply in replies.dropLast() {
                if case .error(let text) = reply, text.hasPrefix("EXECABORT") || replies.first == reply { throw RedisError(text) }
            }
            switch replies.last! {
            case .null: return nil
            case .error(let text): throw RedisError(text)
            case let value:
                guard let items = value.elements else { throw RedisClientError.unexpectedReply(value) }
                return items
            }
        }
    }

    // MARK: Connection and server

    /// PING; returns the server's answer ("PONG").
    public func ping() async throws -> String {
        let reply = try await send("PING")
        return reply.string ?? ""
    }

    // MARK: Strings

    /// GET: the value, or nil when the key does not exist.
    public func get(_ key: RedisArgument) async throws -> ByteBuffer? {
        try await send(RedisCommand("GET", key)).bulk()
    }

    /// SET with an optional expiry and condition.
    /// - Returns: false when NX/XX prevented the write.
    @discardableResult
    public func set(
        _ key: RedisArgument, _ value: RedisArgument, expiresIn ttl: Duration? = nil,
        condition: SetCondition = .always
    ) async throws -> Bool {
        var arguments: [RedisArgument] = [key, value]
        if let ttl { arguments += ["PX", .integer(max(1, ttl.milliseconds))] }
        switch condition {
        case .always: break
        case .ifAbsent: arguments.append("NX")
        case .ifPresent: arguments.append("XX")
        }
        return try await send(RedisCommand("SET", arguments: arguments)) != .null
    }

    /// When SET writes.
    public enum SetCondition: Sendable { case always, ifAbsent, ifPresent }

    /// MGET: one optional value per key.
    public func mget(_ keys: [RedisArgument]) async throws -> [ByteBuffer?] {
        let reply = try await send(RedisCommand("MGET", arguments: keys))
        guard let items = reply.elements else { throw RedisClientError.unexpectedReply(reply) }
        return try items.map { try $0.bulk() }
    }

    /// INCRBY: the new value.
    @discardableResult
    public func incr(_ key: RedisArgument, by amount: Int64 = 1) async throws -> Int64 {
        try await send(RedisCommand("INCRBY", key, .integer(amount))).integer()
    }

    // MARK: Keys

    /// DEL: how many of the keys existed.
    @discardableResult
    public func delete(_ keys: RedisArgument...) async throws -> Int {
        Int(try await send(RedisCommand("DEL", arguments: keys)).integer())
    }

    /// UNLINK a list of keys: how many existed.
    @discardableResult
    public func unlink(_ keys: [RedisArgument]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return Int(try await send(RedisCommand("UNLINK", arguments: keys)).integer())
    }

    /// EXISTS: how many of the keys exist.
    public func exists(_ keys: RedisArgument...) async throws -> Int {
        Int(try await send(RedisCommand("EXISTS", arguments: keys)).integer())
    }

    /// PEXPIRE: false when the key does not exist.
    @discardableResult
    public func expire(_ key: RedisArgument, in ttl: Duration) async throws -> Bool {
        try await send(RedisCommand("PEXPIRE", key, .integer(max(1, ttl.milliseconds)))).integer() == 1
    }

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

    /// PTTL as a `TimeToLive`.
    public func ttl(_ key: RedisArgument) async throws -> TimeToLive {
        let milliseconds = try await send(RedisCommand("PTTL", key)).integer()
        switch milliseconds {
        case -2: return .missing
        case -1: return .persistent
        default: return .expiresIn(.milliseconds(milliseconds))
        }
    }

    /// Every key matching `pattern`, by SCAN (never KEYS, which blocks the server).
    public func scanKeys(matching pattern: String, count: Int = 1000) async throws -> [ByteBuffer] {
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

    // MARK: Hashes

    /// HSET: how many fields were added.
    @discardableResult
    public func hset(_ key: RedisArgument, _ fields: [(RedisArgument, RedisArgument)]) async throws -> Int {
        Int(try await send(RedisCommand("HSET", arguments: [key] + fields.flatMap { [$0.0, $0.1] })).integer())
    }

    /// HGET: a field's value.
    public func hget(_ key: RedisArgument, _ field: RedisArgument) async throws -> ByteBuffer? {
        try await send(RedisCommand("HGET", key, field)).bulk()
    }

    /// HGETALL as a dictionary of field → value (RESP2 flat array and RESP3 map alike).
    public func hgetall(_ key: RedisArgument) async throws -> [String: ByteBuffer] {
        let reply = try await send(RedisCommand("HGETALL", key))
        var result: [String: ByteBuffer] = [:]
        switch reply {
        case .map(let pairs):
            for (field, value) in pairs { if let name = field.string, let bytes = try value.bulk() { result[name] = bytes } }
        case .array(let items):
            for index in stride(from: 0, to: items.count - 1, by: 2) {
                if let name = items[index].string, let bytes = try items[index + 1].bulk() { result[name] = bytes }
            }
        default: throw RedisClientError.unexpectedReply(reply)
        }
        return result
    }

    /// HDEL: how many fields were removed.
    @discardableResult
    public func hdel(_ key: RedisArgument, _ fields: RedisArgument...) async throws -> Int {
        Int(try await send(RedisCommand("HDEL", arguments: [key] + fields)).integer())
    }

    // MARK: Pub/Sub

    /// PUBLISH: how many subscribers received the message.
    @discardableResult
    public func publish(_ message: RedisArgument, to channel: String) async throws -> Int {
        Int(try await send(RedisCommand("PUBLISH", .string(channel), message)).integer())
    }

    /// Subscribes on a connection of its own; the messages arrive as an `AsyncSequence` that ends (throwing)
    /// when the connection is lost. Cancel the iterating task or call `RedisSubscription.close()` to stop.
    public func subscribe(channels: [String] = [], patterns: [String] = []) async throws -> RedisSubscription {
        try await RedisSubscription.open(url: url, channels: channels, patterns: patterns, group: group, logger: logger)
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
