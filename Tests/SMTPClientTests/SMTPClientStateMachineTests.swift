import Testing
@testable import SMTPClient

/// Transcript tests: `S:` lines are the server's (fed through `SMTPReplyParser`), `S*:` lines
/// several reply lines in one segment (separated by ` | `), `C:` lines the commands the
/// machine must send, `A:` its other actions (connect, starttls, message, close). `E:` lines
/// feed events: `tls VERSION`, `tls-failed REASON`, `sent`, `timeout`, `session-timeout`,
/// `lost`, `connect-failed`.
struct Transcript {
    var machine: SMTPClientStateMachine
    var parser = SMTPReplyParser()
    var outcome: SMTPDeliveryOutcome?

    init(_ configuration: SMTPClientConfiguration, _ transaction: SMTPClientStateMachine.Transaction) {
        machine = SMTPClientStateMachine(configuration: configuration, transaction: transaction, remoteName: "mx.remote.test[192.0.2.1]:25")
    }

    @discardableResult
    mutating func run(_ script: String, sourceLocation: SourceLocation = #_sourceLocation) -> SMTPDeliveryOutcome? {
        var output: [String] = []
        func render(_ actions: [SMTPClientStateMachine.Action]) {
            for action in actions {
                switch action {
                case .connect: output.append("A: connect")
                case .send(let bytes):
                    output += String(decoding: bytes, as: UTF8.self).split(separator: "\r\n").map { "C: " + $0 }
                case .startTLS:
                    parser.reset()
                    output.append("A: starttls")
                case .sendMessage: output.append("A: message")
                case .close(let outcome):
                    self.outcome = outcome
                    output.append("A: close")
                }
            }
        }
        var expected: [String] = []
        for line in script.split(separator: "\n") {
            let text = line.drop { $0 == " " }
            if text == "start" {
                render(machine.start())
            } else if text.hasPrefix("S:") || text.hasPrefix("S*:") {
                // `S*:` is one segment of several lines, separated by ` | `.
                let segment = text.hasPrefix("S*:")
                    ? text.dropFirst(4).split(separator: " | ").map { $0 + "\r\n" }.joined()
                    : String(text.dropFirst(3)) + "\r\n"
                parser.append(Array(segment.utf8))
                do {
                    while let reply = try parser.next() { render(machine.receive(reply: reply)) }
                } catch {
                    render(machine.protocolViolation(reason: error.description))
                }
            } else if text.hasPrefix("E: ") {
                let event = text.dropFirst(3).split(separator: " ", maxSplits: 1).map(String.init)
                switch event[0] {
                case "tls": render(machine.tlsEstablished(protocolVersion: event.count > 1 ? event[1] : nil))
                case "tls-failed": render(machine.tlsFailed(reason: event.count > 1 ? event[1] : "failed"))
                case "sent": render(machine.messageSent())
                case "timeout": render(machine.timedOut())
                case "session-timeout": render(machine.timedOut(sessionLimit: true))
                case "lost": render(machine.connectionLost(reason: "connection reset"))
                case "connect-failed": render(machine.connectFailed(reason: "connection refused"))
                default: Issue.record("unknown event \(text)", sourceLocation: sourceLocation)
                }
            } else if !text.isEmpty {
                expected.append(String(text))
            }
        }
        #expect(output == expected, sourceLocation: sourceLocation)
        return outcome
    }
}

@Suite struct SMTPClientStateMachineTests {
    static let plain = SMTPClientConfiguration(heloName: "node1.example.test", tls: .none)
    static let opportunistic = SMTPClientConfiguration(heloName: "node1.example.test", tls: .opportunistic)
    static let required = SMTPClientConfiguration(heloName: "node1.example.test", tls: .required)
    static func transaction(_ recipients: [String] = ["a@remote.test", "b@remote.test"], size: Int = 100) -> SMTPClientStateMachine.Transaction {
        .init(sender: "alice@example.test", recipients: recipients, messageSize: size)
    }
    static let ok = SMTPClientReply(code: 250, enhanced: "2.0.0", lines: ["Ok: queued as 12345"])

