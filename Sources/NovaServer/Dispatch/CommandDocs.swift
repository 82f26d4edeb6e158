import NovaRESP

/// COMMAND INFO and COMMAND DOCS replies, generated from the command table. Argument documentation is
/// parsed from each command's syntax line (`key value [NX | XX] [EX seconds | PX milliseconds]`).
enum CommandDocs {
    /// One argument's documentation map, fields in Redis's order.
    static func write(_ argument: CommandArgument, _ reply: inout RESPWriter) {
        var flags: [StaticString] = []
        if argument.optional { flags.append("optional") }
        if argument.multiple { flags.append("multiple") }
        if argument.multipleToken { flags.append("multiple_token") }
        let count = 2 + (argument.keySpecIndex == nil ? 0 : 1) + (argument.token == nil ? 0 : 1)
            + (argument.since == nil ? 0 : 1) + (argument.deprecatedSince == nil ? 0 : 1) + (flags.isEmpty ? 0 : 1)
            + (argument.arguments.isEmpty ? 0 : 1)
        reply.map(count)
        reply.bulk("name")
        reply.bulk(argument.name)
        reply.bulk("type")
        reply.bulk(argument.kind.rawValue)
        if let index = argument.keySpecIndex {
            reply.bulk("key_spec_index")
            reply.integer(index)
        }
        if let token = argument.token {
            reply.bulk("token")
            reply.bulk(token)
        }
        if let since = argument.since {
            reply.bulk("since")
            reply.bulk(since)
        }
        if let deprecated = argument.deprecatedSince {
            reply.bulk("deprecated_since")
            reply.bulk(deprecated)
        }
        if !flags.isEmpty {
            reply.bulk("flags")
            reply.set(flags.count)
            for flag in flags { reply.simpleString(flag) }
        }
        if !argument.arguments.isEmpty {
            reply.bulk("arguments")
            reply.array(argument.arguments.count)
            for item in argument.arguments { write(item, &reply) }
        }
    }

    /// COMMAND DOCS entry (the value of the map, after the name), fields in Redis's order.
    static func writeDocs(_ spec: CommandSpec, _ reply: inout RESPWriter) {
        let arguments = spec.arguments
        let count = 3 + (spec.complexity.isEmpty ? 0 : 1) + (spec.deprecation == nil ? 0 : 3) + (spec.isSystemCommand ? 1 : 0) + (spec.history.isEmpty ? 0 : 1)
            + (arguments.isEmpty ? 0 : 1) + (spec.subcommands.isEmpty ? 0 : 1)
        reply.map(count)
        reply.bulk("summary")
        reply.bulk(spec.summary)
        reply.bulk("since")
        reply.bulk(spec.since)
        reply.bulk("group")
        reply.bulk(spec.group.rawValue)
        if !spec.complexity.isEmpty {
            reply.bulk("complexity")
            reply.bulk(spec.complexity)
        }
        if spec.isSystemCommand {
            reply.bulk("doc_flags")
            reply.set(1)
            reply.simpleString("syscmd")
        }
        if let deprecation = spec.deprecation {
            reply.bulk("doc_flags")
            reply.set(1)
            reply.simpleString("deprecated")
            reply.bulk("deprecated_since")
            reply.bulk(deprecation.since)
            reply.bulk("replaced_by")
            reply.bulk(deprecation.replacedBy)
        }
        if !spec.history.isEmpty {
            reply.bulk("history")
            reply.set(spec.history.count)
            for (version, change) in spec.history {
                reply.array(2)
                reply.bulk(version)
                reply.bulk(change)
            }
        }
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
