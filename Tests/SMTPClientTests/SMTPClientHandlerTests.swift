import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing
@testable import SMTPClient

/// The NIO edge on an `EmbeddedChannel`: writes, writability, timers on virtual time.
struct HandlerHarness {
    let channel = EmbeddedChannel()
    let outcome = NIOLockedValueBox<SMTPDeliveryOutcome?>(nil)

    init(
        configuration: SMTPClientConfiguration = SMTPClientConfiguration(heloName: "node1.example.test", tls: .none),
        recipients: [String] = ["a@remote.test"], message: [UInt8] = Array("Subject: x\r\n\r\nbody\r\n".utf8),
        tlsContext: NIOSSLContext? = nil, tlsSetupError: String? = nil
    ) throws {
        var machine = SMTPClientStateMachine(
            configuration: configuration,
            transaction: .init(sender: "alice@example.test", recipients: recipients, messageSize: message.count),
            remoteName: "mx.remote.test[192.0.2.1]:25")
        #expect(machine.start() == [.connect])
        let promise = channel.eventLoop.makePromise(of: SMTPDeliveryOutcome.self)
        let box = outcome
        promise.futureResult.whenSuccess { result in box.withLockedValue { $0 = result } }
        let settings = SMTPClientHandler.Settings(
            machine: machine, message: message, tlsContext: tlsContext, tlsSetupError: tlsSetupError, serverHostname: "mx.remote.test")
        try channel.pipeline.syncOperations.addHandler(SMTPClientHandler(settings: settings, promise: promise))
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.1", port: 25)).wait()
    }

    var result: SMTPDeliveryOutcome? { outcome.withLockedValue { $0 } }

    /// Feeds server bytes; returns what the client wrote in response.
    @discardableResult
    func server(_ text: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: text))
        return try written()
    }

    func written() throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func advance(_ duration: Duration) {
        channel.embeddedEventLoop.advanceTime(by: TimeAmount(duration))
    }
}

@Suite struct SMTPClientHandlerTests {
    @Test func writesTheMessageOnlyWhileWritable() throws {
        var text = "Subject: big\r\n\r\n"
        for index in 0..<20_000 { text += index % 5 == 0 ? ".dot \(index)\r\n" : "line \(index)\r\n" }
        let message = Array(text.utf8)
        let harness = try HandlerHarness(message: message)
        #expect(try harness.server("220 mx\r\n") == "EHLO node1.example.test\r\n")
        #expect(try harness.server("250 mx\r\n") == "MAIL FROM:<alice@example.test>\r\n")
        #expect(try harness.server("250 ok\r\n") == "RCPT TO:<a@remote.test>\r\n")
        #expect(try harness.server("250 ok\r\n") == "DATA\r\n")

        harness.channel.isWritable = false
        #expect(try harness.server("354 go\r\n") == "")
        harness.channel.isWritable = true
        harness.channel.pipeline.fireChannelWritabilityChanged()
        var chunks: [ByteBuffer] = []
        while let chunk = try harness.channel.readOutbound(as: ByteBuffer.self) { chunks.append(chunk) }
        #expect(chunks.count == (message.count + SMTPClientHandler.chunkSize - 1) / SMTPClientHandler.chunkSize)
        var expected = SMTPMessageEncoder(message: message)
        var encoded = ByteBuffer()
        while !expected.isFinished { expected.encodeNext(into: &encoded, maxBytes: 1000) }
        #expect(chunks.reduce(into: ByteBuffer()) { all, chunk in var chunk = chunk; all.writeBuffer(&chunk) } == encoded)

        #expect(try harness.server("250 2.0.0 queued\r\n") == "QUIT\r\n")
        #expect(harness.result == nil)
        try harness.server("221 bye\r\n")
        #expect(harness.result?.recipients == [.delivered(SMTPClientReply(code: 250, enhanced: "2.0.0", lines: ["queued"]))])
        #expect(harness.channel.isActive == false)
    }

    @Test func dataBlockTimeoutWhileTheServerDoesNotRead() throws {
        let harness = try HandlerHarness()
        try harness.server("220 mx\r\n")
        try harness.server("250 mx\r\n")
        try harness.server("250 ok\r\n")
        try harness.server("250 ok\r\n")
        harness.channel.isWritable = false
        try harness.server("354 go\r\n")
        harness.advance(.seconds(179))
        #expect(harness.result == nil)
        harness.advance(.seconds(1))
        guard case .temporaryFailure(let reason) = harness.result?.recipients.first else {
            Issue.record("expected a temporary failure, got \(String(describing: harness.result))")
            return
        }
        #expect(reason.contains("timeout 180 s"))
        #expect(harness.channel.isActive == false)
    }

