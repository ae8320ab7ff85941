import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Testing
@testable import SMTPClient

/// A small SMTP server with STARTTLS for the client's TLS tests (smtp-sink has no TLS).
/// It records what it received, with `[tls]` where the handshake completed.
final class TLSTestServer: Sendable {
    struct Behaviour: Sendable {
        /// Plaintext bytes written right after the 220 to STARTTLS, in the same segment: a
        /// client that reads them as replies is open to response injection.
        var injectAfterStartTLS = ""
        /// Answer STARTTLS with 220, then send garbage instead of a TLS handshake.
        var breakHandshake = false
    }

    let port: Int
    private let commands: NIOLockedValueBox<[String]>
    private let channel: any Channel

    private init(port: Int, channel: any Channel, commands: NIOLockedValueBox<[String]>) {
        self.port = port
        self.channel = channel
        self.commands = commands
    }

    static func start(certificate: Certificate, behaviour: Behaviour = Behaviour()) async throws -> TLSTestServer {
        let tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(certificate.certificate)], privateKey: .privateKey(certificate.key))
        let context = try NIOSSLContext(configuration: tls)
        let commands = NIOLockedValueBox<[String]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        TLSTestServerHandler(context: context, behaviour: behaviour, commands: commands))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TLSTestServer(port: channel.localAddress?.port ?? 0, channel: channel, commands: commands)
    }

    /// The command lines received so far, in order.
    var received: [String] { commands.withLockedValue { $0 } }

    func stop() async {
        try? await channel.close()
    }

    /// A throwaway self-signed certificate for `localhost`, made by `openssl req`. No IP
    /// address in it: NIOSSL accepts a certificate naming the peer's IP instead of the host.
    struct Certificate: Sendable {
        var certificate: NIOSSLCertificate
        var key: NIOSSLPrivateKey

        static let openssl = "/usr/bin/openssl"
        static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: openssl) }

        static func make() throws -> Certificate {
            let directory = try TestSupport.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let keyPath = directory.appendingPathComponent("key.pem").path
            let certificatePath = directory.appendingPathComponent("cert.pem").path
            let ok = try TestSupport.run(openssl, [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", keyPath, "-out", certificatePath, "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost",
            ])
            guard ok else { throw CertificateError.opensslFailed }
            guard let certificate = try NIOSSLCertificate.fromPEMFile(certificatePath).first else { throw CertificateError.opensslFailed }
            return Certificate(
                certificate: certificate,
                key: try NIOSSLPrivateKey(file: keyPath, format: .pem))
        }

        enum CertificateError: Error { case opensslFailed }
    }
}

final class TLSTestServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let context: NIOSSLContext
    private let behaviour: TLSTestServer.Behaviour
    private let commands: NIOLockedValueBox<[String]>
    private var buffer: [UInt8] = []
    private var inData = false
    private var encrypted = false

    init(context: NIOSSLContext, behaviour: TLSTestServer.Behaviour, commands: NIOLockedValueBox<[String]>) {
        self.context = context
        self.behaviour = behaviour
        self.commands = commands
    }

    func channelActive(context: ChannelHandlerContext) {
        write("220 tls-test ESMTP", context: context)
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            encrypted = true
            commands.withLockedValue { $0.append("[tls]") }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffer += unwrapInboundIn(data).readableBytesView
        while let newline = buffer.firstIndex(of: 0x0a) {
            var line = Array(buffer[..<newline])
            buffer.removeSubrange(...newline)
            if line.last == 0x0d { line.removeLast() }
            handle(String(decoding: line, as: UTF8.self), context: context)
        }
    }

    private func handle(_ line: String, context: ChannelHandlerContext) {
        if inData {
            if line == "." {
                inData = false
                write("250 2.0.0 queued", context: context)
            }
            return
        }
        commands.withLockedValue { $0.append(line) }
        let verb = line.split(separator: " ").first?.uppercased() ?? ""
        switch verb {
        case "EHLO":
            var lines = ["tls-test", "PIPELINING", "8BITMIME", "AUTH PLAIN LOGIN"]
            if !encrypted { lines.insert("STARTTLS", at: 1) }
            write(lines.enumerated().map { "250\($0.offset == lines.count - 1 ? " " : "-")\($0.element)" }.joined(separator: "\r\n"), context: context)
        case "STARTTLS":
            buffer = []
            if behaviour.breakHandshake {
                write("220 2.0.0 go ahead\r\nthis is not a TLS handshake, nothing like it at all", context: context)
                return
            }
            write("220 2.0.0 go ahead" + behaviour.injectAfterStartTLS, context: context)
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: self.context), position: .first)
            } catch {
                context.close(promise: nil)
            }
        case "AUTH": write("235 2.7.0 ok", context: context)
        case "MAIL", "RCPT": write("250 2.1.0 ok", context: context)
        case "DATA":
            inData = true
            write("354 go", context: context)
        case "QUIT":
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "221 bye\r\n"))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        default: write("502 5.5.2 what", context: context)
        }
    }

    private func write(_ text: String, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
    }
}

