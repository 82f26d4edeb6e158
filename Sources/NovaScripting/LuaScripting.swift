import CLua
import CLuaShim
#if canImport(Glibc)
    import Glibc
#endif
package import NIOCore
import NovaEngine
package import NovaRESP

/// What a running script reaches outside Lua: the server's commands and its log.
package protocol ScriptHost: AnyObject {
    /// Runs one command for the script (`redis.call`/`redis.pcall`) and writes its reply to `reply`
    /// (empty, its storage reused from call to call), encoded in `version` (the script's `redis.setresp`).
    /// Refusals (an unknown command, ACL, a write in a read-only script) are error replies too.
    func scriptCall(_ arguments: [ByteBuffer], version: RESPVersion, reply: inout ByteBuffer)
    /// `redis.acl_check_cmd`: whether the script's user may run the command (nil: no such command).
    func scriptMayCall(_ arguments: [ByteBuffer]) -> Bool?
    /// `redis.log`, with Redis's levels (0 debug … 3 warning).
    func scriptLog(level: Int, message: String)
    /// Called every 100,000 instructions while the script runs: the host may serve other work meanwhile.
    /// Returns the error that stops the script (SCRIPT KILL), nil to go on. Once it returned an error it is
    /// asked on every line, so that a `pcall` cannot keep the script going.
    func scriptInterrupt() -> String?
}

