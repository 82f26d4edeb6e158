import Foundation
import Logging
@testable import NovaCache
import NovaClient
import Synchronization
import NovaTestSupport
import Testing

struct Customer: Codable, Sendable, Hashable {
    var id: Int
    var name: String
}

struct UpstreamDown: Error {}

/// Collects log messages, to check what the manager tells operators.
final class LogCapture: LogHandler, @unchecked Sendable {
    let lines = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let text = "\(event.level) \(event.message) \(event.metadata.map { "\($0)" } ?? "")"
        lines.withLock { $0.append(text) }
    }
    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }
    func count(_ text: String) -> Int { lines.withLock { $0.filter { $0.contains(text) }.count } }
}

/// A manager with short timeouts for tests. Tests give `waitUntilReady` 30 s (it returns as soon as the
/// status settles): in a parallel debug run, CPU-bound tests elsewhere hold both cooperative threads of
/// this 2-core machine for 10 s and more, and the manager's first connection cannot finish meanwhile
/// (seen as "connecting" after a 10 s wait, twice in five runs).
func makeManager(
    _ url: String, namespace: String = "test", clock: any CacheClock = SystemCacheClock(), log: LogCapture? = nil,
    _ adjust: (inout CacheManager.Configuration) -> Void = { _ in }
) throws -> CacheManager {
    var configuration = CacheManager.Configuration(url: try RedisURL(url), namespace: namespace)
    configuration.clock = clock
    configuration.remoteTimeout = .milliseconds(300)
    configuration.recoveryInterval = .milliseconds(50)
    configuration.maxRecoveryInterval = .milliseconds(200)
    adjust(&configuration)
    let logger = log.map { capture in Logger(label: "test") { _ in capture } } ?? Logger(label: "test")
    return CacheManager(configuration: configuration, logger: logger)
}

/// The manager without any server: everything is answered from memory, nothing throws.
@Suite struct CacheManagerOfflineTests {
    let refusing: RefusingPort
    let unreachable: String

    init() throws {
        refusing = try RefusingPort()
        unreachable = "redis://:hunter2@127.0.0.1:\(refusing.port)/1"
    }

    @Test func servesFromMemoryAndWarnsOnceWithoutThePassword() async throws {
        let log = LogCapture()
        let cache = try makeManager(unreachable, log: log)
        defer { cache.shutdown() }
        await cache.waitUntilReady(timeout: .seconds(30))
        try await cache.set("c:1", Customer(id: 1, name: "Ada"))
        #expect(try await cache.get("c:1", as: Customer.self) == Customer(id: 1, name: "Ada"))
        #expect(await cache.exists("c:1"))
        await cache.delete("c:1")
        #expect(try await cache.get("c:1", as: Customer.self) == nil)
        #expect(!cache.isRemoteAvailable)
        let stats = cache.statistics
        #expect(stats.fallbackActive && stats.outages == 1)
        #expect(log.count("remote cache unreachable") == 1)
        #expect(log.contains("redis://:***@127.0.0.1"))
        #expect(!log.contains("hunter2"))
    }

    @Test func getDuringAnOutageIsFast() async throws {
        let cache = try makeManager(unreachable)
        defer { cache.shutdown() }
        await cache.waitUntilReady(timeout: .seconds(30))
        var samples: [Duration] = []
        for index in 0..<200 {
            let started = ContinuousClock.now
            _ = await cache.getBytes("missing:\(index)")
            samples.append(ContinuousClock.now - started)
        }
        samples.sort()
        #expect(samples[samples.count / 2] < .milliseconds(5))
        #expect(samples[samples.count * 99 / 100] < .milliseconds(5), "p99 \(samples[samples.count * 99 / 100])")
    }

