import NIOCore
import NovaEngine
import NovaRESP

/// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP: the non-blocking work if data
/// is there, else the client waits (timeouts in seconds, fractions allowed; 0 waits forever). Inside
/// MULTI they never wait. When a key gets data the command runs again for the longest-waiting client.
enum BlockingCommands {
    /// Blocks unless inside MULTI or already retrying; replies null in MULTI.
    static func wait(_ ctx: inout CommandContext, keys: [ByteBuffer], timeout: Int64) {
        if ctx.isRetryingBlocked { return }
        if ctx.client.inTransaction {
            ctx.reply.nullArray()
            return
        }
        ctx.server.block(ctx, keys: keys, timeout: timeout)
    }

    static func blockingPop(_ ctx: inout CommandContext, end: ListCommands.End) throws(CommandError) {
        let timeout = try BlockingTimeout.parse(ctx, ctx.args.count - 1)
        let keys = (1..<(ctx.args.count - 1)).map { ctx.args[$0] }
        for key in keys {
            guard try ctx.exists(ListKind.self, key) else { continue }
            let element = try ctx.modify(ListKind.self, key, create: false) { list throws(CommandError) -> Bytes in
                (end == .left ? list.popFirst() : list.popLast())!
            }!
            ctx.dirty()
            ctx.modified(key, end.popEvent, .list)
            ctx.propagate([Array(end == .left ? "LPOP".utf8 : "RPOP".utf8), Array(key.readableBytesView)])
            ctx.reply.array(2)
            ctx.reply.bulk(key)
            element.withBytes { ctx.reply.bulk($0) }
            return
        }
        wait(&ctx, keys: keys, timeout: timeout)
    }

    static func blpop(_ ctx: inout CommandContext) throws(CommandError) { try blockingPop(&ctx, end: .left) }
    static func brpop(_ ctx: inout CommandContext) throws(CommandError) { try blockingPop(&ctx, end: .right) }

    static func blockingMove(_ ctx: inout CommandContext, from: ListCommands.End, to: ListCommands.End, timeoutIndex: Int) throws(CommandError) {
        let timeout = try BlockingTimeout.parse(ctx, timeoutIndex)
        let moved: Bytes?
        do {
            moved = try ListCommands.move(&ctx, source: ctx.args[1], destination: ctx.args[2], from: from, to: to)
        } catch {
            // Served from the queue with a list to pop but a destination of another type: like Redis, the
            // client gets WRONGTYPE and its wait ends (the next client waiting on the key is served). A
            // source that now holds another type keeps it waiting.
            if ctx.isRetryingBlocked, (try? ctx.exists(ListKind.self, ctx.args[1])) == true {
                ctx.server.countError(error)
                ctx.reply.error(error.bytes)
                return
            }
            throw error
        }
        if let element = moved {
            ctx.propagate([
                Array("LMOVE".utf8), ctx.bytes(1), ctx.bytes(2),
                Array(from == .left ? "LEFT".utf8 : "RIGHT".utf8), Array(to == .left ? "LEFT".utf8 : "RIGHT".utf8),
            ])
            element.withBytes { ctx.reply.bulk($0) }
            return
        }
        if ctx.isRetryingBlocked { return }
        if ctx.client.inTransaction { return ctx.reply.null() }
        ctx.server.block(ctx, keys: [ctx.args[1]], timeout: timeout)
    }

    static func blmove(_ ctx: inout CommandContext) throws(CommandError) {
        let from = try ListCommands.end(ctx, 3)
        let to = try ListCommands.end(ctx, 4)
        try blockingMove(&ctx, from: from, to: to, timeoutIndex: 5)
    }

    static func brpoplpush(_ ctx: inout CommandContext) throws(CommandError) {
        try blockingMove(&ctx, from: .right, to: .left, timeoutIndex: 3)
    }

    static func blmpop(_ ctx: inout CommandContext) throws(CommandError) {
        let timeout = try BlockingTimeout.parse(ctx, 1)
        let request = try ListCommands.parseMultiPop(ctx, numkeysIndex: 2)
        if try ListCommands.multiPop(&ctx, request) { return }
        wait(&ctx, keys: request.keys, timeout: timeout)
    }
}

extension BlockingCommands {
    /// BZPOPMIN / BZPOPMAX `key [key ...] timeout`: replies [key, member, score].
    static func blockingZPop(_ ctx: inout CommandContext, highest: Bool) throws(CommandError) {
        let timeout = try BlockingTimeout.parse(ctx, ctx.args.count - 1)
        let keys = (1..<(ctx.args.count - 1)).map { ctx.args[$0] }
        if let (key, popped) = try SortedSetCommands.pop(&ctx, keys: keys, highest: highest, count: 1) {
            ctx.reply.array(3)
            ctx.reply.bulk(key)
            popped[0].member.withBytes { ctx.reply.bulk($0) }
            ctx.reply.double(popped[0].score)
            return
        }
        wait(&ctx, keys: keys, timeout: timeout)
    }

    static func bzpopmin(_ ctx: inout CommandContext) throws(CommandError) { try blockingZPop(&ctx, highest: false) }
    static func bzpopmax(_ ctx: inout CommandContext) throws(CommandError) { try blockingZPop(&ctx, highest: true) }

    static func bzmpop(_ ctx: inout CommandContext) throws(CommandError) {
        let timeout = try BlockingTimeout.parse(ctx, 1)
        let request = try SortedSetCommands.parseMultiPop(ctx, numkeysIndex: 2)
        if try SortedSetCommands.multiPop(&ctx, request) { return }
        wait(&ctx, keys: request.keys, timeout: timeout)
    }
}
