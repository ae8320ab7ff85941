import Foundation
import Testing
@testable import SMTP

/// Transcript tests: `C:` lines are fed to the session, `S:` lines are the replies expected,
/// `A:` lines name the other actions; `R:` feeds a result back (accept / reject / ok / fail / stored).
struct Transcript {
    var session: SMTPSession
    var stored: [SMTPSession.Transaction] = []
    var closed = false

    init(_ configuration: SMTPSession.Configuration) {
        session = SMTPSession(configuration: configuration)
    }

    mutating func run(_ script: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var output: [String] = []
        func render(_ actions: [SMTPSession.Action]) {
            for action in actions {
                switch action {
                case .send(let reply):
                    output += reply.encoded().split(separator: "\r\n").map { "S: " + $0 }
                case .startTLS: output.append("A: starttls")
                // Senders are accepted at once here; refusals have their own tests.
                case .checkSender: render(session.senderChecked(nil))
                case .checkRecipient(let mailbox): output.append("A: check \(mailbox)")
                case .authenticate(let user, let password): output.append("A: auth \(user) \(password)")
                case .store(let transaction):
                    stored.append(transaction)
                    output.append("A: store \(transaction.recipients.count) rcpt \(transaction.message.count) bytes")
                case .close:
                    closed = true
                    output.append("A: close")
                }
            }
        }
        var expected: [String] = []
        for line in script.split(separator: "\n", omittingEmptySubsequences: true) {
            let text = String(line.trimmingCharacters(in: .whitespaces))
            if text == "C:" || text.hasPrefix("C: ") {
                render(session.receive(Array((String(text.dropFirst(3)) + "\r\n").utf8)))
            } else if text == "connect" {
                render(session.start())
            } else if text.hasPrefix("R: ") {
                switch String(text.dropFirst(3)) {
                case "accept": render(session.recipientChecked(.accept))
                case "reject": render(session.recipientChecked(.reject(SMTPReply(550, "5.1.1", "No such user"))))
                case "ok": render(session.authenticationFinished(success: true))
                case "fail": render(session.authenticationFinished(success: false))
                case "stored": render(session.transactionStored(failure: nil))
                case "tls": render(session.tlsStarted())
                default: Issue.record("unknown result \(text)", sourceLocation: sourceLocation)
                }
            } else {
                expected.append(text)
            }
        }
        #expect(output == expected, sourceLocation: sourceLocation)
    }
}

@Suite struct SMTPSessionTests {
    let mx = SMTPSession.Configuration(hostname: "mx.example.test", maxMessageSize: 1000, maxErrors: 5)
    var submission: SMTPSession.Configuration {
        SMTPSession.Configuration(hostname: "mx.example.test", isSubmission: true, tlsAvailable: true, maxMessageSize: 1000)
    }

    @Test func inboundDelivery() {
        var t = Transcript(mx)
        t.run("""
            connect
            S: 220 mx.example.test ESMTP Service Package
            C: EHLO client.test
            S: 250-mx.example.test
            S: 250-PIPELINING
            S: 250-SIZE 1000
            S: 250-8BITMIME
            S: 250-SMTPUTF8
            S: 250-ENHANCEDSTATUSCODES
            S: 250 CHUNKING
            C: MAIL FROM:<bob@remote.test> SIZE=20
            S: 250 2.1.0 Sender OK
            C: RCPT TO:<alice@example.test>
            A: check alice@example.test
            R: accept
            S: 250 2.1.5 Recipient OK
            C: RCPT TO:<nobody@example.test>
            A: check nobody@example.test
            R: reject
            S: 550 5.1.1 No such user
            C: DATA
            S: 354 End data with <CR><LF>.<CR><LF>
            C: Subject: hi
            C:
            C: ..dot
            C: .
            A: store 1 rcpt 21 bytes
            R: stored
            S: 250 2.0.0 Message accepted for delivery
            C: QUIT
            S: 221 2.0.0 Bye
            A: close
            """)
        #expect(t.stored.first?.message == Array("Subject: hi\r\n\r\n.dot\r\n".utf8))
        #expect(t.stored.first?.sender?.description == "bob@remote.test")
        #expect(t.closed)
    }

