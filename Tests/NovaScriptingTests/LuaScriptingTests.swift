import NIOCore
import NovaRESP
import NovaScripting
import Testing

/// A host that answers every command with a canned RESP reply and records what it was asked.
final class RecordingHost: ScriptHost {
    var calls: [[String]] = []
    var replies: [String: String] = [:]
    var logged: [(Int, String)] = []

    func scriptCall(_ arguments: [ByteBuffer], version: RESPVersion, reply: inout ByteBuffer) {
        let words = arguments.map { String(buffer: $0) }
        calls.append(words)
        reply.writeString(replies[words[0].lowercased()] ?? "+OK\r\n")
    }

    func scriptMayCall(_ arguments: [ByteBuffer]) -> Bool? {
        String(buffer: arguments[0]) == "nosuch" ? nil : String(buffer: arguments[0]) != "flushall"
    }

    func scriptLog(level: Int, message: String) { logged.append((level, message)) }

    /// Interrupts the script with `stopMessage` from the `stopAfter`th hook call on.
    var interrupts = 0
    var stopAfter = Int.max
    var stopMessage = "ERR stopped"
    func scriptInterrupt() -> String? {
        interrupts += 1
        return interrupts >= stopAfter ? stopMessage : nil
    }
}

@Suite struct LuaScriptingTests {
    func run(_ body: String, keys: [String] = [], arguments: [String] = [], host: RecordingHost = RecordingHost(), version: RESPVersion = .v2) throws -> String {
        let scripting = LuaScripting()
        let sha = try scripting.load(Array(body.utf8))
        var reply = RESPWriter(buffer: ByteBuffer())
        reply.version = version
        let found = scripting.run(sha: sha, keys: ScriptValues(keys.map { ByteBuffer(string: $0) }), arguments: ScriptValues(arguments.map { ByteBuffer(string: $0) }), host: host, reply: &reply)
        #expect(found)
        return String(buffer: reply.buffer)
    }

    @Test func returnValuesAreConvertedAsRedisDoes() throws {
        #expect(try run("return 3.99") == ":3\r\n")
        #expect(try run("return 1e20") == ":-9223372036854775808\r\n")
        #expect(try run("return {1, 'x', true, false, nil, 4}") == "*4\r\n:1\r\n$1\r\nx\r\n:1\r\n$-1\r\n")
        #expect(try run("return {ok='fine'}") == "+fine\r\n")
        #expect(try run("return {err='CODE msg'}") == "-CODE msg\r\n")
        #expect(try run("return {double=1.5}") == "$3\r\n1.5\r\n")
        #expect(try run("return {double=1.5}", version: .v3) == ",1.5\r\n")
        #expect(try run("return {map={a=1}}", version: .v3) == "%1\r\n$1\r\na\r\n:1\r\n")
        #expect(try run("redis.setresp(3); return false", version: .v3) == "#f\r\n")
        #expect(try run("return false", version: .v3) == "_\r\n")
    }

    @Test func keysAndArgumentsAreTheScriptsGlobals() throws {
        #expect(try run("return {KEYS[1], ARGV[2], #KEYS, #ARGV}", keys: ["k"], arguments: ["a", "b"]) == "*4\r\n$1\r\nk\r\n$1\r\nb\r\n:1\r\n:2\r\n")
    }

    @Test func commandRepliesAreConvertedToLua() throws {
        let host = RecordingHost()
        host.replies = [
            "get": "$5\r\nhello\r\n", "incr": ":7\r\n", "lrange": "*2\r\n$1\r\na\r\n$-1\r\n", "set": "+OK\r\n",
            "bad": "-WRONGTYPE no\r\n", "hgetall": "%1\r\n$1\r\nf\r\n,2.5\r\n",
        ]
        #expect(try run("return redis.call('get', 'k') .. redis.call('incr', 'n')", host: host) == "$6\r\nhello7\r\n")
        #expect(try run("local t = redis.call('lrange', 'l', 0, -1); return {t[1], type(t[2])}", host: host) == "*2\r\n$1\r\na\r\n$7\r\nboolean\r\n")
        #expect(try run("return redis.call('set', 'k', 'v').ok", host: host) == "$2\r\nOK\r\n")
        #expect(try run("return redis.pcall('bad').err", host: host) == "$12\r\nWRONGTYPE no\r\n")
        #expect(try run("redis.setresp(3); return redis.call('hgetall', 'h').map.f.double", host: host) == ":2\r\n")
        #expect(host.calls.contains(["lrange", "l", "0", "-1"]))
    }

