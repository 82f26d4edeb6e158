package import NIOCore

/// How a command uses one of its keys (Redis 7.0's key-spec flags): exactly one of RO, RW, OW, RM, and
/// what it does with the data — access, update, insert, delete.
package struct KeySpecFlags: OptionSet, Sendable, Hashable {
    package let rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Read-only.
    package static let ro = KeySpecFlags(rawValue: 1 << 0)
    /// Read and modified.
    package static let rw = KeySpecFlags(rawValue: 1 << 1)
    /// Overwritten: the old value is not read.
    package static let ow = KeySpecFlags(rawValue: 1 << 2)
    /// Removed.
    package static let rm = KeySpecFlags(rawValue: 1 << 3)
    /// The value's data is returned or used (copied, compared).
    package static let access = KeySpecFlags(rawValue: 1 << 4)
    /// The value is changed in place.
    package static let update = KeySpecFlags(rawValue: 1 << 5)
    /// Data is added to the value.
    package static let insert = KeySpecFlags(rawValue: 1 << 6)
    /// Data is removed from the value.
    package static let delete = KeySpecFlags(rawValue: 1 << 7)
    /// Not a key (a channel, say), listed for cluster routing only.
    package static let notKey = KeySpecFlags(rawValue: 1 << 8)
    /// The spec may not find every key.
    package static let incomplete = KeySpecFlags(rawValue: 1 << 9)
    /// The flags depend on the arguments (`CommandSpec.variableKeyFlags` says which).
    package static let variableFlags = KeySpecFlags(rawValue: 1 << 10)

    /// The names COMMAND INFO and GETKEYSANDFLAGS print, in Redis's order.
    package var names: [StaticString] {
        let all: [(KeySpecFlags, StaticString)] = [
            (.ro, "RO"), (.rw, "RW"), (.ow, "OW"), (.rm, "RM"), (.access, "access"), (.update, "update"),
            (.insert, "insert"), (.delete, "delete"), (.notKey, "not_key"), (.incomplete, "incomplete"),
            (.variableFlags, "variable_flags"),
        ]
        return all.filter { contains($0.0) }.map(\.1)
    }
}

/// Where a command finds some of its keys (Redis 7.0's key specifications): where the search begins,
/// and how the keys are found from there.
package struct KeySpec: Sendable, Equatable {
    /// Where the search begins.
    package enum BeginSearch: Sendable, Equatable {
        /// At a fixed argument.
        case index(Int)
        /// After the first argument equal to `keyword` (ignoring case), looking from `startFrom` (from the
        /// end when negative).
        case keyword(String, startFrom: Int)
        /// Only the command knows (reported, never searched).
        case unknown
    }

    /// How the keys are found from the beginning.
    package enum FindKeys: Sendable, Equatable {
        /// Keys up to `lastKey` (relative to the beginning; negative counts from the end), every `step`
        /// arguments; with a `limit`, a 1/limit share of the remaining arguments.
        case range(lastKey: Int, step: Int, limit: Int)
        /// The argument `countOffset` after the beginning says how many keys follow, starting
        /// `firstKey` after the beginning, every `step`.
        case keynum(countOffset: Int, firstKey: Int, step: Int)
        case unknown
    }

    package var beginSearch: BeginSearch
    package var findKeys: FindKeys
    package var flags: KeySpecFlags
    /// Redis's explanation, printed by COMMAND INFO.
    package var notes: String?

    package init(_ beginSearch: BeginSearch, _ findKeys: FindKeys, _ flags: KeySpecFlags, notes: String? = nil) {
        self.beginSearch = beginSearch
        self.findKeys = findKeys
        self.flags = flags
        self.notes = notes
    }

    /// One key at argument `index`.
    package static func key(_ index: Int, _ flags: KeySpecFlags, notes: String? = nil) -> KeySpec {
        KeySpec(.index(index), .range(lastKey: 0, step: 1, limit: 0), flags, notes: notes)
    }

    /// Keys from argument `index` to `last` (relative; -1 is the last argument), every `step`.
    package static func keys(
        _ index: Int, last: Int, step: Int = 1, limit: Int = 0, _ flags: KeySpecFlags, notes: String? = nil
    ) -> KeySpec {
        KeySpec(.index(index), .range(lastKey: last, step: step, limit: limit), flags, notes: notes)
    }

    /// `numkeys` at argument `index`, then that many keys.
    package static func counted(_ index: Int, _ flags: KeySpecFlags, notes: String? = nil) -> KeySpec {
        KeySpec(.index(index), .keynum(countOffset: 0, firstKey: 1, step: 1), flags, notes: notes)
    }

    /// The argument index where the search begins in `arguments`, or nil (keyword absent, unknown).
    package func begin(in arguments: [ByteBuffer]) -> Int? {
        switch beginSearch {
        case .index(let index):
            return index
        case .keyword(let keyword, let startFrom):
            // Redis's loop: forward to the second-to-last argument, or backward down to argument 2.
            let count = arguments.count
            let start = startFrom > 0 ? startFrom : count + startFrom
            let end = startFrom > 0 ? count - 1 : 1
            var index = start
            while index != end, index >= 1, index < count {
                if String(decoding: arguments[index].readableBytesView, as: UTF8.self).lowercased() == keyword.lowercased() {
                    return index + 1
                }
                index += start <= end ? 1 : -1
            }
            return nil
        case .unknown:
            return nil
        }
    }
}

/// A key found in a command's arguments, with how the command uses it.
package struct KeyReference: Sendable, Equatable {
    /// The argument index.
    package var index: Int
    package var flags: KeySpecFlags

    package init(index: Int, flags: KeySpecFlags) {
        self.index = index
        self.flags = flags
    }
}