    @Test func pipelinedDelivery() {
        var t = Transcript(Self.plain, Self.transaction(["a@remote.test", "nobody@remote.test", "b@remote.test"]))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx.remote.test ESMTP
            C: EHLO node1.example.test
            S: 250-mx.remote.test
            S: 250-PIPELINING
            S: 250-SIZE 10000
            S: 250-8BITMIME
            S: 250-ENHANCEDSTATUSCODES
            S: 250 CHUNKING
            C: MAIL FROM:<alice@example.test> SIZE=100
            C: RCPT TO:<a@remote.test>
            C: RCPT TO:<nobody@remote.test>
            C: RCPT TO:<b@remote.test>
            C: DATA
            S: 250 2.1.0 Ok
            S: 250 2.1.5 Ok
            S: 550 5.1.1 <nobody@remote.test>: Recipient address rejected
            S: 250 2.1.5 Ok
            S: 354 End data with <CR><LF>.<CR><LF>
            A: message
            E: sent
            S: 250 2.0.0 Ok: queued as 12345
            C: QUIT
            S: 221 2.0.0 Bye
            A: close
            """)
        #expect(outcome?.sessionFailure == nil)
        #expect(outcome?.recipients == [
            .delivered(Self.ok),
            .permanentFailure(SMTPClientReply(code: 550, enhanced: "5.1.1", lines: ["<nobody@remote.test>: Recipient address rejected"])),
            .delivered(Self.ok),
        ])
        #expect(outcome?.usedTLS == false)
        #expect(outcome?.transcriptSummary == "mx.remote.test[192.0.2.1]:25 plaintext: end of data: 250 2.0.0 Ok: queued as 12345")
    }

    @Test func lockStepDelivery() {
        var t = Transcript(Self.plain, Self.transaction())
        let outcome = t.run("""
            start
            A: connect
            S: 220-mx.remote.test ESMTP
            S: 220 no UCE
            C: EHLO node1.example.test
            S: 250 mx.remote.test
            C: MAIL FROM:<alice@example.test>
            S: 250 Ok
            C: RCPT TO:<a@remote.test>
            S: 450 4.2.0 Mailbox busy
            C: RCPT TO:<b@remote.test>
            S: 251 User not local; will forward
            C: DATA
            S: 354 go
            A: message
            E: sent
            S: 250 Ok
            C: QUIT
            E: lost
            A: close
            """)
        #expect(outcome?.recipients == [
            .temporaryFailure("RCPT TO refused by mx.remote.test[192.0.2.1]:25: 450 4.2.0 Mailbox busy"),
            .delivered(SMTPClientReply(code: 250, lines: ["Ok"])),
        ])
    }

    @Test func heloFallbackSendsNoExtensions() {
        var t = Transcript(Self.opportunistic, .init(sender: "", recipients: ["a@remote.test"], messageSize: 100, eightBit: true))
        let outcome = t.run("""
            start
            A: connect
            S: 220 old.remote.test
            C: EHLO node1.example.test
            S: 502 Command not implemented
            C: HELO node1.example.test
            S: 250 old.remote.test
            C: MAIL FROM:<>
            S: 250 ok
            C: RCPT TO:<a@remote.test>
            S: 250 ok
            C: DATA
            S: 354 go
            A: message
            E: sent
            S: 554 Transaction failed
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.recipients == [.permanentFailure(SMTPClientReply(code: 554, lines: ["Transaction failed"]))])
    }

    @Test func parametersForSMTPUTF8And8BitMIME() {
        var t = Transcript(Self.plain, .init(sender: "<>", recipients: ["jörg@bücher.test"], messageSize: 5000, eightBit: true))
        t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250-SIZE
            S: 250-8BITMIME
            S: 250 SMTPUTF8
            C: MAIL FROM:<> SIZE=5000 BODY=8BITMIME SMTPUTF8
            S: 250 ok
            C: RCPT TO:<jörg@bücher.test>
            """)
    }

    @Test func smtputf8RequiredButNotOffered() {
        var t = Transcript(Self.plain, .init(sender: "a@example.test", recipients: ["b@remote.test"], messageSize: 10, requireSMTPUTF8: true))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 8BITMIME
            C: QUIT
            S: 221 bye
            A: close
            """)
        let reply = SMTPClientReply(code: 554, enhanced: "5.6.7", lines: ["Remote host mx.remote.test[192.0.2.1]:25 does not support SMTPUTF8"])
        #expect(outcome?.sessionFailure?.isPermanent == true)
        #expect(outcome?.sessionFailure?.reply == reply)
        #expect(outcome?.recipients == [.permanentFailure(reply)])
    }

    @Test func messageTooBigForTheServer() {
        var t = Transcript(Self.plain, Self.transaction(size: 20_000))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 SIZE 10000
            C: QUIT
            E: timeout
            A: close
            """)
        #expect(outcome?.sessionFailure?.stage == .mailFrom)
        #expect(outcome?.sessionFailure?.reply?.code == 552)
        #expect(outcome?.sessionFailure?.reply?.enhanced == "5.3.4")
        #expect(outcome?.recipients.count == 2)
        #expect(outcome?.recipients.allSatisfy { if case .permanentFailure(let r) = $0 { r.code == 552 } else { false } } == true)
    }

    @Test func opportunisticTLSThenAuthPlain() {
        var configuration = Self.opportunistic
        configuration.credentials = SMTPClientCredentials(username: "relay", password: "secret")
        var t = Transcript(configuration, Self.transaction(["a@remote.test"]))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250-STARTTLS
            S: 250 AUTH PLAIN LOGIN
            C: STARTTLS
            S: 220 2.0.0 Ready to start TLS
            A: starttls
            E: tls TLSv1.3
            C: EHLO node1.example.test
            S: 250-mx
            S: 250-PIPELINING
            S: 250 AUTH LOGIN PLAIN
            C: AUTH PLAIN AHJlbGF5AHNlY3JldA==
            S: 235 2.7.0 Authentication successful
            C: MAIL FROM:<alice@example.test>
            C: RCPT TO:<a@remote.test>
            C: DATA
            S: 250 ok
            S: 250 ok
            S: 354 go
            A: message
            E: sent
            S: 250 2.0.0 Ok: queued as 12345
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.usedTLS == true)
        #expect(outcome?.recipients == [.delivered(Self.ok)])
        #expect(outcome?.transcriptSummary.contains("TLSv1.3") == true)
    }

    @Test func authLoginWhenOnlyLoginIsOffered() {
        var configuration = Self.plain
        configuration.credentials = SMTPClientCredentials(username: "relay", password: "secret")
        configuration.allowPlaintextAuth = true
        var t = Transcript(configuration, Self.transaction(["a@remote.test"]))
        t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 AUTH=LOGIN
            C: AUTH LOGIN
            S: 334 VXNlcm5hbWU6
            C: cmVsYXk=
            S: 334 UGFzc3dvcmQ6
            C: c2VjcmV0
            S: 235 ok
            C: MAIL FROM:<alice@example.test>
            """)
    }

    @Test func refusedAuthenticationIsTemporary() {
        var configuration = Self.required
        configuration.credentials = SMTPClientCredentials(username: "relay", password: "wrong")
        var t = Transcript(configuration, Self.transaction(["a@remote.test"]))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 STARTTLS
            C: STARTTLS
            S: 220 go
            A: starttls
            E: tls TLSv1.2
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 AUTH PLAIN
            C: AUTH PLAIN AHJlbGF5AHdyb25n
            S: 535 5.7.8 Authentication credentials invalid
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.sessionFailure?.isPermanent == false)
        #expect(outcome?.sessionFailure?.stage == .authentication)
        #expect(outcome?.recipients == [.temporaryFailure(outcome?.sessionFailure?.reason ?? "")])
    }

    @Test func credentialsAreNotSentWithoutTLS() {
        var configuration = Self.opportunistic
        configuration.credentials = SMTPClientCredentials(username: "relay", password: "secret")
        var t = Transcript(configuration, Self.transaction(["a@remote.test"]))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 AUTH PLAIN
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.sessionFailure?.stage == .authentication)
        #expect(outcome?.sessionFailure?.isPermanent == false)
    }

    @Test func requiredTLSNotOffered() {
        var t = Transcript(Self.required, Self.transaction())
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 PIPELINING
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.sessionFailure == SMTPSessionFailure(
            isPermanent: false, reason: "TLS is required but mx.remote.test[192.0.2.1]:25 does not offer STARTTLS", stage: .startTLS))
        #expect(outcome?.recipients == Array(repeating: .temporaryFailure("TLS is required but mx.remote.test[192.0.2.1]:25 does not offer STARTTLS"), count: 2))
    }

    @Test func opportunisticTLSRefusedGoesOnInPlaintext() {
        var t = Transcript(Self.opportunistic, Self.transaction(["a@remote.test"]))
        t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 STARTTLS
            C: STARTTLS
            S: 454 4.7.0 TLS not available
            C: MAIL FROM:<alice@example.test>
            """)
        var required = Transcript(Self.required, Self.transaction(["a@remote.test"]))
        let outcome = required.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 STARTTLS
            C: STARTTLS
            S: 454 4.7.0 TLS not available
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.sessionFailure?.stage == .startTLS)
    }

    @Test func failedHandshakeSaysARetryWithoutTLSMayWork() {
        var t = Transcript(Self.opportunistic, Self.transaction(["a@remote.test"]))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 STARTTLS
            C: STARTTLS
            S: 220 go
            A: starttls
            E: tls-failed certificate expired
            A: close
            """)
        #expect(outcome?.sessionFailure?.stage == .tlsHandshake)
        #expect(outcome?.sessionFailure?.isPermanent == false)
        #expect(outcome?.sessionFailure?.reason.contains("certificate expired") == true)
        #expect(outcome?.sessionFailure?.reason.contains("retry without TLS") == true)
    }

    @Test func repliesBufferedBeforeTheHandshakeAreDropped() {
        // The 220 and an injected reply arrive in one segment; the transcript's parser is
        // reset at `starttls` as the NIO edge does, so the injection is never read.
        var t = Transcript(Self.required, Self.transaction(["a@remote.test"]))
        t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 STARTTLS
            C: STARTTLS
            S*: 220 go | 250-mx | 250 AUTH PLAIN
            A: starttls
            E: tls TLSv1.3
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            """)
    }

    @Test func noRecipientAcceptedMeansNoData() {
        var t = Transcript(Self.plain, Self.transaction())
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 250 ok
            C: RCPT TO:<a@remote.test>
            S: 550 5.1.1 no
            C: RCPT TO:<b@remote.test>
            S: 452 4.2.2 full
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.sessionFailure == nil)
        #expect(outcome?.recipients == [
            .permanentFailure(SMTPClientReply(code: 550, enhanced: "5.1.1", lines: ["no"])),
            .temporaryFailure("RCPT TO refused by mx.remote.test[192.0.2.1]:25: 452 4.2.2 full"),
        ])
    }

    @Test func pipelinedDataAcceptedWithoutRecipientsSendsAnEmptyMessage() {
        var t = Transcript(Self.plain, Self.transaction(["a@remote.test"]))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 PIPELINING
            C: MAIL FROM:<alice@example.test>
            C: RCPT TO:<a@remote.test>
            C: DATA
            S: 250 ok
            S: 550 no
            S: 354 go
            C: .
            S: 554 no valid recipients
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.recipients == [.permanentFailure(SMTPClientReply(code: 550, lines: ["no"]))])
    }

    @Test func pipelinedMailRefused() {
        var t = Transcript(Self.plain, Self.transaction())
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 PIPELINING
            C: MAIL FROM:<alice@example.test>
            C: RCPT TO:<a@remote.test>
            C: RCPT TO:<b@remote.test>
            C: DATA
            S: 553 5.7.1 Sender rejected
            S: 503 5.5.1 need MAIL
            S: 250 ok
            S: 503 5.5.1 need RCPT
            C: QUIT
            S: 221 bye
            A: close
            """)
        let reply = SMTPClientReply(code: 553, enhanced: "5.7.1", lines: ["Sender rejected"])
        #expect(outcome?.sessionFailure?.reply == reply)
        #expect(outcome?.sessionFailure?.stage == .mailFrom)
        #expect(outcome?.recipients == [.permanentFailure(reply), .permanentFailure(reply)])
    }

    @Test func lockStepMailRefusedTemporarily() {
        var t = Transcript(Self.plain, Self.transaction())
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 451 4.3.0 try later
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.sessionFailure?.isPermanent == false)
        #expect(outcome?.sessionFailure?.reply?.code == 451)
    }

    @Test func negativeGreetings() {
        var refused = Transcript(Self.plain, Self.transaction())
        let outcome = refused.run("""
            start
            A: connect
            S: 554 5.7.1 No SMTP service here
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.sessionFailure?.isPermanent == true)
        #expect(outcome?.sessionFailure?.stage == .greeting)

        var busy = Transcript(Self.plain, Self.transaction())
        let closing = busy.run("""
            start
            A: connect
            S: 421 4.3.2 Too busy
            A: close
            """)
        #expect(closing?.sessionFailure?.isPermanent == false)
        #expect(closing?.sessionFailure?.reply?.code == 421)
    }

    @Test func closingReplyInTheMiddle() {
        var t = Transcript(Self.plain, Self.transaction())
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 250 ok
            C: RCPT TO:<a@remote.test>
            S: 550 no
            C: RCPT TO:<b@remote.test>
            S: 421 4.4.2 shutting down
            A: close
            """)
        #expect(outcome?.sessionFailure == nil)
        #expect(outcome?.recipients.first == .permanentFailure(SMTPClientReply(code: 550, lines: ["no"])))
        guard case .temporaryFailure(let reason) = outcome?.recipients.last else {
            Issue.record("expected a temporary failure")
            return
        }
        #expect(reason.contains("421 4.4.2 shutting down"))
    }

    @Test func outOfSequenceRepliesAreNeverBounced() {
        var t = Transcript(Self.plain, Self.transaction())
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 250 ok
            C: RCPT TO:<a@remote.test>
            S: 503 5.5.1 Error: need MAIL command
            C: RCPT TO:<b@remote.test>
            S: 250 ok
            C: DATA
            S: 503 5.5.1 Error: need RCPT command
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.recipients == [
            .temporaryFailure("RCPT TO refused by mx.remote.test[192.0.2.1]:25: 503 5.5.1 Error: need MAIL command"),
            .temporaryFailure("DATA refused by mx.remote.test[192.0.2.1]:25: 503 5.5.1 Error: need RCPT command"),
        ])
    }

    @Test func finalTemporaryFailure() {
        var t = Transcript(Self.plain, Self.transaction(["a@remote.test"]))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 250 ok
            C: RCPT TO:<a@remote.test>
            S: 250 ok
            C: DATA
            S: 354 go
            A: message
            E: sent
            S: 451 4.3.0 queue file write error
            C: QUIT
            S: 221 bye
            A: close
            """)
        #expect(outcome?.recipients == [.temporaryFailure("end of data refused by mx.remote.test[192.0.2.1]:25: 451 4.3.0 queue file write error")])
    }

    @Test func replyBeforeTheEndOfTheMessageStopsWithoutQuit() {
        var t = Transcript(Self.plain, Self.transaction(["a@remote.test"]))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 250 ok
            C: RCPT TO:<a@remote.test>
            S: 250 ok
            C: DATA
            S: 354 go
            A: message
            S: 550 5.3.0 Error: aborted
            A: close
            """)
        #expect(outcome?.recipients == [.permanentFailure(SMTPClientReply(code: 550, enhanced: "5.3.0", lines: ["Error: aborted"]))])
    }

    @Test func lostConnectionAfterTheMessageIsTemporary() {
        var t = Transcript(Self.plain, Self.transaction(["a@remote.test"]))
        let outcome = t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 250 ok
            C: RCPT TO:<a@remote.test>
            S: 250 ok
            C: DATA
            S: 354 go
            A: message
            E: sent
            E: lost
            A: close
            """)
        #expect(outcome?.sessionFailure == nil)
        #expect(outcome?.recipients == [.temporaryFailure(
            "connection to mx.remote.test[192.0.2.1]:25 lost waiting for the reply to the end of data: connection reset")])
    }

    @Test func protocolViolations() {
        var mismatched = Transcript(Self.plain, Self.transaction())
        let outcome = mismatched.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 550 PIPELINING
            A: close
            """)
        #expect(outcome?.sessionFailure?.isPermanent == false)
        #expect(outcome?.sessionFailure?.stage == .hello)
        #expect(outcome?.sessionFailure?.reason.contains("protocol violation") == true)

        var unexpected = Transcript(Self.plain, Self.transaction())
        unexpected.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 354 what
            A: close
            """)

        var overlong = Transcript(Self.plain, Self.transaction())
        let long = overlong.run("start\nA: connect\nS: 220 " + String(repeating: "x", count: 3000) + "\nA: close")
        #expect(long?.sessionFailure?.reason.contains("longer than 2048") == true)
    }

    @Test func timeouts() {
        var greeting = Transcript(Self.plain, Self.transaction())
        #expect(greeting.machine.timeout == nil)
        greeting.run("start\nA: connect")
        #expect(greeting.machine.timeout == .seconds(300))
        let outcome = greeting.run("E: timeout\nA: close")
        #expect(outcome?.sessionFailure == SMTPSessionFailure(
            isPermanent: false, reason: "timeout 300 s exceeded at mx.remote.test[192.0.2.1]:25 waiting for the greeting", stage: .greeting))

        // Each wait has its own RFC 5321 §4.5.3.2 limit; once decided, QUIT is not waited for long.
        var t = Transcript(Self.plain, Self.transaction(["a@remote.test"]))
        t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250-mx
            S: 250 PIPELINING
            C: MAIL FROM:<alice@example.test>
            C: RCPT TO:<a@remote.test>
            C: DATA
            """)
        #expect(t.machine.timeout == .seconds(300))
        t.run("S: 250 ok\nS: 250 ok")
        #expect(t.machine.timeout == .seconds(120))
        t.run("S: 354 go\nA: message")
        #expect(t.machine.timeout == .seconds(180))
        t.run("E: sent")
        #expect(t.machine.timeout == .seconds(600))
        t.run("S: 250 ok\nC: QUIT")
        #expect(t.machine.timeout == .seconds(5))
        let delivered = t.run("E: timeout\nA: close")
        #expect(delivered?.recipients == [.delivered(SMTPClientReply(code: 250, lines: ["ok"]))])
        #expect(t.machine.timeout == nil)
        t.run("S: 221 late\nE: lost\nA: close")

        var slow = Transcript(Self.plain, Self.transaction(["a@remote.test"]))
        let limited = slow.run("start\nA: connect\nS: 220 mx\nC: EHLO node1.example.test\nE: session-timeout\nA: close")
        #expect(limited?.sessionFailure?.reason.hasPrefix("session time limit 1800 s exceeded") == true)
    }

    @Test func connectFailure() {
        var t = Transcript(Self.plain, Self.transaction())
        let outcome = t.run("start\nA: connect\nE: connect-failed\nA: close")
        #expect(outcome?.sessionFailure?.stage == .connect)
        #expect(outcome?.sessionFailure?.isPermanent == false)
        #expect(outcome?.recipients.count == 2)
    }

    @Test(arguments: [
        "a@remote.test>\r\nRCPT TO:<evil@x.test", "a@remote.test\r\nDATA", "a\0@remote.test", "a@remote.test\n",
        "<a@remote.test>", "a b@remote.test", "", "\"unterminated@remote.test", "a@remote.test\u{7f}",
    ])
    func refusesInjectionInRecipients(recipient: String) {
        var t = Transcript(Self.plain, Self.transaction(["ok@remote.test", recipient]))
        t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 250 ok
            C: RCPT TO:<ok@remote.test>
            S: 250 ok
            C: DATA
            """)
        #expect(t.machine.transaction.recipients[1] == recipient)
        let outcome = t.run("S: 354 go\nA: message\nE: sent\nS: 250 ok\nC: QUIT\nS: 221 bye\nA: close")
        #expect(outcome?.recipients.last == .permanentFailure(SMTPClientReply(code: 553, enhanced: "5.1.3", lines: ["Bad destination mailbox address syntax"])))
    }

    @Test func quotedSpacesAreAllowed() {
        var t = Transcript(Self.plain, Self.transaction(["\"odd user\"@remote.test", "\"a\\\" b\"@remote.test"]))
        t.run("""
            start
            A: connect
            S: 220 mx
            C: EHLO node1.example.test
            S: 250 mx
            C: MAIL FROM:<alice@example.test>
            S: 250 ok
            C: RCPT TO:<"odd user"@remote.test>
            S: 250 ok
            C: RCPT TO:<"a\\" b"@remote.test>
            """)
    }

    @Test func badSenderOrNoValidRecipientNeverConnects() {
        var sender = Transcript(Self.plain, .init(sender: "a@x.test> NOTIFY=NEVER", recipients: ["b@remote.test"], messageSize: 1))
        let refused = sender.run("start\nA: close")
        #expect(refused?.sessionFailure?.stage == .local)
        #expect(refused?.sessionFailure?.isPermanent == true)
        #expect(refused?.recipients == [.permanentFailure(SMTPClientReply(code: 553, enhanced: "5.1.7", lines: ["Bad sender address syntax"]))])

        var recipients = Transcript(Self.plain, Self.transaction(["x\r\n@remote.test"]))
        let none = recipients.run("start\nA: close")
        #expect(none?.sessionFailure == nil)
        #expect(none?.recipients.count == 1)

        var empty = Transcript(Self.plain, Self.transaction([]))
        #expect(empty.run("start\nA: close")?.recipients == [])

        var badName = Transcript(SMTPClientConfiguration(heloName: "node 1\r\nMAIL", tls: .none), Self.transaction())
        #expect(badName.run("start\nA: close")?.sessionFailure?.stage == .local)
    }

    @Test func base64() {
        #expect(SMTPClientStateMachine.base64([]) == "")
        #expect(SMTPClientStateMachine.base64(Array("f".utf8)) == "Zg==")
        #expect(SMTPClientStateMachine.base64(Array("fo".utf8)) == "Zm8=")
        #expect(SMTPClientStateMachine.base64(Array("foo".utf8)) == "Zm9v")
        #expect(SMTPClientStateMachine.base64(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(SMTPClientStateMachine.base64([0, 0xff, 0xfe]) == "AP/+")
    }
}
