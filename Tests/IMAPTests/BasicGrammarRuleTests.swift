import Testing
@testable import IMAP

/// Runs one grammar rule over the whole input; trailing bytes count as failure.
func rule<T>(
    _ input: [UInt8], utf8Accept: Bool = false, limits: IMAPLimits = IMAPLimits(),
    _ parse: (inout ParserCursor) throws(IMAPParseError) -> T
) -> T? {
    var cursor = ParserCursor(input, limits: limits, utf8Accept: utf8Accept)
    do throws(IMAPParseError) {
        let value = try parse(&cursor)
        return cursor.isAtEnd ? value : nil
    } catch {
        return nil
    }
}

func rule<T>(_ input: String, utf8Accept: Bool = false, _ parse: (inout ParserCursor) throws(IMAPParseError) -> T) -> T? {
    rule(bytes(input), utf8Accept: utf8Accept, parse)
}

@Suite struct BasicGrammarRuleTests {
    @Test(arguments: [("1", UInt32(1)), ("0", 0), ("4294967295", 4_294_967_295), ("007", 7)])
    func number(input: String, expected: UInt32) {
        #expect(rule(input, GrammarParser.number) == expected)
    }

    @Test(arguments: ["", "-1", "4294967296", "99999999999999999999999999", "a", " 1", "1.5"])
    func numberRejects(input: String) {
        #expect(rule(input, GrammarParser.number) == nil)
    }

    @Test(arguments: ["0", "00", "4294967296"])
    func nzNumberRejects(input: String) {
        #expect(rule(input, GrammarParser.nzNumber) == nil)
    }

    @Test func number64Bounds() {
        #expect(rule("9223372036854775807", GrammarParser.number64) == 9_223_372_036_854_775_807)
        #expect(rule("9223372036854775808", GrammarParser.number64) == nil)
        #expect(rule("18446744073709551616", GrammarParser.number64) == nil)
        #expect(rule("0", GrammarParser.nzNumber64) == nil)
    }

    @Test(arguments: [
        ("\"\"", ""), ("\"abc\"", "abc"), ("\"a b\"", "a b"), ("\"a\\\"b\"", "a\"b"), ("\"a\\\\b\"", "a\\b"),
        ("\"(){}%*]\"", "(){}%*]"), ("\"\t\"", "\t"),
    ])
    func quoted(input: String, expected: String) {
        #expect(rule(input, GrammarParser.quoted) == bytes(expected))
    }

    @Test(arguments: ["\"", "\"abc", "abc\"", "\"a\\b\"", "\"a\\\"", "\"a\rb\"", "\"a\nb\"", "\"a\u{0}b\"", "\"\u{e9}\""])
    func quotedRejects(input: String) {
        #expect(rule(input, GrammarParser.quoted) == nil)
    }

    @Test func quotedUTF8NeedsUTF8AcceptAndMustBeWellFormed() {
        #expect(rule("\"caf\u{e9} \u{1F600}\"", utf8Accept: true, GrammarParser.quoted) == bytes("café 😀"))
        for invalid: [UInt8] in [[0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3], [0xff], [0x80]] {
            #expect(rule([0x22] + invalid + [0x22], utf8Accept: true, GrammarParser.quoted) == nil, "\(invalid)")
        }
    }

    @Test(arguments: [
        ("{0}\r\n", ""), ("{3}\r\nabc", "abc"), ("{3+}\r\nabc", "abc"), ("{3}\na\r\n", "a\r\n"), ("{00003}\r\n{1}", "{1}"),
    ])
    func literal(input: String, expected: String) {
        #expect(rule(input, GrammarParser.literal) == bytes(expected))
    }

    @Test(arguments: ["{3}\r\nab", "{3}abc", "{3}\rabc", "{}\r\n", "{-1}\r\n", "{3 }\r\nabc", "{1}\r\n\u{0}", "~{1}\r\na", "{99999999999999999999}\r\n"])
    func literalRejects(input: String) {
        #expect(rule(input, GrammarParser.literal) == nil)
    }

    @Test func literal8AllowsNUL() {
        #expect(rule([0x7e, 0x7b, 0x32, 0x7d, 0x0d, 0x0a, 0, 0xff], GrammarParser.literal8) == [0, 0xff])
    }

    @Test(arguments: [("abc", "abc"), ("a]b", "a]b"), ("\"a b\"", "a b"), ("{1}\r\n)", ")"), ("NIL", "NIL"), ("~x", "~x")])
    func astring(input: String, expected: String) {
        #expect(rule(input, GrammarParser.astring) == bytes(expected))
    }

