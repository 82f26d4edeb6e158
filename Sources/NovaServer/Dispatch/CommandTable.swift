package import NIOCore

/// A command name folded to lowercase and packed inline, so dispatch looks names up without allocating.
struct CommandName: Hashable {
    private var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
    private var length: UInt8 = 0

    /// Longest name that can be looked up; longer names are unknown commands.
    static let capacity = 24

    init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count <= Self.capacity else { return nil }
        length = UInt8(bytes.count)
        withUnsafeMutableBytes(of: &words) { out in
            for i in 0..<bytes.count {
                let c = bytes[i]
                out[i] = (c >= 65 && c <= 90) ? c + 32 : c
            }
        }
    }

    init?(_ text: String) {
        var text = text
        guard let name = text.withUTF8({ CommandName(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = name
    }

    static func == (a: CommandName, b: CommandName) -> Bool {
        a.length == b.length && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
    }

    /// A cheap mix of the packed words for the dispatch table (names are not attacker-chosen keys: the
    /// table is fixed, a miss costs at most a short probe).
    var slotHash: Int {
        let mixed = (words.0 &* 0x9E37_79B9_7F4A_7C15) ^ (words.1 &* 0xC2B2_AE3D_27D4_EB4F) ^ (words.2 &+ UInt64(length))
        return Int(truncatingIfNeeded: mixed ^ (mixed >> 29))
    }
}

/// Open-addressing map from command names to specs, sized so probes stay short.
struct CommandNameMap {
    private var names: [CommandName?]
    private var specs: [CommandSpec?]
    private let mask: Int

    init(_ entries: [(CommandName, CommandSpec)]) {
        var capacity = 16
        while capacity < entries.count * 4 { capacity *= 2 }
        names = Array(repeating: nil, count: capacity)
        specs = Array(repeating: nil, count: capacity)
        mask = capacity - 1
        for (name, spec) in entries {
            var slot = name.slotHash & mask
            while let existing = names[slot], existing != name { slot = (slot + 1) & mask }
            names[slot] = name
            specs[slot] = spec
        }
    }

    subscript(name: CommandName) -> CommandSpec? {
        var slot = name.slotHash & mask
        while let existing = names[slot] {
            if existing == name { return specs[slot] }
            slot = (slot + 1) & mask
        }
        return nil
    }
}

/// The command table: every command once, with its flags, arity, keys and handler. Dispatch, COMMAND
/// INFO / DOCS and statistics all read it.
package final class CommandTable: Sendable {
    /// Top-level commands in declaration order.
    package let commands: [CommandSpec]
    /// Every command and subcommand, indexed by `CommandSpec.id`.
    package let all: [CommandSpec]
    private let byName: CommandNameMap

    /// Builds the table; `renames` applies `rename-command` (old name → new name, empty to disable).
    package init(_ specs: [CommandSpec], renames: [String: String] = [:]) {
        var all: [CommandSpec] = []
        var byName: [(CommandName, CommandSpec)] = []
        for spec in specs {
            spec.id = all.count
            all.append(spec)
            for sub in spec.subcommands {
                sub.id = all.count
                sub.parent = spec
                all.append(sub)
            }
            let exposed = renames[spec.name] ?? spec.name
            if !exposed.isEmpty, let key = CommandName(exposed) { byName.append((key, spec)) }
        }
        self.commands = specs
        self.all = all
        self.byName = CommandNameMap(byName)
    }

    /// The command named by `name` (any case), or nil.
    
    package func lookup(_ name: ByteBuffer) -> CommandSpec? {
        name.withUnsafeReadableBytes { lookup(raw: $0) }
    }


    func lookup(raw: UnsafeRawBufferPointer) -> CommandSpec? {
        guard let key = CommandName(raw) else { return nil }
        return byName[key]
    }

    /// The command named `name` (any case), or nil.
    package func lookup(_ name: String) -> CommandSpec? {
        guard let key = CommandName(name) else { return nil }
        return byName[key]
    }

    /// The subcommand of `container` named by `name` (any case), or nil.
    package func subcommand(of container: CommandSpec, _ name: ByteBuffer) -> CommandSpec? {
        guard let key = name.withUnsafeReadableBytes({ CommandName($0) }) else { return nil }
        return container.subcommands.first { CommandName($0.name) == key }
    }

    /// Resolves a command name and optional subcommand given as text (`client|list` style or two words).
    package func resolve(_ name: String) -> CommandSpec? {
        let parts = name.lowercased().split(separator: "|", maxSplits: 1)
        guard let first = parts.first, let spec = lookup(String(first)) else { return nil }
        guard parts.count == 2 else { return spec }
        return spec.subcommands.first { $0.name == parts[1] }
    }
}
