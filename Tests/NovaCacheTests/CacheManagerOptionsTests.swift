import Foundation
@testable import NovaCache
import NovaTestSupport
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// Loader timeouts, eager refresh, per-call options, one-off TTLs and the service lifecycle (issue 20's API).
@Suite struct CacheManagerOptionsTests {
    let refusing: RefusingPort
    let unreachable: String

    init() throws {
        refusing = try RefusingPort()
        unreachable = "redis://127.0.0.1:\(refusing.port)/1"
    }

    /// A slow loader waits at a gate the test opens only after the timeout answered: the timeout is
    /// proven to answer before the loader ends however long the parallel test run keeps the concurrency
    /// pool's two threads busy (timing bounds against a sleeping loader failed here: 6.8 s against a
    /// 6-second loader). A timeout that never fires would wait for the gate: the time limit catches it.
    @Test(.timeLimit(.minutes(1)))
    func softTimeoutServesTheStaleValueWhileTheLoaderFinishes() async throws {
        let clock = ManualCacheClock()
        let cache = try makeManager(unreachable, clock: clock) { $0.loaderSoftTimeout = .milliseconds(50) }
        defer { cache.shutdown() }
        let policy = CachePolicy(name: "short", ttl: .seconds(1))
        #expect(try await cache.getOrLoad("quote", policy: policy) { "v1" } == "v1")
        clock.advance(by: .seconds(2))
        let gate = Gate()
        let value = try await cache.getOrLoad("quote", policy: policy) { () async throws -> String in
            await gate.wait()
            return "v2"
        }
        #expect(value == "v1")
        #expect(cache.statistics.staleServed == 1)
        await gate.open()
        #expect(await eventually(timeout: .seconds(10)) { (try? await cache.get("quote", as: String.self)) == "v2" })
    }

    @Test(.timeLimit(.minutes(1)))
    func hardTimeoutThrowsWithoutAStaleValueAndTheLoaderStillStores() async throws {
        let cache = try makeManager(unreachable) { $0.loaderHardTimeout = .milliseconds(100) }
        defer { cache.shutdown() }
        _ = try await cache.get("warm-up", as: String.self)  // the first remote call learns the remote is down
        let gate = Gate()
        await #expect(throws: CacheError.loaderTimedOut(key: cache.storedKey("slow"), after: .milliseconds(100))) {
            _ = try await cache.getOrLoad("slow") { () async throws -> String in
                await gate.wait()
                return "eventually"
            }
        }
        await gate.open()
        #expect(await eventually(timeout: .seconds(10)) { (try? await cache.get("slow", as: String.self)) == "eventually" })
        // A loader faster than the limit is simply waited for.
        #expect(try await cache.getOrLoad("fast") { "quick" } == "quick")
    }

    @Test func eagerRefreshReloadsLateHitsInTheBackground() async throws {
        let clock = ManualCacheClock()
        let cache = try makeManager(unreachable, clock: clock)
        defer { cache.shutdown() }
        let calls = Counter()
        let policy = CachePolicy(name: "catalogue", ttl: .seconds(10), eagerRefresh: 0.8)
        let load: @Sendable () async throws -> String = { "v\(await calls.increment())" }
        #expect(try await cache.getOrLoad("p", policy: policy, loader: load) == "v1")
        clock.advance(by: .seconds(5))
        #expect(try await cache.getOrLoad("p", policy: policy, loader: load) == "v1")
        try await Task.sleep(for: .milliseconds(50))
        let callsBefore = await calls.value
        #expect(callsBefore == 1 && cache.statistics.eagerRefreshes == 0)
        clock.advance(by: .milliseconds(3500))  // 85% of the TTL
        #expect(try await cache.getOrLoad("p", policy: policy, loader: load) == "v1")  // no wait for the reload
        #expect(await eventually(timeout: .seconds(2)) { (try? await cache.get("p", as: String.self)) == "v2" })
        let callsAfter = await calls.value
        #expect(callsAfter == 2 && cache.statistics.eagerRefreshes == 1)
    }

    @Test func oneOffTTLsAndAStringURL() async throws {
        let clock = ManualCacheClock()
        var configuration = try CacheManager.Configuration(url: unreachable, namespace: "crm")
        configuration.clock = clock
        let cache = CacheManager(configuration: configuration)
        defer { cache.shutdown() }
        #expect(throws: (any Error).self) { try CacheManager.Configuration(url: "http://not-redis") }
        try await cache.set("otp", "123456", ttl: .seconds(30))
        try await cache.set("forever", "x", ttl: nil)
        clock.advance(by: .seconds(29))
        #expect(try await cache.get("otp", as: String.self) == "123456")
        clock.advance(by: .seconds(2))
        #expect(try await cache.get("otp", as: String.self) == nil)
        clock.advance(by: .seconds(86400 * 365))
        #expect(try await cache.get("forever", as: String.self) == "x")
    }
}

@Suite(.serialized) struct CacheManagerOptionsIntegrationTests {
    @Test func perCallOptionsBypassATier() async throws {
        let server = try TestServer(.nova)
        let cache = try makeManager("\(server.url)/1")
        let raw = try RedisClient(url: "\(server.url)/1")
        defer { cache.shutdown(); raw.shutdown() }
        await cache.waitUntilReady(timeout: .seconds(30))
        try await cache.set("remote-only", 1, options: .skipMemory)
        #expect(cache.memory.lookup(cache.storedKey("remote-only")) == nil)
        #expect(try await raw.get(.string(cache.storedKey("remote-only"))) != nil)
        #expect(try await cache.get("remote-only", as: Int.self, options: .skipMemory) == 1)
        #expect(cache.memory.lookup(cache.storedKey("remote-only")) == nil)  // not filled either
        try await cache.set("local-only", 2, options: .skipRemote)
        #expect(try await raw.get(.string(cache.storedKey("local-only"))) == nil)
        #expect(try await cache.get("local-only", as: Int.self) == 2)
        #expect(try await cache.get("local-only", as: Int.self, options: .skipMemory) == nil)
        let calls = Counter()
        let loaded = try await cache.getOrLoad("remote-only", as: Int.self, options: .skipRemote) { await calls.increment() }
        let loaderCalls = await calls.value
        #expect(loaded == 1 && loaderCalls == 1)  // memory had nothing, the remote was skipped
        await cache.delete("local-only", options: .skipMemory)
        #expect(try await cache.get("local-only", as: Int.self) == 2)
    }

