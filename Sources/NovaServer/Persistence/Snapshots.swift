#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NovaRESP
import NovaScripting
import NovaEngine

/// The state of RDB snapshots, for INFO persistence, LASTSAVE and the save rules. Guarded by the
/// server lock.
package struct SnapshotState: Sendable {
    package var inProgress = false
    package var lastSaveTime: Int64 = 0
    package var lastBackgroundSaveOK = true
    package var lastBackgroundSaveSeconds = -1
    package var currentStart: Int64 = 0
    package var saves = 0
    /// When the last background save was attempted (for the retry delay after a failure).
    package var lastAttempt: Int64 = 0
    /// Keys in the snapshot being written, and how many were written (INFO current_save_keys_*).
    package var keysTotal = 0
    package var keysProcessed = 0
    /// Changes counted when the running save started; subtracted from `dirty` when it succeeds.
    var dirtyAtStart = 0
    /// The running background save, which FLUSHALL and SHUTDOWN abandon.
    var running: BackgroundSave?
    /// What the running background save captured, to count the segments writes have copied since
    /// (INFO nova `snapshot_segments_copied`); empty when none runs.
    var captured: [DatabaseSnapshot] = []
    // Loading.
    package var loading = false
    package var loadingStart: Int64 = 0
    package var loadingTotalBytes = 0
    package var loadingLoadedBytes = 0
    package var lastLoadKeysLoaded = 0
    package var lastLoadKeysExpired = 0
}

/// One background save, which may be abandoned: FLUSHALL and SHUTDOWN replace it with a save of their
/// own, where Redis kills its saving child. Its writer stops at the next chunk, and its file is never
/// installed (the check and the rename happen under the server lock).
final class BackgroundSave: Sendable {
    private let state = NIOLockedValueBox(false)

    var isAbandoned: Bool { state.withLockedValue { $0 } }

    func abandon() { state.withLockedValue { $0 = true } }

    struct Abandoned: Error, CustomStringConvertible {
        var description: String { "abandoned for a newer save" }
    }
}

/// A point-in-time copy of every database plus what the writer needs, taken under the lock in O(databases).
struct SnapshotJob: @unchecked Sendable {
    let databases: [DatabaseSnapshot]
    let directory: String
    let filename: String
    let compress: Bool
    let checksum: Bool
    let clock: AccessClockKind
    let usedMemory: Int
    let now: Int64
    let aofBase: Bool
    /// The code of every function library, saved before the databases as Redis 7.0 does.
    let functions: [[UInt8]]

    /// Writes the RDB image through `sink`.
    func write(to sink: @escaping ([UInt8]) throws -> Void, progress: ((Int) -> Void)? = nil) throws {
        var writer = RDBWriter(compress: compress, checksum: checksum, sink: sink)
        try writer.header(aux: [
            ("redis-ver", NovaCacheVersion.redisCompatible),
            ("redis-bits", "64"),
            ("ctime", String(now / 1000)),
            ("used-mem", String(usedMemory)),
            ("aof-base", aofBase ? "1" : "0"),
        ])
        try writer.functions(functions)
        for (index, database) in databases.enumerated() {
            try writer.database(index, database, now: now, clock: clock)
            progress?(database.count)
        }
        try writer.finish()
    }

    /// Writes the snapshot file atomically; returns its size. `install` runs the final rename (see
    /// `FileIO.writeAtomically`); `abandoned` stops the writing early.
    func writeFile(
        install: (_ rename: () throws -> Void) throws -> Void = { try $0() }, abandoned: BackgroundSave? = nil,
        progress: ((Int) -> Void)? = nil
    ) throws -> Int {
        try FileIO.writeAtomically(directory: directory, name: filename, install: install) { sink in
            try write(to: { chunk in
                if abandoned?.isAbandoned == true { throw BackgroundSave.Abandoned() }
                try sink(chunk)
            }, progress: progress)
        }
    }
}

extension ServerCore {
    /// The access-clock data snapshots keep for the current policy.
    var snapshotClock: AccessClockKind {
        let policy = config.settings.evictionPolicy
        if policy.usesLFU { return .lfu }
        return policy == .allkeysLRU || policy == .volatileLRU ? .lru : .none
    }

