import NIOCore
import NovaRESP

/// How a cluster client routes one command, read from the server's COMMAND INFO: where its keys are
/// (Redis 7.0 key specs), whether it only reads, and its request and response policies (command tips).
struct CommandRouting: Sendable {
    /// Where a command without a single key slot goes (`request_policy` tip).
    enum RequestPolicy: String, Sendable {
        /// By its keys' slot; a keyless command goes to any primary.
        case byKeys = ""
        /// Every node, replicas included (SCRIPT LOAD, CONFIG SET).
        case allNodes = "all_nodes"
        /// Every primary (DBSIZE, KEYS, FLUSHALL).
        case allShards = "all_shards"
        /// Split by key slot (MGET, MSET, DEL, EXISTS).
        case multiShard = "multi_shard"
        /// The command needs handling of its own (SCAN: see `RedisClusterClient.scanKeys`).
        case special = "special"
    }

    /// How the replies of several nodes make one (`response_policy` tip).
    enum ResponsePolicy: String, Sendable {
        case oneSucceeded = "one_succeeded"
        case allSucceeded = "all_succeeded"
        case logicalAnd = "agg_logical_and"
        case logicalOr = "agg_logical_or"
        case minimum = "agg_min"
        case maximum = "agg_max"
        case sum = "agg_sum"
        case special = "special"
    }

    var keySpecs: [KeySpec] = []
    var readOnly = false
    var requestPolicy = RequestPolicy.byKeys
    var responsePolicy: ResponsePolicy?
    /// Subcommands by lower-cased name (`object|encoding` is found under `encoding`).
    var subcommands: [String: CommandRouting] = [:]

    /// A command the server does not know: keyless, sent to any primary, whose error the caller then sees.
    static let unknown = CommandRouting()

    /// Whether every key is at a fixed position (one index/range spec), so keys are found without looking
    /// at the arguments' bytes.
    private var fixedRange: (first: Int, last: Int, step: Int)? {
        guard keySpecs.count == 1, case .index(let index) = keySpecs[0].beginSearch,
            case let .range(lastKey, step, limit) = keySpecs[0].findKeys, limit == 0,
            !keySpecs[0].flags.contains(.incomplete) else { return nil }
        return (index, lastKey, step)
    }

    /// The argument indexes of the keys (and of `not_key` routing arguments such as SPUBLISH's channel);
    /// nil when the specs cannot tell (then COMMAND GETKEYS can).
    func keyIndexes(_ arguments: [RedisArgument]) -> [Int]? {
        if keySpecs.isEmpty { return [] }
        if let (first, lastKey, step) = fixedRange {
            let last = lastKey >= 0 ? first + lastKey : arguments.count + lastKey
            guard first < arguments.count, last < arguments.count, last >= first else { return [] }
            return Array(stride(from: first, through: last, by: max(1, step)))
        }
        let buffers = arguments.map(\.byteBuffer)
        return KeyExtraction.bySpecs(keySpecs, buffers, includingNotKeys: true)?.map(\.index)
    }

    /// The routing of the subcommand named by `arguments[1]`, or this command's.
    func resolved(_ arguments: [RedisArgument]) -> CommandRouting {
        guard !subcommands.isEmpty, arguments.count > 1, let name = arguments[1].text?.lowercased(),
            let routing = subcommands[name] else { return self }
        return routing
    }

