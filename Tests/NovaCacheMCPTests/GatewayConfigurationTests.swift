import Foundation
@testable import NovaCacheMCP
import NovaConnector
import Testing

@Suite struct GatewayConfigurationTests {
    @Test func readsEveryField() throws {
        let text = """
            {
              "cache": {"url": "redis://:pw@127.0.0.1:6390/2", "namespace": "gw", "memoryEntries": 500, "maxStaleness": "2h"},
              "http": {"host": "0.0.0.0", "port": 9000, "path": "/x"},
              "identity": {"header": "X-User", "stdioCaller": "ops"},
              "upstreams": [
                {"name": "crm", "command": ["python3", "crm.py"], "env": {"A": "1"}, "cwd": "/tmp", "timeout": "20s",
                 "defaults": {"policy": "customer-search", "staleOnError": "10m"},
                 "tools": {"search": {"key": ["q"], "scope": "private", "ttl": 90}, "write": {"cache": false}}},
                {"name": "erp", "url": "http://127.0.0.1:9001/mcp", "headers": {"Authorization": "Bearer t"}, "prefix": "sap."}
              ]
            }
            """
        let configuration = try GatewayConfiguration.parse(text)
        #expect(configuration.cache.url == "redis://:pw@127.0.0.1:6390/2" && configuration.cache.namespace == "gw")
        #expect(configuration.cache.memoryEntries == 500 && configuration.cache.maxStaleness == .seconds(7200))
        #expect(configuration.http?.port == 9000 && configuration.http?.path == "/x")
        #expect(configuration.identity.header == "x-user" && configuration.identity.stdioCaller == "ops")
        let crm = configuration.upstreams[0]
        #expect(crm.transport == .command(["python3", "crm.py"], environment: ["A": "1"], directory: "/tmp"))
        #expect(crm.prefix == "crm_" && crm.timeout == .seconds(20))
        let search = GatewayConfiguration.policy(name: "search", rule: crm.tools["search"], defaults: crm.defaults, readOnly: false, idempotent: false)
        // Not annotated read-only, but the upstream's defaults name a preset without "cache": the
        // annotations decide, and this tool has none.
        #expect(!search.cacheable)
        #expect(search.ttl == .seconds(90) && search.keyFields == ["q"] && search.scope == .caller && search.staleOnError == .seconds(600))
        let readOnly = GatewayConfiguration.policy(name: "search", rule: crm.tools["search"], defaults: crm.defaults, readOnly: true, idempotent: false)
        #expect(readOnly.cacheable && readOnly.name == "customer-search")
        let write = GatewayConfiguration.policy(name: "write", rule: crm.tools["write"], defaults: crm.defaults, readOnly: true, idempotent: true)
        #expect(!write.cacheable)
        let erp = configuration.upstreams[1]
        #expect(erp.transport == .url("http://127.0.0.1:9001/mcp", headers: ["Authorization": "Bearer t"], ca: nil) && erp.prefix == "sap.")
        let unnamed = GatewayConfiguration.policy(name: "lookup", rule: nil, defaults: erp.defaults, readOnly: false, idempotent: true)
        #expect(unnamed.cacheable && unnamed.ttl == .seconds(300) && unnamed.name == "lookup")
        #expect(!configuration.summary.contains("pw@") && configuration.summary.contains("redis://:***@127.0.0.1:6390/2"))
    }

