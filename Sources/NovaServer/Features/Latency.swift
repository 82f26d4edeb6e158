import NovaRESP

/// A per-command latency histogram with the bucket layout of the HdrHistogram Redis 7.0 uses for
/// `latency-tracking` (values from 1 ns to 1 s, two significant digits): each power-of-two range holds
/// 128 equal sub-buckets, so a value is kept within 1% and the percentiles in INFO latencystats and the
/// buckets of LATENCY HISTOGRAM come out as redis-server reports them.
struct LatencyHistogram {
    /// 2 significant digits: 256 sub-buckets per range, the lower half shared with the range below.
    private static let subBucketHalfCountMagnitude = 7
    private static let subBucketHalfCount = 1 << subBucketHalfCountMagnitude
    private static let subBucketMask = (1 << (subBucketHalfCountMagnitude + 1)) - 1
    /// Ranges needed to reach one second (2^8 · 2^22 > 10^9).
    private static let bucketCount = 23
    static let countsLength = (bucketCount + 1) * subBucketHalfCount
    static let lowest = 1
    static let highest = 1_000_000_000

    /// Empty until the first value (most commands are never called; each histogram is 12 KB). A slot
    /// saturates at 2^32 - 1 calls.
    private(set) var counts: [UInt32] = []
    private(set) var total = 0

    /// Records one duration in nanoseconds, clamped to 1 ns…1 s as Redis clamps it.
    @inline(__always)
    mutating func record(nanoseconds: UInt64) {
        if counts.isEmpty { counts = [UInt32](repeating: 0, count: Self.countsLength) }
        let value = Int(min(UInt64(Self.highest), max(UInt64(Self.lowest), nanoseconds)))
        let index = Self.countsIndex(of: value)
        if counts[index] != .max {
            counts[index] += 1
            total += 1
        }
    }

    private static func bucketIndex(of value: Int) -> Int {
        (Int.bitWidth - (value | subBucketMask).leadingZeroBitCount) - (subBucketHalfCountMagnitude + 1)
    }

    static func countsIndex(of value: Int) -> Int {
        let bucket = bucketIndex(of: value)
        let subBucket = value >> bucket
        return ((bucket + 1) << subBucketHalfCountMagnitude) + (subBucket - subBucketHalfCount)
    }

    /// The smallest value sharing `index`'s slot.
    static func value(atIndex index: Int) -> Int {
        var bucket = (index >> subBucketHalfCountMagnitude) - 1
        var subBucket = (index & (subBucketHalfCount - 1)) + subBucketHalfCount
        if bucket < 0 {
            subBucket -= subBucketHalfCount
            bucket = 0
        }
        return subBucket << bucket
    }

    /// The largest value counted in the same slot as `value`.
    static func highestEquivalent(_ value: Int) -> Int {
        let bucket = bucketIndex(of: value)
        let subBucket = value >> bucket
        let lowest = subBucket << bucket
        let size = 1 << (subBucket >= 2 * subBucketHalfCount ? bucket + 1 : bucket)
        return lowest + size - 1
    }

    /// The value at `percentile` (0…100), as HdrHistogram's `hdr_value_at_percentile`.
    func value(atPercentile percentile: Double) -> Int {
        let wanted = max(1, Int((min(percentile, 100) / 100) * Double(total) + 0.5))
        var seen = 0
        for index in counts.indices {
            seen += Int(counts[index])
            if seen >= wanted {
                let value = Self.value(atIndex: index)
                return percentile == 0 ? value : Self.highestEquivalent(value)
            }
        }
        return 0
    }

    /// LATENCY HISTOGRAM's buckets: for each power of two from 1,024 ns, the microseconds it reaches and
    /// how many calls took at most that long, listing only buckets where the count grew.
    func cumulativeBuckets() -> [(microseconds: Int, count: Int)] {
        var buckets: [(Int, Int)] = []
        var level = 1024
        var index = 0
        var seen = 0
        while seen < total {
            let limit = Self.countsIndex(of: min(level, Self.highest))
            let previous = seen
            while index <= limit && index < counts.count {
                seen += Int(counts[index])
                index += 1
            }
            if seen > previous { buckets.append((Self.highestEquivalent(level) / 1000, seen)) }
            if level >= Self.highest { break }
            level *= 2
        }
        return buckets
    }
}

/// The latency monitor (`latency-monitor-threshold`): for each event (`command`, `fast-command`,
/// `expire-cycle`, `eviction-cycle`) the last 160 seconds that saw a spike, keeping the worst spike of
/// each second, and the all-time worst.
struct LatencyMonitor {
    struct Sample: Equatable {
        /// Unix seconds.
        var time: Int64
        var milliseconds: Int
    }

    struct Series {
        /// Oldest first, at most `LatencyMonitor.length`.
        var samples: [Sample] = []
        var max = 0
    }

    static let length = 160
    /// Events in the order they first appeared.
    private(set) var events: [(name: String, series: Series)] = []

