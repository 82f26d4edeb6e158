@testable import NovaCache
import Testing

@Suite struct MemoryTierTests {
    @Test func freshThenStaleThenGone() {
        let clock = ManualCacheClock()
        let tier = MemoryTier(clock: clock, maxStaleness: .seconds(60))
        let now = clock.nowMilliseconds()
        tier.store("k", .init(payload: [1, 2, 3], freshUntil: now + 10_000, writtenAt: now))
        #expect(tier.lookup("k")?.isFresh(at: clock.nowMilliseconds()) == true)
        #expect(tier.lookup("k")?.payload == [1, 2, 3])
        clock.advance(by: .seconds(11))
        let stale = tier.lookup("k")
        #expect(stale != nil && stale?.isFresh(at: clock.nowMilliseconds()) == false)
        clock.advance(by: .seconds(60))
        #expect(tier.lookup("k") == nil)
        #expect(tier.count == 0)
    }

    @Test func persistentEntriesNeverGoStale() {
        let clock = ManualCacheClock()
        let tier = MemoryTier(clock: clock)
        tier.store("k", .init(payload: [], freshUntil: 0, writtenAt: 1))
        clock.advance(by: .seconds(86400 * 365))
        #expect(tier.lookup("k")?.isFresh(at: clock.nowMilliseconds()) == true)
        #expect(tier.lookup("k")?.payload == [])
    }

    @Test func boundedByEntryCount() {
        let tier = MemoryTier(configuration: .init(maxEntries: 100, maxBytes: 1 << 30))
        for index in 0..<1000 { tier.store("key:\(index)", .init(payload: [UInt8](repeating: 7, count: 10), freshUntil: 0, writtenAt: 0)) }
        #expect(tier.count == 100)
        #expect(tier.evictions == 900)
    }

    @Test func boundedByBytes() {
        let tier = MemoryTier(configuration: .init(maxEntries: 1_000_000, maxBytes: 100_000))
        for index in 0..<1000 { tier.store("key:\(index)", .init(payload: [UInt8](repeating: 7, count: 1000), freshUntil: 0, writtenAt: 0)) }
        #expect(tier.bytes <= 100_000)
        #expect(tier.count > 50 && tier.count < 100)
    }

    @Test(arguments: [MemoryTier.Eviction.leastFrequentlyUsed, .leastRecentlyUsed])
    func hotKeysSurviveEviction(policy: MemoryTier.Eviction) {
        let clock = ManualCacheClock()
        let tier = MemoryTier(configuration: .init(maxEntries: 200, eviction: policy), clock: clock)
        for index in 0..<20 { tier.store("hot:\(index)", .init(payload: [1], freshUntil: 0, writtenAt: 0)) }
        for round in 0..<2000 {
            clock.advance(by: .milliseconds(1100))  // the LRU clock counts seconds
            for index in 0..<20 where round % 2 == 0 { _ = tier.lookup("hot:\(index)") }
            tier.store("cold:\(round)", .init(payload: [1], freshUntil: 0, writtenAt: 0))
        }
        let survivors = (0..<20).filter { tier.lookup("hot:\($0)") != nil }.count
        #expect(survivors >= 16, "\(policy): \(survivors) of 20 hot keys left")
    }

    /// The hot path assembles `prefix + key` on the stack from the strings' own UTF-8: small (inline) and
    /// large strings, non-ASCII text, empty halves and keys past the inline size all find the entry stored
    /// under the concatenation, and only that one.
    @Test(arguments: [("app:", "k"), ("", "k"), ("app:", ""), ("customer-search:v2:", "acme corporation gmbh"),
                      ("ünïcødé:", "клиент:42"), (String(repeating: "p", count: 300), String(repeating: "k", count: 700))])
    func prefixedZeroCopyLookup(prefix: String, key: String) {
        let tier = MemoryTier()
        let payload = Array("value of \(key)".utf8)
        tier.store(prefix + key, .init(payload: payload, freshUntil: 0, writtenAt: 7))
        tier.store(prefix + key + "x", .init(payload: [9], freshUntil: 0, writtenAt: 7))
        let value = tier.value(prefix: prefix, key: key, now: 1)
        #expect(value?.bytes == payload && value?.writtenAt == 7 && value?.count == payload.count)
        #expect(tier.value(prefix: prefix, key: key + "y", now: 1) == nil)
        #expect(tier.value(prefix: prefix + "/", key: key, now: 1) == nil)
    }