/// The Lua 5.1 interpreter scripts run in, set up as Redis 7.0's: the libraries it loads (base, table,
/// string, math, cjson, bit, struct, cmsgpack), the `redis` table, read-only globals, Redis's `math.random`, and the
/// scripts cached by SHA1.
///
/// Not thread-safe: the server uses it under its lock. Lua errors are raised only by C code (the shim's
/// trampoline), never across a Swift frame.
package final class LuaScripting {
    let state: OpaquePointer
    /// The host of the script running now: set by `invoke` for the length of one call, while the caller
    /// holds the host (not counted: a weak reference costs a side-table entry per script).
    unowned(unsafe) var host: (any ScriptHost)?
    /// The RESP version of replies `redis.call` converts (`redis.setresp`), reset for each script.
    var scriptVersion = RESPVersion.v2
    /// The scripts compiled, by lowercase SHA1 hex, and their bodies (SCRIPT EXISTS, INFO).
    private(set) var bodies: [String: [UInt8]] = [:]
    /// The flags each script's shebang declared.
    private var scriptFlags: [String: ScriptFlags] = [:]
    /// Bytes of all script bodies (INFO `used_memory_scripts_eval`).
    private(set) var bodyBytes = 0

    /// The Redis version scripts see (`redis.REDIS_VERSION`).
    package static let redisVersion = "7.0.15"
    /// The same as a number (0x00MMmmpp).
    package static let redisVersionNumber = 0x07_00_0F

    package enum Failure: Error, Equatable {
        /// A compile or run-time error, as the reply text Redis sends (`ERR Error compiling script …`).
        case script(String)
    }

    package init() {
        guard let created = luaL_newstate() else { fatalError("Lua could not allocate its state") }
        state = created
        guard nova_lua_openlibs(state) == 0 else { fatalError("Lua's libraries could not be opened") }
        nova_lua_install_random(state)
        installRedisTable()
        installSandbox()
    }

    deinit {
        lua_close(state)
    }

    /// Bytes Lua has allocated (INFO `used_memory_lua`).
    package var memoryBytes: Int {
        Int(lua_gc(state, LUA_GCCOUNT, 0)) * 1024 + Int(lua_gc(state, LUA_GCCOUNTB, 0))
    }

    package var scriptCount: Int { bodies.count }

    /// Bytes the script cache holds: the bodies, and the SHA1 each is kept under.
    package var cachedBytes: Int { bodyBytes + bodies.count * 40 }

    package func exists(_ sha: String) -> Bool { bodies[sha.lowercased()] != nil }

    // MARK: Set-up

    private func installRedisTable() {
        // The instance, for the functions: registry["nova.scripting"].
        lua_pushlightuserdata(state, Unmanaged.passUnretained(self).toOpaque())
        lua_setfield(state, nova_lua_registryindex(), "nova.scripting")

        nova_lua_newtable(state)
        let functions: [(String, nova_lua_function)] = [
            ("call", { state in LuaScripting.instance(state).redisCall(raising: true) }),
            ("pcall", { state in LuaScripting.instance(state).redisCall(raising: false) }),
            ("error_reply", { state in LuaScripting.reply(state, field: "err") }),
            ("status_reply", { state in LuaScripting.reply(state, field: "ok") }),
            ("sha1hex", { state in LuaScripting.sha1hex(state) }),
            ("log", { state in LuaScripting.instance(state).log() }),
            ("setresp", { state in LuaScripting.instance(state).setResp() }),
            ("set_repl", { state in LuaScripting.setRepl(state) }),
            ("replicate_commands", { state in lua_pushboolean(state, 1); return 1 }),
            ("breakpoint", { state in lua_pushboolean(state, 0); return 1 }),
            ("debug", { _ in 0 }),
            ("acl_check_cmd", { state in LuaScripting.instance(state).aclCheck() }),
        ]
        for (name, function) in functions {
            nova_lua_pushfunction(state, function)
            lua_setfield(state, -2, name)
        }
        let constants: [(String, Int)] = [
            ("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3),
            ("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3),
            ("REDIS_VERSION_NUM", Self.redisVersionNumber),
        ]
        for (name, value) in constants {
            lua_pushinteger(state, value)
            lua_setfield(state, -2, name)
        }
        lua_pushstring(state, Self.redisVersion)
        lua_setfield(state, -2, "REDIS_VERSION")
        nova_lua_setglobal(state, "redis")
    }

    /// Redis 7.0's sandbox, in Lua: `loadfile` and `dofile` removed; scripts run with an environment
    /// that reads the globals but cannot change them ("Attempt to modify a readonly table"), and reading
    /// a global that does not exist is an error; the library tables are read-only too. The error
    /// handler turns every error into a table with `err`, `source` and `line`, as Redis reports them.
    private func installSandbox() {
        let setup = """
            local globals = _G
            local error, rawget, setmetatable, tostring, type = error, rawget, setmetatable, tostring, type
            local pairs, ipairs, select, setfenv = pairs, ipairs, select, setfenv
            local getinfo = debug.getinfo
            local rawredis = rawget(globals, "redis")
            -- What Redis 7.0 does not offer scripts.
            for _, name in ipairs({"loadfile", "dofile", "print", "getfenv", "setfenv", "newproxy", "module",
                                   "require", "package", "debug", "os", "io"}) do
              globals[name] = nil
            end
            -- Redis's pcall: an error raised as a table with an "err" string (redis.call's) is caught as
            -- that string, as scripts written before Redis 7 expect.
            local basepcall = pcall
            local function caught(ok, ...)
              if ok then return true, ... end
              local failure = ...
              if type(failure) == "table" and type(rawget(failure, "err")) == "string" then
                return false, rawget(failure, "err")
              end
              return false, failure
            end
            globals.pcall = function(...) return caught(basepcall(...)) end
            local function readonly(table)
              return setmetatable({}, {
                __index = table,
                __newindex = function() error("Attempt to modify a readonly table", 2) end,
                __metatable = false,
              })
            end
            for _, name in ipairs({"redis", "string", "table", "math", "cjson", "bit", "struct", "cmsgpack", "coroutine"}) do
              if rawget(globals, name) then globals[name] = readonly(rawget(globals, name)) end
            end
            local environment = readonly(globals)
            setmetatable(globals, {
              __index = function(_, name)
                error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
              end,
            })
            local function handler(err)
              -- Where the script was: the first frame that is neither C nor this sandbox's own code.
              local level, info = 2, getinfo(2, "nSl")
              while info and (info.what == "C" or info.source == "=sandbox") do
                level = level + 1
                info = getinfo(level, "nSl")
              end
              if type(err) ~= "table" then err = {err = "ERR " .. tostring(err)} end
              if info then
                err.source = info.source
                err.line = info.currentline
              end
              return err
            end
            rawset(globals, "_G", environment)

            -- Function libraries (FUNCTION LOAD): the library's code runs once with nothing but
            -- redis.register_function, redis.log and the constants; the functions it registers run later
            -- with the same environment as scripts. Both share one globals table whose lookups are switched.
            local function strict(contents)
              return setmetatable({}, {
                __index = function(_, name)
                  local value = contents[name]
                  if value == nil then
                    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
                  end
                  return value
                end,
                __newindex = function() error("Attempt to modify a readonly table", 2) end,
                __metatable = false,
              })
            end
            local pending
            local known = {["no-writes"] = true, ["allow-oom"] = true, ["allow-stale"] = true,
                           ["no-cluster"] = true, ["allow-cross-slot-keys"] = true}
            local function fail(message) error({err = "ERR " .. message}, 0) end
            -- Lua's C API takes a number where it asks for a string (lua_isstring).
            local function text(value)
              if type(value) == "string" then return value end
              if type(value) == "number" then return tostring(value) end
            end
            local function register(...)
              if not pending then fail("redis.register_function can only be called on FUNCTION LOAD command") end
              local count, name, callback, flags, description = select("#", ...)
              if count == 1 then
                local arguments = ...
                if type(arguments) ~= "table" then
                  fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
                end
                for key, value in pairs(arguments) do
                  if key == "function_name" then
                    name = text(value)
                    if not name then fail("function_name argument given to redis.register_function must be a string") end
                  elseif key == "description" then
                    description = text(value)
                    if not description then fail("description argument given to redis.register_function must be a string") end
                  elseif key == "callback" then
                    if type(value) ~= "function" then fail("callback argument given to redis.register_function must be a function") end
                    callback = value
                  elseif key == "flags" then
                    if type(value) ~= "table" then fail("flags argument to redis.register_function must be a table representing function flags") end
                    flags = value
                  else
                    fail("unknown argument given to redis.register_function")
                  end
                end
                if not name then fail("redis.register_function must get a function name argument") end
                if not callback then fail("redis.register_function must get a callback argument") end
              elseif count == 2 then
                name, callback = ...
                name = text(name)
                if not name then fail("first argument to redis.register_function must be a string") end
                if type(callback) ~= "function" then fail("second argument to redis.register_function must be a function") end
              else
                fail("wrong number of arguments to redis.register_function")
              end
              local list = {}
              for _, flag in pairs(flags or {}) do
                if type(flag) ~= "string" or not known[flag] then fail("unknown flag given") end
                list[#list + 1] = flag
              end
              if not name:find("^[%w_]+$") then
                fail("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
              end
              for _, entry in ipairs(pending) do
                if entry.name == name then fail("Function already exists in the library") end
              end
              pending[#pending + 1] = {name = name, callback = callback, flags = list, description = description}
            end
            local loadredis = {register_function = register, log = rawredis.log,
                               REDIS_VERSION = rawredis.REDIS_VERSION, REDIS_VERSION_NUM = rawredis.REDIS_VERSION_NUM}
            for _, level in ipairs({"LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"}) do loadredis[level] = rawredis[level] end
            local loading = strict({redis = strict(loadredis)})
            local shared = {__index = environment, __newindex = function() error("Attempt to modify a readonly table", 2) end,
                            __metatable = false}
            local functionglobals = setmetatable({}, shared)
            -- Runs a library's compiled code: true and the functions it registered, or false and the error.
            local function loadlibrary(chunk)
              pending = {}
              setfenv(chunk, functionglobals)
              shared.__index = loading
              local ok, failure = basepcall(chunk)
              shared.__index = environment
              local registered = pending
              pending = nil
              if not ok then return false, failure end
              return true, registered
            end
            return environment, handler, loadlibrary
            """
        guard luaL_loadbuffer(state, setup, setup.utf8.count, "=sandbox") == 0, lua_pcall(state, 0, 3, 0) == 0 else {
            fatalError("the Lua sandbox failed to load: \(String(cString: lua_tolstring(state, -1, nil)))")
        }
        lua_setfield(state, nova_lua_registryindex(), "nova.loadlibrary")
        lua_setfield(state, nova_lua_registryindex(), "nova.handler")
        lua_setfield(state, nova_lua_registryindex(), "nova.environment")
        nova_lua_newtable(state)
        lua_setfield(state, nova_lua_registryindex(), "nova.scripts")
        nova_lua_newtable(state)
        lua_setfield(state, nova_lua_registryindex(), "nova.functions")
    }

    static func instance(_ state: OpaquePointer?) -> LuaScripting {
        lua_getfield(state, nova_lua_registryindex(), "nova.scripting")
        let pointer = lua_touserdata(state, -1)!
        nova_lua_pop(state, 1)
        return Unmanaged<LuaScripting>.fromOpaque(pointer).takeUnretainedValue()
    }

    // MARK: Scripts

    /// Compiles `body` (SCRIPT LOAD, EVAL) unless it is cached; returns its SHA1 (lowercase hex).
    @discardableResult
    package func load(_ body: [UInt8]) throws(Failure) -> String {
        let sha = SHA1.hex(body)
        if bodies[sha] != nil { return sha }
        try compile(body, sha: sha)
        return sha
    }

    private func compile(_ body: [UInt8], sha: String) throws(Failure) {
        let flags = try ScriptFlags(shebangOf: body)
        // The shebang line is not Lua: it is compiled as an empty line, so that line numbers stay right.
        let source = flags.hasShebang ? Array(body.drop { $0 != UInt8(ascii: "\n") }) : body
        let top = lua_gettop(state)
        defer { lua_settop(state, top) }
        lua_getfield(state, nova_lua_registryindex(), "nova.scripts")
        let loaded = source.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { luaL_loadbuffer(state, $0.baseAddress, $0.count, "@user_script") }
        }
        guard loaded == 0 else {
            throw .script("ERR Error compiling script (new function): \(string(at: -1) ?? "")")
        }
        lua_getfield(state, nova_lua_registryindex(), "nova.environment")
        lua_setfenv(state, -2)
        lua_setfield(state, -2, sha)
        bodies[sha] = body
        scriptFlags[sha] = flags
        bodyBytes += body.count
        lastCalled = nil
    }

    /// The flags the cached script `sha` declared (nil: no such script).
    package func flags(of sha: String) -> ScriptFlags? {
        if let lastCalled, lastCalled.sha == sha { return lastCalled.flags }
        return scriptFlags[sha]
    }

    /// The script EVALSHA's argument names: its SHA1 lowercased, "" (no script) unless it has 40
    /// characters. The last one is remembered with its flags: callers mostly repeat one script, and this
    /// spares them a new string and a hash-table lookup per call.
    package func sha(forArgument bytes: UnsafeRawBufferPointer) -> String {
        if let lastCalled, lastCalled.argument.elementsEqual(bytes) { return lastCalled.sha }
        guard bytes.count == 40 else { return "" }
        let sha = String(unsafeUninitializedCapacity: 40) { text in
            for (index, byte) in bytes.enumerated() { text[index] = byte >= 65 && byte <= 90 ? byte + 32 : byte }
            return 40
        }
        lastCalled = (Array(bytes), sha, scriptFlags[sha])
        return sha
    }

    /// EVALSHA's last argument, its SHA1 and the script's flags (see `sha(forArgument:)`); forgotten
    /// whenever scripts are loaded or flushed.
    private var lastCalled: (argument: [UInt8], sha: String, flags: ScriptFlags?)?

    /// Forgets every script (SCRIPT FLUSH).
    package func flush() {
        nova_lua_newtable(state)
        lua_setfield(state, nova_lua_registryindex(), "nova.scripts")
        bodies = [:]
        scriptFlags = [:]
        lastCalled = nil
        bodyBytes = 0
        lua_gc(state, LUA_GCCOLLECT, 0)
    }

    /// Runs the cached script `sha` with `keys` and `arguments`, writing its result (or its error) to
    /// `reply`. Returns false when no script has that SHA1. The host's `scriptInterrupt` is asked
    /// regularly whether to stop it.
    package func run(
        sha: String, keys: ScriptValues, arguments: ScriptValues,
        host: any ScriptHost, reply: inout RESPWriter
    ) -> Bool {
        let top = lua_gettop(state)
        defer { lua_settop(state, top) }
        lua_getfield(state, nova_lua_registryindex(), "nova.handler")
        lua_getfield(state, nova_lua_registryindex(), "nova.scripts")
        lua_getfield(state, -1, sha)
        guard lua_type(state, -1) == LUA_TFUNCTION else { return false }
        lua_remove(state, -2)
        setGlobalArray("KEYS", keys)
        setGlobalArray("ARGV", arguments)
        // A new math.random sequence for every script, as Redis 7.0 (a fast generator: the system's
        // costs a getrandom call per script).
        nova_lua_srand48(state, Int32(truncatingIfNeeded: seeds.next()))
        invoke(name: sha, argumentCount: 0, errorHandler: top + 1, host: host, reply: &reply)
        return true
    }

    /// Calls the function below its `argumentCount` arguments on the stack (the error handler at
    /// `errorHandler` under it) for `host`, with the instruction hook set; writes its result or its error
    /// (naming the script `name`) to `reply`.
    func invoke(name: String, argumentCount: Int32, errorHandler: Int32, host: any ScriptHost, reply: inout RESPWriter) {
        self.host = host
        scriptVersion = .v2
        defer { self.host = nil }
        nova_lua_sethook(state, { state in LuaScripting.instance(state).interrupt() }, Self.hookInstructions)
        defer { nova_lua_sethook(state, nil, 0) }
        if lua_pcall(state, argumentCount, 1, errorHandler) != 0 {
            writeError(sha: name, reply: &reply)
        } else {
            writeReply(&reply, depth: 0)
        }
        // A collection step of 50 every 50 calls, as Redis 7.0 does: less CPU than one per call, and no
        // full cycle's latency.
        callsSinceCollection += 1
        if callsSinceCollection == 50 {
            lua_gc(state, LUA_GCSTEP, 50)
            callsSinceCollection = 0
        }
    }

    /// What `redis.call` hands the host, kept from call to call so that their storage is reused: the
    /// arguments' bytes, the views of them, the reply.
    private var callBytes = ByteBuffer()
    private var callArguments: [ByteBuffer] = []
    private var callReply = ByteBuffer()

    /// Instructions between two calls of the host's `scriptInterrupt` (Redis's hook runs every 100,000 too).
    static let hookInstructions: Int32 = 100_000
    private var seeds = FastRandom()
    private var callsSinceCollection = 0
    /// While a library loads: when its code has run too long (Redis allows 500 ms).
    var loadDeadline: UInt64?
    /// The function libraries loaded, by name (FUNCTION LOAD).
    package internal(set) var libraries: [String: FunctionLibrary] = [:]
    /// Each function's library.
    var functionLibraries: [String: String] = [:]

    /// The instruction hook: asks the host whether to stop.
    func interrupt() -> Int32 {
        if let loadDeadline {
            guard Self.now() > loadDeadline else { return 0 }
            nova_lua_hook_every_line(state)
            pushErrorTable("ERR FUNCTION LOAD timeout")
            return 1
        }
        guard let message = host?.scriptInterrupt() else { return 0 }
        // From now on the error is raised on every line, so that a pcall cannot keep the script going.
        nova_lua_hook_every_line(state)
        pushErrorTable(message)
        return 1
    }

    private func setGlobalArray(_ name: String, _ values: ScriptValues) {
        pushArray(values)
        lua_pushstring(state, name)
        lua_insert(state, -2)
        lua_rawset(state, nova_lua_globalsindex())
    }

    // MARK: The redis table

    private func redisCall(raising: Bool) -> Int32 {
        let count = lua_gettop(state)
        guard count > 0 else { return raise("Please specify at least one argument for this redis lib call") }
        // The arguments' bytes go into one buffer, reused from call to call, and the host gets views of it.
        callBytes.clear()
        callArguments.removeAll(keepingCapacity: true)
        for index in 1...count {
            let type = lua_type(state, index)
            guard type == LUA_TSTRING || type == LUA_TNUMBER else {
                return raise("Lua redis lib command arguments must be strings or integers")
            }
            var length = 0
            let bytes = lua_tolstring(state, index, &length)!
            callBytes.writeBytes(UnsafeRawBufferPointer(start: bytes, count: length))
        }
        var offset = callBytes.readerIndex
        for index in 1...count {
            let length = lua_objlen(state, index)
            callArguments.append(callBytes.getSlice(at: offset, length: length)!)
            offset += length
        }
        guard let host else { return raise("ERR redis.call called outside a script") }
        callReply.clear()
        host.scriptCall(callArguments, version: scriptVersion, reply: &callReply)
        callArguments.removeAll(keepingCapacity: true)
        lua_settop(state, 0)
        let isError = callReply.getInteger(at: callReply.readerIndex, as: UInt8.self) == UInt8(ascii: "-")
        pushReply(&callReply, depth: 0)
        if isError && raising { return -1 }
        return 1
    }

    /// Pushes `{err = message}` and asks the trampoline to raise it.
    private func raise(_ message: String) -> Int32 {
        lua_settop(state, 0)
        pushErrorTable(message.hasPrefix("ERR ") ? message : "ERR " + message)
        return -1
    }

    func pushErrorTable(_ message: String) {
        lua_createtable(state, 0, 1)
        lua_pushstring(state, message)
        lua_setfield(state, -2, "err")
    }

    /// `redis.error_reply(message)` and `redis.status_reply(message)`.
    private static func reply(_ state: OpaquePointer?, field: String) -> Int32 {
        guard lua_gettop(state) == 1, lua_type(state, 1) == LUA_TSTRING else {
            // Returned, not raised, as Redis does.
            lua_settop(state, 0)
            instance(state).pushErrorTable("ERR wrong number or type of arguments")
            return 1
        }
        var length = 0
        let bytes = lua_tolstring(state, 1, &length)!
        var text = String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
        if field == "err" {
            // As Redis: a leading "-" is dropped; a message without an error code gets ERR.
            if text.hasPrefix("-") { text.removeFirst() } else if !text.contains(" ") { text = "ERR " + text }
        }
        lua_createtable(state, 0, 1)
        lua_pushstring(state, text)
        lua_setfield(state, -2, field)
        return 1
    }

    private static func sha1hex(_ state: OpaquePointer?) -> Int32 {
        guard lua_gettop(state) == 1 else {
            lua_settop(state, 0)
            instance(state).pushErrorTable("ERR wrong number of arguments")
            return -1
        }
        var length = 0
        let bytes = lua_tolstring(state, 1, &length)
        let body = bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
        lua_pushstring(state, SHA1.hex(body))
        return 1
    }

    private func log() -> Int32 {
        let count = lua_gettop(state)
        guard count >= 2 else { return raise("redis.log() requires two arguments or more.") }
        guard lua_type(state, 1) == LUA_TNUMBER else { return raise("First argument must be a number (log level).") }
        let level = Int(lua_tointeger(state, 1))
        guard (0...3).contains(level) else { return raise("Invalid debug level.") }
        var words: [String] = []
        for index in 2...count where lua_type(state, index) == LUA_TSTRING || lua_type(state, index) == LUA_TNUMBER {
            words.append(string(at: index) ?? "")
        }
        host?.scriptLog(level: level, message: words.joined(separator: " "))
        return 0
    }

    private func setResp() -> Int32 {
        guard lua_gettop(state) == 1 else { return raise("redis.setresp() requires one argument.") }
        switch lua_tointeger(state, 1) {
        case 2: scriptVersion = .v2
        case 3: scriptVersion = .v3
        default: return raise("RESP version must be 2 or 3.")
        }
        return 0
    }

    private static func setRepl(_ state: OpaquePointer?) -> Int32 {
        guard lua_gettop(state) == 1 else { return instance(state).raise("redis.set_repl() requires one argument.") }
        let flags = lua_tointeger(state, 1)
        guard (0...3).contains(flags) else { return instance(state).raise("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.") }
        return 0
    }

    private func aclCheck() -> Int32 {
        let count = lua_gettop(state)
        guard count > 0 else { return raise("Please specify at least one argument for this redis lib call") }
        var arguments: [ByteBuffer] = []
        for index in 1...count {
            let type = lua_type(state, index)
            guard type == LUA_TSTRING || type == LUA_TNUMBER else {
                return raise("Lua redis lib command arguments must be strings or integers")
            }
            var length = 0
            let bytes = lua_tolstring(state, index, &length)!
            arguments.append(ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: length)))
        }
        guard let allowed = host?.scriptMayCall(arguments) else { return raise("Invalid command passed to redis.acl_check_cmd()") }
        lua_pushboolean(state, allowed ? 1 : 0)
        return 1
    }

    // MARK: Conversions

    /// Pushes a table of `values` (KEYS, ARGV, a function's keys and arguments).
    func pushArray(_ values: ScriptValues) {
        lua_createtable(state, Int32(values.count), 0)
        var index: Int32 = 1
        for position in values.indices {
            push(values[position])
            lua_rawseti(state, -2, index)
            index += 1
        }
    }

    func push(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            lua_pushlstring(state, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
    }

    func string(at index: Int32) -> String? {
        var length = 0
        guard let bytes = lua_tolstring(state, index, &length) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    /// Pushes the Lua value of the RESP reply at the front of `reply`, as Redis converts command replies
    /// for scripts: integers to numbers, bulk strings to strings, nulls to false (RESP2) or nil (RESP3),
    /// statuses to `{ok=…}`, errors to `{err=…}`, arrays to tables; RESP3 maps to `{map={…}}`, sets to
    /// `{set={…=true}}`, doubles to `{double=…}`, big numbers to `{big_number=…}`, verbatim strings to
    /// `{verbatim_string={format=…, string=…}}`, booleans to booleans.
    private func pushReply(_ reply: inout ByteBuffer, depth: Int) {
        guard let type = reply.readInteger(as: UInt8.self), let line = readLine(&reply) else {
            lua_pushnil(state)
            return
        }
        lua_checkstack(state, 4)
        switch type {
        case UInt8(ascii: "+"):
            lua_createtable(state, 0, 1)
            push(line)
            lua_setfield(state, -2, "ok")
        case UInt8(ascii: "-"):
            lua_createtable(state, 0, 1)
            push(line)
            lua_setfield(state, -2, "err")
        case UInt8(ascii: ":"):
            lua_pushnumber(state, Double(parseInteger(line)))
        case UInt8(ascii: "$"):
            let length = parseInteger(line)
            if length < 0 {
                lua_pushboolean(state, 0)
            } else {
                let payload = reply.readSlice(length: Int(length)) ?? ByteBuffer()
                reply.moveReaderIndex(forwardBy: min(2, reply.readableBytes))
                push(payload)
            }
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            let count = parseInteger(line)
            if count < 0 {
                lua_pushboolean(state, 0)
                return
            }
            if type == UInt8(ascii: "~") {
                lua_createtable(state, 0, 1)
                lua_createtable(state, 0, Int32(clamping: count))
                for _ in 0..<count {
                    pushReply(&reply, depth: depth + 1)
                    lua_pushboolean(state, 1)
                    lua_rawset(state, -3)
                }
                lua_setfield(state, -2, "set")
            } else {
                lua_createtable(state, Int32(clamping: count), 0)
                for index in 0..<count {
                    pushReply(&reply, depth: depth + 1)
                    lua_rawseti(state, -2, Int32(clamping: index + 1))
                }
            }
        case UInt8(ascii: "%"):
            let count = parseInteger(line)
            lua_createtable(state, 0, 1)
            lua_createtable(state, 0, Int32(clamping: count))
            for _ in 0..<max(0, count) {
                pushReply(&reply, depth: depth + 1)
                pushReply(&reply, depth: depth + 1)
                lua_rawset(state, -3)
            }
            lua_setfield(state, -2, "map")
        case UInt8(ascii: "_"):
            lua_pushnil(state)
        case UInt8(ascii: "#"):
            lua_pushboolean(state, line.readableBytesView.first == UInt8(ascii: "t") ? 1 : 0)
        case UInt8(ascii: ","):
            lua_createtable(state, 0, 1)
            lua_pushnumber(state, RedisFloat.parseDouble(line.readableBytesView) ?? .nan)
            lua_setfield(state, -2, "double")
        case UInt8(ascii: "("):
            lua_createtable(state, 0, 1)
            push(line)
            lua_setfield(state, -2, "big_number")
        case UInt8(ascii: "="):
            let length = Int(parseInteger(line))
            let payload = reply.readBytes(length: max(0, length)) ?? []
            reply.moveReaderIndex(forwardBy: min(2, reply.readableBytes))
            lua_createtable(state, 0, 1)
            lua_createtable(state, 0, 2)
            pushBytes(Array(payload.prefix(3)))
            lua_setfield(state, -2, "format")
            pushBytes(Array(payload.dropFirst(4)))
            lua_setfield(state, -2, "string")
            lua_setfield(state, -2, "verbatim_string")
        default:
            lua_pushnil(state)
        }
    }

    /// The next line of a reply, as a view of it (no copy), without its CRLF.
    private func readLine(_ buffer: inout ByteBuffer) -> ByteBuffer? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: 13) else { return nil }
        let line = buffer.readSlice(length: cr - view.startIndex)
        buffer.moveReaderIndex(forwardBy: min(2, buffer.readableBytes))
        return line
    }

    private func parseInteger(_ line: ByteBuffer) -> Int64 {
        line.withUnsafeReadableBytes { RedisInteger.parse($0) } ?? 0
    }

    private func pushBytes(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { pointer in
            pointer.withMemoryRebound(to: CChar.self) { lua_pushlstring(state, $0.baseAddress, $0.count) }
        }
    }

    /// Writes the value on top of the stack as the script's reply, as Redis converts it: strings to bulk
    /// strings, numbers to integers (truncated), booleans to 1 / null (or RESP3 booleans once the script
    /// chose RESP3), tables with `err`/`ok`/`double`/`big_number`/`map`/`set`/`verbatim_string` to those
    /// replies, other tables to arrays up to their first nil, anything else to null. Pops it.
    func writeReply(_ reply: inout RESPWriter, depth: Int) {
        defer { nova_lua_pop(state, 1) }
        guard depth < 1000, lua_checkstack(state, 4) != 0 else {
            reply.error("ERR reached lua stack limit")
            return
        }
        switch lua_type(state, -1) {
        case LUA_TSTRING:
            var length = 0
            let bytes = lua_tolstring(state, -1, &length)!
            reply.bulk(UnsafeRawBufferPointer(start: bytes, count: length))
        case LUA_TBOOLEAN:
            let value = lua_toboolean(state, -1) != 0
            if scriptVersion == .v3 {
                reply.boolean(value)
            } else if value {
                reply.integer(1)
            } else {
                reply.null()
            }
        case LUA_TNUMBER:
            reply.integer(Self.truncate(lua_tonumber(state, -1)))
        case LUA_TTABLE:
            writeTable(&reply, depth: depth)
        default:
            reply.null()
        }
    }

    /// C's conversion of a double to `long long` on x86-64: out of range (and NaN) gives the minimum.
    static func truncate(_ value: Double) -> Int64 {
        guard value.isFinite, value >= -9.223372036854775808e18, value < 9.223372036854775808e18 else { return .min }
        return Int64(value)
    }

    func field(_ name: String, _ type: Int32) -> Bool {
        lua_pushstring(state, name)
        lua_rawget(state, -2)
        if lua_type(state, -1) == type { return true }
        nova_lua_pop(state, 1)
        return false
    }

    private func writeTable(_ reply: inout RESPWriter, depth: Int) {
        if field("err", LUA_TSTRING) {
            var length = 0
            let bytes = lua_tolstring(state, -1, &length)!
            reply.error(Array(UnsafeRawBufferPointer(start: bytes, count: length)))
            nova_lua_pop(state, 1)
            return
        }
        if field("ok", LUA_TSTRING) {
            reply.simpleString(string(at: -1) ?? "")
            nova_lua_pop(state, 1)
            return
        }
        if field("double", LUA_TNUMBER) {
            reply.double(lua_tonumber(state, -1))
            nova_lua_pop(state, 1)
            return
        }
        if field("big_number", LUA_TSTRING) {
            let text = string(at: -1) ?? ""
            if reply.version == .v3 {
                reply.buffer.writeString("(" + String(text.map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : $0 }) + "\r\n")
            } else {
                reply.bulk(text)
            }
            nova_lua_pop(state, 1)
            return
        }
        if field("map", LUA_TTABLE) {
            var count = 0
            lua_pushnil(state)
            while lua_next(state, -2) != 0 {
                count += 1
                nova_lua_pop(state, 1)
            }
            reply.map(count)
            lua_pushnil(state)
            while lua_next(state, -2) != 0 {
                lua_pushvalue(state, -2)  // the key, written (and popped) first
                writeReply(&reply, depth: depth + 1)
                writeReply(&reply, depth: depth + 1)
            }
            nova_lua_pop(state, 1)
            return
        }
        if field("set", LUA_TTABLE) {
            var count = 0
            lua_pushnil(state)
            while lua_next(state, -2) != 0 {
                count += 1
                nova_lua_pop(state, 1)
            }
            reply.set(count)
            lua_pushnil(state)
            while lua_next(state, -2) != 0 {
                nova_lua_pop(state, 1)
                lua_pushvalue(state, -1)
                writeReply(&reply, depth: depth + 1)
            }
            nova_lua_pop(state, 1)
            return
        }
        if field("verbatim_string", LUA_TTABLE) {
            lua_getfield(state, -1, "format")
            lua_getfield(state, -2, "string")
            if lua_type(state, -2) == LUA_TSTRING, lua_type(state, -1) == LUA_TSTRING {
                let format = string(at: -2) ?? "txt"
                let text = string(at: -1) ?? ""
                if reply.version == .v3 {
                    let payload = Array((format + ":" + text).utf8)
                    reply.buffer.writeString("=\(payload.count)\r\n")
                    reply.buffer.writeBytes(payload)
                    reply.buffer.writeString("\r\n")
                } else {
                    reply.bulk(text)
                }
                nova_lua_pop(state, 3)
                return
            }
            nova_lua_pop(state, 3)
        }
        var count: Int32 = 0
        while true {
            lua_rawgeti(state, -1, count + 1)
            defer { nova_lua_pop(state, 1) }
            if lua_type(state, -1) == LUA_TNIL { break }
            count += 1
        }
        reply.array(Int(count))
        for index in 0..<count {
            lua_rawgeti(state, -1, index + 1)
            writeReply(&reply, depth: depth + 1)
        }
    }

    /// The reply for a script that raised `error` (on top of the stack): the error table's `err`, with
    /// where it happened, as Redis 7.0 words it.
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// Writes the error a script (named `sha`: its SHA1, or a function's name) stopped with.
    func writeError(sha: String, reply: inout RESPWriter) {
        guard lua_type(state, -1) == LUA_TTABLE else {
            reply.error("ERR Error running script (call to f_\(sha)): \(string(at: -1) ?? "")")
            return
        }
        var message = "ERR unknown error"
        if field("err", LUA_TSTRING) {
            message = string(at: -1) ?? message
            nova_lua_pop(state, 1)
        }
        if field("source", LUA_TSTRING) {
            let source = string(at: -1) ?? ""
            nova_lua_pop(state, 1)
            var line = ""
            if field("line", LUA_TNUMBER) {
                line = String(Int(lua_tonumber(state, -1)))
                nova_lua_pop(state, 1)
            }
            message += " script: \(sha), on \(source):\(line)."
        }
        reply.error(message)
    }
}

