#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NovaRESP

/// An error in a configuration file or in command-line flags, reported the way redis-server reports it:
/// the file's line, or the flag (redis-server numbers the lines it makes of them, which no one can find),
/// or neither for a check of the whole configuration (a log file that cannot be opened).
package struct ConfigFileError: Error, CustomStringConvertible, Sendable {
    /// The line of the file (1-based); 0 when the error is not on a line of a file.
    package let line: Int
    package let text: String
    package let message: String
    /// The error is in a command-line flag (`text` is the flag and its values).
    package var isFlag = false

    package init(line: Int, text: String, message: String, isFlag: Bool = false) {
        self.line = line
        self.text = text
        self.message = message
        self.isFlag = isFlag
    }

    package var description: String {
        let location = isFlag ? "Reading the command line, at flag '\(text.split(separator: " ").first ?? "")'\n>>> '\(text)'\n"
            : text.isEmpty || line == 0 ? "" : "Reading the configuration file, at line \(line)\n>>> '\(text)'\n"
        return "*** FATAL CONFIG FILE ERROR (NovaCache) ***\n" + location + message
    }
}

/// redis.conf files and redis-server-style flags: loading, CONFIG REWRITE, and the file helpers.
extension ConfigStore {
    // MARK: Files and flags

    /// Splits a value the way a redis.conf line is split (quotes, escapes).
    static func splitWords(_ text: String) -> [String]? {
        var text = text
        return text.withUTF8 { utf8 in
            InlineSplitter.split(UnsafeRawBufferPointer(utf8))?.map { String(decoding: $0, as: UTF8.self) }
        }
    }

