import Testing

@testable import NovaServer

/// glibc's `mallinfo2` walks every free chunk (4-5 ms on a 1.4 GB heap of churned 16 KB values), so the
/// cron samples no sooner than a hundred times the last sample's cost after it, and at least a
/// millisecond apart.
@Suite("Allocator samples")
struct MemorySamplingTests {
    @Test func cronSamplesAreSpacedByTheirCost() throws {
        let h = try Harness()
        let server = h.server
        let (taken, spacing) = server.withLock { () -> (UInt64, UInt64) in
            server.memorySampleCost = 5_000_000  // as if the last sample took 5 ms
            return (server.memorySampleTime, server.memorySampleSpacing)
        }
        #expect(spacing == 500_000_000)
        server.sampleMemoryFromCron()
        #expect(server.withLock { server.memorySampleTime } == taken, "not due within 500 ms of the last")

        // Long enough ago: the cron samples, and the cost it measures sets the next spacing.
        server.withLock { server.memorySampleTime = taken &- 600_000_000 }
        server.sampleMemoryFromCron()
        let (after, cost, allocated) = server.withLock {
            (server.memorySampleTime, server.memorySampleCost, server.memorySample.allocated)
        }
        #expect(after > taken && cost < 5_000_000 && allocated > 0)
        #expect(server.withLock { server.memorySampleSpacing } == max(1_000_000, cost * 100))

        // A cheap sample is never repeated within a millisecond.
        server.withLock { server.memorySampleCost = 0 }
        #expect(server.withLock { server.memorySampleSpacing } == 1_000_000)
    }
}

/// The free-memory reclaimer releases once the unused resident bytes grew past the floor by 8 MB, or by
/// an eighth of the heap in use when that is more (a busy large heap recycles its free chunks), or by
/// 8 MB for ten ticks in a row.
@Suite("Free-memory reclaimer")
struct FreeMemoryReclaimerTests {
    @Test func smallHeapsReleaseAfterEightMegabytes() {
        var reclaimer = FreeMemoryReclaimer()
        func due(_ unused: Int) -> Bool { reclaimer.isDue(unused: unused, allocated: 20 << 20) }
        #expect(!due(8 << 20))
        #expect(due((8 << 20) + 1))
        reclaimer.released(unused: 3 << 20)  // what fragmentation kept
        #expect(!due(11 << 20))
        #expect(due((11 << 20) + 1))
        // A smaller gap lowers the floor.
        #expect(!due(1 << 20))
        #expect(reclaimer.floor == 1 << 20)
        #expect(due((9 << 20) + 1))
    }

    @Test func largeHeapsKeepAnEighthForReuse() {
        var reclaimer = FreeMemoryReclaimer()
        func due(_ unused: Int) -> Bool { reclaimer.isDue(unused: unused, allocated: 1600 << 20) }
        #expect(reclaimer.threshold(allocated: 1600 << 20) == 200 << 20)
        #expect(!due(100 << 20))
        #expect(!due(200 << 20))
        #expect(due(201 << 20))
        reclaimer.released(unused: 0)
        // A gap above 8 MB but below the eighth is released once it has lasted ten ticks; one tick
        // below 8 MB starts the count again.
        for _ in 0..<9 { #expect(!due(50 << 20)) }
        #expect(!due(1 << 20))
        for _ in 0..<9 { #expect(!due(50 << 20)) }
        #expect(due(50 << 20))
        reclaimer.released(unused: 2 << 20)
        #expect(!due(50 << 20))
    }
}
