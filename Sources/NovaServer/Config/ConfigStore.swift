import NovaRESP

/// The server's configuration: every Redis 7.0 parameter with its current value, CONFIG GET / SET /
/// REWRITE semantics, and redis.conf / command-line parsing.
package final class ConfigStore: @unchecked Sendable {
    private struct Lookup {
        let parameter: ConfigParameter
    }

    // Read and written by the extensions in ConfigValues.swift and ConfigFile.swift, nowhere else.
    var values: [String: String] = [:]
    let parameters: [String: ConfigParameter]
    /// Names under which each parameter is listed (primary name and alias), in catalog order.
    private let listedNames: [(name: String, parameter: ConfigParameter)]
    /// Parameters given in a file or on the command line, for CONFIG REWRITE.
    var fromFile: Set<String> = []
    /// Commands renamed by `rename-command` (lowercase old name → new name, empty to disable).
    package private(set) var renamedCommands: [String: String] = [:]
    /// `user` lines kept from the configuration file: the user name, then its rules.
    package private(set) var userDirectives: [[String]] = []
    /// Where each of `userDirectives` was written (the same order), for the error that names its line.
    package internal(set) var userDirectiveLocations: [(line: Int, text: String, isFlag: Bool)] = []
    /// The configuration file the server started with, if any (absolute path).
    package var configFilePath: String?
    /// Typed view of the current values.
    package private(set) var settings = ServerSettings()

    package init() {
        var parameters: [String: ConfigParameter] = [:]
        var listed: [(String, ConfigParameter)] = []
        for parameter in ConfigCatalog.all {
            parameters[parameter.name] = parameter
            listed.append((parameter.name, parameter))
            if let alias = parameter.alias {
                parameters[alias] = parameter
                listed.append((alias, parameter))
            }
            values[parameter.name] = parameter.defaultValue
        }
        self.parameters = parameters
        self.listedNames = listed
        values["dir"] = ConfigStore.defaultDataDirectory
        refreshSettings()
    }

    /// `./data` under the working directory at start-up: where data lives when `dir` is not configured.
    package static let defaultDataDirectory = absolutePath("./data")

    /// `path` made absolute against the working directory.
    package static func absolute(_ path: String) -> String { absolutePath(path) }

    // MARK: Reading

    /// The current value of `name` (primary or alias), or nil for an unknown name.
    package func value(_ name: String) -> String? {
        guard let parameter = parameters[name.lowercased()] else { return nil }
        return values[parameter.name]
    }

    /// A value as CONFIG GET shows it: as stored, except `notify-keyspace-events`, which Redis prints
    /// without the `n` class when `A` is set (the class stays on).
    private func displayed(_ parameter: ConfigParameter) -> String {
        let value = values[parameter.name] ?? ""
        if parameter.name == "notify-keyspace-events" { return KeyspaceEventFlags(parsing: value)?.description ?? value }
        return value
    }

    /// CONFIG GET: pairs for every parameter matching any of `patterns` (glob, case-insensitive).
    /// An exact name is answered under the spelling the client used.
    package func get(_ patterns: [String]) -> [(String, String)] {
        var result: [(String, String)] = []
        var seen: Set<String> = []
        for pattern in patterns {
            if !pattern.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) {
                guard let parameter = parameters[pattern.lowercased()], !seen.contains(pattern) else { continue }
                seen.insert(pattern)
                result.append((pattern, displayed(parameter)))
                continue
            }
            for (name, parameter) in listedNames where !parameter.flags.contains(.hidden) {
                guard !seen.contains(name), RedisGlob.matches(pattern, name, ignoringCase: true) else { continue }
                seen.insert(name)
                result.append((name, displayed(parameter)))
            }
        }
        return result
    }

    // MARK: Changing

    /// The current values, to roll back a change whose application failed.
    func snapshot() -> [String: String] { values }

    /// Restores values taken with `snapshot()`.
    func restore(_ snapshot: [String: String]) {
        values = snapshot
        refreshSettings()
    }

    /// CONFIG SET with Redis's all-or-nothing semantics. `pairs` are (name, value) as sent.
    package func set(_ pairs: [(String, String)]) throws(CommandError) {
        var seen: Set<String> = []
        var changes: [(ConfigParameter, String)] = []
        for (name, value) in pairs {
            guard let parameter = parameters[name.lowercased()] else {
                throw CommandError("ERR Unknown option or number of arguments for CONFIG SET - '\(name)'")
            }
            func fail(_ message: String) -> CommandError {
                CommandError("ERR CONFIG SET failed (possibly related to argument '\(name)') - \(message)")
            }
            if parameter.flags.contains(.immutable) { throw fail("can't set immutable config") }
            if parameter.flags.contains(.protected) && values["enable-protected-configs"] == "no" {
                throw fail("can't set protected config")
            }
            if seen.contains(parameter.name) { throw fail("duplicate parameter") }
            seen.insert(parameter.name)
            let arguments: [String]
            if parameter.flags.contains(.multiArgument) {
                // CONFIG SET splits on single spaces, keeping empty words (Redis's sdssplitlen); only the
                // configuration file knows quotes.
                arguments = value.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                arguments = [value]
            }
            switch canonical(parameter, arguments, appendingTo: nil) {
            case .success(let canonical): changes.append((parameter, canonical))
            case .failure(let error): throw fail(error.message)
            }
        }
        for (parameter, value) in changes { values[parameter.name] = value }
        refreshSettings()
    }

    /// Whether `name` was given in the configuration file or on the command line.
    package func isExplicitlySet(_ name: String) -> Bool {
        guard let parameter = parameters[name.lowercased()] else { return false }
        return fromFile.contains(parameter.name)
    }

    /// Records the value the server actually uses for a start-up parameter (e.g. the effective
    /// `io-threads`), so that CONFIG GET reports it.
    package func recordEffective(_ name: String, _ value: String) {
        guard let parameter = parameters[name.lowercased()] else { return }
        values[parameter.name] = value
        refreshSettings()
    }

    /// Sets a value at start-up (config file or flags), immutable parameters included.
    func setAtStartup(_ name: String, _ arguments: [String]) -> String? {
        let lowered = name.lowercased()
        switch lowered {
        case "include", "loadmodule", "sentinel", "rename-command", "user":
            return directive(lowered, arguments)
        default:
            break
        }
        guard let parameter = parameters[lowered] else { return "Bad directive or wrong number of arguments" }
        if !parameter.flags.contains(.multiArgument) && arguments.count != 1 {
            return "wrong number of arguments"
        }
        var arguments = arguments
        // As Redis: one argument to a list-valued parameter is split on spaces (`--save "900 1"`).
        if parameter.flags.contains(.multiArgument), arguments.count == 1, !arguments[0].isEmpty,
           let words = Self.splitWords(arguments[0]) {
            arguments = words
        }
        // `save` lines accumulate in a file, as in Redis; `save ""` clears.
        let previous = (parameter.name == "save" && fromFile.contains("save")) ? values["save"] : nil
        switch canonical(parameter, arguments, appendingTo: previous) {
        case .success(let value):
            values[parameter.name] = value
            fromFile.insert(parameter.name)
            refreshSettings()
            return nil
        case .failure(let error):
            return error.message
        }
    }

    private func directive(_ name: String, _ arguments: [String]) -> String? {
        switch name {
        case "include":
            guard arguments.count == 1 else { return "Bad directive or wrong number of arguments" }
            let pattern = arguments[0]
            // Like Redis 7, an include may be a glob; a pattern that matches nothing includes nothing.
            let paths = pattern.contains(where: { "*?[".contains($0) }) ? Self.expandGlob(pattern) : [pattern]
            for path in paths {
                do { try loadFile(path) } catch { return "\(error)" }
            }
            return nil
        case "rename-command":
            guard arguments.count == 2 else { return "Bad directive or wrong number of arguments" }
            renamedCommands[arguments[0].lowercased()] = arguments[1]
            return nil
        case "user":
            guard !arguments.isEmpty else { return "Bad directive or wrong number of arguments" }
            userDirectives.append(arguments)
            return nil
        case "loadmodule":
            return "Modules are not supported by NovaCache"
        default:
            return "sentinel directive while not in sentinel mode"
        }
    }

    func refreshSettings() {
        settings = ServerSettings(values: values)
    }
}
