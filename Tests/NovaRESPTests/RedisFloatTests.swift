import Testing

import NovaRESP

@Suite("Redis's number formats")
struct RedisFloatTests {
    @Test func fixedPointRoundsTheScaledValueAsRedis() {
        #expect(RedisFloat.fixedPoint(166274.15156960033, decimals: 4) == Array("166274.1516".utf8))
        // 2160292.33305000001564… times 10^4 rounds to …30.5 as a double, and llrint rounds that to even:
        // Redis prints 2160292.3330 where printf's %.4f says 2160292.3331.
        let nearHalf = Double(sign: .plus, exponent: 21, significand: Double(bitPattern: 0x3FF0_7B52_2AA1_61E5))
        #expect(RedisFloat.fixedPoint(nearHalf, decimals: 4) == Array("2160292.3330".utf8))
        #expect(RedisFloat.format(nearHalf, decimals: 4) == Array("2160292.3331".utf8))
        #expect(RedisFloat.fixedPoint(0, decimals: 4) == Array("0.0000".utf8))
        #expect(RedisFloat.fixedPoint(0.00004, decimals: 4) == Array("0.0000".utf8))
        #expect(RedisFloat.fixedPoint(0.0123, decimals: 4) == Array("0.0123".utf8))
        #expect(RedisFloat.fixedPoint(-1.5, decimals: 2) == Array("-1.50".utf8))
    }

    @Test func humanLongDoublesTrimZeros() {
        #expect(RedisFloat.formatHuman(Float80(13.36138933897018433)) == Array("13.36138933897018433".utf8))
        #expect(RedisFloat.formatHuman(Float80(180.0)) == Array("180".utf8))
    }
}
