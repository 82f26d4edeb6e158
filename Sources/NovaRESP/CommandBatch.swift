public import NIOCore

/// Complete commands decoded from one read, stored flat so that decoding allocates nothing per command.
///
/// The arguments of complete commands are slices of the connection's inbound buffer (no copy); those of a
/// command still being received have storage of their own (`ownPendingArguments(from:)`).
public struct CommandBatch: Sendable {
    /// Every argument of every command, in order.
    public private(set) var arguments: [ByteBuffer] = []
    /// `ends[i]` is the index one past the last argument of command `i`.
    public private(set) var ends: [Int] = []

    public init() {}

    /// The number of complete commands.
    public var count: Int { ends.count }

    /// Whether the batch holds no command.
    public var isEmpty: Bool { ends.isEmpty }

    /// The range of `arguments` that belongs to command `index`.
    @inlinable
    public func range(of index: Int) -> Range<Int> {
        (index == 0 ? 0 : ends[index - 1])..<ends[index]
    }

    /// Appends one command.
    public mutating func append(_ command: some Collection<ByteBuffer>) {
        arguments.append(contentsOf: command)
        ends.append(arguments.count)
    }

    /// Appends an argument of the command being decoded (not counted until `finishCommand`).
    @usableFromInline
    mutating func appendArgument(_ argument: ByteBuffer) {
        arguments.append(argument)
    }

    /// Gives the arguments of the command still being received, from index `start` on, storage of their
    /// own. Sliced from the caller's inbound buffer, they would keep that buffer shared until the command
    /// completes, and every read into it in the meantime would copy it to new storage (a partly received
    /// command ends nearly every read of pipelined large values). They are copied together into one new
    /// buffer (one allocation rather than one per argument), and each at most once: the decoder passes the
    /// first index it appended in the current call. Arguments of more than `maxOwnedPendingBytes` in all
    /// stay slices: a copy would hold their bytes twice while the buffer they came from is still as large
    /// (a value of hundreds of MB followed by more arguments); the next read moves the unread bytes to new
    /// storage instead, as any write into a shared buffer does.
    @usableFromInline
    mutating func ownPendingArguments(from start: Int) {
        let pending = max(start, ends.last ?? 0)..<arguments.count
        let total = arguments[pending].reduce(0) { $0 + $1.readableBytes }
        guard !pending.isEmpty, total <= Self.maxOwnedPendingBytes else { return }
        var owned = ByteBufferAllocator().buffer(capacity: total)
        for index in pending { owned.writeImmutableBuffer(arguments[index]) }
        for index in pending { arguments[index] = owned.readSlice(length: arguments[index].readableBytes)! }
    }

    /// The most bytes of a partly received command's arguments that `ownPendingArguments` copies.
    public static let maxOwnedPendingBytes = 64 * 1024

    /// Completes the command whose arguments were appended since the previous one.
    @usableFromInline
    mutating func finishCommand() {
        ends.append(arguments.count)
    }

    /// Removes the complete commands, keeping the arguments of a command still being received and the
    /// storage for the next read.
    public mutating func removeAll() {
        let completed = ends.last ?? 0
        if completed == arguments.count {
            arguments.removeAll(keepingCapacity: true)
        } else if completed > 0 {
            arguments.removeSubrange(0..<completed)
        }
        ends.removeAll(keepingCapacity: true)
    }
}
