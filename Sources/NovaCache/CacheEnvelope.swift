/// What the remote tier stores under a key: a small header, then the encoded value.
///
/// Layout: `NC` 0x01, the write time (ms since the epoch, big-endian Int64), the sliding TTL in ms (0: not
/// sliding, big-endian Int64), then the payload. The write time lets recovery replay refuse to overwrite a
/// newer value written by another process during an outage. A value without the header (written by
/// another tool) is read as a payload with unknown write time.
struct CacheEnvelope: Sendable, Hashable {
    static let magic: [UInt8] = [0x4E, 0x43, 0x01]
    static let headerSize = 3 + 8 + 8

    var writtenAt: Int64
    var slidingMilliseconds: Int64
    var payload: [UInt8]
    /// Whether the bytes carried our header.
    var isOurs = true

    init(writtenAt: Int64, slidingMilliseconds: Int64, payload: [UInt8]) {
        self.writtenAt = writtenAt
        self.slidingMilliseconds = slidingMilliseconds
        self.payload = payload
    }

    init(decoding bytes: some Collection<UInt8>) {
        let array = Array(bytes)
        guard array.count >= Self.headerSize, array[0] == Self.magic[0], array[1] == Self.magic[1], array[2] == Self.magic[2] else {
            self.init(writtenAt: 0, slidingMilliseconds: 0, payload: array)
            isOurs = false
            return
        }
        self.init(
            writtenAt: Self.readInt64(array, at: 3), slidingMilliseconds: Self.readInt64(array, at: 11),
            payload: Array(array[Self.headerSize...]))
    }

    var encoded: [UInt8] {
        var bytes = Self.magic
        bytes.reserveCapacity(Self.headerSize + payload.count)
        Self.append(writtenAt, to: &bytes)
        Self.append(slidingMilliseconds, to: &bytes)
        bytes += payload
        return bytes
    }

    private static func readInt64(_ bytes: [UInt8], at offset: Int) -> Int64 {
        var value: UInt64 = 0
        for index in offset..<offset + 8 { value = value << 8 | UInt64(bytes[index]) }
        return Int64(bitPattern: value)
    }

    private static func append(_ value: Int64, to bytes: inout [UInt8]) {
        let bits = UInt64(bitPattern: value)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }
}
