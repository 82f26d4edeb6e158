import Foundation
import Logging
import MCP
@testable import NovaCacheMCP
import NovaTestSupport
import SystemPackage
import Testing

/// The Swift SDK's client, downstream of the real `nova-cache-mcp` binary (stdio and Streamable HTTP), with
/// the fake CRM (the official Python `mcp` package) upstream.
@Suite(.serialized) struct GatewaySwiftClientTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The gateway binary of the configuration this test was built in.
    static var gatewayBinary: URL? {
        #if DEBUG
            let order = ["debug", "release"]
        #else
            let order = ["release", "debug"]
        #endif
        for configuration in order {
            let candidate = root.appendingPathComponent(".build/\(configuration)/nova-cache-mcp")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    static var python: String {
        let venv = root.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3"
    }

    func configuration(redisPort: Int, http: Int? = nil) throws -> URL {
        let upstream = Self.root.appendingPathComponent("examples/mcp/fake_upstream.py").path
        var object: [String: Any] = [
            "cache": ["url": "redis://127.0.0.1:\(redisPort)/0", "namespace": "swift"],
            "upstreams": [["name": "crm", "command": [Self.python, upstream, "--name", "crm"], "timeout": "10s"]],
        ]
        if let http { object["http"] = ["host": "127.0.0.1", "port": http] }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: object).write(to: file)
        return file
    }

    func calls(_ state: URL) -> Int {
        guard let data = FileManager.default.contents(atPath: state.appendingPathComponent("crm.calls.json").path),
            let counts = try? JSONSerialization.jsonObject(with: data) as? [String: Int]
        else { return 0 }
        return counts["search_customers"] ?? 0
    }

    func startGateway(_ config: URL, state: URL, arguments: [String] = [], pipes: (Pipe, Pipe)? = nil) throws -> Process {
        guard let binary = Self.gatewayBinary else { throw TestServerError("build nova-cache-mcp first (swift build)") }
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--config", config.path, "--log-level", "warning"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["FAKE_UPSTREAM_STATE": state.path]) { $1 }
        process.currentDirectoryURL = Self.root
        if let (input, output) = pipes {
            process.standardInput = input
            process.standardOutput = output
        }
        try process.run()
        return process
    }

    func stateDirectory() throws -> URL {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("fake-upstream-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        return state
    }

    @Test func overStdio() async throws {
        let server = try TestServer(.nova)
        defer { server.stop() }
        let state = try stateDirectory()
        let input = Pipe(), output = Pipe()
        let gateway = try startGateway(try configuration(redisPort: server.port), state: state, pipes: (input, output))
        defer { gateway.terminate(); gateway.waitUntilExit() }
        let client = Client(name: "swift-test", version: "1")
        let transport = StdioTransport(
            input: FileDescriptor(rawValue: output.fileHandleForReading.fileDescriptor),
            output: FileDescriptor(rawValue: input.fileHandleForWriting.fileDescriptor)
        )
        _ = try await client.connect(transport: transport)
        let tools = try await client.listTools().tools.map(\.name)
        #expect(tools.contains("crm_search_customers") && tools.contains("nova_cache_stats"))
        var texts: Set<String> = []
        for _ in 0..<5 {
            let (content, isError) = try await client.callTool(name: "crm_search_customers", arguments: ["query": "ada"])
            #expect(isError != true)
            if case .text(let text, _, _) = content.first { texts.insert(text) }
        }
        #expect(texts.count == 1 && texts.first!.contains("Ada 1"))
        #expect(calls(state) == 1)
        await client.disconnect()
    }

    @Test func overStreamableHTTP() async throws {
        let server = try TestServer(.nova)
        defer { server.stop() }
        let state = try stateDirectory()
        let port = try TestServer.freePort()
        let gateway = try startGateway(try configuration(redisPort: server.port, http: port), state: state)
        defer { gateway.terminate(); gateway.waitUntilExit() }
        let endpoint = URL(string: "http://127.0.0.1:\(port)/mcp")!
        let client = Client(name: "swift-test", version: "1")
        var connected = false
        for _ in 0..<100 where !connected {
            do {
                _ = try await client.connect(transport: try HTTPUpstreamTransport(endpoint: endpoint, headers: [:], logger: Logger(label: "test")))
                connected = true
            } catch {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(connected)
        for _ in 0..<5 {
            let (_, isError) = try await client.callTool(name: "crm_search_customers", arguments: ["query": "http"])
            #expect(isError != true)
        }
        #expect(calls(state) == 1)
        await client.disconnect()
    }
}
