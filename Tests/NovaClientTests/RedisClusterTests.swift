import Foundation
import NIOCore
@testable import NovaClient
import NovaRESP
import NovaTestSupport
import Testing

/// Hash slots and seed URLs, without a cluster.
@Suite struct ClusterRoutingTests {
    @Test func hashSlotsFollowRedis() {
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(HashSlot.of("123456789") == 12739)
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("user1000"))
        #expect(HashSlot.of("foo{bar}{zap}") == HashSlot.of("bar"))
        #expect(HashSlot.of("foo{{bar}}zap") == HashSlot.of("{bar"))
        // An empty tag hashes the whole key.
        #expect(HashSlot.of("foo{}{bar}") == Int(HashSlot.crc16(Array("foo{}{bar}".utf8)) & 16383))
        #expect(HashSlot.of([UInt8]()) == 0)
    }

    @Test func seedsParseFromOneURL() throws {
        let configuration = try RedisClusterClient.Configuration("redis://u:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002?timeout=2")
        #expect(configuration.seeds.map(\.description) == [
            "redis://u:***@10.0.0.1:7000/0", "redis://u:***@10.0.0.2:6379/0", "redis://u:***@[::1]:7002/0",
        ])
        #expect(configuration.seeds.allSatisfy { $0.password == "p@ss" && $0.commandTimeout == .seconds(2) })
        #expect(throws: RedisURLError.self) { try RedisClusterClient.Configuration("redis://h1:7000,h2:7001/3") }
        #expect(throws: RedisURLError.self) { try RedisClusterClient.Configuration("redis://") }
    }
}

extension ClusterRoutingTests {
    func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    /// CLUSTER SHARDS in RESP3 (maps) and CLUSTER SLOTS (the fallback for servers before 7.0) give the
    /// same slot map; an empty endpoint means the address the reply came from.
    @Test func topologyFromShardsAndSlots() throws {
        func node(_ id: String, _ port: Int64, _ role: String, endpoint: String = "127.0.0.1", health: String = "online") -> RESPValue {
            .map([
                (bulk("id"), bulk(id)), (bulk("port"), .integer(port)), (bulk("ip"), bulk("127.0.0.1")),
                (bulk("endpoint"), bulk(endpoint)), (bulk("role"), bulk(role)), (bulk("health"), bulk(health)),
            ])
        }
        let shards = RESPValue.array([
            .map([(bulk("slots"), .array([.integer(0), .integer(8000)])), (bulk("nodes"), .array([node("a", 7000, "master"), node("b", 7003, "replica", health: "loading")]))]),
            .map([(bulk("slots"), .array([.integer(8001), .integer(16383)])), (bulk("nodes"), .array([node("c", 7001, "master", endpoint: "")]))]),
            // A failed primary that lost its slots: no shard.
            .map([(bulk("slots"), .array([])), (bulk("nodes"), .array([node("d", 7002, "master", health: "failed")]))]),
        ])
        let fromShards = try RedisClusterTopology.fromShards(shards, queriedHost: "10.0.0.9")
        #expect(fromShards.shards.count == 2 && fromShards.coveredSlots == 16384)
        #expect(fromShards.shard(forSlot: 8000)?.primary.address.port == 7000)
        #expect(fromShards.shard(forSlot: 8000)?.replicas.map(\.health) == ["loading"])
        #expect(fromShards.shard(forSlot: 8001)?.primary.address == .init(host: "10.0.0.9", port: 7001))

        let slots = RESPValue.array([
            .array([.integer(8001), .integer(16383), .array([bulk(""), .integer(7001), bulk("c")])]),
            .array([.integer(0), .integer(4000), .array([bulk("127.0.0.1"), .integer(7000), bulk("a")]), .array([bulk("127.0.0.1"), .integer(7003), bulk("b")])]),
            .array([.integer(4001), .integer(8000), .array([bulk("127.0.0.1"), .integer(7000), bulk("a")]), .array([bulk("127.0.0.1"), .integer(7003), bulk("b")])]),
        ])
        let fromSlots = try RedisClusterTopology.fromSlots(slots, queriedHost: "10.0.0.9")
        #expect(fromSlots.shards.count == 2 && fromSlots.coveredSlots == 16384)
        #expect(fromSlots.shards[0].slots == [0...4000, 4001...8000] && fromSlots.shards[0].replicas.map(\.id) == ["b"])
        #expect(fromSlots.shard(forSlot: 9000)?.primary.address == .init(host: "10.0.0.9", port: 7001))
        // MOVED to an address that is no primary yet: a shard of its own for that slot.
        var moved = fromSlots
        moved.move(slot: 5, to: .init(host: "127.0.0.1", port: 7009))
        #expect(moved.shard(forSlot: 5)?.primary.address.port == 7009 && moved.shard(forSlot: 6)?.primary.address.port == 7000)
        #expect(RedisClusterNode.Address("[::1]:7000") == .init(host: "::1", port: 7000))
    }

