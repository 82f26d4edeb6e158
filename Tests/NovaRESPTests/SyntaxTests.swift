import Testing
#if canImport(Glibc)
import Glibc
#endif

import NovaRESP

@Suite("Redis syntax: integers, floats, globs")
struct SyntaxTests {
    @Test(arguments: [
        ("0", Int64?(0)), ("-1", -1), ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min),
        ("9223372036854775808", nil), ("-9223372036854775809", nil), ("01", nil), ("+1", nil), (" 1", nil),
        ("1 ", nil), ("-0", nil), ("", nil), ("-", nil), ("1a", nil), ("123456789012345678901", nil),
    ])
    func strictIntegers(text: String, expected: Int64?) {
        #expect(RedisInteger.parse(Array(text.utf8)) == expected)
    }

    @Test func integerFormatting() {
        for value: Int64 in [0, 7, -7, 10, 99, 100, Int64.max, Int64.min] {
            #expect(RedisInteger.bytes(value) == Array(String(value).utf8))
        }
    }

    @Test func doublesFormatLikeRedis() {
        #expect(RedisFloat.format(1.5) == Array("1.5".utf8))
        #expect(RedisFloat.format(0.1) == Array("0.10000000000000001".utf8))
        #expect(RedisFloat.format(-.infinity) == Array("-inf".utf8))
        #expect(RedisFloat.format(3) == Array("3".utf8))
    }

    /// Whole numbers take a fast path; it must print what %.17g prints, at every magnitude and edge.
    @Test func wholeNumbersFormatAsPrintfDoes() {
        func printf(_ value: Double) -> [UInt8] {
            var buffer = [CChar](repeating: 0, count: 64)
            let count = withVaList([value]) { vsnprintf(&buffer, 64, "%.17g", $0) }
            return buffer[0..<Int(count)].map { UInt8(bitPattern: $0) }
        }
        var values: [Double] = [0, -0.0, 1, -1, 1e15, 1e16, 99999999999999984, 1e17, -1e17, 1e18, 123456789012345680,
                                9007199254740992, 4503599627370496.5, 0.5, -2.5]
        var random = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let digits = Int.random(in: 0...18, using: &random)
            let magnitude = Double(Int64.random(in: 0..<Int64.max, using: &random) % Int64(pow(10, Double(digits)) + 1))
            values.append(Bool.random(using: &random) ? magnitude : -magnitude)
        }
        for value in values {
            #expect(RedisFloat.format(value) == printf(value), "\(value)")
        }
    }

    @Test func incrbyfloatFormatting() {
        #expect(RedisFloat.formatHuman(10.5) == Array("10.5".utf8))
        #expect(RedisFloat.formatHuman(3) == Array("3".utf8))
        #expect(RedisFloat.formatHuman(-0.0) == Array("0".utf8))
        #expect(RedisFloat.formatHuman(Float80(1) / 10) == Array("0.1".utf8))
    }

    @Test func floatParsing() {
        #expect(RedisFloat.parseDouble(Array("1.5".utf8)) == 1.5)
        #expect(RedisFloat.parseDouble(Array("inf".utf8)) == .infinity)
        #expect(RedisFloat.parseDouble(Array("nan".utf8)) == nil)
        #expect(RedisFloat.parseDouble(Array(" 1".utf8)) == nil)
        #expect(RedisFloat.parseDouble(Array("1x".utf8)) == nil)
        #expect(RedisFloat.parseDouble(Array("".utf8)) == nil)
        #expect(RedisFloat.parseLongDouble(Array("1e4000".utf8)) != nil)
        #expect(RedisFloat.parseLongDouble(Array("1e5000".utf8)) == nil)
    }

    @Test(arguments: [
        ("*", "anything", true), ("h?llo", "hello", true), ("h?llo", "hllo", false), ("h*llo", "heeeello", true),
        ("h[ae]llo", "hallo", true), ("h[ae]llo", "hillo", false), ("h[^e]llo", "hallo", true),
        ("h[^e]llo", "hello", false), ("h[a-b]llo", "hbllo", true), ("h[b-a]llo", "hbllo", true),
        ("h\\*llo", "h*llo", true), ("h\\*llo", "hello", false), ("a*", "", false), ("", "", true),
        ("[", "[", false), ("k[", "k", false), ("*[", "x[", false),
    ])
    func globs(pattern: String, string: String, matches: Bool) {
        #expect(RedisGlob.matches(pattern, string) == matches)
    }

    @Test func globsIgnoringCase() {
        #expect(RedisGlob.matches("MAX*", "maxmemory", ignoringCase: true))
        #expect(!RedisGlob.matches("MAX*", "maxmemory"))
    }

    @Test func pathologicalGlobIsFast() {
        let pattern = String(repeating: "a*", count: 30) + "b"
        let subject = String(repeating: "a", count: 60)
        let start = ContinuousClock.now
        #expect(!RedisGlob.matches(pattern, subject))
        #expect(ContinuousClock.now - start < .seconds(1))
    }
}
