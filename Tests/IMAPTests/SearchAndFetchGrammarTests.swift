import Testing
@testable import IMAP

func date(_ year: Int, _ month: Int, _ day: Int) -> IMAPDate {
    IMAPDate(year: year, month: month, day: day) ?? IMAPDate(daysSince1970: 0)
}

@Suite struct SearchGrammarTests {
    @Test(arguments: [
        ("SEARCH ALL", IMAPSearchCommand(key: .all)),
        ("UID SEARCH UNSEEN", IMAPSearchCommand(byUID: true, key: .unseen)),
        ("SEARCH ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN",
         IMAPSearchCommand(key: .and([.answered, .deleted, .draft, .flagged, .new, .old, .recent, .seen, .unanswered, .undeleted, .undraft, .unflagged, .unseen]))),
        ("SEARCH KEYWORD $Forwarded UNKEYWORD NonJunk", IMAPSearchCommand(key: .and([.keyword(IMAPFlag("$Forwarded")), .unkeyword(IMAPFlag("NonJunk"))]))),
        ("SEARCH CHARSET UTF-8 SUBJECT {4}\r\nj\u{f6}g", IMAPSearchCommand(charset: "UTF-8", key: .subject("jög"))),
        ("SEARCH charset \"us-ascii\" FROM \"Smith\"", IMAPSearchCommand(charset: "US-ASCII", key: .from("Smith"))),
        ("SEARCH BCC a BODY b CC c FROM d SUBJECT e TEXT f TO g",
         IMAPSearchCommand(key: .and([.bcc("a"), .body("b"), .cc("c"), .from("d"), .subject("e"), .text("f"), .to("g")]))),
        ("SEARCH HEADER Message-ID \"<a@b>\"", IMAPSearchCommand(key: .header("MESSAGE-ID", "<a@b>"))),
        ("SEARCH HEADER X-Spam \"\"", IMAPSearchCommand(key: .header("X-SPAM", ""))),
        ("SEARCH BEFORE 1-Feb-1994 ON \"01-feb-1994\" SINCE 29-Feb-2024",
         IMAPSearchCommand(key: .and([.before(date(1994, 2, 1)), .on(date(1994, 2, 1)), .since(date(2024, 2, 29))]))),
        ("SEARCH SENTBEFORE 1-Jan-2000 SENTON 2-Jan-2000 SENTSINCE 3-Jan-2000",
         IMAPSearchCommand(key: .and([.sentBefore(date(2000, 1, 1)), .sentOn(date(2000, 1, 2)), .sentSince(date(2000, 1, 3))]))),
        ("SEARCH LARGER 1000 SMALLER 9223372036854775807", IMAPSearchCommand(key: .and([.larger(1000), .smaller(9_223_372_036_854_775_807)]))),
        ("SEARCH OLDER 3600 YOUNGER 60", IMAPSearchCommand(key: .and([.older(3600), .younger(60)]))),
        ("SEARCH 1:5,7 UID 2:*", IMAPSearchCommand(key: .and([.sequenceNumbers(IMAPSequenceSet([range(1, 5), range(7, 7)])),
                                                             .uid(IMAPSequenceSet([IMAPSequenceRange(.number(2), .last)]))]))),
        ("SEARCH $", IMAPSearchCommand(key: .sequenceNumbers(.lastSearchResult))),
        ("SEARCH UID $ SEEN", IMAPSearchCommand(key: .and([.uid(.lastSearchResult), .seen]))),
        ("SEARCH * 5:*", IMAPSearchCommand(key: .and([.sequenceNumbers(IMAPSequenceSet([IMAPSequenceRange(.last, .last)])),
                                                     .sequenceNumbers(IMAPSequenceSet([IMAPSequenceRange(.number(5), .last)]))]))),
        ("SEARCH NOT SEEN", IMAPSearchCommand(key: .not(.seen))),
        ("SEARCH OR SEEN FLAGGED", IMAPSearchCommand(key: .or(.seen, .flagged))),
        ("SEARCH OR (FROM a TO b) NOT (DELETED)", IMAPSearchCommand(key: .or(.and([.from("a"), .to("b")]), .not(.deleted)))),
        ("SEARCH ((ALL))", IMAPSearchCommand(key: .all)),
        ("SEARCH MODSEQ 620162338", IMAPSearchCommand(key: .modSeq(IMAPSearchModSeq(620_162_338)))),
        ("SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338",
         IMAPSearchCommand(key: .modSeq(IMAPSearchModSeq(620_162_338, entryName: "/flags/\\draft", entryType: .all)))),
        ("SEARCH MODSEQ 0", IMAPSearchCommand(key: .modSeq(IMAPSearchModSeq(0)))),
        ("SEARCH RETURN (MIN MAX COUNT) UNSEEN", IMAPSearchCommand(returnOptions: [.min, .max, .count], key: .unseen)),
        ("SEARCH RETURN () ALL", IMAPSearchCommand(returnOptions: [.all], key: .all)),
        ("UID SEARCH RETURN (SAVE) CHARSET UTF-8 DELETED", IMAPSearchCommand(byUID: true, charset: "UTF-8", returnOptions: [.save], key: .deleted)),
    ])
    func parsesSearch(command: String, expected: IMAPSearchCommand) {
        #expect(kind(command) == .search(expected))
    }

