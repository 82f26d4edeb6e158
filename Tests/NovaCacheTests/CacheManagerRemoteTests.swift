import Foundation
@testable import NovaCache
import NovaClient
import NovaRESP
import NovaTestSupport
import Testing

/// The project's Python with redis-py (`scripts/install-test-deps` creates `.venv`).
func runPython(_ script: String, _ arguments: [String] = []) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let venv = root.appendingPathComponent(".venv/bin/python").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/python3")
    process.arguments = ["-c", script] + arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    let problems = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestServerError("python failed (redis-py missing? run scripts/install-test-deps): \(String(decoding: problems, as: UTF8.self))")
    }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Issue 20: what happens when the remote refuses, expires or comes back, and what other languages see.
@Suite(.serialized) struct CacheManagerRemoteTests {
    /// Bug 1: a configuration the server refuses is loud (one error line, `waitUntilReady`, status,
    /// statistics), and the manager recovers by itself once the operator fixes the server.
    @Test(arguments: TestServer.Kind.allCases)
    func aRefusedConfigurationIsReportedAndRecoversWhenFixed(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind, arguments: ["--requirepass", "s3cret"])
        let host = "127.0.0.1:\(server.port)"
        for (url, expected) in [
            ("redis://\(host)/1", "NOAUTH"), ("redis://:wrong@\(host)/1", "WRONGPASS"), ("redis://:s3cret@\(host)/99", "DB index is out of range"),
        ] {
            let log = LogCapture()
            let cache = try makeManager(url, log: log)
            defer { cache.shutdown() }
            let status = await cache.waitUntilReady(timeout: .seconds(30))
            guard case .misconfigured(let reason) = status, reason.contains(expected) else {
                Issue.record("\(url): \(status), expected misconfigured with \(expected)")
                continue
            }
            for index in 0..<5 { try await cache.set("k\(index)", index) }
            #expect(try await cache.get("k1", as: Int.self) == 1)  // memory still answers
            try await Task.sleep(for: .milliseconds(300))  // several probes fail meanwhile
            let stats = cache.statistics
            #expect(!cache.isRemoteAvailable && stats.misconfigured && stats.fallbackActive && stats.remoteErrors >= 1, "\(stats)")
            #expect(stats.pendingReplays == 5)
            #expect(log.count("refuses this configuration") == 1, "\(log.lines.withLock { $0 })")
            #expect(log.lines.withLock { $0.contains { $0.hasPrefix("error ") && $0.contains(expected) } })
            #expect(!log.contains("s3cret") && !log.contains(":wrong@"))
        }
        // The operator drops the password: the manager notices, replays and serves from the remote.
        let log = LogCapture()
        let cache = try makeManager("redis://\(host)/1", log: log)
        defer { cache.shutdown() }
        guard case .misconfigured = await cache.waitUntilReady(timeout: .seconds(30)) else { Issue.record("not misconfigured"); return }
        try await cache.set("during", "kept for replay")
        let admin = try RedisClient(url: "redis://:s3cret@\(host)/1")
        defer { admin.shutdown() }
        try await admin.send("CONFIG", "SET", "requirepass", "")
        #expect(await eventually(timeout: .seconds(3)) { cache.remoteStatus == .available })
        #expect(log.contains("normal service resumed"))
        #expect(try await admin.get("test:during").map { String(buffer: $0) } == "\"kept for replay\"")
        #expect(!cache.statistics.misconfigured)
    }

    /// Bug 1, NOPERM: an ACL user without access to the namespace's keys.
    @Test(arguments: TestServer.Kind.allCases)
    func keysOutsideTheUsersPermissionsAreAMisconfiguration(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let admin = try RedisClient(url: "\(server.url)/0")
        defer { admin.shutdown() }
        try await admin.send("ACL", "SETUSER", "app", "on", ">apppw", "~other:*", "&*", "+@all")
        let log = LogCapture()
        let cache = try makeManager("redis://app:apppw@127.0.0.1:\(server.port)/0", log: log)
        defer { cache.shutdown() }
        await cache.waitUntilReady(timeout: .seconds(30))
        try await cache.set("k", "v")
        // The server refuses the write (NOPERM). Under a loaded parallel test run the write can first
        // time out (the tests' remote timeout is 300 ms): the refusal then comes when the write is
        // replayed after the next probe, so the verdict is awaited rather than read at once.
        let refused = await eventually(timeout: .seconds(10)) {
            if case .misconfigured(let reason) = cache.remoteStatus { return reason.hasPrefix("NOPERM") }
            return false
        }
        guard refused else {
            Issue.record("status \(cache.remoteStatus)")
            return
        }
        #expect(log.count("refuses this configuration") == 1)
        try await admin.send("ACL", "SETUSER", "app", "~test:*")
        #expect(await eventually(timeout: .seconds(3)) { cache.isRemoteAvailable })
        #expect(try await admin.get("test:k").map { String(buffer: $0) } == "\"v\"")
    }

    /// Bug 2: the server's tracking invalidation on expiry must not take away the copy fail-safe needs;
    /// another writer's change must.
    @Test(arguments: TestServer.Kind.allCases)
    func expiryKeepsTheFailSafeCopyAnotherWriterDropsIt(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let a = try makeManager("\(server.url)/1") { $0.coherence = .tracking; $0.failSafeThrottle = .zero }
        let b = try makeManager("\(server.url)/1") { $0.coherence = .tracking }
        let raw = try RedisClient(url: "\(server.url)/1")
        defer { a.shutdown(); b.shutdown(); raw.shutdown() }
        #expect(await a.waitUntilReady(timeout: .seconds(30)) == .available)
        #expect(await b.waitUntilReady(timeout: .seconds(30)) == .available)
        let short = CachePolicy(name: "short", ttl: .milliseconds(300))
        #expect(try await a.getOrLoad("quote", policy: short) { "v1" } == "v1")
        #expect(try await a.getOrLoad("price", policy: short) { "p1" } == "p1")
        try await b.set("price", "p2", policy: short)
        #expect(await eventually(timeout: .milliseconds(500)) { a.memory.lookup(a.storedKey("price")) == nil })
        // Both expire on the server; a read there makes sure it deleted them (and sent the invalidations).
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await raw.exists(.string(a.storedKey("quote")), .string(a.storedKey("price"))) == 0)
        try await Task.sleep(for: .milliseconds(50))
        #expect(a.statistics.invalidations == 1)  // the price change; the expiry is not counted
        #expect(try await a.getOrLoad("quote", policy: short) { () async throws -> String in throw UpstreamDown() } == "v1")
        #expect(a.statistics.staleServed == 1)
        await #expect(throws: UpstreamDown.self) {
            _ = try await a.getOrLoad("price", policy: short) { () async throws -> String in throw UpstreamDown() }
        }
    }

    /// A server sends one BCAST invalidation per key per event-loop cycle, so the echo of our write may
    /// also stand for another writer's write of the same cycle, and two of our writes may come back as
    /// one (leaving a write "pending" whose echo never comes). Either way another writer's change must
    /// still reach the memory tier. Simulated deterministically: a pending own write without an echo of
    /// its own, then another writer's change.
    @Test(arguments: TestServer.Kind.allCases)
    func anotherWritersChangeBehindAnEchoOfOursStillInvalidates(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let a = try makeManager("\(server.url)/1") { $0.coherence = .tracking }
        let b = try makeManager("\(server.url)/1") { $0.coherence = .tracking }
        defer { a.shutdown(); b.shutdown() }
        #expect(await a.waitUntilReady(timeout: .seconds(30)) == .available)
        #expect(await b.waitUntilReady(timeout: .seconds(30)) == .available)
        try await a.set("price", "a1")
        try await Task.sleep(for: .milliseconds(200))  // its echo has come back
        #expect(a.memory.lookup(a.storedKey("price")) != nil)
        a.listener?.noteOwnWrite(a.storedKey("price"))  // a write of ours whose echo was merged into another
        try await b.set("price", "b1")
        #expect(await eventually(timeout: .seconds(3)) { a.memory.lookup(a.storedKey("price")) == nil })
        #expect(try await a.get("price", as: String.self) == "b1")
        // Our own write's echo alone leaves our copy in memory (checked against the server, not dropped).
        try await a.set("price", "a2")
        try await Task.sleep(for: .milliseconds(300))
        #expect(a.memory.lookup(a.storedKey("price")) != nil)
        #expect(a.statistics.invalidations == 1)
    }

    /// Bug 3: a server back after a long outage is noticed within `maxRecoveryInterval` (plus a probe's
    /// timeout), not after the connection pool's backoff of up to 10 s.
    @Test func recoveryIsNoticedWithinTheMaximumProbeInterval() async throws {
        let server = try TestServer(.nova)
        let cache = try makeManager("\(server.url)/1") {
            $0.recoveryInterval = .milliseconds(200)
            $0.maxRecoveryInterval = .seconds(1)
        }
        defer { cache.shutdown() }
        await cache.waitUntilReady(timeout: .seconds(30))
        server.stop()
        // The application keeps using the cache through a 4 s outage.
        let end = ContinuousClock.now + .seconds(4)
        var index = 0
        while ContinuousClock.now < end {
            try await cache.set("k\(index % 10)", index)
            _ = try await cache.get("k\(index % 10)", as: Int.self)
            index += 1
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(!cache.isRemoteAvailable)
        try server.start()
        let restarted = ContinuousClock.now
        #expect(await eventually(timeout: .seconds(10)) { cache.isRemoteAvailable })
        let noticed = ContinuousClock.now - restarted
        #expect(noticed < .milliseconds(1000 + 300 + 400), "noticed after \(noticed)")
        // Writes reach the server at once: the pool is not left waiting out its backoff.
        try await cache.set("after", 1)
        let raw = try RedisClient(url: "\(server.url)/1")
        defer { raw.shutdown() }
        #expect(try await raw.get(.string(cache.storedKey("after"))).map { String(buffer: $0) } == "1")
    }

    /// Interoperability: by default a value is exactly its JSON, read and written by redis-py.
    @Test(arguments: TestServer.Kind.allCases)
    func redisPyReadsAndWritesTheSameKeys(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let cache = try makeManager("\(server.url)/1") { $0.namespace = "crm" }
        defer { cache.shutdown() }
        #expect(await cache.waitUntilReady(timeout: .seconds(30)) == .available)
        try await cache.set("customer:42", Customer(id: 42, name: "Ada Lovelace"), policy: .customerSearch)
        let read = try runPython("""
            import json, sys, redis
            r = redis.Redis(port=int(sys.argv[1]), db=1)
            value = json.loads(r.get("crm:customer:42"))
            print(value["id"], value["name"], 3400 < r.ttl("crm:customer:42") <= 3780)
            r.set("crm:customer:7", json.dumps({"id": 7, "name": "Grace Hopper"}), ex=600)
            r.set("crm:customer:42", json.dumps({"id": 42, "name": "Ada King"}))
            """, ["\(server.port)"])
        #expect(read == "42 Ada Lovelace True")
        #expect(try await cache.get("customer:7", as: Customer.self) == Customer(id: 7, name: "Grace Hopper"))
        let loaded = try await cache.getOrLoad("customer:7", as: Customer.self) { Customer(id: 0, name: "loader called") }
        #expect(loaded.name == "Grace Hopper")
        // Python's overwrite reached this process through coherence.
        #expect(await eventually(timeout: .milliseconds(500)) {
            (try? await cache.get("customer:42", as: Customer.self))?.name == "Ada King"
        })
        // The envelope format stays available (and readable by every manager).
        let enveloped = try makeManager("\(server.url)/1") { $0.namespace = "crm"; $0.storedFormat = .envelope }
        defer { enveloped.shutdown() }
        try await enveloped.set("legacy", "x")
        let raw = try RedisClient(url: "\(server.url)/1")
        defer { raw.shutdown() }
        #expect(try await raw.get("crm:legacy").map { Array($0.readableBytesView.prefix(3)) } == [0x4E, 0x43, 0x01])
        #expect(try await cache.get("legacy", as: String.self) == "x")
    }
}

