import Testing
@testable import IMAP

/// `A1 <command>\r\n` through the parser.
func parseCommand(_ command: String, utf8Accept: Bool = false, limits: IMAPLimits = IMAPLimits()) -> Result<IMAPCommand, IMAPCommandParseError> {
    IMAPCommandParser(limits: limits, utf8Accept: utf8Accept).parse(bytes("A1 " + command + "\r\n"))
}

func kind(_ command: String, utf8Accept: Bool = false) -> IMAPCommand.Kind? {
    guard case .success(let parsed) = parseCommand(command, utf8Accept: utf8Accept) else { return nil }
    return parsed.tag == "A1" ? parsed.kind : nil
}

func mailbox(_ name: String) -> IMAPMailboxName { IMAPMailboxName(bytes(name)) }

func range(_ first: UInt32, _ last: UInt32) -> IMAPSequenceRange { IMAPSequenceRange(.number(first), .number(last)) }

@Suite struct IMAPCommandParserTests {
    @Test(arguments: [
        ("CAPABILITY", IMAPCommand.Kind.capability),
        ("noop", .noop),
        ("Logout", .logout),
        ("STARTTLS", .startTLS),
        ("NAMESPACE", .namespace),
        ("IDLE", .idle),
        ("CHECK", .check),
        ("CLOSE", .close),
        ("UNSELECT", .unselect),
        ("EXPUNGE", .expunge),
        ("ID NIL", .id(nil)),
        ("ID ()", .id([])),
        ("ID (\"name\" \"Thunderbird\" \"version\" \"115.3.1\" \"os\" NIL)",
         .id([IMAPIDField("name", "Thunderbird"), IMAPIDField("version", "115.3.1"), IMAPIDField("os", nil)])),
        ("ENABLE CONDSTORE qresync", .enable(["CONDSTORE", "QRESYNC"])),
        ("ENABLE UTF8=ACCEPT", .enable(["UTF8=ACCEPT"])),
        ("COMPRESS deflate", .compress("DEFLATE")),
        ("AUTHENTICATE plain", .authenticate(mechanism: "PLAIN", initialResponse: nil)),
        ("AUTHENTICATE PLAIN =", .authenticate(mechanism: "PLAIN", initialResponse: .empty)),
        ("AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==", .authenticate(mechanism: "PLAIN", initialResponse: .base64("AGFsaWNlAHNlY3JldA=="))),
        ("LOGIN alice secret", .login(username: "alice", password: "secret")),
        ("LOGIN \"alice@example.test\" \"p\\\"w\\\\d x\"", .login(username: "alice@example.test", password: "p\"w\\d x")),
        ("LOGIN {5}\r\nalice {6+}\r\nsecret", .login(username: "alice", password: "secret")),
        ("LOGIN alice {4}\r\nj\u{f6}g", .login(username: "alice", password: "jög")),
        ("LOGIN a]b c", .login(username: "a]b", password: "c")),
        ("SELECT INBOX", .select(.inbox, IMAPSelectParameters())),
        ("select inbox", .select(.inbox, IMAPSelectParameters())),
        ("EXAMINE \"Sent Items\"", .examine(mailbox("Sent Items"), IMAPSelectParameters())),
        ("SELECT INBOX (CONDSTORE)", .select(.inbox, IMAPSelectParameters(condStore: true))),
        ("SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
         .select(.inbox, IMAPSelectParameters(qresync: IMAPQResyncParameters(
             uidValidity: 67_890_007, modSeq: 20_050_715_194_045_000,
             knownUIDs: IMAPSequenceSet([range(41, 41), range(43, 211), range(214, 541)]))))),
        ("SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:15,20 4,6:8,12)) CONDSTORE)",
         .select(.inbox, IMAPSelectParameters(condStore: true, qresync: IMAPQResyncParameters(
             uidValidity: 67_890_007, modSeq: 90_060_115_194_045_000,
             knownUIDs: IMAPSequenceSet([range(41, 211), range(214, 541)]),
             sequenceMatch: IMAPSequenceMatch(
                 sequenceNumbers: IMAPSequenceSet([range(1, 15), range(20, 20)]),
                 uids: IMAPSequenceSet([range(4, 4), range(6, 8), range(12, 12)])))))),
        ("SELECT INBOX (QRESYNC (1 2))", .select(.inbox, IMAPSelectParameters(qresync: IMAPQResyncParameters(uidValidity: 1, modSeq: 2)))),
        ("CREATE foo/bar", .create(mailbox("foo/bar"), specialUse: [])),
        ("CREATE Drafts (USE (\\Drafts))", .create(mailbox("Drafts"), specialUse: ["\\Drafts"])),
        ("DELETE foo", .delete(mailbox("foo"))),
        ("RENAME foo \"bar baz\"", .rename(from: mailbox("foo"), to: mailbox("bar baz"))),
        ("SUBSCRIBE &AOQ-", .subscribe(mailbox("&AOQ-"))),
        ("UNSUBSCRIBE {3}\r\nfoo", .unsubscribe(mailbox("foo"))),
        ("LIST \"\" *", .list(IMAPListCommand(reference: [], patterns: [bytes("*")]))),
        ("LIST \"~/Mail/\" %", .list(IMAPListCommand(reference: bytes("~/Mail/"), patterns: [bytes("%")]))),
        ("LIST \"\" INBOX/%/x]", .list(IMAPListCommand(reference: [], patterns: [bytes("INBOX/%/x]")]))),
        ("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"*\" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
         .list(IMAPListCommand(selectionOptions: [.subscribed, .recursiveMatch], reference: [], patterns: [bytes("*")],
                               returnOptions: [.children, .status([.messages, .unseen])], isExtended: true))),
        ("LIST \"\" (INBOX \"Drafts\" Sent/%)",
         .list(IMAPListCommand(reference: [], patterns: [bytes("INBOX"), bytes("Drafts"), bytes("Sent/%")], isExtended: true))),
        ("LIST () \"\" * RETURN (SPECIAL-USE SUBSCRIBED)",
         .list(IMAPListCommand(reference: [], patterns: [bytes("*")], returnOptions: [.specialUse, .subscribed], isExtended: true))),
        ("LIST \"\" * RETURN ()", .list(IMAPListCommand(reference: [], patterns: [bytes("*")], isExtended: true))),
        ("LIST (SPECIAL-USE REMOTE X-FOO) \"\" *",
         .list(IMAPListCommand(selectionOptions: [.specialUse, .remote, .other("X-FOO")], reference: [], patterns: [bytes("*")], isExtended: true))),
        ("LSUB \"\" *", .lsub(reference: [], pattern: bytes("*"))),
        ("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT)",
         .status(.inbox, [.messages, .uidNext, .uidValidity, .unseen, .deleted, .size, .recent, .highestModSeq, .appendLimit])),
        ("status \"a b\" (messages)", .status(mailbox("a b"), [.messages])),
        ("APPEND INBOX {5}\r\nhello", .append(.inbox, [IMAPAppendMessage(data: bytes("hello"))])),
        ("APPEND Drafts (\\Seen \\Draft) \" 7-Feb-2024 10:00:00 +0100\" {5+}\r\nhello",
         .append(mailbox("Drafts"), [IMAPAppendMessage(
             flags: [.seen, .draft],
             internalDate: IMAPDateTime(date: IMAPDate(year: 2024, month: 2, day: 7)!, hour: 10, minute: 0, second: 0, zoneMinutes: 60),
             data: bytes("hello"))])),
        ("APPEND INBOX () \"17-Jul-1996 02:44:25 -0700\" {1}\r\nx",
         .append(.inbox, [IMAPAppendMessage(
             internalDate: IMAPDateTime(date: IMAPDate(year: 1996, month: 7, day: 17)!, hour: 2, minute: 44, second: 25, zoneMinutes: -420),
             data: bytes("x"))])),
        ("APPEND INBOX ~{3}\r\na\u{0}b", .append(.inbox, [IMAPAppendMessage(data: [0x61, 0, 0x62], isBinary: true)])),
        ("APPEND INBOX (\\Seen) {1}\r\na ($Forwarded) {1+}\r\nb {1}\r\nc",
         .append(.inbox, [
             IMAPAppendMessage(flags: [.seen], data: bytes("a")),
             IMAPAppendMessage(flags: [IMAPFlag("$Forwarded")], data: bytes("b")),
             IMAPAppendMessage(data: bytes("c")),
         ])),
        ("APPEND INBOX UTF8 (~{2}\r\nhi)", .append(.inbox, [IMAPAppendMessage(data: bytes("hi"), isBinary: true, isUTF8: true)])),
        ("GETQUOTA \"\"", .getQuota(root: [])),
        ("GETQUOTAROOT INBOX", .getQuotaRoot(.inbox)),
        ("SETQUOTA \"\" (STORAGE 512 message 1000)", .setQuota(root: [], [IMAPQuotaLimit("STORAGE", 512), IMAPQuotaLimit("MESSAGE", 1000)])),
        ("SETQUOTA x ()", .setQuota(root: bytes("x"), [])),
        ("UID EXPUNGE 1:3,5", .uidExpunge(IMAPSequenceSet([range(1, 3), range(5, 5)]))),
        ("COPY 1:3 Trash", .copy(IMAPSequenceSet([range(1, 3)]), to: mailbox("Trash"), byUID: false)),
        ("UID COPY $ Archive", .copy(.lastSearchResult, to: mailbox("Archive"), byUID: true)),
        ("UID MOVE 4,7:* \"Deleted Items\"",
         .move(IMAPSequenceSet([range(4, 4), IMAPSequenceRange(.number(7), .last)]), to: mailbox("Deleted Items"), byUID: true)),
        ("MOVE * inbox", .move(IMAPSequenceSet([IMAPSequenceRange(.last, .last)]), to: .inbox, byUID: false)),
        ("SORT (REVERSE DATE SUBJECT) UTF-8 ALL",
         .sort(IMAPSortCommand(criteria: [IMAPSortCriterion(.date, reverse: true), IMAPSortCriterion(.subject)], charset: "UTF-8", key: .all))),
        ("UID SORT (ARRIVAL DISPLAYFROM) us-ascii UNSEEN SINCE 1-Feb-2024",
         .sort(IMAPSortCommand(byUID: true, criteria: [IMAPSortCriterion(.arrival), IMAPSortCriterion(.displayFrom)], charset: "US-ASCII",
                               key: .and([.unseen, .since(IMAPDate(year: 2024, month: 2, day: 1)!)])))),
        ("THREAD REFERENCES UTF-8 ALL", .thread(IMAPThreadCommand(algorithm: .references, charset: "UTF-8", key: .all))),
        ("UID THREAD orderedsubject \"UTF-8\" SUBJECT x", .thread(IMAPThreadCommand(byUID: true, algorithm: .orderedSubject, charset: "UTF-8", key: .subject("x")))),
        ("THREAD REFS UTF-8 ALL", .thread(IMAPThreadCommand(algorithm: .other("REFS"), charset: "UTF-8", key: .all))),
        ("XYZZY", .unknown("XYZZY")),
        ("X-FOO bar (baz", .unknown("X-FOO")),
        ("UID FROB 1", .unknown("UID FROB")),
    ])
    func parsesCommands(command: String, expected: IMAPCommand.Kind) {
        let result = parseCommand(command)
        guard case .success(let parsed) = result else {
            Issue.record("\(command): \(result)")
            return
        }
        #expect(parsed.tag == "A1")
        #expect(parsed.kind == expected)
    }

