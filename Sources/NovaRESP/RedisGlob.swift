/// Redis's glob patterns (`KEYS`, `SCAN MATCH`, `CONFIG GET`, `PSUBSCRIBE`): `*`, `?`, `[abc]`, `[^a-z]`,
/// `\x` escapes, with Redis's exact treatment of odd patterns (an unterminated `[`, reversed ranges).
/// Backtracking is cut short once a suffix is known not to match, so no pattern takes exponential time.
public enum RedisGlob {
    /// Whether `string` matches `pattern`.
    public static func matches(_ pattern: UnsafeRawBufferPointer, _ string: UnsafeRawBufferPointer, ignoringCase: Bool = false) -> Bool {
        var skipLonger = false
        return match(pattern, 0, string, 0, ignoringCase, &skipLonger, nesting: 0)
    }

    /// Whether `string` matches `pattern` (byte arrays).
    public static func matches(_ pattern: [UInt8], _ string: [UInt8], ignoringCase: Bool = false) -> Bool {
        pattern.withUnsafeBytes { p in string.withUnsafeBytes { s in matches(p, s, ignoringCase: ignoringCase) } }
    }

    /// Whether `string` matches `pattern` (text).
    public static func matches(_ pattern: String, _ string: String, ignoringCase: Bool = false) -> Bool {
        matches(Array(pattern.utf8), Array(string.utf8), ignoringCase: ignoringCase)
    }

    @inline(__always)
    private static func lower(_ c: Int) -> Int {
        (c >= 65 && c <= 90) ? c + 32 : c
    }

    // The pattern is read past its end as NUL, as the C original reads its terminator.
    private static func match(
        _ pattern: UnsafeRawBufferPointer, _ start: Int,
        _ string: UnsafeRawBufferPointer, _ stringStart: Int,
        _ nocase: Bool, _ skipLonger: inout Bool, nesting: Int
    ) -> Bool {
        if nesting > 1000 { return false }
        var p = start
        var s = stringStart
        func pat(_ i: Int) -> Int { i < pattern.count ? Int(Int8(bitPattern: pattern[i])) : 0 }
        func str(_ i: Int) -> Int { i < string.count ? Int(Int8(bitPattern: string[i])) : 0 }
        var patternLength: Int { pattern.count - p }
        var stringLength: Int { string.count - s }

        while patternLength > 0 && stringLength > 0 {
            switch pat(p) {
            case 42: // '*'
                while patternLength > 0 && pat(p + 1) == 42 { p += 1 }
                if patternLength == 1 { return true }
                while stringLength > 0 {
                    if match(pattern, p + 1, string, s, nocase, &skipLonger, nesting: nesting + 1) { return true }
                    if skipLonger { return false }
                    s += 1
                }
                skipLonger = true
                return false
            case 63: // '?'
                s += 1
            case 91: // '['
                p += 1
                let negate = pat(p) == 94 // '^'
                if negate { p += 1 }
                var matched = false
                while true {
                    if pat(p) == 92 && patternLength >= 2 { // '\\'
                        p += 1
                        if pat(p) == str(s) { matched = true }
                    } else if pat(p) == 93 { // ']'
                        break
                    } else if patternLength == 0 {
                        p -= 1
                        break
                    } else if patternLength >= 3 && pat(p + 1) == 45 { // '-'
                        var low = pat(p), high = pat(p + 2), c = str(s)
                        if low > high { swap(&low, &high) }
                        if nocase {
                            low = lower(low)
                            high = lower(high)
                            c = lower(c)
                        }
                        p += 2
                        if c >= low && c <= high { matched = true }
                    } else if nocase ? lower(pat(p)) == lower(str(s)) : pat(p) == str(s) {
                        matched = true
                    }
                    p += 1
                }
                if negate { matched.toggle() }
                if !matched { return false }
                s += 1
            default:
                if pat(p) == 92 && patternLength >= 2 { p += 1 } // '\\' escapes the next byte
                let equal = nocase ? lower(pat(p)) == lower(str(s)) : pat(p) == str(s)
                if !equal { return false }
                s += 1
            }
            p += 1
            if stringLength == 0 {
                while p < pattern.count && pat(p) == 42 { p += 1 }
                break
            }
        }
        return patternLength == 0 && stringLength == 0
    }
}
