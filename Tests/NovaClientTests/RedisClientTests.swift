import Foundation
import NIOCore
import NovaClient
import NovaRESP
import NovaTestSupport
import Testing

/// The client against nova-cache-server and Debian's redis-server 7.0.
@Suite(.serialized) struct RedisClientTests {
    @Test(arguments: TestServer.Kind.allCases, [2, 3])
    func stringsKeysHashes(kind: TestServer.Kind, resp: Int) async throws {
        let server = try TestServer(kind)
        let client = try RedisClient(url: "\(server.url)/2?protocol=\(resp)")
        defer { client.shutdown() }
        #expect(try await client.ping() == "PONG")
        #expect(try await client.set("k", "v1"))
        #expect(try await client.get("k").map { String(buffer: $0) } == "v1")
        #expect(try await client.set("k", "v2", condition: .ifAbsent) == false)
        #expect(try await client.set("k", .bytes([0, 255, 13, 10]), expiresIn: .seconds(100)))
        #expect(try await client.get("k").map { Array($0.readableBytesView) } == [0, 255, 13, 10])
        guard case .expiresIn(let left) = try await client.ttl("k") else { Issue.record("no ttl"); return }
        #expect(left > .seconds(98) && left <= .seconds(100))
        #expect(try await client.incr("n", by: 5) == 5)
        #expect(try await client.mget(["k", "missing", "n"]).map { $0.map { $0.readableBytes } } == [4, nil, 1])
        #expect(try await client.hset("h", [("a", "1"), ("b", "2")]) == 2)
        #expect(try await client.hgetall("h").mapValues { String(buffer: $0) } == ["a": "1", "b": "2"])
        #expect(try await client.hget("h", "a").map { String(buffer: $0) } == "1")
        #expect(try await client.hdel("h", "a", "zz") == 1)
        #expect(try await client.exists("k", "h", "nope") == 2)
        #expect(try await client.delete("k", "h", "nope") == 2)
        #expect(try await client.ttl("k") == .missing)
        // The URL's database was selected on the connection.
        #expect(try await client.send("CLIENT", "INFO").string?.contains("db=2") == true)
    }

    @Test(arguments: TestServer.Kind.allCases)
    func errorRepliesCarryTheirCode(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        try await client.hset("h", [("f", "v")])
        do {
            _ = try await client.get("h")
            Issue.record("no error")
        } catch let error as RedisError {
            #expect(error.code == "WRONGTYPE")
            #expect(error.message == "WRONGTYPE Operation against a key holding the wrong kind of value")
        }
        await #expect(throws: RedisError.self) { try await client.send("NOSUCHCOMMAND") }
        // The connection is still in step after errors.
        #expect(try await client.ping() == "PONG")
    }

