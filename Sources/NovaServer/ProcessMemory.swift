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
