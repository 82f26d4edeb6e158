package import NIOCore
package import NovaRESP

extension KeySpecFlags {
    /// The ACL key permissions a key with these flags needs: read to access data, write to change it.
    /// None for a key whose data is neither (EXISTS, TYPE, TTL): any key pattern that matches grants it.
    var aclPermission: KeyPermission {
        var needed: KeyPermission = []
        if contains(.access) { needed.insert(.read) }
        if !intersection([.insert, .delete, .update]).isEmpty { needed.insert(.write) }
        return needed
    }
}

extension CommandSpec {
    /// The keys of a call (`arguments` includes the command name), as Redis 7.0's
    /// `getKeysFromCommandWithSpecs` finds them: from the key specs, reading `numkeys` strictly; when a
    /// spec cannot be followed, by the command's own `keyFinder` (SORT), or for a bad `numkeys` as the
    /// command's getkeys callback would (`numkeys` read with `atoi`, the counted keys first); no keys
    /// when nothing works. Commands whose key flags
    /// depend on the arguments (SET … GET) get them from `variableKeyFlags`.
    package func keyReferences(_ arguments: [ByteBuffer]) -> [KeyReference] {
        var found = KeyExtraction.bySpecs(keySpecs, arguments) ?? keyFinder?(arguments)
            ?? KeyExtraction.byCallback(keySpecs, arguments)
        if let variableKeyFlags {
            for index in found.indices { found[index].flags = variableKeyFlags(arguments, found[index]) }
        }
        return found
    }

    /// The argument indexes of the keys of a call (see `keyReferences`).
    package func keyIndexes(_ arguments: [ByteBuffer]) -> [Int] {
        keyReferences(arguments).map(\.index)
    }

    /// Whether the command takes keys at all.
    package var hasKeys: Bool { keySpecs.contains { !$0.flags.contains(.notKey) } }
}
