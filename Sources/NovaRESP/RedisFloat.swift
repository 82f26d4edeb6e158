#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Redis's textual forms of floating-point numbers.
public enum RedisFloat {
    /// `%.17g`, with `inf` / `-inf` spelled as Redis spells them (`addReplyDouble` in Redis 7.0).
    public static func format(_ value: Double) -> [UInt8] {
        if value.isInfinite { return Array((value > 0 ? "inf" : "-inf").utf8) }
        // Whole numbers below 1e17 print as their digits under %.17g (-0 aside): the common scores
        // (counters, timestamps) skip the C library's formatting, ~20x faster.
        if value.magnitude < 1e17, value.rounded(.towardZero) == value, !(value == 0 && value.sign == .minus) {
            return RedisInteger.bytes(Int64(value))
        }
        return printf("%.17g", value)
    }

    /// `%.17Lf` with trailing zeros and a trailing point removed: how INCRBYFLOAT and HINCRBYFLOAT store
    /// their result. Nil when the number does not fit Redis's 5 KiB buffer.
    public static func formatHuman(_ value: Float80) -> [UInt8]? {
        var text = printf("%.17Lf", value)
        if text.count >= 5 * 1024 - 1 { return nil }
        if text.contains(UInt8(ascii: ".")) {
            while text.last == UInt8(ascii: "0") { text.removeLast() }
            if text.last == UInt8(ascii: ".") { text.removeLast() }
        }
        if text == Array("-0".utf8) { text = [UInt8(ascii: "0")] }
        return text
    }

    /// `%.<decimals>f`.
    public static func format(_ value: Double, decimals: Int) -> [UInt8] {
        printf("%.\(decimals)f", value)
    }

    /// Redis's `fixedpoint_d2string`, how GEODIST and WITHDIST print distances with four decimals: the
    /// value times 10^decimals rounded by `llrint` (the product is rounded to a double first, so a value
    /// just above a half can round down, unlike `%.4f`), then split around the point.
    public static func fixedPoint(_ value: Double, decimals: Int) -> [UInt8] {
        precondition(decimals >= 1 && decimals <= 17)
        if value == 0 { return Array("0.".utf8) + [UInt8](repeating: UInt8(ascii: "0"), count: decimals) }
        var power: UInt64 = 1
        for _ in 0..<decimals { power *= 10 }
        let scaled = Int64(llrint(value * Double(power)))
        var text: [UInt8] = scaled < 0 ? [UInt8(ascii: "-")] : []
        let magnitude = scaled.magnitude
        text += Array(String(magnitude / power).utf8)
        text.append(UInt8(ascii: "."))
        let fraction = Array(String(magnitude % power).utf8)
        text += [UInt8](repeating: UInt8(ascii: "0"), count: decimals - fraction.count) + fraction
        return text
    }

    // The parsers are generic over the input and inlined into their callers, so that a ByteBuffer view
    // is copied with memcpy in a specialised loop; the C library calls stay in the non-generic halves (an
    // unspecialised call from another module looked up type metadata at run time on every ZADD score).

    /// Parses like Redis's `string2d`: the whole input must be a number accepted by `strtod`, with no
    /// leading space, not NaN, and not out of range.
    @inlinable
    public static func parseDouble(_ bytes: some Collection<UInt8>) -> Double? {
        guard !bytes.isEmpty else { return nil }
        return withCString(bytes) { parseDouble(cString: $0, count: $1) }
    }

    @usableFromInline
    static func parseDouble(cString pointer: UnsafePointer<CChar>, count: Int) -> Double? {
        var end: UnsafeMutablePointer<CChar>? = nil
        errno = 0
        let value = strtod(pointer, &end)
        guard let end, UnsafePointer(end) - pointer == count, !isSpace(pointer[0]), !value.isNaN else { return nil }
        if errno == ERANGE && (value.isInfinite || value == 0) { return nil }
        return value
    }

    /// Parses like a bare `strtod` whose whole input must be consumed: leading spaces and an empty string
    /// (0) are accepted, NaN is not. Redis parses sorted-set range bounds this way.
    @inlinable
    public static func parseRangeBound(_ bytes: some Collection<UInt8>) -> Double? {
        if bytes.isEmpty { return 0 }
        return withCString(bytes) { parseRangeBound(cString: $0, count: $1) }
    }

    @usableFromInline
    static func parseRangeBound(cString pointer: UnsafePointer<CChar>, count: Int) -> Double? {
        var end: UnsafeMutablePointer<CChar>? = nil
        let value = strtod(pointer, &end)
        guard let end, UnsafePointer(end) - pointer == count, !value.isNaN else { return nil }
        return value
    }

    /// Parses like Redis's `string2ld` (`strtold`), for INCRBYFLOAT.
    @inlinable
    public static func parseLongDouble(_ bytes: some Collection<UInt8>) -> Float80? {
        guard !bytes.isEmpty, bytes.count < 5 * 1024 else { return nil }
        return withCString(bytes) { parseLongDouble(cString: $0, count: $1) }
    }

    @usableFromInline
    static func parseLongDouble(cString pointer: UnsafePointer<CChar>, count: Int) -> Float80? {
        var end: UnsafeMutablePointer<CChar>? = nil
        errno = 0
        let value = strtold(pointer, &end)
        guard let end, UnsafePointer(end) - pointer == count, !isSpace(pointer[0]), !value.isNaN else { return nil }
        if errno == EINVAL { return nil }
        if errno == ERANGE && (value.isInfinite || value == 0) { return nil }
        return value
    }

    private static func isSpace(_ c: CChar) -> Bool { c == 32 || (c >= 9 && c <= 13) }

    /// Calls `body` with `bytes` as a NUL-terminated C string on the stack (one copy; contiguous inputs
    /// such as ByteBuffer views are copied with memcpy), and its length. Nil when `bytes` holds a NUL.
    @inlinable
    static func withCString<R>(
        _ bytes: some Collection<UInt8>,
        _ body: (UnsafePointer<CChar>, Int) -> R?
    ) -> R? {
        let count = bytes.count
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count + 1) { buffer -> R? in
            let base = buffer.baseAddress!
            let copied = bytes.withContiguousStorageIfAvailable { source -> Bool in
                if let start = source.baseAddress, count > 0 { base.update(from: start, count: count) }
                return true
            }
            if copied == nil {
                var index = 0
                for byte in bytes {
                    base[index] = byte
                    index += 1
                }
            }
            base[count] = 0
            // An embedded NUL ends a C string early, so the whole input can never be consumed: not a number.
            for index in 0..<count where base[index] == 0 { return nil }
            return base.withMemoryRebound(to: CChar.self, capacity: count + 1) { body($0, count) }
        }
    }

    private static func printf(_ format: String, _ value: any CVarArg) -> [UInt8] {
        withVaList([value]) { arguments -> [UInt8] in
            var buffer = [CChar](repeating: 0, count: 6 * 1024)
            let written = buffer.withUnsafeMutableBufferPointer { out in
                vsnprintf(out.baseAddress, out.count, format, arguments)
            }
            let length = max(0, min(Int(written), buffer.count - 1))
            return buffer[0..<length].map { UInt8(bitPattern: $0) }
        }
    }
}
