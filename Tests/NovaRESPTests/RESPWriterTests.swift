import NIOCore
import Testing

import NovaRESP

@Suite("RESPWriter and RESPValueDecoder")
struct RESPWriterTests {
    func written(_ version: RESPVersion, _ body: (inout RESPWriter) -> Void) -> String {
        var writer = RESPWriter(buffer: ByteBuffer(), version: version)
        body(&writer)
        return String(buffer: writer.buffer)
    }

    @Test func typesInRESP2() {
        #expect(written(.v2) { $0.null() } == "$-1\r\n")
        #expect(written(.v2) { $0.nullArray() } == "*-1\r\n")
        #expect(written(.v2) { $0.map(2) } == "*4\r\n")
        #expect(written(.v2) { $0.boolean(true) } == ":1\r\n")
        #expect(written(.v2) { $0.double(1.5) } == "$3\r\n1.5\r\n")
        #expect(written(.v2) { $0.verbatim("hi") } == "$2\r\nhi\r\n")
        #expect(written(.v2) { $0.integer(Int64.min) } == ":-9223372036854775808\r\n")
        #expect(written(.v2) { $0.bulk(decimal: -42) } == "$3\r\n-42\r\n")
    }

    @Test func typesInRESP3() {
        #expect(written(.v3) { $0.null() } == "_\r\n")
        #expect(written(.v3) { $0.map(2) } == "%2\r\n")
        #expect(written(.v3) { $0.set(1) } == "~1\r\n")
        #expect(written(.v3) { $0.boolean(false) } == "#f\r\n")
        #expect(written(.v3) { $0.double(.infinity) } == ",inf\r\n")
        #expect(written(.v3) { $0.verbatim("hi") } == "=6\r\ntxt:hi\r\n")
        #expect(written(.v3) { $0.push(3) } == ">3\r\n")
    }

    @Test func framesWrittenInOneReservation() {
        #expect(written(.v2) { $0.bulk(UnsafeRawBufferPointer(start: nil, count: 0)) } == "$0\r\n\r\n")
        #expect(written(.v2) { $0.bulk(ByteBuffer(string: "abc")) } == "$3\r\nabc\r\n")
        #expect(written(.v2) { $0.simpleString("PONG" as StaticString) } == "+PONG\r\n")
        #expect(written(.v2) { $0.simpleString("O" as StaticString) } == "+O\r\n")
        #expect(written(.v2) { $0.simpleString(String("QUEUED")) } == "+QUEUED\r\n")
        #expect(written(.v2) { $0.simpleString(String("a\rb")) } == "+a b\r\n")
        // Larger than any initial capacity, appended after earlier replies.
        let big = String(repeating: "x", count: 100_000)
        let text = written(.v2) { writer in
            writer.integer(7)
            writer.bulk(ByteBuffer(string: big))
            writer.ok()
        }
        #expect(text == ":7\r\n$100000\r\n\(big)\r\n+OK\r\n")
    }

    @Test func errorsCannotBreakFraming() {
        #expect(written(.v2) { $0.error("ERR bad\r\nthing") } == "-ERR bad  thing\r\n")
        #expect(written(.v2) { $0.error(Array("ERR x\ny".utf8)) } == "-ERR x y\r\n")
    }

    @Test func decoderRoundTrip() throws {
        var buffer = ByteBuffer(string: "*3\r\n$3\r\nfoo\r\n:12\r\n%1\r\n+a\r\n,1.5\r\n_\r\n-ERR x\r\n")
        let decoder = RESPValueDecoder()
        let array = try decoder.decode(&buffer)
        #expect(array == .array([.bulkString(ByteBuffer(string: "foo")), .integer(12), .map([(.simpleString("a"), .double(1.5))])]))
        #expect(try decoder.decode(&buffer) == .null)
        #expect(try decoder.decode(&buffer) == .error("ERR x"))
        #expect(buffer.readableBytes == 0)
    }

    @Test func decoderConsumesNothingUntilComplete() throws {
        var buffer = ByteBuffer(string: "*2\r\n$3\r\nfoo\r\n$3\r\nba")
        let before = buffer
        #expect(try RESPValueDecoder().decode(&buffer) == nil)
        #expect(buffer == before)
    }

    @Test func decoderRefusesDeepNesting() {
        var buffer = ByteBuffer(string: String(repeating: "*1\r\n", count: 100) + ":1\r\n")
        #expect(throws: RESPDecodingError.self) { try RESPValueDecoder().decode(&buffer) }
    }
}
