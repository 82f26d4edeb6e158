public import NovaRESP

/// A node of a Redis Cluster as the cluster describes it.
public struct RedisClusterNode: Sendable, Hashable, CustomStringConvertible {
    /// The node's 40-character ID (empty when only its address is known, after a MOVED to a new node).
    public var id: String
    public var address: Address
    public var isPrimary: Bool
    /// `online`, `failed` or `loading` (CLUSTER SHARDS); `online` from CLUSTER SLOTS, which lists no
    /// health.
    public var health: String

    /// Where a node is reached.
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// Parses `host:port` (the address in a MOVED or ASK reply; IPv6 hosts keep their colons).
        public init?(_ text: String) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.init(host: host, port: port)
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public init(id: String, address: Address, isPrimary: Bool, health: String) {
        self.id = id
        self.address = address
        self.isPrimary = isPrimary
        self.health = health
    }

    public var description: String { "\(address) \(isPrimary ? "primary" : "replica") \(id.prefix(8))" }
}

/// Which node serves each of the 16384 slots: the shards of a cluster, each a primary with its replicas and
/// slot ranges. Built from CLUSTER SHARDS (Redis 7.0+) or CLUSTER SLOTS.
public struct RedisClusterTopology: Sendable {
    /// A primary, its replicas and the slots it serves.
    public struct Shard: Sendable, Hashable {
        public var slots: [ClosedRange<Int>]
        public var primary: RedisClusterNode
        public var replicas: [RedisClusterNode]
    }

    public private(set) var shards: [Shard]
    /// The index in `shards` of each slot's owner; -1 for a slot nobody serves.
    private var owners: [Int16]

    /// A topology of the given shards (kept in the order of their first slot).
    public init(shards: [Shard]) {
        self.shards = shards.sorted { ($0.slots.map(\.lowerBound).min() ?? 0) < ($1.slots.map(\.lowerBound).min() ?? 0) }
        owners = Array(repeating: -1, count: HashSlot.count)
        for (index, shard) in self.shards.enumerated() {
            for range in shard.slots where range.lowerBound >= 0 && range.upperBound < HashSlot.count {
                for slot in range { owners[slot] = Int16(index) }
            }
        }
    }

    /// The shard serving `slot`, nil when no node does.
    public func shard(forSlot slot: Int) -> Shard? {
        let owner = owners[slot]
        return owner < 0 ? nil : shards[Int(owner)]
    }

    /// Every primary, in shard order.
    public var primaries: [RedisClusterNode] { shards.map(\.primary) }

    /// Every node, primaries first.
    public var nodes: [RedisClusterNode] { primaries + shards.flatMap(\.replicas) }

    /// How many slots have an owner.
    public var coveredSlots: Int { owners.lazy.filter { $0 >= 0 }.count }

    /// Records what a MOVED reply said: `slot` is now served by the primary at `address` (a new shard when
    /// that address is not a known primary).
    public mutating func move(slot: Int, to address: RedisClusterNode.Address) {
        guard slot >= 0, slot < HashSlot.count else { return }
        if let index = shards.firstIndex(where: { $0.primary.address == address }) {
            owners[slot] = Int16(index)
        } else {
            let primary = RedisClusterNode(id: "", address: address, isPrimary: true, health: "online")
            shards.append(Shard(slots: [slot...slot], primary: primary, replicas: []))
            owners[slot] = Int16(shards.count - 1)
        }
    }