    @Test(arguments: [
        "SELECT", "SELECT  INBOX", "SELECT INBOX ", "NOOP extra", "CAPABILITY ()", "LOGIN alice", "LOGIN alice secret extra",
        "LOGIN (alice) x", "LOGIN \"alice x", "LOGIN {3}\r\nab", "LOGIN {2}\r\nab", "AUTHENTICATE", "AUTHENTICATE PLAIN !!!",
        "AUTHENTICATE PLAIN A===", "AUTHENTICATE PL(AIN", "ID", "ID (\"a\")", "ID (\"a\" \"b\"", "ID x",
        "ENABLE", "COMPRESS", "CREATE", "CREATE x (USE (Drafts))", "CREATE x (FOO)", "RENAME a", "DELETE \"a",
        "LIST", "LIST \"\"", "LIST \"\" (", "LIST \"\" ()", "LIST (RECURSIVEMATCH) \"\" *", "LIST (RECURSIVEMATCH REMOTE) \"\" *",
        "LIST \"\" * RETURN", "LIST \"\" * RETURN (STATUS ())", "LIST \"\" * EXTRA", "LIST ( \"\" *",
        "STATUS INBOX", "STATUS INBOX ()", "STATUS INBOX (FOO)", "STATUS INBOX (MESSAGES", "STATUS INBOX MESSAGES",
        "SELECT INBOX ()", "SELECT INBOX (FOO)", "SELECT INBOX (CONDSTORE CONDSTORE)", "SELECT INBOX (QRESYNC (0 1))",
        "SELECT INBOX (QRESYNC (1 0))", "SELECT INBOX (QRESYNC (1 1 1:*))", "SELECT INBOX (QRESYNC (1 1 $))",
        "SELECT INBOX (QRESYNC (1 1 1:5 (1:2)))", "SELECT INBOX (QRESYNC 1 1)",
        "APPEND INBOX", "APPEND INBOX (\\Seen)", "APPEND INBOX (\\Seen) x", "APPEND INBOX \"bad date\" {1}\r\na",
        "APPEND INBOX \"31-Feb-2024 10:00:00 +0000\" {1}\r\na", "APPEND INBOX \"1-Feb-2024 24:00:00 +0000\" {1}\r\na",
        "APPEND INBOX \"1-Feb-2024 10:00:00 +0060\" {1}\r\na", "APPEND INBOX \"1-Feb-2024 10:00:00 0000\" {1}\r\na",
        "APPEND INBOX {1}\r\n\u{0}", "APPEND INBOX {1}\r\na ", "APPEND INBOX UTF8 ({1}\r\na)", "APPEND INBOX UTF8 (~{1}\r\na",
        "APPEND INBOX \"a\"", "APPEND INBOX (\\Seen {1}\r\na",
        "GETQUOTA", "SETQUOTA x (STORAGE)", "SETQUOTA x (STORAGE -1)",
        "UID EXPUNGE", "UID EXPUNGE 0", "UID", "UID 1:2",
        "COPY 1", "COPY 1 ", "COPY x Trash", "MOVE 1:2:3 Trash",
        "SORT DATE UTF-8 ALL", "SORT () UTF-8 ALL", "SORT (FOO) UTF-8 ALL", "SORT (REVERSE) UTF-8 ALL", "SORT (DATE) UTF-8",
        "THREAD REFERENCES UTF-8", "THREAD REFERENCES", "THREAD (REFERENCES) UTF-8 ALL",
        "FOO*", "(", "\"NOOP\"", "{4}\r\nNOOP",
    ])
    func refusesMalformedCommands(command: String) {
        guard case .failure(let error) = parseCommand(command) else {
            Issue.record("accepted \(command)")
            return
        }
        #expect(error.tag == "A1")
        guard case .tagged(let tag, let status) = error.suggestedResponse else {
            Issue.record("untagged answer")
            return
        }
        #expect(tag == "A1")
        #expect(status.status == .bad)
    }

