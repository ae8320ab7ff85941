import Testing

@testable import MailMessage

/// RFC 5322 §3.4 address lists as IMAP address structures (RFC 9051 §7.5.2).
@Suite struct AddressParserTests {
    static func render(_ value: String) -> String {
        IMAPRendering.addresses(AddressParser.parse(Array(value.utf8)))
    }

    @Test(arguments: [
        // addr-spec and name-addr
        ("alice@example.org", #"((NIL NIL "alice" "example.org"))"#),
        ("Alice Example <alice@example.org>", #"(("Alice Example" NIL "alice" "example.org"))"#),
        (#""Doe, John" <john@x.test>"#, #"(("Doe, John" NIL "john" "x.test"))"#),
        (#""quoted \"esc\"" <q@x>"#, #"(("quoted \"esc\"" NIL "q" "x"))"#),
        ("John Q. Public <jqp@x>", #"(("John Q. Public" NIL "jqp" "x"))"#),
        // comments: the name when there is no phrase (the last one), ignored otherwise
        ("bob@z.test (Bob B)", #"(("Bob B" NIL "bob" "z.test"))"#),
        ("a@b.c (comment (nested))", #"(("comment (nested)" NIL "a" "b.c"))"#),
        ("Mary (the boss) <mary@y>", #"(("Mary" NIL "mary" "y"))"#),
        ("<a@b> (only comment)", #"(("only comment" NIL "a" "b"))"#),
        ("a(x)@b(y).c", #"(("y" NIL "a" "b.c"))"#),
        // lists and null elements (RFC 5322 §4.4 obs-addr-list)
        ("a@x, b@y", #"((NIL NIL "a" "x")(NIL NIL "b" "y"))"#),
        (",,a@x,,", #"((NIL NIL "a" "x"))"#),
        ("", "NIL"),
        ("   ", "NIL"),
        // groups
        ("undisclosed-recipients:;", #"((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))"#),
        ("Team: a@x, \"B\" <b@x>; , c@x", #"((NIL NIL "Team" NIL)(NIL NIL "a" "x")("B" NIL "b" "x")(NIL NIL NIL NIL)(NIL NIL "c" "x"))"#),
        (#"Group with "quote": <a@b> ;"#, #"((NIL NIL "Group with quote" NIL)(NIL NIL "a" "b")(NIL NIL NIL NIL))"#),
        ("Open: a@x", #"((NIL NIL "Open" NIL)(NIL NIL "a" "x")(NIL NIL NIL NIL))"#),
        // obsolete route, domain literal, CFWS around dots
        ("<@r1,@r2:route@x.test>", #"((NIL "@r1,@r2" "route" "x.test"))"#),
        ("Mary <mary@[192.0.2.7]>", #"(("Mary" NIL "mary" "[192.0.2.7]"))"#),
        ("first.last @ example . com", #"((NIL NIL "first.last" "example.com"))"#),
        ("a.b . c@d. e", #"((NIL NIL "a.b.c" "d.e"))"#),
        // quoted local parts are unquoted, as Dovecot sends them
        (#""a b"@c"#, #"((NIL NIL "a b" "c"))"#),
        // missing parts: Dovecot's markers (a NIL host would mean a group)
        ("nodomain", #"((NIL NIL "nodomain" "MISSING_DOMAIN"))"#),
        ("Alice", #"((NIL NIL "Alice" "MISSING_DOMAIN"))"#),
        ("John Smith", #"(("John Smith" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#),
        // words before "@" without dots: kept as the local part (Dovecot drops the address)
        ("a b@c", #"((NIL NIL "a b" "c"))"#),
        ("a@b c, x@y", #"((NIL NIL "a" "b")(NIL NIL "x" "y"))"#),
        ("a@exampl e.com: junk", #"((NIL NIL "a" "exampl"))"#),
        ("a@", #"((NIL NIL "a" "MISSING_DOMAIN"))"#),
        ("<>", #"((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#),
        ("@", #"((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#),
        ("x <y>", #"(("x" NIL "y" "MISSING_DOMAIN"))"#),
        // encoded words stay raw
        ("=?utf-8?q?J=C3=BCrgen?= <j@x>", #"(("=?utf-8?q?J=C3=BCrgen?=" NIL "j" "x"))"#),
        // junk
        ("<unterminated@x", #"((NIL NIL "unterminated" "x"))"#),
        ("a@x>, b@y", #"((NIL NIL "a" "x")(NIL NIL "b" "y"))"#),
        (#""unterminated <a@b>"#, #"((NIL NIL "unterminated <a@b>" "MISSING_DOMAIN"))"#),
        (#""a" "b""#, #"(("a b" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"#),
    ])
    func addressLists(_ value: String, _ expected: String) {
        #expect(Self.render(value) == expected)
    }

    @Test func decodedForWebMail() {
        let envelope = Envelope(fields: [
            RawHeaderField(name: "From", value: Array("=?iso-8859-1?q?Andr=E9?= Pirard <p@x>, Team: a@x;".utf8), range: 0..<0),
            RawHeaderField(name: "To", value: Array("nodomain".utf8), range: 0..<0),
        ])
        let decoded = envelope.decoded
        #expect(decoded.from == [
            .mailbox(MailboxAddress(displayName: "André Pirard", localPart: "p", domain: "x")),
            .group(name: "Team", members: [MailboxAddress(localPart: "a", domain: "x")]),
        ])
        #expect(decoded.to == [.mailbox(MailboxAddress(localPart: "nodomain", domain: nil))])
        #expect(decoded.sender == decoded.from && decoded.replyTo == decoded.from)
    }

    // RFC 3501 §7.4.2: Sender and Reply-To default to From when absent or empty.
    @Test(arguments: [
        ("From: a@x\r\n\r\n", "((NIL NIL \"a\" \"x\"))", "((NIL NIL \"a\" \"x\"))"),
        ("From: a@x\r\nSender:\r\nReply-To: \r\n\r\n", "((NIL NIL \"a\" \"x\"))", "((NIL NIL \"a\" \"x\"))"),
        ("From: a@x\r\nSender: s@x\r\nReply-To: r@x\r\n\r\n", "((NIL NIL \"s\" \"x\"))", "((NIL NIL \"r\" \"x\"))"),
        ("Subject: none\r\n\r\n", "NIL", "NIL"),
    ])
    func senderAndReplyToDefaults(_ header: String, _ sender: String, _ replyTo: String) {
        let envelope = Envelope(message: Array(header.utf8))
        #expect(IMAPRendering.addresses(envelope.sender) == sender)
        #expect(IMAPRendering.addresses(envelope.replyTo) == replyTo)
    }

    @Test func envelopeStringsAreRaw() {
        let header = "Date:  Mon, 1 Jan 2024 10:00:00 +0000  \r\nSubject: =?utf-8?q?x?=\r\n folded\r\nMessage-ID: <m@x>\r\nMessage-ID: <second@x>\r\nIn-Reply-To: <a@b> (c)\r\nSubject: second\r\n\r\n"
        let envelope = Envelope(message: Array(header.utf8))
        #expect(envelope.date == Array("Mon, 1 Jan 2024 10:00:00 +0000  ".utf8))
        #expect(envelope.subject == Array("=?utf-8?q?x?= folded".utf8))
        #expect(envelope.messageID == Array("<m@x>".utf8))
        #expect(envelope.inReplyTo == Array("<a@b> (c)".utf8))
        #expect(envelope.decoded.subject == "x folded")
        #expect(Envelope(message: Array("Subject:\r\n\r\n".utf8)).subject == [])
    }
}
