import ArgumentParser
import Foundation
import NIOCore
import NovaClient
import NovaObservability
import NovaRESP

/// `nova-cache`: the operator's tool for a nova-cache-server (or any Redis 7 server).
@main
struct NovaCacheCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nova-cache",
        abstract: "Check, watch, flush and back up a NovaCache server.",
        discussion: """
            The server is named by --url or the REDIS_URL environment variable (default \
            redis://127.0.0.1:6379/0). A password can also come from NOVA_CACHE_PASSWORD; when the server \
            asks for one and none was given, it is prompted for on the terminal without echo. Passwords \
            are never printed.

            A Redis or Valkey Cluster is named by several nodes (redis://h1:7000,h2:7000) or by one of \
            them: status shows every node and the cluster's state, stats sums the nodes, flush and the key \
            commands work across the cluster. backup, restore, monitor, dashboard and shutdown take one \
            node's URL.
            """,
        version: NovaCacheVersion.current,
        subcommands: [
            Status.self, Stats.self, Dashboard.self, Flush.self, Backup.self, Restore.self, Verify.self, Monitor.self, Shutdown.self, Ping.self, Get.self, Set.self, Del.self, TTL.self,
            Keys.self,
        ]
    )
}

/// Where the server is.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "Server URL: redis://[[user]:password@]host[:port][/db], rediss://…, unix:///path.sock")
    var url: String?
    @Option(name: .long, help: "The database number (instead of the URL's /db).")
    var db: Int?

    func validate() throws {
        if let db, db < 0 { throw ValidationError("--db must be 0 or more") }
    }

    /// The URL's text given: --url, else REDIS_URL.
    private var givenURL: String? { url ?? ProcessInfo.processInfo.environment["REDIS_URL"] }

    /// The URL to use: --db in place of its database, a password from the environment when it has none.
    func resolvedURL() throws -> RedisURL {
        var url = try RedisURL(givenURL ?? RedisURL.defaultURL)
        if let db { url.database = db }
        if url.password == nil, let password = ProcessInfo.processInfo.environment["NOVA_CACHE_PASSWORD"], !password.isEmpty {
            url.password = password
        }
        url.commandTimeout = .seconds(10)
        return url
    }

    /// The database the user named, by --db or in the URL (`/3`, `?db=3`); nil when neither names one.
    func namedDatabase() throws -> Int? {
        if let db { return db }
        guard let text = givenURL else { return nil }
        let afterScheme = text.range(of: "://").map { text[$0.upperBound...] } ?? Substring(text)
        let path = afterScheme.split(separator: "?", maxSplits: 1).first ?? ""
        let namesOne = text.hasPrefix("unix:") ? text.contains("db=") : (path.contains("/") && !path.hasSuffix("/")) || text.contains("db=")
        return namesOne ? try resolvedURL().database : nil
    }

    /// Whether the URL names several hosts (a cluster's seeds).
    var namesCluster: Bool {
        guard let text = givenURL, let schemeEnd = text.range(of: "://") else { return false }
        let authority = text[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return authority.split(separator: "@").last?.contains(",") ?? false
    }

    /// A cluster URL's nodes as `host:port,host:port` (no credentials), for messages.
    var clusterSeedsText: String {
        let seeds = (try? RedisClusterClient.Configuration(givenURL ?? ""))?.seeds ?? []
        return seeds.map(\.clusterAddressText).joined(separator: ",")
    }

    /// The server or the cluster the URL names: a URL with several hosts is a cluster's seeds, a node
    /// that reports `cluster_enabled:1` stands for its cluster.
    func connectRemote() async throws -> Remote {
        if namesCluster {
            guard db == nil || db == 0 else { throw CLIFailure("a cluster has only database 0", exitCode: 2) }
            var configuration: RedisClusterClient.Configuration
            do {
                configuration = try RedisClusterClient.Configuration(givenURL ?? "")
            } catch {
                throw CLIFailure("\(error)", exitCode: 2)
            }
            for index in configuration.seeds.indices {
                if configuration.seeds[index].password == nil, let password = ProcessInfo.processInfo.environment["NOVA_CACHE_PASSWORD"],
                    !password.isEmpty {
                    configuration.seeds[index].password = password
                }
                configuration.seeds[index].commandTimeout = .seconds(10)
            }
            configuration.pool = .init(minimumConnections: 0, maximumConnections: 2)
            configuration.refreshInterval = nil
            configuration.retryTimeout = .seconds(5)
            let cluster = RedisClusterClient(configuration: configuration)
            do {
                _ = try await cluster.topology()
            } catch {
                cluster.shutdown()
                throw error
            }
            return .cluster(cluster)
        }
        let client = try await connect()
        guard (try? await client.info("cluster"))?["cluster_enabled"] == "1" else { return .server(client) }
        client.shutdown()
        guard client.url.database == 0 else { throw CLIFailure("a cluster has only database 0", exitCode: 2) }
        var configuration = RedisClusterClient.Configuration(seeds: [client.url])
        configuration.pool = .init(minimumConnections: 0, maximumConnections: 2)
        configuration.refreshInterval = nil
        configuration.retryTimeout = .seconds(5)
        return .cluster(RedisClusterClient(configuration: configuration))
    }

    /// A connected client for one server; asks for the password on a terminal when the server requires
    /// one. A URL naming a cluster's nodes is refused: the command works on one node.
    func connect() async throws -> RedisClient {
        if namesCluster {
            throw CLIFailure("this command works on one server: give one node's URL (redis://host:port)", exitCode: 2)
        }
        var url = try resolvedURL()
        var client = RedisClient(url: url, pool: .init(minimumConnections: 0, maximumConnections: 2))
        do {
            _ = try await client.ping()
        } catch let error as RedisError where error.code == "MISCONF" {
            // The server answers but refuses writes (and PING) after a failed save: reachable, and
            // `status` reports the failure.
            _ = error
        } catch let error as RedisError where error.code == "NOAUTH" && url.password == nil && isatty(0) == 1 {
            client.shutdown()
            guard let entered = getpass("Password for \(url): ") else { throw error }
            url.password = String(cString: entered)
            client = RedisClient(url: url, pool: .init(minimumConnections: 0, maximumConnections: 2))
            _ = try await client.ping()
        }
        return client
    }
}