    /// Parses a CLUSTER SHARDS reply (RESP2 or RESP3). Nodes announced with an empty endpoint are reached
    /// at `queriedHost`, the address the reply came from, as Redis documents; an unknown one (`?`) at its IP.
    public static func fromShards(_ reply: RESPValue, queriedHost: String) throws -> RedisClusterTopology {
        guard let items = reply.elements else { throw RedisClientError.unexpectedReply(reply) }
        var shards: [Shard] = []
        for item in items {
            guard let shard = item.fields, let slotList = shard["slots"]?.elements, let nodeList = shard["nodes"]?.elements else {
                throw RedisClientError.unexpectedReply(item)
            }
            var slots: [ClosedRange<Int>] = []
            for index in stride(from: 0, to: slotList.count - 1, by: 2) {
                guard case .integer(let start) = slotList[index], case .integer(let end) = slotList[index + 1], start <= end else {
                    throw RedisClientError.unexpectedReply(item)
                }
                slots.append(Int(start)...Int(end))
            }
            var primary: RedisClusterNode?
            var replicas: [RedisClusterNode] = []
            for nodeValue in nodeList {
                guard let node = nodeValue.fields, let id = node["id"]?.string, case .integer(let port)? = node["port"] ?? node["tls-port"] else {
                    throw RedisClientError.unexpectedReply(nodeValue)
                }
                // An empty endpoint is the address the reply came from; `?` (unknown) falls back to the IP.
                var host = node["endpoint"]?.string ?? node["ip"]?.string ?? ""
                if host == "?" { host = node["ip"]?.string ?? "" }
                if host.isEmpty || host == "?" { host = queriedHost }
                let parsed = RedisClusterNode(
                    id: id, address: .init(host: host, port: Int(port)), isPrimary: node["role"]?.string == "master",
                    health: node["health"]?.string ?? "online")
                if parsed.isPrimary { primary = parsed } else { replicas.append(parsed) }
            }
            // A shard without a primary (all failed) or without slots serves nothing.
            guard let primary, !slots.isEmpty else { continue }
            shards.append(Shard(slots: slots, primary: primary, replicas: replicas))
        }
        return RedisClusterTopology(shards: shards)
    }

    /// Parses a CLUSTER SLOTS reply: `[start, end, [host, port, id], replicas…]` per range.
    public static func fromSlots(_ reply: RESPValue, queriedHost: String) throws -> RedisClusterTopology {
        guard let items = reply.elements else { throw RedisClientError.unexpectedReply(reply) }
        var shards: [Shard] = []
        for item in items {
            guard let parts = item.elements, parts.count >= 3, case .integer(let start) = parts[0], case .integer(let end) = parts[1],
                start <= end else {
                throw RedisClientError.unexpectedReply(item)
            }
            var nodes: [RedisClusterNode] = []
            for (position, nodeValue) in parts[2...].enumerated() {
                guard let fields = nodeValue.elements, fields.count >= 2, case .integer(let port) = fields[1] else {
                    throw RedisClientError.unexpectedReply(nodeValue)
                }
                var host = fields[0].string ?? ""
                if host.isEmpty || host == "?" { host = queriedHost }
                let id = fields.count > 2 ? fields[2].string ?? "" : ""
                nodes.append(RedisClusterNode(id: id, address: .init(host: host, port: Int(port)), isPrimary: position == 0, health: "online"))
            }
            let range = Int(start)...Int(end)
            if let index = shards.firstIndex(where: { $0.primary.address == nodes[0].address }) {
                shards[index].slots.append(range)
            } else {
                shards.append(Shard(slots: [range], primary: nodes[0], replicas: Array(nodes.dropFirst())))
            }
        }
        return RedisClusterTopology(shards: shards)
    }
}

extension RESPValue {
    /// A RESP3 map or a RESP2 flat list of name/value pairs, by name.
    var fields: [String: RESPValue]? {
        switch self {
        case .map(let pairs):
            var result: [String: RESPValue] = [:]
            for (name, value) in pairs { if let text = name.string { result[text] = value } }
            return result
        case .array(let items):
            guard items.count % 2 == 0 else { return nil }
            var result: [String: RESPValue] = [:]
            for index in stride(from: 0, to: items.count, by: 2) {
                guard let text = items[index].string else { return nil }
                result[text] = items[index + 1]
            }
            return result
        default:
            return nil
        }
    }
}