    /// Adds a spike of `milliseconds` to `event` at `time`; a spike in the same second as the latest one
    /// only raises it.
    mutating func add(_ event: String, milliseconds: Int, time: Int64) {
        let position = events.firstIndex { $0.name == event } ?? {
            events.append((event, Series()))
            return events.count - 1
        }()
        events[position].series.max = Swift.max(events[position].series.max, milliseconds)
        if let last = events[position].series.samples.last, last.time == time {
            events[position].series.samples[events[position].series.samples.count - 1].milliseconds =
                Swift.max(last.milliseconds, milliseconds)
            return
        }
        events[position].series.samples.append(Sample(time: time, milliseconds: milliseconds))
        if events[position].series.samples.count > Self.length { events[position].series.samples.removeFirst() }
    }

    func series(_ event: String) -> Series? {
        events.first { $0.name == event }?.series
    }

    /// Forgets the named events (all when `names` is empty); returns how many were forgotten.
    mutating func reset(_ names: [String]) -> Int {
        let before = events.count
        if names.isEmpty {
            events.removeAll()
        } else {
            events.removeAll { names.contains($0.name) }
        }
        return before - events.count
    }

    /// LATENCY GRAPH's text: a title line, a rule, and a sparkline of the samples four rows high, filled,
    /// with each sample labelled by how long ago it was (`12s`, `3m`, `2h`, `1d`) written downwards.
    static func graph(_ event: String, _ series: Series, now: Int64) -> String {
        let values = series.samples.map(\.milliseconds)
        let low = values.min() ?? 0, high = values.max() ?? 0
        var text = "\(event) - high \(high) ms, low \(low) ms (all time high \(series.max) ms)\n"
        text += String(repeating: "-", count: graphColumns) + "\n"
        let labels = series.samples.map { sample -> String in
            let elapsed = now - sample.time
            if elapsed < 60 { return "\(elapsed)s" }
            if elapsed < 3600 { return "\(elapsed / 60)m" }
            if elapsed < 86_400 { return "\(elapsed / 3600)h" }
            return "\(elapsed / 86_400)d"
        }
        var start = 0
        while start < values.count {
            let end = min(values.count, start + graphColumns)
            if start != 0 { text += "\n" }
            text += sparkline(Array(values[start..<end]), labels: Array(labels[start..<end]), low: low, high: high)
            start = end
        }
        return text
    }

    static let graphColumns = 80
    private static let graphRows = 4

    /// Rows of `_o#` steps (`|` below a filled step), a blank row, then the labels one character a row.
    private static func sparkline(_ values: [Int], labels: [String], low: Int, high: Int) -> String {
        let marks: [Character] = ["_", "o", "#"]
        let steps = marks.count * graphRows
        let range = high - low == 0 ? 1.0 : Double(high - low)
        let stepOf = values.map { value in min(steps - 1, max(0, Int(Double(value - low) * Double(steps) / range))) }
        var text = ""
        for row in 0..<graphRows {
            var line = ""
            for step in stepOf {
                let mark = step - (graphRows - row - 1) * marks.count
                line.append(mark >= marks.count ? "|" : mark >= 0 ? marks[mark] : " ")
            }
            text += line + "\n"
        }
        text += String(repeating: " ", count: values.count) + "\n"
        let tallest = labels.map(\.count).max() ?? 0
        for row in 0..<tallest {
            text += String(labels.map { label in row < label.count ? label[label.index(label.startIndex, offsetBy: row)] : " " }) + "\n"
        }
        return text
    }
}

extension ServerCore {
    /// After a command ran for `nanoseconds` (lock held): its latency histogram and, past
    /// `latency-monitor-threshold`, a `command` or `fast-command` spike. Both settings are cached by
    /// `applySettings`, so the common case costs a histogram increment.
    @inline(__always)
    func recordLatency(_ spec: CommandSpec, nanoseconds: UInt64) {
        if latencySettings.tracking { latencyHistograms[spec.id].record(nanoseconds: nanoseconds) }
        let threshold = latencySettings.monitorThreshold
        if threshold > 0 {
            let milliseconds = Int(nanoseconds / 1_000_000)
            if milliseconds >= threshold {
                addLatencySample(spec.flags.contains(.fast) ? "fast-command" : "command", milliseconds: milliseconds)
            }
        }
    }

    /// Records a spike of an event that took `milliseconds`, when monitoring is on and it passed the
    /// threshold (expiry and eviction cycles call this too).
    func addLatencySampleIfNeeded(_ event: String, milliseconds: Int) {
        let threshold = latencySettings.monitorThreshold
        guard threshold > 0, milliseconds >= threshold else { return }
        addLatencySample(event, milliseconds: milliseconds)
    }

    private func addLatencySample(_ event: String, milliseconds: Int) {
        latencyMonitor.add(event, milliseconds: milliseconds, time: SystemClock.nowMilliseconds() / 1000)
    }

    /// INFO latencystats: `latency_percentiles_usec_<command>:p50=…,p99=…` for each command called.
    func latencyStatsLines() -> [String] {
        let percentiles = (config.value("latency-tracking-info-percentiles") ?? "")
            .split(separator: " ").map(String.init)
        var lines: [String] = []
        for spec in commands.all {
            let histogram = latencyHistograms[spec.id]
            guard histogram.total > 0 else { continue }
            let values = percentiles.map { name -> String in
                let micros = Double(histogram.value(atPercentile: Double(name) ?? 0)) / 1000
                return "p\(name)=\(String(fixed: micros, digits: 3))"
            }
            lines.append("latency_percentiles_usec_\(spec.fullName):" + values.joined(separator: ","))
        }
        return lines
    }
}
