import Testing

import NovaEngine

@Suite("Bitmaps, BITFIELD and LCS")
struct BitmapTests {
    @Test func bitsAreMostSignificantFirst() {
        var bytes: [UInt8] = [0, 0]
        bytes.withUnsafeMutableBytes { raw in
            #expect(!Bitmap.setBit(at: 0, to: true, in: raw))
            #expect(!Bitmap.setBit(at: 9, to: true, in: raw))
            #expect(Bitmap.setBit(at: 9, to: false, in: raw))
            Bitmap.setBit(at: 15, to: true, in: raw)
        }
        #expect(bytes == [0x80, 0x01])
        bytes.withUnsafeBytes { raw in
            #expect(Bitmap.bit(at: 0, in: raw))
            #expect(!Bitmap.bit(at: 1, in: raw))
            #expect(Bitmap.bit(at: 15, in: raw))
            #expect(!Bitmap.bit(at: 1000, in: raw))
        }
    }

    @Test func countAndPositionAgreeWithANaiveScan() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 1...40, using: &generator)).map { _ in
                [UInt8(0), 0xFF, UInt8.random(in: 0...255, using: &generator)].randomElement(using: &generator)!
            }
            let bits = bytes.count * 8
            let start = Int.random(in: 0..<bits, using: &generator)
            let end = Int.random(in: start..<bits, using: &generator)
            bytes.withUnsafeBytes { raw in
                let naive = (start...end).map { Bitmap.bit(at: $0, in: raw) }
                #expect(Bitmap.count(raw, bits: start...end) == naive.filter { $0 }.count)
                for bit in [false, true] {
                    let expected = naive.firstIndex(of: bit).map { start + $0 }
                    #expect(Bitmap.position(of: bit, in: raw, bits: start...end) == expected)
                }
            }
        }
    }

    @Test func bitopPadsShorterStringsWithZeros() {
        #expect(Bitmap.combine(.and, [[0xFF, 0x0F], [0x3C]]) == [0x3C, 0x00])
        #expect(Bitmap.combine(.or, [[0x01], [0x10, 0x02]]) == [0x11, 0x02])
        #expect(Bitmap.combine(.xor, [[0xFF, 0xFF], [0x0F]]) == [0xF0, 0xFF])
        #expect(Bitmap.combine(.not, [[0x0F, 0x00]]) == [0xF0, 0xFF])
        #expect(Bitmap.combine(.or, [[], []]) == [])
    }

    @Test func bitfieldReadsAndWritesAnyWidthAtAnyOffset() {
        var bytes = [UInt8](repeating: 0, count: 10)
        bytes.withUnsafeMutableBytes { raw in
            BitField.set(raw, offset: 3, bits: 5, to: 0b10110)
            BitField.set(raw, offset: 13, bits: 64, to: UInt64(bitPattern: -2))
        }
        bytes.withUnsafeBytes { raw in
            #expect(BitField.unsigned(raw, offset: 3, bits: 5) == 0b10110)
            #expect(BitField.signed(raw, offset: 3, bits: 5) == -10)
            #expect(BitField.signed(raw, offset: 13, bits: 64) == -2)
            #expect(BitField.unsigned(raw, offset: 72, bits: 8) == 0b1111_0000)
            // Past the end reads as zeros.
            #expect(BitField.unsigned(raw, offset: 72, bits: 12) == 0b1111_0000_0000)
        }
    }

    @Test func overflowRulesAreRedis() {
        // Unsigned 8 bits: 250 + 10 wraps to 4, saturates at 255; 3 - 5 saturates at 0.
        #expect(BitField.unsignedOverflow(250, 10, bits: 8, .wrap) == 4)
        #expect(BitField.unsignedOverflow(250, 10, bits: 8, .saturate) == 255)
        #expect(BitField.unsignedOverflow(3, -5, bits: 8, .saturate) == 0)
        #expect(BitField.unsignedOverflow(3, -5, bits: 8, .wrap) == 254)
        #expect(BitField.unsignedOverflow(3, 5, bits: 8, .wrap) == nil)
        // SET of a negative number into an unsigned field: the value is out of range.
        #expect(BitField.unsignedOverflow(UInt64(bitPattern: -1), 0, bits: 8, .wrap) == 255)
        // Signed 8 bits: 120 + 10 wraps to -126, saturates at 127; -120 - 10 saturates at -128.
        #expect(BitField.signedOverflow(120, 10, bits: 8, .wrap) == -126)
        #expect(BitField.signedOverflow(120, 10, bits: 8, .saturate) == 127)
        #expect(BitField.signedOverflow(-120, -10, bits: 8, .saturate) == -128)
        #expect(BitField.signedOverflow(-120, 10, bits: 8, .wrap) == nil)
        #expect(BitField.signedOverflow(300, 0, bits: 8, .wrap) == 44)
        #expect(BitField.signedOverflow(.max, 1, bits: 64, .wrap) == .min)
        #expect(BitField.signedOverflow(.max, 1, bits: 64, .saturate) == .max)
    }

    @Test func lcsFindsTheSubsequenceAndItsRuns() {
        let result = LongestCommonSubsequence(Array("ohmytext".utf8), Array("mynewtext".utf8))
        #expect(String(decoding: result.bytes, as: UTF8.self) == "mytext")
        #expect(result.length == 6)
        // From the end, as Redis lists them: "text" at 4...7 / 5...8, then "my" at 2...3 / 0...1.
        #expect(result.matches == [
            LongestCommonSubsequence.Match(a: 4...7, b: 5...8),
            LongestCommonSubsequence.Match(a: 2...3, b: 0...1),
        ])
        #expect(LongestCommonSubsequence([], Array("abc".utf8)).length == 0)
        #expect(LongestCommonSubsequence.tableBytes(9, 9) == 400)
    }
}

