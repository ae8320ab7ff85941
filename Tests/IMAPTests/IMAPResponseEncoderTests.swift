import Foundation
import MailMessage
import Testing
@testable import IMAP

func encoded(_ response: IMAPResponse, utf8Accept: Bool = false) -> String {
    String(decoding: IMAPResponseEncoder(utf8Accept: utf8Accept).encode(response), as: UTF8.self)
}

func tagged(_ status: IMAPStatus, _ code: IMAPResponseCode?, _ text: String = "done") -> IMAPResponse {
    .tagged(tag: "A1", IMAPStatusResponse(status, code: code, text))
}

@Suite struct IMAPResponseEncoderTests {
    @Test(arguments: [
        (IMAPResponseCode.alert, "ALERT"), (.alreadyExists, "ALREADYEXISTS"), (.authenticationFailed, "AUTHENTICATIONFAILED"),
        (.cannot, "CANNOT"), (.closed, "CLOSED"), (.inUse, "INUSE"), (.limit, "LIMIT"), (.noModSeq, "NOMODSEQ"),
        (.nonexistent, "NONEXISTENT"), (.overQuota, "OVERQUOTA"), (.tooBig, "TOOBIG"), (.tryCreate, "TRYCREATE"),
        (.unavailable, "UNAVAILABLE"), (.readOnly, "READ-ONLY"), (.readWrite, "READ-WRITE"), (.unknownCTE, "UNKNOWN-CTE"),
        (.uidNext(4392), "UIDNEXT 4392"), (.uidValidity(3857529045), "UIDVALIDITY 3857529045"), (.unseen(12), "UNSEEN 12"),
        (.highestModSeq(715194045007), "HIGHESTMODSEQ 715194045007"),
        (.appendUID(uidValidity: 38505, uids: IMAPSequenceSet(compacting: [3955])), "APPENDUID 38505 3955"),
        (.copyUID(uidValidity: 38505, source: IMAPSequenceSet(preservingOrder: [304, 319, 320]),
                  destination: IMAPSequenceSet(preservingOrder: [3956, 3957, 3958])), "COPYUID 38505 304,319:320 3956:3958"),
        (.modified(IMAPSequenceSet(compacting: [7, 9])), "MODIFIED 7,9"),
        (.capability(["IMAP4rev1", "IMAP4rev2", "AUTH=PLAIN", "APPENDLIMIT=52428800"]), "CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN APPENDLIMIT=52428800"),
        (.permanentFlags([.deleted, .seen, .mayCreate]), "PERMANENTFLAGS (\\Deleted \\Seen \\*)"),
        (.badCharset(["UTF-8", "US-ASCII"]), "BADCHARSET (UTF-8 US-ASCII)"),
        (.other("X-THING", "a]b"), "X-THING a b"),
    ])
    func responseCodes(code: IMAPResponseCode, expected: String) {
        #expect(encoded(tagged(.ok, code)) == "A1 OK [\(expected)] done\r\n")
    }

