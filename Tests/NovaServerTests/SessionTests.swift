import Logging
import NIOCore
import Testing

import NovaRESP
@testable import NovaServer

/// A session fed bytes directly (no socket), as an event loop feeds it.
@Suite struct SessionTests {
    private func session(_ flags: [String] = []) throws -> Session {
        let config = ConfigStore()
        try config.load(flags: ["--save", ""] + flags)
        let server = ServerCore(config: config, logger: Logger(label: "test"))
        let client = try #require(server.register(connection: nil, address: "127.0.0.1:1", localAddress: "127.0.0.1:6379"))
        return Session(server: server, client: client, settings: config.settings)
    }

    private func feed(_ session: Session, _ text: String) {
        var buffer = ByteBuffer(string: text)
        session.receive(&buffer)
    }

    private func replies(_ output: ByteBuffer) throws -> [RESPValue] {
        var output = output
        var values: [RESPValue] = []
        while let value = try RESPValueDecoder().decode(&output) { values.append(value) }
        return values
    }

    /// What an event loop prefetches before running a turn's input: the next command's database and first
    /// key, decoded once — `run` then runs that same batch, and the commands after it, in order.
    @Test func theNextKeyIsTheFirstArgumentOfTheCommandToRunNext() throws {
        let session = try session()
        #expect(session.nextKey() == nil)
        feed(session, "*3\r\n$3\r\nSET\r\n$4\r\nuser\r\n$3\r\nann\r\n*2\r\n$3\r\nGET\r\n$4\r\nuser\r\n")
        let next = try #require(session.nextKey())
        #expect(next.db == 0 && next.key == ByteBuffer(string: "user"))
        #expect(session.nextKey()?.key == ByteBuffer(string: "user"))  // asking again decodes nothing more
        var output = ByteBuffer()
        #expect(session.run(into: &output, limit: 1 << 20) == .waiting)
        #expect(try replies(output) == [.simpleString("OK"), .bulkString(ByteBuffer(string: "ann"))])

        feed(session, "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*1\r\n$4\r\nPING\r\n")
        #expect(session.nextKey()?.key == ByteBuffer(string: "2"))  // SELECT's argument: a key to a prefetch
        output.clear()
        #expect(session.run(into: &output, limit: 1 << 20) == .waiting)
        #expect(try replies(output) == [.simpleString("OK"), .simpleString("PONG")])
        feed(session, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n")
        #expect(session.nextKey()?.db == 2)
    }

    /// A command without arguments names no key; a malformed request is answered as without a prefetch.
    @Test func noKeyForACommandWithoutArgumentsOrAProtocolError() throws {
        let session = try session()
        feed(session, "*1\r\n$4\r\nPING\r\n")
        #expect(session.nextKey() == nil)
        var output = ByteBuffer()
        #expect(session.run(into: &output, limit: 1 << 20) == .waiting)
        #expect(try replies(output) == [.simpleString("PONG")])

        feed(session, "*1\r\n$4\r\nPING\r\n*x\r\n")
        #expect(session.nextKey() == nil)
        output.clear()
        #expect(session.run(into: &output, limit: 1 << 20) == .close)
        #expect(try replies(output) == [.simpleString("PONG"), .error("ERR Protocol error: invalid multibulk length")])
    }
}