    @Test(arguments: TestServer.Kind.allCases)
    func pipelinedRepliesStayInOrder(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let commands = (0..<2000).map { RedisCommand("INCR", .string("counter:\($0 % 7)")) } + [RedisCommand("HGET", "counter:0", "x")]
        let replies = try await client.pipeline(commands)
        var expected = [Int64](repeating: 0, count: 7)
        for index in 0..<2000 {
            expected[index % 7] += 1
            #expect(replies[index] == .integer(expected[index % 7]))
        }
        #expect(replies.last?.string == nil)
        if case .error(let text) = replies.last! { #expect(text.hasPrefix("WRONGTYPE")) } else { Issue.record("no error") }
    }

    @Test(arguments: TestServer.Kind.allCases)
    func manyConcurrentTasksShareThePool(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let client = RedisClient(url: try RedisURL(server.url), pool: .init(minimumConnections: 1, maximumConnections: 4))
        defer { client.shutdown() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<50 {
                group.addTask {
                    for index in 0..<100 {
                        let key = RedisArgument.string("t\(task):\(index)")
                        try await client.set(key, .integer(Int64(index)))
                        let value = try await client.get(key)
                        #expect(value.map { String(buffer: $0) } == "\(index)")
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(client.pool.openConnections <= 4)
        #expect(try await client.send("DBSIZE") == .integer(5000))
    }

    @Test(arguments: TestServer.Kind.allCases)
    func authenticationAndFallbackToRESP2(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind, arguments: ["--requirepass", "s3cr3t"])
        let denied = try RedisClient(url: server.url)
        defer { denied.shutdown() }
        do {
            _ = try await denied.ping()
            Issue.record("served without AUTH")
        } catch let error as RedisError {
            #expect(error.code == "NOAUTH")
        }
        let wrong = try RedisClient(url: "redis://:nope@127.0.0.1:\(server.port)")
        defer { wrong.shutdown() }
        await #expect(throws: RedisError.self) { try await wrong.ping() }
        for resp in [2, 3] {
            let client = try RedisClient(url: "redis://default:s3cr3t@127.0.0.1:\(server.port)/1?protocol=\(resp)")
            #expect(try await client.ping() == "PONG")
            let connection = try await RedisConnection.connect(to: client.url)
            #expect(connection.protocolVersion == resp)
            connection.close()
            client.shutdown()
        }
    }

    @Test(arguments: TestServer.Kind.allCases, [2, 3])
    func pubSubAsAsyncSequence(kind: TestServer.Kind, resp: Int) async throws {
        let server = try TestServer(kind)
        let client = try RedisClient(url: "\(server.url)?protocol=\(resp)")
        defer { client.shutdown() }
        let subscription = try await client.subscribe(channels: ["news"], patterns: ["orders.*"])
        #expect(try await client.publish("hello", to: "news") == 1)
        #expect(try await client.publish("o1", to: "orders.eu") == 1)
        #expect(try await client.publish("nobody", to: "other") == 0)
        var received: [RedisMessage] = []
        for try await message in subscription {
            received.append(message)
            if received.count == 2 { break }
        }
        #expect(received.map(\.channel) == ["news", "orders.eu"])
        #expect(received.map(\.text) == ["hello", "o1"])
        #expect(received.map(\.pattern) == [nil, "orders.*"])
        subscription.close()
    }

    @Test(arguments: TestServer.Kind.allCases)
    func transactionsAndWatch(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let client = try RedisClient(url: server.url)
        defer { client.shutdown() }
        let replies = try await client.transaction([RedisCommand("SET", "a", "1"), RedisCommand("INCR", "a")])
        #expect(replies == [.simpleString("OK"), .integer(2)])
        // A write from another connection between WATCH and EXEC aborts the transaction.
        let aborted = try await client.pool.withConnection { connection -> [RESPValue]? in
            try await connection.send(RedisCommand("WATCH", "a"))
            try await client.set("a", "changed")
            let replies = try await connection.pipeline([RedisCommand("MULTI"), RedisCommand("SET", "a", "mine"), RedisCommand("EXEC")])
            return replies.last == .null ? nil : replies
        }
        #expect(aborted == nil)
        #expect(try await client.get("a").map { String(buffer: $0) } == "changed")
    }

    @Test(arguments: TestServer.Kind.allCases)
    func timeoutOnAStoppedServerAndReconnectAfterRestart(kind: TestServer.Kind) async throws {
        let server = try TestServer(kind)
        let client = try RedisClient(url: "\(server.url)?timeout=0.2&connect_timeout=0.2")
        defer { client.shutdown() }
        try await client.set("k", "v")
        server.pause()
        let started = ContinuousClock.now
        do {
            _ = try await client.get("k")
            Issue.record("answered while stopped")
        } catch let error as RedisClientError {
            guard case .timeout = error else { Issue.record("\(error)"); return }
        }
        #expect(ContinuousClock.now - started < .seconds(1))
        server.stop()
        try server.start()
        let back = await eventually(timeout: .seconds(10)) { (try? await client.ping()) == "PONG" }
        #expect(back)
    }

    @Test func unixSocketAndTLSWithRedisServer() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nc-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = directory.appendingPathComponent("redis.sock").path
        try makeCertificates(in: directory)
        let tlsPort = try TestServer.freePort()
        let server = try TestServer(.redis, arguments: [
            "--unixsocket", socket, "--tls-port", "\(tlsPort)",
            "--tls-cert-file", directory.appendingPathComponent("server.crt").path,
            "--tls-key-file", directory.appendingPathComponent("server.key").path,
            "--tls-ca-cert-file", directory.appendingPathComponent("ca.crt").path,
            "--tls-auth-clients", "no",
        ])
        _ = server
        let unix = try RedisClient(url: "unix://\(socket)?db=4")
        defer { unix.shutdown() }
        try await unix.set("via", "unix")
        #expect(try await unix.send("CLIENT", "INFO").string?.contains("db=4") == true)
        let ca = directory.appendingPathComponent("ca.crt").path
        let tls = try RedisClient(url: "rediss://localhost:\(tlsPort)/4?ca=\(ca)")
        defer { tls.shutdown() }
        #expect(try await tls.get("via").map { String(buffer: $0) } == "unix")
        // A CA that did not sign the server's certificate is refused.
        let untrusted = try RedisClient(url: "rediss://localhost:\(tlsPort)/4?ca=\(directory.appendingPathComponent("other.crt").path)")
        defer { untrusted.shutdown() }
        await #expect(throws: (any Error).self) { try await untrusted.ping() }
    }

    private func makeCertificates(in directory: URL) throws {
        let script = """
            set -e
            cd '\(directory.path)'
            openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.crt 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca -keyout other.key -out other.crt 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out server.crt 2>/dev/null
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
