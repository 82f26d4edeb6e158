import Testing
@testable import NovaObservability

@Suite("Alerts")
struct AlertMonitorTests {
    func sample(
        at time: Double, used: Int = 0, max: Int = 1000, hits: Int = 0, misses: Int = 0, rejected: Int = 0,
        saveFailed: Bool = false, aofFailed: Bool = false
    ) -> AlertSample {
        AlertSample(
            time: time, wallTime: 1_700_000_000 + time, usedMemory: used, maxMemory: max, keyspaceHits: hits,
            keyspaceMisses: misses, rejectedConnections: rejected, lastBackgroundSaveFailed: saveFailed, aofWriteFailed: aofFailed)
    }

    @Test("memory fires once at the level and resolves only below 95% of it")
    func memory() throws {
        var monitor = AlertMonitor(rules: AlertRules(memory: MemoryThreshold(parsing: "90%")))
        #expect(monitor.evaluate(sample(at: 0, used: 899)).isEmpty)
        let fired = monitor.evaluate(sample(at: 1, used: 900))
        guard case .fired(let alert)? = fired.first else { Issue.record("not fired: \(fired)"); return }
        #expect(alert.kind == .memory)
        #expect(alert.since == 1_700_000_001)
        #expect(alert.message.contains("90%"))
        // Still firing: no new transition, message kept current.
        #expect(monitor.evaluate(sample(at: 2, used: 990)).isEmpty)
        #expect(monitor.firing[.memory]?.since == 1_700_000_001)
        // Between 95% of the level (855) and the level: stays.
        #expect(monitor.evaluate(sample(at: 3, used: 880)).isEmpty)
        let message = try #require(monitor.firing[.memory]?.message)
        #expect(monitor.evaluate(sample(at: 4, used: 854)) == [.resolved(.memory, message: message)])
        #expect(monitor.firing.isEmpty)
    }

    @Test("a share of maxmemory says nothing without maxmemory; an amount works without it")
    func memoryWithoutLimit() {
        var share = AlertMonitor(rules: AlertRules(memory: MemoryThreshold(parsing: "50%")))
        #expect(share.evaluate(sample(at: 0, used: 1 << 40, max: 0)).isEmpty)
        var amount = AlertMonitor(rules: AlertRules(memory: MemoryThreshold(parsing: "1mb")))
        #expect(amount.evaluate(sample(at: 0, used: 1 << 20, max: 0)).count == 1)
    }

    @Test("hit ratio is measured over the window and needs enough lookups")
    func hitRatio() {
        var monitor = AlertMonitor(rules: AlertRules(minimumHitRatio: 0.8, hitRatioWindowSeconds: 60))
        // A long good history: 1000 hits, 0 misses.
        #expect(monitor.evaluate(sample(at: 0, hits: 0, misses: 0)).isEmpty)
        #expect(monitor.evaluate(sample(at: 30, hits: 1000, misses: 0)).isEmpty)
        // 50 lookups, all misses: under the minimum of 100 lookups, nothing is said.
        #expect(monitor.evaluate(sample(at: 40, hits: 1000, misses: 50)).isEmpty)
        // Past the window the old hits drop out: 0 hits for 300 misses within 60 s.
        let fired = monitor.evaluate(sample(at: 95, hits: 1000, misses: 350))
        #expect(fired.count == 1)
        #expect(monitor.firing[.hitRatio]?.message.contains("below 80.0%") == true)
        // Good traffic again: over the window hits dominate.
        #expect(monitor.evaluate(sample(at: 200, hits: 5000, misses: 360)).count == 1)
        #expect(monitor.firing[.hitRatio] == nil)
    }

    @Test("counters that go down (CONFIG RESETSTAT) restart the window instead of firing")
    func reset() {
        var monitor = AlertMonitor(rules: AlertRules(minimumHitRatio: 0.5, hitRatioWindowSeconds: 60))
        _ = monitor.evaluate(sample(at: 0, hits: 100_000, misses: 0, rejected: 10))
        #expect(monitor.evaluate(sample(at: 1, hits: 0, misses: 0, rejected: 0)).isEmpty)
        #expect(monitor.evaluate(sample(at: 2, hits: 500, misses: 10, rejected: 0)).isEmpty)
    }

    @Test("rejected connections fire within the window and resolve after it")
    func rejected() {
        var monitor = AlertMonitor(rules: AlertRules())
        #expect(monitor.evaluate(sample(at: 0, rejected: 5)).isEmpty)
        #expect(monitor.evaluate(sample(at: 10, rejected: 7)).count == 1)
        #expect(monitor.firing[.rejectedConnections]?.message.hasPrefix("2 connections rejected") == true)
        #expect(monitor.evaluate(sample(at: 50, rejected: 7)).isEmpty)
        #expect(monitor.evaluate(sample(at: 71, rejected: 7)).count == 1)
        #expect(monitor.firing.isEmpty)
    }

    @Test("save and AOF failures fire while they last; disabled rules never fire")
    func persistence() {
        var monitor = AlertMonitor(rules: AlertRules())
        #expect(monitor.evaluate(sample(at: 0, saveFailed: true, aofFailed: true)).count == 2)
        #expect(monitor.active.map(\.kind) == [.backgroundSave, .aofWrite])
        #expect(monitor.evaluate(sample(at: 1)).count == 2)
        var rules = AlertRules()
        rules.backgroundSave = false
        rules.aofWrite = false
        rules.rejectedConnections = false
        var quiet = AlertMonitor(rules: rules)
        #expect(quiet.evaluate(sample(at: 0, used: 1 << 40, rejected: 9, saveFailed: true, aofFailed: true)).isEmpty)
        #expect(quiet.evaluate(sample(at: 1, used: 1 << 40, rejected: 99, saveFailed: true, aofFailed: true)).isEmpty)
    }

    @Test("turning a rule off resolves its alert")
    func ruleChange() {
        var monitor = AlertMonitor(rules: AlertRules(memory: MemoryThreshold(parsing: "10%")))
        #expect(monitor.evaluate(sample(at: 0, used: 500)).count == 1)
        monitor.rules.memory = nil
        #expect(monitor.evaluate(sample(at: 1, used: 500)).count == 1)
        #expect(monitor.firing.isEmpty)
    }
}
