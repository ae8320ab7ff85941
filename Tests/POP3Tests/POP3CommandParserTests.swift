import Testing
@testable import POP3

@Suite struct POP3CommandParserTests {
    let parser = POP3CommandParser()

    func parse(_ line: String) -> Result<POP3Command, POP3SyntaxError> { parser.parse(Array(line.utf8)) }

    @Test(arguments: [
        ("USER alice@example.test", POP3Command.user("alice@example.test")),
        ("user bob", .user("bob")),
        ("PASS secret", .pass("secret")),
        ("PASS with spaces  inside ", .pass("with spaces  inside ")),
        ("pass \tp\u{e4}ss", .pass("\tp\u{e4}ss")),
        ("AUTH", .auth(mechanism: nil, initialResponse: nil)),
        ("AUTH plain", .auth(mechanism: "PLAIN", initialResponse: nil)),
        ("AUTH PLAIN AGFsaWNlAHNlY3JldA==", .auth(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHNlY3JldA==")),
        ("AUTH PLAIN =", .auth(mechanism: "PLAIN", initialResponse: "=")),
        ("AUTH X-OTHER_1", .auth(mechanism: "X-OTHER_1", initialResponse: nil)),
        ("STLS", .stls), ("capa", .capa), ("STAT", .stat), ("NOOP", .noop), ("RSET", .rset), ("QUIT", .quit),
        ("QUIT ", .quit),
        ("LIST", .list(nil)), ("LIST 1", .list(1)), ("list 0", .list(0)), ("LIST 007", .list(7)),
        ("UIDL", .uidl(nil)), ("UIDL 12", .uidl(12)),
        ("RETR 3", .retr(3)), ("DELE 1", .dele(1)), ("TOP 2 0", .top(2, lines: 0)), ("top 2 10", .top(2, lines: 10)),
        ("RETR 99999999999999999999999", .retr(Int.max)),
    ])
    func parsesValidCommands(line: String, expected: POP3Command) {
        #expect(parse(line) == .success(expected))
    }

    @Test(arguments: [
        ("FOO", POP3SyntaxError.unknownCommand), ("APOP mrose c4c9334bac560ecc979e58001b3e22fb", .unknownCommand),
        ("LAST", .unknownCommand), ("", .unknownCommand), (" STAT", .unknownCommand), ("ST", .unknownCommand),
        ("STATS", .unknownCommand), ("STA1", .unknownCommand), ("USER\talice", .unknownCommand),
        ("USER", .syntax("USER name")), ("USER a b", .syntax("USER name")), ("PASS", .syntax("PASS password")),
        ("PASS ", .syntax("PASS password")),
        ("STAT 1", .syntax("no argument allowed")), ("QUIT now", .syntax("no argument allowed")),
        ("STLS x", .syntax("no argument allowed")), ("NOOP x", .syntax("no argument allowed")),
        ("LIST 1 2", .syntax("at most one message number")), ("LIST x", .syntax("expected a number, got \"x\"")),
        ("LIST -1", .syntax("expected a number, got \"-1\"")), ("RETR", .syntax("RETR msg")),
        ("RETR 1 2", .syntax("RETR msg")), ("RETR +1", .syntax("expected a number, got \"+1\"")),
        ("DELE", .syntax("DELE msg")), ("TOP 1", .syntax("TOP msg n")), ("TOP 1 x", .syntax("expected a number, got \"x\"")),
        ("TOP 1 -5", .syntax("expected a number, got \"-5\"")), ("AUTH PLAIN a b", .syntax("AUTH mechanism [initial-response]")),
        ("AUTH PL(AIN", .syntax("invalid SASL mechanism name")),
        ("AUTH ABCDEFGHIJKLMNOPQRSTU", .syntax("invalid SASL mechanism name")),
        ("USER " + String(repeating: "a", count: 257), .syntax("user name too long")),
    ])
    func refusesMalformedCommands(line: String, error: POP3SyntaxError) {
        #expect(parse(line) == .failure(error))
    }

    @Test func refusesControlCharactersAndHugeLines() {
        #expect(parser.parse(Array("USER a\0b".utf8)) == .failure(.invalidCharacters))
        #expect(parser.parse(Array("PASS se\0cret".utf8)) == .failure(.invalidCharacters))
        #expect(parser.parse(Array("STAT\rRETR 1".utf8)) == .failure(.invalidCharacters))
        #expect(parser.parse(Array("NOOP\u{7f}".utf8)) == .failure(.invalidCharacters))
        #expect(parser.parse([0x55, 0x53, 0x45, 0x52, 0x20, 0xff]) == .failure(.invalidCharacters))
        #expect(parser.parse(Array(repeating: 0x41, count: 1025)) == .failure(.lineTooLong))
        #expect(POP3CommandParser(maxLineLength: 10).parse(Array("PASS 123456".utf8)) == .failure(.lineTooLong))
    }

    @Test func responseWireFormat() {
        #expect(POP3Response.ok("2 320").encoded() == "+OK 2 320\r\n")
        #expect(POP3Response.ok("").encoded() == "+OK\r\n")
        #expect(POP3Response.error(.inUse, "locked").encoded() == "-ERR [IN-USE] locked\r\n")
        #expect(POP3Response.error("no").encoded() == "-ERR no\r\n")
        #expect(POP3Response.continuation().encoded() == "+ \r\n")
        #expect(POP3Response.ok("list", lines: ["1 10", ".hidden", ""]).encoded() == "+OK list\r\n1 10\r\n..hidden\r\n\r\n.\r\n")
        #expect(POP3Response.ok("none", lines: []).encoded() == "+OK none\r\n.\r\n")
        // Text echoed from input can never break a line.
        #expect(POP3Response.error("a\r\n+OK b\nc\rd").encoded() == "-ERR a +OK b c d\r\n")
    }

    @Test(arguments: [
        ("", [UInt8]()), ("YQ==", [0x61]), ("YWI=", [0x61, 0x62]), ("YWJj", [0x61, 0x62, 0x63]),
        ("AGFsaWNlAHNlY3JldA==", Array("\0alice\0secret".utf8)),
    ])
    func decodesBase64(text: String, expected: [UInt8]) {
        #expect(POP3Base64.decode(Array(text.utf8)) == expected)
    }

    @Test(arguments: ["YQ", "Y===", "YQ=a", "=YWJ", "YW J", "YWJj\r", "YW-j", "YQ==YQ=="])
    func refusesBadBase64(text: String) {
        #expect(POP3Base64.decode(Array(text.utf8)) == nil)
    }
}