    /// Applies the lines of a redis.conf-syntax text. `lineOffset` numbers lines in error messages.
    package func load(text: String) throws(ConfigFileError) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, rawLine) in lines.enumerated() {
            let line = rawLine.trimmingCharacters(in: " \t\r\n")
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let words = Self.splitWords(line) else {
                throw ConfigFileError(line: index + 1, text: line, message: "Unbalanced quotes in configuration line")
            }
            guard let name = words.first else { continue }
            if let message = setAtStartup(name, Array(words.dropFirst())) {
                throw ConfigFileError(line: index + 1, text: line, message: message)
            }
            if name.lowercased() == "user" { userDirectiveLocations.append((index + 1, line, false)) }
        }
    }

    /// Reads and applies a configuration file.
    package func loadFile(_ path: String) throws(ConfigFileError) {
        guard let text = Self.readFile(path) else {
            throw ConfigFileError(line: 0, text: path, message: "Fatal error, can't open config file '\(path)': \(String(cString: strerror(errno)))")
        }
        try load(text: text)
    }

    /// Turns redis-server style flags (`--port 7000 --save ""`) into configuration lines and applies them.
    package func load(flags: [String]) throws(ConfigFileError) {
        var lines: [[String]] = []
        for argument in flags {
            if argument.hasPrefix("--") && argument.count > 2 {
                lines.append([String(argument.dropFirst(2))])
            } else if lines.isEmpty {
                throw ConfigFileError(line: 0, text: argument, message: "Invalid argument '\(argument)': options start with --")
            } else {
                lines[lines.count - 1].append(argument)
            }
        }
        for (index, words) in lines.enumerated() {
            var arguments = Array(words.dropFirst())
            // A flag given with no value means an empty value (`--save` → `save ""`).
            if arguments.isEmpty { arguments = [""] }
            let text = "--" + words.joined(separator: " ")
            if let message = setAtStartup(words[0], arguments) {
                throw ConfigFileError(line: index + 1, text: text, message: message, isFlag: true)
            }
            if words[0].lowercased() == "user" { userDirectiveLocations.append((index + 1, text, true)) }
        }
    }

    /// What redis-server checks once everything is loaded: the log file can be opened for appending (it is
    /// created if missing), or the server does not start.
    package func checkLoaded() throws(ConfigFileError) {
        guard let path = value("logfile"), !path.isEmpty else { return }
        guard let file = fopen(path, "a") else {
            throw ConfigFileError(line: 0, text: "", message: "Can't open the log file: \(String(cString: strerror(errno)))")
        }
        fclose(file)
    }

    /// CONFIG REWRITE: rewrites the configuration file with the current values, keeping its comments and
    /// the order of its lines; changed parameters missing from the file are appended. `userLines` (the
    /// ACL's users, when they live in this file) replace the file's `user` lines.
    package func rewrite(userLines: [String]? = nil) throws(CommandError) {
        guard let path = configFilePath else { throw CommandError("ERR The server is running without a config file") }
        let old = Self.readFile(path) ?? ""
        var lines = old.isEmpty ? [] : old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        var written: Set<String> = []
        var output: [String] = []
        var usersWritten = false
        for line in lines {
            let trimmed = line.trimmingCharacters(in: " \t\r\n")
            if let userLines, let first = Self.splitWords(trimmed)?.first, first.lowercased() == "user" {
                if !usersWritten { output.append(contentsOf: userLines) }
                usersWritten = true
                continue
            }
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), let words = Self.splitWords(trimmed),
                  let first = words.first, let parameter = parameters[first.lowercased()] else {
                output.append(line)
                continue
            }
            if written.contains(parameter.name) { continue }
            written.insert(parameter.name)
            output.append(contentsOf: rewriteLines(parameter))
        }
        var appended = false
        for parameter in ConfigCatalog.all where !written.contains(parameter.name) {
            guard values[parameter.name] != parameter.defaultValue, parameter.name != "dir" || fromFile.contains("dir") else { continue }
            if !appended && !output.contains("# Generated by CONFIG REWRITE") {
                output.append("# Generated by CONFIG REWRITE")
            }
            appended = true
            output.append(contentsOf: rewriteLines(parameter))
        }
        if let userLines, !usersWritten {
            // Only users other than an untouched default need a line, as Redis writes them.
            let needed = userLines.filter { $0 != "user default on nopass ~* &* +@all" }
            if !needed.isEmpty {
                if !output.contains("# Generated by CONFIG REWRITE") { output.append("# Generated by CONFIG REWRITE") }
                output.append(contentsOf: needed)
            }
        }
        let text = output.joined(separator: "\n") + "\n"
        let temporary = path + ".tmp-rewrite"
        guard Self.writeFile(temporary, text), rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CommandError("ERR Rewriting config file: \(String(cString: strerror(errno)))")
        }
    }

    private func rewriteLines(_ parameter: ConfigParameter) -> [String] {
        let value = values[parameter.name] ?? ""
        if parameter.name == "save" {
            if value.isEmpty { return ["save \"\""] }
            let words = value.split(separator: " ")
            return stride(from: 0, to: words.count, by: 2).map { "save \(words[$0]) \(words[$0 + 1])" }
        }
        if parameter.flags.contains(.multiArgument) { return ["\(parameter.name) \(value.isEmpty ? "\"\"" : value)"] }
        return ["\(parameter.name) \(Self.quoted(value))"]
    }

    static func quoted(_ value: String) -> String {
        if !value.isEmpty && !value.contains(where: { $0 == " " || $0 == "\"" || $0 == "'" || $0 == "\\" || $0.asciiValue.map { $0 < 32 } ?? false }) {
            return value
        }
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return normalize(cwd + "/" + path)
    }

    private static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." { _ = parts.popLast(); continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The files matching a shell glob, sorted.
    static func expandGlob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in
            result.gl_pathv[index].map { String(cString: $0) }
        }.sorted()
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let read = fread(&chunk, 1, chunk.count, file)
            if read <= 0 { break }
            data.append(contentsOf: chunk[0..<read])
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func writeFile(_ path: String, _ text: String) -> Bool {
        guard let file = fopen(path, "w") else { return false }
        let bytes = Array(text.utf8)
        let written = fwrite(bytes, 1, bytes.count, file)
        let flushed = fflush(file) == 0 && fsync(fileno(file)) == 0
        fclose(file)
        return written == bytes.count && flushed
    }

}

extension ConfigStore {
    /// Parameters that switch on something NovaCache does not do, and what to use instead. Accepted (so
    /// that a redis.conf loads), but a value other than the default is worth a warning.
    static let featuresWithoutEffect: [(name: String, instead: String)] = [
        ("daemonize", "NovaCache stays in the foreground: run it under systemd or launchd (deploy/)"),
        ("supervised", "no readiness notification is sent: use Type=simple units (deploy/)"),
        ("pidfile", "no pid file is written: the service manager knows the pid"),
        ("syslog-enabled", "logs go to `logfile` or stderr (journald keeps stderr)"),
        ("cluster-enabled", "NovaCache is a single node: shard with a Redis or Valkey Cluster"),
        ("activedefrag", "there is no active defragmentation"),
        ("min-replicas-to-write", "there are no replicas"),
        ("masterauth", "there is no replication"),
        ("masteruser", "there is no replication"),
        ("oom-score-adj", "the OOM killer's score is not changed"),
    ]

    /// One warning per parameter of `featuresWithoutEffect` set to something other than its default.
    package func settingsWithoutEffect() -> [String] {
        Self.featuresWithoutEffect.compactMap { name, instead in
            guard let parameter = parameters[name], let current = values[parameter.name], current != parameter.defaultValue else {
                return nil
            }
            let shown = parameter.flags.contains(.sensitive) ? "(set)" : "'\(current)'"
            return "\(name) \(shown) has no effect in NovaCache: \(instead)"
        }
    }
}