    /// What each reply or failure makes the client do.
    @Test func repliesAndFailuresDecideTheRetry() {
        typealias Client = RedisClusterClient
        let address = RedisClusterNode.Address(host: "127.0.0.1", port: 7002)
        #expect(Client.next(after: .success(.error("MOVED 3999 127.0.0.1:7002")), repeatable: false) == .moved(slot: 3999, to: address))
        #expect(Client.next(after: .success(.error("ASK 3999 127.0.0.1:7002")), repeatable: false) == .ask(address))
        #expect(Client.next(after: .success(.error("TRYAGAIN Multiple keys request during rehashing of slot")), repeatable: false) == .wait(refresh: false))
        #expect(Client.next(after: .success(.error("LOADING Redis is loading the dataset in memory")), repeatable: false) == .wait(refresh: false))
        #expect(Client.next(after: .success(.error("CLUSTERDOWN The cluster is down")), repeatable: false) == .wait(refresh: true))
        #expect(Client.next(after: .success(.error("WRONGTYPE Operation against a key holding the wrong kind of value")), repeatable: true) == .done)
        #expect(Client.next(after: .success(.integer(1)), repeatable: true) == .done)
        // Never sent: always retried. Sent and then lost: only a read is repeated.
        #expect(Client.next(after: .failure(RedisClientError.connectFailed(url: "x", reason: "refused")), repeatable: false) == .wait(refresh: true))
        #expect(Client.next(after: .failure(RedisClientError.connectionClosed), repeatable: false) == .done)
        #expect(Client.next(after: .failure(RedisClientError.connectionClosed), repeatable: true) == .wait(refresh: true))
        #expect(Client.next(after: .failure(RedisClientError.shutDown), repeatable: true) == .done)
    }

    /// Replies of several nodes combined as the command tips say.
    @Test func repliesOfSeveralNodesCombineByPolicy() {
        typealias Plan = RedisClusterClient.Plan
        #expect(Plan.aggregate([.integer(2), .integer(3)], .sum) == .integer(5))
        #expect(Plan.aggregate([.integer(2), .integer(3)], .minimum) == .integer(2))
        #expect(Plan.aggregate([.array([.integer(1), .integer(0)]), .array([.integer(1), .integer(1)])], .logicalAnd) == .array([.integer(1), .integer(0)]))
        #expect(Plan.aggregate([.array([bulk("a")]), .array([bulk("b")])], nil) == .array([bulk("a"), bulk("b")]))
        #expect(Plan.aggregate([.simpleString("OK"), .error("ERR no")], .allSucceeded) == .error("ERR no"))
        #expect(Plan.aggregate([.error("NOTBUSY"), .simpleString("OK")], .oneSucceeded) == .simpleString("OK"))
        let keyed = Plan(parts: [], combination: .keyed(groups: [[0, 2], [1]], count: 3))
        #expect(keyed.combine([.array([bulk("a"), bulk("c")]), .array([.null])]) == .array([bulk("a"), .null, bulk("c")]))
    }
}

