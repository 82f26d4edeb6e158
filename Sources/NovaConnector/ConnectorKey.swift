import Foundation
import NovaEngine

/// The cache key of one upstream call: `<source>:<operation>:<scope>:<arguments>`.
///
/// - The arguments are written as canonical JSON (object keys sorted, no insignificant space), so that
///   `{"b":1,"a":2}` and `{"a":2, "b":1}` share an entry; with `keyFields`, only those top-level fields. Up
///   to 128 bytes the JSON itself is the key's tail (readable in `nova-cache keys`); longer arguments are
///   replaced by `sha256:` and their digest (JSON never starts with `s`, so the two forms cannot meet).
/// - The scope is `shared`, or `caller-` and the first 32 hex digits of the SHA-256 of the caller's
///   identity: identities (tokens, user names) never appear in keys.
/// - `%` and `:` in the source and operation names are escaped, so that the four parts cannot run into
///   one another.
public struct ConnectorKey: Sendable, Hashable, CustomStringConvertible {
    public let source: String
    public let operation: String
    /// The key without the cache manager's namespace.
    public let key: String

    /// Arguments longer than this (in canonical JSON) are hashed.
    public static let maxLiteralArguments = 128

    /// The key of a call of `operation` on `source` with `arguments` under `policy`, for `caller`.
    /// - Throws: `ConnectorError.callerRequired` when the policy's scope is `caller` and `caller` is nil or
    ///   empty; an encoding error when the arguments are not a JSON object or array (or nothing).
    public init(source: String, operation: String, arguments: some Encodable, caller: String?, policy: ConnectorPolicy) throws {
        let scope: String
        switch policy.scope {
        case .shared: scope = "shared"
        case .caller:
            guard let caller, !caller.isEmpty else { throw ConnectorError.callerRequired(source: source, operation: operation) }
            scope = "caller-" + SHA256.hex(Array(caller.utf8)).prefix(32)
        }
        let json = try Self.canonicalJSON(arguments, fields: policy.keyFields)
        let tail = json.utf8.count <= Self.maxLiteralArguments ? json : "sha256:" + SHA256.hex(Array(json.utf8))
        self.source = source
        self.operation = operation
        key = [Self.escape(source), Self.escape(operation), scope, tail].joined(separator: ":")
    }

    public var description: String { key }

    /// `value` as canonical JSON: sorted object keys, no whitespace; an object reduced to `fields` when
    /// given. `nil`-like values (an empty optional) give `{}`.
    public static func canonicalJSON(_ value: some Encodable, fields: [String]? = nil) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let encoded = try encoder.encode(value)
        if encoded == Data("null".utf8) { return "{}" }
        // The encoder's sorted output is canonical already; only a choice of fields needs the tree.
        guard let fields, let object = (try? JSONSerialization.jsonObject(with: encoded, options: .fragmentsAllowed)) as? [String: Any] else {
            return String(decoding: encoded, as: UTF8.self)
        }
        var selected: [String: Any] = [:]
        for field in fields { if let value = object[field] { selected[field] = value } }
        let data = try JSONSerialization.data(withJSONObject: selected, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    static func escape(_ name: String) -> String {
        guard name.contains(where: { $0 == "%" || $0 == ":" }) else { return name }
        return name.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: ":", with: "%3A")
    }
}

/// Errors of the connector cache itself (the upstream's own errors pass through unchanged).
public enum ConnectorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A `caller`-scoped operation was called without a caller identity.
    case callerRequired(source: String, operation: String)

    public var description: String {
        switch self {
        case .callerRequired(let source, let operation):
            return "\(source)/\(operation) is cached per caller, and the call names no caller"
        }
    }
}
