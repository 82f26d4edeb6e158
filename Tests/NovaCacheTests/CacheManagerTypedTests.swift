import Foundation
@testable import NovaCache
import NovaTestSupport
import Synchronization
import Testing

/// The default JSON codec, counting its decodings.
final class CountingCodec: CacheCodec {
    private let json = JSONCacheCodec()
    let decodings = Atomic<Int>(0)

    func encode<T: Encodable>(_ value: T) throws -> [UInt8] { try json.encode(value) }

    func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        decodings.add(1, ordering: .relaxed)
        return try json.decode(type, from: bytes)
    }

    var count: Int { decodings.load(ordering: .relaxed) }
}

struct CustomerName: Codable, Sendable, Hashable {
    var name: String
}

/// Issue 26: typed memory hits return the decoded value kept beside the bytes, and that value never
/// outlives its bytes.
@Suite struct CacheManagerTypedTests {
    let refusing: RefusingPort
    let unreachable: String

    init() throws {
        refusing = try RefusingPort()
        unreachable = "redis://127.0.0.1:\(refusing.port)/1"
    }

    func makeTyped(clock: any CacheClock = SystemCacheClock(), _ adjust: (inout CacheManager.Configuration) -> Void = { _ in }) throws -> (CacheManager, CountingCodec) {
        let codec = CountingCodec()
        let cache = try makeManager(unreachable, clock: clock) {
            $0.codec = codec
            adjust(&$0)
        }
        return (cache, codec)
    }

