import Testing

@testable import NovaServer

/// The annotated syntax lines of the command table, read into COMMAND DOCS arguments.
@Suite("Command syntax lines")
struct CommandSyntaxTests {
    private typealias Argument = CommandArgument

    @Test func everyCommandsSyntaxParses() {
        func check(_ spec: CommandSpec) {
            #expect(CommandArgument.parse(spec.syntax) != nil, "\(spec.fullName): \(spec.syntax)")
            spec.subcommands.forEach(check)
        }
        CommandRegistry.all.forEach(check)
    }

    @Test func valuesTakeTheirTypeFromTheirNameOrAnAnnotation() throws {
        let arguments = try #require(Argument.parse("key member count timeout:double ip:port pattern unix-time-seconds"))
        #expect(arguments.map(\.kind) == [.key, .string, .integer, .double, .string, .pattern, .unixTime])
        #expect(arguments[4].name == "ip:port")
        #expect(arguments[0].keySpecIndex == 0 && arguments[1].keySpecIndex == nil)
    }

    @Test func keysAreNumberedInOrderUnlessTold() throws {
        let arguments = try #require(Argument.parse("source destination [STORE other:key#4] key"))
        #expect(arguments.map(\.keySpecIndex) == [0, 1, 4, 5])
        #expect(arguments[2].token == "STORE" && arguments[2].optional)
    }

    @Test func groupsChoicesAndTokens() throws {
        let arguments = try #require(Argument.parse(
            "key condition=[NX | XX]@3.0.2 [change=CH] (score:double member) ... [offset_count=LIMIT (offset count)] [AGGREGATE (SUM | MIN | MAX)]"))
        #expect(arguments.count == 6)
        let condition = arguments[1]
        #expect(condition.kind == .oneOf && condition.name == "condition" && condition.optional && condition.since == "3.0.2")
        #expect(condition.arguments.map(\.token) == ["NX", "XX"] && condition.arguments.map(\.name) == ["nx", "xx"])
        #expect(arguments[2] == Argument(name: "change", kind: .pureToken, token: "CH", optional: true))
        let pair = arguments[3]
        #expect(pair.kind == .block && pair.name == "score_member" && pair.multiple && !pair.optional)
        #expect(pair.arguments.map(\.kind) == [.double, .string])
        let limit = arguments[4]
        #expect(limit.kind == .block && limit.name == "offset_count" && limit.token == "LIMIT")
        #expect(limit.arguments.map(\.name) == ["offset", "count"])
        let aggregate = arguments[5]
        #expect(aggregate.kind == .oneOf && aggregate.name == "aggregate" && aggregate.token == "AGGREGATE")
    }

    @Test func repetitionWithAndWithoutItsToken() throws {
        let arguments = try #require(Argument.parse("[WEIGHTS weight ...] [PREFIX prefix]... [key ...] (pattern) ..."))
        #expect(arguments[0].token == "WEIGHTS" && arguments[0].multiple && !arguments[0].multipleToken)
        #expect(arguments[1].token == "PREFIX" && arguments[1].multiple && arguments[1].multipleToken)
        #expect(arguments[2].optional && arguments[2].multiple && arguments[2].kind == .key)
        // A single item in parentheses without a name is the item itself.
        #expect(arguments[3].kind == .pattern && arguments[3].multiple)
        let named = try #require(Argument.parse("pattern=(pattern) ..."))
        #expect(named[0].kind == .block && named[0].arguments.count == 1)
    }

    @Test func versionsAndDeprecation() throws {
        let arguments = try #require(Argument.parse("filter=(ip:port~2.8.12 | new-format=([ID client-id]@2.8.12 | [SKIPME yes/no]) ...)"))
        let filter = arguments[0]
        #expect(filter.kind == .oneOf && filter.arguments.count == 2)
        #expect(filter.arguments[0].deprecatedSince == "2.8.12" && filter.arguments[0].name == "ip:port")
        #expect(filter.arguments[1].multiple && filter.arguments[1].arguments[0].since == "2.8.12")
    }

    @Test func quotedTokens() throws {
        let arguments = try #require(Argument.parse(
            "key trim=[strategy=(MAXLEN | MINID@6.2.0) operator=[equal='=' | approximately='~'] threshold [LIMIT count]@6.2.0] id_or_auto=(auto_id='*' | id)"))
        let trim = arguments[1]
        #expect(trim.kind == .block && trim.optional && trim.arguments.count == 4)
        #expect(trim.arguments[1].arguments.map(\.token) == ["=", "~"])
        #expect(trim.arguments[1].arguments.map(\.name) == ["equal", "approximately"])
        #expect(trim.arguments[0].arguments[1].since == "6.2.0")
        #expect(arguments[2].arguments[0] == Argument(name: "auto_id", kind: .pureToken, token: "*"))
    }

    @Test func malformedLinesAreRefused() {
        for line in ["[key", "key ]", "(a | b", "NAME=", "[a] |"] {
            #expect(Argument.parse(line) == nil, "\(line)")
        }
    }
}