    /// Parses one COMMAND INFO entry: `[name, arity, flags, first, last, step, categories, tips, key specs,
    /// subcommands]`. Returns the lower-cased name (for a subcommand, the part after `|`).
    static func parse(_ entry: RESPValue) -> (name: String, routing: CommandRouting)? {
        guard let parts = entry.elements, parts.count >= 6, var name = parts[0].string?.lowercased() else { return nil }
        if let bar = name.firstIndex(of: "|") { name = String(name[name.index(after: bar)...]) }
        var routing = CommandRouting()
        routing.readOnly = (parts[2].elements ?? []).contains { $0.string == "readonly" }
        if parts.count > 7 {
            for tip in parts[7].elements ?? [] {
                guard let text = tip.string else { continue }
                if text.hasPrefix("request_policy:") {
                    routing.requestPolicy = RequestPolicy(rawValue: String(text.dropFirst(15))) ?? .special
                } else if text.hasPrefix("response_policy:") {
                    routing.responsePolicy = ResponsePolicy(rawValue: String(text.dropFirst(16))) ?? .special
                }
            }
        }
        if parts.count > 8 {
            routing.keySpecs = (parts[8].elements ?? []).compactMap(keySpec)
        } else if case .integer(let first) = parts[3], case .integer(let last) = parts[4], case .integer(let step) = parts[5], first > 0 {
            // A server without key specs (before 7.0): the legacy range.
            let lastKey = last < 0 ? Int(last) : Int(last - first)
            routing.keySpecs = [KeySpec.keys(Int(first), last: lastKey, step: Int(step), [])]
        }
        if parts.count > 9 {
            for sub in parts[9].elements ?? [] {
                if let (subName, subRouting) = parse(sub) { routing.subcommands[subName] = subRouting }
            }
        }
        return (name, routing)
    }

    /// One key spec of COMMAND INFO: `{flags, begin_search: {type, spec}, find_keys: {type, spec}}`.
    private static func keySpec(_ value: RESPValue) -> KeySpec? {
        guard let fields = value.fields, let begin = fields["begin_search"]?.fields, let find = fields["find_keys"]?.fields else {
            return nil
        }
        var flags: KeySpecFlags = []
        for flag in fields["flags"]?.elements ?? [] {
            switch flag.string {
            case "not_key": flags.insert(.notKey)
            case "incomplete": flags.insert(.incomplete)
            default: break
            }
        }
        let beginSpec = begin["spec"]?.fields ?? [:]
        let beginSearch: KeySpec.BeginSearch
        switch begin["type"]?.string {
        case "index":
            guard case .integer(let index)? = beginSpec["index"] else { return nil }
            beginSearch = .index(Int(index))
        case "keyword":
            guard let keyword = beginSpec["keyword"]?.string, case .integer(let start)? = beginSpec["startfrom"] else { return nil }
            beginSearch = .keyword(keyword, startFrom: Int(start))
        default:
            beginSearch = .unknown
        }
        let findSpec = find["spec"]?.fields ?? [:]
        let findKeys: KeySpec.FindKeys
        switch find["type"]?.string {
        case "range":
            guard case .integer(let last)? = findSpec["lastkey"], case .integer(let step)? = findSpec["keystep"],
                case .integer(let limit)? = findSpec["limit"] else { return nil }
            findKeys = .range(lastKey: Int(last), step: Int(step), limit: Int(limit))
        case "keynum":
            guard case .integer(let count)? = findSpec["keynumidx"], case .integer(let first)? = findSpec["firstkey"],
                case .integer(let step)? = findSpec["keystep"] else { return nil }
            findKeys = .keynum(countOffset: Int(count), firstKey: Int(first), step: Int(step))
        default:
            findKeys = .unknown
        }
        return KeySpec(beginSearch, findKeys, flags)
    }
}

extension RedisArgument {
    /// The argument's bytes in a buffer (for key extraction).
    var byteBuffer: ByteBuffer {
        switch self {
        case .buffer(let bytes): return bytes
        case .bytes(let bytes): return ByteBuffer(bytes: bytes)
        default: return ByteBuffer(string: text ?? "")
        }
    }

    /// The argument as text, as it goes on the wire.
    var text: String? {
        switch self {
        case .string(let text): return text
        case .integer(let value): return String(value)
        case .double(let value): return Self.text(of: value)
        case .bytes(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .buffer(let bytes): return String(buffer: bytes)
        }
    }

    /// The hash slot of the argument as a key.
    var hashSlot: Int {
        switch self {
        case .buffer(let bytes): return HashSlot.of(bytes.readableBytesView)
        case .bytes(let bytes): return HashSlot.of(bytes)
        case .string(let text): return HashSlot.of(text)
        default: return HashSlot.of(Array((text ?? "").utf8))
        }
    }
}