/// `RedisClusterClient` against a real cluster of Debian's redis-server 7.0 (3 primaries, 3 replicas).
@Suite(.serialized, .enabled(if: TestCluster.testsEnabled, "NOVA_CLUSTER_TESTS=1 runs it (scripts/test does, on its own)"))
struct RedisClusterTests {
    @Test func routesKeysSplitsMultiKeyCommandsAndPipelines() async throws {
        let cluster = try TestCluster()
        let client = try RedisClusterClient(url: cluster.url)
        defer { client.shutdown() }
        let topology = try await client.topology()
        #expect(topology.primaries.count == 3 && topology.shards.allSatisfy { $0.replicas.count == 1 })
        #expect(topology.coveredSlots == 16384)

        // Our slots are the cluster's, for plain, tagged and binary keys.
        let keys: [RedisArgument] = (0..<200).map { index in
            switch index % 4 {
            case 0: .string("key:\(index)")
            case 1: .string("{tag\(index % 9)}:\(index)")
            case 2: .bytes([0, 255, UInt8(index), 123, 125, 10])
            default: .string("x{}{\(index)}")
            }
        }
        let slots = try await client.pipeline(keys.map { RedisCommand("CLUSTER", "KEYSLOT", $0) })
        for (key, slot) in zip(keys, slots) {
            let expected: Int = switch key {
            case .string(let text): HashSlot.of(text)
            case .bytes(let bytes): HashSlot.of(bytes)
            default: -1
            }
            #expect(slot == .integer(Int64(expected)))
        }

        // A pipeline across every node; each key lands on the node serving its slot.
        let writes = try await client.pipeline((0..<300).map { RedisCommand("SET", .string("k\($0)"), .string("v\($0)")) })
        #expect(writes.allSatisfy { $0 == .simpleString("OK") })
        for index in stride(from: 0, to: 300, by: 37) {
            let owner = try cluster.primaryPort(forSlot: HashSlot.of("k\(index)"))
            #expect(try cluster.cli(owner, "get", "k\(index)") == "v\(index)")
        }
        let reads = try await client.pipeline((0..<300).reversed().map { RedisCommand("GET", .string("k\($0)")) })
        #expect(reads.map(\.string) == (0..<300).reversed().map { "v\($0)" })

        // Multi-key commands split per slot, combined as the command tips say.
        let names: [RedisArgument] = (0..<50).map { .string("k\($0)") } + ["missing"]
        let values = try await client.mget(names)
        #expect(values.map { $0.map { String(buffer: $0) } } == (0..<50).map { "v\($0)" } + [nil])
        #expect(try await client.send(RedisCommand("MSET", arguments: (0..<20).flatMap { [.string("m\($0)"), .integer(Int64($0))] })) == .simpleString("OK"))
        #expect(try await client.exists(.string("m3"), .string("m17"), "nope", .string("k5")) == 3)
        #expect(try await client.send("DBSIZE") == .integer(320))
        #expect(try await client.send("KEYS", "m*").elements?.count == 20)
        #expect(try await client.delete(.string("m1"), .string("m2"), .string("m3"), "nope") == 3)
        #expect(try await client.unlink((4..<20).map { .string("m\($0)") }) == 16)
        #expect(try await client.send("TOUCH", "k1", "k2", "k3") == .integer(3))
        #expect(try await client.scanKeys(matching: "k*").count == 300)

        // What Redis keeps atomic must share a slot.
        await #expect(throws: RedisError("CROSSSLOT Keys in request don't hash to the same slot")) {
            try await client.send("MSETNX", "a", "1", "b", "2")
        }
        await #expect(throws: RedisError("CROSSSLOT Keys in request don't hash to the same slot")) {
            try await client.send("SUNIONSTORE", "dest", "a", "b")
        }
        #expect(try await client.send("MSETNX", "{u}a", "1", "{u}b", "2") == .integer(1))
        #expect(try await client.send("EVAL", "return redis.call('GET', KEYS[1]) .. ARGV[1]", 1, "{u}a", "!") == .bulkString(ByteBuffer(string: "1!")))
        #expect(try await client.send("EVAL", "return 7", 0) == .integer(7))

        // Transactions run on their slot's primary.
        let replies = try await client.transaction([RedisCommand("INCR", "{u}n"), RedisCommand("INCR", "{u}n")], watching: ["{u}a"])
        #expect(replies == [.integer(1), .integer(2)])
        await #expect(throws: RedisError("CROSSSLOT Keys in request don't hash to the same slot")) {
            try await client.transaction([RedisCommand("SET", "a", "1"), RedisCommand("SET", "b", "1")])
        }
        // A WATCHed key changed meanwhile aborts EXEC.
        let aborted = try await client.withConnection(forKey: "{u}n") { connection -> [RESPValue]? in
            try await connection.send(RedisCommand("WATCH", "{u}n"))
            try await client.send("INCR", "{u}n")
            return try await connection.transaction([RedisCommand("INCR", "{u}n")])
        }
        #expect(aborted == nil)

        // Pub/sub: a PUBLISH on any node reaches a subscriber on any node.
        let subscription = try await client.subscribe(channels: ["news"])
        #expect(try await client.publish("hello", to: "news") >= 0)
        var iterator = subscription.makeAsyncIterator()
        #expect(try await iterator.next()?.text == "hello")
        subscription.close()
        // Sharded channels: each subscribed on its slot's primary, SPUBLISH routed by the channel.
        let shardChannels = ["orders:{1}", "orders:{2}", "orders:{3}", "orders:{4}", "audit"]
        #expect(Set(try shardChannels.map { try cluster.primaryPort(forSlot: HashSlot.of($0)) }).count > 1)
        let sharded = try await client.subscribe(shardChannels: shardChannels)
        for channel in shardChannels { #expect(try await client.publish(.string("m-\(channel)"), toShardChannel: channel) == 1) }
        var shardIterator = sharded.makeAsyncIterator()
        var received: Set<String> = []
        for _ in shardChannels { if let message = try await shardIterator.next() { received.insert("\(message.channel)=\(message.text)") } }
        #expect(received == Set(shardChannels.map { "\($0)=m-\($0)" }))
        sharded.close()

        #expect(try await client.ping() == "PONG")
        #expect(client.statistics.moved == 0 && client.statistics.asked == 0)
        withExtendedLifetime(cluster) {}
    }

    @Test func readsFromReplicas() async throws {
        let cluster = try TestCluster()
        var configuration = try RedisClusterClient.Configuration(cluster.url)
        configuration.readFrom = .replica
        let client = RedisClusterClient(configuration: configuration)
        defer { client.shutdown() }
        try await client.set("r", "1")
        let shard = try #require(try await client.topology().shard(forSlot: HashSlot.of("r")))
        let replica = try #require(shard.replicas.first)
        // The replica has finished its first sync and has the key.
        #expect(try await eventually(timeout: .seconds(20)) { try cluster.cli(shard.primary.address.port, "wait", "1", "500") == "1" })
        #expect(try await eventually(timeout: .seconds(10)) {
            try await client.refreshTopology().shard(forSlot: HashSlot.of("r"))?.replicas.first?.health == "online"
        })
        let before = try cluster.cli(replica.address.port, "info", "stats")
        let processed = { (text: String) in text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("total_commands_processed:") }.map(String.init) }
        for _ in 0..<20 { #expect(try await client.get("r").map { String(buffer: $0) } == "1") }
        // The reads went to the replica: its command count grew by the GETs (and READONLY, INFO).
        let after = try cluster.cli(replica.address.port, "info", "stats")
        let count = { (line: String?) in Int(line?.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0 }
        #expect(count(processed(after)) - count(processed(before)) >= 20)
        // Writes still go to the primary.
        try await client.set("r", "2")
        withExtendedLifetime(cluster) {}
    }

    @Test func followsASKDuringMigrationThenMOVED() async throws {
        let cluster = try TestCluster()
        var configuration = try RedisClusterClient.Configuration(cluster.url)
        configuration.retryTimeout = .seconds(1)
        let client = RedisClusterClient(configuration: configuration)
        defer { client.shutdown() }
        let slot = HashSlot.of("mig")
        let keys = (0..<6).map { "{mig}\($0)" }
        for key in keys { try await client.set(.string(key), .string("value of \(key)")) }
        let source = try cluster.primaryPort(forSlot: slot)
        let nodes = try cluster.nodes(seenFrom: source)
        let sourceID = try #require(nodes.first { $0.port == source }?.id)
        let target = try #require(nodes.first { $0.flags.contains("master") && $0.port != source })
        _ = try cluster.cli(target.port, "cluster", "setslot", "\(slot)", "importing", sourceID)
        _ = try cluster.cli(source, "cluster", "setslot", "\(slot)", "migrating", target.id)
        _ = try cluster.cli(source, "migrate", "127.0.0.1", "\(target.port)", "", "0", "5000", "keys", keys[0], keys[1])

        // Moved keys are asked for on the importing node; the others are still on the source.
        let moved = Array(keys[..<2]), staying = Array(keys[2...])
        #expect(try await client.mget(moved.map { .string($0) }).map { $0.map { String(buffer: $0) } } == moved.map { "value of \($0)" })
        #expect(try await client.mget(staying.map { .string($0) }).map { $0.map { String(buffer: $0) } } == staying.map { "value of \($0)" })
        // Keys of one slot split between the nodes: Redis answers TRYAGAIN until the migration ends; the
        // client waits for its retry timeout, then reports it.
        await #expect(throws: RedisError("TRYAGAIN Multiple keys request during rehashing of slot")) {
            try await client.mget(keys.map { .string($0) })
        }
        #expect(try await client.get(.string(keys[0])).map { String(buffer: $0) } == "value of {mig}0")
        // A new key in a migrating slot is created on the importing node.
        try await client.set("{mig}new", "fresh")
        #expect(try cluster.cli(target.port, "cluster", "countkeysinslot", "\(slot)") == "3")
        let asked = client.statistics.asked
        #expect(asked >= 2)
        #expect(client.statistics.moved == 0)

        // Finish the migration: the client learns the new owner from MOVED.
        _ = try cluster.cli(source, "migrate", "127.0.0.1", "\(target.port)", "", "0", "5000", "keys", keys[2], keys[3], keys[4], keys[5])
        for node in nodes where node.flags.contains("master") {
            _ = try cluster.cli(node.port, "cluster", "setslot", "\(slot)", "node", target.id)
        }
        for key in keys { #expect(try await client.get(.string(key)).map { String(buffer: $0) } == "value of \(key)") }
        #expect(client.statistics.moved >= 1)
        #expect(try await eventually { try await client.topology().shard(forSlot: slot)?.primary.address.port == target.port })
        withExtendedLifetime(cluster) {}
    }

    /// Kills a primary during a workload: commands for its slots fail over to the promoted replica. The
    /// failed requests and the window they span are printed (the issue asks for them).
    @Test func survivesAPrimaryFailover() async throws {
        let cluster = try TestCluster()
        var configuration = try RedisClusterClient.Configuration(cluster.url)
        configuration.retryTimeout = .seconds(20)
        let client = RedisClusterClient(configuration: configuration)
        defer { client.shutdown() }
        for index in 0..<100 { try await client.set(.string("f\(index)"), .string("\(index)")) }
        _ = try cluster.cli(try cluster.primaryPort(forSlot: HashSlot.of("f0")), "wait", "1", "2000")
        let victim = try cluster.primaryPort(forSlot: HashSlot.of("f0"))

        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var succeeded = 0
            var failed = 0
            var firstFailure: ContinuousClock.Instant?
            var lastFailure: ContinuousClock.Instant?
            var slowest: Duration = .zero
            func record(_ ok: Bool, took: Duration) {
                lock.withLock {
                    slowest = max(slowest, took)
                    if ok { succeeded += 1; return }
                    failed += 1
                    firstFailure = firstFailure ?? .now
                    lastFailure = .now
                }
            }
        }
        let tally = Tally()
        let stop = ContinuousClock.now + .seconds(8)
        let killAt = ContinuousClock.now + .seconds(1)
        async let killer: Void = {
            try? await Task.sleep(until: killAt)
            cluster.server(port: victim)?.kill()
        }()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var index = worker
                    while ContinuousClock.now < stop {
                        let key = RedisArgument.string("f\(index % 100)")
                        let started = ContinuousClock.now
                        do {
                            if index % 2 == 0 {
                                try await client.set(key, .string("\(index % 100)"))
                            } else {
                                _ = try await client.get(key)
                            }
                            tally.record(true, took: .now - started)
                        } catch {
                            tally.record(false, took: .now - started)
                        }
                        index += 4
                    }
                }
            }
            try await group.waitForAll()
        }
        await killer
        try cluster.waitUntilHealthy(replicas: 2)
        // Every key answers again, from the promoted replica.
        for index in 0..<100 { #expect(try await client.get(.string("f\(index)")).map { String(buffer: $0) } == "\(index)") }
        let newOwner = try cluster.primaryPort(forSlot: HashSlot.of("f0"))
        #expect(newOwner != victim)
        #expect(try await client.topology().shard(forSlot: HashSlot.of("f0"))?.primary.address.port == newOwner)
        let window = tally.firstFailure.map { (tally.lastFailure ?? $0) - $0 } ?? .zero
        print("cluster failover: \(tally.succeeded) requests succeeded, \(tally.failed) failed within \(window); slowest request \(tally.slowest); \(client.statistics)")
        // Writes in flight when the primary died may fail (they may have been applied); everything else waits.
        #expect(tally.failed <= 8)
        #expect(tally.succeeded > 100)
        withExtendedLifetime(cluster) {}
    }
}
