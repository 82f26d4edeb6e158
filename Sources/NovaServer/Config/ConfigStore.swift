#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NovaRESP
package import NovaEngine

/// An error in a configuration file or in command-line flags, reported the way redis-server reports it.
package struct ConfigFileError: Error, CustomStringConvertible, Sendable {
    package let line: Int
    package let text: String
    package let message: String

    package var description: String {
        """
        *** FATAL CONFIG FILE ERROR (NovaCache) ***
        Reading the configuration file, at line \(line)
        >>> '\(text)'
        \(message)
        """
    }
}

/// Typed values of the parameters the server acts on, derived from the configuration after each change.
package struct ServerSettings: Sendable {
    /// `client-output-buffer-limit` for normal clients and for Pub/Sub subscribers.
    package var normalOutputLimit = OutputBufferLimit()
    package var pubsubOutputLimit = OutputBufferLimit(hard: 32 << 20, soft: 8 << 20, softSeconds: 60)
    /// The replica class, which Redis also applies to MONITOR clients.
    package var replicaOutputLimit = OutputBufferLimit(hard: 256 << 20, soft: 64 << 20, softSeconds: 60)
    package var port = 6379
    package var bind: [String] = ["127.0.0.1"]
    package var databases = 16
    package var requirePass: String? = nil
    package var dir = "."
    package var dbFilename = "dump.rdb"
    package var logLevel = "notice"
    package var maxMemory = 0
    package var evictionPolicy = EvictionPolicy.noeviction
    package var maxMemorySamples = 5
    package var lfuLogFactor = 10
    package var lfuDecayTime = 1
    package var hz = 10
    package var activeExpireEffort = 1
    package var timeout = 0
    package var tcpKeepalive = 300
    package var tcpBacklog = 511
    package var maxClients = 10000
    package var protoMaxBulkLength = 512 * 1024 * 1024
    package var clientQueryBufferLimit = 1024 * 1024 * 1024
    package var protectedMode = true
    package var saveRules: [(seconds: Int, changes: Int)] = [(3600, 1), (300, 100), (60, 10000)]
    package var notifyKeyspaceEvents = ""
    package var shutdownOnSigterm = "default"
    package var shutdownOnSigint = "default"
    package var appendOnly = false
    package var appendFsync = "everysec"
    package var ioThreads = 1
    package var unixSocket: String? = nil
    package var unixSocketPermissions = 0
    /// TLS: the port (0: no TLS listener) and the files and options of `tls-*`.
    package var tls = TLSSettings()
}

/// The `tls-*` parameters the TLS listener uses.
package struct TLSSettings: Sendable, Equatable {
    package var port = 0
    package var certFile = ""
    package var keyFile = ""
    package var keyFilePassword = ""
    package var caCertFile = ""
    package var caCertDir = ""
    /// `yes` (clients must present a certificate the CA signed), `optional` or `no`.
    package var authClients = "yes"
    /// `tls-protocols`, e.g. "TLSv1.2 TLSv1.3"; empty: TLS 1.2 and 1.3.
    package var protocols = ""
    /// `tls-ciphers` (TLS 1.2 cipher list, OpenSSL syntax).
    package var ciphers = ""
}

