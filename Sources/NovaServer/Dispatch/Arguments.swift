package import NIOCore
import NovaScripting
package import NovaEngine
import NovaRESP

/// The arguments of one command: a view into the connection's decoded batch. Index 0 is the command name.
package struct Arguments: Sendable {
    let storage: [ByteBuffer]
    private(set) var base: Int
    /// The number of arguments, the command name included.
    package private(set) var count: Int

    
    init(storage: [ByteBuffer], range: Range<Int>) {
        self.storage = storage
        self.base = range.lowerBound
        self.count = range.count
    }

    /// Moves the view to the command at `range` of the same storage (no reference counting).
    mutating func select(_ range: Range<Int>) {
        base = range.lowerBound
        count = range.count
    }

    /// Arguments built from values (tests, internal re-dispatch).
    package init(_ values: [ByteBuffer]) {
        self.init(storage: values, range: values.indices)
    }

    /// The argument at `index`.
    
    /// Yielded in place, so that passing it to a function (a borrow) costs no reference count.
    package subscript(index: Int) -> ByteBuffer {
        _read { yield storage[base + index] }
    }

    /// Arguments `range`, without copying: a script's KEYS and ARGV.
    func scriptValues(_ range: Range<Int>) -> ScriptValues {
        ScriptValues(storage, range: base + range.lowerBound..<base + range.upperBound)
    }

    /// The bytes of all arguments together.
    var byteCount: Int {
        var total = 0
        for index in 0..<count { total += self[index].readableBytes }
        return total
    }

    /// The argument's bytes copied into engine storage.
    package func bytes(_ index: Int) -> Bytes { Bytes(self[index]) }

    /// The argument as text (lossy for invalid UTF-8); for error messages and names, not for data.
    package func string(_ index: Int) -> String { String(decoding: self[index].readableBytesView, as: UTF8.self) }

    /// The argument's bytes as Redis prints them with `%s` (up to a NUL byte), at most `limit` bytes
    /// (`%.128s`).
    func printable(_ index: Int, limit: Int = .max) -> [UInt8] {
        let view = self[index].readableBytesView
        let end = view.firstIndex(of: 0) ?? view.endIndex
        return Array(view[view.startIndex..<end].prefix(limit))
    }

    /// True when the argument equals `keyword` ignoring ASCII case (`keyword` must be lowercase).
    
    package func isKeyword(_ index: Int, _ keyword: StaticString) -> Bool {
        self[index].withUnsafeReadableBytes { bytes in
            guard bytes.count == keyword.utf8CodeUnitCount else { return false }
            let expected = keyword.utf8Start
            for i in 0..<bytes.count {
                var c = bytes[i]
                if c >= 65 && c <= 90 { c += 32 }
                if c != expected[i] { return false }
            }
            return true
        }
    }

    /// The argument lowercased as text (option parsing).
    package func lowercased(_ index: Int) -> String { string(index).lowercased() }

    /// The argument as a 64-bit integer with Redis's rules, or `ERR value is not an integer or out of range`.
    
    package func integer(_ index: Int) throws(CommandError) -> Int64 {
        guard let value = self[index].withUnsafeReadableBytes({ RedisInteger.parse($0) }) else {
            throw .notInteger
        }
        return value
    }

    /// The argument as an integer, or the given error.
    package func integer(_ index: Int, or error: CommandError) throws(CommandError) -> Int64 {
        guard let value = self[index].withUnsafeReadableBytes({ RedisInteger.parse($0) }) else { throw error }
        return value
    }

    /// The argument as a double (`string2d` rules), or `ERR value is not a valid float`.
    package func double(_ index: Int) throws(CommandError) -> Double {
        guard let value = RedisFloat.parseDouble(self[index].readableBytesView) else { throw .notFloat }
        return value
    }
}