    /// Captures the keyspace for saving (lock held).
    func makeSnapshotJob(filename: String? = nil, aofBase: Bool = false) -> SnapshotJob {
        let settings = config.settings
        return SnapshotJob(
            databases: keyspace.databases.map { $0.snapshot() },
            directory: settings.dir,
            filename: filename ?? settings.dbFilename,
            compress: config.value("rdbcompression") == "yes",
            checksum: config.value("rdbchecksum") == "yes",
            clock: snapshotClock,
            usedMemory: usedMemory,
            now: SystemClock.nowMilliseconds(),
            aofBase: aofBase,
            functions: libraryCodes)
    }

    /// The code of every function library, by library name (lock held).
    var libraryCodes: [[UInt8]] {
        (functionEngine?.libraries.values.map { $0 } ?? []).sorted { $0.name < $1.name }.map(\.code)
    }

    /// Installs the function libraries a snapshot or a FUNCTION RESTORE holds (lock held): `replacing`
    /// the current ones, or added to them (a library of the same name is replaced with `replace`, an error
    /// otherwise). Nothing changes when one fails to load.
    func installLibraries(_ codes: [[UInt8]], replacing: Bool, replace: Bool = false) throws(LuaScripting.Failure) {
        if codes.isEmpty && (!replacing || functionEngine == nil) { return }
        let staging = LuaScripting()
        if !replacing, let current = functionEngine {
            for library in current.libraries.values.sorted(by: { $0.name < $1.name }) {
                try staging.loadLibrary(library.code, replace: false)
            }
        }
        for code in codes {
            let name = try LuaScripting.libraryName(code)
            if !replace && !replacing && staging.libraries[name] != nil { throw .script("ERR Library \(name) already exists") }
            try staging.loadLibrary(code, replace: true)
        }
        functionEngine = staging
    }

    /// SAVE: writes the snapshot while holding the lock (clients wait, as with Redis's SAVE).
    func saveSynchronously() throws(CommandError) {
        if snapshots.inProgress { throw CommandError("ERR Background save already in progress") }
        let job = makeSnapshotJob()
        let start = SystemClock.monotonicNanoseconds()
        do {
            let size = try job.writeFile()
            snapshots.lastSaveTime = job.now / 1000
            snapshots.saves += 1
            stats.dirty = 0
            let seconds = Double(SystemClock.monotonicNanoseconds() - start) / 1e9
            logger.notice("DB saved on disk", metadata: ["bytes": "\(size)", "seconds": "\(String(format2: seconds))"])
        } catch {
            // Unlike a failed BGSAVE, a failed foreground save does not deny writes (MISCONF): the
            // caller got the error, as with Redis's rdbSave.
            logger.error("Error saving DB on disk: \(error)")
            throw CommandError("ERR")
        }
    }

    /// Abandons a running background save (lock held), as Redis kills its saving child before FLUSHALL
    /// and SHUTDOWN save: its older image must not be installed after theirs.
    func abandonBackgroundSave() {
        guard let running = snapshots.running else { return }
        logger.notice("There is a background save in progress. Abandoning it.")
        running.abandon()
        snapshots.running = nil
        snapshots.captured = []
        snapshots.inProgress = false
    }