    @Test func statusLinesAndContinuations() {
        #expect(encoded(tagged(.no, nil, "Mailbox does not exist")) == "A1 NO Mailbox does not exist\r\n")
        #expect(encoded(tagged(.bad, nil, "")) == "A1 BAD BAD\r\n")
        #expect(encoded(tagged(.ok, .readWrite, "")) == "A1 OK [READ-WRITE] OK\r\n")
        #expect(encoded(.untagged(.status(IMAPStatusResponse(.bye, "Logging out")))) == "* BYE Logging out\r\n")
        #expect(encoded(.untagged(.status(IMAPStatusResponse(.preauth, code: .capability(["IMAP4rev2"]), "hi")))) == "* PREAUTH [CAPABILITY IMAP4rev2] hi\r\n")
        #expect(encoded(.continuation("Ready")) == "+ Ready\r\n")
        #expect(encoded(.continuation("")) == "+ Ready\r\n")
        #expect(encoded(.continuationChallenge([])) == "+ \r\n")
        #expect(encoded(.continuationChallenge(bytes("<1896.697170952@postoffice.example.net>")))
            == "+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UuZXhhbXBsZS5uZXQ+\r\n")
    }

    @Test func textCannotInjectLines() {
        #expect(encoded(tagged(.no, nil, "bad\r\nA2 OK pwned")) == "A1 NO bad  A2 OK pwned\r\n")
        #expect(encoded(.untagged(.capability(["IMAP4rev2\r\n* BYE", "X Y"]))) == "* CAPABILITY IMAP4rev2BYE XY\r\n")
        #expect(encoded(.untagged(.flags([IMAPFlag("\\Seen"), IMAPFlag("bad flag)"), IMAPFlag("("), IMAPFlag("$Junk")]))) == "* FLAGS (\\Seen badflag $Junk)\r\n")
    }

    @Test(arguments: [
        ("", "\"\""), ("abc", "\"abc\""), ("a\"b\\c", "\"a\\\"b\\\\c\""), ("a\r\nb", "{4}\r\na\r\nb"), ("x\ny", "{3}\r\nx\ny"),
        ("café", "{5}\r\ncafé"),
    ])
    func stringsAreQuotedOrLiteral(value: String, expected: String) {
        var writer = IMAPWriter(buffer: [], utf8Accept: false)
        writer.string(value)
        #expect(String(decoding: writer.buffer, as: UTF8.self) == expected)
    }

    @Test func utf8AcceptQuotesValidUTF8Only() {
        var writer = IMAPWriter(buffer: [], utf8Accept: true)
        writer.string("café")
        writer.string([0x61, 0xff])
        writer.string([0x61, 0x00])
        #expect(writer.buffer == bytes("\"café\"{2}\r\na") + [0xff] + bytes("{2}\r\na") + [0])
    }

    @Test func untaggedData() {
        let cases: [(IMAPUntaggedResponse, String)] = [
            (.capability(["IMAP4rev2", "IDLE"]), "* CAPABILITY IMAP4rev2 IDLE"),
            (.enabled(["CONDSTORE"]), "* ENABLED CONDSTORE"),
            (.enabled([]), "* ENABLED"),
            (.exists(23), "* 23 EXISTS"),
            (.recent(0), "* 0 RECENT"),
            (.expunge(44), "* 44 EXPUNGE"),
            (.vanished(earlier: true, IMAPSequenceSet(compacting: [300, 301, 302, 405])), "* VANISHED (EARLIER) 300:302,405"),
            (.vanished(earlier: false, IMAPSequenceSet(compacting: [41])), "* VANISHED 41"),
            (.flags([.answered, .flagged, .deleted, .seen, .draft]), "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"),
            (.flags([]), "* FLAGS ()"),
            (.search([2, 84, 882], modSeq: nil), "* SEARCH 2 84 882"),
            (.search([], modSeq: nil), "* SEARCH"),
            (.search([2, 5], modSeq: 917162500), "* SEARCH 2 5 (MODSEQ 917162500)"),
            (.sort([2, 3, 6], modSeq: nil), "* SORT 2 3 6"),
            (.esearch(IMAPESearchResponse(tag: "A282", byUID: true, min: 2, max: 10, all: IMAPSequenceSet(compacting: [2, 3, 4, 10]), count: 4)),
             "* ESEARCH (TAG \"A282\") UID MIN 2 MAX 10 ALL 2:4,10 COUNT 4"),
            (.esearch(IMAPESearchResponse(tag: "A1", byUID: false, all: IMAPSequenceSet(compacting: [UInt32]()), count: 0)), "* ESEARCH (TAG \"A1\") COUNT 0"),
            (.esearch(IMAPESearchResponse(tag: nil, byUID: false, all: IMAPSequenceSet(compacting: [1]), modSeq: 1236)), "* ESEARCH ALL 1 MODSEQ 1236"),
            (.mailboxStatus(mailbox("blurdybloop"), [IMAPStatusValue(.messages, 231), IMAPStatusValue(.uidNext, 44292)]),
             "* STATUS \"blurdybloop\" (MESSAGES 231 UIDNEXT 44292)"),
            (.list(IMAPListResponse(attributes: ["\\HasNoChildren", "\\Sent"], delimiter: "/", mailbox: mailbox("Sent Items"))),
             "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\""),
            (.list(IMAPListResponse(attributes: [], delimiter: nil, mailbox: .inbox)), "* LIST () NIL \"INBOX\""),
            (.list(IMAPListResponse(attributes: ["\\NonExistent"], delimiter: "\\", mailbox: mailbox("a\\b"))), "* LIST (\\NonExistent) \"\\\\\" \"a\\\\b\""),
            (.list(IMAPListResponse(attributes: ["\\Subscribed"], delimiter: ".", mailbox: mailbox("Foo"),
                                    extendedItems: [.childInfo(["SUBSCRIBED"]), .oldName(mailbox("Bar"))])),
             "* LIST (\\Subscribed) \".\" \"Foo\" (\"CHILDINFO\" (\"SUBSCRIBED\") \"OLDNAME\" (\"Bar\"))"),
            (.lsub(IMAPListResponse(attributes: [], delimiter: "/", mailbox: mailbox("a"))), "* LSUB () \"/\" \"a\""),
            (.namespace(IMAPNamespaceResponse(personal: [IMAPNamespace(prefix: mailbox(""), delimiter: "/")])), "* NAMESPACE ((\"\" \"/\")) NIL NIL"),
            (.namespace(IMAPNamespaceResponse(personal: [IMAPNamespace(prefix: mailbox("INBOX."), delimiter: ".")],
                                              otherUsers: [IMAPNamespace(prefix: mailbox("user."), delimiter: ".")],
                                              shared: [IMAPNamespace(prefix: mailbox("shared"), delimiter: nil)])),
             "* NAMESPACE ((\"INBOX.\" \".\")) ((\"user.\" \".\")) ((\"shared\" NIL))"),
            (.quota(root: [], [IMAPQuotaResource("STORAGE", usage: 10, limit: 512), IMAPQuotaResource("message", usage: 1, limit: 100)]),
             "* QUOTA \"\" (STORAGE 10 512 MESSAGE 1 100)"),
            (.quotaRoot(.inbox, roots: [[]]), "* QUOTAROOT \"INBOX\" \"\""),
            (.quotaRoot(mailbox("x"), roots: []), "* QUOTAROOT \"x\""),
            (.id(nil), "* ID NIL"),
            (.id([IMAPIDField("name", "svcpkg"), IMAPIDField("support-url", nil)]), "* ID (\"name\" \"svcpkg\" \"support-url\" NIL)"),
        ]
        for (response, expected) in cases {
            #expect(encoded(.untagged(response)) == expected + "\r\n")
        }
    }

    @Test func threads() {
        // RFC 5256 §4 example: (2)(3 6 (4 23)(44 7 96))
        let threads = [
            IMAPThreadNode(2),
            IMAPThreadNode(3, [IMAPThreadNode(6, [IMAPThreadNode(4, [IMAPThreadNode(23)]), IMAPThreadNode(44, [IMAPThreadNode(7, [IMAPThreadNode(96)])])])]),
        ]
        #expect(encoded(.untagged(.thread(threads))) == "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n")
        // A placeholder parent: siblings nest.
        #expect(encoded(.untagged(.thread([IMAPThreadNode(nil, [IMAPThreadNode(3), IMAPThreadNode(5)])]))) == "* THREAD ((3)(5))\r\n")
        #expect(encoded(.untagged(.thread([IMAPThreadNode(nil, [IMAPThreadNode(3, [IMAPThreadNode(4)])])]))) == "* THREAD (3 4)\r\n")
        #expect(encoded(.untagged(.thread([]))) == "* THREAD\r\n")
    }

    @Test func aHostileFiftyThousandDeepChainIsAnsweredWithoutRecursing() {
        // Each message names the next as its parent: THREAD=REFERENCES' tree would be 50,000
        // deep; it comes back cut into bounded pieces and encodes with every number once.
        let facts = (1...UInt32(50_000)).map {
            ThreadFacts(number: $0, sequence: $0, sent: Date(timeIntervalSince1970: TimeInterval($0)), baseSubject: "", messageID: "n\($0)", references: ["n\($0 + 1)"])
        }
        let text = encoded(.untagged(.thread(MessageThreading.references(facts))))
        let numbers = text.dropFirst("* THREAD ".count).split { !$0.isNumber }.compactMap { UInt32($0) }
        #expect(numbers.sorted() == Array(1...UInt32(50_000)))
    }

    static let envelope = IMAPEnvelope(
        date: bytes("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)"),
        subject: bytes("IMAP4rev2 WG mtg summary and minutes"),
        from: [IMAPAddress(name: bytes("Terry Gray"), mailbox: bytes("gray"), host: bytes("cac.washington.edu"))],
        sender: [IMAPAddress(name: bytes("Terry Gray"), mailbox: bytes("gray"), host: bytes("cac.washington.edu"))],
        replyTo: [IMAPAddress(name: bytes("Terry Gray"), mailbox: bytes("gray"), host: bytes("cac.washington.edu"))],
        to: [IMAPAddress(mailbox: bytes("imap"), host: bytes("cac.washington.edu"))],
        cc: [IMAPAddress(mailbox: bytes("minutes"), host: bytes("CNRI.Reston.VA.US")),
             IMAPAddress(name: bytes("John Klensin"), mailbox: bytes("KLENSIN"), host: bytes("MIT.EDU"))],
        messageID: bytes("<B27397-0100000@cac.washington.edu>")
    )

    @Test func envelopeAsInRFC9051() {
        // RFC 9051 §7.5.2's example envelope.
        let expected = "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev2 WG mtg summary and minutes\" "
            + "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
            + "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) "
            + "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
            + "\"<B27397-0100000@cac.washington.edu>\")"
        #expect(encoded(.untagged(.fetch(12, [.envelope(Self.envelope)]))) == "* 12 FETCH (ENVELOPE \(expected))\r\n")
    }

    @Test func envelopeStringsWithLineBreaksQuotesAndGroups() {
        let envelope = IMAPEnvelope(
            subject: bytes("a \"quoted\"\r\n folded"),
            to: [.groupStart(bytes("undisclosed-recipients")), .groupEnd],
            inReplyTo: [0x3c, 0xe9, 0x3e]
        )
        #expect(IMAPResponseEncoder().encode(.untagged(.fetch(1, [.envelope(envelope)])))
            == bytes("* 1 FETCH (ENVELOPE (NIL {19}\r\na \"quoted\"\r\n folded NIL NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL {3}\r\n<")
            + [0xe9] + bytes("> NIL))\r\n"))
    }

    static let textPart = IMAPBodyStructure.singlePart(IMAPSinglePartBody(
        type: "TEXT", subtype: "PLAIN",
        fields: IMAPBodyFields(parameters: [IMAPBodyParameter("CHARSET", "US-ASCII")], encoding: "7BIT", octets: 3028),
        kind: .text(lines: 92)
    ))

    @Test func bodyStructures() {
        #expect(encoded(.untagged(.fetch(1, [.body(Self.textPart)])))
            == "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n")
        #expect(encoded(.untagged(.fetch(1, [.bodyStructure(Self.textPart)])))
            == "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL))\r\n")

        let attachment = IMAPBodyStructure.singlePart(IMAPSinglePartBody(
            type: "application", subtype: "pdf",
            fields: IMAPBodyFields(parameters: [IMAPBodyParameter("name", "r\u{e9}sum\u{e9}.pdf")], id: bytes("<x@y>"), description: bytes("CV"), encoding: "base64", octets: 4096),
            md5: bytes("Q2hlY2sgSW50ZWdyaXR5IQ=="),
            extensionData: IMAPBodyExtension(
                disposition: IMAPBodyDisposition("attachment", parameters: [IMAPBodyParameter("filename", "cv.pdf")]),
                language: ["en", "de"], location: bytes("http://x/cv.pdf"))
        ))
        let multipart = IMAPBodyStructure.multipart(IMAPMultipartBody(
            parts: [Self.textPart, attachment], subtype: "mixed",
            parameters: [IMAPBodyParameter("boundary", "b1")],
            extensionData: IMAPBodyExtension(language: ["en"])
        ))
        #expect(encoded(.untagged(.fetch(2, [.body(multipart)])))
            == "* 2 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92)"
            + "(\"APPLICATION\" \"PDF\" (\"NAME\" {12}\r\nrésumé.pdf) \"<x@y>\" \"CV\" \"BASE64\" 4096) \"MIXED\"))\r\n")
        #expect(encoded(.untagged(.fetch(2, [.bodyStructure(multipart)])))
            == "* 2 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL)"
            + "(\"APPLICATION\" \"PDF\" (\"NAME\" {12}\r\nrésumé.pdf) \"<x@y>\" \"CV\" \"BASE64\" 4096 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" "
            + "(\"ATTACHMENT\" (\"FILENAME\" \"cv.pdf\")) (\"en\" \"de\") \"http://x/cv.pdf\") \"MIXED\" (\"BOUNDARY\" \"b1\") NIL \"en\" NIL))\r\n")

        let message = IMAPBodyStructure.singlePart(IMAPSinglePartBody(
            type: "MESSAGE", subtype: "RFC822", fields: IMAPBodyFields(octets: 500),
            kind: .message(envelope: IMAPEnvelope(subject: bytes("inner")), body: Self.textPart, lines: 20)
        ))
        #expect(encoded(.untagged(.fetch(3, [.body(message)])))
            == "* 3 FETCH (BODY (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 500 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
            + "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92) 20))\r\n")
    }

    @Test func fetchAttributes() {
        let values: [IMAPFetchValue] = [
            .uid(4827313), .flags([.seen, IMAPFlag("$Forwarded")]), .internalDate(IMAPDateTime(secondsSince1970: 837_596_665, zoneMinutes: -420)),
            .rfc822Size(44827), .modSeq(12121231000),
            .bodySection(IMAPSection(.headerFields(["FROM", "MESSAGE-ID"])), origin: nil, bytes("From: a\r\n\r\n")),
            .bodySection(.complete, origin: 0, bytes("abc")), .bodySection(IMAPSection(part: [1, 2], .mime), origin: nil, nil),
            .binary(part: [1], origin: nil, [0x61, 0x00]), .binary(part: [], origin: 5, bytes("x")), .binarySize(part: [2], 1234),
            .rfc822(nil), .rfc822Header(bytes("H: v\r\n\r\n")), .rfc822Text(bytes("t")),
        ]
        #expect(encoded(.untagged(.fetch(12, values))) == "* 12 FETCH (UID 4827313 FLAGS (\\Seen $Forwarded) "
            + "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 MODSEQ (12121231000) "
            + "BODY[HEADER.FIELDS (FROM MESSAGE-ID)] {11}\r\nFrom: a\r\n\r\n BODY[]<0> \"abc\" BODY[1.2.MIME] NIL "
            + "BINARY[1] ~{2}\r\na\u{0} BINARY[]<5> \"x\" BINARY.SIZE[2] 1234 RFC822 NIL RFC822.HEADER {8}\r\nH: v\r\n\r\n RFC822.TEXT \"t\")\r\n")
    }
}