    @Test(arguments: [
        "SEARCH", "SEARCH ", "SEARCH FOO", "SEARCH (ALL", "SEARCH ALL)", "SEARCH ()", "SEARCH OR ALL", "SEARCH NOT",
        "SEARCH BEFORE 30-Feb-2024", "SEARCH BEFORE 29-Feb-2023", "SEARCH SINCE 1-Foo-2024", "SEARCH SINCE 1-Feb-24",
        "SEARCH SINCE 123-Feb-2024", "SEARCH SINCE \"1-Feb-2024", "SEARCH LARGER -1", "SEARCH LARGER 9223372036854775808",
        "SEARCH UID 1::2", "SEARCH UID", "SEARCH HEADER \"\" x", "SEARCH HEADER a:b x", "SEARCH HEADER X", "SEARCH SUBJECT",
        "SEARCH 0", "SEARCH 1:0", "SEARCH 4294967296", "SEARCH $1", "SEARCH $:3", "SEARCH 1,$", "SEARCH KEYWORD \\Seen",
        "SEARCH KEYWORD", "SEARCH OLDER 0", "SEARCH RETURN (FOO) ALL", "SEARCH RETURN ALL", "SEARCH CHARSET", "SEARCH CHARSET UTF-8",
        "SEARCH MODSEQ", "SEARCH MODSEQ \"/flags/x\" everything 5", "SEARCH MODSEQ \"/flags/x\" 5", "SEARCH ALL  SEEN",
        "SEARCH SUBJECT \"a\u{0}\"",
    ])
    func refusesMalformedSearch(command: String) {
        #expect(kind(command) == nil, "accepted \(command)")
    }

    @Test func eightBitSearchStringsNeedALiteralOrUTF8Accept() {
        #expect(kind("SEARCH SUBJECT \"caf\u{e9}\"") == nil)
        #expect(kind("SEARCH SUBJECT \"caf\u{e9}\"", utf8Accept: true) == .search(IMAPSearchCommand(key: .subject("café"))))
        #expect(kind("SEARCH SUBJECT {5}\r\ncaf\u{e9}") == .search(IMAPSearchCommand(key: .subject("café"))))
    }
}

@Suite struct FetchGrammarTests {
    static let set1 = IMAPSequenceSet([range(1, 1)])