    /// Graceful shutdown in a ServiceGroup flushes: writes journalled during an outage reach the returned
    /// server before the connections close, without waiting for the next scheduled probe.
    @Test func gracefulShutdownFlushesTheOutageJournal() async throws {
        let server = try TestServer(.nova)
        let cache = try makeManager("\(server.url)/1") {
            $0.recoveryInterval = .seconds(30)
            $0.maxRecoveryInterval = .seconds(30)
        }
        await cache.waitUntilReady(timeout: .seconds(30))
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await cache.run() }
                server.stop()
                for index in 0..<20 { try await cache.set("order:\(index)", index) }
                #expect(cache.statistics.pendingReplays == 20)
                try server.start()
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(cache.remoteStatus == .shutDown)
        let raw = try RedisClient(url: "\(server.url)/1")
        defer { raw.shutdown() }
        #expect(try await raw.get(.string(cache.storedKey("order:19"))).map { String(buffer: $0) } == "19")
    }
}

/// Tags: `invalidate(tag:)` removes every tagged entry on the remote and in every process's memory.
@Suite(.serialized) struct CacheManagerTagTests {
    @Test(arguments: TestServer.Kind.allCases, [CacheManager.Coherence.tracking, .pubSub])
    func invalidatingATagReachesEveryProcess(kind: TestServer.Kind, coherence: CacheManager.Coherence) async throws {
        let server = try TestServer(kind)
        let a = try makeManager("\(server.url)/1") { $0.coherence = coherence }
        let b = try makeManager("\(server.url)/1") { $0.coherence = coherence }
        let raw = try RedisClient(url: "\(server.url)/1")
        defer { a.shutdown(); b.shutdown(); raw.shutdown() }
        #expect(await a.waitUntilReady(timeout: .seconds(30)) == .available)
        #expect(await b.waitUntilReady(timeout: .seconds(30)) == .available)
        try await a.set("p:1", "one", tags: ["catalogue"])
        try await a.set("p:2", "two", ttl: .seconds(60), tags: ["catalogue", "eu"])
        try await a.set("p:3", "three")
        let loaded = try await a.getOrLoad("p:4", policy: .productCatalogue, tags: ["catalogue"]) { "four" }
        #expect(loaded == "four")
        try await Task.sleep(for: .milliseconds(50))
        for key in ["p:1", "p:2", "p:3", "p:4"] { #expect(try await b.get(key, as: String.self) != nil) }  // now in b's memory
        await a.invalidate(tag: "catalogue")
        for key in ["p:1", "p:2", "p:4"] {
            #expect(try await raw.exists(.string(a.storedKey(key)), .string("test:__novacache__:m:\(key)")) == 0)
            #expect(a.memory.lookup(a.storedKey(key)) == nil)
            #expect(await eventually(timeout: .milliseconds(500)) { b.memory.lookup(b.storedKey(key)) == nil }, "\(key) still in b")
            #expect(try await b.get(key, as: String.self) == nil)
        }
        #expect(try await b.get("p:3", as: String.self) == "three")
        #expect(try await raw.exists("test:__novacache__:t:catalogue") == 0)
        // The other tag's index lost nothing it did not have to: p:2 is gone, the index remains harmless.
        await a.invalidate(tag: "eu")
        #expect(try await raw.exists("test:__novacache__:t:eu") == 0)
    }

    @Test func aTagInvalidatedDuringAnOutageIsReplayed() async throws {
        let server = try TestServer(.nova)
        let a = try makeManager("\(server.url)/1") {
            $0.recoveryInterval = .seconds(1)
            $0.maxRecoveryInterval = .seconds(1)
        }
        let raw = try RedisClient(url: "\(server.url)/1")
        defer { a.shutdown(); raw.shutdown() }
        await a.waitUntilReady(timeout: .seconds(30))
        for key in ["o:1", "o:2"] { try await a.set(key, key, tags: ["orders"]) }
        server.pause()  // stopped, data kept
        await a.invalidate(tag: "orders")  // times out, then is journalled
        #expect(try await a.get("o:1", as: String.self) == nil)  // gone from memory at once
        #expect(!a.isRemoteAvailable && a.statistics.pendingReplays == 1)
        server.resume()
        let b = try makeManager("\(server.url)/1")
        defer { b.shutdown() }
        try await b.set("o:1", "rewritten before the replay")  // newer than the invalidation: kept
        try await b.set("o:3", "three", tags: ["orders"])  // tagged after the invalidation: kept
        #expect(await eventually(timeout: .seconds(10)) { a.isRemoteAvailable })
        #expect(try await raw.get(.string(a.storedKey("o:2"))) == nil)
        #expect(try await a.get("o:1", as: String.self) == "rewritten before the replay")
        #expect(try await a.get("o:3", as: String.self) == "three")
        #expect(a.statistics.replayedWrites == 1 && a.statistics.skippedReplays == 0)
    }
}

/// Holds loaders until the test opens it.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters = []
    }
}