/// Redis 7.0's key extraction and its legacy (first, last, step) summary.
package enum KeyExtraction {
    /// Redis's `getKeysUsingKeySpecs`: nil when a spec cannot be followed. With `includingNotKeys`, the
    /// arguments flagged `not_key` (SPUBLISH's channel) count too, as cluster routing needs them.
    package static func bySpecs(
        _ specs: [KeySpec], _ arguments: [ByteBuffer], includingNotKeys: Bool = false
    ) -> [KeyReference]? {
        var result: [KeyReference] = []
        for spec in specs where includingNotKeys || !spec.flags.contains(.notKey) {
            let first: Int
            switch spec.beginSearch {
            case .index(let index):
                first = index
            case .keyword:
                guard let found = spec.begin(in: arguments) else { continue }
                first = found
            case .unknown:
                return nil
            }
            guard let keys = follow(spec, from: first, arguments) else { return nil }
            result += keys
            // An incomplete spec makes Redis fall back to the command's own key finder.
            if spec.flags.contains(.incomplete) { return nil }
        }
        return result
    }

    /// The keys one spec finds from argument `first`; nil when it cannot be followed.
    private static func follow(_ spec: KeySpec, from start: Int, _ arguments: [ByteBuffer]) -> [KeyReference]? {
        let count = arguments.count
        var first = start
        let last: Int
        let step: Int
        switch spec.findKeys {
        case let .range(lastKey, keyStep, limit):
            step = keyStep
            if lastKey >= 0 {
                last = first + lastKey
            } else if limit == 0 {
                last = count + lastKey
            } else {
                last = first + ((count - first) / limit + lastKey)
            }
        case let .keynum(countOffset, firstKey, keyStep):
            step = keyStep
            guard countOffset < count - first,
                  let numkeys = arguments[first + countOffset].withUnsafeReadableBytes({ RedisInteger.parse($0) }),
                  numkeys >= 0, numkeys <= Int64(count) else { return nil }
            first += firstKey
            last = first + Int(numkeys) - 1
        case .unknown:
            return nil
        }
        guard last < count, last >= first, first < count else { return nil }
        return stride(from: first, through: last, by: max(1, step)).map { KeyReference(index: $0, flags: spec.flags) }
    }

    /// The getkeys callbacks of Redis 7.0's commands that count their keys (`genericGetKeys`):
    /// `numkeys` read with C's `atoi`, the counted keys, then a fixed key (a destination) after them.
    package static func byCallback(_ specs: [KeySpec], _ arguments: [ByteBuffer]) -> [KeyReference] {
        guard let countedSpec = specs.first(where: { if case .keynum = $0.findKeys { return true } else { return false } }),
              case .index(let countIndex) = countedSpec.beginSearch, countIndex < arguments.count else { return [] }
        let numkeys = Int(arguments[countIndex].withUnsafeReadableBytes { atoi($0) })
        guard numkeys > 0, numkeys < arguments.count - countIndex else { return [] }
        var result = (countIndex + 1...countIndex + numkeys).map { KeyReference(index: $0, flags: countedSpec.flags) }
        for spec in specs where spec != countedSpec && !spec.flags.contains(.notKey) {
            if case .index(let index) = spec.beginSearch, case .range(0, _, _) = spec.findKeys, index < arguments.count {
                result.append(KeyReference(index: index, flags: spec.flags))
            }
        }
        return result
    }

    /// C's `atoi`: leading white space, a sign, the digits up to the first other byte, saturated to 64
    /// bits by strtol and truncated to an int. So "2abc" counts 2 keys, and 4294967297 counts 1.
    package static func atoi(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        var index = 0
        while index < bytes.count, bytes[index] == 32 || (bytes[index] >= 9 && bytes[index] <= 13) { index += 1 }
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        var magnitude: UInt64 = 0
        var saturated = false
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
            let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[index] - 48))
            if o1 || o2 { saturated = true }
            magnitude = sum
            index += 1
        }
        let value: Int64
        if negative {
            value = saturated || magnitude > UInt64(Int64.max) ? Int64.min : -Int64(magnitude)
        } else {
            value = saturated || magnitude > UInt64(Int64.max) ? Int64.max : Int64(magnitude)
        }
        return Int32(truncatingIfNeeded: value)
    }

    /// COMMAND INFO's first key, last key and step, derived from the specs as Redis's
    /// `populateCommandLegacyRangeSpec` does, and whether the keys are "movable" (not all in that range).
    package static func legacyRange(_ specs: [KeySpec]) -> (first: Int, last: Int, step: Int, movable: Bool) {
        if specs.isEmpty { return (0, 0, 0, false) }
        if specs.count == 1, case .index(let index) = specs[0].beginSearch, case let .range(lastKey, step, _) = specs[0].findKeys {
            let last = lastKey < 0 ? lastKey : index + lastKey
            return (index, last, step, specs[0].flags.contains(.incomplete))
        }
        var movable = false
        var first = Int.max
        var last: UInt = 0
        var previousLast: UInt = 0
        for spec in specs {
            guard case .index(let index) = spec.beginSearch, case let .range(lastKey, step, _) = spec.findKeys else {
                movable = true
                continue
            }
            if step != 1 || (previousLast != 0 && previousLast != UInt(bitPattern: index - 1)) {
                movable = true
                continue
            }
            if spec.flags.contains(.incomplete) { movable = true }
            first = min(first, index)
            let absolute = lastKey >= 0 ? lastKey + index : lastKey
            // Unsigned, as Redis compares: a negative last key ("to the end") wins.
            last = max(last, UInt(bitPattern: absolute))
            previousLast = last
        }
        if first == Int.max { return (0, 0, 0, movable) }
        let signedLast = Int(bitPattern: last)
        return (first, signedLast, 1, movable)
    }
}
