import CLuaShim
import NIOCore
package import NovaRESP

/// A function library (FUNCTION LOAD): its code and the functions it registered.
package struct FunctionLibrary: Sendable {
    /// One function a library registered with `redis.register_function`.
    package struct Function: Sendable {
        package let name: String
        package let description: String?
        /// The flags as declared (FUNCTION LIST shows them).
        package let flagNames: [String]
        /// The same, read as a script's shebang flags (a function always has declared flags).
        package let flags: ScriptFlags
    }

    package let name: String
    package let code: [UInt8]
    package let functions: [Function]
}

extension LuaScripting {
    /// How long a library's code may run while it loads (Redis's 500 ms).
    static let loadTimeLimit: UInt64 = 500_000_000

    /// Loads a function library (FUNCTION LOAD): its first line names it (`#!lua name=mylib`), its code
    /// runs once and registers functions with `redis.register_function`. With `replace` a library of the
    /// same name is replaced. Returns the library's name; errors are Redis 7.0's reply texts.
    @discardableResult
    package func loadLibrary(_ code: [UInt8], replace: Bool) throws(Failure) -> String {
        let name = try Self.libraryName(code)
        if libraries[name] != nil && !replace { throw .script("ERR Library '\(name)' already exists") }
        // The metadata line is compiled as an empty line, so that line numbers stay right.
        let source = Array(code.drop { $0 != UInt8(ascii: "\n") })
        let top = lua_gettop(state)
        defer { lua_settop(state, top) }
        lua_getfield(state, nova_lua_registryindex(), "nova.loadlibrary")
        let loaded = source.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { luaL_loadbuffer(state, $0.baseAddress, $0.count, "@user_function") }
        }
        guard loaded == 0 else { throw .script("ERR Error compiling function: \(string(at: -1) ?? "")") }
        loadDeadline = Self.now() &+ Self.loadTimeLimit
        nova_lua_sethook(state, { state in LuaScripting.instance(state).interrupt() }, Self.hookInstructions)
        let called = lua_pcall(state, 1, 2, 0)
        nova_lua_sethook(state, nil, 0)
        loadDeadline = nil
        guard called == 0 else { throw .script("ERR Error registering functions: \(loadFailure(at: -1))") }
        guard lua_toboolean(state, -2) != 0 else { throw .script("ERR Error registering functions: \(loadFailure(at: -1))") }
        // The registered functions: a list of {name, callback, flags, description}.
        var functions: [FunctionLibrary.Function] = []
        let count = Int(lua_objlen(state, -1))
        guard count > 0 else { throw .script("ERR No functions registered") }
        for index in 1...count {
            lua_rawgeti(state, -1, Int32(index))
            let functionName = field("name", LUA_TSTRING) ? popString() : ""
            let description = field("description", LUA_TSTRING) ? popString() : nil
            var flagNames: [String] = []
            if field("flags", LUA_TTABLE) {
                for flag in 1...max(1, Int(lua_objlen(state, -1))) where lua_objlen(state, -1) > 0 {
                    lua_rawgeti(state, -1, Int32(flag))
                    flagNames.append(popString())
                }
                nova_lua_pop(state, 1)
            }
            nova_lua_pop(state, 1)
            if let owner = functionLibraries[functionName], owner != name {
                throw .script("ERR Function \(functionName) already exists")
            }
            var flags = try ScriptFlags(shebangOf: Array("#!lua flags=\(flagNames.joined(separator: ","))\n".utf8))
            flags.hasShebang = true
            functions.append(FunctionLibrary.Function(name: functionName, description: description, flagNames: flagNames, flags: flags))
        }
        if libraries[name] != nil { deleteLibrary(name) }
        lua_getfield(state, nova_lua_registryindex(), "nova.functions")
        for index in 1...count {
            lua_rawgeti(state, -2, Int32(index))
            lua_getfield(state, -1, "callback")
            lua_setfield(state, -3, functions[index - 1].name)
            nova_lua_pop(state, 1)
            functionLibraries[functions[index - 1].name] = name
        }
        libraries[name] = FunctionLibrary(name: name, code: code, functions: functions)
        return name
    }

    /// The library name a library's first line declares, with Redis 7.0's errors.
    package static func libraryName(_ code: [UInt8]) throws(Failure) -> String {
        guard code.starts(with: [UInt8(ascii: "#"), UInt8(ascii: "!")]) else { throw .script("ERR Missing library metadata") }
        guard code.contains(UInt8(ascii: "\n")) else { throw .script("ERR Invalid library metadata") }
        let line = String(decoding: code.prefix { $0 != UInt8(ascii: "\n") }.dropFirst(2), as: UTF8.self)
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        let engine = words.first.map(String.init) ?? ""
        guard engine.lowercased() == "lua" else { throw .script("ERR Engine '\(engine)' not found") }
        var name: String?
        for word in words.dropFirst() {
            guard word.hasPrefix("name=") else { throw .script("ERR Invalid metadata value given: \(word)") }
            name = String(word.dropFirst("name=".count))
        }
        guard let name else { throw .script("ERR Library name was not given") }
        guard isValidName(name) else {
            throw .script("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
        }
        return name
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 }
    }

    /// Removes a library and its functions (FUNCTION DELETE); false when there is none of that name.
    @discardableResult
    package func deleteLibrary(_ name: String) -> Bool {
        guard let library = libraries.removeValue(forKey: name) else { return false }
        lua_getfield(state, nova_lua_registryindex(), "nova.functions")
        for function in library.functions {
            lua_pushnil(state)
            lua_setfield(state, -2, function.name)
            functionLibraries[function.name] = nil
        }
        nova_lua_pop(state, 1)
        return true
    }

    /// Removes every library (FUNCTION FLUSH).
    package func flushLibraries() {
        nova_lua_newtable(state)
        lua_setfield(state, nova_lua_registryindex(), "nova.functions")
        libraries = [:]
        functionLibraries = [:]
        lua_gc(state, LUA_GCCOLLECT, 0)
    }

    /// The function called `name`, if a library registered it.
    package func function(named name: String) -> FunctionLibrary.Function? {
        guard let library = functionLibraries[name] else { return nil }
        return libraries[library]?.functions.first { $0.name == name }
    }

    package var functionCount: Int { functionLibraries.count }

    /// Bytes the libraries hold outside the interpreter: their code and their functions' names and
    /// descriptions (INFO `used_memory_functions`).
    package var libraryBytes: Int {
        libraries.values.reduce(0) { total, library in
            total + library.code.count + library.name.utf8.count
                + library.functions.reduce(0) { $0 + $1.name.utf8.count + ($1.description?.utf8.count ?? 0) + 64 }
        }
    }

    /// Calls the function `name` (FCALL) with its keys and arguments as its two parameters, writing its
    /// result (or its error) to `reply`. Returns false when no library registered it.
    package func call(
        function name: String, keys: ScriptValues, arguments: ScriptValues,
        host: any ScriptHost, reply: inout RESPWriter
    ) -> Bool {
        let top = lua_gettop(state)
        defer { lua_settop(state, top) }
        lua_getfield(state, nova_lua_registryindex(), "nova.handler")
        lua_getfield(state, nova_lua_registryindex(), "nova.functions")
        lua_getfield(state, -1, name)
        guard lua_type(state, -1) == LUA_TFUNCTION else { return false }
        lua_remove(state, -2)
        pushArray(keys)
        pushArray(arguments)
        invoke(name: name, argumentCount: 2, errorHandler: top + 1, host: host, reply: &reply)
        return true
    }

    /// The text of a load error: a string raised by Lua ("ERR " and the message) or redis's error table.
    private func loadFailure(at index: Int32) -> String {
        if lua_type(state, index) == LUA_TTABLE {
            lua_getfield(state, index, "err")
            defer { nova_lua_pop(state, 1) }
            return string(at: -1) ?? "ERR unknown error"
        }
        return "ERR " + (string(at: index) ?? "unknown error")
    }

    private func popString() -> String {
        defer { nova_lua_pop(state, 1) }
        return string(at: -1) ?? ""
    }
}