    /// BGSAVE: captures the keyspace now and writes it on a background thread. Lock held.
    /// - Returns: false when a save is already running.
    @discardableResult
    func startBackgroundSave(reason: String) -> Bool {
        guard !snapshots.inProgress else { return false }
        let job = makeSnapshotJob()
        let save = BackgroundSave()
        snapshots.running = save
        snapshots.captured = job.databases
        snapshots.inProgress = true
        snapshots.currentStart = job.now
        snapshots.lastAttempt = job.now
        snapshots.dirtyAtStart = stats.dirty
        snapshots.keysTotal = job.databases.reduce(0) { $0 + $1.count }
        snapshots.keysProcessed = 0
        logger.notice("Background saving started", metadata: ["reason": "\(reason)"])
        Thread { [self] in
            let start = SystemClock.monotonicNanoseconds()
            var outcome: Result<Int, any Error>
            do {
                let install: (() throws -> Void) throws -> Void = { [self] rename in
                    try withLock {
                        if save.isAbandoned { throw BackgroundSave.Abandoned() }
                        try rename()
                    }
                }
                outcome = .success(try job.writeFile(install: install, abandoned: save) { [self] keys in
                    withLock { if !save.isAbandoned { snapshots.keysProcessed += keys } }
                })
            } catch {
                outcome = .failure(error)
            }
            let seconds = Int((SystemClock.monotonicNanoseconds() - start) / 1_000_000_000)
            withLock {
                // Abandoned: whoever abandoned it has saved since and owns the state now.
                if save.isAbandoned { return }
                snapshots.running = nil
                snapshots.captured = []
                snapshots.inProgress = false
                snapshots.lastBackgroundSaveSeconds = seconds
                switch outcome {
                case .success(let size):
                    snapshots.lastBackgroundSaveOK = true
                    snapshots.lastSaveTime = job.now / 1000
                    snapshots.saves += 1
                    stats.dirty = max(0, stats.dirty - snapshots.dirtyAtStart)
                    logger.notice("Background saving terminated with success", metadata: ["bytes": "\(size)"])
                case .failure(let error):
                    snapshots.lastBackgroundSaveOK = false
                    logger.error("Background saving error: \(error)")
                }
            }
        }.start()
        return true
    }

    /// Starts a background save when a `save <seconds> <changes>` rule is met (cron, lock held).
    func checkSaveRules(now: Int64) {
        guard !snapshots.inProgress, !snapshots.loading else { return }
        let seconds = (now - snapshots.lastSaveTime * 1000) / 1000
        // After a failure, wait 5 seconds between attempts (Redis's CONFIG_BGSAVE_RETRY_DELAY).
        if !snapshots.lastBackgroundSaveOK && now - snapshots.lastAttempt < 5000 { return }
        for rule in config.settings.saveRules where stats.dirty >= rule.changes && seconds >= Int64(rule.seconds) {
            logger.notice("\(rule.changes) changes in \(rule.seconds) seconds. Saving...")
            startBackgroundSave(reason: "save rule")
            return
        }
    }

    /// Whether a shutdown asked for as `request` saves a snapshot first.
    func shutdownShouldSave(_ request: ShutdownRequest) -> Bool {
        request.save ?? !config.settings.saveRules.isEmpty
    }

    /// The last step of a shutdown under the lock: the final save if `request` wants one, then no
    /// command runs any more (`halted`), so every write that was answered is in what gets saved — the
    /// snapshot just written, or the append-only file closed after this. Lock held.
    /// - Returns: false, still serving, when the save failed and `request` is not forced.
    func haltForShutdown(_ request: ShutdownRequest) -> Bool {
        if shutdownShouldSave(request) {
            abandonBackgroundSave()
            do {
                try saveSynchronously()
            } catch {
                logger.warning("Error trying to save the DB, can't exit.")
                if !request.force { return false }
            }
        }
        halted = true
        return true
    }

    /// True when writes must be refused because the last background save failed (MISCONF).
    var writesDeniedByDiskError: Bool {
        !snapshots.lastBackgroundSaveOK && config.value("stop-writes-on-bgsave-error") == "yes"
            && !config.settings.saveRules.isEmpty
    }

