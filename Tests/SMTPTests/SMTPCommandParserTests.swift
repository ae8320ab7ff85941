import Testing
@testable import SMTP

@Suite struct SMTPCommandParserTests {
    let parser = SMTPCommandParser()

    func parse(_ line: String) -> Result<SMTPCommand, SMTPSyntaxError> { parser.parse(Array(line.utf8)) }

    @Test(arguments: [
        ("EHLO client.example", SMTPCommand.ehlo("client.example")),
        ("helo x", .helo("x")),
        ("MAIL FROM:<a@x.test>", .mail(from: SMTPMailbox(localPart: "a", domain: "x.test"), parameters: [])),
        ("mail from:<>", .mail(from: nil, parameters: [])),
        ("MAIL FROM: <a@x.test> SIZE=1000 BODY=8BITMIME SMTPUTF8",
         .mail(from: SMTPMailbox(localPart: "a", domain: "x.test"),
               parameters: [SMTPParameter("SIZE", "1000"), SMTPParameter("BODY", "8BITMIME"), SMTPParameter("SMTPUTF8")])),
        ("MAIL FROM:<@relay.test,@b.test:a@x.test>", .mail(from: SMTPMailbox(localPart: "a", domain: "x.test"), parameters: [])),
        ("RCPT TO:<\"odd user\"@x.test>", .rcpt(to: SMTPMailbox(localPart: "\"odd user\"", domain: "x.test"), parameters: [])),
        ("RCPT TO:<Postmaster>", .rcpt(to: SMTPMailbox(localPart: "Postmaster", domain: ""), parameters: [])),
        ("RCPT TO:<jörg@bücher.test>", .rcpt(to: SMTPMailbox(localPart: "jörg", domain: "bücher.test"), parameters: [])),
        ("RCPT TO:<a@[192.0.2.1]>", .rcpt(to: SMTPMailbox(localPart: "a", domain: "[192.0.2.1]"), parameters: [])),
        ("DATA", .data), ("BDAT 100", .bdat(size: 100, last: false)), ("BDAT 0 LAST", .bdat(size: 0, last: true)),
        ("RSET", .rset), ("NOOP anything", .noop), ("QUIT", .quit), ("STARTTLS", .startTLS), ("HELP", .help),
        ("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", .auth(mechanism: "PLAIN", initialResponse: "dGVzdAB0ZXN0AHRlc3Q=")),
        ("auth login", .auth(mechanism: "LOGIN", initialResponse: nil)),
    ])
    func parsesValidCommands(line: String, expected: SMTPCommand) {
        #expect(parse(line) == .success(expected))
    }

    @Test(arguments: [
        "FOO bar", "MAIL TO:<a@x.test>", "MAIL FROM:a@x.test", "MAIL FROM:<a@x.test", "RCPT TO:<>",
        "RCPT TO:<a>", "RCPT TO:<@x.test>", "RCPT TO:<a..b@x.test>", "RCPT TO:<a@-x.test>", "RCPT TO:<a@x..test>",
        "DATA now", "QUIT please", "BDAT", "BDAT x", "BDAT 10 FIRST", "BDAT 99999999999999999999",
        "EHLO", "MAIL FROM:<a@x.test> SIZE=", "MAIL FROM:<a@x.test> BAD!KEY=1", "AUTH", "AUTH PL(AIN",
        "RCPT TO:<" + String(repeating: "a", count: 65) + "@x.test>",
    ])
    func refusesMalformedCommands(line: String) {
        guard case .failure(let error) = parse(line) else {
            Issue.record("accepted \(line)")
            return
        }
        #expect([500, 501].contains(error.reply.code))
    }

    @Test func refusesControlCharactersAndHugeLines() {
        #expect(parser.parse(Array("MAIL FROM:<a@x.test>\0".utf8)) == .failure(.invalidCharacters))
        #expect(parser.parse(Array("RCPT TO:<a@x.test>\rRCPT TO:<b@x.test>".utf8)) == .failure(.invalidCharacters))
        #expect(parser.parse([0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xff]) == .failure(.invalidCharacters))
        #expect(parser.parse(Array(repeating: 0x41, count: 10_000)) == .failure(.lineTooLong))
    }

    @Test func replyWireFormat() {
        let reply = SMTPReply(code: 250, enhanced: "2.0.0", lines: ["first", "last"])
        #expect(reply.encoded() == "250-2.0.0 first\r\n250 2.0.0 last\r\n")
        #expect(SMTPReply(354, nil, "go ahead").encoded() == "354 go ahead\r\n")
    }
}
