import NIOCore
import Testing

import NovaRESP

@Suite("RequestDecoder")
struct RequestDecoderTests {
    /// Decodes `input` in one go and returns the commands as strings, plus the protocol error if any.
    func decodeAll(_ input: String, authenticated: Bool = true, maxBulk: Int = 512 * 1024 * 1024) -> ([[String]], RESPProtocolError?) {
        var decoder = RequestDecoder(maxBulkLength: maxBulk)
        decoder.isAuthenticated = authenticated
        var buffer = ByteBuffer(string: input)
        var batch = CommandBatch()
        var failure: RESPProtocolError?
        do { try decoder.decode(&buffer, into: &batch) } catch { failure = error }
        return (commands(batch), failure)
    }

    func commands(_ batch: CommandBatch) -> [[String]] {
        (0..<batch.count).map { index in batch.range(of: index).map { String(buffer: batch.arguments[$0]) } }
    }

    /// Feeds `input` one byte at a time, collecting every command decoded.
    func decodeByteByByte(_ input: [UInt8]) -> ([[String]], RESPProtocolError?) {
        var decoder = RequestDecoder()
        var buffer = ByteBuffer()
        var all: [[String]] = []
        var batch = CommandBatch()
        for byte in input {
            buffer.writeInteger(byte)
            do {
                try decoder.decode(&buffer, into: &batch)
            } catch {
                return (all + commands(batch), error)
            }
            all += commands(batch)
            batch.removeAll()
        }
        return (all, nil)
    }

    @Test func multibulkCommands() {
        let (commands, error) = decodeAll("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n")
        #expect(error == nil)
        #expect(commands == [["SET", "k", "hello"], ["PING"]])
    }

    @Test func binarySafeArguments() {
        var decoder = RequestDecoder()
        var buffer = ByteBuffer(bytes: Array("*2\r\n$3\r\nGET\r\n$4\r\n".utf8) + [0, 13, 10, 255] + [13, 10])
        var batch = CommandBatch()
        try? decoder.decode(&buffer, into: &batch)
        #expect(batch.count == 1)
        #expect(Array(batch.arguments[1].readableBytesView) == [0, 13, 10, 255])
    }

    @Test func incompleteCommandWaitsForMoreBytes() throws {
        var decoder = RequestDecoder()
        var buffer = ByteBuffer(string: "*2\r\n$3\r\nGET\r\n$5\r\nhel")
        var batch = CommandBatch()
        try decoder.decode(&buffer, into: &batch)
        #expect(batch.isEmpty)
        #expect(decoder.isMidCommand)
        buffer.writeString("lo\r\n")
        try decoder.decode(&buffer, into: &batch)
        #expect(commands(batch) == [["GET", "hello"]])
        #expect(buffer.readableBytes == 0)
    }