    @Test func greetingTimeout() throws {
        let harness = try HandlerHarness()
        harness.advance(.seconds(299))
        #expect(harness.result == nil)
        harness.advance(.seconds(1))
        #expect(harness.result?.sessionFailure?.stage == .greeting)
        #expect(harness.result?.sessionFailure?.reason.contains("timeout 300 s") == true)
        #expect(harness.channel.isActive == false)
    }

    @Test func sessionTimeLimitBoundsATricklingServer() throws {
        var configuration = SMTPClientConfiguration(heloName: "node1.example.test", tls: .none)
        configuration.sessionTimeout = .seconds(500)
        let harness = try HandlerHarness(configuration: configuration)
        harness.advance(.seconds(250))
        try harness.server("220 mx\r\n")
        harness.advance(.seconds(249))
        try harness.server("250 mx\r\n")
        #expect(harness.result == nil)
        harness.advance(.seconds(1))
        #expect(harness.result?.sessionFailure?.reason.hasPrefix("session time limit 500 s exceeded") == true)
    }

    @Test func quitIsNotWaitedForLong() throws {
        let harness = try HandlerHarness()
        try harness.server("220 mx\r\n")
        try harness.server("250 mx\r\n")
        try harness.server("250 ok\r\n")
        try harness.server("250 ok\r\n")
        try harness.server("354 go\r\n")
        #expect(try harness.server("250 ok\r\n") == "QUIT\r\n")
        #expect(harness.result == nil)
        harness.advance(.seconds(5))
        #expect(harness.result?.recipients == [.delivered(SMTPClientReply(code: 250, lines: ["ok"]))])
    }

    @Test func plaintextAfterTheSTARTTLSReplyIsDiscarded() throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        let harness = try HandlerHarness(
            configuration: SMTPClientConfiguration(heloName: "node1.example.test", tls: .required),
            tlsContext: try NIOSSLContext(configuration: tls))
        try harness.server("220 mx\r\n")
        #expect(try harness.server("250-mx\r\n250 STARTTLS\r\n") == "STARTTLS\r\n")
        // The injected "reply" would otherwise be taken as the answer to the second EHLO.
        let handshake = try harness.server("220 go ahead\r\n250-mx\r\n250 AUTH PLAIN\r\n")
        #expect(handshake.utf8.first == 0x16)  // a TLS handshake record: the ClientHello
        #expect(throws: Never.self) { try harness.channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self) }
        #expect(harness.result == nil)
        #expect(harness.channel.isActive)
        _ = try? harness.channel.finish()
    }

    @Test func missingTLSContextFailsTheHandshake() throws {
        let harness = try HandlerHarness(
            configuration: SMTPClientConfiguration(heloName: "node1.example.test", tls: .opportunistic),
            tlsSetupError: "cannot set up TLS: no trust roots")
        try harness.server("220 mx\r\n")
        try harness.server("250-mx\r\n250 STARTTLS\r\n")
        try harness.server("220 go ahead\r\n")
        #expect(harness.result?.sessionFailure?.stage == .tlsHandshake)
        #expect(harness.result?.sessionFailure?.reason.contains("no trust roots") == true)
    }

    @Test func serverClosingAndCancellation() throws {
        let closed = try HandlerHarness()
        try closed.server("220 mx\r\n")
        closed.channel.pipeline.fireChannelInactive()
        #expect(closed.result?.sessionFailure?.reason.contains("connection closed by the server") == true)

        let cancelled = try HandlerHarness()
        try cancelled.server("220 mx\r\n")
        cancelled.channel.pipeline.fireUserInboundEventTriggered(SMTPClientHandler.Cancelled())
        #expect(cancelled.result?.sessionFailure?.reason.contains("delivery cancelled") == true)
        #expect(cancelled.channel.isActive == false)
    }

    @Test func hostileRepliesEndTheSession() throws {
        let harness = try HandlerHarness()
        try harness.server("220 mx\r\n")
        try harness.server(String(repeating: "250-x\r\n", count: 150))
        #expect(harness.result?.sessionFailure?.reason.contains("more than 100 lines") == true)
        #expect(harness.channel.isActive == false)
        // Later bytes are ignored.
        #expect(try harness.server("250 ok\r\n") == "")
    }

    @Test func serverHostnameForSNI() {
        #expect(SMTPClient.serverHostname("mx.remote.test.") == "mx.remote.test")
        #expect(SMTPClient.serverHostname("192.0.2.1") == nil)
        #expect(SMTPClient.serverHostname("2001:db8::1") == nil)
        #expect(SMTPClient.serverHostname("[192.0.2.1]") == nil)
        #expect(SMTPClient.serverHostname("") == nil)
    }
}
