/// A fast seeded 64-bit hash for keys (multiply-fold mixing in the style of wyhash). The seed is random
/// per process so that clients cannot choose keys that collide.
public struct KeyHasher: Sendable {
    @usableFromInline let seed: UInt64

    @usableFromInline static let k0: UInt64 = 0xa076_1d64_78bd_642f
    @usableFromInline static let k1: UInt64 = 0xe703_7ed1_a0b4_28db
    @usableFromInline static let k2: UInt64 = 0x8ebc_6af0_9c88_c6e3

    /// A hasher with a random seed.
    public init() { seed = UInt64.random(in: .min ... .max) }

    /// A hasher with a fixed seed (tests).
    public init(seed: UInt64) { self.seed = seed }

    @inline(__always) @usableFromInline
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    @inline(__always) @usableFromInline
    static func read8(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always) @usableFromInline
    static func read4(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    /// The hash of `bytes`.
    /// - Complexity: O(n).
    @inlinable
    public func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let n = bytes.count
        var state = seed ^ Self.k0
        var a: UInt64 = 0
        var b: UInt64 = 0
        if n <= 16 {
            if n >= 4 {
                let p = bytes.baseAddress!
                let shift = (n >> 3) << 2
                a = (Self.read4(p, 0) << 32) | Self.read4(p, shift)
                b = (Self.read4(p, n - 4) << 32) | Self.read4(p, n - 4 - shift)
            } else if n > 0 {
                a = UInt64(bytes[0]) << 16 | UInt64(bytes[n >> 1]) << 8 | UInt64(bytes[n - 1])
            }
        } else {
            let p = bytes.baseAddress!
            var offset = 0
            var remaining = n
            if remaining > 48 {
                var s1 = state, s2 = state
                repeat {
                    state = Self.fold(Self.read8(p, offset) ^ Self.k1, Self.read8(p, offset + 8) ^ state)
                    s1 = Self.fold(Self.read8(p, offset + 16) ^ Self.k2, Self.read8(p, offset + 24) ^ s1)
                    s2 = Self.fold(Self.read8(p, offset + 32) ^ Self.k0, Self.read8(p, offset + 40) ^ s2)
                    offset += 48
                    remaining -= 48
                } while remaining > 48
                state ^= s1 ^ s2
            }
            while remaining > 16 {
                state = Self.fold(Self.read8(p, offset) ^ Self.k1, Self.read8(p, offset + 8) ^ state)
                offset += 16
                remaining -= 16
            }
            a = Self.read8(p, n - 16)
            b = Self.read8(p, n - 8)
        }
        return Self.fold(Self.k1 ^ UInt64(truncatingIfNeeded: n), Self.fold(a ^ Self.k1, b ^ state))
    }

    /// The hash of any contiguous bytes.
    @inlinable
    public func hash(_ source: some ContiguousBytes) -> UInt64 {
        source.withBytes { hash($0) }
    }
}