    /// Loads `dir/dbfilename` into the keyspace. Runs without the lock (clients get -LOADING meanwhile).
    func loadSnapshot(path: String) throws {
        let size = FileIO.size(path) ?? 0
        let (databaseCount, clock, sharesIntegers) = withLock { () -> (Int, AccessClockKind, Bool) in
            snapshots.loadingTotalBytes = size
            return (keyspace.databases.count, snapshotClock, keyspace.sharesIntegers)
        }
        let start = SystemClock.monotonicNanoseconds()
        var lastLog = start
        let (fresh, reader) = try Self.readSnapshot(
            path: path, databaseCount: databaseCount, clock: clock, sharesIntegers: sharesIntegers
        ) { [self] offset, keys in
            withLock { snapshots.loadingLoadedBytes = offset }
            let now = SystemClock.monotonicNanoseconds()
            if now - lastLog > 1_000_000_000 {
                lastLog = now
                let percent = size > 0 ? Double(offset) * 100 / Double(size) : 0
                logger.notice("Loading RDB", metadata: ["percent": "\(String(format2: percent))", "keys": "\(keys)", "bytes": "\(offset)"])
            }
        }
        let seconds = Double(SystemClock.monotonicNanoseconds() - start) / 1e9
        try withLock { () throws(LuaScripting.Failure) in
            try installLibraries(reader.functionLibraries, replacing: true)
            keyspace.replaceDatabases(fresh)
            snapshots.lastLoadKeysLoaded = reader.keysLoaded
            snapshots.lastLoadKeysExpired = reader.keysExpired
            snapshots.loadingLoadedBytes = size
            snapshots.lastSaveTime = SystemClock.nowMilliseconds() / 1000
        }
        logger.notice("DB loaded from disk", metadata: [
            "seconds": "\(String(format2: seconds))", "keys": "\(reader.keysLoaded)", "expired": "\(reader.keysExpired)",
            "redis-ver": "\(reader.aux["redis-ver"] ?? "?")",
        ])
    }

    /// Reads an RDB file into new databases (no lock taken: the caller holds it or loads before serving).
    static func readSnapshot(
        path: String, databaseCount: Int, clock: AccessClockKind, sharesIntegers: Bool,
        progress: ((Int, Int) -> Void)? = nil
    ) throws -> ([Database], RDBReader) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw PersistenceError.errno("Can't open the RDB file", path) }
        defer { close(descriptor) }
        let fresh = (0..<databaseCount).map { _ in Database() }
        var reader = RDBReader(RDBInput(descriptor: descriptor, size: FileIO.size(path) ?? 0))
        reader.sharesIntegers = sharesIntegers
        if let progress { reader.progress = progress }
        try reader.load(into: fresh, now: SystemClock.nowMilliseconds(), clock: clock)
        return (fresh, reader)
    }

    /// DEBUG RELOAD (lock held): saves the snapshot (unless `save` is false), then loads it back,
    /// replacing the data, or adding to it with `flush` false (`merge` lets loaded keys replace existing
    /// ones; without it a key present on both sides is an error).
    func reloadSnapshot(save: Bool, flush: Bool, merge: Bool) throws(CommandError) {
        if save { try saveSynchronously() }
        let settings = config.settings
        let path = settings.dir + "/" + settings.dbFilename
        let loaded: [Database]
        do {
            let (databases, reader) = try Self.readSnapshot(
                path: path, databaseCount: keyspace.databases.count, clock: snapshotClock,
                sharesIntegers: keyspace.sharesIntegers)
            try installLibraries(reader.functionLibraries, replacing: flush, replace: true)
            loaded = databases
        } catch {
            logger.warning("DEBUG RELOAD could not load the snapshot: \(error)")
            throw CommandError("ERR Error trying to load the RDB dump, check server logs.")
        }
        if flush {
            keyspace.replaceDatabases(loaded)
            return
        }
        if !merge {
            // Refused before anything is added: Redis panics on such a duplicate; here the data stays.
            var duplicate = false
            for (index, database) in loaded.enumerated() where !duplicate {
                database.forEach { entry in
                    if !duplicate && keyspace.lookupWrite(index, entry.key, [.noTouch]) != nil { duplicate = true }
                }
            }
            if duplicate {
                logger.warning("DEBUG RELOAD NOFLUSH found keys present both in memory and in the snapshot")
                throw CommandError("ERR Error trying to load the RDB dump, check server logs.")
            }
        }
        for (index, database) in loaded.enumerated() {
            database.forEach { entry in
                if let ref = keyspace.lookupWrite(index, entry.key, [.noTouch]) { _ = keyspace.remove(index, ref) }
                keyspace.insert(index, entry: entry)
            }
        }
    }
}
