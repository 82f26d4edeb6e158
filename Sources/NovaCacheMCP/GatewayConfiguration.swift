import Foundation
import NIOSSL
public import NovaConnector

/// What `nova-cache-mcp` runs: the cache it keeps results in, how downstream clients reach it, and the
/// upstream MCP servers it fronts with a caching policy per tool. Read from a JSON file
/// (docs/mcp-gateway.md describes every field); every mistake is reported with the file's line and the
/// field's path.
public struct GatewayConfiguration: Sendable {
    /// Where results are kept.
    public struct Cache: Sendable {
        /// The NovaCache server (or any Redis): `redis://[:password@]host:port/db`, `rediss://` for TLS.
        public var url = "redis://127.0.0.1:6379/0"
        /// Prefix of every key the gateway writes (`<namespace>:<upstream>:<tool>:…`).
        public var namespace = "mcp"
        /// Results kept in the gateway's own memory tier.
        public var memoryEntries = 10_000
        /// How long the memory tier keeps results past their TTL for `staleOnError` (the longest window).
        public var maxStaleness: Duration = .seconds(3600)

        public init() {}
    }

    /// The Streamable HTTP endpoint for downstream clients (without it the gateway speaks stdio).
    public struct HTTP: Sendable {
        public var host = "127.0.0.1"
        public var port = 8931
        public var path = "/mcp"

        public init() {}
    }

    /// Who the caller is, for `private` tools: results are cached per caller and never cross callers.
    public struct Identity: Sendable {
        /// The HTTP header whose value identifies the caller (hashed before it reaches a key).
        public var header = "authorization"
        /// The caller of a stdio gateway (one process serves one user); nil: private tools pass through
        /// uncached on stdio.
        public var stdioCaller: String?

        public init() {}
    }

    /// How to reach an upstream MCP server.
    public enum Transport: Sendable, Hashable {
        /// A subprocess speaking MCP on its stdin and stdout.
        case command([String], environment: [String: String], directory: String?)
        /// A Streamable HTTP endpoint, with headers sent on every request and, for `https`, a PEM file of
        /// the certificate authorities to trust instead of the system's.
        case url(String, headers: [String: String], ca: String?)
    }

    /// The caching rule for a tool, as written: every field optional, resolved against the upstream's
    /// defaults and the tool's annotations by `policy(for:rule:annotations:)`.
    public struct ToolRule: Sendable, Hashable {
        public var cache: Bool?
        public var preset: ConnectorPolicy?
        public var ttl: Duration?
        public var key: [String]?
        public var scope: ConnectorPolicy.Scope?
        public var staleOnError: Duration?

        public init() {}
    }

    /// One upstream MCP server and the rules for its tools.
    public struct Upstream: Sendable {
        public var name: String
        public var transport: Transport
        /// Prepended to the upstream's tool names (default `<name>_`), so that two upstreams' tools
        /// cannot collide.
        public var prefix: String
        /// How long one upstream call may take before the gateway gives up on it.
        public var timeout: Duration
        public var defaults: ToolRule
        public var tools: [String: ToolRule]
    }

    public var cache = Cache()
    public var http: HTTP?
    public var identity = Identity()
    public var upstreams: [Upstream] = []

    public init() {}

    /// The policy a tool gets: the rule's fields, then the upstream's defaults, then the preset they name,
    /// then 5 minutes. Cached when the rule says so, else when the tool says it is read-only or idempotent.
    public static func policy(name: String, rule: ToolRule?, defaults: ToolRule, readOnly: Bool, idempotent: Bool) -> ConnectorPolicy {
        var policy = rule?.preset ?? defaults.preset ?? ConnectorPolicy(name: name)
        if rule?.preset == nil && defaults.preset == nil { policy.name = name }
        policy.cacheable = rule?.cache ?? defaults.cache ?? (readOnly || idempotent)
        if let ttl = rule?.ttl ?? defaults.ttl { policy.ttl = ttl }
        if let key = rule?.key ?? defaults.key { policy.keyFields = key }
        if let scope = rule?.scope ?? defaults.scope { policy.scope = scope }
        if let stale = rule?.staleOnError ?? defaults.staleOnError { policy.staleOnError = stale }
        return policy
    }
}

