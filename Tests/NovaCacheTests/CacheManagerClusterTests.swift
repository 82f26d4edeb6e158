import Foundation
@testable import NovaCache
import NovaClient
import NovaRESP
import NovaTestSupport
import Testing

/// CacheManager on a real Redis Cluster (3 primaries, 3 replicas of Debian's redis-server): the same API
/// and guarantees as on one server.
@Suite(.serialized, .enabled(if: TestCluster.testsEnabled, "NOVA_CLUSTER_TESTS=1 runs it (scripts/test does, on its own)"))
struct CacheManagerClusterTests {
    func makeClusterManager(
        _ cluster: TestCluster, namespace: String = "crm", _ adjust: (inout CacheManager.Configuration) -> Void = { _ in }
    ) throws -> CacheManager {
        var configuration = try CacheManager.Configuration(url: cluster.url, namespace: namespace)
        configuration.remoteTimeout = .milliseconds(500)
        configuration.recoveryInterval = .milliseconds(50)
        configuration.maxRecoveryInterval = .milliseconds(300)
        configuration.coherence = .tracking
        adjust(&configuration)
        return CacheManager(configuration: configuration)
    }

    @Test func coherenceTagsAndClearsWorkAcrossPrimaries() async throws {
        let cluster = try TestCluster()
        let a = try makeClusterManager(cluster)
        let b = try makeClusterManager(cluster)
        let raw = try RedisClusterClient(url: cluster.url)
        defer { a.shutdown(); b.shutdown(); raw.shutdown() }
        #expect(a.configuration.cluster?.seeds.count == 6)
        #expect(await a.waitUntilReady(timeout: .seconds(30)) == .available)
        #expect(await b.waitUntilReady(timeout: .seconds(30)) == .available)

        let keys = (0..<60).map { "customer:\($0)" }
        for (index, key) in keys.enumerated() { try await a.set(key, "v\(index)", tags: index % 2 == 0 ? ["even"] : ["odd"]) }
        // The keys are spread over every primary; each value's metadata shares its slot.
        let topology = try await raw.topology()
        let owners = Set(keys.compactMap { topology.shard(forSlot: HashSlot.of(a.storedKey($0)))?.primary.address })
        #expect(owners.count == 3)
        for key in keys.prefix(10) {
            let meta = a.layout.metaKey(a.storedKey(key))
            #expect(HashSlot.of(meta) == HashSlot.of(a.storedKey(key)))
            #expect(try await raw.exists(.string(meta)) == 1)
        }
        for (index, key) in keys.enumerated() { #expect(try await b.get(key, as: String.self) == "v\(index)") }
        #expect(keys.allSatisfy { b.memory.lookup(b.storedKey($0)) != nil })

        // Coherence: A's writes reach B's memory tier through tracking on each primary.
        for (index, key) in keys.enumerated() { try await a.set(key, "w\(index)") }
        #expect(await eventually(timeout: .seconds(3)) { keys.allSatisfy { b.memory.lookup(b.storedKey($0)) == nil } })
        for (index, key) in keys.enumerated() { #expect(try await b.get(key, as: String.self) == "w\(index)") }
        // Another program's write too.
        try await raw.set(.string(a.storedKey("customer:7")), "\"from elsewhere\"")
        #expect(await eventually(timeout: .seconds(3)) { b.memory.lookup(b.storedKey("customer:7")) == nil })
        #expect(try await b.get("customer:7", as: String.self) == "from elsewhere")

        // Tags: the index and its members live in different slots.
        for index in 0..<20 { try await a.set("order:\(index)", index, tags: ["eu"]) }
        for index in 0..<20 { #expect(try await b.get("order:\(index)", as: Int.self) == index) }
        await a.invalidate(tag: "eu")
        for index in 0..<20 { #expect(try await raw.exists(.string(a.storedKey("order:\(index)"))) == 0) }
        #expect(await eventually(timeout: .seconds(3)) { (0..<20).allSatisfy { b.memory.lookup(b.storedKey("order:\($0)")) == nil } })

        // Single-flight holds per process: concurrent loads of one key call the loader once.
        let calls = Counter()
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await a.getOrLoad("report", policy: CachePolicy(name: "r", ttl: .seconds(60))) { () async throws -> String in
                        await calls.increment()
                        try await Task.sleep(for: .milliseconds(100))
                        return "loaded"
                    }
                }
            }
            for try await value in group { #expect(value == "loaded") }
        }
        #expect(await calls.value == 1)

        // A namespace clear reaches every primary (SCAN on each), metadata included.
        for index in 0..<30 { try await a.set("eu:\(index)", index) }
        await a.clear(namespace: "eu")
        #expect(try await raw.scanKeys(matching: "crm:eu:*").isEmpty)
        #expect(try await raw.scanKeys(matching: "crm:__novacache__:m:*eu:*").isEmpty)
        #expect(try await raw.scanKeys(matching: "crm:customer:*").count == 60)
        await a.clear()
        #expect(try await raw.scanKeys(matching: "crm:*").isEmpty)
        withExtendedLifetime(cluster) {}
    }

    /// A primary dies: the manager serves from memory and keeps the writes it cannot send, then finds the
    /// promoted replica and replays them.
    @Test func ridesOutAPrimaryFailover() async throws {
        let cluster = try TestCluster()
        let cache = try makeClusterManager(cluster)
        let other = try makeClusterManager(cluster)
        let raw = try RedisClusterClient(url: cluster.url)
        defer { cache.shutdown(); other.shutdown(); raw.shutdown() }
        #expect(await cache.waitUntilReady(timeout: .seconds(30)) == .available)
        #expect(await other.waitUntilReady(timeout: .seconds(30)) == .available)
        let keys = (0..<30).map { "item:\($0)" }
        for key in keys { try await cache.set(key, "before") }
        for key in keys { #expect(try await other.get(key, as: String.self) == "before") }
        let victim = try cluster.primaryPort(forSlot: HashSlot.of(cache.storedKey(keys[0])))
        _ = try cluster.cli(victim, "wait", "1", "2000")
        cluster.server(port: victim)?.kill()

        // While the shard fails over, reads are served from memory and writes are kept.
        for key in keys { #expect(try await cache.get(key, as: String.self) == "before") }
        for key in keys { try await cache.set(key, "during") }
        try cluster.waitUntilHealthy(replicas: 2)
        #expect(await cache.flush(timeout: .seconds(20)) == 0)
        #expect(cache.remoteStatus == .available)
        for key in keys {
            #expect(try await raw.get(.string(cache.storedKey(key))).map { String(buffer: $0) } == "\"during\"")
        }
        // The other process does not keep serving what it read before once it is back (until then it
        // serves its memory, as in any outage): the values changed meanwhile.
        #expect(await eventually(timeout: .seconds(10)) { other.remoteStatus == .available })
        for key in keys { #expect(try await other.get(key, as: String.self) == "during") }
        // And its tracking follows the promoted replica: a later change still reaches it.
        #expect(await eventually(timeout: .seconds(5)) { other.listener?.isReady == true })
        try await Task.sleep(for: .seconds(1.5))
        try await cache.set(keys[0], "after")
        #expect(await eventually(timeout: .seconds(3)) { other.memory.lookup(other.storedKey(keys[0])) == nil })
        #expect(try await other.get(keys[0], as: String.self) == "after")
        withExtendedLifetime(cluster) {}
    }
}
