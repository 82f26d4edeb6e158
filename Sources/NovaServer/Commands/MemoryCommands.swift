import NIOCore
import NovaEngine
import NovaRESP

/// MEMORY USAGE/STATS/DOCTOR/MALLOC-STATS/PURGE/HELP.
///
/// Figures come from two sources: the engine's own accounting (each key's `Entry.footprint`: its share
/// of the table, its record's block — key and small value inside — and what a value kept outside the
/// record owns, kept up to date on every write) and
/// the allocator (glibc's `mallinfo2`, sampled by the cron and by these commands).
enum MemoryCommands {
    /// The bytes a key costs by the engine's accounting. The figure is exact (kept on every write), so
    /// unlike Redis nothing is sampled: SAMPLES is checked as Redis checks it and has no effect.
    static func usage(_ ctx: inout CommandContext) throws(CommandError) {
        var index = 3
        while index < ctx.args.count {
            guard ctx.args.string(index).lowercased() == "samples", index + 1 < ctx.args.count else { throw .syntax }
            guard try ctx.args.integer(index + 1) >= 0 else { throw .syntax }
            index += 2
        }
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[2], [.noTouch, .noStats]) else {
            ctx.reply.null()
            return
        }
        ctx.reply.integer(ctx.keyspace.entry(ctx.db, ref).footprint)
    }

    /// MEMORY STATS: Redis's fields, in its order, from this server's figures.
    static func stats(_ ctx: inout CommandContext) throws(CommandError) {
        let figures = Figures(ctx.server)
        var fields: [(String, Stat)] = [
            ("peak.allocated", .integer(figures.peak)),
            ("total.allocated", .integer(figures.used)),
            ("startup.allocated", .integer(figures.startup)),
            ("replication.backlog", .integer(0)),
            ("clients.slaves", .integer(0)),
            ("clients.normal", .integer(figures.clients)),
            ("cluster.links", .integer(0)),
            ("aof.buffer", .integer(0)),
            ("lua.caches", .integer(0)),
            ("functions.caches", .integer(0)),
        ]
        for (index, database) in ctx.keyspace.databases.enumerated() where database.count > 0 {
            fields.append(("db.\(index)", .database(main: database.tableOverhead, expires: 0)))
        }
        fields += [
            ("overhead.total", .integer(figures.overhead)),
            ("keys.count", .integer(figures.keys)),
            ("keys.bytes-per-key", .integer(figures.keys == 0 ? 0 : (figures.used - figures.startup) / figures.keys)),
            ("dataset.bytes", .integer(figures.dataset)),
            ("dataset.percentage", .double(percent(figures.dataset, of: figures.used - figures.startup))),
            ("peak.percentage", .double(percent(figures.used, of: figures.peak))),
            ("allocator.allocated", .integer(figures.used)),
            ("allocator.active", .integer(figures.active)),
            ("allocator.resident", .integer(figures.rss)),
            ("allocator-fragmentation.ratio", .double(ratio(figures.active, figures.used))),
            ("allocator-fragmentation.bytes", .integer(figures.active - figures.used)),
            ("allocator-rss.ratio", .double(ratio(figures.rss, figures.active))),
            ("allocator-rss.bytes", .integer(figures.rss - figures.active)),
            ("rss-overhead.ratio", .double(1)),
            ("rss-overhead.bytes", .integer(0)),
            ("fragmentation", .double(ratio(figures.rss, figures.used))),
            ("fragmentation.bytes", .integer(figures.rss - figures.used)),
        ]
        ctx.reply.map(fields.count)
        for (name, value) in fields {
            ctx.reply.bulk(name)
            switch value {
            case .integer(let number): ctx.reply.integer(number)
            case .double(let number): ctx.reply.double(number)
            case .database(let main, let expires):
                ctx.reply.map(3)
                ctx.reply.bulk("overhead.hashtable.main")
                ctx.reply.integer(main)
                ctx.reply.bulk("overhead.hashtable.expires")
                ctx.reply.integer(expires)
                ctx.reply.bulk("overhead.hashtable.slot-to-keys")
                ctx.reply.integer(0)
            }
        }
    }

    private enum Stat {
        case integer(Int)
        case double(Double)
        case database(main: Int, expires: Int)
    }

    /// The figures MEMORY STATS and MEMORY DOCTOR work from (lock held).
    struct Figures {
        var used: Int, peak: Int, startup: Int, clients: Int, dataset: Int, keys: Int, rss: Int
        /// Allocated plus what the allocator holds free in its arenas (jemalloc's "active" has no exact
        /// glibc counterpart; this is the closest).
        var active: Int
        var overhead: Int { max(0, used - dataset) }
        /// The largest client input and output buffers, and how many clients there are.
        var largestOutput: Int, largestInput: Int, clientCount: Int

        init(_ server: ServerCore) {
            server.refreshMemorySample()
            used = server.usedMemory
            peak = max(server.peakMemory, used)
            startup = min(server.startupMemory, used)
            let all = server.clients.all
            clients = all.reduce(0) { $0 + $1.queryBufferBytes + $1.pendingOutputBytes }
            largestOutput = all.map(\.pendingOutputBytes).max() ?? 0
            largestInput = all.map(\.queryBufferBytes).max() ?? 0
            clientCount = all.count
            dataset = min(server.keyspace.footprint, used)
            keys = server.keyspace.keyCount
            rss = ProcessMemory.residentBytes()
            active = used + ProcessMemory.allocatorFreeBytes()
        }
    }

    private static func ratio(_ a: Int, _ b: Int) -> Double { b <= 0 ? 0 : Double(a) / Double(b) }
    private static func percent(_ a: Int, of b: Int) -> Double { b <= 0 ? 0 : Double(a) * 100 / Double(b) }

    static func doctor(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.verbatim(doctorReport(Figures(ctx.server)))
    }

    /// MEMORY DOCTOR's text: Redis's opening and closing lines; one paragraph per problem found.
    static func doctorReport(_ f: Figures) -> String {
        if f.used < 5 << 20 {
            return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n"
        }
        var issues: [String] = []
        if Double(f.peak) / Double(f.used) > 1.5 {
            issues.append(" * Peak memory: In the past this instance used more than 150% the memory that is currently using (\(f.peak) bytes at the peak, \(f.used) now). The allocator normally gives freed memory back to the system in time; MEMORY PURGE returns it at once. INFO memory shows both figures.")
        }
        if ratio(f.active, f.used) > 1.1 && f.active - f.used > 10 << 20 {
            issues.append(" * High allocator fragmentation: the allocator holds \(f.active - f.used) bytes it freed but has not given back. MEMORY PURGE trims its arenas; many deletions of large values followed by small writes cause this.")
        }
        if ratio(f.rss, f.used) > 1.4 && f.rss - f.used > 10 << 20 {
            issues.append(" * High process RSS overhead: the process is resident for \(f.rss) bytes while \(f.used) are in use. Large client buffers that were freed, or memory not yet returned, are the usual causes; MEMORY PURGE and INFO memory help to tell them apart.")
        }
        if f.clientCount > 0 && f.largestOutput > 200 << 10 {
            issues.append(" * Big client buffers: a client holds \(f.largestOutput) bytes of replies it has not read. Use CLIENT LIST to find it, and client-output-buffer-limit to bound such clients.")
        }
        if f.largestInput > 200 << 10 {
            issues.append(" * Big query buffers: a client has \(f.largestInput) bytes of commands not yet run, usually a pipeline far larger than needed or a very large value being sent.")
        }
        if issues.isEmpty {
            return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
        }
        return "Sam, I detected a few issues in this Redis instance memory implants:\n\n"
            + issues.joined(separator: "\n\n") + "\n\nI'm here to keep you safe, Sam. I want to help you.\n"
    }

    /// The allocator's own statistics: glibc's `malloc_info` XML here (Redis prints jemalloc's).
    static func mallocStats(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.verbatim(ProcessMemory.allocatorReport() ?? "Stats not supported for the current allocator")
    }

    /// Gives the allocator's free pages back to the system (glibc `malloc_trim`).
    static func purge(_ ctx: inout CommandContext) throws(CommandError) {
        ProcessMemory.releaseFreeMemory()
        ctx.server.sampleMemory()
        ctx.reply.ok()
    }

    static func help(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "MEMORY", [
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ])
    }
}
