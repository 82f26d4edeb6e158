#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NovaRESP

/// Validation of parameter values into their canonical text (what CONFIG GET answers and CONFIG
/// REWRITE writes), and the value syntaxes Redis accepts (memory amounts, C integers, buffer limits).
extension ConfigStore {
    struct ValueError: Error { let message: String }

    func canonical(_ parameter: ConfigParameter, _ arguments: [String], appendingTo previous: String?) -> Result<String, ValueError> {
        func fail(_ message: String) -> Result<String, ValueError> { .failure(ValueError(message: message)) }
        switch parameter.kind {
        case .bool:
            switch arguments[0].lowercased() {
            case "yes": return .success("yes")
            case "no": return .success("no")
            default: return fail("argument must be 'yes' or 'no'")
            }
        case let .integer(min, max, style):
            let text = arguments[0]
            var number: Int64?
            var percent = false
            switch style {
            case .memory, .memoryOrPercent:
                if let memory = Self.parseMemory(text) {
                    // Redis keeps `maxmemory` as an unsigned long long: any 64-bit amount is accepted.
                    if memory > UInt64(Int64.max) {
                        if parameter.name == "maxmemory" { return .success(String(memory)) }
                        return fail("argument must be between \(min) and \(max) inclusive")
                    }
                    number = Int64(memory)
                }
                if number == nil, style == .memoryOrPercent, text.count > 1, text.hasSuffix("%"),
                   let value = RedisInteger.parse(Array(text.utf8.dropLast())), value >= 0 {
                    number = -value
                    percent = true
                }
            case .octal:
                number = Int64(text, radix: 8)
            case .plain:
                number = RedisInteger.parse(Array(text.utf8))
            }
            guard let value = number else {
                switch style {
                case .memory: return fail("argument must be a memory value")
                case .memoryOrPercent: return fail("argument must be a memory or percent value")
                case .octal: return fail("argument couldn't be parsed into an integer")
                case .plain: return fail("argument couldn't be parsed into an integer")
                }
            }
            if percent {
                if value < min { return fail("percentage argument must be less or equal to \(-min)") }
                return .success("\(-value)%")
            }
            if value < min || value > max {
                if style == .octal {
                    return fail("argument must be between 0\(String(min, radix: 8)) and 0\(String(max, radix: 8)) inclusive")
                }
                return fail("argument must be between \(min) and \(max) inclusive")
            }
            if parameter.name == "maxclients", let limit = Self.maxClientsLimit(), value > limit {
                return fail("The operating system is not able to handle the specified number of clients, try with \(limit)")
            }
            if parameter.name == "hz" { return .success(String(Swift.min(500, Swift.max(1, value)))) }
            return .success(style == .octal ? String(value, radix: 8) : String(value))
        case let .enumeration(names, multiple):
            let options = "argument(s) must be one of the following: " + names.joined(separator: ", ")
            let words = multiple ? arguments : [arguments[0]]
            guard !words.isEmpty else { return fail(options) }
            var chosen: Set<String> = []
            for word in words {
                guard let match = names.first(where: { $0 == word.lowercased() }) else { return fail(options) }
                chosen.insert(match)
            }
            if multiple && chosen.count > 1 && chosen.contains("default") { return fail(options) }
            return .success(names.filter { chosen.contains($0) }.joined(separator: " "))
        case .string(let validate):
            if let message = validate?(arguments[0]) { return fail(message) }
            return .success(arguments[0])
        case .special(let special):
            return canonicalSpecial(special, arguments, previous: previous).mapError { ValueError(message: $0.message) }
        }
    }