    @Test(arguments: ["", "a b", "a(b", "a{b", "a%", "a*", "a\"", "a\\", "\u{e9}", "a\u{1}"])
    func astringRejects(input: String) {
        #expect(rule(input, GrammarParser.astring) == nil)
    }

    @Test func nstring() {
        #expect(rule("NIL", GrammarParser.nstring) == .some(nil))
        #expect(rule("nil", GrammarParser.nstring) == .some(nil))
        #expect(rule("\"NIL\"", GrammarParser.nstring) == .some(bytes("NIL")))
        #expect(rule("NILS", GrammarParser.nstring) == nil)
    }

    @Test(arguments: [("*", "*"), ("%", "%"), ("a/%/b*", "a/%/b*"), ("\"a b*\"", "a b*"), ("x]", "x]")])
    func listMailbox(input: String, expected: String) {
        #expect(rule(input, GrammarParser.listMailbox) == bytes(expected))
    }

    @Test(arguments: [("\\Seen", IMAPFlag.seen), ("\\seen", .seen), ("$MDNSent", IMAPFlag("$MDNSent")), ("\\Custom", IMAPFlag("\\Custom"))])
    func flag(input: String, expected: IMAPFlag) {
        #expect(rule(input, GrammarParser.flag) == expected)
    }

    @Test(arguments: ["\\", "\\*", "*", "(", "a b", "\\\\x", "\"x\""])
    func flagRejects(input: String) {
        #expect(rule(input, GrammarParser.flag) == nil)
    }

    @Test(arguments: [
        ("1", [range(1, 1)]), ("1:3,5", [range(1, 3), range(5, 5)]), ("3:1", [range(3, 1)]),
        ("*", [IMAPSequenceRange(.last, .last)]), ("1:*", [IMAPSequenceRange(.number(1), .last)]), ("*:4", [IMAPSequenceRange(.last, .number(4))]),
        ("4294967295", [range(4_294_967_295, 4_294_967_295)]),
    ])
    func sequenceSet(input: String, expected: [IMAPSequenceRange]) {
        #expect(rule(input, GrammarParser.sequenceSet) == IMAPSequenceSet(expected))
    }

    @Test(arguments: ["", "0", "1:0", "0:5", "1,", ",1", "1,,2", "1:", ":1", "1:2:3", "4294967296", "$,1", "1,$", "$:1", "**", "1:*:2", "-1", "1 2"])
    func sequenceSetRejects(input: String) {
        #expect(rule(input, GrammarParser.sequenceSet) == nil)
    }

    @Test func sequenceSetRangeLimit() {
        let limits = IMAPLimits(maxSequenceSetRanges: 3)
        #expect(rule(bytes("1,2,3"), limits: limits, GrammarParser.sequenceSet) != nil)
        #expect(rule(bytes("1,2,3,4"), limits: limits, GrammarParser.sequenceSet) == nil)
        let big = (1...10_001).map { String($0 * 2) }.joined(separator: ",")
        #expect(rule(big, GrammarParser.sequenceSet) == nil)
    }

    @Test(arguments: [
        ("1-Feb-1994", date(1994, 2, 1)), ("01-FEB-1994", date(1994, 2, 1)), ("\"29-feb-2000\"", date(2000, 2, 29)),
        ("31-Dec-9999", date(9999, 12, 31)),
    ])
    func searchDate(input: String, expected: IMAPDate) {
        #expect(rule(input, GrammarParser.date) == expected)
    }

    @Test(arguments: ["29-Feb-1900", "31-Apr-2024", "0-Jan-2024", "1-Jan-0000", "1-January-2024", "1-Jan-24", "1 Jan 2024", "\"1-Jan-2024", "1-Jan-2024\""])
    func searchDateRejects(input: String) {
        #expect(rule(input, GrammarParser.date) == nil)
    }

    @Test func dateTime() {
        let value = rule("\"17-Jul-1996 02:44:25 -0700\"", GrammarParser.dateTime)
        #expect(value?.secondsSince1970 == 837_596_665)
        #expect(value?.description == "17-Jul-1996 02:44:25 -0700")
        #expect(rule("\" 1-Jan-2000 00:00:60 +1400\"", GrammarParser.dateTime)?.second == 60)
        for invalid in ["17-Jul-1996 02:44:25 -0700", "\"17-Jul-1996 02:44 -0700\"", "\"17-Jul-1996 02:44:25\"", "\"17-Jul-1996 02:61:25 +0000\"",
                        "\"17-Jul-1996  02:44:25 +0000\"", "\"17-Jul-1996 02:44:25 +00000\""] {
            #expect(rule(invalid, GrammarParser.dateTime) == nil, "\(invalid)")
        }
    }
}
