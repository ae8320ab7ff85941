import Testing
@testable import SMTPClient

@Suite struct SMTPReplyParserTests {
    static func parse(_ input: String, parser: SMTPReplyParser = SMTPReplyParser()) -> Result<[SMTPClientReply], SMTPReplyParseError> {
        var parser = parser
        parser.append(Array(input.utf8))
        var replies: [SMTPClientReply] = []
        do {
            while let reply = try parser.next() { replies.append(reply) }
        } catch {
            return .failure(error)
        }
        return .success(replies)
    }

    @Test(arguments: [
        ("250 OK\r\n", [SMTPClientReply(code: 250, lines: ["OK"])]),
        ("250\r\n", [SMTPClientReply(code: 250, lines: [""])]),
        ("220 mx.example.test ESMTP\n", [SMTPClientReply(code: 220, lines: ["mx.example.test ESMTP"])]),
        ("250-mx.example.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
         [SMTPClientReply(code: 250, lines: ["mx.example.test", "PIPELINING", "SIZE 1000"])]),
        ("250-smtp-sink\r\n250 \r\n", [SMTPClientReply(code: 250, lines: ["smtp-sink", ""])]),
        ("550 5.1.1 No such user\r\n", [SMTPClientReply(code: 550, enhanced: "5.1.1", lines: ["No such user"])]),
        ("550-5.1.1 first\r\n550-5.1.1\r\n550 5.1.1 last\r\n",
         [SMTPClientReply(code: 550, enhanced: "5.1.1", lines: ["first", "", "last"])]),
        ("250 2.0.0\r\n", [SMTPClientReply(code: 250, enhanced: "2.0.0", lines: [""])]),
        ("452 4.5.3 Too many recipients\r\n", [SMTPClientReply(code: 452, enhanced: "4.5.3", lines: ["Too many recipients"])]),
        // The enhanced code's class must match the reply's first digit (RFC 3463 §2).
        ("450 5.1.1 odd\r\n", [SMTPClientReply(code: 450, lines: ["5.1.1 odd"])]),
        ("250 2.0.0.1 odd\r\n", [SMTPClientReply(code: 250, lines: ["2.0.0.1 odd"])]),
        ("250 2.1234.0 odd\r\n", [SMTPClientReply(code: 250, lines: ["2.1234.0 odd"])]),
        ("250 a\r\n354 b\r\n", [SMTPClientReply(code: 250, lines: ["a"]), SMTPClientReply(code: 354, lines: ["b"])]),
        // Control characters and invalid UTF-8 never reach logs.
        ("250 a\u{1b}[31mb\tc\r\n", [SMTPClientReply(code: 250, lines: ["a?[31mb c"])]),
        ("250 a\rb\r\n", [SMTPClientReply(code: 250, lines: ["a?b"])]),
        ("250 jörg\r\n", [SMTPClientReply(code: 250, lines: ["jörg"])]),
        ("250-a\r\n", []),
        ("", []),
    ])
    func parsesReplies(input: String, expected: [SMTPClientReply]) {
        #expect(Self.parse(input) == .success(expected))
    }

    @Test(arguments: [
        ("25\r\n", SMTPReplyParseError.malformedLine("25")),
        ("2500 x\r\n", .malformedLine("2500 x")),
        ("250x\r\n", .malformedLine("250x")),
        ("650 x\r\n", .malformedLine("650 x")),
        ("190 x\r\n", .malformedLine("190 x")),
        ("260 x\r\n", .malformedLine("260 x")),
        ("abc\r\n", .malformedLine("abc")),
        ("\r\n", .malformedLine("")),
        (" 250 x\r\n", .malformedLine(" 250 x")),
        ("250-a\r\n251 b\r\n", .mismatchedCode(expected: 250, found: 251)),
        ("250-a\r\n550-b\r\n550 c\r\n", .mismatchedCode(expected: 250, found: 550)),
        ("250-a\r\nxyz\r\n", .malformedLine("xyz")),
    ])
    func refusesMalformedReplies(input: String, expected: SMTPReplyParseError) {
        #expect(Self.parse(input) == .failure(expected))
    }