    @Test func errorsCarryWhereTheyHappened() throws {
        let host = RecordingHost()
        host.replies = ["bad": "-WRONGTYPE no\r\n"]
        let reply = try run("\n\nreturn redis.call('bad')", host: host)
        #expect(reply.hasPrefix("-WRONGTYPE no script: ") && reply.hasSuffix(", on @user_script:3.\r\n"))
        #expect(try run("error('boom')").hasPrefix("-ERR user_script:1: boom script: "))
        #expect(try run("x = 1").hasPrefix("-ERR user_script:1: Attempt to modify a readonly table script: "))
        #expect(try run("return nope").hasPrefix("-ERR user_script:1: Script attempted to access nonexistent global variable 'nope'"))
        #expect(try run("local ok, e = pcall(redis.call, 'bad'); return e", host: host) == "$12\r\nWRONGTYPE no\r\n")
        #expect(throws: LuaScripting.Failure.script("ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'")) {
            try LuaScripting().load(Array("return +".utf8))
        }
    }

    @Test func theSandboxHidesWhatRedisHides() throws {
        for name in ["os", "io", "print", "loadfile", "dofile", "getfenv", "setfenv", "require", "debug"] {
            #expect(try run("return \(name)").contains("nonexistent global variable '\(name)'"), "\(name)")
        }
        #expect(try run("string.x = 1").contains("Attempt to modify a readonly table"))
        #expect(try run("return cjson.encode({1, 2})") == "$5\r\n[1,2]\r\n")
        #expect(try run("return bit.bor(1, 6)") == ":7\r\n")
        #expect(try run("return struct.pack('>I2', 258)") == "$2\r\n\u{1}\u{2}\r\n")
        #expect(try run("return {struct.unpack('<h', struct.pack('<h', -2))}") == "*2\r\n:-2\r\n:3\r\n")
        #expect(try run("return cmsgpack.unpack(cmsgpack.pack({1, 'two', {three = 3}}))[3].three") == ":3\r\n")
        #expect(try run("return {string.byte(cmsgpack.pack(300, -1, 'a'), 1, -1)}") == "*6\r\n:205\r\n:1\r\n:44\r\n:255\r\n:161\r\n:97\r\n")
    }

    @Test func randomIsRedisRand48() throws {
        // The sequence Redis 7.0 gives after math.randomseed(7).
        #expect(try run("math.randomseed(7); return {math.random(1000), math.random(1000), math.random(5, 9)}") == "*3\r\n:\(Self.seven.0)\r\n:\(Self.seven.1)\r\n:\(Self.seven.2)\r\n")
    }
    static let seven = (267, 683, 6)

    @Test func theHostIsAskedForLogsAndACLChecks() throws {
        let host = RecordingHost()
        #expect(try run("redis.log(redis.LOG_WARNING, 'hello', 'there'); return redis.acl_check_cmd('flushall')", host: host) == "$-1\r\n")
        #expect(host.logged.count == 1 && host.logged[0] == (3, "hello there"))
    }

    @Test func scriptsAreCachedBySHA1AndFlushed() throws {
        let scripting = LuaScripting()
        let sha = try scripting.load(Array("return 1".utf8))
        #expect(sha == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        #expect(scripting.exists(sha.uppercased()) && scripting.scriptCount == 1)
        scripting.flush()
        var reply = RESPWriter(buffer: ByteBuffer())
        #expect(!scripting.run(sha: sha, keys: [], arguments: [], host: RecordingHost(), reply: &reply))
    }
}

@Suite struct LuaScriptInterruptTests {
    @Test func theHostIsAskedRegularlyAndCanStopAScriptForGood() throws {
        let scripting = LuaScripting()
        for body in ["while true do end", "while true do pcall(function() while true do end end) end"] {
            let sha = try scripting.load(Array(body.utf8))
            var reply = RESPWriter(buffer: ByteBuffer())
            let host = RecordingHost()
            host.stopAfter = 5
            host.stopMessage = "ERR Script killed by user with SCRIPT KILL..."
            #expect(scripting.run(sha: sha, keys: [], arguments: [], host: host, reply: &reply))
            // Asked every 100,000 instructions, then on every line once it said stop (pcall cannot go on).
            #expect(host.interrupts >= 5 && host.interrupts < 100)
            #expect(String(buffer: reply.buffer) == "-ERR Script killed by user with SCRIPT KILL... script: \(sha), on @user_script:1.\r\n")
        }
        // The interpreter is usable afterwards; a host that never says stop lets a long script finish.
        var reply = RESPWriter(buffer: ByteBuffer())
        let host = RecordingHost()
        let sha = try scripting.load(Array("local n = 0; for i = 1, 3000000 do n = n + i end; return n".utf8))
        #expect(scripting.run(sha: sha, keys: [], arguments: [], host: host, reply: &reply))
        #expect(String(buffer: reply.buffer) == ":4500001500000\r\n")
        #expect(host.interrupts > 10)
    }
}