    @Test(arguments: [
        "", "\r\n", "+ NOOP\r\n", "* NOOP\r\n", "(A1 NOOP\r\n", "A1\r\n", "A1", " A1 NOOP\r\n", "A\u{0}1 NOOP\r\n",
        "\u{e9}1 NOOP\r\n", String(repeating: "a", count: 65) + " NOOP\r\n", "{3}\r\nA1 NOOP\r\n",
    ])
    func linesWithoutATagGetAnUntaggedBad(line: String) {
        guard case .failure(let error) = IMAPCommandParser().parse(bytes(line)) else {
            Issue.record("accepted \(line)")
            return
        }
        #expect(error.tag == nil)
        guard case .untagged(.status(let status)) = error.suggestedResponse else {
            Issue.record("not untagged")
            return
        }
        #expect(status.status == .bad)
    }

    @Test func unsupportedCharsetAsksForBadCharset() {
        for command in ["SEARCH CHARSET ISO-8859-1 SUBJECT x", "SORT (DATE) KOI8-R ALL", "THREAD REFERENCES \"x\" ALL"] {
            guard case .failure(let error) = parseCommand(command) else {
                Issue.record("accepted \(command)")
                continue
            }
            #expect(IMAPResponseEncoder().encode(error.suggestedResponse) == bytes("A1 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"))
        }
    }

