public import Logging
public import NIOCore
public import NIOPosix
public import NovaRESP
import Synchronization

/// A client for a Redis or Valkey Cluster: the same commands and typed helpers as `RedisClient`, routed to
/// the node that serves each key's hash slot.
///
/// ```swift
/// let cluster = try RedisClusterClient(url: "redis://:secret@10.0.0.1:7000,10.0.0.2:7000")
/// try await cluster.set("user:{42}:name", "Ada")
/// let values = try await cluster.mget(["a", "b", "c"])   // split per slot, answered in key order
/// ```
///
/// What it does for the application:
/// - learns the slot map from any seed (CLUSTER SHARDS, CLUSTER SLOTS on older servers), keeps a
///   connection pool per node, and refreshes the map periodically, on MOVED and when a node is lost;
/// - follows MOVED (and remembers it) and ASK (ASKING, then the command, once per redirection);
/// - waits and retries on TRYAGAIN, CLUSTERDOWN and LOADING, and on a node it cannot reach (a primary that
///   failed, until its replica is promoted), within `Configuration.retryTimeout`. A command whose
///   connection closed after it was sent is retried only when it only reads: a write may have been done;
/// - splits pipelines per node (replies come back in the commands' order; only redirected commands are
///   sent again) and runs commands on every primary or every node, or split per slot, as the server's
///   command tips say (DBSIZE, KEYS, FLUSHALL, SCRIPT LOAD; MGET, MSET, DEL, UNLINK, EXISTS, TOUCH),
///   combining the replies by the tips' response policy. MSETNX is all-or-nothing, so it is never split:
///   its keys must share a slot. Other commands whose keys are in different slots fail with Redis's
///   `CROSSSLOT` error without reaching a server;
/// - runs transactions (`transaction`) on the node of their one slot;
/// - reads from replicas (READONLY) when `Configuration.readFrom` is `.replica`.
///
/// Where keys are found is read from the server's COMMAND INFO (key specs and tips), once per command name.
public final class RedisClusterClient: RedisCommandClient {
    /// Seeds, pools, retries and refreshes.
    public struct Configuration: Sendable {
        /// Where to learn the cluster's topology; credentials, TLS and timeouts of the first are used for
        /// every node.
        public var seeds: [RedisURL]
        /// The pool kept for each node.
        public var pool = RedisConnectionPool.Configuration()
        /// Where read-only commands go.
        public var readFrom = ReadPreference.primary
        /// MOVED/ASK redirections followed for one command before its last reply is returned as it is.
        public var maximumRedirects = 16
        /// The waits between retries (TRYAGAIN, CLUSTERDOWN, an unreachable node).
        public var retryBackoff = Backoff(base: .milliseconds(25), maximum: .milliseconds(500))
        /// How long one command keeps being retried (covers a primary's failover).
        public var retryTimeout: Duration = .seconds(15)
        /// How often the topology is read again while nothing forces it; nil: only when needed.
        public var refreshInterval: Duration? = .seconds(30)

        /// A configuration with these seed nodes.
        public init(seeds: [RedisURL]) {
            self.seeds = seeds
        }

        /// Parses seeds given as one URL with several hosts, `redis://[user:password@]h1:p1,h2:p2[?options]`
        /// (or `rediss://`); a URL with one host is one seed. A cluster has only database 0.
        public init(_ text: String) throws(RedisURLError) {
            guard let schemeEnd = text.range(of: "://") else { throw RedisURLError("missing scheme (redis://, rediss://)") }
            let head = text[..<schemeEnd.upperBound]
            let afterScheme = text[schemeEnd.upperBound...]
            let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? afterScheme.endIndex
            var authority = afterScheme[..<authorityEnd]
            let rest = afterScheme[authorityEnd...]
            var userInfo: Substring = ""
            if let at = authority.lastIndex(of: "@") {
                userInfo = authority[...at]
                authority = authority[authority.index(after: at)...]
            }
            var seeds: [RedisURL] = []
            for host in authority.split(separator: ",", omittingEmptySubsequences: true) {
                let seed = try RedisURL(String(head + userInfo + host + rest))
                guard case .tcp = seed.endpoint else { throw RedisURLError("cluster nodes are reached over TCP") }
                guard seed.database == 0 else { throw RedisURLError("a cluster has only database 0") }
                seeds.append(seed)
            }
            guard !seeds.isEmpty else { throw RedisURLError("no cluster node given") }
            self.init(seeds: seeds)
        }
    }

