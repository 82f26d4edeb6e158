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
