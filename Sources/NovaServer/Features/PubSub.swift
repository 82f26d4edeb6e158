import NIOCore
import NovaEngine
import NovaRESP

/// Channel and pattern subscriptions of all clients. Guarded by the server lock.
struct PubSubState {
    /// Subscribers of each channel, in subscription order.
    var channels: [Bytes: [ClientState]] = [:]
    /// Subscribers of each pattern, in subscription order; patterns in the order first subscribed.
    var patterns: [Bytes: [ClientState]] = [:]
    var patternOrder: [Bytes] = []
}

extension ServerCore {
    /// Sends `message` to the subscribers of `channel` and of every pattern matching it; returns how many
    /// deliveries were made (PUBLISH's reply). Deliveries are queued on the subscribers' connections while
    /// the lock is held, so every subscriber sees messages in publishing order.
    @discardableResult
    func publish(_ channel: Bytes, _ message: Bytes) -> Int {
        var receivers = 0
        if let subscribers = pubsub.channels[channel] {
            for client in subscribers {
                deliver(to: client) { writer in
                    writer.push(3)
                    writer.bulk("message")
                    channel.withBytes { writer.bulk($0) }
                    message.withBytes { writer.bulk($0) }
                }
                receivers += 1
            }
        }
        for pattern in pubsub.patternOrder {
            guard let subscribers = pubsub.patterns[pattern],
                  pattern.withBytes({ p in channel.withBytes { RedisGlob.matches(p, $0) } }) else { continue }
            for client in subscribers {
                deliver(to: client) { writer in
                    writer.push(4)
                    writer.bulk("pmessage")
                    pattern.withBytes { writer.bulk($0) }
                    channel.withBytes { writer.bulk($0) }
                    message.withBytes { writer.bulk($0) }
                }
                receivers += 1
            }
        }
        return receivers
    }

    /// Writes an out-of-band frame (a message, an invalidation) to `client`'s connection.
    func deliver(to client: ClientState, _ write: (inout RESPWriter) -> Void) {
        guard let connection = client.connection else { return }
        var writer = RESPWriter(buffer: ByteBuffer(), version: client.protocolVersion)
        write(&writer)
        let settings = config.settings
        connection.push(writer.buffer, limit: client.isSubscriber ? settings.pubsubOutputLimit : settings.normalOutputLimit)
    }

    /// Subscribes the client to `channel`; false when it already was.
    func subscribe(_ client: ClientState, channel: Bytes) -> Bool {
        guard client.channels.append(channel).inserted else { return false }
        pubsub.channels[channel, default: []].append(client)
        return true
    }

    func unsubscribe(_ client: ClientState, channel: Bytes) -> Bool {
        guard let position = client.channels.firstIndex(of: channel) else { return false }
        client.channels.remove(at: position)
        pubsub.channels[channel]?.removeAll { $0 === client }
        if pubsub.channels[channel]?.isEmpty == true { pubsub.channels[channel] = nil }
        return true
    }

    func subscribe(_ client: ClientState, pattern: Bytes) -> Bool {
        guard client.patterns.append(pattern).inserted else { return false }
        if pubsub.patterns[pattern] == nil { pubsub.patternOrder.append(pattern) }
        pubsub.patterns[pattern, default: []].append(client)
        return true
    }

    func unsubscribe(_ client: ClientState, pattern: Bytes) -> Bool {
        guard let position = client.patterns.firstIndex(of: pattern) else { return false }
        client.patterns.remove(at: position)
        pubsub.patterns[pattern]?.removeAll { $0 === client }
        if pubsub.patterns[pattern]?.isEmpty == true {
            pubsub.patterns[pattern] = nil
            pubsub.patternOrder.removeAll { $0 == pattern }
        }
        return true
    }

    /// Drops every subscription of a client (RESET, disconnection).
    func unsubscribeAll(_ client: ClientState) {
        for channel in client.channels { _ = unsubscribe(client, channel: channel) }
        for pattern in client.patterns { _ = unsubscribe(client, pattern: pattern) }
    }
}
