import ArgumentParser
import Foundation
import NovaClient
import NovaEngine

/// `nova-cache restore FILE`: the safe restore of a snapshot into a local server — check the file, stop
/// the server without saving, set the current data aside, put the snapshot in place, start the server,
/// and confirm what it loaded.
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replace a local server's data with a snapshot (stop, replace, start), keeping the old data.",
        discussion: """
            Procedure, as the command performs it:
              1. The snapshot is read completely with the server's own loader (header, every key, CRC64), \
            so a file the server could not load is refused before anything is touched.
              2. The server's `dir`, `dbfilename`, `appendonly` and `appenddirname` are read from the running \
            server (or given with --data-dir / --dbfilename when it is already stopped).
              3. The server is stopped without saving: `systemctl stop` with --service, else SHUTDOWN NOSAVE; \
            the command waits until the port is closed.
              4. The current snapshot and, with appendonly yes, the append-only directory are renamed to \
            `*.before-restore-<time>` (the append-only files would otherwise win over the snapshot at \
            start-up); of those set aside by earlier restores, the newest --keep-asides are kept. The new snapshot is copied next to them, synced, and renamed into \
            place with the old file's owner and mode.
              5. The server is started: `systemctl start` with --service, or --start-command; without either \
            the command stops here and says so. It then waits for the load to finish and compares the keys \
            per database with the snapshot's.
            Run it on the server's host, as a user allowed to write its data directory.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The snapshot (RDB) file to restore.") var file: String
    @Option(help: "systemd unit to stop and start (e.g. nova-cache).") var service: String?
    @Option(help: "Shell command that starts the server (when it is not a systemd service).") var startCommand: String?
    @Option(help: "The server's data directory, when the server is not running.") var dataDir: String?
    @Option(help: "The snapshot file name in the data directory, when the server is not running.") var dbfilename = "dump.rdb"
    @Option(help: "Number of databases the server is configured with (for checking the file offline).") var databases = 16
    @Flag(name: [.customShort("y"), .long], help: "Do not ask for confirmation (scripts).") var yes = false
    @Option(help: "Seconds to wait for the server to stop and to start.") var timeout: Double = 120
    @Option(help: "How many earlier restores' set-aside copies (*.before-restore-*) to keep, this one's included.")
    var keepAsides: Int = 3

    /// Where the server keeps its data, as read from it or given.
    struct Layout {
        var directory: String
        var dbfilename: String
        var appendOnly: Bool
        var appendDirectory: String
        var databases: Int
    }

    func run() async throws {
        try await reporting {
            _ = try verifySnapshot(file)
            let url = try connection.resolvedURL()
            let running = try? await connection.connect()
            var layout: Layout
            if let running {
                layout = try await Self.layout(of: running)
                // A relative `dir` would be relative to the server's working directory, unknown here.
                guard layout.directory.hasPrefix("/") else {
                    running.shutdown()
                    throw CLIFailure("the server reports a relative dir (\(layout.directory)): give --data-dir", exitCode: 2)
                }
            } else {
                guard let dataDir else {
                    throw CLIFailure("the server at \(url) is not reachable: give --data-dir (and --dbfilename) to restore while it is stopped", exitCode: 2)
                }
                layout = Layout(directory: dataDir, dbfilename: dbfilename, appendOnly: false,
                                appendDirectory: "appendonlydir", databases: databases)
            }
            if let dataDir { layout.directory = dataDir }
            let expected = try Self.keysPerDatabase(file, databases: layout.databases)
            let target = (layout.directory as NSString).appendingPathComponent(layout.dbfilename)
            let total = expected.values.reduce(0, +)
            print("snapshot \(file): readable, \(total) keys (\(Self.describe(expected)))")
            if !yes {
                guard isatty(0) == 1 else {
                    running?.shutdown()
                    throw CLIFailure("refusing to replace \(target) without confirmation: add --yes", exitCode: 2)
                }
                print("Stop the server at \(url) and replace \(target) with \(file)? Type 'yes' to confirm: ", terminator: "")
                fflush(nil)
                guard readLine()?.trimmingCharacters(in: .whitespaces).lowercased() == "yes" else {
                    running?.shutdown()
                    throw CLIFailure("not restored", exitCode: 3)
                }
            }

            // 3. Stop without saving (a save would only be overwritten, and could fail on a full disk).
            if let service {
                try Self.shell(["systemctl", "stop", service])
                print("stopped \(service)")
            } else if let running {
                do {
                    try await running.send("SHUTDOWN", "NOSAVE")
                } catch let error as RedisClientError {
                    guard case .connectionClosed = error else { throw error }
                }
                print("stopped the server (SHUTDOWN NOSAVE)")
            }
            running?.shutdown()
            try await waitUntilStopped(url)

            // 4. Set the old data aside and put the snapshot in place.
            let stamp = Self.timestamp()
            let manager = FileManager.default
            var previousAttributes: [FileAttributeKey: Any]?
            if manager.fileExists(atPath: target) {
                previousAttributes = try manager.attributesOfItem(atPath: target)
                let aside = target + ".before-restore-" + stamp
                try manager.moveItem(atPath: target, toPath: aside)
                print("kept the previous snapshot as \(aside)")
            }
            let appendDirectory = (layout.directory as NSString).appendingPathComponent(layout.appendDirectory)
            if layout.appendOnly && manager.fileExists(atPath: appendDirectory) {
                let aside = appendDirectory + ".before-restore-" + stamp
                try manager.moveItem(atPath: appendDirectory, toPath: aside)
                print("kept the previous append-only files as \(aside)")
            }
            let temporary = target + ".restore-tmp"
            try? manager.removeItem(atPath: temporary)
            try manager.copyItem(atPath: file, toPath: temporary)
            if let previousAttributes {
                let kept = previousAttributes.filter { [.ownerAccountID, .groupOwnerAccountID, .posixPermissions].contains($0.key) }
                try? manager.setAttributes(kept, ofItemAtPath: temporary)
            } else {
                try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: temporary)
            }
            try Self.sync(temporary)
            guard rename(temporary, target) == 0 else {
                throw CLIFailure("could not move the snapshot into place: \(String(cString: strerror(errno)))")
            }
            try Self.sync(layout.directory)
            print("restored \(file) to \(target)")
            for old in try Self.pruneAsides(in: layout.directory, keeping: keepAsides) { print("removed old set-aside copy \(old)") }

            // 5. Start and compare.
            if let service {
                try Self.shell(["systemctl", "start", service])
            } else if let startCommand {
                try Self.shell(["/bin/sh", "-c", startCommand])
            } else {
                print("start the server now; it will load \(target)")
                return
            }
            let loaded = try await waitUntilLoaded(url)
            print("server started: \(loaded.values.reduce(0, +)) keys (\(Self.describe(loaded)))")
            // Keys that expired between the backup and now are not loaded; more keys than the file means
            // another snapshot was loaded.
            for (database, count) in loaded where count > expected[database, default: 0] {
                throw CLIFailure("db\(database) has \(count) keys, the snapshot only \(expected[database, default: 0]): check the server's configuration")
            }
        }
    }

    static func layout(of client: RedisClient) async throws -> Layout {
        Layout(
            directory: try await client.configValue("dir"), dbfilename: try await client.configValue("dbfilename"),
            appendOnly: try await client.configValue("appendonly") == "yes",
            appendDirectory: try await client.configValue("appenddirname"),
            databases: Int(try await client.configValue("databases")) ?? 16)
    }

    /// Loads the whole file with the server's reader (expired keys are skipped, as at start-up).
    static func keysPerDatabase(_ path: String, databases count: Int) throws -> [Int: Int] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw CLIFailure("\(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var info = stat()
        fstat(descriptor, &info)
        let databases = (0..<max(1, count)).map { _ in Database() }
        var reader = RDBReader(RDBInput(descriptor: descriptor, size: Int(info.st_size)))
        do {
            try reader.load(into: databases, now: Int64(Date().timeIntervalSince1970 * 1000))
        } catch {
            throw CLIFailure("\(path): the server could not load this snapshot: \(error)")
        }
        var result: [Int: Int] = [:]
        for (index, database) in databases.enumerated() where database.count > 0 { result[index] = database.count }
        return result
    }

    /// Deletes the oldest restores' set-aside copies (`*.before-restore-<time>`, files and directories)
    /// beyond the newest `keep` restores; returns their paths.
    static func pruneAsides(in directory: String, keeping keep: Int) throws -> [String] {
        let marker = ".before-restore-"
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(marker) }
        // One restore sets aside the snapshot and the AOF directory with the same stamp.
        var stampSet = Swift.Set<String>()
        for name in names {
            if let range = name.range(of: marker) { stampSet.insert(String(name[range.upperBound...])) }
        }
        let stamps = stampSet.sorted()
        let doomedStamps = Swift.Set<String>(stamps.dropLast(max(keep, 1)))
        let doomed = names.filter { name in doomedStamps.contains { name.hasSuffix(marker + $0) } }.sorted()
        for name in doomed { try FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name)) }
        return doomed.map { (directory as NSString).appendingPathComponent($0) }
    }

    static func describe(_ counts: [Int: Int]) -> String {
        counts.isEmpty ? "empty" : counts.sorted { $0.key < $1.key }.map { "db\($0.key): \($0.value)" }.joined(separator: ", ")
    }

    static func timestamp() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss-SSS"  // sorts by time; two restores in a second differ
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date())
    }

    /// fsync of a file or directory.
    static func sync(_ path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw CLIFailure("\(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw CLIFailure("fsync \(path): \(String(cString: strerror(errno)))") }
    }

    /// Runs a command (looked up in PATH) and waits for it, failing with its exit status. posix_spawn
    /// rather than Foundation's Process: a server the command leaves running in the background must not
    /// keep this tool waiting.
    static func shell(_ arguments: [String]) throws {
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = posix_spawnp(&pid, arguments[0], nil, nil, &argv, environ)
        guard spawned == 0 else {
            throw CLIFailure("cannot run \(arguments[0]): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            throw CLIFailure("\(arguments.joined(separator: " ")) failed (status \(exited ? code : status))")
        }
    }

    /// Waits until nothing answers at the server's address.
    func waitUntilStopped(_ url: RedisURL) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var probe = url
            probe.connectTimeout = .milliseconds(500)
            let client = RedisClient(url: probe, pool: .init(minimumConnections: 0, maximumConnections: 1))
            defer { client.shutdown() }
            do {
                _ = try await client.ping()
            } catch is RedisError {
                // Answering (NOAUTH, LOADING …): still up.
            } catch {
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw CLIFailure("the server at \(url) is still running after \(Int(timeout)) s; nothing was changed")
    }

    /// Waits until the server answers and has finished loading; returns its keys per database.
    func waitUntilLoaded(_ url: RedisURL) async throws -> [Int: Int] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let client = try? await connection.connect() {
                defer { client.shutdown() }
                if let info = try? await client.info(), info["loading"] == "0" {
                    var counts: [Int: Int] = [:]
                    for entry in keyspace(info) { counts[entry.db] = entry.keys }
                    return counts
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw CLIFailure("the server at \(url) did not come back within \(Int(timeout)) s (the snapshot is in place)")
    }
}
