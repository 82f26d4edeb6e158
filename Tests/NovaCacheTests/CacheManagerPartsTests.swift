import NIOCore
@testable import NovaCache
import NovaClient
import NovaRESP
import Testing

/// A seeded generator (SplitMix64): the same jitter on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64 = 20_261_201
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The outage circuit as a pure state machine, driven by a manual clock.
@Suite struct RemoteCircuitTests {
    let clock = ManualCacheClock()
    var generator = SeededGenerator()

    func makeCircuit() -> RemoteCircuit {
        RemoteCircuit(firstProbeAfter: .milliseconds(200), maximumProbeInterval: .seconds(2))
    }

    @Test mutating func firstFailureOpensOnceAndWarnsOnce() {
        var circuit = makeCircuit()
        #expect(circuit.status == .connecting && circuit.allowsRemoteCalls && !circuit.journalsWrites)
        let start = clock.nowMilliseconds()
        let actions = circuit.failed(.unreachable("refused"), at: start, using: &generator)
        #expect(actions == [.startRecovery, .warnUnreachable("refused")])
        #expect(circuit.status == .unavailable(reason: "refused"))
        #expect(!circuit.allowsRemoteCalls && circuit.journalsWrites)
        #expect((start + 100...start + 200).contains(circuit.nextProbeAt))
        // More failures in the same outage: no second recovery task, no second warning.
        let outcome1 = circuit.failed(.unreachable("timeout"), at: start + 5, using: &generator)
        #expect(outcome1.isEmpty)
        #expect(circuit.status == .unavailable(reason: "timeout"))
    }

    @Test mutating func probesBackOffButNeverBeyondTheMaximum() {
        var circuit = makeCircuit()
        _ = circuit.failed(.unreachable("refused"), at: clock.nowMilliseconds(), using: &generator)
        var waits: [Int64] = []
        for _ in 0..<8 {
            clock.advance(by: .milliseconds(circuit.nextProbeAt - clock.nowMilliseconds()))
            let outcome2 = circuit.probeFailed(.unreachable("refused"), at: clock.nowMilliseconds(), using: &generator)
            #expect(outcome2.isEmpty)
            waits.append(circuit.nextProbeAt - clock.nowMilliseconds())
        }
        // Full jitter: each wait is in [ceiling/2, ceiling], the ceiling doubling from 400 ms up to 2 s.
        for (wait, ceiling) in zip(waits, [400, 800, 1600, 2000, 2000, 2000, 2000, 2000] as [Int64]) {
            #expect((ceiling / 2...ceiling).contains(wait), "\(waits)")
        }
        #expect(circuit.failedProbes == 8)
    }

    @Test mutating func recoveryReplaysUntilTheJournalIsEmptyThenCloses() {
        var circuit = makeCircuit()
        let opened = clock.nowMilliseconds()
        _ = circuit.failed(.unreachable("refused"), at: opened, using: &generator)
        clock.advance(by: .seconds(30))
        let outcome3 = circuit.probeSucceeded()
        #expect(outcome3)
        #expect(circuit.phase == .replaying && !circuit.allowsRemoteCalls && circuit.journalsWrites)
        // Writes arrived during the replay: another round.
        let outcome4 = circuit.replayFinished(journalEmpty: false, at: clock.nowMilliseconds())
        #expect(outcome4.isEmpty)
        #expect(circuit.phase == .replaying)
        clock.advance(by: .milliseconds(40))
        let outcome5 = circuit.replayFinished(journalEmpty: true, at: clock.nowMilliseconds())
        #expect(outcome5 == [.announceRecovery(outageMilliseconds: 30_040)])
        #expect(circuit.status == .available && circuit.allowsRemoteCalls && circuit.failure == nil)
        // The next outage warns again.
        let outcome6 = circuit.failed(.unreachable("again"), at: clock.nowMilliseconds(), using: &generator)
        #expect(outcome6 == [.startRecovery, .warnUnreachable("again")])
    }

    @Test mutating func aFailedReplayGoesBackToProbing() {
        var circuit = makeCircuit()
        _ = circuit.failed(.unreachable("refused"), at: clock.nowMilliseconds(), using: &generator)
        let outcome7 = circuit.probeSucceeded()
        #expect(outcome7)
        let outcome8 = circuit.probeFailed(.unreachable("reset"), at: clock.nowMilliseconds(), using: &generator)
        #expect(outcome8.isEmpty)
        #expect(circuit.phase == .open && (200...400).contains(circuit.nextProbeAt - clock.nowMilliseconds()))
        let outcome9 = circuit.probeSucceeded()
        #expect(outcome9 && circuit.phase == .replaying)
    }

