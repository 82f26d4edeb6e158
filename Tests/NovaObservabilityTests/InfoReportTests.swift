import Testing
@testable import NovaObservability

@Suite("INFO report parsing")
struct InfoReportTests {
    static let sample = """
        # Server\r
        redis_version:7.0.15\r
        os:Linux 6.1 x86_64\r
        \r
        # Memory\r
        used_memory:1048576\r
        mem_fragmentation_ratio:1.25\r
        expired_stale_perc:12.50%\r
        \r
        # Commandstats\r
        cmdstat_get:calls=21,usec=175,usec_per_call=8.33,rejected_calls=1,failed_calls=2\r
        cmdstat_config|set:calls=3,usec=30,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r
        \r
        # Errorstats\r
        errorstat_ERR:count=3\r
        errorstat_WRONGTYPE:count=1\r
        \r
        # Latencystats\r
        latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=5.023\r
        \r
        # Keyspace\r
        db0:keys=3,expires=1,avg_ttl=1500\r
        db12:keys=7,expires=0,avg_ttl=0\r
        \r
        # NovaCache\r
        alert_memory:firing\r
        alert_memory_since:1700000000\r
        alert_memory_reason:memory used 1.00M reached the alert level 1mb (1.00M)\r
        alert_bgsave:ok\r

        """

    @Test("fields keep their section and values; numbers read through % and decimals")
    func fields() {
        let report = InfoReport(parsing: Self.sample)
        #expect(report["redis_version"] == "7.0.15")
        #expect(report["os"] == "Linux 6.1 x86_64")
        #expect(report.integer("used_memory") == 1_048_576)
        #expect(report.number("mem_fragmentation_ratio") == 1.25)
        #expect(report.number("expired_stale_perc") == 12.5)
        #expect(report["missing"] == nil)
        #expect(report.section("memory").map(\.name) == ["used_memory", "mem_fragmentation_ratio", "expired_stale_perc"])
    }

    @Test("LF-only text (as some proxies return) parses the same")
    func lineFeeds() {
        let report = InfoReport(parsing: Self.sample.split(separator: "\r\n", omittingEmptySubsequences: false).joined(separator: "\n"))
        #expect(report.integer("used_memory") == 1_048_576)
        #expect(report.keyspace.count == 2)
    }

    @Test("structured lines: commandstats, errorstats, latencystats, keyspace, alerts")
    func structured() {
        let report = InfoReport(parsing: Self.sample)
        #expect(report.commandStats == [
            .init(command: "get", calls: 21, microseconds: 175, rejectedCalls: 1, failedCalls: 2),
            .init(command: "config|set", calls: 3, microseconds: 30, rejectedCalls: 0, failedCalls: 0),
        ])
        #expect(report.errorStats.map(\.code) == ["ERR", "WRONGTYPE"])
        #expect(report.errorStats.map(\.count) == [3, 1])
        let latency = report.latencyPercentiles
        #expect(latency.count == 1)
        #expect(latency[0].command == "get")
        #expect(latency[0].percentiles.map(\.name) == ["p50", "p99", "p99.9"])
        #expect(latency[0].percentiles.map(\.microseconds) == [1.003, 2.007, 5.023])
        #expect(report.keyspace == [
            .init(database: 0, keys: 3, expires: 1, averageTTL: 1500),
            .init(database: 12, keys: 7, expires: 0, averageTTL: 0),
        ])
        #expect(report.firingAlerts.map(\.name) == ["memory"])
        #expect(report.firingAlerts.map(\.reason) == ["memory used 1.00M reached the alert level 1mb (1.00M)"])
    }

    @Test("garbage lines are skipped, never trap")
    func garbage() {
        let report = InfoReport(parsing: "no colon here\r\n:\r\ncmdstat_x:calls=abc,usec=\r\ndbX:keys=1\r\ndb1:keys\r\n#\r\n")
        #expect(report.commandStats == [.init(command: "x", calls: 0, microseconds: 0, rejectedCalls: 0, failedCalls: 0)])
        #expect(report.keyspace == [.init(database: 1, keys: 0, expires: 0, averageTTL: 0)])
    }
}

@Suite("Memory levels")
struct MemoryThresholdTests {
    @Test("shares and amounts with Redis's units")
    func parsing() {
        #expect(MemoryThreshold(parsing: "90%")?.bytes(maxMemory: 1000) == 900)
        #expect(MemoryThreshold(parsing: "90%")?.bytes(maxMemory: 0) == nil)
        #expect(MemoryThreshold(parsing: "2gb")?.bytes(maxMemory: 0) == 2 << 30)
        #expect(MemoryThreshold(parsing: "1g")?.bytes(maxMemory: 0) == 1_000_000_000)
        #expect(MemoryThreshold(parsing: "64KB")?.bytes(maxMemory: 0) == 65536)
        #expect(MemoryThreshold(parsing: "1048576")?.bytes(maxMemory: 0) == 1_048_576)
        for bad in ["0", "0%", "101%", "-5mb", "lots", "", "%", "99999999999999999999gb", "9223372036854775807gb"] {
            #expect(MemoryThreshold(parsing: bad) == nil, "\(bad)")
        }
    }
}

@Suite("HTTP Basic credentials and base64")
struct CredentialsTests {
    @Test("round trip and header parsing")
    func basic() {
        #expect(Base64.encode(Array("default:s3cret".utf8)) == "ZGVmYXVsdDpzM2NyZXQ=")
        for text in ["", "a", "ab", "abc", "abcd", "user:pass:with:colons", "ünïcode:密码"] {
            #expect(Base64.decode(Base64.encode(Array(text.utf8))) == Array(text.utf8), "\(text)")
        }
        let credentials = BasicCredentials(header: "Basic " + Base64.encode(Array("alice:pa:ss".utf8)))
        #expect(credentials == BasicCredentials(header: "basic  " + Base64.encode(Array("alice:pa:ss".utf8))))
        #expect(credentials?.username == "alice")
        #expect(credentials?.password == "pa:ss")
        #expect(BasicCredentials(header: "Bearer abc") == nil)
        #expect(BasicCredentials(header: "Basic !!!") == nil)
        #expect(BasicCredentials(header: "Basic " + Base64.encode(Array("nocolon".utf8))) == nil)
        #expect(Base64.decode("YQ=a") == nil)
    }
}

@Suite("JSON text")
struct JSONTextTests {
    @Test("escapes, numbers and nesting")
    func text() {
        let value = JSONValue.object([
            ("s", .string("a\"b\\c\n\u{1}</script>")), ("i", .int(42)), ("d", .number(1.5)), ("n", .null),
            ("inf", .number(.infinity)), ("b", .bool(true)), ("a", .array([.int(1), .string("x")])),
        ])
        #expect(value.text == #"{"s":"a\"b\\c\n\u0001\u003c/script>","i":42,"d":1.5,"n":null,"inf":null,"b":true,"a":[1,"x"]}"#)
    }
}
