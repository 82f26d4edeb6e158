/// SHA-256 (FIPS 180-4), for ACL password hashes (Redis stores and prints passwords as the lowercase hex
/// SHA-256 of the password, and `#<hash>` rules and ACL files carry that form) and for the connector
/// cache's keys (arguments and caller identities too long or too private to appear in a key).
///
/// The inputs are short, so a straightforward implementation is enough; it is checked against the
/// FIPS test vectors and against `sha256sum` in the tests.
public enum SHA256 {
    private static let roundConstants: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    /// The 32-byte digest of `message`.
    public static func digest(_ message: some Collection<UInt8>) -> [UInt8] {
        let data = hashBlocks(message)

        // Working storage on the stack: 8 words of state, then the 64-word schedule.
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 72) { words in
            let initial: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
            for i in 0..<8 { words[i] = initial[i] }
            data.withUnsafeBufferPointer { bytes in
                roundConstants.withUnsafeBufferPointer { k in
                    for blockStart in stride(from: 0, to: bytes.count, by: 64) {
                        compress(block: UnsafeBufferPointer(rebasing: bytes[blockStart..<blockStart + 64]), state: words, k: k)
                    }
                }
            }
            var out = [UInt8](repeating: 0, count: 32)
            for i in 0..<8 {
                for j in 0..<4 { out[i * 4 + j] = UInt8(truncatingIfNeeded: words[i] >> UInt32(24 - 8 * j)) }
            }
            return out
        }
    }

    /// One 64-byte block into `state` (words 0–7; 8–71 hold the message schedule).
    private static func compress(block: UnsafeBufferPointer<UInt8>, state: UnsafeMutableBufferPointer<UInt32>, k: UnsafeBufferPointer<UInt32>) {
        let w = UnsafeMutableBufferPointer(rebasing: state[8..<72])
        for i in 0..<16 {
            let j = i * 4
            w[i] = UInt32(block[j]) << 24 | UInt32(block[j + 1]) << 16 | UInt32(block[j + 2]) << 8 | UInt32(block[j + 3])
        }
        for i in 16..<64 {
            let s0 = rotate(w[i - 15], 7) ^ rotate(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotate(w[i - 2], 17) ^ rotate(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, h) = (state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7])
        for i in 0..<64 {
            let s1 = rotate(e, 6) ^ rotate(e, 11) ^ rotate(e, 25)
            let choice = (e & f) ^ (~e & g)
            let t1 = h &+ s1 &+ choice &+ k[i] &+ w[i]
            let s0 = rotate(a, 2) ^ rotate(a, 13) ^ rotate(a, 22)
            let majority = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ majority
            (h, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d
        state[4] &+= e; state[5] &+= f; state[6] &+= g; state[7] &+= h
    }

    /// The digest as 64 lowercase hex characters (Redis's form).
    public static func hex(_ message: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in digest(message) {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func rotate(_ value: UInt32, _ count: UInt32) -> UInt32 {
        (value >> count) | (value << (32 - count))
    }
}

/// The message padding SHA-1 and SHA-256 share: 0x80, zeros to 56 mod 64, then the length in bits,
/// big-endian, so that the result is whole 64-byte blocks.
func hashBlocks(_ message: some Collection<UInt8>) -> [UInt8] {
    var data = [UInt8]()
    data.reserveCapacity((message.count + 72) & ~63)
    data.append(contentsOf: message)
    let bitLength = UInt64(data.count) &* 8
    data.append(0x80)
    while data.count % 64 != 56 { data.append(0) }
    for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
    return data
}
