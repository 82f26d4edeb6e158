import Testing

import NovaEngine
@testable import NovaServer

/// The diagnostics' own types: the latency histogram's HdrHistogram layout, the latency monitor and its
/// graph, SHA-1, the dataset digest and LOLWUT's canvas.
@Suite("Diagnostics: latency, digests, LOLWUT")
struct DiagnosticsTests {
    @Test func histogramSlotsAreThoseOfRedisHdrHistogram() {
        // Values seen in redis-server's INFO latencystats: 3,000 ns reports 3.007 µs, 7,000 → 7.007,
        // 29,000 → 29.055 (two significant digits: slots of 16, 32 and 128 ns there).
        #expect(LatencyHistogram.highestEquivalent(3000) == 3007)
        #expect(LatencyHistogram.highestEquivalent(7000) == 7007)
        #expect(LatencyHistogram.highestEquivalent(29000) == 29055)
        #expect(LatencyHistogram.highestEquivalent(100) == 100)  // exact below 256
        for value in [1, 255, 256, 1024, 4095, 999_999_999] {
            let index = LatencyHistogram.countsIndex(of: value)
            #expect(index < LatencyHistogram.countsLength)
            #expect(LatencyHistogram.value(atIndex: index) <= value)
            #expect(LatencyHistogram.highestEquivalent(value) >= value)
        }
    }

    @Test func percentilesAndCumulativeBuckets() {
        var histogram = LatencyHistogram()
        for nanoseconds: UInt64 in [900, 3000, 3000, 7000, 2_000_000_000] { histogram.record(nanoseconds: nanoseconds) }
        #expect(histogram.total == 5)
        #expect(histogram.value(atPercentile: 50) == 3007)
        #expect(histogram.value(atPercentile: 0) == 900)
        // Over one second is kept as one second.
        #expect(histogram.value(atPercentile: 100) == LatencyHistogram.highestEquivalent(1_000_000_000))
        let buckets = histogram.cumulativeBuckets()
        #expect(buckets.first! == (1, 1))
        #expect(buckets.map(\.count) == buckets.map(\.count).sorted())
        #expect(buckets.last!.count == 5)
        #expect(buckets.contains { $0 == (4, 3) } && buckets.contains { $0 == (8, 4) })
    }

    @Test func monitorKeepsTheWorstSpikePerSecondAndAtMost160() {
        var monitor = LatencyMonitor()
        monitor.add("command", milliseconds: 120, time: 100)
        monitor.add("command", milliseconds: 300, time: 100)
        monitor.add("command", milliseconds: 150, time: 100)
        monitor.add("fast-command", milliseconds: 50, time: 101)
        #expect(monitor.series("command")!.samples == [.init(time: 100, milliseconds: 300)])
        #expect(monitor.series("command")!.max == 300)
        for second in 0..<200 { monitor.add("expire-cycle", milliseconds: second, time: Int64(1000 + second)) }
        #expect(monitor.series("expire-cycle")!.samples.count == 160)
        #expect(monitor.series("expire-cycle")!.samples.first!.time == 1040)
        #expect(monitor.events.map(\.name) == ["command", "fast-command", "expire-cycle"])
        #expect(monitor.reset(["command", "nosuch"]) == 1)
        #expect(monitor.reset([]) == 2)
    }

    @Test func graphIsRedisSparkline() {
        // Two spikes of 200 and 150 ms, 10 and 9 seconds ago, as redis-server drew them.
        let series = LatencyMonitor.Series(samples: [.init(time: 990, milliseconds: 200), .init(time: 991, milliseconds: 150)], max: 200)
        let expected = "command - high 200 ms, low 150 ms (all time high 200 ms)\n"
            + String(repeating: "-", count: 80) + "\n"
            + "# \n| \n| \n|_\n  \n19\n0s\ns \n"
        #expect(LatencyMonitor.graph("command", series, now: 1000) == expected)
    }

    @Test func sha1MatchesTheStandardVectors() {
        #expect(SHA1.hex(Array("".utf8)) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(SHA1.hex(Array("abc".utf8)) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(SHA1.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(SHA1.hex([UInt8](repeating: 0x61, count: 1_000_000)) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func digestIgnoresTheOrderOfUnorderedElementsOnly() {
        var a = DatasetDigest(), b = DatasetDigest()
        a.xor(Array("x".utf8)); a.xor(Array("y".utf8))
        b.xor(Array("y".utf8)); b.xor(Array("x".utf8))
        #expect(a.bytes == b.bytes)
        var c = DatasetDigest(), d = DatasetDigest()
        c.mix(Array("x".utf8)); c.mix(Array("y".utf8))
        d.mix(Array("y".utf8)); d.mix(Array("x".utf8))
        #expect(c.bytes != d.bytes)
        #expect(DatasetDigest().isZero && DatasetDigest().hex == String(repeating: "0", count: 40))
        var withTTL = DatasetDigest(), without = DatasetDigest()
        withTTL.add(.string(Bytes("v")), hasExpiry: true)
        without.add(.string(Bytes("v")), hasExpiry: false)
        #expect(withTTL.bytes != without.bytes)
    }

    @Test func lolwutDrawsBrailleSquares() {
        let art = String(decoding: Lolwut.schotter(columns: 66, squaresPerRow: 8, squaresPerColumn: 12), as: UTF8.self)
        let lines = art.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first!.unicodeScalars.count == 66)
        #expect(art.unicodeScalars.allSatisfy { $0 == "\n" || (0x2800...0x28FF).contains($0.value) })
        #expect(art.unicodeScalars.contains { $0.value != 0x2800 && $0 != "\n" })
        // Version 6: rows of ANSI cells, the sky (top row) white.
        let skyline = String(decoding: Lolwut.skyline(columns: 30, rows: 12), as: UTF8.self).split(separator: "\n")
        #expect(skyline.count == 12)
        #expect(skyline[0] == String(repeating: "\u{1B}[0;97;107m \u{1B}[0m", count: 30))
        #expect(skyline.allSatisfy { $0.split(separator: "\u{1B}[0m", omittingEmptySubsequences: false).count == 31 })
        var canvas = Lolwut.Canvas(width: 4, height: 4)
        canvas.line(0, 0, 3, 3)
        #expect((0..<4).allSatisfy { canvas.pixel($0, $0) } && !canvas.pixel(1, 0))
        #expect(String(decoding: canvas.rendered(), as: UTF8.self) == "\u{2811}\u{2884}\n")
    }
}