@Suite struct ScriptShebangTests {
    @Test func flagsAreReadFromTheFirstLine() throws {
        let scripting = LuaScripting()
        let sha = try scripting.load(Array("#!lua flags=no-writes,allow-oom\nreturn 1".utf8))
        var expected = ScriptFlags()
        expected.hasShebang = true
        expected.noWrites = true
        expected.allowOOM = true
        #expect(scripting.flags(of: sha) == expected)
        #expect(scripting.flags(of: try scripting.load(Array("return 2".utf8))) == ScriptFlags())
    }

    @Test func badShebangsAreRefusedAsRedisWordsIt() {
        let cases = [
            ("#!lua flags=bogus\nreturn 1", "ERR Unexpected flag in script shebang: bogus"),
            ("#!lua name=x\nreturn 1", "ERR Unknown lua shebang option: name=x"),
            ("#!python\nreturn 1", "ERR Unexpected engine in script shebang: #!python"),
            ("#!lua", "ERR Invalid script shebang"),
        ]
        for (body, message) in cases {
            #expect(throws: LuaScripting.Failure.script(message)) { try LuaScripting().load(Array(body.utf8)) }
        }
    }
}

@Suite struct LuaFunctionLibraryTests {
    func call(_ scripting: LuaScripting, _ name: String, keys: [String] = [], arguments: [String] = []) -> String? {
        var reply = RESPWriter(buffer: ByteBuffer())
        let found = scripting.call(function: name, keys: ScriptValues(keys.map { ByteBuffer(string: $0) }), arguments: ScriptValues(arguments.map { ByteBuffer(string: $0) }),
                                   host: RecordingHost(), reply: &reply)
        return found ? String(buffer: reply.buffer) : nil
    }

    func failure(_ body: () throws(LuaScripting.Failure) -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            switch error {
            case .script(let message): return message
            }
        }
    }

    @Test func librariesRegisterFunctionsThatGetKeysAndArguments() throws {
        let scripting = LuaScripting()
        let name = try scripting.loadLibrary(Array("""
            #!lua name=lib
            local function both(keys, args) return {keys[1], args[1], #keys, #args} end
            redis.register_function('both', both)
            redis.register_function{function_name='ro', callback=function() return 'ok' end, flags={'no-writes'}, description='reads'}
            """.utf8), replace: false)
        #expect(name == "lib")
        #expect(call(scripting, "both", keys: ["k"], arguments: ["a", "b"]) == "*4\r\n$1\r\nk\r\n$1\r\na\r\n:1\r\n:2\r\n")
        let readOnly = try #require(scripting.function(named: "ro"))
        #expect(readOnly.flags.noWrites && readOnly.flags.hasShebang && readOnly.description == "reads" && readOnly.flagNames == ["no-writes"])
        #expect(scripting.functionCount == 2 && scripting.libraries["lib"]?.functions.count == 2)
        #expect(call(scripting, "nosuch") == nil)
        // Replacing a library drops the functions it no longer registers.
        try scripting.loadLibrary(Array("#!lua name=lib\nredis.register_function('other', function() return 2 end)".utf8), replace: true)
        #expect(call(scripting, "both") == nil && call(scripting, "other") == ":2\r\n")
        #expect(scripting.deleteLibrary("lib") && !scripting.deleteLibrary("lib") && call(scripting, "other") == nil)
    }

    @Test func loadingErrorsAreRedisReplies() {
        let scripting = LuaScripting()
        func load(_ code: String, replace: Bool = false) -> String? {
            failure { () throws(LuaScripting.Failure) in try scripting.loadLibrary(Array(code.utf8), replace: replace) }
        }
        #expect(load("return 1") == "ERR Missing library metadata")
        #expect(load("#!lua\nreturn 1") == "ERR Library name was not given")
        #expect(load("#!js name=a\n") == "ERR Engine 'js' not found")
        #expect(load("#!lua name=a\nreturn 1") == "ERR No functions registered")
        #expect(load("#!lua name=a\nlocal x = = 1") == "ERR Error compiling function: user_function:2: unexpected symbol near '='")
        #expect(load("#!lua name=a\nredis.call('ping')") == "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'")
        #expect(load("#!lua name=a\nredis.register_function('f', 1)") == "ERR Error registering functions: ERR second argument to redis.register_function must be a function")
        #expect(load("#!lua name=a\nwhile true do end") == "ERR Error registering functions: ERR FUNCTION LOAD timeout")
        #expect(load("#!lua name=a\nredis.register_function('f', function() return 1 end)") == nil)
        #expect(load("#!lua name=a\nredis.register_function('g', function() return 1 end)") == "ERR Library 'a' already exists")
        #expect(load("#!lua name=b\nredis.register_function('f', function() return 1 end)") == "ERR Function f already exists")
        // A failed load changes nothing.
        #expect(scripting.libraries.keys.sorted() == ["a"] && scripting.functionCount == 1)
        scripting.flushLibraries()
        #expect(scripting.libraries.isEmpty && call(scripting, "f") == nil)
    }
}