/// The server's configuration: every Redis 7.0 parameter with its current value, CONFIG GET / SET /
/// REWRITE semantics, and redis.conf / command-line parsing.
package final class ConfigStore: @unchecked Sendable {
    private struct Lookup {
        let parameter: ConfigParameter
    }

    private var values: [String: String] = [:]
    private let parameters: [String: ConfigParameter]
    /// Names under which each parameter is listed (primary name and alias), in catalog order.
    private let listedNames: [(name: String, parameter: ConfigParameter)]
    /// Parameters given in a file or on the command line, for CONFIG REWRITE.
    private var fromFile: Set<String> = []
    /// Commands renamed by `rename-command` (lowercase old name → new name, empty to disable).
    package private(set) var renamedCommands: [String: String] = [:]
    /// `user` lines kept from the configuration file: the user name, then its rules.
    package private(set) var userDirectives: [[String]] = []
    /// The configuration file the server started with, if any (absolute path).
    package var configFilePath: String?
    /// Typed view of the current values.
    package private(set) var settings = ServerSettings()

    package init() {
        var parameters: [String: ConfigParameter] = [:]
        var listed: [(String, ConfigParameter)] = []
        for parameter in ConfigCatalog.all {
            parameters[parameter.name] = parameter
            listed.append((parameter.name, parameter))
            if let alias = parameter.alias {
                parameters[alias] = parameter
                listed.append((alias, parameter))
            }
            values[parameter.name] = parameter.defaultValue
        }
        self.parameters = parameters
        self.listedNames = listed
        values["dir"] = ConfigStore.defaultDataDirectory
        refreshSettings()
    }

    /// `./data` under the working directory at start-up: where data lives when `dir` is not configured.
    package static let defaultDataDirectory = absolutePath("./data")

    /// `path` made absolute against the working directory.
    package static func absolute(_ path: String) -> String { absolutePath(path) }

    // MARK: Reading

    /// The current value of `name` (primary or alias), or nil for an unknown name.
    package func value(_ name: String) -> String? {
        guard let parameter = parameters[name.lowercased()] else { return nil }
        return values[parameter.name]
    }

    /// A value as CONFIG GET shows it: as stored, except `notify-keyspace-events`, which Redis prints
    /// without the `n` class when `A` is set (the class stays on).
    private func displayed(_ parameter: ConfigParameter) -> String {
        let value = values[parameter.name] ?? ""
        if parameter.name == "notify-keyspace-events" { return KeyspaceEventFlags(parsing: value)?.description ?? value }
        return value
    }

    /// CONFIG GET: pairs for every parameter matching any of `patterns` (glob, case-insensitive).
    /// An exact name is answered under the spelling the client used.
    package func get(_ patterns: [String]) -> [(String, String)] {
        var result: [(String, String)] = []
        var seen: Set<String> = []
        for pattern in patterns {
            if !pattern.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) {
                guard let parameter = parameters[pattern.lowercased()], !seen.contains(pattern) else { continue }
                seen.insert(pattern)
                result.append((pattern, displayed(parameter)))
                continue
            }
            for (name, parameter) in listedNames where !parameter.flags.contains(.hidden) {
                guard !seen.contains(name), RedisGlob.matches(pattern, name, ignoringCase: true) else { continue }
                seen.insert(name)
                result.append((name, displayed(parameter)))
            }
        }
        return result
    }

    // MARK: Changing

    /// The current values, to roll back a change whose application failed.
    func snapshot() -> [String: String] { values }

    /// Restores values taken with `snapshot()`.
    func restore(_ snapshot: [String: String]) {
        values = snapshot
        refreshSettings()
    }

    /// CONFIG SET with Redis's all-or-nothing semantics. `pairs` are (name, value) as sent.
    package func set(_ pairs: [(String, String)]) throws(CommandError) {
        var seen: Set<String> = []
        var changes: [(ConfigParameter, String)] = []
        for (name, value) in pairs {
            guard let parameter = parameters[name.lowercased()] else {
                throw CommandError("ERR Unknown option or number of arguments for CONFIG SET - '\(name)'")
            }
            func fail(_ message: String) -> CommandError {
                CommandError("ERR CONFIG SET failed (possibly related to argument '\(name)') - \(message)")
            }
            if parameter.flags.contains(.immutable) { throw fail("can't set immutable config") }
            if parameter.flags.contains(.protected) && values["enable-protected-configs"] == "no" {
                throw fail("can't set protected config")
            }
            if seen.contains(parameter.name) { throw fail("duplicate parameter") }
            seen.insert(parameter.name)
            let arguments: [String]
            if parameter.flags.contains(.multiArgument) {
                // CONFIG SET splits on single spaces, keeping empty words (Redis's sdssplitlen); only the
                // configuration file knows quotes.
                arguments = value.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                arguments = [value]
            }
            switch canonical(parameter, arguments, appendingTo: nil) {
            case .success(let canonical): changes.append((parameter, canonical))
            case .failure(let error): throw fail(error.message)
            }
        }
        for (parameter, value) in changes { values[parameter.name] = value }
        refreshSettings()
    }

    /// Whether `name` was given in the configuration file or on the command line.
    package func isExplicitlySet(_ name: String) -> Bool {
        guard let parameter = parameters[name.lowercased()] else { return false }
        return fromFile.contains(parameter.name)
    }

    /// Records the value the server actually uses for a start-up parameter (e.g. the effective
    /// `io-threads`), so that CONFIG GET reports it.
    package func recordEffective(_ name: String, _ value: String) {
        guard let parameter = parameters[name.lowercased()] else { return }
        values[parameter.name] = value
        refreshSettings()
    }

    /// Sets a value at start-up (config file or flags), immutable parameters included.
    func setAtStartup(_ name: String, _ arguments: [String]) -> String? {
        let lowered = name.lowercased()
        switch lowered {
        case "include", "loadmodule", "sentinel", "rename-command", "user":
            return directive(lowered, arguments)
        default:
            break
        }
        guard let parameter = parameters[lowered] else { return "Bad directive or wrong number of arguments" }
        if !parameter.flags.contains(.multiArgument) && arguments.count != 1 {
            return "wrong number of arguments"
        }
        var arguments = arguments
        // As Redis: one argument to a list-valued parameter is split on spaces (`--save "900 1"`).
        if parameter.flags.contains(.multiArgument), arguments.count == 1, !arguments[0].isEmpty,
           let words = Self.splitWords(arguments[0]) {
            arguments = words
        }
        // `save` lines accumulate in a file, as in Redis; `save ""` clears.
        let previous = (parameter.name == "save" && fromFile.contains("save")) ? values["save"] : nil
        switch canonical(parameter, arguments, appendingTo: previous) {
        case .success(let value):
            values[parameter.name] = value
            fromFile.insert(parameter.name)
            refreshSettings()
            return nil
        case .failure(let error):
            return error.message
        }
    }

    private func directive(_ name: String, _ arguments: [String]) -> String? {
        switch name {
        case "include":
            guard arguments.count == 1 else { return "Bad directive or wrong number of arguments" }
            let pattern = arguments[0]
            // Like Redis 7, an include may be a glob; a pattern that matches nothing includes nothing.
            let paths = pattern.contains(where: { "*?[".contains($0) }) ? Self.expandGlob(pattern) : [pattern]
            for path in paths {
                do { try loadFile(path) } catch { return "\(error)" }
            }
            return nil
        case "rename-command":
            guard arguments.count == 2 else { return "Bad directive or wrong number of arguments" }
            renamedCommands[arguments[0].lowercased()] = arguments[1]
            return nil
        case "user":
            guard !arguments.isEmpty else { return "Bad directive or wrong number of arguments" }
            userDirectives.append(arguments)
            return nil
        case "loadmodule":
            return "Modules are not supported by NovaCache"
        default:
            return "sentinel directive while not in sentinel mode"
        }
    }

    private struct ValueError: Error { let message: String }

    private func canonical(_ parameter: ConfigParameter, _ arguments: [String], appendingTo previous: String?) -> Result<String, ValueError> {
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

    // MARK: Files and flags

    /// Splits a value the way a redis.conf line is split (quotes, escapes).
    static func splitWords(_ text: String) -> [String]? {
        var text = text
        return text.withUTF8 { utf8 in
            InlineSplitter.split(UnsafeRawBufferPointer(utf8))?.map { String(decoding: $0, as: UTF8.self) }
        }
    }

    /// Applies the lines of a redis.conf-syntax text. `lineOffset` numbers lines in error messages.
    package func load(text: String) throws(ConfigFileError) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, rawLine) in lines.enumerated() {
            let line = rawLine.trimmingCharacters(in: " \t\r\n")
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let words = Self.splitWords(line) else {
                throw ConfigFileError(line: index + 1, text: line, message: "Unbalanced quotes in configuration line")
            }
            guard let name = words.first else { continue }
            if let message = setAtStartup(name, Array(words.dropFirst())) {
                throw ConfigFileError(line: index + 1, text: line, message: message)
            }
        }
    }

    /// Reads and applies a configuration file.
    package func loadFile(_ path: String) throws(ConfigFileError) {
        guard let text = Self.readFile(path) else {
            throw ConfigFileError(line: 0, text: path, message: "Fatal error, can't open config file '\(path)': \(String(cString: strerror(errno)))")
        }
        try load(text: text)
    }

    /// Turns redis-server style flags (`--port 7000 --save ""`) into configuration lines and applies them.
    package func load(flags: [String]) throws(ConfigFileError) {
        var lines: [[String]] = []
        for argument in flags {
            if argument.hasPrefix("--") && argument.count > 2 {
                lines.append([String(argument.dropFirst(2))])
            } else if lines.isEmpty {
                throw ConfigFileError(line: 0, text: argument, message: "Invalid argument '\(argument)': options start with --")
            } else {
                lines[lines.count - 1].append(argument)
            }
        }
        for (index, words) in lines.enumerated() {
            var arguments = Array(words.dropFirst())
            // A flag given with no value means an empty value (`--save` → `save ""`).
            if arguments.isEmpty { arguments = [""] }
            if let message = setAtStartup(words[0], arguments) {
                throw ConfigFileError(line: index + 1, text: words.joined(separator: " "), message: message)
            }
        }
    }

    /// CONFIG REWRITE: rewrites the configuration file with the current values, keeping its comments and
    /// the order of its lines; changed parameters missing from the file are appended. `userLines` (the
    /// ACL's users, when they live in this file) replace the file's `user` lines.
    package func rewrite(userLines: [String]? = nil) throws(CommandError) {
        guard let path = configFilePath else { throw CommandError("ERR The server is running without a config file") }
        let old = Self.readFile(path) ?? ""
        var lines = old.isEmpty ? [] : old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        var written: Set<String> = []
        var output: [String] = []
        var usersWritten = false
        for line in lines {
            let trimmed = line.trimmingCharacters(in: " \t\r\n")
            if let userLines, let first = Self.splitWords(trimmed)?.first, first.lowercased() == "user" {
                if !usersWritten { output.append(contentsOf: userLines) }
                usersWritten = true
                continue
            }
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), let words = Self.splitWords(trimmed),
                  let first = words.first, let parameter = parameters[first.lowercased()] else {
                output.append(line)
                continue
            }
            if written.contains(parameter.name) { continue }
            written.insert(parameter.name)
            output.append(contentsOf: rewriteLines(parameter))
        }
        var appended = false
        for parameter in ConfigCatalog.all where !written.contains(parameter.name) {
            guard values[parameter.name] != parameter.defaultValue, parameter.name != "dir" || fromFile.contains("dir") else { continue }
            if !appended && !output.contains("# Generated by CONFIG REWRITE") {
                output.append("# Generated by CONFIG REWRITE")
            }
            appended = true
            output.append(contentsOf: rewriteLines(parameter))
        }
        if let userLines, !usersWritten {
            // Only users other than an untouched default need a line, as Redis writes them.
            let needed = userLines.filter { $0 != "user default on nopass ~* &* +@all" }
            if !needed.isEmpty {
                if !output.contains("# Generated by CONFIG REWRITE") { output.append("# Generated by CONFIG REWRITE") }
                output.append(contentsOf: needed)
            }
        }
        let text = output.joined(separator: "\n") + "\n"
        let temporary = path + ".tmp-rewrite"
        guard Self.writeFile(temporary, text), rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CommandError("ERR Rewriting config file: \(String(cString: strerror(errno)))")
        }
    }

    private func rewriteLines(_ parameter: ConfigParameter) -> [String] {
        let value = values[parameter.name] ?? ""
        if parameter.name == "save" {
            if value.isEmpty { return ["save \"\""] }
            let words = value.split(separator: " ")
            return stride(from: 0, to: words.count, by: 2).map { "save \(words[$0]) \(words[$0 + 1])" }
        }
        if parameter.flags.contains(.multiArgument) { return ["\(parameter.name) \(value.isEmpty ? "\"\"" : value)"] }
        return ["\(parameter.name) \(Self.quoted(value))"]
    }

    static func quoted(_ value: String) -> String {
        if !value.isEmpty && !value.contains(where: { $0 == " " || $0 == "\"" || $0 == "'" || $0 == "\\" || $0.asciiValue.map { $0 < 32 } ?? false }) {
            return value
        }
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
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

    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return normalize(cwd + "/" + path)
    }

    private static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The files matching a shell glob, sorted.
    static func expandGlob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in
            result.gl_pathv[index].map { String(cString: $0) }
        }.sorted()
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let read = fread(&chunk, 1, chunk.count, file)
            if read <= 0 { break }
            data.append(contentsOf: chunk[0..<read])
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func writeFile(_ path: String, _ text: String) -> Bool {
        guard let file = fopen(path, "w") else { return false }
        let bytes = Array(text.utf8)
        let written = fwrite(bytes, 1, bytes.count, file)
        let flushed = fflush(file) == 0 && fsync(fileno(file)) == 0
        fclose(file)
        return written == bytes.count && flushed
    }

    private func refreshSettings() {
        var s = ServerSettings()
        func int(_ name: String) -> Int { Int(values[name] ?? "") ?? 0 }
        s.port = int("port")
        s.bind = (values["bind"] ?? "").split(separator: " ").map(String.init)
        s.databases = int("databases")
        let pass = values["requirepass"] ?? ""
        s.requirePass = pass.isEmpty ? nil : pass
        s.dir = values["dir"] ?? "."
        s.dbFilename = values["dbfilename"] ?? "dump.rdb"
        s.logLevel = values["loglevel"] ?? "notice"
        s.maxMemory = Int(clamping: UInt64(values["maxmemory"] ?? "") ?? 0)
        s.evictionPolicy = EvictionPolicy(rawValue: values["maxmemory-policy"] ?? "") ?? .noeviction
        s.maxMemorySamples = int("maxmemory-samples")
        s.lfuLogFactor = int("lfu-log-factor")
        s.lfuDecayTime = int("lfu-decay-time")
        s.hz = int("hz")
        s.activeExpireEffort = int("active-expire-effort")
        s.timeout = int("timeout")
        s.tcpKeepalive = int("tcp-keepalive")
        s.tcpBacklog = int("tcp-backlog")
        s.maxClients = int("maxclients")
        s.protoMaxBulkLength = int("proto-max-bulk-len")
        s.clientQueryBufferLimit = int("client-query-buffer-limit")
        s.protectedMode = values["protected-mode"] == "yes"
        let save = (values["save"] ?? "").split(separator: " ").compactMap { Int($0) }
        s.saveRules = stride(from: 0, to: save.count - 1, by: 2).map { (save[$0], save[$0 + 1]) }
        s.notifyKeyspaceEvents = values["notify-keyspace-events"] ?? ""
        s.shutdownOnSigterm = values["shutdown-on-sigterm"] ?? "default"
        s.shutdownOnSigint = values["shutdown-on-sigint"] ?? "default"
        s.appendOnly = values["appendonly"] == "yes"
        s.appendFsync = values["appendfsync"] ?? "everysec"
        s.ioThreads = max(1, int("io-threads"))
        let socket = values["unixsocket"] ?? ""
        s.unixSocket = socket.isEmpty ? nil : socket
        s.unixSocketPermissions = Int(values["unixsocketperm"] ?? "0", radix: 8) ?? 0
        let limits = Self.parseBufferLimits(values["client-output-buffer-limit"] ?? "")
        func limit(_ name: String) -> OutputBufferLimit {
            let (hard, soft, seconds) = limits[name] ?? (0, 0, 0)
            return OutputBufferLimit(hard: Int(clamping: hard), soft: Int(clamping: soft), softSeconds: Int(clamping: seconds))
        }
        s.normalOutputLimit = limit("normal")
        s.pubsubOutputLimit = limit("pubsub")
        s.replicaOutputLimit = limit("slave")
        s.tls = TLSSettings(
            port: int("tls-port"), certFile: values["tls-cert-file"] ?? "", keyFile: values["tls-key-file"] ?? "",
            keyFilePassword: values["tls-key-file-pass"] ?? "", caCertFile: values["tls-ca-cert-file"] ?? "",
            caCertDir: values["tls-ca-cert-dir"] ?? "", authClients: values["tls-auth-clients"] ?? "yes",
            protocols: values["tls-protocols"] ?? "", ciphers: values["tls-ciphers"] ?? "")
        settings = s
    }
}