/// What a script declares in its first line (`#!lua flags=no-writes,allow-oom`), as Redis 7.0 reads it.
/// Scripts without a shebang keep the pre-7.0 rules (`hasShebang` false).
package struct ScriptFlags: Sendable, Equatable {
    package var hasShebang = false
    package var noWrites = false
    package var allowOOM = false
    package var allowStale = false
    package var noCluster = false
    package var allowCrossSlotKeys = false

    package init() {}

    init(shebangOf body: [UInt8]) throws(LuaScripting.Failure) {
        guard body.starts(with: [UInt8(ascii: "#"), UInt8(ascii: "!")]) else { return }
        hasShebang = true
        guard body.contains(UInt8(ascii: "\n")) else { throw .script("ERR Invalid script shebang") }
        let line = String(decoding: body.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard words.first == "#!lua" else {
            throw .script("ERR Unexpected engine in script shebang: \(words.first.map(String.init) ?? line)")
        }
        for word in words.dropFirst() {
            guard word.hasPrefix("flags=") else { throw .script("ERR Unknown lua shebang option: \(word)") }
            for flag in word.dropFirst("flags=".count).split(separator: ",", omittingEmptySubsequences: true) {
                switch flag {
                case "no-writes": noWrites = true
                case "allow-oom": allowOOM = true
                case "allow-stale": allowStale = true
                case "no-cluster": noCluster = true
                case "allow-cross-slot-keys": allowCrossSlotKeys = true
                default: throw .script("ERR Unexpected flag in script shebang: \(flag)")
                }
            }
        }
    }
}
