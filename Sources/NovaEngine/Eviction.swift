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
        let periods = elapsed(since: state >> 8, nowMs: nowMs) / UInt32(decayTime)
        return periods > counter ? 0 : counter - periods
    }

    /// The state after one access: decay, then a probabilistic logarithmic increment.
    public static func touched(
        _ state: UInt32, nowMs: Int64, logFactor: Int, decayTime: Int,
        using generator: inout some RandomNumberGenerator
    ) -> UInt32 {
        var counter = decayedCounter(state, nowMs: nowMs, decayTime: decayTime)
        if counter < 255 {
            let base = Double(counter > initialCounter ? counter - initialCounter : 0)
            let probability = 1.0 / (base * Double(logFactor) + 1)
            // 53 random bits as a double in [0, 1), as Double.random(in:) but without its generic path.
            if base == 0 || Double(generator.next() >> 11) * 0x1p-53 < probability { counter += 1 }
        }
        return (minutes(nowMs) << 8) | counter
    }
}