    @Test func passwordsNeverReachDescriptions() {
        guard case .success(let login) = parseCommand("LOGIN alice hunter2"),
              case .success(let auth) = parseCommand("AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI=") else {
            Issue.record("did not parse")
            return
        }
        #expect(!login.description.contains("hunter2"))
        #expect(!auth.description.contains("AGFsaWNlAGh1bnRlcjI="))
        #expect(login.description == "A1 LOGIN alice <redacted>")
    }

    @Test func idleDoneAndAuthenticationLines() {
        let parser = IMAPCommandParser()
        #expect(parser.parseIdleDone(IMAPFrame(bytes: bytes("DONE\r\n"), tag: nil, isAppend: false)))
        #expect(parser.parseIdleDone(IMAPFrame(bytes: bytes("done\n"), tag: nil, isAppend: false)))
        #expect(!parser.parseIdleDone(IMAPFrame(bytes: bytes("DONE NOW\r\n"), tag: nil, isAppend: false)))
        #expect(!parser.parseIdleDone(IMAPFrame(bytes: bytes("A1 DONE\r\n"), tag: "A1", isAppend: false)))
        #expect(parser.parseAuthenticationResponse(IMAPFrame(bytes: bytes("*\r\n"), tag: nil, isAppend: false)) == .cancel)
        #expect(parser.parseAuthenticationResponse(IMAPFrame(bytes: bytes("\r\n"), tag: nil, isAppend: false)) == .data([]))
        #expect(parser.parseAuthenticationResponse(IMAPFrame(bytes: bytes("AGFsaWNlAHNlY3JldA==\r\n"), tag: nil, isAppend: false))
            == .data(bytes("\0alice\0secret")))
        #expect(parser.parseAuthenticationResponse(IMAPFrame(bytes: bytes("not base64!\r\n"), tag: nil, isAppend: false)) == .invalid)
    }

    @Test func mailboxNamesDecodeAccordingToUTF8Accept() {
        guard case .select(let name, _) = kind("SELECT \"~peter/mail/&U,BTFw-/&ZeVnLIqe-\"") else {
            Issue.record("did not parse")
            return
        }
        #expect(name.decoded(utf8Accept: false) == "~peter/mail/台北/日本語")
        // Raw UTF-8 in a quoted string needs UTF8=ACCEPT.
        #expect(kind("SELECT \"台北\"") == nil)
        guard case .select(let utf8Name, _) = kind("SELECT \"台北\"", utf8Accept: true) else {
            Issue.record("did not parse")
            return
        }
        #expect(utf8Name.decoded(utf8Accept: true) == "台北")
        #expect(utf8Name.decoded(utf8Accept: false) == nil)
        // In a literal, 8-bit is always fine for the grammar.
        #expect(kind("SELECT {6}\r\n台北") == .select(IMAPMailboxName(bytes("台北")), IMAPSelectParameters()))
        #expect(IMAPMailboxName(bytes("InBoX")).isInbox)
        #expect(!IMAPMailboxName(bytes("INBOX/sub")).isInbox)
        #expect(IMAPMailboxName(bytes("a\u{1}b")).decoded(utf8Accept: true) == nil)
        #expect(IMAPMailboxName(encoding: "Entwürfe", utf8Accept: false).bytes == bytes("Entw&APw-rfe"))
        #expect(IMAPMailboxName(encoding: "Entwürfe", utf8Accept: true).bytes == bytes("Entwürfe"))
    }
}

@Suite struct CommandDescriptionTests {
    @Test func appendDescriptionLeavesTheMessageOut() {
        guard case .success(let command) = parseCommand("APPEND INBOX {11}\r\nsecret body") else {
            Issue.record("did not parse")
            return
        }
        #expect(command.description == "A1 APPEND INBOX (1 message(s), 11 octets)")
    }

    @Test func taggedResponsesCannotCarryInjectedTags() {
        #expect(encoded(.tagged(tag: "A1\r\n* BYE", IMAPStatusResponse(.ok, "x"))) == "A1BYE OK x\r\n")
    }
}