    /// The engine sits beside its lock (not inside a Mutex): readers, writers and removers on many threads
    /// at once never see a torn or foreign value, and the bounds hold afterwards.
    @Test func concurrentReadersAndWriters() async {
        let tier = MemoryTier(configuration: .init(maxEntries: 15_000))
        func payload(_ key: Int, _ version: Int) -> [UInt8] { Array("\(key):\(version)".utf8) }
        let wrong = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var wrong = 0
                    for step in 0..<100_000 {
                        let key = (step &* 7919 &+ worker &* 104_729) % 20_000
                        switch step % 4 {
                        case 0: tier.store("k\(key)", .init(payload: payload(key, step), freshUntil: 0, writtenAt: Int64(step)))
                        case 1: tier.remove("k\(key)")
                        default:
                            if let value = tier.value(prefix: "k", key: "\(key)", now: 1),
                               value.bytes != payload(key, Int(value.writtenAt)) {
                                wrong += 1
                            }
                        }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
        #expect(tier.count <= 15_000)
    }

    @Test func removeByPrefixAndExcept() {
        let tier = MemoryTier()
        for key in ["a:1", "a:2", "b:1", "b:2"] { tier.store(key, .init(payload: [0], freshUntil: 0, writtenAt: 0)) }
        tier.removeAll(prefix: "a:")
        #expect(tier.count == 2)
        tier.removeAll(except: ["b:2"])
        #expect(tier.lookup("b:2") != nil && tier.count == 1)
        #expect(tier.remove("b:2") && !tier.remove("b:2"))
    }

    @Test func envelopeRoundTripAndForeignValues() {
        let envelope = CacheEnvelope(writtenAt: 1_700_000_000_123, slidingMilliseconds: 1800_000, payload: Array("{\"a\":1}".utf8))
        let decoded = CacheEnvelope(decoding: envelope.encoded)
        #expect(decoded == envelope)
        let foreign = CacheEnvelope(decoding: Array("plain".utf8))
        #expect(!foreign.isOurs && foreign.payload == Array("plain".utf8) && foreign.writtenAt == 0)
    }

    @Test func policiesAndJitter() {
        #expect(CachePolicy.customerSearch.ttl == .seconds(3600))
        #expect(CachePolicy.productCatalogue.ttl == .seconds(3600))
        #expect(CachePolicy.userSession.ttl == .seconds(1800) && CachePolicy.userSession.sliding)
        #expect(CachePolicy.referenceData.ttl == .seconds(86400))
        var generator = SystemRandomNumberGenerator()
        let policy = CachePolicy(name: "j", ttl: .seconds(100), jitter: 0.1)
        let values = (0..<500).map { _ in policy.effectiveMilliseconds(using: &generator)! }
        #expect(values.allSatisfy { (90_000...110_000).contains($0) })
        #expect(Set(values).count > 100)
        #expect(CachePolicy(name: "n", ttl: nil).effectiveMilliseconds(using: &generator) == nil)
    }

    @Test func singleFlightRunsOnce() async throws {
        let flights = SingleFlight<[UInt8]>()
        let counter = Counter()
        let results = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<100 {
                group.addTask {
                    try await flights.run("k") {
                        await counter.increment()
                        try await Task.sleep(for: .milliseconds(100))
                        return [42]
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 100 && results.allSatisfy { $0 == [42] })
        #expect(await counter.value == 1)
        #expect(flights.running == 0)
    }
}

actor Counter {
    private(set) var value = 0
    @discardableResult
    func increment() -> Int {
        value += 1
        return value
    }
}