@Suite("HyperLogLog")
struct HyperLogLogTests {
    private func add(_ hll: inout HyperLogLog, _ element: String, sparseMaxBytes: Int = 3000) -> Bool {
        var element = element
        return element.withUTF8 { try! hll.add(UnsafeRawBufferPointer($0), sparseMaxBytes: sparseMaxBytes) }
    }

    @Test func registerAndRunMatchRedis() {
        // PFADD of one element then PFDEBUG DECODE on redis-server 7.0.15.
        let expected: [(String, Int, UInt8)] = [("a", 12711, 2), ("hello", 9216, 1), ("", 5938, 2),
                                                ("12345678", 10579, 3), ("abcdefghijklmnop", 9328, 1)]
        for (element, register, count) in expected {
            var text = element
            let found = text.withUTF8 { HyperLogLog.registerAndCount(of: UnsafeRawBufferPointer($0)) }
            #expect(found.register == register && found.count == count, "\(element)")
            var hll = HyperLogLog()
            #expect(add(&hll, element))
            #expect(hll.decodedOpcodes() == "Z:\(register) v:\(count),1 Z:\(16383 - register)")
        }
    }

    @Test func sparseBytesMatchRedis() throws {
        var hll = HyperLogLog()
        for element in ["a", "b", "c", "d", "e", "f", "g"] { _ = add(&hll, element) }
        hll.invalidateCache()
        // GET of the same PFADD on redis-server 7.0.15.
        let redis: [UInt8] = [0x48, 0x59, 0x4c, 0x4c, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80,
                              0x46, 0x6d, 0x80, 0x56, 0x0c, 0x80, 0x44, 0x3c, 0x84, 0x38, 0x80, 0x50, 0xb1, 0x84,
                              0x49, 0x8c, 0x80, 0x42, 0x6d, 0x80, 0x42, 0x5a]
        #expect(hll.bytes == redis)
        #expect(try hll.estimate() == 7)
    }

    @Test func sparseAndDenseAgreeAndPromotionKeepsRegisters() throws {
        var sparse = HyperLogLog()
        var dense = HyperLogLog()
        try dense.convertToDense()
        for index in 0..<20_000 {
            _ = add(&sparse, "element-\(index)")
            _ = add(&dense, "element-\(index)")
            if index % 997 == 0 { #expect(try sparse.estimate() == dense.estimate()) }
        }
        #expect(sparse.encoding == .dense)
        #expect(sparse.bytes.count == 12304)
        #expect(try sparse.estimate() == dense.estimate())
        let estimate = try dense.estimate()
        #expect(abs(Int(estimate) - 20_000) < 20_000 / 50)
    }

    @Test func cacheAndValidation() throws {
        var hll = HyperLogLog()
        #expect(hll.cachedCardinality == 0)
        _ = add(&hll, "x")
        hll.invalidateCache()
        #expect(hll.cachedCardinality == nil)
        hll.cacheCardinality(1)
        #expect(hll.cachedCardinality == 1)
        #expect(throws: HyperLogLog.Problem.notHyperLogLog) { try HyperLogLog(validating: Array("HYLL".utf8)) }
        var wrongEncoding = hll.bytes
        wrongEncoding[4] = 2
        #expect(throws: HyperLogLog.Problem.notHyperLogLog) { try HyperLogLog(validating: wrongEncoding) }
        // Registers that do not add up to 16384 are corrupt: counting and adding refuse, never crash.
        var short = try HyperLogLog(validating: Array(hll.bytes.prefix(17)))
        #expect(throws: HyperLogLog.Problem.corrupt) { try short.estimate() }
        #expect(throws: HyperLogLog.Problem.corrupt) { try short.convertToDense() }
        var registers = [UInt8](repeating: 0, count: HyperLogLog.registerCount)
        #expect(throws: HyperLogLog.Problem.corrupt) { try short.merge(into: &registers) }
        // One ZERO opcode covers register 0 only: adding to any other register finds no opcode.
        var oneRegister = try HyperLogLog(validating: Array(hll.bytes.prefix(16)) + [0x00])
        var element = "y"
        #expect(element.withUTF8 { HyperLogLog.registerAndCount(of: UnsafeRawBufferPointer($0)).register } != 0)
        _ = element.withUTF8 { raw in
            #expect(throws: HyperLogLog.Problem.corrupt) { try oneRegister.add(UnsafeRawBufferPointer(raw), sparseMaxBytes: 3000) }
        }
    }
}
