/// A memory level: a share of `maxmemory` (`90%`) or an amount (`2gb`, `500mb`, `1000000`), as
/// `alert-memory` in the server's configuration and `--memory-warn` on the command line take it.
package struct MemoryThreshold: Sendable, Equatable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable {
        /// Percent of maxmemory, in (0, 100].
        case percent(Double)
        case bytes(Int)
    }

    package let kind: Kind
    /// The text it was read from.
    package let description: String

    /// Reads `90%`, `2gb`, `512mb`, `64kb`, `1g` (10⁹), `100m`, `10k`, `1000b` or a plain number of bytes;
    /// nil for anything else, zero or a share over 100%.
    package init?(parsing argument: String) {
        let text = String(argument.filter { !$0.isWhitespace }).lowercased()
        description = argument
        if text.hasSuffix("%") {
            guard let percent = Double(text.dropLast()), percent > 0, percent <= 100 else { return nil }
            kind = .percent(percent)
        } else {
            // Redis's memory units: k/m/g are powers of ten, kb/mb/gb powers of two.
            let units: [(String, Int)] = [("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10), ("g", 1_000_000_000), ("m", 1_000_000), ("k", 1000), ("b", 1)]
            let unit = units.first { text.hasSuffix($0.0) } ?? ("", 1)
            guard let number = Int(text.dropLast(unit.0.count)), number > 0 else { return nil }
            let (bytes, overflow) = number.multipliedReportingOverflow(by: unit.1)
            guard !overflow else { return nil }
            kind = .bytes(bytes)
        }
    }

    /// The level in bytes; nil for a share when there is no maxmemory.
    package func bytes(maxMemory: Int) -> Int? {
        switch kind {
        case .bytes(let bytes): bytes
        case .percent(let percent): maxMemory > 0 ? Int(Double(maxMemory) * percent / 100) : nil
        }
    }
}
