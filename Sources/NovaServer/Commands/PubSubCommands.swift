import NIOCore
import NovaEngine
import NovaRESP

/// SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, their sharded forms (SSUBSCRIBE,
/// SUNSUBSCRIBE, SPUBLISH) and PUBSUB. Confirmations are push frames in
/// RESP3 and arrays in RESP2, one per channel, each with the client's subscription count.
enum PubSubCommands {
    static func subscribe(_ ctx: inout CommandContext) throws(CommandError) {
        for index in 1..<ctx.args.count {
            let channel = Bytes(ctx.args[index])
            _ = ctx.server.pubsub.subscribe(ctx.client, channel: channel)
            confirm(&ctx, "subscribe", channel)
        }
    }

    static func psubscribe(_ ctx: inout CommandContext) throws(CommandError) {
        for index in 1..<ctx.args.count {
            let pattern = Bytes(ctx.args[index])
            _ = ctx.server.pubsub.subscribe(ctx.client, pattern: pattern)
            confirm(&ctx, "psubscribe", pattern)
        }
    }

    static func unsubscribe(_ ctx: inout CommandContext) throws(CommandError) {
        let channels = ctx.args.count > 1 ? (1..<ctx.args.count).map { Bytes(ctx.args[$0]) } : Array(ctx.client.channels)
        if channels.isEmpty { return confirm(&ctx, "unsubscribe", nil) }
        for channel in channels {
            _ = ctx.server.pubsub.unsubscribe(ctx.client, channel: channel)
            confirm(&ctx, "unsubscribe", channel)
        }
    }

    static func punsubscribe(_ ctx: inout CommandContext) throws(CommandError) {
        let patterns = ctx.args.count > 1 ? (1..<ctx.args.count).map { Bytes(ctx.args[$0]) } : Array(ctx.client.patterns)
        if patterns.isEmpty { return confirm(&ctx, "punsubscribe", nil) }
        for pattern in patterns {
            _ = ctx.server.pubsub.unsubscribe(ctx.client, pattern: pattern)
            confirm(&ctx, "punsubscribe", pattern)
        }
    }

    static func ssubscribe(_ ctx: inout CommandContext) throws(CommandError) {
        for index in 1..<ctx.args.count {
            let channel = Bytes(ctx.args[index])
            _ = ctx.server.pubsub.subscribe(ctx.client, shardChannel: channel)
            confirm(&ctx, "ssubscribe", channel, count: ctx.client.shardChannels.count)
        }
    }

    static func sunsubscribe(_ ctx: inout CommandContext) throws(CommandError) {
        let channels = ctx.args.count > 1 ? (1..<ctx.args.count).map { Bytes(ctx.args[$0]) } : Array(ctx.client.shardChannels)
        if channels.isEmpty { return confirm(&ctx, "sunsubscribe", nil, count: 0) }
        for channel in channels {
            _ = ctx.server.pubsub.unsubscribe(ctx.client, shardChannel: channel)
            confirm(&ctx, "sunsubscribe", channel, count: ctx.client.shardChannels.count)
        }
    }

    static func spublish(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(ctx.server.publish(shardChannel: Bytes(ctx.args[1]), Bytes(ctx.args[2])))
    }

    /// `[kind, name, count]`, the name null when there was nothing to unsubscribe from. The count is of
    /// channels and patterns, or of shard channels for the sharded commands, as Redis 7.0 counts them.
    private static func confirm(_ ctx: inout CommandContext, _ kind: StaticString, _ name: Bytes?, count: Int? = nil) {
        ctx.reply.push(3)
        ctx.reply.bulk(kind.description)
        if let name { name.withBytes { ctx.reply.bulk($0) } } else { ctx.reply.null() }
        ctx.reply.integer(count ?? ctx.client.channels.count + ctx.client.patterns.count)
    }

    static func publish(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(ctx.server.publish(Bytes(ctx.args[1]), Bytes(ctx.args[2])))
    }

    static func channels(_ ctx: inout CommandContext) throws(CommandError) {
        let pattern = ctx.args.count > 2 ? Bytes(ctx.args[2]) : nil
        let names = ctx.server.pubsub.channels.keys.filter { channel in
            pattern.map { p in p.withBytes { p in channel.withBytes { RedisGlob.matches(p, $0) } } } ?? true
        }
        ctx.replyArray(names.sorted { $0.array.lexicographicallyPrecedes($1.array) })
    }

    static func numsub(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.map(ctx.args.count - 2)
        for index in 2..<ctx.args.count {
            ctx.reply.bulk(ctx.args[index])
            ctx.reply.integer(ctx.server.pubsub.subscriberCount(Bytes(ctx.args[index])))
        }
    }

    static func numpat(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.integer(ctx.server.pubsub.patternCount)
    }

    static func shardChannels(_ ctx: inout CommandContext) throws(CommandError) {
        let pattern = ctx.args.count > 2 ? Bytes(ctx.args[2]) : nil
        let names = ctx.server.pubsub.shardChannels.keys.filter { channel in
            pattern.map { p in p.withBytes { p in channel.withBytes { RedisGlob.matches(p, $0) } } } ?? true
        }
        ctx.replyArray(names.sorted { $0.array.lexicographicallyPrecedes($1.array) })
    }

    static func shardNumsub(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.map(ctx.args.count - 2)
        for index in 2..<ctx.args.count {
            ctx.reply.bulk(ctx.args[index])
            ctx.reply.integer(ctx.server.pubsub.shardSubscriberCount(Bytes(ctx.args[index])))
        }
    }

    static func help(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "PUBSUB", [
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ])
    }
}
