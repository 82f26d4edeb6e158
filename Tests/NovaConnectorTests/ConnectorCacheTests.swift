import Foundation
import NovaCache
import NovaConnector
import NovaTestSupport
import Synchronization
import Testing

/// Counts upstream calls and can fail on demand.
final class FakeUpstream: Sendable {
    private let state = Mutex((calls: 0, failing: false))
    var calls: Int { state.withLock { $0.calls } }
    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }

    func search(_ query: String, delay: Duration = .zero) async throws -> [String] {
        let failing = state.withLock { state -> Bool in
            state.calls += 1
            return state.failing
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        if failing { throw UpstreamFailure() }
        return ["\(query) 1", "\(query) 2"]
    }
}

struct UpstreamFailure: Error {}

/// A reply that says whether it is an error, as MCP tool results do.
struct Reply: Codable, Sendable, Hashable {
    var text: String
    var isError: Bool
}

func offlineManager(clock: any CacheClock = SystemCacheClock(), url: String? = nil, namespace: String = "conn") throws -> (CacheManager, RefusingPort?) {
    let refusing = url == nil ? try RefusingPort() : nil
    var configuration = CacheManager.Configuration(url: try RedisURL(url ?? "redis://127.0.0.1:\(refusing!.port)/0"), namespace: namespace)
    configuration.clock = clock
    configuration.remoteTimeout = .milliseconds(300)
    configuration.recoveryInterval = .milliseconds(50)
    configuration.failSafeThrottle = .zero
    return (CacheManager(configuration: configuration), refusing)
}

@Suite struct ConnectorKeyTests {
    @Test func argumentsAreCanonical() throws {
        let a = try ConnectorKey(source: "crm", operation: "search", arguments: ["b": 1, "a": 2], caller: nil, policy: .customerSearch)
        let b = try ConnectorKey(source: "crm", operation: "search", arguments: ["a": 2, "b": 1], caller: nil, policy: .customerSearch)
        #expect(a == b)
        #expect(a.key == #"crm:search:shared:{"a":2,"b":1}"#)
        let other = try ConnectorKey(source: "crm", operation: "search", arguments: ["a": 3, "b": 1], caller: nil, policy: .customerSearch)
        #expect(other.key != a.key)
    }

    @Test func keyFieldsChooseWhatSplitsTheCache() throws {
        var policy = ConnectorPolicy.customerSearch
        policy.keyFields = ["query"]
        let a = try ConnectorKey(source: "crm", operation: "search", arguments: ["query": "smith", "requestId": "1"], caller: nil, policy: policy)
        let b = try ConnectorKey(source: "crm", operation: "search", arguments: ["query": "smith", "requestId": "2"], caller: nil, policy: policy)
        #expect(a == b && a.key == #"crm:search:shared:{"query":"smith"}"#)
    }

    @Test func longArgumentsAreHashedAndCallersNeverAppear() throws {
        let long = String(repeating: "x", count: 200)
        let hashed = try ConnectorKey(source: "crm", operation: "search", arguments: ["query": long], caller: nil, policy: .customerSearch)
        #expect(hashed.key.hasPrefix("crm:search:shared:sha256:") && hashed.key.count == "crm:search:shared:sha256:".count + 64)
        var privatePolicy = ConnectorPolicy.customerSearch
        privatePolicy.scope = .caller
        let alice = try ConnectorKey(source: "crm", operation: "search", arguments: ["query": "q"], caller: "token-alice", policy: privatePolicy)
        let bob = try ConnectorKey(source: "crm", operation: "search", arguments: ["query": "q"], caller: "token-bob", policy: privatePolicy)
        #expect(alice.key != bob.key && !alice.key.contains("alice") && alice.key.contains(":caller-"))
        #expect(throws: ConnectorError.self) {
            try ConnectorKey(source: "crm", operation: "search", arguments: ["query": "q"], caller: nil, policy: privatePolicy)
        }
    }

    @Test func namesCannotRunIntoEachOther() throws {
        let a = try ConnectorKey(source: "a:b", operation: "c", arguments: [String: Int](), caller: nil, policy: .products)
        let b = try ConnectorKey(source: "a", operation: "b:c", arguments: [String: Int](), caller: nil, policy: .products)
        #expect(a.key != b.key)
        #expect(a.key == "a%3Ab:c:shared:{}")
    }
}

