#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NovaEngine
import NovaRESP

/// Redis 7.0's multi-part append-only file: a directory (`appenddirname`) holding a manifest, one base
/// file (an RDB image, or commands) and incremental files of commands in RESP.
///
/// Commands are appended to an in-memory buffer under the server lock, so they are in execution order;
/// `flush` writes the buffer (and, with `appendfsync always`, fsyncs) before the connection that produced
/// them gets its replies. With `everysec` a background thread fsyncs once a second.
///
/// A rewrite (BGREWRITEAOF, auto-rewrite, or switching AOF on) captures the keyspace, opens a new
/// incremental file at that instant and records it in the manifest at once; the new base is written in
/// the background and a final manifest swap retires the old files. A crash at any point leaves a manifest
/// whose files replay to a consistent state.
final class AppendOnlyFile: @unchecked Sendable {
    /// A file named in the manifest.
    struct ManifestEntry: Equatable {
        enum Kind: String { case base = "b", history = "h", incremental = "i" }
        var name: String
        var sequence: Int
        var kind: Kind
    }

    private let lock = NIOLock()
    // Guarded by `lock`:
    private var buffer: [UInt8] = []
    private var descriptor: Int32 = -1
    private var currentIncremental = ""
    private var manifest: [ManifestEntry] = []
    private var needsSync = false
    /// Monotonic ns when written data first waited for an fsync (0: nothing waits).
    private var unsyncedSince: UInt64 = 0
    private var lastSyncFailed = false
    /// Bytes in the base and in the files since, for auto-rewrite and INFO.
    private(set) var baseSize = 0
    private(set) var currentSize = 0

    let directory: String
    let filename: String
    private var policy: String

    init(dir: String, directoryName: String, filename: String, fsyncPolicy: String) {
        self.directory = dir + "/" + directoryName
        self.filename = filename
        self.policy = fsyncPolicy
    }

    /// `appendfsync`: always, everysec or no.
    var fsyncPolicy: String { lock.withLock { policy } }

    var manifestPath: String { directory + "/" + filename + ".manifest" }

    // MARK: Manifest

    /// Parses a manifest; nil when it does not exist.
    static func readManifest(_ path: String) throws -> [ManifestEntry]? {
        guard let text = ConfigStore.readFile(path) else { return nil }
        var entries: [ManifestEntry] = []
        for (number, line) in text.split(separator: "\n").enumerated() {
            let trimmed = line.trimmingCharacters(in: " \t\r")
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let words = ConfigStore.splitWords(trimmed), words.count % 2 == 0 else {
                throw PersistenceError("Invalid AOF manifest file format at line \(number + 1): \(path)")
            }
            var fields: [String: String] = [:]
            for index in stride(from: 0, to: words.count, by: 2) { fields[words[index]] = words[index + 1] }
            guard let name = fields["file"], let seq = fields["seq"].flatMap(Int.init),
                  let kind = fields["type"].flatMap(ManifestEntry.Kind.init(rawValue:)) else {
                throw PersistenceError("Invalid AOF manifest file format at line \(number + 1): \(path)")
            }
            entries.append(ManifestEntry(name: name, sequence: seq, kind: kind))
        }
        return entries
    }

    private func writeManifest(_ entries: [ManifestEntry]) throws {
        let text = entries.map { "file \($0.name) seq \($0.sequence) type \($0.kind.rawValue)\n" }.joined()
        _ = try FileIO.writeAtomically(directory: directory, name: filename + ".manifest") { write in
            try write(Array(text.utf8))
        }
    }

    func baseName(_ sequence: Int, rdb: Bool) -> String { "\(filename).\(sequence).base.\(rdb ? "rdb" : "aof")" }
    func incrementalName(_ sequence: Int) -> String { "\(filename).\(sequence).incr.aof" }

    // MARK: Writing

    /// Appends one command (RESP) to the buffer. Lock order: server lock, then this lock.
    func append(_ arguments: [UnsafeRawBufferPointer]) {
        lock.withLock {
            guard descriptor >= 0 else { return }
            buffer.append(UInt8(ascii: "*"))
            buffer.append(contentsOf: RedisInteger.bytes(Int64(arguments.count)))
            buffer.append(13)
            buffer.append(10)
            for argument in arguments {
                buffer.append(UInt8(ascii: "$"))
                buffer.append(contentsOf: RedisInteger.bytes(Int64(argument.count)))
                buffer.append(13)
                buffer.append(10)
                buffer.append(contentsOf: argument)
                buffer.append(13)
                buffer.append(10)
            }
        }
    }

    /// True when there are commands not yet written.
    var hasPending: Bool { lock.withLock { !buffer.isEmpty } }

    /// Writes buffered commands; with `appendfsync always` also fsyncs. Returns false on a write error.
    @discardableResult
    func flush() -> Bool {
        lock.withLock { flushLocked(sync: policy == "always") }
    }

