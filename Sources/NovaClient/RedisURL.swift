import Foundation

/// Where and how to connect: parsed from a Redis URL.
///
/// Accepted forms:
/// - `redis://[[user]:password@]host[:port][/db][?option=value…]`
/// - `rediss://…` (TLS; options `ca=PATH`, `verify=none|no-hostname|full`, `cert=PATH`, `key=PATH`)
/// - `unix:///path/to/redis.sock[?db=N&password=…&user=…]`
///
/// User names and passwords may be percent-escaped (`p%40ss` is `p@ss`). Further options, valid in every
/// form: `db`, `timeout` (command timeout, seconds), `connect_timeout` (seconds), `protocol` (2 or 3),
/// `name` (CLIENT SETNAME).
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    /// How the server is reached.
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    /// How a TLS peer's certificate is checked.
    public enum CertificateVerification: String, Sendable, Hashable {
        /// Certificate chain and host name.
        case full
        /// Certificate chain only.
        case noHostname = "no-hostname"
        /// Nothing: encryption without authentication (tests only).
        case none
    }

    /// TLS settings of a `rediss://` URL.
    public struct TLS: Sendable, Hashable {
        /// A PEM file of trusted CA certificates; the system's trust roots when nil.
        public var caCertificatePath: String?
        /// Client certificate and key (PEM), for servers with `tls-auth-clients yes`.
        public var certificatePath: String?
        public var keyPath: String?
        public var verification: CertificateVerification = .full

        public init(
            caCertificatePath: String? = nil, certificatePath: String? = nil, keyPath: String? = nil,
            verification: CertificateVerification = .full
        ) {
            self.caCertificatePath = caCertificatePath
            self.certificatePath = certificatePath
            self.keyPath = keyPath
            self.verification = verification
        }
    }

    public var endpoint: Endpoint
    public var username: String?
    public var password: String?
    public var database: Int
    /// Non-nil for `rediss://`.
    public var tls: TLS?
    /// Per-command timeout; nil waits forever.
    public var commandTimeout: Duration?
    public var connectTimeout: Duration
    /// The RESP version asked for with HELLO (3 falls back to 2 on servers that refuse HELLO).
    public var protocolVersion: Int
    /// A CLIENT SETNAME name for every connection.
    public var clientName: String?
    /// Whether every connection sends READONLY (a cluster client reading from replicas); not part of the
    /// URL text.
    var readOnly = false

    /// The default when nothing is configured.
    public static let defaultURL = "redis://127.0.0.1:6379/0"

    /// The URL in the `REDIS_URL` environment variable, else `redis://127.0.0.1:6379/0`.
    public static func fromEnvironment() throws(RedisURLError) -> RedisURL {
        try RedisURL(ProcessInfo.processInfo.environment["REDIS_URL"] ?? defaultURL)
    }

    /// A plain TCP endpoint.
    public init(host: String = "127.0.0.1", port: Int = 6379, database: Int = 0, password: String? = nil) {
        endpoint = .tcp(host: host, port: port)
        self.database = database
        self.password = password
        commandTimeout = .seconds(5)
        connectTimeout = .seconds(2)
        protocolVersion = 3
    }

    /// Parses `text`; throws with a message that never contains the password.
    public init(_ text: String) throws(RedisURLError) {
        self.init()
        guard let schemeEnd = text.range(of: "://") else { throw RedisURLError("missing scheme (redis://, rediss://, unix://)") }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(text[schemeEnd.upperBound...])
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        switch scheme {
        case "redis", "rediss":
            if scheme == "rediss" { tls = TLS() }
            var authority = rest
            var path: Substring = ""
            if let slash = rest.firstIndex(of: "/") {
                authority = rest[..<slash]
                path = rest[rest.index(after: slash)...]
            }
            if let at = authority.lastIndex(of: "@") {
                try parseUserInfo(authority[..<at])
                authority = authority[authority.index(after: at)...]
            }
            var host = "127.0.0.1"
            var port = 6379
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { throw RedisURLError("unterminated IPv6 address") }
                host = String(authority[authority.index(after: authority.startIndex)..<close])
                let after = authority[authority.index(after: close)...]
                if after.hasPrefix(":") { port = try Self.port(after.dropFirst()) }
            } else if let colon = authority.lastIndex(of: ":") {
                if colon != authority.startIndex { host = String(authority[..<colon]) }
                port = try Self.port(authority[authority.index(after: colon)...])
            } else if !authority.isEmpty {
                host = String(authority)
            }
            endpoint = .tcp(host: Self.unescape(host), port: port)
            let db = path.split(separator: "/").first
            if let db { database = try Self.database(db) }
        case "unix":
            let path = Self.unescape(String(rest))
            guard path.hasPrefix("/") else { throw RedisURLError("unix:// needs an absolute socket path") }
            endpoint = .unixSocket(path: path)
        default:
            throw RedisURLError("unsupported scheme '\(scheme)' (redis://, rediss://, unix://)")
        }
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let name = parts[0].lowercased()
            let value = parts.count > 1 ? Self.unescape(String(parts[1])) : ""
            switch name {
            case "db": database = try Self.database(Substring(value))
            case "password": password = value
            case "user", "username": username = value
            case "timeout", "socket_timeout": commandTimeout = try Self.duration(value, name)
            case "connect_timeout", "socket_connect_timeout": connectTimeout = try Self.duration(value, name) ?? .seconds(2)
            case "protocol":
                guard value == "2" || value == "3" else { throw RedisURLError("protocol must be 2 or 3") }
                protocolVersion = Int(value)!
            case "name", "client_name": clientName = value
            case "ca", "ssl_ca_certs": try withTLS(name) { $0.caCertificatePath = value }
            case "cert", "ssl_certfile": try withTLS(name) { $0.certificatePath = value }
            case "key", "ssl_keyfile": try withTLS(name) { $0.keyPath = value }
            case "verify", "ssl_cert_reqs":
                let mode: CertificateVerification? = switch value.lowercased() {
                case "full", "required": .full
                case "no-hostname", "optional": .noHostname
                case "none": CertificateVerification.none
                default: nil
                }
                guard let mode else { throw RedisURLError("verify must be full, no-hostname or none") }
                try withTLS(name) { $0.verification = mode }
            default:
                throw RedisURLError("unknown URL option '\(name)'")
            }
        }
    }

    private mutating func withTLS(_ option: String, _ change: (inout TLS) -> Void) throws(RedisURLError) {
        guard tls != nil else { throw RedisURLError("option '\(option)' needs a rediss:// URL") }
        change(&tls!)
    }

    private mutating func parseUserInfo(_ info: Substring) throws(RedisURLError) {
        if let colon = info.firstIndex(of: ":") {
            let user = info[..<colon]
            if !user.isEmpty { username = Self.unescape(String(user)) }
            password = Self.unescape(String(info[info.index(after: colon)...]))
        } else if !info.isEmpty {
            // redis://secret@host is how redis-py reads a lone user-info part: a password.
            password = Self.unescape(String(info))
        }
    }

    private static func port(_ text: Substring) throws(RedisURLError) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else { throw RedisURLError("invalid port '\(text)'") }
        return port
    }

    private static func database(_ text: Substring) throws(RedisURLError) -> Int {
        guard let db = Int(text), db >= 0 else { throw RedisURLError("invalid database '\(text)'") }
        return db
    }

    private static func duration(_ text: String, _ name: String) throws(RedisURLError) -> Duration? {
        if text.isEmpty || text.lowercased() == "none" { return nil }
        guard let seconds = Double(text), seconds > 0, seconds.isFinite else { throw RedisURLError("invalid \(name) '\(text)'") }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    private static func unescape(_ text: String) -> String { text.removingPercentEncoding ?? text }

    /// The URL with the password replaced by `***`, for logs and messages.
    public var description: String {
        var text = tls == nil ? "redis://" : "rediss://"
        switch endpoint {
        case .unixSocket(let path):
            text = "unix://\(path)"
            var options: [String] = []
            if database != 0 { options.append("db=\(database)") }
            if username != nil { options.append("user=\(username!)") }
            if password != nil { options.append("password=***") }
            return options.isEmpty ? text : text + "?" + options.joined(separator: "&")
        case .tcp(let host, let port):
            if username != nil || password != nil {
                text += (username ?? "") + (password != nil ? ":***" : "") + "@"
            }
            text += host.contains(":") ? "[\(host)]" : host
            text += ":\(port)/\(database)"
            return text
        }
    }
}

/// A URL that cannot be used; the message never contains the password.
public struct RedisURLError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = "invalid Redis URL: \(description)" }
}