/// Churn: the server goes away and comes back again and again while writers keep writing; every final
/// value reaches it and the manager ends in normal service.
@Suite(.serialized) struct CacheManagerChurnTests {
    @Test func repeatedOutagesUnderWriteLoadLoseNothing() async throws {
        let server = try TestServer(.nova)
        let cache = try makeManager("\(server.url)/1")
        defer { cache.shutdown() }
        await cache.waitUntilReady(timeout: .seconds(30))
        let ended = Flag()
        let churn = Task {
            defer { Task { await ended.raise() } }
            for cycle in 0..<8 {
                try await Task.sleep(for: .milliseconds(400))  // long enough to recover in between
                if cycle % 2 == 0 { server.stop() } else { server.pause() }
                try await Task.sleep(for: .milliseconds(250))
                if cycle % 2 == 0 { try server.start() } else { server.resume() }
            }
        }
        // Writers keep writing through the churn (a killed server forgets what it had: the last round
        // after the churn is what must arrive).
        var round = 0
        while await !ended.raised, round < 100_000 {
            for key in 0..<20 { try await cache.set("churn:\(key)", round) }
            try await Task.sleep(for: .milliseconds(5))
            round += 1
        }
        try await churn.value
        for key in 0..<20 { try await cache.set("churn:\(key)", "final") }
        #expect(await eventually(timeout: .seconds(10)) { cache.isRemoteAvailable && cache.statistics.pendingReplays == 0 })
        let raw = try RedisClient(url: "\(server.url)/1")
        defer { raw.shutdown() }
        for key in 0..<20 {
            #expect(try await raw.get(.string(cache.storedKey("churn:\(key)"))).map { String(buffer: $0) } == "\"final\"", "churn:\(key)")
        }
        // The churn was seen (how many of its eight short outages a write fell into depends on scheduling:
        // on a loaded machine some pass between two writes).
        #expect(cache.statistics.outages >= 1, "\(cache.statistics)")
    }
}

/// A one-way signal between tasks.
actor Flag {
    private(set) var raised = false
    func raise() { raised = true }
}