    @Test func boundsLineLengthAndLineCount() {
        let parser = SMTPReplyParser(maxLineLength: 20, maxLines: 3)
        #expect(Self.parse("250 " + String(repeating: "x", count: 14) + "\r\n", parser: parser)
            == .success([SMTPClientReply(code: 250, lines: [String(repeating: "x", count: 14)])]))
        #expect(Self.parse("250 " + String(repeating: "x", count: 15) + "\r\n", parser: parser) == .failure(.lineTooLong(limit: 20)))
        // A line without an end is refused as soon as it is too long, not buffered forever.
        #expect(Self.parse("250 " + String(repeating: "x", count: 100), parser: parser) == .failure(.lineTooLong(limit: 20)))
        #expect(Self.parse("250-a\r\n250-b\r\n250 c\r\n", parser: parser).map(\.count) == .success(1))
        #expect(Self.parse("250-a\r\n250-b\r\n250-c\r\n250 d\r\n", parser: parser) == .failure(.tooManyLines(limit: 3)))
        // Endless continuation lines stop at the line limit too.
        #expect(Self.parse(String(repeating: "250-x\r\n", count: 10_000)) == .failure(.tooManyLines(limit: 100)))
    }

    @Test func parsesIncrementallyAndStaysFailed() throws {
        var parser = SMTPReplyParser()
        var replies: [SMTPClientReply] = []
        for byte in "250-first\r\n250 2.0.0 second\r\n354 go\r\n".utf8 {
            parser.append([byte])
            while let reply = try parser.next() { replies.append(reply) }
        }
        #expect(replies == [
            SMTPClientReply(code: 250, lines: ["first", "2.0.0 second"]),
            SMTPClientReply(code: 354, lines: ["go"]),
        ])

        parser.append(Array("999 bad\r\n250 ok\r\n".utf8))
        #expect(throws: SMTPReplyParseError.malformedLine("999 bad")) { try parser.next() }
        #expect(throws: SMTPReplyParseError.malformedLine("999 bad")) { try parser.next() }
    }

    @Test func resetDropsBufferedInput() throws {
        var parser = SMTPReplyParser()
        parser.append(Array("220 go ahead\r\n250-injected\r\n250 injected".utf8))
        #expect(try parser.next() == SMTPClientReply(code: 220, lines: ["go ahead"]))
        parser.reset()
        #expect(try parser.next() == nil)
        parser.append(Array("250 real\r\n".utf8))
        #expect(try parser.next() == SMTPClientReply(code: 250, lines: ["real"]))
    }

    @Test func replyText() {
        let reply = SMTPClientReply(code: 550, enhanced: "5.1.1", lines: ["No such", "user"])
        #expect(reply.text == "No such user")
        #expect(reply.description == "550 5.1.1 No such user")
        #expect(SMTPClientReply(code: 250, lines: [""]).description == "250")
    }

    @Test func extensions() {
        let reply = SMTPClientReply(code: 250, lines: [
            "mx.example.test greets you", "starttls", "SIZE 35882577", "PIPELINING", "8BITMIME", "SMTPUTF8",
            "AUTH PLAIN login", "AUTH=CRAM-MD5", "ENHANCEDSTATUSCODES", "CHUNKING", "", "X-UNKNOWN a b",
        ])
        let extensions = SMTPServerExtensions(ehloReply: reply)
        #expect(extensions.startTLS && extensions.pipelining && extensions.eightBitMIME && extensions.smtpUTF8)
        #expect(extensions.enhancedStatusCodes && extensions.chunking && extensions.sizeAnnounced)
        #expect(extensions.size == 35_882_577)
        #expect(extensions.authMechanisms == ["PLAIN", "LOGIN", "CRAM-MD5"])

        let bare = SMTPServerExtensions(ehloReply: SMTPClientReply(code: 250, lines: ["STARTTLS looks like a greeting", "SIZE"]))
        #expect(!bare.startTLS && bare.sizeAnnounced && bare.size == nil)
        #expect(SMTPServerExtensions(ehloReply: SMTPClientReply(code: 250, lines: ["x", "SIZE 0"])).size == nil)
        #expect(SMTPServerExtensions(ehloReply: SMTPClientReply(code: 250, lines: ["x", "SIZE -5"])).size == nil)
    }
}