    private func canonicalSpecial(_ special: SpecialConfig, _ arguments: [String], previous: String?) -> Result<String, ValueError> {
        func fail(_ message: String) -> Result<String, ValueError> { .failure(ValueError(message: message)) }
        switch special {
        case .dir:
            guard arguments.count == 1 else { return fail("wrong number of arguments") }
            var info = stat()
            let path = Self.absolutePath(arguments[0])
            guard stat(path, &info) == 0 else { return fail(String(cString: strerror(errno))) }
            guard (info.st_mode & S_IFMT) == S_IFDIR else { return fail(String(cString: strerror(ENOTDIR))) }
            return .success(path)
        case .save:
            var words = arguments
            if words.count == 1 && words[0].isEmpty { return .success("") }
            if words.count % 2 != 0 { return fail("Invalid save parameters") }
            for (index, word) in words.enumerated() {
                guard let value = Int64(word), (index % 2 == 0 ? value >= 1 : value >= 0) else {
                    return fail("Invalid save parameters")
                }
                words[index] = String(value)
            }
            if let previous, !previous.isEmpty { words.insert(previous, at: 0) }
            return .success(words.joined(separator: " "))
        case .clientOutputBufferLimit:
            guard arguments.count % 4 == 0, !arguments.isEmpty else {
                return fail("Wrong number of arguments in buffer limit configuration.")
            }
            var current = Self.parseBufferLimits(values["client-output-buffer-limit"] ?? "")
            for start in stride(from: 0, to: arguments.count, by: 4) {
                var name = arguments[start].lowercased()
                if name == "replica" { name = "slave" }
                guard ["normal", "slave", "pubsub"].contains(name) else {
                    return fail("Invalid client class specified in buffer limit configuration.")
                }
                // soft_seconds as Redis reads it: strtoll into an int (truncated to 32 bits), negative refused.
                guard let hard = Self.parseMemory(arguments[start + 1]), let soft = Self.parseMemory(arguments[start + 2]),
                      let wide = Self.parseCLongLong(arguments[start + 3]), Int32(truncatingIfNeeded: wide) >= 0 else {
                    return fail("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
                }
                let seconds = Int64(Int32(truncatingIfNeeded: wide))
                current[name] = (hard, soft, UInt64(seconds))
            }
            return .success(["normal", "slave", "pubsub"].map { name in
                let (hard, soft, seconds) = current[name] ?? (0, 0, 0)
                return "\(name) \(hard) \(soft) \(seconds)"
            }.joined(separator: " "))
        case .oomScoreAdjValues:
            guard arguments.count == 3 else { return fail("wrong number of arguments") }
            var numbers: [Int64] = []
            for word in arguments {
                guard let value = Int64(word), value >= -2000, value <= 2000 else {
                    return fail("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")
                }
                numbers.append(value)
            }
            return .success(numbers.map(String.init).joined(separator: " "))
        case .notifyKeyspaceEvents:
            guard arguments.count == 1 else { return fail("wrong number of arguments") }
            guard let flags = KeyspaceEventFlags(parsing: arguments[0]) else {
                return fail("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
            }
            return .success(flags.storedText)
        case .bind:
            if arguments.count > 16 { return fail("Too many bind addresses specified.") }
            if arguments.count == 1 && arguments[0].isEmpty { return .success("") }
            return .success(arguments.joined(separator: " "))
        case .replicaOf:
            if arguments.count == 2 && arguments[0].lowercased() == "no" && arguments[1].lowercased() == "one" {
                return .success("")
            }
            guard arguments.count == 2, let port = Int(arguments[1]), (0...65535).contains(port) else {
                return fail("wrong number of arguments")
            }
            return fail("Replication is not supported by NovaCache")
        case .latencyPercentiles:
            if arguments.count == 1 && arguments[0].isEmpty { return .success("") }
            var parts: [String] = []
            for word in arguments {
                guard let value = Double(word), value >= 0, value <= 100 else {
                    return fail("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
                }
                var text = String(value)
                if text.hasSuffix(".0") { text.removeLast(2) }
                parts.append(text)
            }
            return .success(parts.joined(separator: " "))
        }
    }

    // MARK: Helpers

    /// Redis's `memtoull`: digits with an optional unit (b, k, kb, m, mb, g, gb; case-insensitive), read
    /// as C does it: digits beyond 2^64 saturate (strtoull) and the unit's product wraps around, so
    /// `9223372036854775807k` is 18446744073709550616 in Redis as here.
    static func parseMemory(_ text: String) -> UInt64? {
        let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
        let unit = text.dropFirst(digits.count).lowercased()
        let multiplier: UInt64
        switch unit {
        case "", "b": multiplier = 1
        case "k": multiplier = 1000
        case "kb": multiplier = 1024
        case "m": multiplier = 1000 * 1000
        case "mb": multiplier = 1024 * 1024
        case "g": multiplier = 1000 * 1000 * 1000
        case "gb": multiplier = 1024 * 1024 * 1024
        default: return nil
        }
        if digits.isEmpty { return 0 }
        let value = UInt64(digits) ?? UInt64.max
        return value &* multiplier
    }

    /// C's `strtoll` over the whole text: leading white space and a sign allowed, out-of-range values
    /// saturated, the empty string 0; nil when anything follows the digits.
    static func parseCLongLong(_ text: String) -> Int64? {
        var rest = Substring(text).drop { $0 == " " || ("\t"..."\r").contains($0) }
        var negative = false
        if let sign = rest.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard digits.count == rest.count else { return digits.isEmpty && text.isEmpty ? 0 : nil }
        if digits.isEmpty { return text.isEmpty ? 0 : nil }
        guard let magnitude = UInt64(digits) else { return negative ? Int64.min : Int64.max }
        if negative { return magnitude > UInt64(Int64.max) ? Int64.min : -Int64(magnitude) }
        return magnitude > UInt64(Int64.max) ? Int64.max : Int64(magnitude)
    }

    static func parseBufferLimits(_ text: String) -> [String: (UInt64, UInt64, UInt64)] {
        let words = text.split(separator: " ").map(String.init)
        var result: [String: (UInt64, UInt64, UInt64)] = [:]
        var index = 0
        while index + 3 < words.count {
            func number(_ text: String) -> UInt64 { UInt64(text) ?? 0 }
            result[words[index]] = (number(words[index + 1]), number(words[index + 2]), number(words[index + 3]))
            index += 4
        }
        return result
    }

    private static func maxClientsLimit() -> Int64? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        if limit.rlim_cur > UInt(Int64.max) { return nil }
        return Int64(limit.rlim_cur) - 32
    }

}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var slice = Substring(self)
        while let first = slice.first, characters.contains(first) { slice.removeFirst() }
        while let last = slice.last, characters.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
