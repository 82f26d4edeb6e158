#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NovaEngine
import NovaScripting
import NovaRESP

extension ServerCore {
    /// Loads the AOF named by `manifestPath`: the base (RDB image or commands) then every incremental file.
    /// A last command cut short by a crash is dropped (and cut from the file) when `aof-load-truncated` is
    /// yes; anything else that does not parse stops the load with the file and byte offset, and the files
    /// are left untouched.
    /// - Returns: the manifest and sizes, for appending to continue.
    func loadAppendOnly(file: AppendOnlyFile) throws -> (manifest: [AppendOnlyFile.ManifestEntry], base: Int, total: Int) {
        guard let manifest = try AppendOnlyFile.readManifest(file.manifestPath), !manifest.isEmpty else {
            throw PersistenceError("The AOF manifest \(file.manifestPath) is empty")
        }
        let client = ClientState(id: 0, connection: nil, address: "aof", localAddress: "aof", now: 0, user: acl.defaultUser)
        client.isAuthenticated = true
        client.isReplaying = true
        withLock { keyspace.expiryPaused = true }
        defer { withLock { keyspace.expiryPaused = false } }
        var baseSize = 0
        var total = 0
        let incrementals = manifest.filter { $0.kind == .incremental }
        for entry in manifest where entry.kind != .history {
            let path = file.directory + "/" + entry.name
            guard let size = FileIO.size(path) else {
                throw PersistenceError("The AOF file \(path) named by the manifest does not exist")
            }
            total += size
            let isLast = entry == incrementals.last
            if entry.kind == .base {
                baseSize = size
                if isRDBFile(path) {
                    try loadBaseSnapshot(path: path)
                    continue
                }
            }
            try replayCommands(path: path, size: size, client: client, allowTruncation: isLast)
            logger.notice("AOF file loaded", metadata: ["file": "\(entry.name)", "bytes": "\(size)"])
        }
        return (manifest, baseSize, total)
    }

    private func isRDBFile(_ path: String) -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var magic = [UInt8](repeating: 0, count: 5)
        return read(descriptor, &magic, 5) == 5 && magic == Array("REDIS".utf8)
    }

    private func loadBaseSnapshot(path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw PersistenceError.errno("Can't open the AOF base", path) }
        defer { close(descriptor) }
        let (count, clock, sharesIntegers) = withLock { (keyspace.databases.count, snapshotClock, keyspace.sharesIntegers) }
        let fresh = (0..<count).map { _ in Database() }
        var reader = RDBReader(RDBInput(descriptor: descriptor, size: FileIO.size(path) ?? 0))
        reader.sharesIntegers = sharesIntegers
        // An AOF preamble keeps keys that have expired since: the commands after it may still touch them.
        try reader.load(into: fresh, now: 0, clock: clock)
        try withLock { () throws(LuaScripting.Failure) in
            try installLibraries(reader.functionLibraries, replacing: true)
            keyspace.replaceDatabases(fresh)
        }
        logger.notice("AOF base loaded", metadata: ["file": "\(path)", "keys": "\(reader.keysLoaded)"])
    }

    /// Replays the commands of one file in batches (the lock is released between batches).
    private func replayCommands(path: String, size: Int, client: ClientState, allowTruncation: Bool) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw PersistenceError.errno("Can't open the append only file", path) }
        defer { close(descriptor) }
        var decoder = RequestDecoder(maxBulkLength: Int.max, maxArgumentCount: Int(Int32.max))
        var buffer = ByteBuffer()
        var batch = CommandBatch()
        var consumed = 0
        var commandStart = 0
        // Where the open MULTI began: a transaction the file does not finish is dropped whole.
        var transactionStart = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var atEnd = false
        while !atEnd {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw PersistenceError.errno("Error reading the append only file", path)
            }
            if count == 0 { atEnd = true } else { buffer.writeBytes(chunk[0..<count]) }
            while true {
                // Every command in an AOF is a multibulk; anything else is corruption.
                if !decoder.isMidCommand, let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                   first != UInt8(ascii: "*") {
                    throw PersistenceError("Bad file format reading the append only file \(path) at byte \(consumed): expected '*'")
                }
                let before = buffer.readerIndex
                do {
                    try decoder.decode(&buffer, into: &batch, maxCommands: 1)
                } catch {
                    throw PersistenceError("Bad file format reading the append only file \(path) at byte \(commandStart): \(error)")
                }
                consumed += buffer.readerIndex - before
                guard batch.count == 1 else { break }
                var writer = RESPWriter(buffer: ByteBuffer(), version: .v2)
                let wasInTransaction = withLock { client.inTransaction }
                _ = execute(batch, client: client, reply: &writer)
                if !wasInTransaction && withLock({ client.inTransaction }) { transactionStart = commandStart }
                batch.removeAll()
                commandStart = consumed
            }
            buffer.discardReadBytes()
        }
        var validLength = commandStart
        if withLock({ client.inTransaction }) {
            logger.warning("Revert incomplete MULTI/EXEC transaction in AOF file \(path)")
            withLock { discardTransaction(client) }
            validLength = transactionStart
        }
        if decoder.isMidCommand || buffer.readableBytes > 0 || validLength < commandStart {
            guard allowTruncation, config.value("aof-load-truncated") == "yes" else {
                throw PersistenceError("Unexpected end of file reading the append only file \(path) at byte \(validLength). You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.")
            }
            logger.warning("!!! Warning: short read while loading the AOF file \(path)!!! AOF loaded anyway because aof-load-truncated is enabled; the last incomplete command (from byte \(validLength)) is removed from the file.")
            if truncate(path, off_t(validLength)) != 0 {
                throw PersistenceError.errno("Error truncating the AOF file", path)
            }
        }
    }
}
