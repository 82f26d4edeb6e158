import Logging
import NIOCore
import Testing

import NovaRESP
import NovaServer

/// Runs commands through the server core (no sockets) and decodes the replies.
final class Harness {
    let server: ServerCore
    let client: ClientState

    init(_ flags: [String] = []) throws {
        let config = ConfigStore()
        try config.load(flags: ["--save", ""] + flags)
        server = ServerCore(config: config, logger: Logger(label: "test"))
        client = server.register(connection: nil, address: "127.0.0.1:1", localAddress: "127.0.0.1:6379")!
    }

    func run(_ commands: [[String]]) throws -> [RESPValue] {
        var batch = CommandBatch()
        for command in commands { batch.append(command.map { ByteBuffer(string: $0) }) }
        var writer = RESPWriter(buffer: ByteBuffer(), version: client.protocolVersion)
        _ = server.execute(batch, client: client, reply: &writer)
        var buffer = writer.buffer
        var replies: [RESPValue] = []
        while let value = try RESPValueDecoder().decode(&buffer) { replies.append(value) }
        return replies
    }

    func run(_ command: String...) throws -> RESPValue {
        try run([command])[0]
    }
}

extension RESPValue {
    static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }
}

@Suite("Command dispatch through the server core")
struct ServerCoreTests {
    @Test func pipelinedBatchRepliesInOrder() throws {
        let h = try Harness()
        let replies = try h.run([["SET", "a", "1"], ["INCR", "a"], ["GET", "a"], ["PING"]])
        #expect(replies == [.simpleString("OK"), .integer(2), .bulk("2"), .simpleString("PONG")])
    }

    @Test func unknownCommandAndArityErrors() throws {
        let h = try Harness()
        #expect(try h.run("FOO", "a", "b") == .error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' "))
        #expect(try h.run("GET") == .error("ERR wrong number of arguments for 'get' command"))
        #expect(try h.run("CONFIG", "GET") == .error("ERR wrong number of arguments for 'config|get' command"))
        #expect(try h.run("CLIENT", "NOPE") == .error("ERR unknown subcommand 'NOPE'. Try CLIENT HELP."))
        #expect(try h.run("CLIENT") == .error("ERR wrong number of arguments for 'client' command"))
    }

    @Test func authenticationFlow() throws {
        let h = try Harness(["--requirepass", "s3cret"])
        #expect(try h.run("GET", "a") == .error("NOAUTH Authentication required."))
        #expect(try h.run("AUTH", "wrong") == .error("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(try h.run("AUTH", "default", "s3cret") == .simpleString("OK"))
        #expect(try h.run("GET", "a") == .null)
    }

    @Test func authWithoutPasswordConfigured() throws {
        let h = try Harness()
        #expect(try h.run("AUTH", "x") == .error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"))
        #expect(try h.run("AUTH", "default", "anything") == .simpleString("OK"))
    }

    @Test func selectAndDatabasesAreSeparate() throws {
        let h = try Harness(["--databases", "4"])
        let replies = try h.run([["SET", "k", "zero"], ["SELECT", "3"], ["GET", "k"], ["SELECT", "4"], ["SELECT", "0"], ["GET", "k"]])
        #expect(replies == [.simpleString("OK"), .simpleString("OK"), .null, .error("ERR DB index is out of range"), .simpleString("OK"), .bulk("zero")])
    }

    @Test func helloSwitchesToRESP3() throws {
        let h = try Harness()
        let hello = try h.run("HELLO", "3")
        guard case .map(let pairs) = hello else {
            Issue.record("HELLO 3 should answer a map, got \(hello)")
            return
        }
        #expect(pairs.count == 7)
        #expect(pairs.first?.0 == .bulk("server"))
        #expect(try h.run("GET", "missing") == .null)
        #expect(try h.run("HELLO", "4") == .error("NOPROTO unsupported protocol version"))
    }

    @Test func quitStopsTheBatch() throws {
        let h = try Harness()
        let replies = try h.run([["PING"], ["QUIT"], ["PING"]])
        #expect(replies == [.simpleString("PONG"), .simpleString("OK")])
        #expect(h.client.closeAfterReply)
    }

    @Test func infoHasRedisFieldNames() throws {
        let h = try Harness()
        _ = try h.run([["SET", "a", "1"], ["GET", "a"], ["GET", "b"], ["SELECT", "1"], ["SET", "x", "y", "EX", "100"]])
        let info = try h.run("INFO").string ?? ""
        for field in ["redis_version:", "connected_clients:1", "used_memory:", "used_memory_human:", "keyspace_hits:1",
                      "keyspace_misses:1", "expired_keys:0", "evicted_keys:0", "total_commands_processed:",
                      "instantaneous_ops_per_sec:", "role:master", "db0:keys=1,expires=0,avg_ttl=0",
                      "db1:keys=1,expires=1,avg_ttl="] {
            #expect(info.contains(field), "missing \(field)")
        }
        let stats = try h.run("INFO", "commandstats").string ?? ""
        #expect(stats.contains("cmdstat_get:calls=2,"))
    }

