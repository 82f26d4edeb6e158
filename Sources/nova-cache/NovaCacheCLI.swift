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

    /// A connected client; asks for the password on a terminal when the server requires one.
    func connect() async throws -> RedisClient {
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

/// A failure reported as one line on stderr with a chosen exit code.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    let exitCode: Int32
    init(_ description: String, exitCode: Int32 = 1) {
        self.description = description
        self.exitCode = exitCode
    }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning failures into a message on stderr and an exit code (never a stack trace).
    func reporting(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let failure as CLIFailure {
            FileHandle.standardError.write(Data("nova-cache: \(failure.description)\n".utf8))
            throw ExitCode(failure.exitCode)
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
