import NIOCore
import NovaEngine
import NovaRESP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// DEBUG: the subcommands tools and test suites use. Refused unless `enable-debug-command` is `yes`, or
/// `local` and the client is on the loopback interface or a Unix socket, with Redis's message.
enum DebugCommands {
    static func debug(_ ctx: inout CommandContext) throws(CommandError) {
        try checkAllowed(ctx)
        let name = ctx.args.string(1).lowercased()
        let count = ctx.args.count
        switch (name, count) {
        case ("help", 2): help(&ctx)
        case ("sleep", 3): try sleep(&ctx)
        case ("object", 3): try object(&ctx)
        case ("reload", _): try reload(&ctx)
        case ("set-active-expire", 3):
            // Read as C's atoi, as Redis reads it: anything not starting with digits is 0 (off).
            let text = ctx.args.string(2).drop { $0 == " " }
            let sign = text.first == "-" || text.first == "+" ? 1 : 0
            ctx.server.activeExpireEnabled = text.dropFirst(sign).prefix { $0.isASCII && $0.isNumber }.contains { $0 != "0" }
            ctx.reply.ok()
        case ("change-repl-id", 2):
            ctx.server.replicationID = Self.randomHex(40)
            ctx.server.logger.notice("Changing replication IDs after receiving DEBUG change-repl-id")
            ctx.reply.ok()
        case ("quicklist-packed-threshold", 3):
            // Redis's quicklistisSetPackedThreshold: at most 4 GB less 1 MB; 0 restores the 1 GB default.
            guard let size = ConfigStore.parseMemory(ctx.args.string(2)), size <= (1 << 32) - (1 << 20) else {
                throw CommandError("ERR argument must be a memory value bigger than 1 and smaller than 4gb")
            }
            ctx.server.quicklistPackedThreshold = size == 0 ? 1 << 30 : Int(size)
            ctx.reply.ok()
        case ("listpack", 3): try listpack(&ctx)
        case ("populate", 3...5): try populate(&ctx)
        case ("error", 3): throw CommandError(ctx.args.string(2))
        case ("log", 3):
            ctx.server.logger.warning("DEBUG LOG: \(ctx.args.string(2))")
            ctx.reply.ok()
        case ("stringmatch-test", 2):
            stringMatchFuzz()
            ctx.reply.simpleString("Apparently Redis did not crash: test passed")
        case ("digest", 2):
            ctx.reply.simpleString(DatasetDigest.of(ctx.keyspace).hex)
        case ("digest-value", _):
            ctx.reply.array(count - 2)
            for index in 2..<count {
                var digest = DatasetDigest()
                if let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[index], [.noTouch, .noStats, .noExpire]) {
                    let entry = ctx.keyspace.entry(ctx.db, ref)
                    digest.add(entry.value, hasExpiry: entry.expireAt != 0)
                }
                ctx.reply.simpleString(digest.hex)
            }
        default:
            throw .subcommandSyntax(ctx.args.printable(1, limit: 128), of: "debug")
        }
    }

    static let notAllowed = CommandError("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.")

    private static func checkAllowed(_ ctx: CommandContext) throws(CommandError) {
        switch ctx.server.config.value("enable-debug-command") {
        case "yes": return
        case "local" where isLocal(ctx.client.address): return
        default: throw notAllowed
        }
    }

    /// Loopback addresses and Unix sockets, as Redis's `islocalClient`.
    static func isLocal(_ address: String) -> Bool {
        address.hasPrefix("127.0.0.1:") || address.hasPrefix("[::1]:") || address.hasPrefix("/")
    }

    /// DEBUG SLEEP seconds: stops the whole server for that long (the lock is held), as Redis does.
    private static func sleep(_ ctx: inout CommandContext) throws(CommandError) {
        let seconds = Double(ctx.args.string(2)) ?? 0
        if seconds > 0 {
            let microseconds = min(seconds * 1_000_000, Double(UInt32.max))
            _ = usleep(UInt32(microseconds))
        }
        ctx.reply.ok()
    }

    /// `Value at:… refcount:… encoding:… serializedlength:… lru:… lru_seconds_idle:…`, Redis's fields;
    /// the address is the key's slot in the engine and the serialized length that of its RDB value here.
    private static func object(_ ctx: inout CommandContext) throws(CommandError) {
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[2], [.noTouch, .noStats]) else { throw .noSuchKey }
        let entry = ctx.keyspace.entry(ctx.db, ref)
        let refcount = entry.value.isSharedInteger ? Int(Int32.max) : 1
        let location = String(UInt64(ref.segment) << 32 | UInt64(ref.index), radix: 16)
        ctx.reply.simpleString("Value at:0x\(location) refcount:\(refcount) encoding:\(entry.value.encodingName) serializedlength:\(serializedLength(entry.value)) lru:\(entry.access & 0xFFFFFF) lru_seconds_idle:\(ctx.keyspace.idleSeconds(of: entry))")
    }

    /// The bytes RDBWriter writes for the value alone (without its type byte and key).
    static func serializedLength(_ value: Value) -> Int {
        var total = 0
        var writer = RDBWriter(compress: true, checksum: false) { total += $0.count }
        // An empty key costs one length byte, the type one more.
        try? writer.entry(Entry(key: Bytes([UInt8]()), value: value), now: 0)
        try? writer.finish()
        // Less the EOF opcode and the 8-byte checksum `finish` adds.
        return max(0, total - 2 - 9)
    }

    private static func reload(_ ctx: inout CommandContext) throws(CommandError) {
        var save = true, flush = true, merge = false
        for index in 2..<ctx.args.count {
            switch ctx.args.string(index).lowercased() {
            case "merge": merge = true
            case "noflush": flush = false
            case "nosave": save = false
            default: throw CommandError("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
            }
        }
        try ctx.server.reloadSnapshot(save: save, flush: flush, merge: merge)
        ctx.server.logger.notice("DB reloaded by DEBUG RELOAD")
        ctx.reply.ok()
    }

    /// DEBUG POPULATE count [prefix] [size]: creates string keys `prefix:0` … (`key:` by default) with
    /// values `value:<n>` (cut or padded with zero bytes to `size` when given), leaving existing keys alone.
    private static func populate(_ ctx: inout CommandContext) throws(CommandError) {
        let outOfRange = CommandError("ERR value is out of range, must be positive")
        let count = try ctx.args.integer(2, or: outOfRange)
        guard count >= 0 else { throw outOfRange }
        let prefix = ctx.args.count > 3 ? Array(ctx.args[3].readableBytesView) : Array("key".utf8)
        var size: Int? = nil
        if ctx.args.count > 4 {
            let value = try ctx.args.integer(4, or: outOfRange)
            guard value >= 0 else { throw outOfRange }
            size = Int(value)
        }
        var created = 0
        for number in 0..<Int(count) {
            let key = prefix + Array(":\(number)".utf8)
            if ctx.keyspace.lookupWrite(ctx.db, key, [.noTouch]) != nil { continue }
            var value = Array("value:\(number)".utf8)
            if let size {
                value = Array(value.prefix(size)) + [UInt8](repeating: 0, count: max(0, size - value.count))
            }
            ctx.keyspace.insert(ctx.db, Bytes(key), .string(from: value, sharesIntegers: ctx.sharesIntegers))
            created += 1
        }
        ctx.dirty(created)
        ctx.reply.ok()
    }

    /// Prints a compact value's elements to standard output, as Redis prints a listpack.
    private static func listpack(_ ctx: inout CommandContext) throws(CommandError) {
        guard let ref = ctx.keyspace.lookupRead(ctx.db, ctx.args[2], [.noTouch, .noStats]) else { throw .noSuchKey }
        let value = ctx.keyspace.value(ctx.db, ref)
        guard "\(value.encodingName)" == "listpack" else { throw CommandError("ERR Not a listpack encoded object.") }
        var elements: [String] = []
        switch value {
        case .list(let list): elements = list.elements.map { String(decoding: $0.array, as: UTF8.self) }
        case .hash(let hash): elements = hash.fields.flatMap { [String(decoding: $0.key.array, as: UTF8.self), String(decoding: $0.value.array, as: UTF8.self)] }
        case .zset(let zset):
            zset.forEach(from: 0) { element in
                elements += [String(decoding: element.member.array, as: UTF8.self), String(decoding: RedisFloat.format(element.score), as: UTF8.self)]
                return true
            }
        default: break
        }
        print("{listpack elements \(elements.count)}")
        for (index, element) in elements.enumerated() { print("  [\(index)] \(element)") }
        ctx.reply.simpleString("Listpack structure printed on stdout")
    }

    /// Matches random patterns (rich in `*?[]\^-`) against random strings a million times, as Redis's
    /// `stringmatchlen_fuzz_test`: the reply only says it did not crash or hang.
    static func stringMatchFuzz(iterations: Int = 1_000_000) {
        // xorshift64*: a system random source per byte would cost a system call each.
        var state = UInt64.random(in: 1...UInt64.max)
        func next(_ bound: Int) -> Int {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return Int((state &* 2685821657736338717) >> 33) % bound
        }
        let alphabet = Array("*?[]\\^-ab".utf8)
        var pattern = [UInt8](repeating: 0, count: 32), string = [UInt8](repeating: 0, count: 32)
        var matches = 0
        for _ in 0..<iterations {
            let patternLength = next(32), stringLength = next(32)
            for index in 0..<patternLength { pattern[index] = alphabet[next(alphabet.count)] }
            for index in 0..<stringLength { string[index] = alphabet[next(alphabet.count)] }
            pattern.withUnsafeBytes { p in
                string.withUnsafeBytes { s in
                    if RedisGlob.matches(UnsafeRawBufferPointer(rebasing: p[0..<patternLength]), UnsafeRawBufferPointer(rebasing: s[0..<stringLength])) {
                        matches += 1
                    }
                }
            }
        }
        _ = matches
    }

    static func randomHex(_ count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &generator)! })
    }

    private static func help(_ ctx: inout CommandContext) {
        Help.reply(&ctx, "DEBUG", [
            "CHANGE-REPL-ID",
            "    Change the replication IDs of the instance.",
            "    Dangerous: should be used only for testing the replication subsystem.",
            "DIGEST",
            "    Output a hex signature representing the current DB content.",
            "DIGEST-VALUE <key> [<key> ...]",
            "    Output a hex signature of the values of all the specified keys.",
            "ERROR <string>",
            "    Return a Redis protocol error with <string> as message. Useful for clients",
            "    unit tests to simulate Redis errors.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "LISTPACK <key>",
            "    Show low level info about the listpack encoding of <key>.",
            "OBJECT <key>",
            "    Show low level info about the <key> and associated value.",
            "POPULATE <count> [<prefix>] [<size>]",
            "    Create <count> string keys named key:<num>. If <prefix> is specified then",
            "    it is used instead of the 'key' prefix.",
            "QUICKLIST-PACKED-THRESHOLD <size>",
            "    Sets the threshold for elements to be inserted as plain vs packed nodes",
            "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
            "RELOAD [option ...]",
            "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
            "    * MERGE: conflicting keys will be loaded from RDB.",
            "    * NOFLUSH: the existing database will not be removed before load, but",
            "      conflicting keys will generate an exception and kill the server.",
            "    * NOSAVE: the database will be loaded from an existing RDB file.",
            "    Examples:",
            "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
            "      the database.",
            "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
            "      existing RDB file.",
            "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
            "      file to the database.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
            "STRINGMATCH-TEST",
            "    Run a fuzz tester against the stringmatchlen() function.",
        ])
    }
}
