import NovaRESP

/// COMMAND INFO and COMMAND DOCS replies, generated from the command table. Argument documentation is
/// parsed from each command's syntax line (`key value [NX | XX] [EX seconds | PX milliseconds]`).
enum CommandDocs {
    /// One documented argument.
    indirect enum Argument {
        case value(name: String, type: String, token: String?, optional: Bool, multiple: Bool, keyIndex: Int?)
        case token(String, optional: Bool, multiple: Bool)
        case oneOf(name: String, [Argument], optional: Bool, multiple: Bool)
        case block(name: String, [Argument], optional: Bool, multiple: Bool)
    }

    static let keyNames: Set<String> = ["key", "newkey", "source", "destination"]
    static let integerNames: Set<String> = [
        "seconds", "milliseconds", "count", "offset", "start", "end", "increment", "decrement", "db", "index",
        "index1", "index2", "numkeys", "timeout", "cursor", "destination-db", "client-id", "port",
    ]

    static func type(of name: String) -> String {
        if keyNames.contains(name) { return "key" }
        if integerNames.contains(name) { return "integer" }
        if name.hasPrefix("unix-time") { return "unix-time" }
        if name == "pattern" { return "pattern" }
        return "string"
    }

    /// Parses a syntax line into arguments.
    static func parse(_ syntax: String) -> [Argument] {
        var tokens: [String] = []
        var current = ""
        for character in syntax {
            if character == "[" || character == "]" || character == "(" || character == ")" || character == "|" {
                if !current.isEmpty { tokens.append(current); current = "" }
                tokens.append(String(character))
            } else if character == " " {
                if !current.isEmpty { tokens.append(current); current = "" }
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        var position = 0
        var keyIndex = 0
        return parseSequence(tokens, &position, &keyIndex)
    }

    private static func isToken(_ word: String) -> Bool {
        word.first?.isUppercase == true && word == word.uppercased()
    }

    private static func parseSequence(_ tokens: [String], _ position: inout Int, _ keyIndex: inout Int) -> [Argument] {
        var result: [Argument] = []
        while position < tokens.count {
            let token = tokens[position]
            if token == "]" || token == ")" || token == "|" { break }
            position += 1
            var argument: Argument
            if token == "[" || token == "(" {
                let closing = token == "[" ? "]" : ")"
                var alternatives: [[Argument]] = [parseSequence(tokens, &position, &keyIndex)]
                while position < tokens.count && tokens[position] == "|" {
                    position += 1
                    alternatives.append(parseSequence(tokens, &position, &keyIndex))
                }
                if position < tokens.count && tokens[position] == closing { position += 1 }
                let optional = token == "["
                if alternatives.count > 1 {
                    let choices = alternatives.map { $0.count == 1 ? $0[0] : .block(name: blockName($0), $0, optional: false, multiple: false) }
                    argument = .oneOf(name: blockName(alternatives.flatMap { $0 }), choices, optional: optional, multiple: false)
                } else if alternatives[0].count == 1 {
                    argument = withFlags(alternatives[0][0], optional: optional, multiple: false)
                } else {
                    argument = .block(name: blockName(alternatives[0]), alternatives[0], optional: optional, multiple: false)
                }
            } else if isToken(token) {
                if position < tokens.count, !isToken(tokens[position]), !["[", "]", "(", ")", "|"].contains(tokens[position]),
                   !tokens[position].hasPrefix("...") {
                    let name = tokens[position]
                    position += 1
                    argument = .value(name: name, type: type(of: name), token: token, optional: false, multiple: false,
                                      keyIndex: keyNames.contains(name) ? keyIndex : nil)
                    if keyNames.contains(name) { keyIndex += 1 }
                } else {
                    argument = .token(token, optional: false, multiple: false)
                }
            } else {
                let name = token
                argument = .value(name: name, type: type(of: name), token: nil, optional: false, multiple: false,
                                  keyIndex: keyNames.contains(name) ? keyIndex : nil)
                if keyNames.contains(name) { keyIndex += 1 }
            }
            if position < tokens.count && tokens[position].hasPrefix("...") {
                position += 1
                argument = withFlags(argument, optional: nil, multiple: true)
            }
            result.append(argument)
        }
        return result
    }

    private static func blockName(_ arguments: [Argument]) -> String {
        guard let first = arguments.first else { return "arguments" }
        switch first {
        case .value(let name, _, let token, _, _, _): return (token ?? name).lowercased()
        case .token(let token, _, _): return token.lowercased()
        case .oneOf(let name, _, _, _), .block(let name, _, _, _): return name
        }
    }

    private static func withFlags(_ argument: Argument, optional: Bool?, multiple: Bool) -> Argument {
        switch argument {
        case let .value(name, type, token, o, m, key):
            return .value(name: name, type: type, token: token, optional: optional ?? o, multiple: m || multiple, keyIndex: key)
        case let .token(token, o, m):
            return .token(token, optional: optional ?? o, multiple: m || multiple)
        case let .oneOf(name, choices, o, m):
            return .oneOf(name: name, choices, optional: optional ?? o, multiple: m || multiple)
        case let .block(name, items, o, m):
            return .block(name: name, items, optional: optional ?? o, multiple: m || multiple)
        }
    }

    static func write(_ argument: Argument, _ reply: inout RESPWriter) {
        var fields: [(String, (inout RESPWriter) -> Void)] = []
        func flags(_ optional: Bool, _ multiple: Bool) {
            var names: [StaticString] = []
            if optional { names.append("optional") }
            if multiple { names.append("multiple") }
            guard !names.isEmpty else { return }
            fields.append(("flags", { r in
                r.set(names.count)
                for name in names { r.simpleString(name) }
            }))
        }
        switch argument {
        case let .value(name, type, token, optional, multiple, keyIndex):
            fields.append(("name", { $0.bulk(name) }))
            fields.append(("type", { $0.bulk(type) }))
            if let keyIndex { fields.append(("key_spec_index", { $0.integer(keyIndex) })) }
            if let token { fields.append(("token", { $0.bulk(token) })) }
            flags(optional, multiple)
        case let .token(token, optional, multiple):
            fields.append(("name", { $0.bulk(token.lowercased()) }))
            fields.append(("type", { $0.bulk("pure-token") }))
            fields.append(("token", { $0.bulk(token) }))
            flags(optional, multiple)
        case let .oneOf(name, items, optional, multiple), let .block(name, items, optional, multiple):
            let isOneOf: Bool
            if case .oneOf = argument { isOneOf = true } else { isOneOf = false }
            fields.append(("name", { $0.bulk(name) }))
            fields.append(("type", { $0.bulk(isOneOf ? "oneof" : "block") }))
            flags(optional, multiple)
            fields.append(("arguments", { r in
                r.array(items.count)
                for item in items { write(item, &r) }
            }))
        }
        reply.map(fields.count)
        for (key, value) in fields {
            reply.bulk(key)
            value(&reply)
        }
    }

    /// COMMAND DOCS entry (the value of the map, after the name).
    static func writeDocs(_ spec: CommandSpec, _ reply: inout RESPWriter) {
        let arguments = parse(spec.syntax)
        let count = 4 + (arguments.isEmpty ? 0 : 1) + (spec.subcommands.isEmpty ? 0 : 1)
        reply.map(count)
        reply.bulk("summary")
        reply.bulk(spec.summary)
        reply.bulk("since")
        reply.bulk(spec.since)
        reply.bulk("group")
        reply.bulk(spec.group.rawValue)
        reply.bulk("complexity")
        reply.bulk(spec.complexity)
        if !arguments.isEmpty {
            reply.bulk("arguments")
            reply.array(arguments.count)
            for argument in arguments { write(argument, &reply) }
        }
        if !spec.subcommands.isEmpty {
            reply.bulk("subcommands")
            reply.map(spec.subcommands.count)
            for sub in spec.subcommands {
                reply.bulk(sub.fullName)
                writeDocs(sub, &reply)
            }
        }
    }

    /// COMMAND INFO entry.
    static func writeInfo(_ spec: CommandSpec, _ reply: inout RESPWriter) {
        reply.array(10)
        reply.bulk(spec.fullName)
        reply.integer(spec.arity)
        var flags = spec.flags.names
        if spec.hasMovableKeys { flags.insert("movablekeys", at: flags.count) }
        if spec.flags.contains(.allowBusy) { flags.append("allow_busy") }
        reply.set(flags.count)
        for flag in flags { reply.simpleString(flag) }
        reply.integer(spec.legacyKeyRange.first)
        reply.integer(spec.legacyKeyRange.last)
        reply.integer(spec.legacyKeyRange.step)
        let categories = spec.aclCategories
        reply.set(categories.count)
        for category in categories { reply.simpleString("@" + category) }
        reply.array(spec.tips.count)
        for tip in spec.tips { reply.bulk(tip) }
        reply.array(spec.keySpecs.count)
        for keySpec in spec.keySpecs { writeKeySpec(keySpec, &reply) }
        reply.array(spec.subcommands.count)
        for sub in spec.subcommands { writeInfo(sub, &reply) }
    }

    /// One key specification, as Redis's `addReplyCommandKeySpecs`.
    static func writeKeySpec(_ keySpec: KeySpec, _ reply: inout RESPWriter) {
        reply.map(keySpec.notes == nil ? 3 : 4)
        if let notes = keySpec.notes {
            reply.bulk("notes")
            reply.bulk(notes)
        }
        reply.bulk("flags")
        let names = keySpec.flags.names
        reply.set(names.count)
        for name in names { reply.simpleString(name) }
        reply.bulk("begin_search")
        switch keySpec.beginSearch {
        case .index(let index):
            reply.map(2)
            reply.bulk("type")
            reply.bulk("index")
            reply.bulk("spec")
            reply.map(1)
            reply.bulk("index")
            reply.integer(index)
        case let .keyword(keyword, startFrom):
            reply.map(2)
            reply.bulk("type")
            reply.bulk("keyword")
            reply.bulk("spec")
            reply.map(2)
            reply.bulk("keyword")
            reply.bulk(keyword)
            reply.bulk("startfrom")
            reply.integer(startFrom)
        case .unknown:
            reply.map(2)
            reply.bulk("type")
            reply.bulk("unknown")
            reply.bulk("spec")
            reply.map(0)
        }
        reply.bulk("find_keys")
        switch keySpec.findKeys {
        case let .range(lastKey, step, limit):
            reply.map(2)
            reply.bulk("type")
            reply.bulk("range")
            reply.bulk("spec")
            reply.map(3)
            reply.bulk("lastkey")
            reply.integer(lastKey)
            reply.bulk("keystep")
            reply.integer(step)
            reply.bulk("limit")
            reply.integer(limit)
        case let .keynum(countOffset, firstKey, step):
            reply.map(2)
            reply.bulk("type")
            reply.bulk("keynum")
            reply.bulk("spec")
            reply.map(3)
            reply.bulk("keynumidx")
            reply.integer(countOffset)
            reply.bulk("firstkey")
            reply.integer(firstKey)
            reply.bulk("keystep")
            reply.integer(step)
        case .unknown:
            reply.map(2)
            reply.bulk("type")
            reply.bulk("unknown")
            reply.bulk("spec")
            reply.map(0)
        }
    }
}
