import NIOCore
import NovaEngine

/// MULTI, EXEC, DISCARD, WATCH, UNWATCH. Commands sent after MULTI are checked and queued by dispatch;
/// EXEC runs them under the server lock, so no other client's command interleaves.
enum TransactionCommands {
    static func multi(_ ctx: inout CommandContext) throws(CommandError) {
        guard !ctx.client.inTransaction else { throw CommandError("ERR MULTI calls can not be nested") }
        ctx.client.transaction = Transaction()
        ctx.reply.ok()
    }

    static func exec(_ ctx: inout CommandContext) throws(CommandError) {
        let client = ctx.client
        guard let transaction = client.transaction else { throw CommandError("ERR EXEC without MULTI") }
        let server = ctx.server
        if transaction.failed {
            server.discardTransaction(client)
            throw CommandError("EXECABORT Transaction discarded because of previous errors.")
        }
        if client.watchInvalidated || server.watchedKeyExpired(client) {
            server.discardTransaction(client)
            ctx.reply.nullArray()
            return
        }
        // Unwatch first: the transaction's own writes must not mark this client.
        server.watches.unwatchAll(client)
        server.runTransaction(&ctx, transaction)
        ctx.propagation = []  // the queued commands were logged; EXEC itself is not
        client.transaction = nil
    }

    static func discard(_ ctx: inout CommandContext) throws(CommandError) {
        guard ctx.client.inTransaction else { throw CommandError("ERR DISCARD without MULTI") }
        ctx.server.discardTransaction(ctx.client)
        ctx.reply.ok()
    }

    static func watch(_ ctx: inout CommandContext) throws(CommandError) {
        guard !ctx.client.inTransaction else { throw CommandError("ERR WATCH inside MULTI is not allowed") }
        for index in 1..<ctx.args.count { ctx.server.watch(ctx.client, ctx.args[index]) }
        ctx.reply.ok()
    }

    static func unwatch(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.server.watches.unwatchAll(ctx.client)
        ctx.reply.ok()
    }
}
