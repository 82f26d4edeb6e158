public import NIOCore
public import NovaRESP

/// Something that sends Redis commands: one server (`RedisClient`) or a Redis/Valkey Cluster
/// (`RedisClusterClient`). The typed helpers (`get`, `set`, `mget`, `hset`, `publish` …) are written once,
/// here, on top of `send`, so they behave the same on both.
public protocol RedisCommandClient: Sendable {
    /// Sends any command; an error reply is thrown as `RedisError`.
    @discardableResult
    func send(_ command: RedisCommand) async throws -> RESPValue

    /// Sends the commands together; each reply (or error reply, as `.error`) in the commands' order.
    func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue]

    /// Runs MULTI, the commands and EXEC on one connection, after WATCHing `keys`.
    /// - Returns: the replies of the commands, or nil when EXEC was aborted by a WATCHed key.
    func transaction(_ commands: [RedisCommand], watching keys: [RedisArgument]) async throws -> [RESPValue]?

    /// Every key matching `pattern`, by SCAN (never KEYS, which blocks the server), `count` per step.
    func scanKeys(matching pattern: String, count: Int) async throws -> [ByteBuffer]

    /// Subscribes to channels, patterns and sharded channels (SSUBSCRIBE); the messages arrive as an
    /// `AsyncSequence` that ends (throwing) when a connection is lost.
    func subscribe(channels: [String], patterns: [String], shardChannels: [String]) async throws -> RedisSubscription

    /// Runs `body` on a connection nobody else uses meanwhile (WATCH/MULTI/EXEC, blocking commands), to
    /// the server holding `key` (on a cluster, the primary of its slot; any primary for nil). The body must
    /// leave the connection as it found it; when it throws, the connection is closed rather than reused.
    func withConnection<R: Sendable>(forKey key: RedisArgument?, _ body: (RedisConnection) async throws -> R) async throws -> R

    /// Forgets failed connects, so that the next command connects at once instead of waiting out the
    /// reconnect backoff (for a caller that learned by other means that the server is back).
    func resetBackoff()

    /// Closes every connection; later commands fail with `RedisClientError.shutDown`.
    func shutdown()
}

extension RedisCommandClient {
    /// Sends any command built from its words.
    @discardableResult
    public func send(_ name: String, _ arguments: RedisArgument...) async throws -> RESPValue {
        try await send(RedisCommand(name, arguments: arguments))
    }

    /// Runs MULTI, the commands and EXEC on one connection.
    /// - Returns: the replies of the commands, or nil when EXEC was aborted.
    public func transaction(_ commands: [RedisCommand]) async throws -> [RESPValue]? {
        try await transaction(commands, watching: [])
    }

    /// Every key matching `pattern`, by SCAN in steps of 1000.
    public func scanKeys(matching pattern: String) async throws -> [ByteBuffer] {
        try await scanKeys(matching: pattern, count: 1000)
    }

    /// Subscribes to channels, patterns and sharded channels.
    public func subscribe(
        channels: [String] = [], patterns: [String] = [], shardChannels: [String] = []
    ) async throws -> RedisSubscription {
        try await subscribe(channels: channels, patterns: patterns, shardChannels: shardChannels)
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
        condition: RedisClient.SetCondition = .always
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

    /// PTTL as a `TimeToLive`.
    public func ttl(_ key: RedisArgument) async throws -> RedisClient.TimeToLive {
        let milliseconds = try await send(RedisCommand("PTTL", key)).integer()
        switch milliseconds {
        case -2: return .missing
        case -1: return .persistent
        default: return .expiresIn(.milliseconds(milliseconds))
        }
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

    /// PUBLISH: how many subscribers received the message.
    @discardableResult
    public func publish(_ message: RedisArgument, to channel: String) async throws -> Int {
        Int(try await send(RedisCommand("PUBLISH", .string(channel), message)).integer())
    }

    /// SPUBLISH: publishes to a sharded channel (on a cluster, only the channel's shard carries it).
    /// - Returns: how many subscribers received the message.
    @discardableResult
    public func publish(_ message: RedisArgument, toShardChannel channel: String) async throws -> Int {
        Int(try await send(RedisCommand("SPUBLISH", .string(channel), message)).integer())
    }
}