    @Test mutating func misconfigurationIsReportedOncePerReason() {
        var circuit = makeCircuit()
        let now = clock.nowMilliseconds()
        let noauth = "NOAUTH Authentication required."
        let outcome10 = circuit.failed(.misconfigured(noauth), at: now, using: &generator)
        #expect(outcome10 == [.startRecovery, .reportMisconfigured(noauth)])
        #expect(circuit.status == .misconfigured(reason: noauth))
        let outcome11 = circuit.probeFailed(.misconfigured(noauth), at: now, using: &generator)
        #expect(outcome11.isEmpty)
        let outcome12 = circuit.failed(.misconfigured(noauth), at: now, using: &generator)
        #expect(outcome12.isEmpty)
        let wrongpass = "WRONGPASS invalid username-password pair or user is disabled."
        let outcome13 = circuit.probeFailed(.misconfigured(wrongpass), at: now, using: &generator)
        #expect(outcome13 == [.reportMisconfigured(wrongpass)])
        // Unreachable after misconfigured: the outage was already announced (as an error).
        let outcome14 = circuit.probeFailed(.unreachable("refused"), at: now, using: &generator)
        #expect(outcome14 == [.warnUnreachable("refused")])
        #expect(circuit.status == .unavailable(reason: "refused"))
    }

    @Test mutating func shutDownIgnoresEverything() {
        var circuit = makeCircuit()
        circuit.shutDown()
        let outcome15 = circuit.failed(.unreachable("x"), at: 0, using: &generator)
        #expect(outcome15.isEmpty)
        let probed = circuit.probeSucceeded()
        #expect(!probed)
        #expect(circuit.status == .shutDown && !circuit.allowsRemoteCalls)
    }

    @Test func errorRepliesAreClassified() {
        func failure(_ text: String) -> RemoteFailure? { RemoteFailure(reply: RedisError(text)) }
        for text in [
            "WRONGPASS invalid username-password pair or user is disabled.", "NOAUTH Authentication required.",
            "NOPERM this user has no permissions to access one of the keys used as arguments",
            "ERR DB index is out of range", "READONLY You can't write against a read only replica.",
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ] {
            #expect(failure(text) == .misconfigured(text))
        }
        #expect(failure("LOADING Redis is loading the dataset in memory") == .unreachable("LOADING Redis is loading the dataset in memory"))
        #expect(failure("WRONGTYPE Operation against a key holding the wrong kind of value") == nil)
        #expect(failure("OOM command not allowed when used memory > 'maxmemory'.") == nil)
    }
}

@Suite struct OutageJournalTests {
    @Test func keepsTheLatestWritePerKeyUpToCapacity() {
        var journal = OutageJournal(capacity: 2)
        let outcome16 = journal.record("a", .delete(at: 1))
        #expect(outcome16 == .kept)
        let outcome17 = journal.record("a", .set(payload: [1], slidingMilliseconds: 0, expireAt: 0, writtenAt: 2, tags: []))
        #expect(outcome17 == .kept)
        let outcome18 = journal.record("b", .delete(at: 3))
        #expect(outcome18 == .kept)
        let outcome19 = journal.record("c", .delete(at: 4))
        #expect(outcome19 == .dropped(firstTime: true))
        let outcome20 = journal.record("d", .delete(at: 5))
        #expect(outcome20 == .dropped(firstTime: false))
        let outcome21 = journal.record("b", .delete(at: 6))
        #expect(outcome21 == .kept)  // a key already journalled is replaced
        #expect(journal.count == 2 && journal.writes["a"]?.time == 2 && journal.writes["b"]?.time == 6)
    }

    @Test func clearsDropTheWritesTheyCoverAndRestoreKeepsNewerWrites() {
        var journal = OutageJournal(capacity: 10)
        _ = journal.record("crm:a", .delete(at: 1))
        _ = journal.record("crm:b", .delete(at: 1))
        _ = journal.record("erp:a", .delete(at: 1))
        journal.recordClear(prefix: "crm:", at: 2)
        #expect(Set(journal.writes.keys) == ["erp:a"] && journal.count == 2)
        let batch = journal.take()
        #expect(journal.isEmpty && batch.writes.count == 1 && batch.clears.count == 1)
        _ = journal.record("erp:a", .delete(at: 9))  // written while the replay ran
        journal.restore(batch)
        #expect(journal.writes["erp:a"]?.time == 9 && journal.clears.count == 1)
    }
}

