import NIOCore
import NovaEngine
import NovaRESP

/// Channel and pattern subscriptions of all clients, kept in step with each client's own lists
/// (`ClientState.channels`, `.patterns`): every change goes through these methods. Guarded by the
/// server lock.
struct PubSubRegistry {
    /// Subscribers of each channel, in subscription order.
    private(set) var channels: [Bytes: [ClientState]] = [:]
    /// Subscribers of each pattern, in subscription order.
    private var patterns: [Bytes: [ClientState]] = [:]
    /// Patterns in the order first subscribed (the order `pmessage`s are sent in).
    private var patternOrder: [Bytes] = []
    /// Subscribers of each shard channel (SSUBSCRIBE), in subscription order. A single node owns every
    /// slot, so sharded messages reach every subscriber of the channel, never a pattern.
    private(set) var shardChannels: [Bytes: [ClientState]] = [:]

    /// Distinct patterns with at least one subscriber (PUBSUB NUMPAT, INFO `pubsub_patterns`).
    var patternCount: Int { patterns.count }

    /// How many clients subscribe to `channel` (PUBSUB NUMSUB).
    func subscriberCount(_ channel: Bytes) -> Int { channels[channel]?.count ?? 0 }

    /// Subscribes the client to `channel`; false when it already was.
    @discardableResult
    mutating func subscribe(_ client: ClientState, channel: Bytes) -> Bool {
        guard client.channels.append(channel).inserted else { return false }
        channels[channel, default: []].append(client)
        return true
    }

    /// Unsubscribes the client from `channel`; false when it was not subscribed.
    @discardableResult
    mutating func unsubscribe(_ client: ClientState, channel: Bytes) -> Bool {
        guard let position = client.channels.firstIndex(of: channel) else { return false }
        client.channels.remove(at: position)
        channels[channel]?.removeAll { $0 === client }
        if channels[channel]?.isEmpty == true { channels[channel] = nil }
        return true
    }

    /// Subscribes the client to a glob `pattern`; false when it already was.
    @discardableResult
    mutating func subscribe(_ client: ClientState, pattern: Bytes) -> Bool {
        guard client.patterns.append(pattern).inserted else { return false }
        if patterns[pattern] == nil { patternOrder.append(pattern) }
        patterns[pattern, default: []].append(client)
        return true
    }

    /// Unsubscribes the client from `pattern`; false when it was not subscribed.
    @discardableResult
    mutating func unsubscribe(_ client: ClientState, pattern: Bytes) -> Bool {
        guard let position = client.patterns.firstIndex(of: pattern) else { return false }
        client.patterns.remove(at: position)
        patterns[pattern]?.removeAll { $0 === client }
        if patterns[pattern]?.isEmpty == true {
            patterns[pattern] = nil
            patternOrder.removeAll { $0 == pattern }
        }
        return true
    }

    /// Subscribes the client to shard channel `channel`; false when it already was.
    @discardableResult
    mutating func subscribe(_ client: ClientState, shardChannel channel: Bytes) -> Bool {
        guard client.shardChannels.append(channel).inserted else { return false }
        shardChannels[channel, default: []].append(client)
        return true
    }

    /// Unsubscribes the client from shard channel `channel`; false when it was not subscribed.
    @discardableResult
    mutating func unsubscribe(_ client: ClientState, shardChannel channel: Bytes) -> Bool {
        guard let position = client.shardChannels.firstIndex(of: channel) else { return false }
        client.shardChannels.remove(at: position)
        shardChannels[channel]?.removeAll { $0 === client }
        if shardChannels[channel]?.isEmpty == true { shardChannels[channel] = nil }
        return true
    }

    /// How many clients subscribe to shard channel `channel` (PUBSUB SHARDNUMSUB).
    func shardSubscriberCount(_ channel: Bytes) -> Int { shardChannels[channel]?.count ?? 0 }

    /// Drops every subscription of a client (RESET, disconnection).
    mutating func unsubscribeAll(_ client: ClientState) {
        for channel in client.channels { unsubscribe(client, channel: channel) }
        for pattern in client.patterns { unsubscribe(client, pattern: pattern) }
        for channel in client.shardChannels { unsubscribe(client, shardChannel: channel) }
    }

    /// Calls `deliver` for each receiver of a message on `channel`, in Redis's order: the channel's
    /// subscribers, then each matching pattern's (with the pattern). Returns the number of deliveries.
    func forEachReceiver(of channel: Bytes, _ deliver: (ClientState, _ pattern: Bytes?) -> Void) -> Int {
        var receivers = 0
        for client in channels[channel] ?? [] {
            deliver(client, nil)
            receivers += 1
        }
        for pattern in patternOrder {
            guard let subscribers = patterns[pattern],
                  pattern.withBytes({ p in channel.withBytes { RedisGlob.matches(p, $0) } }) else { continue }
            for client in subscribers {
                deliver(client, pattern)
                receivers += 1
            }
        }
        return receivers
    }
}

extension ServerCore {
    /// Sends `message` to the subscribers of `channel` and of every pattern matching it; returns how many
    /// deliveries were made (PUBLISH's reply). Deliveries are queued on the subscribers' connections while
    /// the lock is held, so every subscriber sees messages in publishing order.
    @discardableResult
    func publish(_ channel: Bytes, _ message: Bytes) -> Int {
        pubsub.forEachReceiver(of: channel) { client, pattern in
            deliver(to: client) { writer in
                if let pattern {
                    writer.push(4)
                    writer.bulk("pmessage")
                    pattern.withBytes { writer.bulk($0) }
                } else {
                    writer.push(3)
                    writer.bulk("message")
                }
                channel.withBytes { writer.bulk($0) }
                message.withBytes { writer.bulk($0) }
            }
        }
    }

    /// SPUBLISH: sends `message` to the subscribers of shard channel `channel` as `smessage` frames;
    /// returns how many received it.
    @discardableResult
    func publish(shardChannel channel: Bytes, _ message: Bytes) -> Int {
        let subscribers = pubsub.shardChannels[channel] ?? []
        for client in subscribers {
            deliver(to: client) { writer in
                writer.push(3)
                writer.bulk("smessage")
                channel.withBytes { writer.bulk($0) }
                message.withBytes { writer.bulk($0) }
            }
        }
        return subscribers.count
    }

    /// Writes an out-of-band frame (a message, an invalidation) to `client`'s connection.
    func deliver(to client: ClientState, _ write: (inout RESPWriter) -> Void) {
        guard let connection = client.connection else { return }
        var writer = RESPWriter(buffer: ByteBuffer(), version: client.protocolVersion)
        write(&writer)
        let settings = config.settings
        connection.push(writer.buffer, limit: client.isSubscriber ? settings.pubsubOutputLimit : settings.normalOutputLimit)
    }
}
