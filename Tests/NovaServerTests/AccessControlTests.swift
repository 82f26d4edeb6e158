import Testing

import NIOCore
import NovaEngine
import NovaRESP
@testable import NovaServer

@Suite("ACL: password hashing, rules and permission checks")
struct AccessControlTests {
    @Test func sha256MatchesTheStandardVectors() {
        #expect(SHA256.hex(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Crosses a block boundary with the length (55, 56 and 64 bytes), and a million 'a's.
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 55)) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 56)) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 64)) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func constantTimeComparison() {
        #expect(AccessControl.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!AccessControl.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!AccessControl.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!AccessControl.constantTimeEqual([], Array("a".utf8)))
    }

    @Test func rulesAreCheckedPerCommandKeyAndChannel() throws {
        let h = try Harness()
        #expect(try h.run("ACL", "SETUSER", "u", "on", ">pw", "%R~r:*", "~rw:*", "&chan", "-@all", "+@read", "+set", "+publish") == .simpleString("OK"))
        func dry(_ args: String...) throws -> RESPValue { try h.run([["ACL", "DRYRUN", "u"] + args])[0] }
        #expect(try dry("GET", "r:1") == .simpleString("OK"))
        #expect(try dry("SET", "r:1", "v") == .bulk("This user has no permissions to access the 'r:1' key"))
        #expect(try dry("SET", "rw:1", "v") == .simpleString("OK"))
        #expect(try dry("DEL", "rw:1") == .bulk("This user has no permissions to run the 'del' command"))
        #expect(try dry("PUBLISH", "chan", "m") == .simpleString("OK"))
        #expect(try dry("PUBLISH", "other", "m") == .bulk("This user has no permissions to access the 'other' channel"))
        // Authentication as the user, then a refused command: NOPERM and an ACL LOG entry.
        #expect(try h.run("AUTH", "u", "pw") == .simpleString("OK"))
        #expect(try h.run("GET", "x") == .error("NOPERM this user has no permissions to access one of the keys used as arguments"))
        #expect(try h.run("ACL", "WHOAMI") == .error("NOPERM this user has no permissions to run the 'acl|whoami' command"))
    }

    @Test func passwordsAreStoredAsHashesOnly() throws {
        let h = try Harness()
        _ = try h.run("ACL", "SETUSER", "u", "on", ">hunter2", "+@all")
        guard case .array(let lines) = try h.run("ACL", "LIST") else {
            Issue.record("ACL LIST is not an array")
            return
        }
        let text = lines.map { line -> String in
            if case .bulkString(let bytes) = line { return String(buffer: bytes) }
            return ""
        }.joined(separator: "\n")
        #expect(!text.contains("hunter2"))
        #expect(text.contains(SHA256.hex(Array("hunter2".utf8))))
    }

    @Test func requirepassSetsTheDefaultUsersPassword() throws {
        let h = try Harness(["--requirepass", "first"])
        #expect(try h.run("AUTH", "first") == .simpleString("OK"))
        #expect(try h.run("CONFIG", "SET", "requirepass", "second") == .simpleString("OK"))
        #expect(try h.run("AUTH", "first") == .error("WRONGPASS invalid username-password pair or user is disabled."))
        #expect(try h.run("AUTH", "default", "second") == .simpleString("OK"))
        // Another parameter's CONFIG SET leaves ACL changes to the default user alone.
        _ = try h.run("ACL", "SETUSER", "default", ">extra")
        _ = try h.run("CONFIG", "SET", "maxmemory", "0")
        #expect(try h.run("AUTH", "extra") == .simpleString("OK"))
    }

    @Test func setuserIsAllOrNothing() throws {
        let h = try Harness()
        _ = try h.run("ACL", "SETUSER", "u", "on", "+get")
        #expect(try h.run("ACL", "SETUSER", "u", "+set", "bogus")
                == .error("ERR Error in ACL SETUSER modifier 'bogus': Syntax error"))
        #expect(try h.run("ACL", "DRYRUN", "u", "SET", "k", "v") == .bulk("This user has no permissions to run the 'set' command"))
    }
}