@Suite struct StoredFormatTests {
    func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    @Test func plainValuesCarryTheirMetadataInTheCompanionKey() throws {
        let entry = RemoteEntry(payload: Array(#"{"id":42}"#.utf8), writtenAt: 1_700_000_000_123, slidingMilliseconds: 1_800_000)
        let commands = entry.writeCommands("crm:c", KeyLayout(prefix: "crm:"), format: .plain, ttlMilliseconds: 5000)
        #expect(commands.map(\.name) == ["SET", "SET"])
        #expect(commands[0].arguments.count == 5)  // SET, key, the JSON itself, PX, 5000
        #expect(commands[1].arguments[1] == .string("crm:__novacache__:m:c"))
        guard case .bytes(let stored) = commands[0].arguments[2], case .string(let meta) = commands[1].arguments[2] else {
            Issue.record("unexpected arguments \(commands)")
            return
        }
        #expect(stored == Array(#"{"id":42}"#.utf8))
        #expect(RemoteEntry(value: bulk(#"{"id":42}"#), meta: bulk(meta)) == entry)
        // Another program replaced the value: the metadata no longer describes it.
        let foreign = try #require(RemoteEntry(value: bulk(#"{"id":43}"#), meta: bulk(meta)))
        #expect(!foreign.isOurs && foreign.writtenAt == 0 && foreign.slidingMilliseconds == 0)
        #expect(RemoteEntry(value: .null, meta: bulk(meta)) == nil)
        #expect(RemoteEntry(value: bulk("x"), meta: bulk("garbage"))?.isOurs == false)
    }

    @Test func metadataKeysSitInsideTheNamespace() {
        let layout = KeyLayout(prefix: "crm:")
        #expect(layout.metaKey("crm:customer:42") == "crm:__novacache__:m:customer:42")
        #expect(layout.isMetaKey("crm:__novacache__:m:customer:42") && !layout.isMetaKey("crm:customer:42"))
        #expect(layout.valueKey(ofMeta: "crm:__novacache__:m:customer:42") == "crm:customer:42")
        #expect(layout.tagKey("eu") == "crm:__novacache__:t:eu" && layout.isReserved("crm:__novacache__:t:eu"))
        #expect(!layout.isMetaKey(layout.tagKey("m")) && layout.metaKey("crm:t:x") != layout.tagKey("x"))
        #expect(layout.scanPatterns(clearing: "crm:") == ["crm:*"])
        #expect(layout.scanPatterns(clearing: "crm:e*u:") == ["crm:e\\*u:*", "crm:__novacache__:m:e\\*u:*"])
        #expect(layout.clears("crm:__novacache__:m:eu:1", prefix: "crm:eu:") && !layout.clears("crm:__novacache__:m:us:1", prefix: "crm:eu:"))
        let bare = KeyLayout(prefix: "")
        #expect(bare.metaKey("k") == "__novacache__:m:k" && bare.valueKey(ofMeta: "__novacache__:m:k") == "k")
    }

    /// On a cluster a value and its metadata are written in one transaction: they must share a hash slot.
    @Test func clusterMetadataKeysShareTheirValuesSlot() {
        let layout = KeyLayout(prefix: "crm:", slotTagged: true)
        for key in ["crm:customer:42", "crm:{tenant7}:orders", "crm:a}b{", "crm:eu:x", "crm:"] {
            let meta = layout.metaKey(key)
            #expect(HashSlot.of(meta) == HashSlot.of(key), "\(key) → \(meta)")
            #expect(layout.isMetaKey(meta) && layout.valueKey(ofMeta: meta) == key)
        }
        #expect(layout.metaKey("crm:customer:42").hasPrefix("crm:__novacache__:m:{"))
        #expect(layout.scanPatterns(clearing: "crm:eu:") == ["crm:eu:*", "crm:__novacache__:m:{*}eu:*"])
        #expect(layout.clears(layout.metaKey("crm:eu:9"), prefix: "crm:eu:") && !layout.clears(layout.metaKey("crm:us:9"), prefix: "crm:eu:"))
        // Every slot has a tag that hashes to it.
        #expect((0..<HashSlot.count).allSatisfy { HashSlot.of("{" + HashSlot.tag(forSlot: $0) + "}") == $0 })
    }

    @Test func envelopeValuesAreReadByEitherFormat() {
        let entry = RemoteEntry(payload: Array("[1,2]".utf8), writtenAt: 17, slidingMilliseconds: 0)
        let commands = entry.writeCommands("k", KeyLayout(prefix: ""), format: .envelope, ttlMilliseconds: nil)
        #expect(commands.count == 1 && commands[0].arguments.count == 3)
        guard case .bytes(let stored) = commands[0].arguments[2] else { Issue.record("no bytes"); return }
        #expect(stored.count == CacheEnvelope.headerSize + 5)
        #expect(RemoteEntry(value: .bulkString(ByteBuffer(bytes: stored)), meta: .null) == entry)
    }
}

@Suite struct TagJournalTests {
    @Test func aTagInvalidationDropsTheJournalledWritesWithThatTag() {
        var journal = OutageJournal(capacity: 10)
        _ = journal.record("a", .set(payload: [1], slidingMilliseconds: 0, expireAt: 0, writtenAt: 1, tags: ["x"]))
        _ = journal.record("b", .set(payload: [2], slidingMilliseconds: 0, expireAt: 0, writtenAt: 1, tags: ["y"]))
        journal.recordTagInvalidation("x", at: 2)
        #expect(Set(journal.writes.keys) == ["b"] && journal.count == 2)
        let batch = journal.take()
        #expect(batch.tagInvalidations == [OutageJournal.TagInvalidation(tag: "x", at: 2)])
        journal.restore(batch)
        #expect(journal.tagInvalidations.count == 1)
    }

    @Test func theLocalIndexIsBounded() {
        let index = LocalTagIndex(limit: 3)
        index.add("k1", to: ["big"])
        index.add("k2", to: ["big"])
        index.add("k3", to: ["small"])
        index.add("k4", to: ["big"])  // 4 > 3: the largest list goes
        #expect(index.remove("big").isEmpty && index.remove("small") == ["k3"])
    }
}
