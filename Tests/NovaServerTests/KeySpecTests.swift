import NIOCore
import Testing

@testable import NovaServer
import NovaRESP

/// Key specifications: finding keys the way Redis 7.0 does, and the legacy range COMMAND INFO reports.
@Suite("Key specs")
struct KeySpecTests {
    let table = CommandTable(CommandRegistry.all)

    func keys(_ words: String...) -> [String] {
        let spec = table.lookup(ByteBuffer(string: words[0]))!
        let arguments = words.map { ByteBuffer(string: $0) }
        return spec.keyReferences(arguments).map { words[$0.index] + ":" + $0.flags.names.map(\.description).joined(separator: ",") }
    }

    @Test func fixedAndCountedKeys() {
        #expect(keys("GET", "k") == ["k:RO,access"])
        #expect(keys("MSET", "a", "1", "b", "2") == ["a:OW,update", "b:OW,update"])
        #expect(keys("ZUNIONSTORE", "d", "2", "a", "b") == ["d:OW,update", "a:RO,access", "b:RO,access"])
        #expect(keys("LMOVE", "s", "d", "LEFT", "RIGHT") == ["s:RW,access,delete", "d:RW,insert"])
        #expect(keys("BLPOP", "a", "b", "0") == ["a:RW,access,delete", "b:RW,access,delete"])
    }

    @Test func badCountFallsBackToAtoiThenToNothing() {
        // Redis: the key specs read numkeys strictly; its getkeys callbacks use atoi and put the
        // destination last.
        #expect(keys("ZUNIONSTORE", "d", "1e3", "a") == ["a:RO,access", "d:OW,update"])
        #expect(keys("ZUNIONSTORE", "d", "0", "a") == [])
        #expect(keys("ZUNIONSTORE", "d", "3", "a") == [])
        #expect(keys("LMPOP", "4294967297", "a", "LEFT") == ["a:RW,access,delete"])
    }

    @Test func variableFlagsFollowTheArguments() {
        #expect(keys("SET", "k", "v") == ["k:OW,update"])
        #expect(keys("SET", "k", "v", "gEt") == ["k:RW,access,update"])
        #expect(keys("SET", "k", "get") == ["k:OW,update"])
    }

    @Test func keywordSearchAndLegacyRange() {
        let streams = KeySpec(.keyword("STREAMS", startFrom: 1), .range(lastKey: -1, step: 1, limit: 2), [.ro, .access])
        let arguments = ["XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0"].map { ByteBuffer(string: $0) }
        #expect(KeyExtraction.bySpecs([streams], arguments)?.map(\.index) == [4, 5])
        // No keyword: no keys from that spec, and no failure.
        #expect(KeyExtraction.bySpecs([streams], Array(arguments.prefix(3)))?.isEmpty == true)

        #expect(KeyExtraction.legacyRange([.key(1, [.ro])]) == (1, 1, 1, false))
        #expect(KeyExtraction.legacyRange([.keys(1, last: -1, step: 2, [.ow])]) == (1, -1, 2, false))
        #expect(KeyExtraction.legacyRange([.key(1, [.ow]), .counted(2, [.ro])]) == (1, 1, 1, true))
        #expect(KeyExtraction.legacyRange([.key(1, [.rw]), .key(2, [.rw])]) == (1, 2, 1, false))
        #expect(KeyExtraction.legacyRange([.counted(1, [.rw])]) == (0, 0, 0, true))
        #expect(KeyExtraction.legacyRange([]) == (0, 0, 0, false))
    }

    @Test func aclPermissionsFromKeyFlags() {
        #expect(KeySpecFlags([.ro, .access]).aclPermission == .read)
        #expect(KeySpecFlags([.ow, .update]).aclPermission == .write)
        #expect(KeySpecFlags([.rw, .access, .delete]).aclPermission == [.read, .write])
        #expect(KeySpecFlags([.ro]).aclPermission == [])
    }
}
