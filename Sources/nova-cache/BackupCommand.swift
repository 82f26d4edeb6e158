import ArgumentParser
import Foundation
import NovaClient
import NovaEngine

/// `nova-cache backup`: BGSAVE, wait, copy the snapshot to a timestamped file, verify it, prune old ones.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Snapshot the server (BGSAVE) and keep a verified, timestamped copy of the RDB file.",
        discussion: """
            Runs on the server's host: the snapshot is copied from the server's `dir`/`dbfilename`. The copy \
            is checked (RDB header and CRC64 trailer) before older backups beyond --keep are deleted. \
            Backups hold all the data: they are written with mode 0600 in a directory created with mode 0700.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Directory for the backups (e.g. /var/backups/nova-cache).") var to: String
    @Option(help: "How many backups to keep (older ones are deleted).") var keep: Int = 7
    @Option(help: "Give up waiting for the snapshot after this many seconds.") var timeout: Double = 600

    func run() async throws {
        try await reporting {
            guard keep >= 1 else { throw CLIFailure("--keep must be at least 1", exitCode: 2) }
            let client = try await connection.connect()
            defer { client.shutdown() }
            // rdb_saves counts completed snapshots (Redis 7.0 and nova-cache-server); LASTSAVE has only
            // second resolution.
            let savesBefore = Int(try await client.info("persistence")["rdb_saves"] ?? "")
            let before = try await client.send("LASTSAVE").integer()
            do {
                try await client.send("BGSAVE")
            } catch let error as RedisError where error.message.contains("already in progress") {
                // Someone else's save: wait for it and for ours.
            }
            let started = Date()
            let interactive = isatty(1) == 1
            while true {
                let info = try await client.info("persistence")
                let lastSave = Int64(info["rdb_last_save_time"] ?? "") ?? 0
                if info["rdb_bgsave_in_progress"] == "0" {
                    if info["rdb_last_bgsave_status"] == "err" { throw CLIFailure("the server's background save failed") }
                    if let savesBefore, let saves = Int(info["rdb_saves"] ?? "") {
                        if saves > savesBefore { break }
                    } else if lastSave > before || Date().timeIntervalSince(started) > 2 && lastSave >= before {
                        break
                    }
                }
                let elapsed = Date().timeIntervalSince(started)
                if elapsed > timeout { throw CLIFailure("no snapshot after \(Int(timeout)) s") }
                if interactive {
                    print(String(format: "\rsaving snapshot… %.1f s", elapsed), terminator: "")
                    fflush(nil)
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            if interactive { print("\r\u{1B}[2K", terminator: "") }
            let source = try await snapshotPath(client)
            guard FileManager.default.fileExists(atPath: source) else {
                throw CLIFailure("snapshot \(source) is not on this machine: run the backup on the server's host")
            }
            if !FileManager.default.fileExists(atPath: to) {
                try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } else if let mode = (try? FileManager.default.attributesOfItem(atPath: to)[.posixPermissions]) as? Int, mode & 0o077 != 0 {
                FileHandle.standardError.write(Data("nova-cache: warning: \(to) is readable by others (mode \(String(mode, radix: 8))): chmod 700 it\n".utf8))
            }
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyyMMdd-HHmmss-SSS"  // sorts by time, which pruning relies on
            formatter.timeZone = TimeZone(identifier: "UTC")
            var name = "nova-cache-\(formatter.string(from: Date())).rdb"
            while FileManager.default.fileExists(atPath: (to as NSString).appendingPathComponent(name)) {
                try await Task.sleep(for: .milliseconds(1))
                name = "nova-cache-\(formatter.string(from: Date())).rdb"
            }
            let destination = (to as NSString).appendingPathComponent(name)
            // Copied under a name pruning ignores, made private, verified, then renamed: a backup that
            // exists under its final name is complete.
            let partial = destination + ".partial"
            try? FileManager.default.removeItem(atPath: partial)
            let checksum: UInt64
            do {
                try FileManager.default.copyItem(atPath: source, toPath: partial)
                try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: partial)
                checksum = try verifySnapshot(partial)
                try FileManager.default.moveItem(atPath: partial, toPath: destination)
            } catch {
                try? FileManager.default.removeItem(atPath: partial)
                throw error
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: destination)[.size] as? Int) ?? 0
            print("backup \(destination) (\(size) bytes, crc64 \(String(checksum, radix: 16)), verified)")
            for old in try prune() { print("removed old backup \(old)") }
        }
    }

    func snapshotPath(_ client: RedisClient) async throws -> String {
        let directory = try await client.configValue("dir")
        let file = try await client.configValue("dbfilename")
        return (directory as NSString).appendingPathComponent(file)
    }

    /// Deletes the oldest `nova-cache-*.rdb` files beyond `keep`; returns their names.
    func prune() throws -> [String] {
        let backups = try FileManager.default.contentsOfDirectory(atPath: to)
            .filter { $0.hasPrefix("nova-cache-") && $0.hasSuffix(".rdb") }
            .sorted()
        let doomed = backups.dropLast(keep)
        for name in doomed { try FileManager.default.removeItem(atPath: (to as NSString).appendingPathComponent(name)) }
        return Array(doomed)
    }
}

/// `nova-cache verify FILE`: checks a snapshot the way `backup` checks its copies.
struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check an RDB snapshot file (header, end marker, CRC64).")
    @Argument(help: "The snapshot file.") var file: String

    func run() async throws {
        try await reporting {
            let checksum = try verifySnapshot(file)
            print("\(file): ok (crc64 \(String(checksum, radix: 16)))")
        }
    }
}

/// Checks an RDB file: the `REDIS` magic, a known version, and the CRC64 trailer over everything before
/// it (0 means the writer disabled checksums). Returns the checksum.
func verifySnapshot(_ path: String) throws -> UInt64 {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIFailure("\(path): no such file") }
    guard !isDirectory.boolValue else { throw CLIFailure("\(path): is a directory") }
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIFailure("\(path): cannot be read (permission denied?)") }
    guard data.count >= 9 + 1 + 8 else {
        throw CLIFailure("\(path): too short to be an RDB snapshot")
    }
    let bytes = [UInt8](data)
    guard bytes.starts(with: Array("REDIS".utf8)), let version = Int(String(decoding: bytes[5..<9], as: UTF8.self)), version <= 11 else {
        throw CLIFailure("\(path): not an RDB snapshot (bad header)")
    }
    let body = bytes.count - 8
    guard bytes[body - 1] == 0xFF else { throw CLIFailure("\(path): truncated (no end-of-file marker)") }
    var stored: UInt64 = 0
    for index in 0..<8 { stored |= UInt64(bytes[body + index]) << (8 * UInt64(index)) }
    guard stored != 0 else { return 0 }
    var crc = CRC64()
    bytes.withUnsafeBytes { crc.update(UnsafeRawBufferPointer(rebasing: $0[0..<body])) }
    guard crc.value == stored else {
        throw CLIFailure("\(path): checksum mismatch (stored \(String(stored, radix: 16)), computed \(String(crc.value, radix: 16)))")
    }
    return stored
}
