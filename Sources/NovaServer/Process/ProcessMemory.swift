#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CNovaSystem

/// What the process holds in memory, from the allocator and the kernel.
enum ProcessMemory {
    /// Bytes currently handed out by malloc (glibc `mallinfo2`: arena bytes in use plus mmapped blocks).
    static func allocatedBytes() -> Int {
        Int(nova_allocated_bytes())
    }

    /// Bytes the allocator keeps free in its arenas (freed by the program, not yet returned to the system).
    static func allocatorFreeBytes() -> Int {
        Int(nova_free_bytes())
    }

    /// Returns the allocator's free pages to the system. Glibc, unlike the jemalloc Redis ships with,
    /// does not do it by itself for the arenas of threads other than the main one: without this, the
    /// buffers of connections that closed stay in RSS.
    static func releaseFreeMemory() {
        _ = nova_release_free_memory()
    }

    /// The allocator's own report (glibc's `malloc_info` XML), or nil when the allocator has none.
    static func allocatorReport() -> String? {
        var length = 0
        guard let text = nova_malloc_info(&length) else { return nil }
        defer { free(text) }
        return String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self)
    }

    /// The usable size of the heap block at `pointer` (glibc `malloc_usable_size`).
    static func allocationSize(_ pointer: UnsafeMutableRawPointer) -> Int {
        Int(nova_allocation_size(pointer))
    }

    /// Resident set size in bytes, from /proc/self/statm.
    static func residentBytes() -> Int {
        guard let text = ConfigStore.readFile("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Physical memory of the machine.
    static func totalSystemMemory() -> Int {
        Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// CPU seconds used by the process: (system, user).
    static func cpuTimes() -> (system: Double, user: Double) {
        var system: Int64 = 0
        var user: Int64 = 0
        nova_process_cpu(&system, &user)
        return (Double(system) / 1_000_000, Double(user) / 1_000_000)
    }
}

/// Process-wide settings of the server executable.
package enum ServerProcess {
    /// Keeps allocations of 1 MB and more out of the allocator's arenas. Glibc raises its mmap threshold
    /// to the largest block freed so far (up to 32 MB): after clients sent a few 600 KB values, every
    /// buffer up to that size was carved from the arenas and fragmented them, and RSS stayed at 40 MB
    /// with 1 MB in use after a fuzz run and FLUSHALL (19 MB, the start, with the threshold fixed).
    /// Below 1 MB, the 256 KB reply chunks and query buffers keep coming from the arenas.
    package static func configureAllocator() {
        nova_fix_mmap_threshold(1 << 20)
    }

    /// Replaces the process's command line (ps, /proc/PID/cmdline) with `title`, as redis-server does,
    /// so that a password given as a flag (`--requirepass`, `--masterauth`) is not readable by other
    /// users. Call once the arguments have been read; the title is cut to the original line's length.
    package static func setTitle(_ title: String) {
        #if os(Linux)
        _ = title.withCString { nova_set_process_title(CommandLine.argc, CommandLine.unsafeArgv, $0) }
        #endif
    }
}

/// Gives memory the allocator holds but does not use back to the system, from the cron.
///
/// The measure is RSS minus the bytes in use: what the process keeps resident without using. After a
/// release, what remains of that gap is fragmentation no release can return; the next release happens
/// only once the gap has grown `threshold` beyond it (connections' buffers freed, a FLUSHALL), so a
/// fragmented heap is not walked again and again for nothing.
///
/// The threshold grows with the heap: 8 MB, or an eighth of the bytes in use when that is more. A busy
/// server recycles its free chunks (values overwritten, query buffers refilled); releasing them gives
/// the pages back only for the next allocations to fault them in again, zeroed by the kernel. With a
/// fixed 8 MB, 16 KB SETs over a 1.6 GB heap ran into that cycle (a release each second, 19% of the
/// server's CPU in the kernel clearing pages, half the throughput) in 2 of 7 runs. A gap between 8 MB
/// and the eighth is released once it has lasted `decayTicks` ticks (seconds): a large heap that
/// shrank still gives the memory back, and a churning one pays for a release a tenth as often.
struct FreeMemoryReclaimer {
    /// The least growth of the unused resident bytes that triggers a release.
    var minimumThreshold = 8 << 20
    /// Ticks a gap above `minimumThreshold` (but below the heap's threshold) lasts before a release.
    var decayTicks = 10
    /// Unused resident bytes right after the last release.
    private(set) var floor = 0
    /// Consecutive ticks the gap has been above `minimumThreshold`.
    private var ticksAbove = 0

    /// How far the unused resident bytes may grow past the floor before a release, for a heap of
    /// `allocated` bytes in use.
    func threshold(allocated: Int) -> Int { max(minimumThreshold, allocated / 8) }

    /// Whether to release now, given the unused resident bytes (RSS minus `allocated`); a smaller gap
    /// than the floor lowers the floor.
    mutating func isDue(unused: Int, allocated: Int) -> Bool {
        if unused < floor { floor = max(0, unused) }
        if unused > floor + threshold(allocated: allocated) { return true }
        guard unused > floor + minimumThreshold else {
            ticksAbove = 0
            return false
        }
        ticksAbove += 1
        return ticksAbove >= decayTicks
    }

    /// Records what a release left unused: the new floor.
    mutating func released(unused: Int) {
        floor = max(0, unused)
        ticksAbove = 0
    }

    /// Releases free memory when enough accumulated; true when it did. `allocated` is the cron's latest
    /// allocator sample (a release gives back free pages only, so it stays true across one): asking the
    /// allocator here too walked every free chunk once more each second, with its arenas locked.
    mutating func tick(allocated: Int) -> Bool {
        guard isDue(unused: ProcessMemory.residentBytes() - allocated, allocated: allocated) else { return false }
        ProcessMemory.releaseFreeMemory()
        released(unused: ProcessMemory.residentBytes() - allocated)
        return true
    }
}