/// The server or cluster a command works on.
enum Remote {
    case server(RedisClient)
    case cluster(RedisClusterClient)

    /// The client for key commands (routed by slot on a cluster).
    var client: any RedisCommandClient {
        switch self {
        case .server(let client): client
        case .cluster(let cluster): cluster
        }
    }

    func shutdown() { client.shutdown() }
}

extension RedisClusterClient {
    /// INFO [section] of one node, as a dictionary of its `name:value` lines.
    func info(_ section: String = "all", at node: RedisClusterNode.Address) async throws -> [String: String] {
        InfoReport(parsing: try await send(RedisCommand("INFO", .string(section)), to: node).string ?? "").dictionary
    }
}

/// A failure reported as one line on stderr with a chosen exit code.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    let exitCode: Int32
    init(_ description: String, exitCode: Int32 = 1) {
        self.description = description
        self.exitCode = exitCode
    }

    /// Writes the line on stderr; the exit code to throw.
    func reported() -> ExitCode {
        FileHandle.standardError.write(Data("nova-cache: \(description)\n".utf8))
        return ExitCode(exitCode)
    }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning failures into a message on stderr and an exit code (never a stack trace).
    func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let failure as CLIFailure {
            throw failure.reported()
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("nova-cache: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

extension RedisClient {
    /// One CONFIG GET value ("" when unknown), in RESP2 or RESP3.
    func configValue(_ name: String) async throws -> String {
        let reply = try await send("CONFIG", "GET", .string(name))
        switch reply {
        case .map(let pairs): return pairs.first?.1.string ?? ""
        default: return reply.elements?.dropFirst().first?.string ?? ""
        }
    }

    /// INFO [section], parsed.
    func infoReport(_ section: String = "all") async throws -> InfoReport {
        let reply = try await send("INFO", .string(section))
        return InfoReport(parsing: reply.string ?? "")
    }

    /// INFO [section] as a dictionary of its `name:value` lines.
    func info(_ section: String = "all") async throws -> [String: String] {
        try await infoReport(section).dictionary
    }
}

extension InfoReport {
    /// Every field by name.
    var dictionary: [String: String] {
        Dictionary(fields.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
    }
}

/// Keys per database from INFO's keyspace lines (`db0:keys=3,expires=1,avg_ttl=0`).
func keyspace(_ info: [String: String]) -> [(db: Int, keys: Int, expires: Int)] {
    info.compactMap { name, value -> (Int, Int, Int)? in
        guard name.hasPrefix("db"), let db = Int(name.dropFirst(2)) else { return nil }
        var keys = 0
        var expires = 0
        for part in value.split(separator: ",") {
            let pair = part.split(separator: "=")
            guard pair.count == 2, let number = Int(pair[1]) else { continue }
            if pair[0] == "keys" { keys = number } else if pair[0] == "expires" { expires = number }
        }
        return (db, keys, expires)
    }.sorted { $0.0 < $1.0 }.map { (db: $0.0, keys: $0.1, expires: $0.2) }
}

/// An error in one line: a connection failure's cause without the URL around it (the caller prints
/// that), anything else as it describes itself.
func oneLine(_ error: any Error) -> String {
    if case RedisClientError.connectFailed(_, let reason) = error { return reason }
    return "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
}

/// Prints `object` as JSON on stdout.
func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}
