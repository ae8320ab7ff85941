import Testing
@testable import IMAP

@Suite struct HostileInputTests {
    func error(_ command: String, limits: IMAPLimits = IMAPLimits()) -> IMAPParseError? {
        guard case .failure(let failure) = parseCommand(command, limits: limits) else { return nil }
        return failure.error
    }

    @Test func deepNestingIsALimitNotAStackOverflow() {
        let parens = String(repeating: "(", count: 10_000) + "ALL" + String(repeating: ")", count: 10_000)
        #expect(error("SEARCH " + parens)?.kind == .limitExceeded)
        #expect(error("SEARCH " + String(repeating: "NOT ", count: 10_000) + "ALL")?.kind == .limitExceeded)
        #expect(error("SEARCH " + String(repeating: "OR ALL ", count: 10_000) + "ALL")?.kind == .limitExceeded)
        // Right at the limit is fine.
        let limits = IMAPLimits(maxNestingDepth: 32)
        #expect(error("SEARCH " + String(repeating: "NOT ", count: 32) + "ALL", limits: limits) == nil)
        #expect(error("SEARCH " + String(repeating: "NOT ", count: 33) + "ALL", limits: limits)?.kind == .limitExceeded)
    }

    @Test func searchKeyCountIsBounded() {
        #expect(error("SEARCH " + Array(repeating: "SEEN", count: 1000).joined(separator: " ")) == nil)
        #expect(error("SEARCH " + Array(repeating: "SEEN", count: 1001).joined(separator: " "))?.kind == .limitExceeded)
    }

    @Test func listSizesAreBounded() {
        let attributes = "(" + Array(repeating: "UID", count: 129).joined(separator: " ") + ")"
        #expect(error("FETCH 1 " + attributes)?.kind == .limitExceeded)
        let flags = "(" + (0...1000).map { "k\($0)" }.joined(separator: " ") + ")"
        #expect(error("STORE 1 FLAGS " + flags)?.kind == .limitExceeded)
        let bareFlags = (0...1000).map { "k\($0)" }.joined(separator: " ")
        #expect(error("STORE 1 FLAGS " + bareFlags)?.kind == .limitExceeded)
        let pairs = (0...30).map { "\"k\($0)\" NIL" }.joined(separator: " ")
        #expect(error("ID (" + pairs + ")")?.kind == .limitExceeded)
        #expect(error("ID (\"" + String(repeating: "k", count: 31) + "\" NIL)")?.kind == .limitExceeded)
        let parts = (1...40).map(String.init).joined(separator: ".")
        #expect(error("FETCH 1 BODY[" + parts + "]")?.kind == .limitExceeded)
        let messages = String(repeating: " {1}\r\nx", count: 5)
        #expect(error("APPEND INBOX" + messages, limits: IMAPLimits(maxAppendMessages: 4))?.kind == .limitExceeded)
    }

    @Test func numbersThatOverflowAreSyntaxErrors() {
        for command in ["FETCH 4294967296 UID", "FETCH 1:18446744073709551616 UID", "SEARCH LARGER 99999999999999999999",
                        "FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)", "SELECT INBOX (QRESYNC (4294967296 1))",
                        "FETCH 1 BODY[]<0.18446744073709551615>", "LOGIN {18446744073709551616}\r\nx"] {
            #expect(error(command)?.kind == .syntax, "\(command)")
        }
    }

    @Test func literalThatClaimsMoreThanTheFrameHolds() {
        #expect(error("LOGIN {100}\r\nabc def")?.kind == .syntax)
        #expect(error("APPEND INBOX {100000000}\r\nabc")?.kind == .syntax)
        #expect(error("APPEND INBOX ~{5}\r\nabc")?.kind == .syntax)
    }

    @Test func nulAndEightBitBytes() {
        let parser = IMAPCommandParser()
        let cases: [[UInt8]] = [
            bytes("A1 LOGIN al") + [0] + bytes("ice x\r\n"),
            bytes("A1 LOGIN al") + [0xc3, 0xa9] + bytes(" x\r\n"),
            bytes("A1 LOGIN \"al") + [0xc3, 0xa9] + bytes("\" x\r\n"),
            bytes("A1 NOOP") + [0] + bytes("\r\n"),
            bytes("A1 SEARCH SUBJECT {2}\r\n") + [0xff, 0xfe] + bytes("\r\n"),
            bytes("A1 SEARCH CHARSET UTF-8 TEXT {3}\r\n") + [0xe2, 0x82] + bytes("x\r\n"),
            bytes("A1 LOGIN {1}\r\n") + [0] + bytes(" x\r\n"),
            bytes("A1 SELECT INBOX\r\n\r\n"),
            bytes("A1 SELECT INBOX\rX\r\n"),
            bytes("A1 NOOP\r"),
            [0xff, 0xfe, 0x20, 0x4e, 0x4f, 0x4f, 0x50, 0x0d, 0x0a],
        ]
        for input in cases {
            guard case .failure = parser.parse(input) else {
                Issue.record("accepted \(input)")
                continue
            }
        }
    }

    @Test func unbalancedParentheses() {
        for command in ["LIST (SUBSCRIBED \"\" *", "LIST SUBSCRIBED) \"\" *", "STATUS INBOX (MESSAGES))", "FETCH 1 ((FLAGS))",
                        "APPEND INBOX ((\\Seen)) {1}\r\nx", "SEARCH ((SEEN)", "SEARCH (SEEN))", "SELECT INBOX (QRESYNC (1 2)",
                        "ID ((\"a\" \"b\"))", "SORT ((DATE)) UTF-8 ALL", "CREATE x (USE (\\Drafts)", "SETQUOTA x (STORAGE 1))"] {
            #expect(error(command) != nil, "\(command)")
        }
    }

    @Test func framerAndParserTogetherNeverBufferAnAnnouncedHugeLiteral() {
        var framer = IMAPCommandFramer()
        let events = framer.feed("A1 LOGIN {100000000}\r\n")
        guard case .error(let failure) = events.first else {
            Issue.record("expected an error, got \(events)")
            return
        }
        #expect(failure.disposition == .commandDiscarded)
        #expect(failure.tag == "A1")
        #expect(framer.bufferedByteCount == 0)
    }
}