    @Test(arguments: [
        ("FETCH 1 ALL", IMAPFetchCommand(sequenceSet: set1, attributes: IMAPFetchAttribute.all)),
        ("FETCH 1 fast", IMAPFetchCommand(sequenceSet: set1, attributes: IMAPFetchAttribute.fast)),
        ("FETCH 1 FULL", IMAPFetchCommand(sequenceSet: set1, attributes: IMAPFetchAttribute.full)),
        ("FETCH 1 FLAGS", IMAPFetchCommand(sequenceSet: set1, attributes: [.flags])),
        ("FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE UID MODSEQ RFC822 RFC822.HEADER RFC822.TEXT)",
         IMAPFetchCommand(sequenceSet: IMAPSequenceSet([IMAPSequenceRange(.number(1), .last)]),
                          attributes: [.flags, .internalDate, .rfc822Size, .envelope, .body, .bodyStructure, .uid, .modSeq, .rfc822, .rfc822Header, .rfc822Text])),
        ("UID FETCH 100:200 (UID FLAGS) (CHANGEDSINCE 12345 VANISHED)",
         IMAPFetchCommand(byUID: true, sequenceSet: IMAPSequenceSet([range(100, 200)]), attributes: [.uid, .flags], changedSince: 12345, vanished: true)),
        ("FETCH 1 FLAGS (CHANGEDSINCE 0)", IMAPFetchCommand(sequenceSet: set1, attributes: [.flags], changedSince: 0)),
        ("FETCH 1 BODY[]", IMAPFetchCommand(sequenceSet: set1, attributes: [.bodySection(.complete, partial: nil, peek: false)])),
        ("FETCH 1 BODY.PEEK[]<0.1024>", IMAPFetchCommand(sequenceSet: set1, attributes: [.bodySection(.complete, partial: IMAPPartial(offset: 0, length: 1024), peek: true)])),
        ("FETCH 1 (BODY[HEADER] BODY[TEXT] body.peek[1.2.3] BODY[2.MIME] BODY[3.HEADER] BODY[4.1.TEXT])",
         IMAPFetchCommand(sequenceSet: set1, attributes: [
             .bodySection(IMAPSection(.header), partial: nil, peek: false),
             .bodySection(IMAPSection(.text), partial: nil, peek: false),
             .bodySection(IMAPSection(part: [1, 2, 3]), partial: nil, peek: true),
             .bodySection(IMAPSection(part: [2], .mime), partial: nil, peek: false),
             .bodySection(IMAPSection(part: [3], .header), partial: nil, peek: false),
             .bodySection(IMAPSection(part: [4, 1], .text), partial: nil, peek: false),
         ])),
        ("FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To Subject \"Message-ID\" {8}\r\nX-Mailer)] BODY[1.HEADER.FIELDS.NOT (Received)])",
         IMAPFetchCommand(sequenceSet: set1, attributes: [
             .bodySection(IMAPSection(.headerFields(["FROM", "TO", "SUBJECT", "MESSAGE-ID", "X-MAILER"])), partial: nil, peek: true),
             .bodySection(IMAPSection(part: [1], .headerFieldsNot(["RECEIVED"])), partial: nil, peek: false),
         ])),
        ("FETCH 1 (BINARY[] BINARY.PEEK[1.2]<10.20> BINARY.SIZE[3])",
         IMAPFetchCommand(sequenceSet: set1, attributes: [
             .binary(part: [], partial: nil, peek: false),
             .binary(part: [1, 2], partial: IMAPPartial(offset: 10, length: 20), peek: true),
             .binarySize(part: [3]),
         ])),
        ("FETCH $ (FLAGS)", IMAPFetchCommand(sequenceSet: .lastSearchResult, attributes: [.flags])),
        ("FETCH 5:2,*:7 UID", IMAPFetchCommand(sequenceSet: IMAPSequenceSet([range(5, 2), IMAPSequenceRange(.last, .number(7))]), attributes: [.uid])),
        ("FETCH 4294967295 UID", IMAPFetchCommand(sequenceSet: IMAPSequenceSet([range(4_294_967_295, 4_294_967_295)]), attributes: [.uid])),
    ])
    func parsesFetch(command: String, expected: IMAPFetchCommand) {
        #expect(kind(command) == .fetch(expected))
    }