    @Test func singleFlightWith100Callers() async throws {
        let cache = try makeManager(unreachable)
        defer { cache.shutdown() }
        let calls = Counter()
        let results = try await withThrowingTaskGroup(of: Customer.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    try await cache.getOrLoad("search:ada", policy: .customerSearch) {
                        await calls.increment()
                        try await Task.sleep(for: .milliseconds(50))
                        return Customer(id: 1, name: "Ada")
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 100 && Set(results) == [Customer(id: 1, name: "Ada")])
        #expect(await calls.value == 1)
        #expect(cache.statistics.loaderCalls == 1)
        // Now cached: no more loader calls.
        _ = try await cache.getOrLoad("search:ada", as: Customer.self) { await calls.increment(); throw UpstreamDown() }
        #expect(await calls.value == 1)
    }

    @Test func failSafeServesStaleValuesUpToTheLimit() async throws {
        let clock = ManualCacheClock()
        let log = LogCapture()
        let cache = try makeManager(unreachable, clock: clock, log: log) { $0.maxStaleness = .seconds(600) }
        defer { cache.shutdown() }
        let policy = CachePolicy(name: "short", ttl: .seconds(60))
        let first = try await cache.getOrLoad("k", policy: policy) { "v1" }
        #expect(first == "v1")
        clock.advance(by: .seconds(120))  // expired, within the staleness limit
        #expect(try await cache.get("k", as: String.self) == nil)
        let stale = try await cache.getOrLoad("k", policy: policy, as: String.self) { throw UpstreamDown() }
        #expect(stale == "v1")
        #expect(cache.statistics.staleServed == 1)
        #expect(log.contains("serving a stale value"))
        clock.advance(by: .seconds(31))  // past the fail-safe throttle
        // A working loader replaces the stale value.
        #expect(try await cache.getOrLoad("k", policy: policy) { "v2" } == "v2")
        clock.advance(by: .seconds(60 + 601))  // past TTL + staleness: nothing to fall back on
        await #expect(throws: UpstreamDown.self) {
            _ = try await cache.getOrLoad("k", policy: policy, as: String.self) { throw UpstreamDown() }
        }
    }