    /// A command cut by the end of a read keeps its decoded arguments, but not the read buffer: the next
    /// read writes into the same storage instead of copying it (which happened on nearly every read of
    /// pipelined 16 KB SETs, each copy a fresh 128 KB allocation).
    @Test func partlyReceivedCommandDoesNotHoldTheBuffer() throws {
        var decoder = RequestDecoder()
        var buffer = ByteBuffer(string: "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n$2\r\nP")
        var batch = CommandBatch()
        try decoder.decode(&buffer, into: &batch)
        #expect(batch.isEmpty && decoder.isMidCommand)
        func storage(_ buffer: ByteBuffer) -> UInt { buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) } }
        let before = storage(buffer)
        buffer.setInteger(UInt8(ascii: "#"), at: 0)  // a write: copies the storage if anything shares it
        #expect(storage(buffer) == before)
        buffer.writeString("X\r\n*3\r\n$4\r\nECHO\r\n$1\r\na\r\n$1\r\n")
        try decoder.decode(&buffer, into: &batch)
        #expect(commands(batch) == [["SET", "k", "hello", "PX"]])
        batch.removeAll()  // run: the complete command's arguments were slices of the buffer
        let again = storage(buffer)
        buffer.setInteger(UInt8(ascii: "#"), at: 0)
        #expect(storage(buffer) == again, "the arguments of a second cut command are copied too")
        buffer.writeString("b\r\n*1\r\n$4\r\nPI")
        try decoder.decode(&buffer, into: &batch)
        buffer.writeString("NG\r\n")
        try decoder.decode(&buffer, into: &batch)
        #expect(commands(batch) == [["ECHO", "a", "b"], ["PING"]])
    }

    /// Arguments too large to copy twice stay slices of the buffer (which the next write then moves), and
    /// the command comes out whole either way.
    @Test func largePendingArgumentsStaySlices() throws {
        let large = String(repeating: "v", count: CommandBatch.maxOwnedPendingBytes + 1)
        var decoder = RequestDecoder()
        var buffer = ByteBuffer(string: "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$\(large.utf8.count)\r\n\(large)\r\n$1\r\nb\r\n$1")
        var batch = CommandBatch()
        try decoder.decode(&buffer, into: &batch)
        #expect(batch.isEmpty && decoder.isMidCommand)
        let before = buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
        buffer.writeString("\r\nc\r\n")
        #expect(buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) } != before)
        try decoder.decode(&buffer, into: &batch)
        #expect(commands(batch) == [["MSET", "a", large, "b", "c"]])
    }

    @Test(arguments: [
        "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n*1\r\n$4\r\nPING\r\n",
        "PING\r\nSET a \"b c\"\r\nGET a\n",
        "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n\r\n  \r\nECHO 'it\\'s'\r\n",
        "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    ])
    func byteAtATimeMatchesWholeBuffer(input: String) {
        let whole = decodeAll(input)
        let split = decodeByteByByte(Array(input.utf8))
        #expect(whole.0 == split.0)
        #expect(whole.1 == split.1)
        #expect(!whole.0.isEmpty)
    }

    @Test func inlineCommandsAndQuoting() {
        let (commands, error) = decodeAll("SET k \"a\\x41\\n\\\"b\" 'c\\'d'\r\n\r\nGET   k\n")
        #expect(error == nil)
        #expect(commands == [["SET", "k", "aA\n\"b", "c'd"], ["GET", "k"]])
    }

    @Test func emptyMultibulkIsIgnored() {
        #expect(decodeAll("*0\r\n*-1\r\n").0.isEmpty)
    }

    @Test(arguments: [
        ("*abc\r\n", "Protocol error: invalid multibulk length"),
        ("*1048577\r\n", "Protocol error: invalid multibulk length"),
        ("*99999999999999999999999\r\n", "Protocol error: invalid multibulk length"),
        ("*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
        ("*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
        ("*1\r\n$536870913\r\n", "Protocol error: invalid bulk length"),
        ("*1\r\nx3\r\nfoo\r\n", "Protocol error: expected '$', got 'x'"),
        ("SET \"unterminated\r\n", "Protocol error: unbalanced quotes in request"),
        ("SET \"a\"b\r\n", "Protocol error: unbalanced quotes in request"),
    ])
    func protocolErrors(input: String, message: String) {
        let (_, error) = decodeAll(input)
        #expect(error?.message == message)
        let (_, splitError) = decodeByteByByte(Array(input.utf8))
        #expect(splitError?.message == message)
    }

    @Test func overlongHeadersAreRefusedWithoutATerminator() {
        let long = String(repeating: "1", count: RequestDecoder.maxInlineLength + 10)
        #expect(decodeAll("*" + long).1?.message == "Protocol error: too big mbulk count string")
        #expect(decodeAll("*1\r\n$" + long).1?.message == "Protocol error: too big bulk count string")
        #expect(decodeAll("GET " + long).1?.message == "Protocol error: too big inline request")
    }

    @Test func commandsBeforeAnErrorAreKept() {
        let (commands, error) = decodeAll("*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n")
        #expect(commands == [["PING"]])
        #expect(error?.message == "Protocol error: invalid bulk length")
    }

    @Test func unauthenticatedClientsHaveSmallerLimits() {
        #expect(decodeAll("*11\r\n", authenticated: false).1?.message == "Protocol error: unauthenticated multibulk length")
        #expect(decodeAll("*1\r\n$16385\r\n", authenticated: false).1?.message == "Protocol error: unauthenticated bulk length")
        #expect(decodeAll("*11\r\n", authenticated: true).1 == nil)
    }

    @Test func hugeDeclaredLengthsReserveNothing() throws {
        var decoder = RequestDecoder()
        var buffer = ByteBuffer(string: "*1048576\r\n$536870912\r\n")
        var batch = CommandBatch()
        try decoder.decode(&buffer, into: &batch)
        #expect(batch.isEmpty)
        #expect(decoder.isMidCommand)
    }

    @Test func maxCommandsStopsEarly() throws {
        var decoder = RequestDecoder()
        var buffer = ByteBuffer(string: "PING\r\nPING\r\nPING\r\n")
        var batch = CommandBatch()
        try decoder.decode(&buffer, into: &batch, maxCommands: 1)
        #expect(batch.count == 1)
        #expect(buffer.readableBytes == 12)
    }
}