    private func flushLocked(sync: Bool) -> Bool {
        guard descriptor >= 0 else {
            buffer.removeAll(keepingCapacity: true)
            return true
        }
        if !buffer.isEmpty {
            do {
                try buffer.withUnsafeBytes { try FileIO.writeAll(descriptor, $0, path: currentIncremental) }
                currentSize += buffer.count
                buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
                if !needsSync { unsyncedSince = SystemClock.monotonicNanoseconds() }
                needsSync = true
            } catch {
                lastSyncFailed = true
                return false
            }
        }
        if sync && needsSync {
            if fsync(descriptor) != 0 {
                lastSyncFailed = true
                return false
            }
            needsSync = false
            unsyncedSince = 0
        }
        lastSyncFailed = false
        return true
    }

    /// The once-a-second fsync for `everysec`.
    func syncIfNeeded() {
        lock.withLock {
            _ = flushLocked(sync: true)
        }
    }

    /// How long written data has waited for an fsync, in milliseconds (0 when none waits, and always 0
    /// with `appendfsync no`, where the kernel decides).
    var fsyncLagMilliseconds: Int {
        lock.withLock {
            guard needsSync, policy != "no", unsyncedSince > 0 else { return 0 }
            return Int((SystemClock.monotonicNanoseconds() &- unsyncedSince) / 1_000_000)
        }
    }

    /// Whether the last write or fsync failed (INFO aof_last_write_status).
    var lastWriteFailed: Bool { lock.withLock { lastSyncFailed } }

    func setFsyncPolicy(_ newPolicy: String) { lock.withLock { policy = newPolicy } }

    /// Flushes, fsyncs and closes the current file.
    func close() {
        lock.withLock {
            _ = flushLocked(sync: true)
            if descriptor >= 0 { Glibc.close(descriptor) }
            descriptor = -1
        }
    }

    private func openIncremental(_ name: String) throws {
        let path = directory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw PersistenceError.errno("Can't open the append-only file", path) }
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = fd
        currentIncremental = path
    }

    // MARK: Opening after a load

    /// Continues appending to the last incremental file of a loaded manifest.
    func resume(manifest entries: [ManifestEntry], baseSize: Int, totalSize: Int) throws {
        try lock.withLock {
            manifest = entries
            self.baseSize = baseSize
            currentSize = totalSize
            guard let last = entries.last(where: { $0.kind == .incremental }) else {
                throw PersistenceError("The AOF manifest has no incremental file")
            }
            try openIncremental(last.name)
        }
    }

    // MARK: Rewrite

    /// Starts a rewrite from `job` (a snapshot taken under the server lock, which is held now): opens a new
    /// incremental file for everything that follows and names it in the manifest at once.
    /// Returns the work to do in the background.
    func beginRewrite(job: SnapshotJob) throws -> RewriteWork {
        try lock.withLock {
            if mkdir(directory, 0o755) != 0 && errno != EEXIST {
                throw PersistenceError.errno("Can't open or create append-only dir", directory)
            }
            _ = flushLocked(sync: true)
            let baseSequence = (manifest.filter { $0.kind == .base }.map(\.sequence).max() ?? 0) + 1
            let incrementalSequence = (manifest.filter { $0.kind == .incremental }.map(\.sequence).max() ?? 0) + 1
            let incremental = ManifestEntry(name: incrementalName(incrementalSequence), sequence: incrementalSequence, kind: .incremental)
            let previous = manifest
            try openIncremental(incremental.name)
            // Until the new base exists, the old files plus the new incremental file are the truth.
            if !previous.isEmpty {
                manifest = previous + [incremental]
                try writeManifest(manifest)
            } else {
                manifest = [incremental]
            }
            return RewriteWork(
                job: job, baseName: baseName(baseSequence, rdb: true), baseSequence: baseSequence,
                incremental: incremental, directory: directory)
        }
    }

    /// The part of a rewrite that runs without locks.
    struct RewriteWork: @unchecked Sendable {
        let job: SnapshotJob
        let baseName: String
        let baseSequence: Int
        let incremental: ManifestEntry
        let directory: String

        func writeBase() throws -> Int {
            try FileIO.writeAtomically(directory: directory, name: baseName) { sink in
                try job.write(to: sink)
            }
        }
    }

    /// Installs the new base: manifest swap, then removal of the files it no longer names.
    func completeRewrite(_ work: RewriteWork, baseSize: Int) throws {
        try lock.withLock {
            let newManifest = [
                ManifestEntry(name: work.baseName, sequence: work.baseSequence, kind: .base),
            ] + manifest.filter { $0.kind == .incremental && $0.sequence >= work.incremental.sequence }
            let retired = manifest.filter { entry in !newManifest.contains(entry) }
            try writeManifest(newManifest)
            manifest = newManifest
            for entry in retired { unlink(directory + "/" + entry.name) }
            self.baseSize = baseSize
            currentSize = baseSize + (FileIO.size(currentIncremental) ?? 0)
        }
    }

    /// Sizes for INFO and auto-rewrite.
    var sizes: (base: Int, current: Int) { lock.withLock { (baseSize, currentSize) } }
}