    @Test func typedReadsOfAWrittenOrDecodedValueDoNotDecode() async throws {
        let (cache, codec) = try makeTyped()
        defer { cache.shutdown() }
        _ = try await cache.get("warm-up", as: Customer.self)  // the first remote call learns the remote is down
        let ada = Customer(id: 1, name: "Ada")
        try await cache.set("c:1", ada)
        for _ in 0..<3 { #expect(try await cache.get("c:1", as: Customer.self) == ada) }
        #expect(try await cache.getOrLoad("c:1", as: Customer.self) { Customer(id: 0, name: "loader") } == ada)
        #expect(codec.count == 0)
        // Bytes written as bytes (as another language or a remote hit leaves them): decoded once, then kept.
        await cache.setBytes("c:2", Array(#"{"id":2,"name":"Grace"}"#.utf8))
        #expect(try await cache.get("c:2", as: Customer.self) == Customer(id: 2, name: "Grace"))
        #expect(try await cache.get("c:2", as: Customer.self) == Customer(id: 2, name: "Grace"))
        #expect(codec.count == 1)
        #expect(cache.statistics.memoryHits == 6)  // 4 typed hits, then a byte hit (decoded) and a typed hit
    }

    @Test func theDecodedValueGoesWithItsBytes() async throws {
        let clock = ManualCacheClock()
        let (cache, codec) = try makeTyped(clock: clock)
        defer { cache.shutdown() }
        _ = try await cache.get("warm-up", as: Customer.self)
        try await cache.set("c", Customer(id: 1, name: "v1"))
        #expect(try await cache.get("c", as: Customer.self)?.name == "v1")
        // A write replaces it (typed or as bytes).
        try await cache.set("c", Customer(id: 1, name: "v2"))
        #expect(try await cache.get("c", as: Customer.self)?.name == "v2")
        await cache.setBytes("c", Array(#"{"id":1,"name":"v3"}"#.utf8))
        #expect(try await cache.get("c", as: Customer.self)?.name == "v3")
        #expect(codec.count == 1)
        // A read as another type decodes the bytes, and the first type decodes again afterwards.
        #expect(try await cache.get("c", as: CustomerName.self) == CustomerName(name: "v3"))
        #expect(try await cache.get("c", as: Customer.self)?.name == "v3")
        #expect(codec.count == 3)
        // A delete.
        await cache.delete("c")
        #expect(try await cache.get("c", as: Customer.self) == nil)
        // Expiry.
        try await cache.set("short", Customer(id: 2, name: "x"), ttl: .seconds(1))
        #expect(try await cache.get("short", as: Customer.self) != nil)
        clock.advance(by: .seconds(2))
        #expect(try await cache.get("short", as: Customer.self) == nil)
        // Sliding entries take the general path (their reads restart the TTL).
        try await cache.set("session", Customer(id: 3, name: "s"), policy: .userSession)
        let before = codec.count
        #expect(try await cache.get("session", as: Customer.self)?.name == "s")
        #expect(codec.count == before + 1)
    }

    @Test func evictionAndTheDecodedValueBoundDropThem() async throws {
        let (cache, codec) = try makeTyped { $0.memory = MemoryTier.Configuration(maxEntries: 10, maxDecodedValues: 4) }
        defer { cache.shutdown() }
        _ = try await cache.get("warm-up", as: Customer.self)
        for index in 0..<20 { try await cache.set("c:\(index)", Customer(id: index, name: "n\(index)")) }
        #expect(cache.memory.count == 10)
        var found = 0
        for index in 0..<20 {
            if let customer = try await cache.get("c:\(index)", as: Customer.self) {
                #expect(customer == Customer(id: index, name: "n\(index)"))
                found += 1
            }
        }
        #expect(found == 10)
        // At most the last 4 written kept their decoded value: the other survivors decoded.
        #expect(codec.count >= found - 4 && codec.count <= found, "\(codec.count)")
    }

    @Test func memoryTierUnitBound() {
        let tier = MemoryTier(configuration: MemoryTier.Configuration(maxDecodedValues: 2), clock: ManualCacheClock())
        let now = ManualCacheClock().nowMilliseconds()
        for (index, key) in ["a", "b", "c"].enumerated() {
            tier.store(key, MemoryTier.Record(payload: [UInt8(index)], freshUntil: 0, writtenAt: now), decoded: index)
        }
        #expect(tier.decodedValue(prefix: "", key: "a", now: now, as: Int.self) == nil)  // pushed out
        #expect(tier.decodedValue(prefix: "", key: "b", now: now, as: Int.self) == 1)
        #expect(tier.decodedValue(prefix: "", key: "c", now: now, as: Int.self) == 2)
        #expect(tier.decodedValue(prefix: "", key: "c", now: now, as: String.self) == nil)  // another type
        // keep() attaches only to the bytes it decoded.
        let entry = tier.value(prefix: "", key: "a", now: now)!
        tier.store("a", MemoryTier.Record(payload: [9], freshUntil: 0, writtenAt: now))
        tier.keep(decoded: 0, for: "a", decodedFrom: entry)
        #expect(tier.decodedValue(prefix: "", key: "a", now: now, as: Int.self) == nil)
        let current = tier.value(prefix: "", key: "a", now: now)!
        tier.keep(decoded: 9, for: "a", decodedFrom: current)
        #expect(tier.decodedValue(prefix: "", key: "a", now: now, as: Int.self) == 9)
    }
}

@Suite(.serialized) struct CacheManagerTypedIntegrationTests {
    /// Another process's write and the outage replay's reconciliation drop the decoded value too.
    @Test(arguments: TestServer.Kind.allCases)
    func invalidationAndReplayDropTheDecodedValue(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let a = try makeManager("\(server.url)/1") {
            $0.recoveryInterval = .seconds(1)
            $0.maxRecoveryInterval = .seconds(1)
        }
        let b = try makeManager("\(server.url)/1")
        defer { a.shutdown(); b.shutdown() }
        #expect(await a.waitUntilReady(timeout: .seconds(30)) == .available)
        #expect(await b.waitUntilReady(timeout: .seconds(30)) == .available)
        try await a.set("c", Customer(id: 1, name: "from a"))
        #expect(try await a.get("c", as: Customer.self)?.name == "from a")
        try await b.set("c", Customer(id: 1, name: "from b"))
        #expect(await eventually(timeout: .milliseconds(500)) { (try? await a.get("c", as: Customer.self))?.name == "from b" })
        // An outage: a keeps its decoded copy of "c"; the server comes back empty and b writes "c" before a
        // recovers. After the replay a reads b's value, not its kept decoding.
        server.stop()
        try await a.set("other", 1)
        #expect(!a.isRemoteAvailable)
        try server.start()
        let c = try makeManager("\(server.url)/1")
        defer { c.shutdown() }
        try await c.set("c", Customer(id: 1, name: "after the restart"))
        #expect(await eventually(timeout: .seconds(10)) { a.isRemoteAvailable })
        #expect(try await a.get("c", as: Customer.self)?.name == "after the restart")
    }
}