    @Test(arguments: [
        ("{\n\"upstreams\": [\n{\"name\": \"a\", \"command\": [\"x\"], \"timeout\": true}\n]\n}", "<configuration>:3: upstreams[0].timeout: expected a duration"),
        ("{\"upstreams\": [{\"name\": \"a\", \"command\": [\"x\"], \"tools\": {\"t\": {\"cache\": 1}}}]}", "upstreams[0].tools.t.cache: expected true or false"),
        ("{\"cache\": {\"memoryEntries\": 0}, \"upstreams\": [{\"name\": \"a\", \"command\": [\"x\"]}]}", "cache.memoryEntries: expected a whole number from 1"),
        ("{\"upstreams\": [{\"name\": \"a b\", \"command\": [\"x\"]}]}", "upstreams[0].name: expected letters, digits"),
        ("{\"upstreams\": [{\"name\": \"a\", \"command\": [\"x\"], \"prefix\": \"p\"}, {\"name\": \"b\", \"command\": [\"y\"], \"prefix\": \"p\"}]}", "upstreams[1].prefix: \"p\" is also the prefix of \"a\""),
        ("{\"upstreams\": [{\"name\": \"a\", \"url\": \"http://h/mcp\", \"env\": {}}]}", "upstreams[0].env: only for upstreams started as a command"),
        ("{\"upstreams\": [{\"name\": \"a\", \"url\": \"http://h/mcp\", \"ca\": \"/etc/hostname\"}]}", "upstreams[0].ca: only for https:// upstreams"),
        ("{\"upstreams\": [{\"name\": \"a\", \"url\": \"https://h/mcp\", \"ca\": \"/nonexistent.pem\"}]}", "upstreams[0].ca: cannot read PEM certificates from /nonexistent.pem"),
        ("{\"upstreams\": [{\"name\": \"a\", \"command\": [\"x\"], \"ca\": \"/x.pem\"}]}", "upstreams[0].ca: only for upstreams reached by url"),
        ("{\"bogus\": 1, \"upstreams\": []}", "<configuration>:1: bogus: unknown field"),
        ("{\n\n  \"upstreams\": [1, 2,, 3]\n}", "<configuration>:3: not valid JSON"),
    ])
    func reportsMistakesWithLineAndField(text: String, expected: String) {
        do {
            _ = try GatewayConfiguration.parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            #expect("\(error)".hasPrefix(expected) || "\(error)".contains(expected), "\(error)")
        }
    }

    @Test func lineIndexFollowsNesting() {
        let text = "{\n  \"a\": [\n    {\"b\": 1},\n    {\n      \"c\": {\"d\": \"x\\\"y\"}\n    }\n  ],\n  \"e\": 2\n}"
        let lines = JSONLineIndex.lines(of: text)
        #expect(lines["a"] == 2 && lines["a[0]"] == 3 && lines["a[0].b"] == 3 && lines["a[1]"] == 4 && lines["a[1].c"] == 5)
        #expect(lines["a[1].c.d"] == 5 && lines["e"] == 8)
    }

    @Test func eventStreamsAreSplitIntoMessages() throws {
        var parser = EventStreamParser()
        let text = "event: message\r\ndata: {\"a\":1}\r\n\r\n: comment\ndata: {\"b\":\ndata: 2}\n\nid: 7\rdata:x\r\r"
        let events = try parser.feed(Array(text.utf8))
        #expect(events.map(\.data) == ["{\"a\":1}", "{\"b\":\n2}", "x"])
        #expect(events.map(\.lastEventID) == [nil, nil, "7"] && parser.lastEventID == "7")
        #expect(parser.finish() == nil)
    }

    @Test func eventStreamsMayBeSplitAnywhere() throws {
        let text = Array("retry: 250\r\nevent: ping\r\ndata: 1\r\n\r\ndata: two\r\nid: last\r\n\r\ndata: tail".utf8)
        // Every split point, including between the CR and the LF of one line ending.
        for split in 0...text.count {
            var parser = EventStreamParser()
            var events = try parser.feed(text[..<split])
            events += try parser.feed(text[split...])
            if let tail = parser.finish() { events.append(tail) }
            #expect(events.map(\.type) == ["ping", "message", "message"], "split at \(split)")
            #expect(events.map(\.data) == ["1", "two", "tail"], "split at \(split)")
            #expect(parser.retryMilliseconds == 250 && parser.lastEventID == "last")
        }
    }

    @Test func eventStreamsRefuseEndlessEvents() {
        var parser = EventStreamParser(maxEventBytes: 100)
        #expect(throws: EventStreamParser.Failure.self) {
            for _ in 0..<20 { _ = try parser.feed(Array("data: 0123456789\n".utf8)) }
        }
    }
}
