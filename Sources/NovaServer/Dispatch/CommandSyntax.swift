/// A command's documented arguments (COMMAND DOCS `arguments`), read from the annotated syntax line each
/// command declares in the command table. The line reads like Redis's own syntax, with a few marks where
/// the documentation needs more than the syntax shows:
///
/// - `word` is a value (`key`, `member`); its type comes from its name (`key`, `destination` → key,
///   `count`, `db` → integer …, anything else string) unless written `word:double` (any of string,
///   integer, double, key, pattern, unix-time). Keys number their key specification in order; `key#2`
///   names another; `pattern#1` gives a value that is not a key a key specification (SORT's BY).
/// - `TOKEN` (upper case, or any text in single quotes: `'~'`) alone is a pure token, `TOKEN value` a
///   value given after its token, and `TOKEN (…)` a block or a choice that follows its token
///   (`[AGGREGATE (SUM | MIN | MAX)]`).
/// - `[…]` is optional, `(…)` required; inside, `a | b` is a choice (oneof), several items a block.
/// - `name=` before an item names it (`condition=[NX | XX]`, `change=CH`); groups are otherwise named
///   after their token, or their items' names joined by `_`.
/// - `…` after an item repeats it (`key ...`); after a bracketed token value the token repeats too
///   (`[PREFIX prefix]...`, Redis's `multiple_token`).
/// - `@7.0.0` after an item: the version that added it; `~6.2.0`: the version that deprecated it.
struct CommandArgument: Equatable, Sendable {
    enum Kind: String, Sendable {
        case string, integer, double, key, pattern
        case unixTime = "unix-time"
        case pureToken = "pure-token"
        case oneOf = "oneof"
        case block
    }

    var name: String
    var kind: Kind
    var token: String?
    /// For keys: the key specification the key belongs to.
    var keySpecIndex: Int?
    var since: String?
    var deprecatedSince: String?
    var optional = false
    var multiple = false
    /// The token is repeated with each value (`PREFIX a PREFIX b`).
    var multipleToken = false
    /// The items of a block or the choices of a oneof.
    var arguments: [CommandArgument] = []

    /// Parses an annotated syntax line (see the type's documentation); nil when it does not follow the
    /// grammar (a mistake in the command table, which the unit tests catch for every command).
    static func parse(_ syntax: String) -> [CommandArgument]? {
        var parser = Parser(tokens: tokenize(syntax))
        let arguments = parser.sequence()
        return parser.atEnd && !parser.failed ? arguments : nil
    }

    private static let structural: Set<Character> = ["[", "]", "(", ")", "|"]

    private static func tokenize(_ syntax: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        func flush() {
            if !current.isEmpty { tokens.append(current) }
            current = ""
        }
        var quoted = false
        for character in syntax {
            if character == "'" {
                quoted.toggle()
                current.append(character)
            } else if quoted {
                current.append(character)
            } else if structural.contains(character) {
                flush()
                tokens.append(String(character))
            } else if character == " " {
                flush()
            } else if (character == "@" || character == "~") && !current.hasPrefix("@") && !current.hasPrefix("~") {
                flush()
                current.append(character)
            } else if character == "." && current.isEmpty == false && !current.hasPrefix(".")
                        && !current.hasPrefix("@") && !current.hasPrefix("~") && current.last != "." {
                // `item...` without a space before the ellipsis is never a name (names have no dots).
                flush()
                current.append(character)
            } else {
                current.append(character)
            }
        }
        flush()
        return tokens
    }

    private struct Parser {
        let tokens: [String]
        var position = 0
        var keyIndex = 0
        var failed = false

        var atEnd: Bool { position == tokens.count }
        var next: String? { position < tokens.count ? tokens[position] : nil }

        mutating func take() -> String {
            guard position < tokens.count else {
                failed = true
                return ""
            }
            defer { position += 1 }
            return tokens[position]
        }

        static func isToken(_ word: String) -> Bool {
            if word.count >= 2 && word.first == "'" && word.last == "'" { return true }
            guard let first = word.first, first.isUppercase else { return false }
            return word == word.uppercased()
        }

        /// A token's text: quotes removed from a quoted one (`'~'`).
        static func tokenText(_ word: String) -> String {
            word.first == "'" ? String(word.dropFirst().dropLast()) : word
        }

        static func isValueWord(_ word: String?) -> Bool {
            guard let word, let first = word.first else { return false }
            return !structural.contains(first) && first != "@" && first != "~" && !word.hasPrefix("...")
                && !isToken(word) && !word.hasSuffix("=")
        }

