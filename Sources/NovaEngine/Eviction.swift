/// What happens when memory reaches `maxmemory` (Redis's `maxmemory-policy`).
public enum EvictionPolicy: String, CaseIterable, Sendable {
    case noeviction
    case allkeysLRU = "allkeys-lru"
    case volatileLRU = "volatile-lru"
    case allkeysLFU = "allkeys-lfu"
    case volatileLFU = "volatile-lfu"
    case allkeysRandom = "allkeys-random"
    case volatileRandom = "volatile-random"
    case volatileTTL = "volatile-ttl"

    /// True when only keys with an expiry may be evicted.
    public var volatileOnly: Bool {
        switch self {
        case .volatileLRU, .volatileLFU, .volatileRandom, .volatileTTL: return true
        default: return false
        }
    }

    /// True when the access clock holds LFU state rather than an LRU time.
    public var usesLFU: Bool { self == .allkeysLFU || self == .volatileLFU }

    /// True for the LRU and LFU policies, which need a clock in every value (Redis's
    /// `MAXMEMORY_FLAG_NO_SHARED_INTEGERS`).
    public var needsPerKeyClock: Bool { usesLFU || self == .allkeysLRU || self == .volatileLRU }
}

/// Redis's LRU clock: seconds modulo 2^24 (194 days), the 24 bits a key record keeps of its access
/// clock. Idle times are taken around the wrap, and set from an idle time (RESTORE IDLETIME, an RDB's
/// idle field), exactly as Redis 7.0 does (`estimateObjectIdleTime`, `objectSetLRUOrLFU`), so that
/// OBJECT IDLETIME answers as Redis's does for any idle time given.
public enum LRU {
    /// The clock's bits.
    public static let clockMask: UInt32 = 0xFF_FFFF
    /// Redis's `LRU_CLOCK_MAX`, one less than the wrap (its arithmetic uses it as such).
    static let clockMax = Int64(clockMask)

    /// The clock at `nowMs`.
    @inlinable
    public static func clock(nowMs: Int64) -> UInt32 { UInt32(truncatingIfNeeded: nowMs / 1000) & clockMask }

    /// Seconds between the clock value `access` and `nowMs`.
    public static func idleSeconds(since access: UInt32, nowMs: Int64) -> Int64 {
        let now = Int64(clock(nowMs: nowMs))
        let then = Int64(access & clockMask)
        return now >= then ? now - then : now + (clockMax - then)
    }

    /// The clock value of a key idle for `idle` seconds at `nowMs`.
    public static func clock(idleSeconds idle: Int64, nowMs: Int64) -> UInt32 {
        var then = Int64(clock(nowMs: nowMs)) - max(0, idle)
        if then < 0 { then += clockMax }
        return UInt32(truncatingIfNeeded: then) & clockMask
    }
}

/// Redis's approximated LFU: an 8-bit logarithmic access counter plus the minute (mod 2^16) of its last
/// decrement, packed into the entry's access clock.
public enum LFU {
    /// The counter a new key starts with, so that it is not evicted before it had a chance to be used.
    public static let initialCounter: UInt32 = 5

    /// The packed state for a new key at `nowMs`.
    public static func initial(nowMs: Int64) -> UInt32 {
        (minutes(nowMs) << 8) | initialCounter
    }

    static func minutes(_ nowMs: Int64) -> UInt32 { UInt32(truncatingIfNeeded: nowMs / 60_000) & 0xFFFF }

    /// Minutes elapsed since `then` (16-bit wrap-around aware). `then` is masked to 16 bits: after a
    /// policy switch the clock may still hold an LRU time, which must not be able to overflow anything.
    static func elapsed(since then: UInt32, nowMs: Int64) -> UInt32 {
        let now = minutes(nowMs)
        let then = then & 0xFFFF
        return now >= then ? now - then : 65_535 - then + now
    }

    /// The counter after applying decay (`lfu-decay-time` minutes per step), without storing it.
    public static func decayedCounter(_ state: UInt32, nowMs: Int64, decayTime: Int) -> UInt32 {
        let counter = state & 0xFF
        guard decayTime > 0 else { return counter }
        let minutes = elapsed(since: state >> 8, nowMs: nowMs)
        let periods = minutes == 0 ? 0 : minutes / UInt32(decayTime)  // no division on the common path
        return periods > counter ? 0 : counter - periods
    }

    /// The state after one access: decay, then a probabilistic logarithmic increment.
    public static func touched(
        _ state: UInt32, nowMs: Int64, logFactor: Int, decayTime: Int,
        using generator: inout some RandomNumberGenerator
    ) -> UInt32 {
        var counter = decayedCounter(state, nowMs: nowMs, decayTime: decayTime)
        if counter < 255 {
            let base = UInt64(counter > initialCounter ? counter - initialCounter : 0)
            // Incremented with probability 1 / (base × logFactor + 1), as Redis's LFULogIncr: a uniform
            // 64-bit r is below 2^64 / d exactly when r × d < 2^64 — a multiplication where Redis divides.
            let divisor = base &* UInt64(max(0, logFactor)) &+ 1
            if base == 0 || generator.next().multipliedFullWidth(by: divisor).high == 0 { counter += 1 }
        }
        return (minutes(nowMs) << 8) | counter
    }
}
