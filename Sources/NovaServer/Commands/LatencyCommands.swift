import NIOCore
import NovaRESP

/// LATENCY LATEST/HISTORY/RESET/GRAPH/DOCTOR/HISTOGRAM/HELP, over the monitor and histograms kept by
/// `ServerCore` (Features/Latency.swift).
enum LatencyCommands {
    static func latest(_ ctx: inout CommandContext) throws(CommandError) {
        let events = ctx.server.latencyMonitor.events
        ctx.reply.array(events.count)
        for (name, series) in events {
            let last = series.samples.last ?? LatencyMonitor.Sample(time: 0, milliseconds: 0)
            ctx.reply.array(4)
            ctx.reply.bulk(name)
            ctx.reply.integer(last.time)
            ctx.reply.integer(last.milliseconds)
            ctx.reply.integer(series.max)
        }
    }

    static func history(_ ctx: inout CommandContext) throws(CommandError) {
        let samples = ctx.server.latencyMonitor.series(ctx.args.string(2))?.samples ?? []
        ctx.reply.array(samples.count)
        for sample in samples {
            ctx.reply.array(2)
            ctx.reply.integer(sample.time)
            ctx.reply.integer(sample.milliseconds)
        }
    }

    static func reset(_ ctx: inout CommandContext) throws(CommandError) {
        let names = (2..<ctx.args.count).map { ctx.args.string($0) }
        ctx.reply.integer(ctx.server.latencyMonitor.reset(names))
    }

    static func graph(_ ctx: inout CommandContext) throws(CommandError) {
        let event = ctx.args.string(2)
        guard let series = ctx.server.latencyMonitor.series(event) else {
            throw CommandError("ERR No samples available for event '\(event)'")
        }
        ctx.reply.verbatim(LatencyMonitor.graph(event, series, now: ctx.now / 1000))
    }

    static func doctor(_ ctx: inout CommandContext) throws(CommandError) {
        ctx.reply.verbatim(report(ctx.server, now: ctx.now / 1000))
    }

    /// LATENCY DOCTOR's text: Redis's opening lines, one line of figures per event and advice that
    /// follows from which events were seen.
    static func report(_ server: ServerCore, now: Int64) -> String {
        guard server.latencySettings.monitorThreshold > 0 || !server.latencyMonitor.events.isEmpty else {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
        }
        let events = server.latencyMonitor.events.filter { !$0.series.samples.isEmpty }
        guard !events.isEmpty else {
            return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n"
        }
        var text = "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n"
        for (number, (name, series)) in events.enumerated() {
            let values = series.samples.map(\.milliseconds)
            let average = values.reduce(0, +) / values.count
            let deviation = values.map { abs($0 - average) }.reduce(0, +) / values.count
            // As Redis: the time since the oldest sample (at least one second), per sample.
            let period = Double(max(1, now - series.samples[0].time)) / Double(values.count)
            text += "\(number + 1). \(name): \(values.count) latency spikes (average \(average)ms, mean deviation \(deviation)ms, period \(String(fixed: period, digits: 2)) sec). Worst all time event \(series.max)ms.\n"
        }
        text += "\nI have a few advices for you:\n\n"
        let names = Set(events.map(\.name))
        if names.contains("command") {
            text += "- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n"
            text += "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n"
        }
        if names.contains("fast-command") {
            text += "- Commands that run in constant or logarithmic time were slow: the machine is likely overloaded, swapping, or the process is being descheduled (check the CPU steal time of the virtual machine and `redis-cli --intrinsic-latency`).\n"
        }
        if names.contains("expire-cycle") {
            text += "- Many keys expire at the same moment: spread their TTLs (add a random part) so that the active expiry cycle does not stall the server.\n"
        }
        if names.contains("eviction-cycle") {
            text += "- Eviction runs for long stretches: raise maxmemory, or store fewer large values, so that fewer keys must be evicted per write.\n"
        }
        return text
    }

    static func histogram(_ ctx: inout CommandContext) throws(CommandError) {
        let server = ctx.server
        var specs: [CommandSpec] = []
        if ctx.args.count == 2 {
            specs = server.commands.all.filter { server.latencyHistograms[$0.id].total > 0 }
        } else {
            // Each name asked for is answered, repeated ones too, as Redis does.
            for index in 2..<ctx.args.count {
                guard let spec = server.commands.resolve(ctx.args.string(index)),
                      server.latencyHistograms[spec.id].total > 0 else { continue }
                specs.append(spec)
            }
        }
        ctx.reply.map(specs.count)
        for spec in specs {
            let histogram = server.latencyHistograms[spec.id]
            ctx.reply.bulk(spec.fullName)
            ctx.reply.map(2)
            ctx.reply.bulk("calls")
            ctx.reply.integer(histogram.total)
            ctx.reply.bulk("histogram_usec")
            let buckets = histogram.cumulativeBuckets()
            ctx.reply.map(buckets.count)
            for bucket in buckets {
                ctx.reply.integer(bucket.microseconds)
                ctx.reply.integer(bucket.count)
            }
        }
    }

    static func help(_ ctx: inout CommandContext) throws(CommandError) {
        Help.reply(&ctx, "LATENCY", [
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ])
    }
}