/// One class of `client-output-buffer-limit`: a client whose unsent output exceeds `hard` bytes, or
/// stays above `soft` bytes for `softSeconds`, is disconnected. Zero disables a limit.
package struct OutputBufferLimit: Sendable, Equatable {
    package var hard = 0
    package var soft = 0
    package var softSeconds = 0

    package init(hard: Int = 0, soft: Int = 0, softSeconds: Int = 0) {
        self.hard = hard
        self.soft = soft
        self.softSeconds = softSeconds
    }

    package var isUnlimited: Bool { hard == 0 && soft == 0 }

    /// Whether `pending` bytes break the limit at `now` (ms); `softSince` remembers when the soft limit
    /// was first exceeded and is reset once the output drops below it.
    package func isExceeded(pending: Int, now: Int64, softSince: inout Int64?) -> Bool {
        if hard > 0 && pending >= hard { return true }
        guard soft > 0, pending >= soft else {
            softSince = nil
            return false
        }
        let since = softSince ?? now
        softSince = since
        return now - since >= Int64(softSeconds) * 1000
    }
}

/// The classes of `notify-keyspace-events`.
package struct KeyspaceEventFlags: OptionSet, Sendable, CustomStringConvertible {
    package let rawValue: Int
    package init(rawValue: Int) { self.rawValue = rawValue }

    package static let keyspace = KeyspaceEventFlags(rawValue: 1 << 0)
    package static let keyevent = KeyspaceEventFlags(rawValue: 1 << 1)
    package static let generic = KeyspaceEventFlags(rawValue: 1 << 2)
    package static let string = KeyspaceEventFlags(rawValue: 1 << 3)
    package static let list = KeyspaceEventFlags(rawValue: 1 << 4)
    package static let set = KeyspaceEventFlags(rawValue: 1 << 5)
    package static let hash = KeyspaceEventFlags(rawValue: 1 << 6)
    package static let zset = KeyspaceEventFlags(rawValue: 1 << 7)
    package static let expired = KeyspaceEventFlags(rawValue: 1 << 8)
    package static let evicted = KeyspaceEventFlags(rawValue: 1 << 9)
    package static let stream = KeyspaceEventFlags(rawValue: 1 << 10)
    package static let keyMiss = KeyspaceEventFlags(rawValue: 1 << 11)
    package static let module = KeyspaceEventFlags(rawValue: 1 << 12)
    package static let new = KeyspaceEventFlags(rawValue: 1 << 13)
    /// `A`: every class except key-miss and new-key.
    package static let all: KeyspaceEventFlags = [.generic, .string, .list, .set, .hash, .zset, .expired, .evicted, .stream, .module]

    /// Parses Redis's flag letters; nil for an unknown letter.
    package init?(parsing text: String) {
        var flags: KeyspaceEventFlags = []
        for character in text {
            switch character {
            case "A": flags.formUnion(.all)
            case "g": flags.insert(.generic)
            case "$": flags.insert(.string)
            case "l": flags.insert(.list)
            case "s": flags.insert(.set)
            case "h": flags.insert(.hash)
            case "z": flags.insert(.zset)
            case "x": flags.insert(.expired)
            case "e": flags.insert(.evicted)
            case "K": flags.insert(.keyspace)
            case "E": flags.insert(.keyevent)
            case "t": flags.insert(.stream)
            case "m": flags.insert(.keyMiss)
            case "d": flags.insert(.module)
            case "n": flags.insert(.new)
            default: return nil
            }
        }
        self = flags
    }

    /// The canonical letters kept in the configuration: `description`, plus `n` when `A` hides it.
    package var storedText: String {
        isSuperset(of: .all) && contains(.new) ? description + "n" : description
    }

    /// The canonical letters, in Redis's order (as CONFIG GET prints them).
    package var description: String {
        var text = ""
        if isSuperset(of: .all) {
            text = "A"
        } else {
            let letters: [(KeyspaceEventFlags, String)] = [
                (.generic, "g"), (.string, "$"), (.list, "l"), (.set, "s"), (.hash, "h"), (.zset, "z"),
                (.expired, "x"), (.evicted, "e"), (.stream, "t"), (.module, "d"), (.new, "n"),
            ]
            for (flag, letter) in letters where contains(flag) { text += letter }
        }
        if contains(.keyspace) { text += "K" }
        if contains(.keyevent) { text += "E" }
        if contains(.keyMiss) { text += "m" }
        return text
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
