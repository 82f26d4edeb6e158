import Testing

import NIOCore
import NovaEngine
@testable import NovaServer

/// The server features' own state, without a server: each type keeps its tables and the clients' own
/// fields in step.
@Suite("Server features: client registry, pub/sub, blocking, tracking, WATCH")
struct FeatureStateTests {
    private static let user = ACLUser(name: "default", commandCount: 0)

    private func client(_ id: UInt64) -> ClientState {
        ClientState(id: id, connection: nil, address: "127.0.0.1:\(id)", localAddress: "127.0.0.1:6379", now: 0, user: Self.user)
    }

    private func bytes(_ text: String) -> Bytes { Bytes(text) }

    @Test func clientIDsIncreaseAndAreNeverReused() {
        var registry = ClientRegistry()
        let a = registry.add { client($0) }
        let b = registry.add { client($0) }
        #expect(a.id == 1 && b.id == 2 && registry.count == 2)
        registry.remove(a)
        #expect(registry[1] == nil && registry[2] === b)
        let c = registry.add { client($0) }
        #expect(c.id == 3 && registry.count == 2)
        #expect(Set(registry.all.map(\.id)) == [2, 3])
    }

    @Test func publishReachesChannelsThenPatternsInSubscriptionOrder() {
        var pubsub = PubSubRegistry()
        let a = client(1), b = client(2), c = client(3)
        let added = [pubsub.subscribe(a, channel: bytes("news")), pubsub.subscribe(a, channel: bytes("news")),
                     pubsub.subscribe(b, channel: bytes("news")), pubsub.subscribe(c, pattern: bytes("n*")),
                     pubsub.subscribe(a, pattern: bytes("*s")), pubsub.subscribe(b, pattern: bytes("x*"))]
        #expect(added == [true, false, true, true, true, true])
        var deliveries: [(UInt64, String?)] = []
        let count = pubsub.forEachReceiver(of: bytes("news")) { client, pattern in
            deliveries.append((client.id, pattern.map { String(decoding: $0.array, as: UTF8.self) }))
        }
        #expect(count == 4)
        #expect(deliveries.map(\.0) == [1, 2, 3, 1])
        #expect(deliveries.map(\.1) == [nil, nil, "n*", "*s"])
        #expect(pubsub.subscriberCount(bytes("news")) == 2 && pubsub.patternCount == 3)
        #expect(a.channels.count == 1 && a.patterns.count == 1)

        pubsub.unsubscribeAll(a)
        #expect(a.channels.isEmpty && a.patterns.isEmpty)
        #expect(pubsub.subscriberCount(bytes("news")) == 1 && pubsub.patternCount == 2)
        let removed = [pubsub.unsubscribe(a, channel: bytes("news")), pubsub.unsubscribe(b, channel: bytes("news"))]
        #expect(removed == [false, true])
        #expect(pubsub.channels.isEmpty)
    }

    @Test func blockedClientsAreServedInBlockingOrderAndTimedOut() throws {
        var blocking = BlockingQueues()
        let table = CommandTable(CommandRegistry.all)
        let spec = try #require(table.lookup(ByteBuffer(string: "blpop")))
        let key = DatabaseKey(database: 0, key: bytes("jobs"))
        let other = DatabaseKey(database: 0, key: bytes("other"))
        let a = client(1), b = client(2)
        func park(_ client: ClientState, _ keys: [DatabaseKey], deadline: Int64?) {
            blocking.add(BlockedCommand(client: client, database: 0, keys: keys, arguments: [], spec: spec, deadline: deadline))
        }
        park(a, [key, key, other], deadline: 100)
        park(b, [key], deadline: nil)
        #expect(a.isBlocked && b.isBlocked && blocking.count == 2)
        #expect(blocking.waiting(on: key).map(\.client.id) == [1, 2])  // a key given twice queues once

        #expect(!blocking.hasReadyKeys)
        blocking.signal(DatabaseKey(database: 1, key: bytes("jobs")))  // nobody waits there
        #expect(!blocking.hasReadyKeys)
        blocking.signal(other)
        blocking.signal(key)
        blocking.signal(other)
        let ready = blocking.takeReadyKeys()
        #expect(ready == [other, key])
        #expect(!blocking.hasReadyKeys)

        #expect(blocking.timedOut(at: 99).isEmpty)
        #expect(blocking.timedOut(at: 100).map(\.id) == [1])
        let removedFirst = blocking.remove(a), removedAgain = blocking.remove(a)
        #expect(removedFirst != nil && removedAgain == nil && !a.isBlocked)
        #expect(blocking.waiting(on: key).map(\.client.id) == [2])
        #expect(blocking.waiting(on: other).isEmpty && blocking.waitedKeys(in: 0) == [bytes("jobs")])
        blocking.remove(b)
        #expect(!blocking.isWaiting && blocking.count == 0)
    }