    /// A policy's own stale window (issue 23: per-tool stale-on-error) ends fail-safe before the manager's
    /// limit, throttle periods included; `.zero` turns it off.
    @Test func policyStalenessWindowLimitsFailSafe() async throws {
        let clock = ManualCacheClock()
        let cache = try makeManager(unreachable, clock: clock) {
            $0.maxStaleness = .seconds(3600)
            $0.failSafeThrottle = .seconds(10)
        }
        defer { cache.shutdown() }
        let windowed = CachePolicy(name: "windowed", ttl: .seconds(60), maxStaleness: .seconds(30))
        let never = CachePolicy(name: "never-stale", ttl: .seconds(60), maxStaleness: .zero)
        _ = try await cache.getOrLoad("w", policy: windowed) { "w1" }
        _ = try await cache.getOrLoad("n", policy: never) { "n1" }
        clock.advance(by: .seconds(61))
        #expect(try await cache.getOrLoad("w", policy: windowed, as: String.self) { throw UpstreamDown() } == "w1")
        await #expect(throws: UpstreamDown.self) {
            _ = try await cache.getOrLoad("n", policy: never, as: String.self) { throw UpstreamDown() }
        }
        clock.advance(by: .seconds(11))  // a throttle period later, still inside the window
        #expect(try await cache.getOrLoad("w", policy: windowed, as: String.self) { throw UpstreamDown() } == "w1")
        clock.advance(by: .seconds(20))  // 32 s past expiry: the window is over though the throttle moved freshness
        await #expect(throws: UpstreamDown.self) {
            _ = try await cache.getOrLoad("w", policy: windowed, as: String.self) { throw UpstreamDown() }
        }
        #expect(CachePolicy(name: "p", ttl: nil, maxStaleness: .seconds(5)).description.contains("stale for"))
    }

    /// Issue 20, bug 5: a failing loader is called once per throttle period, with one warning, while the
    /// stale value is served; never past TTL + maxStaleness.
    @Test func failSafeThrottleCallsAFailingLoaderOncePerPeriod() async throws {
        let clock = ManualCacheClock()
        let log = LogCapture()
        let cache = try makeManager(unreachable, clock: clock, log: log) {
            $0.maxStaleness = .seconds(100)
            $0.failSafeThrottle = .seconds(10)
        }
        defer { cache.shutdown() }
        let policy = CachePolicy(name: "short", ttl: .seconds(60))
        _ = try await cache.getOrLoad("k", policy: policy) { "v1" }
        clock.advance(by: .seconds(61))
        let calls = Counter()
        func failing() async throws -> String {
            try await cache.getOrLoad("k", policy: policy, as: String.self) {
                await calls.increment()
                throw UpstreamDown()
            }
        }
        for _ in 0..<50 { #expect(try await failing() == "v1") }
        #expect(await calls.value == 1)
        #expect(log.count("serving a stale value") == 1)
        clock.advance(by: .seconds(11))  // the next period: one more try, one more warning
        for _ in 0..<50 { #expect(try await failing() == "v1") }
        #expect(await calls.value == 2)
        #expect(log.count("serving a stale value") == 2)
        clock.advance(by: .seconds(90))  // past TTL + maxStaleness: the throttle did not extend it
        await #expect(throws: UpstreamDown.self) { _ = try await failing() }
    }

    @Test func slidingExpiryRestartsOnRead() async throws {
        let clock = ManualCacheClock()
        let cache = try makeManager(unreachable, clock: clock)
        defer { cache.shutdown() }
        try await cache.set("session", "alice", policy: .userSession)
        for _ in 0..<10 {
            clock.advance(by: .seconds(20 * 60))
            #expect(try await cache.get("session", as: String.self) == "alice")
        }
        clock.advance(by: .seconds(31 * 60))
        #expect(try await cache.get("session", as: String.self) == nil)
    }

    @Test func namespacesAndClear() async throws {
        let cache = try makeManager(unreachable, namespace: "crm")
        defer { cache.shutdown() }
        #expect(cache.storedKey("a") == "crm:a")
        await cache.setBytes("customers:1", [1])
        await cache.setBytes("customers:2", [2])
        await cache.setBytes("orders:1", [3])
        await cache.clear(namespace: "customers")
        #expect(await cache.getBytes("customers:1") == nil)
        #expect(await cache.getBytes("orders:1") == [3])
        await cache.clear()
        #expect(await cache.getBytes("orders:1") == nil)
    }
}

/// Two managers on one live server (nova-cache-server and redis-server 7.0).
@Suite(.serialized) struct CacheManagerIntegrationTests {
    @Test(arguments: TestServer.Kind.allCases, [CacheManager.Coherence.tracking, .pubSub])
    func anotherProcessesWriteDropsTheMemoryCopyWithin100ms(kind: TestServer.Kind, coherence: CacheManager.Coherence) async throws {
        let server = try TestServer(kind)
        let a = try makeManager("\(server.url)/1") { $0.coherence = coherence }
        let b = try makeManager("\(server.url)/1") { $0.coherence = coherence }
        defer { a.shutdown(); b.shutdown() }
        await a.waitUntilReady(timeout: .seconds(30))
        await b.waitUntilReady(timeout: .seconds(30))
        try await a.set("product:1", "v1")
        // The invalidation caused by that write reaches b asynchronously; let it pass before b caches.
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await b.get("product:1", as: String.self) == "v1")  // now in b's memory
        #expect(try await b.get("product:1", as: String.self) == "v1")
        #expect(b.statistics.memoryHits == 1)
        try await a.set("product:1", "v2")
        let dropped = await eventually(timeout: .milliseconds(100)) { b.memory.lookup(b.storedKey("product:1")) == nil }
        #expect(dropped, "invalidation took longer than 100 ms")
        #expect(try await b.get("product:1", as: String.self) == "v2")
        await a.delete("product:1")
        #expect(await eventually(timeout: .milliseconds(100)) { b.memory.lookup(b.storedKey("product:1")) == nil })
        #expect(try await b.get("product:1", as: String.self) == nil)
        // A's own writes do not evict A's own memory copy.
        try await a.set("own", "x")
        try await Task.sleep(for: .milliseconds(50))
        #expect(a.memory.lookup(a.storedKey("own")) != nil)
        #expect(a.statistics.invalidations == 0)
    }

    /// Issue 20, bug 4: callers of one key arriving 0.7 ms apart, each after the previous flight may have
    /// ended. A late caller whose miss (a server round trip) came before the value was stored must not load
    /// it again.
    @Test(arguments: TestServer.Kind.allCases)
    func lateJoinersTakeTheValueTheFlightJustStored(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let cache = try makeManager("\(server.url)/1")
        defer { cache.shutdown() }
        await cache.waitUntilReady(timeout: .seconds(30))
        let calls = Counter()
        let keys = 300
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<4 {
                group.addTask {
                    try await Task.sleep(for: .microseconds(700 * caller))
                    try await withThrowingTaskGroup(of: Void.self) { perKey in
                        for key in 0..<keys {
                            perKey.addTask {
                                _ = try await cache.getOrLoad("late:\(key)", policy: .customerSearch) {
                                    await calls.increment()
                                    try await Task.sleep(for: .microseconds(500))
                                    return Customer(id: key, name: "n\(key)")
                                }
                            }
                        }
                        try await perKey.waitForAll()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await calls.value == keys)
        #expect(cache.statistics.loaderCalls == keys)
    }

    @Test(arguments: TestServer.Kind.allCases)
    func outageStopAndKillThenRecoveryReplaysWrites(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let log = LogCapture()
        let a = try makeManager("\(server.url)/1", log: log)
        defer { a.shutdown() }
        await a.waitUntilReady(timeout: .seconds(30))
        try await a.set("kept", "before")
        try await a.set("doomed", "before")
        // Stopped (SIGSTOP): the first call waits at most the remote timeout, then memory answers.
        server.pause()
        var worst = Duration.zero
        for index in 0..<50 {
            let started = ContinuousClock.now
            #expect(try await a.get("kept", as: String.self) == "before")
            try await a.set("during:\(index)", index)
            worst = max(worst, ContinuousClock.now - started)
        }
        #expect(worst < .milliseconds(700), "worst call \(worst)")
        #expect(!a.isRemoteAvailable)
        // Killed: still answering, and calls skip the remote at once.
        server.stop()
        let started = ContinuousClock.now
        for _ in 0..<100 { _ = try await a.get("kept", as: String.self) }
        #expect(ContinuousClock.now - started < .milliseconds(100))
        await a.delete("doomed")
        try await a.set("short", "gone soon", policy: CachePolicy(name: "short", ttl: .milliseconds(100)))
        try await Task.sleep(for: .milliseconds(150))
        #expect(a.statistics.pendingReplays == 52)
        // Back (empty: no persistence in this test): the writes made during the outage are replayed.
        try server.start()
        #expect(await eventually(timeout: .seconds(10)) { a.isRemoteAvailable })
        #expect(log.contains("remote cache reachable again"))
        #expect(log.contains("normal service resumed"))
        let stats = a.statistics
        #expect(stats.replayedWrites == 51 && stats.skippedReplays == 1, "\(stats)")
        #expect(!stats.fallbackActive && stats.pendingReplays == 0)
        let b = try makeManager("\(server.url)/1")
        defer { b.shutdown() }
        #expect(try await b.get("during:49", as: Int.self) == 49)
        #expect(try await b.get("short", as: String.self) == nil)
        #expect(try await b.get("kept", as: String.self) == nil)  // written before the outage, lost with the server
    }

    @Test func replayNeverOverwritesANewerRemoteValue() async throws {
        let server = try TestServer(.nova)
        let a = try makeManager("\(server.url)/1") {
            $0.recoveryInterval = .milliseconds(800)
            $0.maxRecoveryInterval = .milliseconds(800)
        }
        defer { a.shutdown() }
        await a.waitUntilReady(timeout: .seconds(30))
        server.stop()
        try await a.set("k", "written during the outage")
        try await a.set("untouched", "mine")
        #expect(!a.isRemoteAvailable)
        try server.start()
        let b = try makeManager("\(server.url)/1")
        defer { b.shutdown() }
        try await Task.sleep(for: .milliseconds(5))
        try await b.set("k", "newer, from another process")
        #expect(await eventually(timeout: .seconds(10)) { a.isRemoteAvailable })
        let c = try makeManager("\(server.url)/1")
        defer { c.shutdown() }
        #expect(try await c.get("k", as: String.self) == "newer, from another process")
        #expect(try await c.get("untouched", as: String.self) == "mine")
        #expect(a.statistics.skippedReplays == 1 && a.statistics.replayedWrites == 1)
        // A's memory tier was reconciled: it reads the remote's newer value.
        #expect(try await a.get("k", as: String.self) == "newer, from another process")
    }

    @Test(arguments: TestServer.Kind.allCases)
    func remoteTTLAndSlidingExpiry(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let a = try makeManager("\(server.url)/1")
        defer { a.shutdown() }
        try await a.set("catalogue", ["p1", "p2"], policy: .productCatalogue)
        guard case .expiresIn(let left) = await a.ttl("catalogue") else { Issue.record("no ttl"); return }
        #expect(left > .seconds(3400) && left <= .seconds(3780))
        try await a.set("session", "alice", policy: CachePolicy(name: "s", ttl: .seconds(10), sliding: true))
        let raw = try RedisClient(url: "\(server.url)/1")
        defer { raw.shutdown() }
        try await raw.expire(.string(a.storedKey("session")), in: .seconds(2))
        let b = try makeManager("\(server.url)/1")  // reads from the remote: the read slides the TTL back to 10 s
        defer { b.shutdown() }
        #expect(try await b.get("session", as: String.self) == "alice")
        guard case .expiresIn(let slid) = try await raw.ttl(.string(a.storedKey("session"))) else { Issue.record("no ttl"); return }
        #expect(slid > .seconds(8))
        await a.clear()
        #expect(try await raw.exists(.string(a.storedKey("catalogue"))) == 0)
    }
}