    @Test(arguments: [
        "FETCH", "FETCH 1", "FETCH 1 ", "FETCH 0 FLAGS", "FETCH 1:0 FLAGS", "FETCH 0:1 FLAGS", "FETCH 4294967296 FLAGS",
        "FETCH 99999999999999999999999 FLAGS", "FETCH -1 FLAGS", "FETCH 1, FLAGS", "FETCH ,1 FLAGS", "FETCH 1:: FLAGS",
        "FETCH $,1 FLAGS", "FETCH $$ FLAGS", "FETCH 1 (FLAGS", "FETCH 1 (FLAGS))", "FETCH 1 ()", "FETCH 1 (ALL)",
        "FETCH 1 FOO", "FETCH 1 BODY.PEEK", "FETCH 1 BODY[1.MIME", "FETCH 1 BODY[MIME]", "FETCH 1 BODY[0]", "FETCH 1 BODY[1.]",
        "FETCH 1 BODY[HEADER.FIELDS]", "FETCH 1 BODY[HEADER.FIELDS ()]", "FETCH 1 BODY[HEADER.FIELDS (a:b)]", "FETCH 1 BODY[FOO]",
        "FETCH 1 BODY[]<5>", "FETCH 1 BODY[]<0.0>", "FETCH 1 BODY[]<a.1>", "FETCH 1 BODY[]<1.2", "FETCH 1 BINARY", "FETCH 1 BINARY[TEXT]",
        "FETCH 1 BINARY.SIZE", "FETCH 1 FLAGS (VANISHED)", "FETCH 1 FLAGS (CHANGEDSINCE)", "FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)",
        "FETCH 1 FLAGS ()", "FETCH 1 FLAGS (FOO)", "FETCH 1 FLAGS FLAGS", "FETCH 1 (FLAGS  UID)", "FETCH 1 ( FLAGS)",
        "FETCH 1 BODY[]]", "FETCH 1 BODY[\u{0}]",
    ])
    func refusesMalformedFetch(command: String) {
        #expect(kind(command) == nil, "accepted \(command)")
    }
}

@Suite struct StoreGrammarTests {
    @Test(arguments: [
        ("STORE 1:* +FLAGS (\\Seen)", IMAPStoreCommand(sequenceSet: IMAPSequenceSet([IMAPSequenceRange(.number(1), .last)]), operation: .add, flags: [.seen])),
        ("UID STORE 4 -FLAGS.SILENT \\Deleted", IMAPStoreCommand(byUID: true, sequenceSet: IMAPSequenceSet([range(4, 4)]), operation: .remove, silent: true, flags: [.deleted])),
        ("STORE 2 (UNCHANGEDSINCE 12345) FLAGS ()", IMAPStoreCommand(sequenceSet: IMAPSequenceSet([range(2, 2)]), unchangedSince: 12345, operation: .replace, flags: [])),
        ("STORE $ flags (\\seen $Forwarded Junk)", IMAPStoreCommand(sequenceSet: .lastSearchResult, operation: .replace, flags: [.seen, IMAPFlag("$Forwarded"), IMAPFlag("Junk")])),
        ("STORE 1 +FLAGS \\Answered \\Flagged", IMAPStoreCommand(sequenceSet: IMAPSequenceSet([range(1, 1)]), operation: .add, flags: [.answered, .flagged])),
        ("STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Draft)", IMAPStoreCommand(sequenceSet: IMAPSequenceSet([range(1, 1)]), unchangedSince: 0, operation: .add, silent: true, flags: [.draft])),
    ])
    func parsesStore(command: String, expected: IMAPStoreCommand) {
        #expect(kind(command) == .store(expected))
    }

    @Test(arguments: [
        "STORE 1 FLAGS", "STORE 1 +FLAG (\\Seen)", "STORE 1 FLAGS (\\*)", "STORE 1 *FLAGS (\\Seen)", "STORE 1 FLAGS (\\Seen",
        "STORE 1 FLAGS.LOUD (\\Seen)", "STORE 1 (UNCHANGEDSINCE) FLAGS ()", "STORE 1 (FOO 1) FLAGS ()", "STORE 1 () FLAGS ()",
        "STORE 1 FLAGS (\\)", "STORE 1 FLAGS (a\u{e9})", "STORE 1 FLAGS ((\\Seen))", "STORE FLAGS (\\Seen)",
    ])
    func refusesMalformedStore(command: String) {
        #expect(kind(command) == nil, "accepted \(command)")
    }

    @Test func flagsCompareCaseInsensitivelyAndKeepCanonicalSpelling() {
        #expect(IMAPFlag("\\SEEN").rawValue == "\\Seen")
        #expect(IMAPFlag("$forwarded") == IMAPFlag("$Forwarded"))
        #expect(Set([IMAPFlag("junk"), IMAPFlag("JUNK")]).count == 1)
    }
}