    @Test func trackingRemembersReadersOnceAndBroadcastsByPrefix() {
        var tracking = TrackingTable()
        let reader = client(1), broadcaster = client(2), optIn = client(3)
        tracking.enable(reader, TrackingState(), prefixes: [])
        var bcast = TrackingState()
        bcast.broadcast = true
        tracking.enable(broadcaster, bcast, prefixes: [bytes("user:"), bytes("cfg:")])
        var optInOptions = TrackingState()
        optInOptions.optIn = true
        tracking.enable(optIn, optInOptions, prefixes: [])
        #expect(tracking.clientCount == 3 && tracking.prefixCount == 2)

        tracking.remember([bytes("user:1"), bytes("x")], readBy: reader)
        tracking.remember([bytes("user:1")], readBy: broadcaster)  // BCAST clients are not told per key
        tracking.remember([bytes("x")], readBy: optIn)             // OPTIN without CACHING YES
        #expect(tracking.keyCount == 2 && tracking.itemCount == 2)

        // MSET user:1 user:2 x by client 1: reader 1 is told of user:1 at once; the BCAST client gets
        // one message for its prefix with both keys, in byte order, after the batch.
        let readers = [tracking.keyChanged(bytes("user:2"), by: 1), tracking.keyChanged(bytes("user:1"), by: 1),
                       tracking.keyChanged(bytes("x"), by: 1), tracking.keyChanged(bytes("user:1"), by: 7)]
        #expect(readers == [[], [1], [1], []])
        #expect(tracking.hasPendingBroadcasts)
        let broadcasts = tracking.takeBroadcasts()
        #expect(broadcasts.count == 1 && broadcasts[0].clients == [2])
        #expect(broadcasts[0].keys.map(\.key) == [bytes("user:1"), bytes("user:2")])
        #expect(broadcasts[0].keys.map(\.modifier) == [7, 1])  // the last writer counts (NOLOOP)
        #expect(!tracking.hasPendingBroadcasts && tracking.takeBroadcasts().isEmpty)
        #expect(tracking.keyChanged(bytes("user:1"), by: 1).isEmpty)  // told once until read again

        tracking.forgetAllKeys()
        #expect(tracking.keyCount == 0)
        tracking.disable(broadcaster)
        #expect(broadcaster.tracking == nil && tracking.prefixCount == 0 && tracking.clientCount == 2)
        #expect(tracking.isEmpty)
    }

    @Test func watchedKeysInvalidateTheirWatchers() {
        var watches = WatchTable()
        let a = client(1), b = client(2)
        let key = DatabaseKey(database: 0, key: bytes("k"))
        let stale = DatabaseKey(database: 0, key: bytes("stale"))
        watches.watch(a, key, expired: false)
        watches.watch(b, stale, expired: true)
        #expect(!watches.isEmpty && a.watchedKeys.count == 1)

        // An already-expired key deleted: no logical change; written again: a change.
        watches.keyChanged(stale, present: false)
        #expect(!b.watchInvalidated)
        watches.keyChanged(stale, present: true)
        #expect(b.watchInvalidated)

        watches.keyChanged(DatabaseKey(database: 1, key: bytes("k")), present: true)
        #expect(!a.watchInvalidated)
        watches.databaseReplaced(0) { _ in (now: false, after: false) }
        #expect(!a.watchInvalidated)
        watches.databaseReplaced(0) { name in (now: name == bytes("k"), after: false) }
        #expect(a.watchInvalidated)

        watches.unwatchAll(a)
        watches.unwatchAll(b)
        #expect(watches.isEmpty && a.watchedKeys.isEmpty && !a.watchInvalidated)
    }

    @Test func slowLogKeepsTheNewestEntriesWithRedisTruncation() {
        var log = SlowLog()
        func record(_ words: [String], microseconds: Int64, threshold: Int = 10, maxLength: Int = 3) {
            log.record(Arguments(words.map { ByteBuffer(string: $0) }), redacted: [], microseconds: microseconds,
                       threshold: threshold, maxLength: maxLength, time: 1, peer: "p", clientName: "")
        }
        record(["GET", "fast"], microseconds: 9)
        record(["GET", "off"], microseconds: 500, threshold: -1)
        #expect(log.entries.isEmpty)
        for index in 0..<5 { record(["SET", "k\(index)", "v"], microseconds: 10) }
        #expect(log.entries.map(\.id) == [4, 3, 2])  // newest first, at most maxLength
        record(["RPUSH", "list"] + (0..<40).map(String.init), microseconds: 50)
        #expect(log.entries[0].arguments.count == 32)
        #expect(log.entries[0].arguments.last == Array("... (11 more arguments)".utf8))
        record(["SET", "k", String(repeating: "x", count: 130)], microseconds: 50)
        #expect(log.entries[0].arguments[2] == Array((String(repeating: "x", count: 128) + "... (2 more bytes)").utf8))
        let redacted = SlowLog.kept(Arguments([ByteBuffer(string: "AUTH"), ByteBuffer(string: "pw")]), redacted: [1])
        #expect(redacted == [Array("AUTH".utf8), Array("(redacted)".utf8)])
        log.reset()
        #expect(log.entries.isEmpty)
        record(["PING"], microseconds: 10)
        #expect(log.entries.map(\.id) == [7])  // IDs go on after a reset
    }
}