    @Test func pipelinedCommandsWaitForEachResult() {
        var session = SMTPSession(configuration: mx)
        _ = session.start()
        _ = session.receive(Array("EHLO c\r\n".utf8))
        let burst = "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"
        #expect(session.receive(Array(burst.utf8)) == [.checkSender(SMTPMailbox(localPart: "a", domain: "x.test"))])
        #expect(session.senderChecked(nil) == [.send(SMTPReply(250, "2.1.0", "Sender OK")), .checkRecipient(SMTPMailbox(localPart: "b", domain: "example.test"))])
        #expect(session.recipientChecked(.accept) == [.send(SMTPReply(250, "2.1.5", "Recipient OK")), .checkRecipient(SMTPMailbox(localPart: "c", domain: "example.test"))])
        let afterSecond = session.recipientChecked(.accept)
        #expect(afterSecond.count == 3)
        guard case .store(let transaction) = afterSecond.last else {
            Issue.record("no store")
            return
        }
        #expect(transaction.recipients.count == 2 && transaction.message == Array("hi\r\n".utf8))
        #expect(session.transactionStored(failure: nil) == [
            .send(SMTPReply(250, "2.0.0", "Message accepted for delivery")), .send(SMTPReply(221, "2.0.0", "Bye")), .close,
        ])
    }

    @Test func sequenceErrorsAndGarbageEndInClose() {
        var t = Transcript(mx)
        t.run("""
            connect
            S: 220 mx.example.test ESMTP Service Package
            C: MAIL FROM:<a@x.test>
            S: 503 5.5.1 Bad sequence of commands
            C: HELO c
            S: 250 mx.example.test
            C: RCPT TO:<b@example.test>
            S: 503 5.5.1 Bad sequence of commands
            C: DATA
            S: 503 5.5.1 Bad sequence of commands
            C: GARBAGE
            S: 500 5.5.1 Command not recognized
            C: MAIL FROM:<a@x.test> SIZE=5000
            S: 552 5.3.4 Message size exceeds the maximum of 1000 bytes
            C: MAIL FROM:<a@x.test> FOO=1
            S: 555 5.5.4 Unsupported parameter FOO
            S: 421 4.7.0 Too many errors, closing connection
            A: close
            """)
    }

    @Test func smugglingPayloadIsRefusedAndSessionStaysInSync() {
        var t = Transcript(mx)
        t.run("""
            connect
            S: 220 mx.example.test ESMTP Service Package
            C: HELO c
            S: 250 mx.example.test
            C: MAIL FROM:<a@x.test>
            S: 250 2.1.0 Sender OK
            C: RCPT TO:<b@example.test>
            A: check b@example.test
            R: accept
            S: 250 2.1.5 Recipient OK
            C: DATA
            S: 354 End data with <CR><LF>.<CR><LF>
            """)
        let payload = "Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@x.test>\nRCPT TO:<b@example.test>\nDATA\nsmuggled\r\n.\r\n"
        let actions = t.session.receive(Array(payload.utf8))
        #expect(actions == [.send(SMTPReply(554, "5.6.0", "Message contains a bare CR or LF (RFC 5321 section 2.3.8); not accepted"))])
        t.run("""
            C: NOOP
            S: 250 2.0.0 OK
            """)
        #expect(t.stored.isEmpty)
    }

    @Test func submissionRequiresTLSThenAuth() {
        var t = Transcript(submission)
        t.run("""
            connect
            S: 220 mx.example.test ESMTP Service Package
            C: EHLO c
            S: 250-mx.example.test
            S: 250-PIPELINING
            S: 250-SIZE 1000
            S: 250-8BITMIME
            S: 250-SMTPUTF8
            S: 250-ENHANCEDSTATUSCODES
            S: 250-CHUNKING
            S: 250 STARTTLS
            C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
            S: 503 5.5.1 Use STARTTLS first
            C: MAIL FROM:<alice@example.test>
            S: 530 5.7.0 Authentication required
            C: STARTTLS
            S: 220 2.0.0 Ready to start TLS
            A: starttls
            R: tls
            C: EHLO c
            S: 250-mx.example.test
            S: 250-PIPELINING
            S: 250-SIZE 1000
            S: 250-8BITMIME
            S: 250-SMTPUTF8
            S: 250-ENHANCEDSTATUSCODES
            S: 250-CHUNKING
            S: 250 AUTH PLAIN LOGIN
            C: AUTH PLAIN AGFsaWNlAHdyb25n
            A: auth alice wrong
            R: fail
            S: 535 5.7.8 Authentication credentials invalid
            C: AUTH LOGIN
            S: 334 VXNlcm5hbWU6
            C: YWxpY2U=
            S: 334 UGFzc3dvcmQ6
            C: c2VjcmV0
            A: auth alice secret
            R: ok
            S: 235 2.7.0 Authentication successful
            C: MAIL FROM:<alice@example.test>
            S: 250 2.1.0 Sender OK
            """)
        #expect(t.session.authenticatedUser == "alice")
    }

    @Test func chunkingWithBDAT() {
        var session = SMTPSession(configuration: mx)
        _ = session.start()
        _ = session.receive(Array("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@example.test>\r\n".utf8))
        _ = session.senderChecked(nil)
        _ = session.recipientChecked(.accept)
        #expect(session.receive(Array("BDAT 5\r\nhel".utf8)) == [])
        #expect(session.receive(Array("lo".utf8)) == [.send(SMTPReply(250, "2.0.0", "5 octets received"))])
        let last = session.receive(Array("BDAT 3 LAST\r\n\r\nx".utf8))
        guard case .store(let transaction) = last.first else {
            Issue.record("no store: \(last)")
            return
        }
        #expect(transaction.message == Array("hello\r\nx".utf8))
    }

    @Test func oversizeBDATIsRefused() {
        var session = SMTPSession(configuration: mx)
        _ = session.start()
        _ = session.receive(Array("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@example.test>\r\n".utf8))
        _ = session.senderChecked(nil)
        _ = session.recipientChecked(.accept)
        let big = [UInt8](repeating: 0x61, count: 1500)
        let actions = session.receive(Array("BDAT 1500 LAST\r\n".utf8) + big)
        #expect(actions == [.send(SMTPReply(552, "5.3.4", "Message exceeds the maximum size of 1000 bytes"))])
    }

    @Test func unterminatedHugeCommandLineCloses() {
        var session = SMTPSession(configuration: mx)
        _ = session.start()
        let actions = session.receive([UInt8](repeating: 0x41, count: 100_000))
        #expect(actions.last == .close)
    }

    @Test func refusedSenderLeavesNoTransaction() {
        var session = SMTPSession(configuration: mx)
        _ = session.start()
        _ = session.receive(Array("EHLO c\r\n".utf8))
        let burst = "MAIL FROM:<a@x.test> SMTPUTF8 BODY=8BITMIME\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
        #expect(session.receive(Array(burst.utf8)) == [.checkSender(SMTPMailbox(localPart: "a", domain: "x.test"))])
        let limited = SMTPReply(450, "4.7.1", "Rate limit exceeded")
        // The pipelined RCPT and DATA that follow a refused MAIL are sequence errors.
        #expect(session.senderChecked(limited) == [
            .send(limited), .send(SMTPReply(503, "5.5.1", "Bad sequence of commands")),
            .send(SMTPReply(503, "5.5.1", "Bad sequence of commands")),
        ])
        _ = session.receive(Array("MAIL FROM:<a@x.test> SMTPUTF8 BODY=8BITMIME\r\nRCPT TO:<b@example.test>\r\n".utf8))
        _ = session.senderChecked(nil)
        _ = session.recipientChecked(.accept)
        guard case .store(let transaction) = session.receive(Array("DATA\r\n".utf8) + Array("x\r\n.\r\n".utf8)).last else {
            Issue.record("no store")
            return
        }
        #expect(transaction.requiresSMTPUTF8 && transaction.eightBit)
    }
}