@Suite struct ConnectorCacheTests {
    @Test func repeatedCallsHitTheCache() async throws {
        let (manager, refusing) = try offlineManager()
        defer { manager.shutdown(); _ = refusing }
        let connector = ConnectorCache(cache: manager)
        let upstream = FakeUpstream()
        for _ in 0..<5 {
            let result = try await connector.call(source: "crm", operation: "search", arguments: ["query": "smith"], policy: .customerSearch) {
                try await upstream.search("smith")
            }
            #expect(result == ["smith 1", "smith 2"])
        }
        _ = try await connector.call(source: "crm", operation: "search", arguments: ["query": "jones"], policy: .customerSearch) {
            try await upstream.search("jones")
        }
        #expect(upstream.calls == 2)
        let counters = try #require(connector.statistics.operations.first).counters
        #expect(counters.calls == 6 && counters.upstreamCalls == 2 && counters.upstreamCallsAvoided == 4)
    }

    @Test func uncachedPoliciesAlwaysCallTheUpstream() async throws {
        let (manager, refusing) = try offlineManager()
        defer { manager.shutdown(); _ = refusing }
        let connector = ConnectorCache(cache: manager)
        let upstream = FakeUpstream()
        for _ in 0..<3 {
            _ = try await connector.call(source: "crm", operation: "update", arguments: ["id": 1], policy: .uncached) { try await upstream.search("x") }
        }
        #expect(upstream.calls == 3)
    }

    @Test func rejectedResultsAreReturnedButNeverStored() async throws {
        let (manager, refusing) = try offlineManager()
        defer { manager.shutdown(); _ = refusing }
        let connector = ConnectorCache(cache: manager)
        let calls = Mutex(0)
        for _ in 0..<3 {
            let reply = try await connector.call(
                source: "crm", operation: "search", arguments: ["query": "broken"], policy: .customerSearch, cacheable: { !$0.isError }
            ) { () async throws -> Reply in
                calls.withLock { $0 += 1 }
                return Reply(text: "upstream said no", isError: true)
            }
            #expect(reply == Reply(text: "upstream said no", isError: true))
        }
        #expect(calls.withLock { $0 } == 3)
        #expect(connector.statistics.total.upstreamErrors == 3)
    }

    @Test func callerScopeKeepsUsersApart() async throws {
        let (manager, refusing) = try offlineManager()
        defer { manager.shutdown(); _ = refusing }
        let connector = ConnectorCache(cache: manager)
        var policy = ConnectorPolicy.customerSearch
        policy.scope = .caller
        let alice = try await connector.call(source: "crm", operation: "mine", arguments: ["q": "x"], caller: "alice", policy: policy) { "alice's data" }
        let bob = try await connector.call(source: "crm", operation: "mine", arguments: ["q": "x"], caller: "bob", policy: policy) { "bob's data" }
        let aliceAgain = try await connector.call(source: "crm", operation: "mine", arguments: ["q": "x"], caller: "alice", policy: policy) { "new" }
        #expect(alice == "alice's data" && bob == "bob's data" && aliceAgain == "alice's data")
        // No caller: passed through, never cached, never another caller's result.
        let anonymous = try await connector.call(source: "crm", operation: "mine", arguments: ["q": "x"], policy: policy) { "fresh" }
        #expect(anonymous == "fresh" && connector.statistics.total.bypassed == 1)
    }

