import Logging
public import NIOCore
import NovaRESP

/// A message received on a subscribed channel.
public struct RedisMessage: Sendable, Hashable {
    /// The channel it was published to.
    public let channel: String
    /// The pattern that matched, for pattern subscriptions.
    public let pattern: String?
    public let payload: ByteBuffer

    /// The payload as UTF-8 text.
    public var text: String { String(buffer: payload) }
}

/// Messages of SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE (sharded) subscriptions, as an `AsyncSequence`.
///
/// Works with RESP3 push frames and RESP2 subscriber mode alike. A cluster client may hold one connection
/// per node (sharded channels live on the primary of their slot); the messages of all of them arrive here.
/// The sequence ends with `RedisClientError.connectionClosed` when a connection is lost (resubscribe to
/// continue).
public final class RedisSubscription: AsyncSequence, Sendable {
    public typealias Element = RedisMessage

    /// What one connection subscribes to: classic channels, patterns, and sharded channels grouped so that
    /// each group is in one hash slot (one SSUBSCRIBE per group).
    struct Request: Sendable {
        var url: RedisURL
        var channels: [String] = []
        var patterns: [String] = []
        var shardChannelGroups: [[String]] = []
    }

    private let connections: [RedisConnection]
    private let stream: AsyncThrowingStream<RedisMessage, any Error>

    private init(connections: [RedisConnection], stream: AsyncThrowingStream<RedisMessage, any Error>) {
        self.connections = connections
        self.stream = stream
    }

    static func open(_ requests: [Request], group: any EventLoopGroup, logger: Logger) async throws -> RedisSubscription {
        let (stream, continuation) = AsyncThrowingStream<RedisMessage, any Error>.makeStream(bufferingPolicy: .unbounded)
        var connections: [RedisConnection] = []
        do {
            for request in requests {
                connections.append(try await subscribe(request, into: continuation, group: group, logger: logger))
            }
        } catch {
            for connection in connections { connection.close() }
            throw error
        }
        let opened = connections
        continuation.onTermination = { _ in for connection in opened { connection.close() } }
        return RedisSubscription(connections: connections, stream: stream)
    }

    /// Opens one connection, subscribes, and returns once the server has the subscriptions, so that nothing
    /// published afterwards is missed.
    private static func subscribe(
        _ request: Request, into continuation: AsyncThrowingStream<RedisMessage, any Error>.Continuation,
        group: any EventLoopGroup, logger: Logger
    ) async throws -> RedisConnection {
        let (pongs, pong) = AsyncStream<Void>.makeStream()
        let connection = try await RedisConnection.connect(to: request.url, on: group, logger: logger) { frame in
            guard let items = frame.elements, let kind = items.first?.string?.lowercased() else { return }
            switch kind {
            case "message" where items.count == 3, "smessage" where items.count == 3:
                if let channel = items[1].string, let payload = try? items[2].bulk() {
                    continuation.yield(RedisMessage(channel: channel, pattern: nil, payload: payload))
                }
            case "pmessage" where items.count == 4:
                if let pattern = items[1].string, let channel = items[2].string, let payload = try? items[3].bulk() {
                    continuation.yield(RedisMessage(channel: channel, pattern: pattern, payload: payload))
                }
            case "pong":
                pong.yield()  // RESP2 subscriber-mode PING: the subscriptions before it are in place
            default:
                break  // subscribe/unsubscribe confirmations
            }
        }
        connection.closeFuture.whenComplete { _ in
            continuation.finish(throwing: RedisClientError.connectionClosed)
            pong.finish()
        }
        if connection.protocolVersion == 2 { try await connection.enterSubscriberMode() }
        if !request.channels.isEmpty { connection.sendWithoutReply(RedisCommand("SUBSCRIBE", arguments: request.channels.map { .string($0) })) }
        if !request.patterns.isEmpty { connection.sendWithoutReply(RedisCommand("PSUBSCRIBE", arguments: request.patterns.map { .string($0) })) }
        for channels in request.shardChannelGroups where !channels.isEmpty {
            connection.sendWithoutReply(RedisCommand("SSUBSCRIBE", arguments: channels.map { .string($0) }))
        }
        if connection.protocolVersion == 3 {
            try await connection.send(RedisCommand("PING"))
        } else {
            connection.sendWithoutReply(RedisCommand("PING"))
            var iterator = pongs.makeAsyncIterator()
            guard await iterator.next() != nil else { throw RedisClientError.connectionClosed }
        }
        return connection
    }

    /// Adds channels (on the first connection; in a cluster every node delivers every PUBLISH).
    public func subscribe(channels: [String]) {
        connections.first?.sendWithoutReply(RedisCommand("SUBSCRIBE", arguments: channels.map { .string($0) }))
    }

    /// Adds patterns (on the first connection).
    public func subscribe(patterns: [String]) {
        connections.first?.sendWithoutReply(RedisCommand("PSUBSCRIBE", arguments: patterns.map { .string($0) }))
    }

    /// Ends the subscription and its connections; the sequence finishes.
    public func close() {
        for connection in connections { connection.close() }
    }

    public func makeAsyncIterator() -> AsyncThrowingStream<RedisMessage, any Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }
}
