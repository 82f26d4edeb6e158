public import Foundation

/// A real Redis Cluster for integration tests: Debian's redis-server processes on free loopback ports
/// (`--cluster-enabled yes`, each with its own cluster bus port), joined by `redis-cli --cluster create`,
/// ready when every node reports `cluster_state:ok` and the same primaries and replicas.
public final class TestCluster: @unchecked Sendable {
    /// Whether the cluster suites run: `NOVA_CLUSTER_TESTS=1`. Each cluster is six processes whose
    /// replicas sync by forking; `scripts/test` runs these suites on their own, after the other Swift
    /// tests, so that they do not starve the timing-sensitive ones.
    public static var testsEnabled: Bool { ProcessInfo.processInfo.environment["NOVA_CLUSTER_TESTS"] == "1" }

    public let servers: [TestServer]
    public let primaries: Int

    /// Starts `primaries × (1 + replicasPerPrimary)` nodes and forms the cluster.
    public init(primaries: Int = 3, replicasPerPrimary: Int = 1, nodeTimeout: Int = 1000) throws {
        self.primaries = primaries
        servers = try (0..<primaries * (1 + replicasPerPrimary)).map { _ in
            try TestServer(.redis, arguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "\(nodeTimeout)", "--cluster-port", "\(try TestServer.freePort())",
            ])
        }
        let addresses = servers.map { "127.0.0.1:\($0.port)" }
        _ = try Self.run("redis-cli", ["--cluster", "create"] + addresses + ["--cluster-replicas", "\(replicasPerPrimary)", "--cluster-yes"])
        try waitUntilHealthy(replicas: primaries * replicasPerPrimary)
        try waitUntilReplicasSynced(replicasPerPrimary)
    }

    /// Waits until every primary has `count` replicas whose first sync is done (`state=online`), so that
    /// a replica can take over at once.
    public func waitUntilReplicasSynced(_ count: Int, timeout: TimeInterval = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let primaryPorts = try nodes(seenFrom: liveServers[0].port).filter { $0.flags.contains("master") && !$0.slots.isEmpty }.map(\.port)
            let synced = try primaryPorts.allSatisfy { port in
                try cli(port, "info", "replication").components(separatedBy: "state=online").count - 1 >= count
            }
            if synced { return }
            usleep(100_000)
        }
        throw TestServerError("the replicas did not finish their first sync")
    }

    /// The seed URL naming every node: `redis://127.0.0.1:p1,127.0.0.1:p2,…`.
    public var url: String { "redis://" + servers.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    /// Runs redis-cli against one node and returns its output (RESP2, raw).
    public func cli(_ port: Int, _ arguments: String...) throws -> String {
        try Self.run("redis-cli", ["-p", "\(port)"] + arguments).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The node of each line of CLUSTER NODES as seen from `port`: (id, port, flags, slots text).
    public func nodes(seenFrom port: Int) throws -> [(id: String, port: Int, flags: String, slots: String)] {
        try cli(port, "cluster", "nodes").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count >= 8, let at = fields[1].firstIndex(of: "@"), let colon = fields[1][..<at].lastIndex(of: ":"),
                let nodePort = Int(fields[1][fields[1].index(after: colon)..<at]) else { return nil }
            return (String(fields[0]), nodePort, String(fields[2]), fields.dropFirst(8).joined(separator: " "))
        }
    }

    /// The port of the primary serving `slot`, as the node at `port` sees it.
    public func primaryPort(forSlot slot: Int, seenFrom port: Int? = nil) throws -> Int {
        let shards = try cli(port ?? liveServers[0].port, "cluster", "slots").split(separator: "\n").map(String.init)
        // redis-cli prints each range as: start, end, host, port, id, replicas' host, port, id …
        var index = 0
        while index + 3 < shards.count {
            if let start = Int(shards[index]), let end = Int(shards[index + 1]), let primary = Int(shards[index + 3]) {
                if (start...end).contains(slot) { return primary }
            }
            index += 1
        }
        throw TestServerError("no node serves slot \(slot)")
    }

    /// The servers whose process runs.
    public var liveServers: [TestServer] { servers.filter { $0.isRunning } }

    /// The server listening on `port`.
    public func server(port: Int) -> TestServer? { servers.first { $0.port == port } }

    /// Waits until every live node says `cluster_state:ok` and lists `primaries` primaries serving slots
    /// and `replicas` replicas, none of them failed.
    public func waitUntilHealthy(replicas: Int, timeout: TimeInterval = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let healthy = liveServers.allSatisfy { server in
                guard let info = try? cli(server.port, "cluster", "info"), info.contains("cluster_state:ok"),
                    let nodes = try? self.nodes(seenFrom: server.port) else { return false }
                // A node counts when its process runs (a killed one is not flagged `fail` at once).
                let running = Set(liveServers.map(\.port))
                let live = nodes.filter { !$0.flags.contains("fail") && running.contains($0.port) }
                let servingPrimaries = live.filter { $0.flags.contains("master") && !$0.slots.isEmpty }.count
                let liveReplicas = live.filter { $0.flags.contains("slave") }.count
                return servingPrimaries == primaries && liveReplicas >= replicas
            }
            if healthy { return }
            usleep(100_000)
        }
        throw TestServerError("the cluster did not become healthy")
    }

    /// Runs a Debian tool and returns its standard output; throws when it fails.
    @discardableResult
    public static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestServer.which(tool))
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestServerError("\(tool) \(arguments.joined(separator: " ")) failed") }
        return String(decoding: data, as: UTF8.self)
    }
}