    /// Where read-only commands (GET, MGET, HGETALL …) are sent.
    public enum ReadPreference: Sendable, Hashable {
        /// The slot's primary: reads see every acknowledged write.
        case primary
        /// A replica of the slot's shard (in turn), the primary when it has none online. Replicas lag:
        /// a read may miss a write made just before.
        case replica
    }

    /// What the client had to do beyond sending commands.
    public struct Statistics: Sendable, Hashable {
        /// MOVED replies followed.
        public var moved = 0
        /// ASK replies followed.
        public var asked = 0
        /// Commands sent again (after a redirection, a TRYAGAIN/CLUSTERDOWN/LOADING or a lost node).
        public var retried = 0
        /// Topologies read.
        public var refreshes = 0
    }

    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var topology: RedisClusterTopology?
        var pools: [RedisClusterNode.Address: RedisConnectionPool] = [:]
        var commands: [String: CommandRouting] = [:]
        var refresh: Task<RedisClusterTopology, any Error>?
        var lastRefresh: ContinuousClock.Instant?
        var periodic: Task<Void, Never>?
        var replicaTurn = 0
        var statistics = Statistics()
        var closed = false
    }

    /// A client for the cluster the seeds belong to; nothing is connected until the first command.
    public init(
        configuration: Configuration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "nova.cluster")
    ) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        if let interval = configuration.refreshInterval {
            let task = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let self, !Task.isCancelled else { return }
                    _ = try? await self.refreshTopology()
                }
            }
            state.withLock { $0.periodic = task }
        }
    }

    /// A client for seeds given as one URL (`redis://h1:p1,h2:p2`, see `Configuration.init(_:)`).
    public convenience init(url: String, logger: Logger = Logger(label: "nova.cluster")) throws {
        self.init(configuration: try Configuration(url), logger: logger)
    }

    /// Closes every connection; later commands fail with `RedisClientError.shutDown`.
    public func shutdown() {
        let (pools, periodic) = state.withLock { state in
            state.closed = true
            defer { state.pools = [:] }
            return (Array(state.pools.values), state.periodic)
        }
        periodic?.cancel()
        for pool in pools { pool.shutdown() }
    }

    /// Forgets the failed connects of every node's pool.
    public func resetBackoff() {
        for pool in state.withLock({ Array($0.pools.values) }) { pool.resetBackoff() }
    }

    /// What the client did beyond sending commands so far.
    public var statistics: Statistics { state.withLock { $0.statistics } }

    // MARK: Commands

    /// Sends one command to the node its keys belong to (see the type's description); an error reply is
    /// thrown as `RedisError`.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RESPValue {
        let reply = try await pipeline([command])[0]
        if case .error(let text) = reply { throw RedisError(text) }
        return reply
    }

    /// Sends the commands, each to its node: one write per node, all nodes at once. Replies (error replies
    /// as `.error`) come back in the commands' order.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let topology = try await self.topology()
        var plans: [Plan] = []
        plans.reserveCapacity(commands.count)
        for command in commands { plans.append(try await plan(command, topology: topology)) }
        let replies = try await execute(plans.flatMap(\.parts), topology: topology)
        var results: [RESPValue] = []
        results.reserveCapacity(commands.count)
        var offset = 0
        for plan in plans {
            results.append(plan.combine(Array(replies[offset..<offset + plan.parts.count])))
            offset += plan.parts.count
        }
        return results
    }

    /// Sends a command to one node (an operator's per-node view: INFO, DBSIZE, CLUSTER INFO).
    @discardableResult
    public func send(_ command: RedisCommand, to node: RedisClusterNode.Address) async throws -> RESPValue {
        try await pool(for: node).send(command)
    }

    /// Runs MULTI, the commands and EXEC on the primary of their keys' slot, after WATCHing `keys`. Every
    /// key (the watched ones too) must be in one slot — use hash tags (`order:{42}:items`) — else the
    /// transaction fails with `CROSSSLOT` before anything is sent. MOVED is followed; during a slot's
    /// migration (ASK) the transaction waits and retries until the slot has moved.
    /// - Returns: the replies of the commands, or nil when EXEC was aborted by a WATCHed key.
    public func transaction(_ commands: [RedisCommand], watching keys: [RedisArgument]) async throws -> [RESPValue]? {
        var slots = Set(keys.map(\.hashSlot))
        for command in commands {
            slots.formUnion(try await keySlots(command, indexes: try await routing(for: command).keyIndexes(command.arguments)))
        }
        guard slots.count <= 1 else { throw RedisError(Self.crossSlot) }
        let target: Target = slots.first.map { .slot($0, replica: false) } ?? .anyPrimary
        return try await retrying(target) { connection in try await connection.transaction(commands, watching: keys) }
    }

    /// Runs `body` on a connection of its own to the primary serving `key` (any primary for nil): for
    /// WATCH-based updates and blocking commands. Lost nodes are waited for; a body that throws a
    /// redirection (MOVED after a resharding, TRYAGAIN) runs again on the right node.
    public func withConnection<R: Sendable>(
        forKey key: RedisArgument?, _ body: (RedisConnection) async throws -> R
    ) async throws -> R {
        try await retrying(key.map { .slot($0.hashSlot, replica: false) } ?? .anyPrimary, body)
    }

    /// Every key matching `pattern`, by SCAN on every primary.
    public func scanKeys(matching pattern: String, count: Int) async throws -> [ByteBuffer] {
        var keys: [ByteBuffer] = []
        for primary in try await topology().primaries {
            keys += try await pool(for: primary.address).scanKeys(matching: pattern, count: count)
        }
        return keys
    }

    /// Subscribes to channels, patterns and sharded channels. A cluster delivers every PUBLISH to every
    /// node, so channels and patterns need one connection, to any primary; a sharded channel's messages
    /// stay in its shard, so sharded channels are subscribed on the primary of their slot (one connection
    /// per primary, one SSUBSCRIBE per slot). When a primary fails, the sequence ends with an error:
    /// subscribe again to follow the promoted replica.
    public func subscribe(channels: [String], patterns: [String], shardChannels: [String]) async throws -> RedisSubscription {
        let topology = try await self.topology()
        var requests: [RedisClusterNode.Address: RedisSubscription.Request] = [:]
        var slotGroups: [RedisClusterNode.Address: [Int: [String]]] = [:]
        for channel in shardChannels {
            let slot = HashSlot.of(channel)
            guard let address = address(for: .slot(slot, replica: false), in: topology) else { throw RedisError(Self.noSlots) }
            slotGroups[address, default: [:]][slot, default: []].append(channel)
        }
        for (address, groups) in slotGroups {
            requests[address] = .init(url: nodeURL(address), shardChannelGroups: groups.keys.sorted().map { groups[$0]! })
        }
        if !channels.isEmpty || !patterns.isEmpty || requests.isEmpty {
            guard let address = requests.keys.first ?? topology.primaries.randomElement()?.address else { throw RedisError(Self.noSlots) }
            requests[address, default: .init(url: nodeURL(address))].channels = channels
            requests[address, default: .init(url: nodeURL(address))].patterns = patterns
        }
        return try await RedisSubscription.open(Array(requests.values), group: group, logger: logger)
    }

    // MARK: Topology

    /// The slot map, read from the seeds on first use.
    public func topology() async throws -> RedisClusterTopology {
        if let topology = state.withLock({ $0.topology }) { return topology }
        return try await refreshTopology()
    }

    /// Reads the slot map again from a known node or a seed (one read at a time; callers meanwhile share
    /// it).
    @discardableResult
    public func refreshTopology() async throws -> RedisClusterTopology {
        let task = state.withLock { state -> Task<RedisClusterTopology, any Error>? in
            if state.closed { return nil }
            if let running = state.refresh { return running }
            let task = Task {
                defer { self.state.withLock { $0.refresh = nil } }
                return try await self.loadTopology()
            }
            state.refresh = task
            return task
        }
        guard let task else { throw RedisClientError.shutDown }
        return try await task.value
    }

    private func loadTopology() async throws -> RedisClusterTopology {
        let known = state.withLock { $0.topology?.nodes.map(\.address) ?? [] }
        var candidates: [RedisClusterNode.Address] = []
        for address in known + configuration.seeds.compactMap(\.clusterAddress) where !candidates.contains(address) {
            candidates.append(address)
        }
        var lastError: any Error = RedisClientError.connectFailed(url: "cluster", reason: "no seed nodes")
        for address in candidates {
            let pool = pool(for: address)
            let topology: RedisClusterTopology
            do {
                do {
                    topology = try .fromShards(try await pool.send(RedisCommand("CLUSTER", "SHARDS")), queriedHost: address.host)
                } catch let error as RedisError where error.message.lowercased().contains("unknown subcommand") {
                    topology = try .fromSlots(try await pool.send(RedisCommand("CLUSTER", "SLOTS")), queriedHost: address.host)
                }
            } catch {
                lastError = error
                continue
            }
            // A node that has not joined yet (or lost its view) knows no slots: ask another.
            guard topology.coveredSlots > 0 else {
                lastError = RedisError(Self.noSlots)
                continue
            }
            install(topology)
            return topology
        }
        logger.debug("cluster topology unavailable", metadata: ["error": "\(lastError)"])
        throw lastError
    }

    /// Makes `topology` current and closes the pools of nodes no longer in it (seeds stay).
    private func install(_ topology: RedisClusterTopology) {
        let keep = Set(topology.nodes.map(\.address) + configuration.seeds.compactMap(\.clusterAddress))
        let dropped = state.withLock { state -> [RedisConnectionPool] in
            state.topology = topology
            state.lastRefresh = .now
            state.statistics.refreshes += 1
            let gone = state.pools.keys.filter { !keep.contains($0) }
            return gone.compactMap { state.pools.removeValue(forKey: $0) }
        }
        for pool in dropped { pool.shutdown() }
    }

    /// Refreshes in the background unless a refresh ran in the last 100 ms (a burst of MOVED replies during
    /// a resharding asks once).
    private func scheduleRefresh() {
        let due = state.withLock { state in
            state.refresh == nil && !state.closed && (state.lastRefresh.map { ContinuousClock.now - $0 > .milliseconds(100) } ?? true)
        }
        if due { Task { _ = try? await self.refreshTopology() } }
    }

    private func pool(for address: RedisClusterNode.Address) -> RedisConnectionPool {
        let (pool, created) = state.withLock { state -> (RedisConnectionPool, Bool) in
            if let pool = state.pools[address] { return (pool, false) }
            let pool = RedisConnectionPool(url: nodeURL(address), configuration: configuration.pool, group: group, logger: logger)
            if !state.closed { state.pools[address] = pool }
            return (pool, true)
        }
        if created { pool.start() }
        return pool
    }

    /// The URL the client uses for a node: the first seed's settings (credentials, TLS, timeouts) with
    /// the node's address.
    public func url(of node: RedisClusterNode.Address) -> RedisURL {
        nodeURL(node)
    }

    /// The first seed's settings (credentials, TLS, timeouts) for another node.
    private func nodeURL(_ address: RedisClusterNode.Address) -> RedisURL {
        var url = configuration.seeds.first ?? RedisURL()
        url.endpoint = .tcp(host: address.host, port: address.port)
        url.database = 0
        url.readOnly = configuration.readFrom == .replica
        return url
    }

    // MARK: Routing

    static let crossSlot = "CROSSSLOT Keys in request don't hash to the same slot"
    static let noSlots = "CLUSTERDOWN Hash slot not served"

    /// Where one part of a command goes.
    enum Target: Sendable, Hashable {
        case slot(Int, replica: Bool)
        case node(RedisClusterNode.Address)
        case anyPrimary
    }

    /// One command as sent to one node.
    struct Part: Sendable {
        var command: RedisCommand
        var target: Target
        /// Whether sending it twice is harmless (a read), so a connection lost after sending is retried.
        var repeatable: Bool
    }

    /// A command's parts and how their replies make its reply.
    struct Plan: Sendable {
        enum Combination: Sendable {
            /// One part, its reply.
            case single
            /// No parts: this reply (a CROSSSLOT refused before sending).
            case fixed(RESPValue)
            /// One part per node, combined by the response policy.
            case aggregate(CommandRouting.ResponsePolicy?)
            /// One part per slot, each answering an array for its keys (`groups[i]` lists the key ordinals
            /// of part `i`); the reply is one array in the keys' order.
            case keyed(groups: [[Int]], count: Int)
        }

        var parts: [Part]
        var combination: Combination

        func combine(_ replies: [RESPValue]) -> RESPValue {
            switch combination {
            case .single: return replies[0]
            case .fixed(let reply): return reply
            case .keyed(let groups, let count):
                var result = [RESPValue](repeating: .null, count: count)
                for (group, reply) in zip(groups, replies) {
                    if case .error = reply { return reply }
                    guard let items = reply.elements, items.count == group.count else { return reply }
                    for (item, ordinal) in zip(items, group) { result[ordinal] = item }
                }
                return .array(result)
            case .aggregate(let policy):
                return Self.aggregate(replies, policy)
            }
        }

        /// Combines the replies of several nodes as a response policy says (Redis's command tips).
        static func aggregate(_ replies: [RESPValue], _ policy: CommandRouting.ResponsePolicy?) -> RESPValue {
            guard let first = replies.first else { return .array([]) }
            let error = replies.first { if case .error = $0 { return true } else { return false } }
            if policy == .oneSucceeded {
                return replies.first { if case .error = $0 { return false } else { return true } } ?? first
            }
            if let error { return error }
            switch policy {
            case nil:
                // Arrays are concatenated (KEYS); other replies are alike on every node.
                guard replies.allSatisfy({ $0.elements != nil }) else { return first }
                let items = replies.flatMap { $0.elements ?? [] }
                if case .set = first { return .set(items) }
                return .array(items)
            case .sum, .minimum, .maximum:
                let numbers = replies.compactMap { if case .integer(let value) = $0 { value } else { nil } }
                guard numbers.count == replies.count else { return first }
                switch policy {
                case .sum: return .integer(numbers.reduce(0, &+))
                case .minimum: return .integer(numbers.min()!)
                default: return .integer(numbers.max()!)
                }
            case .logicalAnd, .logicalOr:
                let isAnd = policy == .logicalAnd
                func truth(_ value: RESPValue) -> Bool? { if case .integer(let number) = value { number != 0 } else { nil } }
                let lists = replies.compactMap(\.elements)
                if lists.count == replies.count, case .array = first {
                    let length = lists[0].count
                    guard lists.allSatisfy({ $0.count == length }) else { return first }
                    return .array((0..<length).map { index in
                        let values = lists.compactMap { truth($0[index]) }
                        return .integer((isAnd ? values.allSatisfy { $0 } : values.contains(true)) ? 1 : 0)
                    })
                }
                let values = replies.compactMap(truth)
                return .integer((isAnd ? values.allSatisfy { $0 } : values.contains(true)) ? 1 : 0)
            case .allSucceeded, .oneSucceeded, .special:
                return first
            }
        }
    }

    /// How the server says `command` is routed (COMMAND INFO, asked once per name).
    func routing(for command: RedisCommand) async throws -> CommandRouting {
        // The name as sent, lower-cased once (not `command.name`, which upper-cases it first).
        guard let name = command.arguments.first?.text?.lowercased() else { return .unknown }
        if let known = state.withLock({ $0.commands[name] }) { return known.resolved(command.arguments) }
        let reply = try await sendToAnyPrimary(RedisCommand("COMMAND", "INFO", .string(name)))
        let routing = reply.elements?.first.flatMap(CommandRouting.parse)?.routing ?? .unknown
        state.withLock { $0.commands[name] = routing }
        return routing.resolved(command.arguments)
    }

    /// The slot of each key of `command`, in argument order: from the key indexes the specs found
    /// (`CommandRouting.keyIndexes`), by COMMAND GETKEYS when they could not say (nil).
    private func keySlots(_ command: RedisCommand, indexes: [Int]?) async throws -> [Int] {
        if let indexes { return indexes.map { command.arguments[$0].hashSlot } }
        let reply = try? await sendToAnyPrimary(RedisCommand("COMMAND", arguments: ["GETKEYS"] + command.arguments))
        return (reply?.elements ?? []).compactMap { $0.bytes.map { HashSlot.of($0) } }
    }

    private func plan(_ command: RedisCommand, topology: RedisClusterTopology) async throws -> Plan {
        let routing = try await routing(for: command)
        let readOnly = routing.readOnly
        switch routing.requestPolicy {
        case .allShards:
            return Plan(parts: topology.primaries.map { Part(command: command, target: .node($0.address), repeatable: readOnly) },
                combination: .aggregate(routing.responsePolicy))
        case .allNodes:
            return Plan(parts: topology.nodes.map { Part(command: command, target: .node($0.address), repeatable: readOnly) },
                combination: .aggregate(routing.responsePolicy))
        case .byKeys, .multiShard, .special:
            break
        }
        let arguments = command.arguments
        let indexes = routing.keyIndexes(arguments)
        let slots = try await keySlots(command, indexes: indexes)
        let replica = readOnly && configuration.readFrom == .replica
        guard let first = slots.first else {
            return Plan(parts: [Part(command: command, target: .anyPrimary, repeatable: readOnly)], combination: .single)
        }
        if slots.allSatisfy({ $0 == first }) {
            return Plan(parts: [Part(command: command, target: .slot(first, replica: replica), repeatable: readOnly)], combination: .single)
        }
        // Keys in several slots: split only what Redis splits (multi_shard); MSETNX must stay atomic.
        guard routing.requestPolicy == .multiShard, command.name != "MSETNX", let indexes, indexes.count == slots.count else {
            return Plan(parts: [], combination: .fixed(.error(Self.crossSlot)))
        }
        var order: [Int] = []
        var groups: [Int: [Int]] = [:]
        for (ordinal, slot) in slots.enumerated() {
            if groups[slot] == nil { order.append(slot) }
            groups[slot, default: []].append(ordinal)
        }
        let prefix = arguments[..<indexes[0]]
        let parts = order.map { slot -> Part in
            var part = command
            part.arguments = Array(prefix)
            for ordinal in groups[slot]! {
                let end = ordinal + 1 < indexes.count ? indexes[ordinal + 1] : arguments.count
                part.arguments += arguments[indexes[ordinal]..<end]
            }
            return Part(command: part, target: .slot(slot, replica: replica), repeatable: readOnly)
        }
        let combination: Plan.Combination = routing.responsePolicy == nil
            ? .keyed(groups: order.map { groups[$0]! }, count: slots.count) : .aggregate(routing.responsePolicy)
        return Plan(parts: parts, combination: combination)
    }

    /// The node a target goes to now, nil when no node serves its slot.
    private func address(for target: Target, in topology: RedisClusterTopology) -> RedisClusterNode.Address? {
        switch target {
        case .node(let address):
            return address
        case .anyPrimary:
            return topology.primaries.randomElement()?.address
        case .slot(let slot, let replica):
            guard let shard = topology.shard(forSlot: slot) else { return nil }
            if replica {
                let online = shard.replicas.filter { $0.health == "online" }
                if !online.isEmpty {
                    let turn = state.withLock { state in
                        state.replicaTurn &+= 1
                        return state.replicaTurn
                    }
                    return online[turn % online.count].address
                }
            }
            return shard.primary.address
        }
    }

    private func sendToAnyPrimary(_ command: RedisCommand) async throws -> RESPValue {
        var lastError: any Error = RedisError(Self.noSlots)
        for primary in try await topology().primaries.shuffled() {
            do {
                return try await pool(for: primary.address).send(command)
            } catch let error as RedisError {
                throw error
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    // MARK: Sending, redirections and retries

    /// Sends the parts, one pipeline per node, all nodes at once; then follows redirections and retries
    /// what needs it, in the parts' order.
    private func execute(_ parts: [Part], topology: RedisClusterTopology) async throws -> [RESPValue] {
        guard !parts.isEmpty else { return [] }
        var outcomes = [Result<RESPValue, any Error>](repeating: .success(.error(Self.noSlots)), count: parts.count)
        var batches: [RedisClusterNode.Address: [Int]] = [:]
        for (index, part) in parts.enumerated() {
            if let address = address(for: part.target, in: topology) { batches[address, default: []].append(index) }
        }
        if batches.count == 1, let (address, indexes) = batches.first {
            let outcome = await Self.send(indexes.map { parts[$0].command }, to: pool(for: address))
            Self.record(outcome, at: indexes, in: &outcomes)
        } else {
            await withTaskGroup(of: ([Int], Result<[RESPValue], any Error>).self) { group in
                for (address, indexes) in batches {
                    let pool = pool(for: address)
                    let commands = indexes.map { parts[$0].command }
                    group.addTask { (indexes, await Self.send(commands, to: pool)) }
                }
                for await (indexes, outcome) in group { Self.record(outcome, at: indexes, in: &outcomes) }
            }
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(parts.count)
        for (part, outcome) in zip(parts, outcomes) {
            var outcome = outcome
            if Self.next(after: outcome, repeatable: part.repeatable) != .done { outcome = await retry(part, after: outcome) }
            replies.append(try outcome.get())
        }
        return replies
    }

    private static func send(_ commands: [RedisCommand], to pool: RedisConnectionPool) async -> Result<[RESPValue], any Error> {
        do { return .success(try await pool.pipeline(commands)) } catch { return .failure(error) }
    }

    private static func record(
        _ outcome: Result<[RESPValue], any Error>, at indexes: [Int], in outcomes: inout [Result<RESPValue, any Error>]
    ) {
        switch outcome {
        case .success(let replies): for (index, reply) in zip(indexes, replies) { outcomes[index] = .success(reply) }
        case .failure(let error): for index in indexes { outcomes[index] = .failure(error) }
        }
    }

    /// What to do after a reply or a failure.
    enum Next: Equatable {
        case done
        case moved(slot: Int, to: RedisClusterNode.Address)
        case ask(RedisClusterNode.Address)
        /// Wait and try again, reading the topology first when `refresh`.
        case wait(refresh: Bool)
    }

    static func next(after outcome: Result<RESPValue, any Error>, repeatable: Bool) -> Next {
        switch outcome {
        case .success(.error(let text)):
            let error = RedisError(text)
            switch error.code {
            case "MOVED", "ASK":
                let words = text.split(separator: " ")
                guard words.count == 3, let slot = Int(words[1]), let address = RedisClusterNode.Address(String(words[2])) else {
                    return .done
                }
                return error.code == "MOVED" ? .moved(slot: slot, to: address) : .ask(address)
            case "TRYAGAIN", "LOADING": return .wait(refresh: false)
            case "CLUSTERDOWN", "MASTERDOWN": return .wait(refresh: true)
            default: return .done
            }
        case .success:
            return .done
        case .failure(let error):
            switch error as? RedisClientError {
            case .connectFailed?, .backingOff?: return .wait(refresh: true)  // never reached the server
            case .connectionClosed?, .timeout?: return repeatable ? .wait(refresh: true) : .done
            default: return .done
            }
        }
    }

    /// Follows redirections and retries one part until it gets a final reply, runs out of redirections,
    /// or `retryTimeout` passes.
    private func retry(_ part: Part, after first: Result<RESPValue, any Error>) async -> Result<RESPValue, any Error> {
        var outcome = first
        var target = part.target
        var redirects = 0
        var waits = 0
        let deadline = ContinuousClock.now + configuration.retryTimeout
        while true {
            var asking: RedisClusterNode.Address?
            switch Self.next(after: outcome, repeatable: part.repeatable) {
            case .done:
                return outcome
            case .moved(let slot, let address):
                noteMoved(slot: slot, to: address)
                target = .node(address)
                redirects += 1
            case .ask(let address):
                state.withLock { $0.statistics.asked += 1 }
                asking = address
                redirects += 1
            case .wait(let refresh):
                if case .failure = outcome { scheduleRefresh() }
                waits += 1
                let pause = configuration.retryBackoff.delay(afterFailures: waits)
                guard ContinuousClock.now + pause < deadline else { return outcome }
                try? await Task.sleep(for: pause)
                if refresh { _ = try? await refreshTopology() }
                target = part.target  // the refreshed map decides again
            }
            if redirects > configuration.maximumRedirects { return outcome }
            state.withLock { $0.statistics.retried += 1 }
            outcome = await attempt(part.command, target: target, asking: asking)
        }
    }

    /// A MOVED reply: the slot's new owner goes into the map at once, and the whole map is read again
    /// soon (a resharding rarely moves one slot).
    private func noteMoved(slot: Int, to address: RedisClusterNode.Address) {
        state.withLock { state in
            state.statistics.moved += 1
            state.topology?.move(slot: slot, to: address)
        }
        scheduleRefresh()
    }

    private func attempt(
        _ command: RedisCommand, target: Target, asking: RedisClusterNode.Address?
    ) async -> Result<RESPValue, any Error> {
        do {
            if let asking {
                return .success(try await pool(for: asking).pipeline([RedisCommand("ASKING"), command])[1])
            }
            guard let address = address(for: target, in: try await topology()) else { return .success(.error(Self.noSlots)) }
            return .success(try await pool(for: address).pipeline([command])[0])
        } catch {
            return .failure(error)
        }
    }

    /// Runs `body` on a leased connection to the node of `target`, following MOVED and retrying
    /// CLUSTERDOWN/TRYAGAIN/ASK and unreachable nodes (before anything was sent) within `retryTimeout`.
    private func retrying<R: Sendable>(_ target: Target, _ body: (RedisConnection) async throws -> R) async throws -> R {
        var movedTo: RedisClusterNode.Address?
        var redirects = 0
        var waits = 0
        let deadline = ContinuousClock.now + configuration.retryTimeout
        while true {
            let next: Next
            do {
                let topology = try await self.topology()
                guard let address = movedTo ?? address(for: target, in: topology) else { throw RedisError(Self.noSlots) }
                return try await pool(for: address).withConnection(body)
            } catch let error as RedisError where error.isClusterRedirection {
                next = Self.next(after: .success(.error(error.message)), repeatable: false)
                if case .moved(let slot, let address) = next {
                    noteMoved(slot: slot, to: address)
                    movedTo = address
                    redirects += 1
                    if redirects > configuration.maximumRedirects { throw error }
                    continue
                }
                // ASK inside a transaction cannot be followed command by command: wait for the migration.
                waits += 1
                let pause = configuration.retryBackoff.delay(afterFailures: waits)
                guard ContinuousClock.now + pause < deadline else { throw error }
                try? await Task.sleep(for: pause)
            } catch let error as RedisClientError {
                guard Self.next(after: .failure(error), repeatable: false) != .done else { throw error }
                waits += 1
                let pause = configuration.retryBackoff.delay(afterFailures: waits)
                guard ContinuousClock.now + pause < deadline else { throw error }
                try? await Task.sleep(for: pause)
            }
            movedTo = nil
            _ = try? await refreshTopology()
            state.withLock { $0.statistics.retried += 1 }
        }
    }
}

extension RedisURL {
    /// The host and port of a TCP URL.
    var clusterAddress: RedisClusterNode.Address? {
        if case .tcp(let host, let port) = endpoint { return .init(host: host, port: port) }
        return nil
    }
}