        /// Items up to a `]`, `)` or `|` (not consumed).
        mutating func sequence() -> [CommandArgument] {
            var items: [CommandArgument] = []
            while !failed, let word = next, word != "]", word != ")", word != "|" {
                items.append(item())
            }
            return items
        }

        /// `a | b | …` up to the closing bracket, which is consumed.
        mutating func alternatives(closing: String) -> [[CommandArgument]] {
            var result = [sequence()]
            while next == "|" {
                position += 1
                result.append(sequence())
            }
            if next == closing { position += 1 } else { failed = true }
            return result
        }

        static func group(_ alternatives: [[CommandArgument]], name: String?, token: String?) -> CommandArgument {
            let items = alternatives.count > 1
                ? alternatives.map { $0.count == 1 ? $0[0] : block($0, name: nil, token: nil) }
                : alternatives[0]
            if alternatives.count > 1 {
                let fallback = token?.lowercased() ?? items.map(\.name).joined(separator: "_")
                return CommandArgument(name: name ?? fallback, kind: .oneOf, token: token, arguments: items)
            }
            return block(items, name: name, token: token)
        }

        static func block(_ items: [CommandArgument], name: String?, token: String?) -> CommandArgument {
            let fallback = token?.lowercased() ?? items.map(\.name).joined(separator: "_")
            return CommandArgument(name: name ?? fallback, kind: .block, token: token, arguments: items)
        }

        mutating func item() -> CommandArgument {
            var word = take()
            var name: String? = nil
            if word.hasSuffix("=") {
                name = String(word.dropLast())
                word = take()
            } else if let equals = word.firstIndex(of: "="), Self.isToken(String(word[word.index(after: equals)...])) {
                name = String(word[..<equals])
                word = String(word[word.index(after: equals)...])
            }
            var argument: CommandArgument
            var repeatsToken = false
            if word == "[" || word == "(" {
                let alternatives = alternatives(closing: word == "[" ? "]" : ")")
                if alternatives.count == 1 && alternatives[0].count == 1 && name == nil {
                    argument = alternatives[0][0]
                    repeatsToken = argument.token != nil && argument.kind != .pureToken
                } else {
                    argument = Self.group(alternatives, name: name, token: nil)
                }
                argument.optional = argument.optional || word == "["
            } else if Self.isToken(word) {
                let token = Self.tokenText(word)
                if next == "(" {
                    position += 1
                    argument = Self.group(alternatives(closing: ")"), name: name, token: token)
                } else if Self.isValueWord(next) {
                    argument = value(take(), name: name)
                    argument.token = token
                } else {
                    argument = CommandArgument(name: name ?? token.lowercased(), kind: .pureToken, token: token)
                }
            } else {
                argument = value(word, name: name)
            }
            if let word = next, word.hasPrefix("...") {
                position += 1
                argument.multiple = true
                if repeatsToken { argument.multipleToken = true }
            }
            while let word = next, word.hasPrefix("@") || word.hasPrefix("~") {
                position += 1
                let version = String(word.dropFirst())
                if word.hasPrefix("@") { argument.since = version } else { argument.deprecatedSince = version }
            }
            return argument
        }

        /// `name`, `name:type`, `name#index` or `name:type#index`.
        mutating func value(_ word: String, name: String?) -> CommandArgument {
            var text = Substring(word)
            var explicitIndex: Int? = nil
            if let hash = text.lastIndex(of: "#"), let index = Int(text[text.index(after: hash)...]) {
                explicitIndex = index
                text = text[..<hash]
            }
            var kind: Kind? = nil
            if let colon = text.lastIndex(of: ":"), let declared = Kind(rawValue: String(text[text.index(after: colon)...])) {
                kind = declared
                text = text[..<colon]
            }
            let valueName = name ?? String(text)
            var argument = CommandArgument(name: valueName, kind: kind ?? Self.inferredKind(valueName))
            if argument.kind == .key {
                let index = explicitIndex ?? keyIndex
                argument.keySpecIndex = index
                keyIndex = index + 1
            } else if let explicitIndex {
                argument.keySpecIndex = explicitIndex  // a pattern that names keys (SORT … BY, GET)
            }
            return argument
        }

        static let keyNames: Set<String> = ["key", "newkey", "source", "destination"]
        static let integerNames: Set<String> = [
            "seconds", "milliseconds", "count", "offset", "start", "end", "increment", "decrement", "db", "index",
            "index1", "index2", "numkeys", "timeout", "cursor", "destination-db", "client-id", "port",
        ]

        static func inferredKind(_ name: String) -> Kind {
            if keyNames.contains(name) { return .key }
            if integerNames.contains(name) { return .integer }
            if name.hasPrefix("unix-time") { return .unixTime }
            if name == "pattern" { return .pattern }
            return .string
        }
    }
}
