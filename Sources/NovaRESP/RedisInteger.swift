/// Redis's strict integer syntax (`string2ll`): optional `-`, no `+`, no leading zeros, no spaces,
/// at most 20 characters, within `Int64`.
public enum RedisInteger {
    /// Parses `bytes` as a signed 64-bit integer with Redis's rules, or returns nil.
    /// - Complexity: O(n) in the number of bytes.
    @inlinable
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        let count = bytes.count
        if count == 0 || count >= 21 { return nil }
        if count == 1 && bytes[0] == UInt8(ascii: "0") { return 0 }
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") {
            negative = true
            index = 1
            if count == 1 { return nil }
        }
        let first = bytes[index]
        guard first >= UInt8(ascii: "1") && first <= UInt8(ascii: "9") else { return nil }
        var value = UInt64(first &- UInt8(ascii: "0"))
        index += 1
        while index < count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit <= 9 else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            if o1 || o2 { return nil }
            value = sum
            index += 1
        }
        if negative {
            if value > UInt64(Int64.max) + 1 { return nil }
            return value == UInt64(Int64.max) + 1 ? Int64.min : -Int64(value)
        }
        return value > UInt64(Int64.max) ? nil : Int64(value)
    }

    /// Parses a byte array with Redis's rules.
    @inlinable
    public static func parse(_ bytes: some Collection<UInt8>) -> Int64? {
        if let result = bytes.withContiguousStorageIfAvailable({ parse(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes { parse($0) }
    }

    /// The number of decimal characters `value` formats to.
    @inlinable
    public static func formattedLength(_ value: Int64) -> Int {
        var magnitude = value.magnitude
        var digits = 1
        while magnitude >= 10 {
            magnitude /= 10
            digits += 1
        }
        return value < 0 ? digits + 1 : digits
    }

    /// Writes the decimal form of `value` into `out` (which must hold `formattedLength(value)` bytes).
    @inlinable
    public static func format(_ value: Int64, into out: UnsafeMutableRawBufferPointer) -> Int {
        let length = formattedLength(value)
        var magnitude = value.magnitude
        var position = length
        repeat {
            position -= 1
            out[position] = UInt8(truncatingIfNeeded: magnitude % 10) &+ UInt8(ascii: "0")
            magnitude /= 10
        } while magnitude > 0
        if value < 0 { out[0] = UInt8(ascii: "-") }
        return length
    }

    /// The decimal form of `value` as bytes.
    @inlinable
    public static func bytes(_ value: Int64) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 20) { buffer, count in
            count = format(value, into: UnsafeMutableRawBufferPointer(buffer))
        }
    }
}
