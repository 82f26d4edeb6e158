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

/// Messages of a SUBSCRIBE/PSUBSCRIBE connection, as an `AsyncSequence`.
///
/// Works with RESP3 push frames and RESP2 subscriber mode alike. The sequence ends with
/// `RedisClientError.connectionClosed` when the connection is lost (resubscribe to continue).
public final class RedisSubscription: AsyncSequence, Sendable {
    public typealias Element = RedisMessage

    private let connection: RedisConnection
    private let stream: AsyncThrowingStream<RedisMessage, any Error>

    private init(connection: RedisConnection, stream: AsyncThrowingStream<RedisMessage, any Error>) {
        self.connection = connection
        self.stream = stream
    }

    static func open(
        url: RedisURL, channels: [String], patterns: [String], group: any EventLoopGroup, logger: Logger
    ) async throws -> RedisSubscription {
        let (stream, continuation) = AsyncThrowingStream<RedisMessage, any Error>.makeStream(bufferingPolicy: .unbounded)
        let (pongs, pong) = AsyncStream<Void>.makeStream()
        let connection = try await RedisConnection.connect(to: url, on: group, logger: logger) { frame in
            guard let items = frame.elements, let kind = items.first?.string?.lowercased() else { return }
            switch kind {
            case "message" where items.count == 3:
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
        continuation.onTermination = { _ in connection.close() }
        if connection.protocolVersion == 2 { try await connection.enterSubscriberMode() }
        let subscription = RedisSubscription(connection: connection, stream: stream)
        if !channels.isEmpty { subscription.subscribe(channels: channels) }
        if !patterns.isEmpty { subscription.subscribe(patterns: patterns) }
        // Return once the server has the subscriptions, so that nothing published afterwards is missed.
        if connection.protocolVersion == 3 {
            try await connection.send(RedisCommand("PING"))
        } else {
            connection.sendWithoutReply(RedisCommand("PING"))
            var iterator = pongs.makeAsyncIterator()
            guard await iterator.next() != nil else { throw RedisClientError.connectionClosed }
        }
        return subscription
    }

    /// Adds channels.
    public func subscribe(channels: [String]) {
        connection.sendWithoutReply(RedisCommand("SUBSCRIBE", arguments: channels.map { .string($0) }))
    }

    /// Adds patterns.
    public func subscribe(patterns: [String]) {
        connection.sendWithoutReply(RedisCommand("PSUBSCRIBE", arguments: patterns.map { .string($0) }))
    }

    /// Ends the subscription and its connection; the sequence finishes.
    public func close() { connection.close() }

    public func makeAsyncIterator() -> AsyncThrowingStream<RedisMessage, any Error>.AsyncIterator {
        stream.makeAsyncIterator()
    }
}
