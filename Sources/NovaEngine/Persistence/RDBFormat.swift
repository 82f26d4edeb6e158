/// Constants of Redis's RDB snapshot format (the version Redis 7.0 writes is 10).
public enum RDBFormat {
    /// The version written.
    public static let version = 10
    /// The newest version read (Redis 7.0's).
    public static let newestReadable = 10

    // Object types.
    public static let typeString: UInt8 = 0
    public static let typeList: UInt8 = 1
    public static let typeSet: UInt8 = 2
    public static let typeZSet: UInt8 = 3
    public static let typeHash: UInt8 = 4
    public static let typeZSet2: UInt8 = 5
    public static let typeModule: UInt8 = 6
    public static let typeModule2: UInt8 = 7
    public static let typeHashZipmap: UInt8 = 9
    public static let typeListZiplist: UInt8 = 10
    public static let typeSetIntset: UInt8 = 11
    public static let typeZSetZiplist: UInt8 = 12
    public static let typeHashZiplist: UInt8 = 13
    public static let typeListQuicklist: UInt8 = 14
    public static let typeStreamListpacks: UInt8 = 15
    public static let typeHashListpack: UInt8 = 16
    public static let typeZSetListpack: UInt8 = 17
    public static let typeListQuicklist2: UInt8 = 18
    public static let typeStreamListpacks2: UInt8 = 19

    // Opcodes.
    public static let opFunction2: UInt8 = 245
    public static let opFunctionPreGA: UInt8 = 246
    public static let opModuleAux: UInt8 = 247
    public static let opIdle: UInt8 = 248
    public static let opFreq: UInt8 = 249
    public static let opAux: UInt8 = 250
    public static let opResizeDB: UInt8 = 251
    public static let opExpireTimeMs: UInt8 = 252
    public static let opExpireTime: UInt8 = 253
    public static let opSelectDB: UInt8 = 254
    public static let opEOF: UInt8 = 255

    // Length encodings (first two bits) and special string encodings.
    static let length6Bit: UInt8 = 0
    static let length14Bit: UInt8 = 1
    static let length32Bit: UInt8 = 0x80
    static let length64Bit: UInt8 = 0x81
    static let encodedValue: UInt8 = 3
    static let encodingInt8 = 0
    static let encodingInt16 = 1
    static let encodingInt32 = 2
    static let encodingLZF = 3
}

/// A snapshot or AOF preamble that cannot be read, with where it went wrong.
public struct RDBError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// Byte offset in the file where the problem was found.
    public let offset: Int

    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) (at byte \(offset))" }
}