    @Test func concurrentIdenticalCallsReachTheUpstreamOnce() async throws {
        let (manager, refusing) = try offlineManager()
        defer { manager.shutdown(); _ = refusing }
        let connector = ConnectorCache(cache: manager)
        let upstream = FakeUpstream()
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<50 {
                group.addTask {
                    try await connector.call(source: "crm", operation: "search", arguments: ["query": "ada"], policy: .customerSearch) {
                        try await upstream.search("ada", delay: .milliseconds(200))
                    }
                }
            }
            return try await group.reduce(into: [[String]]()) { $0.append($1) }
        }
        #expect(results.count == 50 && Set(results) == [["ada 1", "ada 2"]])
        #expect(upstream.calls == 1)
    }

    @Test func invalidationBySourceOperationAndKey() async throws {
        let (manager, refusing) = try offlineManager()
        defer { manager.shutdown(); _ = refusing }
        let connector = ConnectorCache(cache: manager)
        let upstream = FakeUpstream()
        func call(_ source: String, _ operation: String, _ query: String) async throws {
            _ = try await connector.call(source: source, operation: operation, arguments: ["query": query], policy: .products) {
                try await upstream.search(query)
            }
        }
        for (source, operation, query) in [("erp", "products", "a"), ("erp", "products", "b"), ("erp", "prices", "a"), ("crm", "search", "a")] {
            try await call(source, operation, query)
        }
        #expect(upstream.calls == 4)
        await connector.invalidate(source: "erp", operation: "products")
        try await call("erp", "products", "a")
        try await call("erp", "prices", "a")
        #expect(upstream.calls == 5)  // only the products were dropped
        await connector.invalidate(source: "erp")
        try await call("erp", "prices", "a")
        try await call("crm", "search", "a")
        #expect(upstream.calls == 6)  // erp dropped, crm kept
        let key = try ConnectorKey(source: "crm", operation: "search", arguments: ["query": "a"], caller: nil, policy: .products)
        await connector.invalidate(key: key.key)
        try await call("crm", "search", "a")
        #expect(upstream.calls == 7)
    }

    @Test func staleOnErrorServesTheLastResultWithinItsWindow() async throws {
        let clock = ManualCacheClock()
        let (manager, refusing) = try offlineManager(clock: clock)
        defer { manager.shutdown(); _ = refusing }
        let connector = ConnectorCache(cache: manager)
        let upstream = FakeUpstream()
        var policy = ConnectorPolicy(name: "search", ttl: .seconds(60), jitter: 0, staleOnError: .seconds(300))
        func call() async throws -> [String] {
            try await connector.call(source: "crm", operation: "search", arguments: ["query": "q"], policy: policy) { try await upstream.search("q") }
        }
        #expect(try await call() == ["q 1", "q 2"])
        upstream.setFailing(true)
        clock.advance(by: .seconds(120))
        #expect(try await call() == ["q 1", "q 2"])  // stale, upstream failing
        clock.advance(by: .seconds(300))  // 360 s past expiry
        await #expect(throws: UpstreamFailure.self) { _ = try await call() }
        policy.staleOnError = .zero
        upstream.setFailing(false)
        _ = try await call()
        upstream.setFailing(true)
        clock.advance(by: .seconds(61))
        await #expect(throws: UpstreamFailure.self) { _ = try await call() }
    }
}

/// Two processes' worth of connector caches on one server share results and invalidations.
@Suite(.serialized) struct ConnectorCacheSharedTests {
    @Test func twoConnectorsShareResultsAndInvalidations() async throws {
        let server = try TestServer(.nova)
        defer { server.stop() }
        let (first, _) = try offlineManager(url: server.url + "/0")
        let (second, _) = try offlineManager(url: server.url + "/0")
        defer { first.shutdown(); second.shutdown() }
        _ = await first.waitUntilReady(timeout: .seconds(30))
        _ = await second.waitUntilReady(timeout: .seconds(30))
        let a = ConnectorCache(cache: first)
        let b = ConnectorCache(cache: second)
        let upstream = FakeUpstream()
        func call(_ connector: ConnectorCache) async throws -> [String] {
            try await connector.call(source: "crm", operation: "search", arguments: ["query": "ada"], policy: .customerSearch) {
                try await upstream.search("ada")
            }
        }
        _ = try await call(a)
        _ = try await call(b)  // from the server
        _ = try await call(b)  // from b's memory
        #expect(upstream.calls == 1)
        await a.invalidate(source: "crm")
        // b's memory copy is dropped too (coherence), so b asks the upstream again.
        #expect(try await eventually { _ = try await call(b); return upstream.calls == 2 })
    }
}
