package import NIOCore

/// A script's KEYS or ARGV (a function's two tables): a view of some of a command's arguments, without
/// copying them. A concrete type, so that pushing them into Lua is specialised code rather than generic
/// collection calls through witness tables (they run on every EVALSHA).
package struct ScriptValues: RandomAccessCollection, ExpressibleByArrayLiteral, Sendable {
    package typealias Indices = Range<Int>
    let storage: [ByteBuffer]
    package let startIndex: Int
    package let endIndex: Int

    /// The values `range` of `storage`.
    package init(_ storage: [ByteBuffer], range: Range<Int>) {
        self.storage = storage
        startIndex = range.lowerBound
        endIndex = range.upperBound
    }

    /// All of `values`.
    package init(_ values: [ByteBuffer]) {
        self.init(values, range: values.indices)
    }

    package init(arrayLiteral elements: ByteBuffer...) {
        self.init(elements)
    }

    package subscript(index: Int) -> ByteBuffer {
        _read { yield storage[index] }
    }
}