/// A mistake in a configuration file: where (file, line, field) and what.
public struct GatewayConfigurationError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let field: String
    public let message: String

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        return field.isEmpty ? "\(place): \(message)" : "\(place): \(field): \(message)"
    }
}

extension GatewayConfiguration {
    /// Reads and checks the file at `path`.
    public static func load(path: String) throws -> GatewayConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GatewayConfigurationError(file: path, line: nil, field: "", message: "cannot read the file")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// Parses and checks a configuration; `file` names it in errors.
    public static func parse(_ text: String, file: String = "<configuration>") throws -> GatewayConfiguration {
        var reader = ConfigurationReader(text: text, file: file)
        return try reader.read()
    }
}

/// Reads the JSON tree of a configuration, field by field, with the path and line of each for errors.
struct ConfigurationReader {
    let text: String
    let file: String
    let lines: [String: Int]

    init(text: String, file: String) {
        self.text = text
        self.file = file
        lines = JSONLineIndex.lines(of: text)
    }

    func fail(_ path: String, _ message: String) -> GatewayConfigurationError {
        GatewayConfigurationError(file: file, line: lines[path] ?? nearestLine(path), field: path, message: message)
    }

    /// The line of the closest enclosing field that has one.
    private func nearestLine(_ path: String) -> Int? {
        var path = path
        while let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) {
            path = String(path[..<cut])
            if let line = lines[path] { return line }
        }
        return nil
    }

    mutating func read() throws -> GatewayConfiguration {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: Data(text.utf8))
        } catch {
            throw syntaxError(error)
        }
        let top = try object(root, "")
        try allowOnly(top, ["cache", "http", "identity", "upstreams"], "")
        var configuration = GatewayConfiguration()
        if let cache = top["cache"] {
            let fields = try object(cache, "cache")
            try allowOnly(fields, ["url", "namespace", "memoryEntries", "maxStaleness"], "cache")
            if let url = fields["url"] {
                let text = try string(url, "cache.url")
                guard text.hasPrefix("redis://") || text.hasPrefix("rediss://") else {
                    throw fail("cache.url", "expected a redis:// or rediss:// URL, got \"\(text)\"")
                }
                configuration.cache.url = text
            }
            if let namespace = fields["namespace"] { configuration.cache.namespace = try string(namespace, "cache.namespace") }
            if let entries = fields["memoryEntries"] { configuration.cache.memoryEntries = try integer(entries, "cache.memoryEntries", minimum: 1) }
            if let staleness = fields["maxStaleness"] { configuration.cache.maxStaleness = try duration(staleness, "cache.maxStaleness") }
        }
        if let http = top["http"] {
            let fields = try object(http, "http")
            try allowOnly(fields, ["host", "port", "path"], "http")
            var settings = GatewayConfiguration.HTTP()
            if let host = fields["host"] { settings.host = try string(host, "http.host") }
            if let port = fields["port"] { settings.port = try integer(port, "http.port", minimum: 0, maximum: 65535) }
            if let path = fields["path"] {
                settings.path = try string(path, "http.path")
                guard settings.path.hasPrefix("/") else { throw fail("http.path", "expected a path starting with /") }
            }
            configuration.http = settings
        }
        if let identity = top["identity"] {
            let fields = try object(identity, "identity")
            try allowOnly(fields, ["header", "stdioCaller"], "identity")
            if let header = fields["header"] { configuration.identity.header = try string(header, "identity.header").lowercased() }
            if let caller = fields["stdioCaller"] { configuration.identity.stdioCaller = try string(caller, "identity.stdioCaller") }
        }
        guard let upstreams = top["upstreams"] else { throw fail("upstreams", "missing: list at least one upstream MCP server") }
        guard let list = upstreams as? [Any], !list.isEmpty else { throw fail("upstreams", "expected a non-empty list of upstream servers") }
        var names: Set<String> = []
        var prefixes: [String: String] = [:]
        for (index, entry) in list.enumerated() {
            let upstream = try readUpstream(entry, "upstreams[\(index)]")
            guard names.insert(upstream.name).inserted else { throw fail("upstreams[\(index)].name", "\"\(upstream.name)\" is used twice") }
            if let other = prefixes[upstream.prefix] {
                throw fail("upstreams[\(index)].prefix", "\"\(upstream.prefix)\" is also the prefix of \"\(other)\": their tools could collide")
            }
            prefixes[upstream.prefix] = upstream.name
            configuration.upstreams.append(upstream)
        }
        return configuration
    }

    private func readUpstream(_ value: Any, _ path: String) throws -> GatewayConfiguration.Upstream {
        let fields = try object(value, path)
        try allowOnly(fields, ["name", "command", "env", "cwd", "url", "headers", "ca", "prefix", "timeout", "defaults", "tools"], path)
        guard let nameValue = fields["name"] else { throw fail("\(path).name", "missing: every upstream needs a name") }
        let name = try string(nameValue, "\(path).name")
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw fail("\(path).name", "expected letters, digits, _ or -, got \"\(name)\"")
        }
        let transport: GatewayConfiguration.Transport
        switch (fields["command"], fields["url"]) {
        case (let command?, nil):
            guard let parts = command as? [Any], !parts.isEmpty else { throw fail("\(path).command", "expected a non-empty list: the program and its arguments") }
            let words = try parts.enumerated().map { try string($1, "\(path).command[\($0)]") }
            var environment: [String: String] = [:]
            if let env = fields["env"] {
                for (key, value) in try object(env, "\(path).env") { environment[key] = try string(value, "\(path).env.\(key)") }
            }
            let directory = try fields["cwd"].map { try string($0, "\(path).cwd") }
            for field in ["headers", "ca"] where fields[field] != nil { throw fail("\(path).\(field)", "only for upstreams reached by url") }
            transport = .command(words, environment: environment, directory: directory)
        case (nil, let url?):
            let address = try string(url, "\(path).url")
            guard let parsed = URL(string: address), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw fail("\(path).url", "expected an http:// or https:// URL, got \"\(address)\"")
            }
            var headers: [String: String] = [:]
            if let given = fields["headers"] {
                for (key, value) in try object(given, "\(path).headers") { headers[key] = try string(value, "\(path).headers.\(key)") }
            }
            for field in ["env", "cwd"] where fields[field] != nil { throw fail("\(path).\(field)", "only for upstreams started as a command") }
            let ca = try fields["ca"].map { try string($0, "\(path).ca") }
            if let ca {
                guard parsed.scheme == "https" else { throw fail("\(path).ca", "only for https:// upstreams") }
                do {
                    guard !(try NIOSSLCertificate.fromPEMFile(ca)).isEmpty else { throw fail("\(path).ca", "no certificate in \(ca)") }
                } catch let error as GatewayConfigurationError {
                    throw error
                } catch {
                    throw fail("\(path).ca", "cannot read PEM certificates from \(ca): \(error)")
                }
            }
            transport = .url(address, headers: headers, ca: ca)
        case (nil, nil):
            throw fail(path, "give either \"command\" (a subprocess on stdio) or \"url\" (Streamable HTTP)")
        case (_?, _?):
            throw fail("\(path).url", "give either \"command\" or \"url\", not both")
        }
        let prefix = try fields["prefix"].map { try string($0, "\(path).prefix") } ?? "\(name)_"
        let timeout = try fields["timeout"].map { try duration($0, "\(path).timeout") } ?? .seconds(30)
        let defaults = try fields["defaults"].map { try readRule($0, "\(path).defaults") } ?? GatewayConfiguration.ToolRule()
        var tools: [String: GatewayConfiguration.ToolRule] = [:]
        if let given = fields["tools"] {
            for (tool, rule) in try object(given, "\(path).tools") { tools[tool] = try readRule(rule, "\(path).tools.\(tool)") }
        }
        return GatewayConfiguration.Upstream(name: name, transport: transport, prefix: prefix, timeout: timeout, defaults: defaults, tools: tools)
    }

    private func readRule(_ value: Any, _ path: String) throws -> GatewayConfiguration.ToolRule {
        let fields = try object(value, path)
        try allowOnly(fields, ["cache", "policy", "ttl", "key", "scope", "staleOnError"], path)
        var rule = GatewayConfiguration.ToolRule()
        if let cache = fields["cache"] {
            guard let flag = cache as? Bool, isJSONBoolean(cache) else { throw fail("\(path).cache", "expected true or false") }
            rule.cache = flag
        }
        if let preset = fields["policy"] {
            let name = try string(preset, "\(path).policy")
            guard let policy = ConnectorPolicy.presets[name] else {
                throw fail("\(path).policy", "unknown preset \"\(name)\"; expected one of \(ConnectorPolicy.presets.keys.sorted().joined(separator: ", "))")
            }
            rule.preset = policy
        }
        if let ttl = fields["ttl"] {
            rule.ttl = try duration(ttl, "\(path).ttl")
            guard rule.ttl! > .zero else { throw fail("\(path).ttl", "expected a TTL above zero") }
        }
        if let key = fields["key"] {
            guard let names = key as? [Any] else { throw fail("\(path).key", "expected a list of argument names") }
            rule.key = try names.enumerated().map { try string($1, "\(path).key[\($0)]") }
        }
        if let scope = fields["scope"] {
            switch try string(scope, "\(path).scope") {
            case "shared": rule.scope = .shared
            case "private": rule.scope = .caller
            case let other: throw fail("\(path).scope", "expected \"shared\" or \"private\", got \"\(other)\"")
            }
        }
        if let stale = fields["staleOnError"] { rule.staleOnError = try duration(stale, "\(path).staleOnError") }
        return rule
    }

    // MARK: Values

    private func object(_ value: Any, _ path: String) throws -> [String: Any] {
        guard let object = value as? [String: Any] else { throw fail(path, "expected an object { … }") }
        return object
    }

    private func allowOnly(_ object: [String: Any], _ allowed: Set<String>, _ path: String) throws {
        for key in object.keys.sorted() where !allowed.contains(key) {
            let field = path.isEmpty ? key : "\(path).\(key)"
            throw fail(field, "unknown field; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
    }

    private func string(_ value: Any, _ path: String) throws -> String {
        guard let text = value as? String else { throw fail(path, "expected a string") }
        return text
    }

    private func integer(_ value: Any, _ path: String, minimum: Int, maximum: Int = .max) throws -> Int {
        guard let number = value as? NSNumber, !isJSONBoolean(value), number.doubleValue == number.doubleValue.rounded(),
            let integer = Int(exactly: number.doubleValue), (minimum...maximum).contains(integer)
        else { throw fail(path, "expected a whole number from \(minimum) to \(maximum)") }
        return integer
    }

    /// "250ms", "90s", "5m", "1h", "1d", or a number of seconds.
    private func duration(_ value: Any, _ path: String) throws -> Duration {
        let problem = "expected a duration such as \"90s\", \"5m\", \"1h\" or \"1d\""
        if let number = value as? NSNumber, !isJSONBoolean(value), number.doubleValue >= 0 {
            return .milliseconds(Int64(number.doubleValue * 1000))
        }
        guard let text = value as? String else { throw fail(path, problem) }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (unit, seconds) in units where text.hasSuffix(unit) {
            let digits = text.dropLast(unit.count)
            if let amount = Double(digits), amount >= 0, digits.allSatisfy({ $0.isNumber || $0 == "." }) {
                return .milliseconds(Int64(amount * seconds * 1000))
            }
        }
        throw fail(path, "\(problem), got \"\(text)\"")
    }

    private func syntaxError(_ error: any Error) -> GatewayConfigurationError {
        let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        // Foundation names the character offset; the line is what an editor shows.
        var line: Int?
        if let range = detail.range(of: #"character (\d+)"#, options: .regularExpression),
            let offset = Int(detail[range].dropFirst("character ".count)) {
            line = text.utf8.prefix(offset).reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        }
        return GatewayConfigurationError(file: file, line: line, field: "", message: "not valid JSON (\(detail))")
    }
}

/// Whether a value JSONSerialization produced is a boolean: Foundation gives booleans and numbers both as
/// NSNumber (and `1 as? Bool` succeeds); a boolean's type is its own subclass.
func isJSONBoolean(_ value: Any) -> Bool {
    type(of: value) == type(of: NSNumber(value: true))
}

/// The line of every field of a JSON text, by path (`upstreams[0].tools.search.ttl`): a small scanner, as
/// Foundation's parser keeps no positions.
enum JSONLineIndex {
    static func lines(of text: String) -> [String: Int] {
        enum Container { case object(key: String?), array(index: Int) }
        var result: [String: Int] = [:]
        var stack: [(container: Container, path: String)] = []
        var line = 1
        var bytes = Array(text.utf8)[...]
        func childPath(_ parent: String, _ key: String) -> String { parent.isEmpty ? key : "\(parent).\(key)" }
        /// Called where a value starts: records the array element's line.
        func valueStarts() {
            guard case .array(let index)? = stack.last?.container, let path = stack.last?.path else { return }
            result["\(path)[\(index)]"] = result["\(path)[\(index)]"] ?? line
        }
        func currentValuePath() -> String {
            guard let top = stack.last else { return "" }
            switch top.container {
            case .object(let key?): return childPath(top.path, key)
            case .object(nil): return top.path
            case .array(let index): return "\(top.path)[\(index)]"
            }
        }
        var expectingKey = false
        while let byte = bytes.popFirst() {
            switch byte {
            case UInt8(ascii: "\n"): line += 1
            case UInt8(ascii: "{"):
                valueStarts()
                stack.append((.object(key: nil), currentValuePath()))
                expectingKey = true
            case UInt8(ascii: "["):
                valueStarts()
                stack.append((.array(index: 0), currentValuePath()))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
                expectingKey = false
            case UInt8(ascii: ","):
                if let top = stack.last {
                    switch top.container {
                    case .object: expectingKey = true
                    case .array(let index): stack[stack.count - 1].container = .array(index: index + 1)
                    }
                }
            case UInt8(ascii: "\""):
                var string: [UInt8] = []
                while let next = bytes.popFirst(), next != UInt8(ascii: "\"") {
                    if next == UInt8(ascii: "\\"), let escaped = bytes.popFirst() { string.append(escaped) } else { string.append(next) }
                }
                if expectingKey, let top = stack.last, case .object = top.container {
                    let key = String(decoding: string, as: UTF8.self)
                    stack[stack.count - 1].container = .object(key: key)
                    result[childPath(top.path, key)] = line
                    expectingKey = false
                } else {
                    valueStarts()
                }
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: ":"):
                break
            default:
                valueStarts()
            }
        }
        return result
    }
}

extension GatewayConfiguration {
    /// What the configuration says, for `--check-config`: the cache, the endpoint, each upstream and its
    /// rules.
    public var summary: String {
        var lines = ["cache: \(RedisURLRedaction.redact(cache.url)) namespace \(cache.namespace), memory \(cache.memoryEntries) entries"]
        if let http { lines.append("http: \(http.host):\(http.port)\(http.path)") } else { lines.append("downstream: stdio (--http for Streamable HTTP)") }
        for upstream in upstreams {
            switch upstream.transport {
            case .command(let words, _, _): lines.append("upstream \(upstream.name): command \(words.joined(separator: " ")), tools as \(upstream.prefix)*")
            case .url(let address, _, _): lines.append("upstream \(upstream.name): \(address), tools as \(upstream.prefix)*")
            }
            for (tool, rule) in upstream.tools.sorted(by: { $0.key < $1.key }) {
                let undecided = rule.cache == nil && upstream.defaults.cache == nil
                let policy = GatewayConfiguration.policy(name: tool, rule: rule, defaults: upstream.defaults, readOnly: undecided, idempotent: false)
                lines.append("  \(tool): \(undecided ? "if the tool says it is read-only or idempotent: " : "")\(policy)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Hides a URL's password.
enum RedisURLRedaction {
    static func redact(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://") else { return url }
        let credentials = url[scheme.upperBound..<at]
        guard let colon = credentials.lastIndex(of: ":") else { return url }
        return url.replacingCharacters(in: url.index(after: colon)..<at, with: "***")
    }
}