    @Test func configSetAppliesAndValidates() throws {
        let h = try Harness()
        #expect(try h.run("CONFIG", "SET", "maxmemory", "1mb") == .simpleString("OK"))
        #expect(try h.run("CONFIG", "GET", "maxmemory") == .array([.bulk("maxmemory"), .bulk("1048576")]))
        #expect(try h.run("CONFIG", "SET", "maxmemory", "abc") == .error("ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"))
        #expect(try h.run("CONFIG", "SET", "databases", "3") == .error("ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"))
        #expect(try h.run("CONFIG", "SET", "nosuch", "1") == .error("ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"))
    }

    /// A pipeline over a database large enough to be prefetched (8,192 keys and more) answers exactly
    /// as one command at a time: keys present and absent, an argument that is no key, commands without
    /// arguments, a hash, writes that move entries (DEL moves the last one into the hole) and SELECT and
    /// FLUSHDB inside the window.
    @Test func prefetchedPipelinesAnswerAsSingleCommands() throws {
        let h = try Harness()
        _ = try h.run((0..<10_000).map { ["SET", "key:\($0)", String(repeating: "v", count: $0 % 40)] })
        _ = try h.run([["HSET", "hash", "f", "1"], ["SELECT", "1"], ["SET", "key:1", "other"], ["SELECT", "0"]])
        let pipeline: [[String]] = [
            ["GET", "key:1"], ["GET", "absent"], ["PING"], ["DEL", "key:2"], ["GET", "key:9999"], ["HGET", "hash", "f"],
            ["CONFIG", "GET", "hz"], ["GET", "key:39"], ["SELECT", "1"], ["GET", "key:1"], ["SELECT", "0"],
            ["SET", "key:2", "back"], ["GET", "key:2"], ["INCR", "counter"], ["DBSIZE"], ["FLUSHDB"], ["GET", "key:1"],
        ]
        let expected = try pipeline.map { try h.run([$0])[0] }
        // The same state again (FLUSHDB emptied database 0), then the whole pipeline in one batch.
        _ = try h.run((0..<10_000).map { ["SET", "key:\($0)", String(repeating: "v", count: $0 % 40)] })
        _ = try h.run([["HSET", "hash", "f", "1"], ["SET", "counter", "0"]])
        #expect(try h.run(pipeline) == expected)
        #expect(expected[0] == .bulk("v") && expected[9] == .bulk("other") && expected[14] == .integer(10_002))
    }

    /// MGET, MSET, DEL and EXISTS prefetch their keys in windows of 16 over a large database: with 40
    /// keys (three windows, repeated and absent keys, a hash among them, a key over the prefetch's length
    /// limit) each answers as the single-key commands do.
    @Test func multiKeyCommandsPrefetchAndAnswerAsSingleKeys() throws {
        let h = try Harness()
        func one(_ args: [String]) throws -> RESPValue { try h.run([args])[0] }
        _ = try h.run((0..<10_000).map { ["SET", "key:\($0)", "v\($0)"] })
        let long = String(repeating: "k", count: 2_000)
        _ = try h.run([["HSET", "hash", "f", "1"], ["SET", long, "long"]])
        let keys = (0..<36).map { $0 % 5 == 0 ? "absent:\($0)" : "key:\($0 * 277)" } + ["hash", long, "key:277", "key:277"]
        let singles = try keys.map { try one(["GET", $0]) }
        #expect(singles[1] == .bulk("v277") && singles[37] == .bulk("long") && singles[0] == .null)
        #expect(try one(["MGET"] + keys) == .array(keys.indices.map { keys[$0] == "hash" ? .null : singles[$0] }))
        let present = singles.filter { $0 != .null }.count  // the hash's WRONGTYPE counts: it exists
        #expect(try one(["EXISTS"] + keys) == .integer(Int64(present)))
        _ = try one(["MSET"] + keys.enumerated().flatMap { [$0.element, "new\($0.offset)"] })
        #expect(try one(["MGET"] + keys) == .array(keys.map { .bulk("new\(keys.lastIndex(of: $0)!)") }))
        #expect(try one(["DEL"] + keys) == .integer(Int64(Set(keys).count)))
        #expect(try one(["EXISTS"] + keys) == .integer(0))
        #expect(try h.run("DBSIZE") == .integer(Int64(10_000 - Set(keys.filter { $0.hasPrefix("key:") }).count)))
    }

    @Test func maxmemoryWithNoevictionRefusesWrites() throws {
        let h = try Harness(["--maxmemory", "1"])
        #expect(try h.run("SET", "a", "b") == .error("OOM command not allowed when used memory > 'maxmemory'."))
        #expect(try h.run("GET", "a") == .null)
    }

    @Test func commandDocsAndInfoAreWellFormed() throws {
        let h = try Harness()
        guard case .array(let info) = try h.run("COMMAND", "INFO", "get", "nosuch") else {
            Issue.record("COMMAND INFO should answer an array")
            return
        }
        #expect(info.count == 2)
        #expect(info[1] == .null)
        guard case .array(let get) = info[0] else { return }
        #expect(get[0] == .bulk("get"))
        #expect(get[1] == .integer(2))
        let docs = try h.run("COMMAND", "DOCS", "set")
        #expect(docs.elements?.first == .bulk("set"))
        #expect(try h.run("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == .array([.bulk("a"), .bulk("b")]))
        guard case .integer(let count) = try h.run("COMMAND", "COUNT") else { return }
        #expect(count > 50)
    }
}
