#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NovaEngine
import NovaRESP

/// AOF state for INFO persistence and for deciding rewrites. Guarded by the server lock.
package struct AOFState: Sendable {
    package var rewriteInProgress = false
    package var rewriteScheduled = false
    package var lastRewriteOK = true
    package var lastRewriteSeconds = -1
    package var currentRewriteStart: Int64 = 0
    package var rewrites = 0
    /// Database of the last command written to the current file (-1: a SELECT is needed first).
    var lastDatabase = -1
    /// Commands logged while EXEC runs, held until it ends; nil outside EXEC.
    var group: [(database: Int, words: [[UInt8]])]? = nil
}

extension ServerCore {
    /// Writes one command to the AOF, preceded by SELECT when the database changes (lock held).
    func propagate(database: Int, _ arguments: [UnsafeRawBufferPointer]) {
        guard let aof else { return }
        if aofState.group != nil {
            aofState.group!.append((database, arguments.map { Array($0) }))
            return
        }
        if aofState.lastDatabase != database {
            let number = RedisInteger.bytes(Int64(database))
            let select: [UInt8] = Array("SELECT".utf8)
            select.withUnsafeBytes { s in number.withUnsafeBytes { n in aof.append([s, n]) } }
            aofState.lastDatabase = database
        }
        aof.append(arguments)
    }

    /// Starts holding logged commands back (EXEC).
    func beginPropagationGroup() {
        if aof != nil { aofState.group = [] }
    }

    /// Logs the held commands, between MULTI and EXEC when there is more than one (Redis 7.0 does the
    /// same, so a transaction replays atomically and a crash mid-write loses all of it).
    func endPropagationGroup(database: Int) {
        guard let group = aofState.group else { return }
        aofState.group = nil
        guard let first = group.first else { return }
        let wrap = group.count > 1
        if wrap { propagate(database: first.database, words: [Array("MULTI".utf8)]) }
        for command in group { propagate(database: command.database, words: command.words) }
        if wrap { propagate(database: aofState.lastDatabase, words: [Array("EXEC".utf8)]) }
    }

    /// Logs what one command propagates: between MULTI and EXEC when it is more than one command and no
    /// transaction or script groups them already (Redis 7.0's `propagatePendingCommands`).
    func propagate(database: Int, commands: [[[UInt8]]]) {
        let wraps = commands.count > 1 && aofState.group == nil
        if wraps { beginPropagationGroup() }
        for words in commands { propagate(database: database, words: words) }
        if wraps { endPropagationGroup(database: database) }
    }

    /// Propagates a command given as byte arrays.
    func propagate(database: Int, words: [[UInt8]]) {
        func nest(_ index: Int, _ collected: [UnsafeRawBufferPointer]) {
            if index == words.count {
                propagate(database: database, collected)
                return
            }
            words[index].withUnsafeBytes { nest(index + 1, collected + [$0]) }
        }
        nest(0, [])
    }

    /// Propagates the arguments of the command being run, unchanged.
    func propagate(database: Int, arguments: Arguments) {
        var raw: [ByteBuffer] = []
        raw.reserveCapacity(arguments.count)
        for index in 0..<arguments.count { raw.append(arguments[index]) }
        func nest(_ index: Int, _ collected: [UnsafeRawBufferPointer]) {
            if index == raw.count {
                propagate(database: database, collected)
                return
            }
            raw[index].withUnsafeReadableBytes { nest(index + 1, collected + [$0]) }
        }
        nest(0, [])
    }

    /// The AOF object for the configured directory and names (lock held).
    func makeAppendOnlyFile() -> AppendOnlyFile {
        let settings = config.settings
        return AppendOnlyFile(
            dir: settings.dir, directoryName: config.value("appenddirname") ?? "appendonlydir",
            filename: config.value("appendfilename") ?? "appendonly.aof", fsyncPolicy: settings.appendFsync)
    }

    /// Writes a first AOF (base from the current data, empty incremental file) and starts logging to it.
    /// Used at start-up with `appendonly yes` and no AOF yet; no writes happen meanwhile (loading).
    func createAppendOnly(_ file: AppendOnlyFile) throws {
        let work = try withLock { try file.beginRewrite(job: makeSnapshotJob(aofBase: true)) }
        let size = try work.writeBase()
        try file.completeRewrite(work, baseSize: size)
        withLock {
            aof = file
            aofState.lastDatabase = -1
        }
        logger.notice("Creating AOF base file on server start", metadata: ["file": "\(work.baseName)"])
    }

    /// Starts an AOF rewrite (lock held). False when one is already running.
    @discardableResult
    func startAOFRewrite(reason: String) -> Bool {
        guard !aofState.rewriteInProgress else { return false }
        let settings = config.settings
        let file = aof ?? makeAppendOnlyFile()
        let job = makeSnapshotJob(aofBase: true)
        let work: AppendOnlyFile.RewriteWork
        do {
            work = try file.beginRewrite(job: job)
        } catch {
            logger.error("Can't rewrite the append only file: \(error)")
            aofState.lastRewriteOK = false
            return false
        }
        // A running AOF keeps logging into the new incremental file from this instant.
        if settings.appendOnly {
            aof = file
            aofState.lastDatabase = -1
        }
        aofState.rewriteInProgress = true
        aofState.currentRewriteStart = job.now
        logger.notice("Background append only file rewriting started", metadata: ["reason": "\(reason)"])
        Thread { [self] in
            let start = SystemClock.monotonicNanoseconds()
            var failure: (any Error)? = nil
            do {
                let size = try work.writeBase()
                try file.completeRewrite(work, baseSize: size)
            } catch {
                failure = error
            }
            let seconds = Int((SystemClock.monotonicNanoseconds() - start) / 1_000_000_000)
            withLock {
                aofState.rewriteInProgress = false
                aofState.lastRewriteSeconds = seconds
                if let failure {
                    aofState.lastRewriteOK = false
                    logger.error("Background AOF rewrite failed: \(failure)")
                } else {
                    aofState.lastRewriteOK = true
                    aofState.rewrites += 1
                    logger.notice("Background AOF rewrite finished successfully")
                }
                if !config.settings.appendOnly && aof == nil { file.close() }
            }
        }.start()
        return true
    }

    /// Applies `appendonly` / `appendfsync` after CONFIG SET (lock held).
    func applyAOFSettings() {
        let settings = config.settings
        if settings.appendOnly && aof == nil {
            startAOFRewrite(reason: "appendonly turned on")
        } else if !settings.appendOnly, let file = aof {
            aof = nil
            file.close()
            logger.notice("Append only file disabled")
        }
        aof?.setFsyncPolicy(settings.appendFsync)
    }

    /// Starts a rewrite when the AOF grew past `auto-aof-rewrite-percentage` of its base (cron, lock held).
    func checkAutoRewrite() {
        guard let aof, !aofState.rewriteInProgress, !snapshots.loading else { return }
        let percentage = Int(config.value("auto-aof-rewrite-percentage") ?? "100") ?? 100
        let minimum = Int(config.value("auto-aof-rewrite-min-size") ?? "") ?? 64 * 1024 * 1024
        guard percentage > 0 else { return }
        let (base, current) = aof.sizes
        let growth = base > 0 ? (current - base) * 100 / base : (current > 0 ? Int.max : 0)
        if current > minimum && growth >= percentage {
            logger.notice("Starting automatic rewriting of AOF on \(growth)% growth")
            startAOFRewrite(reason: "auto-aof-rewrite")
        }
    }
}