@Suite(.enabled(if: TLSTestServer.Certificate.isAvailable, "needs openssl to make a test certificate"))
struct SMTPClientTLSTests {
    static let certificate: Result<TLSTestServer.Certificate, any Error> = Result { try TLSTestServer.Certificate.make() }
    static let message = TestSupport.message("Subject: tls\n\nsecret text\n")

    static func deliver(_ server: TLSTestServer, host: String = "localhost", configure: (inout SMTPClientConfiguration) -> Void) async -> SMTPDeliveryOutcome {
        var configuration = SMTPClientConfiguration(heloName: "node1.example.test", tls: .opportunistic)
        configure(&configuration)
        let client = SMTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration, logger: TestSupport.logger)
        return await client.deliver(
            host: host, address: "127.0.0.1", port: server.port, sender: "alice@example.test", recipients: ["bob@remote.test"],
            message: message, requireSMTPUTF8: false, eightBit: false)
    }

    @Test func opportunisticTLSIgnoresInjectedPlaintext() async throws {
        let server = try await TLSTestServer.start(
            certificate: try Self.certificate.get(),
            behaviour: .init(injectAfterStartTLS: "\r\n250-injected\r\n250 AUTH PLAIN"))
        let outcome = await Self.deliver(server) { _ in }
        await server.stop()
        #expect(outcome.sessionFailure == nil)
        #expect(outcome.usedTLS)
        guard case .delivered(let reply) = outcome.recipients.first else {
            Issue.record("not delivered: \(outcome)")
            return
        }
        #expect(reply.code == 250)
        #expect(outcome.transcriptSummary.contains("TLSv1.3"))
        #expect(server.received == [
            "EHLO node1.example.test", "STARTTLS", "[tls]", "EHLO node1.example.test",
            "MAIL FROM:<alice@example.test>", "RCPT TO:<bob@remote.test>", "DATA", "QUIT",
        ])
    }

    @Test func verifiedTLSWithAuthentication() async throws {
        let certificate = try Self.certificate.get()
        let server = try await TLSTestServer.start(certificate: certificate)
        let outcome = await Self.deliver(server) {
            $0 = .smarthost(heloName: "node1.example.test", credentials: SMTPClientCredentials(username: "relay", password: "secret"))
            $0.trustRoots = .certificates([certificate.certificate])
        }
        await server.stop()
        #expect(outcome.sessionFailure == nil)
        #expect(outcome.recipients.count == 1)
        #expect(outcome.recipients.allSatisfy { if case .delivered = $0 { true } else { false } })
        let received = server.received
        #expect(received.prefix(5) == ["EHLO node1.example.test", "STARTTLS", "[tls]", "EHLO node1.example.test", "AUTH PLAIN AHJlbGF5AHNlY3JldA=="])
    }

    @Test(arguments: [
        ("localhost", false, "untrusted certificate"),
        ("mx.other.test", true, "wrong host name"),
    ])
    func verificationFailureIsATemporaryTLSFailure(host: String, trustTestCertificate: Bool, label: String) async throws {
        let certificate = try Self.certificate.get()
        let server = try await TLSTestServer.start(certificate: certificate)
        let outcome = await Self.deliver(server, host: host) {
            $0.tls = .required
            $0.verifyCertificates = true
            if trustTestCertificate { $0.trustRoots = .certificates([certificate.certificate]) }
        }
        await server.stop()
        #expect(outcome.sessionFailure?.stage == .tlsHandshake, "\(label)")
        #expect(outcome.sessionFailure?.isPermanent == false, "\(label)")
        #expect(outcome.usedTLS == false)
        #expect(!server.received.contains("MAIL FROM:<alice@example.test>"), "\(label)")
    }

    @Test func brokenHandshakeInOpportunisticMode() async throws {
        let server = try await TLSTestServer.start(certificate: try Self.certificate.get(), behaviour: .init(breakHandshake: true))
        let outcome = await Self.deliver(server) { $0.commandTimeout = .seconds(5) }
        await server.stop()
        #expect(outcome.sessionFailure?.stage == .tlsHandshake)
        #expect(outcome.sessionFailure?.isPermanent == false)
        #expect(outcome.sessionFailure?.reason.contains("retry without TLS") == true)
    }
}
