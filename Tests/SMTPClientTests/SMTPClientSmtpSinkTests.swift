import Foundation
import NIOPosix
import Testing
@testable import SMTPClient

/// End-to-end against a real SMTP server: Postfix's smtp-sink (Debian package postfix).
/// Skipped where it is not installed.
@Suite(.enabled(if: SmtpSink.isInstalled, "needs /usr/sbin/smtp-sink (Debian package postfix)"))
struct SMTPClientSmtpSinkTests {
    static func client(_ configure: (inout SMTPClientConfiguration) -> Void = { _ in }) -> SMTPClient {
        var configuration = SMTPClientConfiguration(heloName: "node1.example.test", tls: .opportunistic)
        configure(&configuration)
        return SMTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration, logger: TestSupport.logger)
    }

    static let message = TestSupport.message("""
        From: alice@example.test
        To: bob@remote.test
        Subject: test

        .hidden line
        ..two dots
        .
        last line
        """)

    static func deliver(
        _ sink: SmtpSink, client: SMTPClient = client(), recipients: [String] = ["bob@remote.test", "carol@remote.test"],
        message: [UInt8] = message, requireSMTPUTF8: Bool = false, eightBit: Bool = false
    ) async -> SMTPDeliveryOutcome {
        await deliver(port: sink.port, client: client, recipients: recipients, message: message, requireSMTPUTF8: requireSMTPUTF8, eightBit: eightBit)
    }

    static func deliver(
        port: Int, client: SMTPClient = client(), recipients: [String] = ["bob@remote.test", "carol@remote.test"],
        message: [UInt8] = message, requireSMTPUTF8: Bool = false, eightBit: Bool = false
    ) async -> SMTPDeliveryOutcome {
        await client.deliver(
            host: "localhost", address: "127.0.0.1", port: port, sender: "alice@example.test", recipients: recipients,
            message: message, requireSMTPUTF8: requireSMTPUTF8, eightBit: eightBit)
    }

    static func isDelivered(_ outcome: SMTPRecipientOutcome) -> Bool {
        if case .delivered = outcome { true } else { false }
    }

    @Test(arguments: [[], ["-p"]])
    func deliversPipelinedOrLockStep(options: [String]) async throws {
        let sink = try await SmtpSink.start(options, dump: true)
        defer { sink.stop() }
        let outcome = await Self.deliver(sink, recipients: ["bob@remote.test", "bad\r\nRSET@remote.test", "carol@remote.test"], eightBit: true)
        #expect(outcome.sessionFailure == nil)
        #expect(outcome.usedTLS == false)
        #expect(outcome.recipients.count == 3)
        #expect(Self.isDelivered(outcome.recipients[0]) && Self.isDelivered(outcome.recipients[2]))
        #expect(outcome.recipients[1] == .permanentFailure(SMTPClientReply(code: 553, enhanced: "5.1.3", lines: ["Bad destination mailbox address syntax"])))
        #expect(outcome.transcriptSummary.hasPrefix("localhost[127.0.0.1]:\(sink.port) plaintext: end of data: 250"))

        let dump = try #require(try await sink.dumps(count: 1).first)
        #expect(dump.contains("X-Helo-Args: node1.example.test\n"))
        #expect(dump.contains("X-Mail-Args: <alice@example.test> BODY=8BITMIME\n"))
        #expect(dump.contains("X-Rcpt-Args: <bob@remote.test>\nX-Rcpt-Args: <carol@remote.test>\n"))
        // The server removed the stuffing: the text is as we had it.
        #expect(dump.contains("\nSubject: test\n\n.hidden line\n..two dots\n.\nlast line\n"))
    }

    @Test func nullSenderAndMessageWithoutFinalNewline() async throws {
        let sink = try await SmtpSink.start(dump: true)
        defer { sink.stop() }
        let outcome = await Self.client().deliver(
            host: "localhost", address: "127.0.0.1", port: sink.port, sender: "", recipients: ["postmaster@remote.test"],
            message: Array("Subject: bounce\r\n\r\nno newline at the end".utf8), requireSMTPUTF8: false, eightBit: false)
        #expect(outcome.recipients.allSatisfy(Self.isDelivered))
        let dump = try #require(try await sink.dumps(count: 1).first)
        #expect(dump.contains("X-Mail-Args: <>\n"))
        #expect(dump.contains("\nno newline at the end\n"))
    }

    /// Each smtp-sink option makes it refuse at one stage.
    @Test(arguments: [
        (["-f", "rcpt"], "every recipient refused permanently"),
        (["-r", "rcpt"], "every recipient refused temporarily"),
        (["-r", "mail"], "MAIL refused temporarily"),
        (["-f", "mail"], "MAIL refused permanently"),
        (["-f", "connect"], "greeting refused"),
        (["-r", "ehlo"], "EHLO refused temporarily"),
        (["-f", "ehlo"], "EHLO refused: HELO instead"),
        (["-f", "data"], "DATA refused"),
        (["-Q", "data"], "421 at DATA"),
        (["-f", "."], "message refused"),
        (["-r", "."], "message deferred"),
        (["-q", "."], "disconnect after the message"),
        (["-A", "0"], "abort after DATA"),
        (["-q", "ehlo"], "disconnect at EHLO"),
    ])
    func refusalsAtEachStage(options: [String], label: String) async throws {
        let sink = try await SmtpSink.start(options)
        defer { sink.stop() }
        let outcome = await Self.deliver(sink)
        func all(_ check: (SMTPRecipientOutcome) -> Bool) -> Bool { outcome.recipients.count == 2 && outcome.recipients.allSatisfy(check) }
        let permanent = { (result: SMTPRecipientOutcome) in if case .permanentFailure = result { true } else { false } }
        let temporary = { (result: SMTPRecipientOutcome) in if case .temporaryFailure = result { true } else { false } }
        switch options {
        case ["-f", "rcpt"], ["-f", "data"], ["-f", "."], ["-A", "0"]:
            #expect(outcome.sessionFailure == nil, "\(label)")
            #expect(all(permanent), "\(label)")
        case ["-r", "rcpt"], ["-Q", "data"], ["-r", "."], ["-q", "."]:
            #expect(outcome.sessionFailure == nil, "\(label)")
            #expect(all(temporary), "\(label)")
        case ["-r", "mail"]:
            #expect(outcome.sessionFailure?.stage == .mailFrom)
            #expect(outcome.sessionFailure?.isPermanent == false)
            #expect(outcome.sessionFailure?.reply?.code == 450)
            #expect(all(temporary))
        case ["-f", "mail"]:
            #expect(outcome.sessionFailure?.stage == .mailFrom)
            #expect(outcome.sessionFailure?.isPermanent == true)
            #expect(all(permanent))
        case ["-f", "connect"]:
            #expect(outcome.sessionFailure?.stage == .greeting)
            #expect(outcome.sessionFailure?.isPermanent == true)
        case ["-r", "ehlo"]:
            #expect(outcome.sessionFailure?.stage == .hello)
            #expect(outcome.sessionFailure?.isPermanent == false)
        case ["-f", "ehlo"]:
            #expect(outcome.sessionFailure == nil)
            #expect(all(Self.isDelivered))
        case ["-q", "ehlo"]:
            #expect(outcome.sessionFailure?.stage == .hello)
            #expect(outcome.sessionFailure?.reason.contains("lost") == true)
            #expect(all(temporary))
        default:
            Issue.record("no expectation for \(label)")
        }
    }

    @Test func smtputf8RequiredButNotOffered() async throws {
        let sink = try await SmtpSink.start()
        defer { sink.stop() }
        let outcome = await Self.deliver(sink, recipients: ["jörg@bücher.test"])
        #expect(outcome.sessionFailure?.isPermanent == true)
        #expect(outcome.sessionFailure?.reply?.enhanced == "5.6.7")
    }

    @Test func authPlainWhenPlaintextIsAllowed() async throws {
        let sink = try await SmtpSink.start()
        defer { sink.stop() }
        let client = Self.client {
            $0.credentials = SMTPClientCredentials(username: "relay", password: "secret")
            $0.allowPlaintextAuth = true
        }
        let outcome = await Self.deliver(sink, client: client)
        #expect(outcome.sessionFailure == nil)
        #expect(outcome.recipients.allSatisfy(Self.isDelivered))

        // Without permission, credentials never cross in plaintext: the mail waits.
        let careful = Self.client { $0.credentials = SMTPClientCredentials(username: "relay", password: "secret") }
        let refused = await Self.deliver(sink, client: careful)
        #expect(refused.sessionFailure?.stage == .authentication)
        #expect(refused.sessionFailure?.isPermanent == false)
    }

    @Test func requiredTLSIsNotOffered() async throws {
        let sink = try await SmtpSink.start()
        defer { sink.stop() }
        let outcome = await Self.deliver(sink, client: Self.client { $0.tls = .required })
        #expect(outcome.sessionFailure?.stage == .startTLS)
        #expect(outcome.sessionFailure?.isPermanent == false)
    }

    /// A server that stops reading (small TCP window, slow first read) makes the client wait
    /// for writability; a large message still arrives whole.
    @Test func largeMessageWithBackpressure() async throws {
        let sink = try await SmtpSink.start(["-T", "4096", "-H", "1"], dump: true)
        defer { sink.stop() }
        var text = "Subject: big\r\n\r\n"
        for index in 0..<60_000 { text += index % 7 == 0 ? ".dotted line \(index)\r\n" : "line \(index) of a large message\r\n" }
        let message = Array(text.utf8)
        #expect(message.count > 1_500_000)
        let outcome = await Self.deliver(sink, recipients: ["bob@remote.test"], message: message)
        #expect(outcome.recipients.allSatisfy(Self.isDelivered))
        let dump = try #require(try await sink.dumps(count: 1).first)
        #expect(dump.contains("\n.dotted line 59997\nline 59998 of a large message\nline 59999 of a large message\n\n"))
        #expect(dump.contains("\nline 1 of a large message\n"))
    }

    @Test func slowServerTimesOut() async throws {
        // Lock-step (-p): with -W, smtp-sink answers pipelined commands out of order.
        let sink = try await SmtpSink.start(["-p", "-W", "rcpt:5"])
        defer { sink.stop() }
        let started = ContinuousClock.now
        let outcome = await Self.deliver(sink, client: Self.client { $0.commandTimeout = .milliseconds(500) })
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(outcome.recipients.count == 2)
        guard case .temporaryFailure(let reason) = outcome.recipients.first else {
            Issue.record("expected a temporary failure, got \(outcome.recipients)")
            return
        }
        #expect(reason.contains("timeout"))
    }

    @Test func sessionTimeLimit() async throws {
        let sink = try await SmtpSink.start(["-W", "ehlo:5"])
        defer { sink.stop() }
        let started = ContinuousClock.now
        let outcome = await Self.deliver(sink, client: Self.client { $0.sessionTimeout = .milliseconds(500) })
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(outcome.sessionFailure?.reason.contains("session time limit") == true)
    }

    @Test func connectionRefused() async throws {
        let port = try await TestSupport.freePort()
        let outcome = await Self.client().deliver(
            host: "mx.remote.test", address: "127.0.0.1", port: port, sender: "a@example.test", recipients: ["b@remote.test"],
            message: Self.message, requireSMTPUTF8: false, eightBit: false)
        #expect(outcome.sessionFailure?.stage == .connect)
        #expect(outcome.sessionFailure?.isPermanent == false)
        #expect(outcome.recipients.count == 1)
    }

    @Test func cancellationEndsTheSession() async throws {
        let sink = try await SmtpSink.start(["-W", "ehlo:30"])
        defer { sink.stop() }
        let started = ContinuousClock.now
        let port = sink.port
        let task = Task { await Self.deliver(port: port) }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let outcome = await task.value
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(outcome.sessionFailure?.reason.contains("cancelled") == true)
    }
}
