import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServerSupport

/// What an SMTP session needs from the rest of the node. The Node module implements it with
/// the directory and the shared tree; the SMTP module never imports those.
public protocol SMTPServices: Sendable {
    /// Decides the reverse-path at MAIL time: nil accepts, a reply refuses (rate limits, a
    /// submitter using an address that is not theirs).
    func checkSender(_ sender: SMTPMailbox?, authenticatedUser: String?, context: SMTPConnectionContext) async -> SMTPReply?
    /// Decides a recipient at RCPT time (RFC 5321 §3.3): local user, alias, group, relay rules, quota.
    func checkRecipient(_ recipient: SMTPMailbox, context: SMTPConnectionContext) async -> SMTPSession.RecipientVerdict
    /// Checks credentials; nil means success, else the reply to send (RFC 4954 §6).
    func authenticate(user: String, password: String, context: SMTPConnectionContext) async -> Bool
    /// Stores the message durably (local delivery or the queue) before the 250 goes out; nil is success.
    func store(_ transaction: SMTPSession.Transaction, context: SMTPConnectionContext) async -> SMTPReply?
    /// Connection accounting for load, drain and per-address limits: nil admits the
    /// connection, a reply (421) is sent instead of the greeting and the connection closes.
    func connectionOpened(_ context: SMTPConnectionContext) -> SMTPReply?
    func connectionClosed(_ context: SMTPConnectionContext)
}

/// Facts about the connection that services may need (for trace headers, rate limits, logs).
public struct SMTPConnectionContext: Sendable {
    public var remoteAddress: String
    public var localAddress: String
    public var isSubmission: Bool
    public var sessionID: String

    public init(remoteAddress: String, localAddress: String, isSubmission: Bool, sessionID: String) {
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.isSubmission = isSubmission
        self.sessionID = sessionID
    }
}

/// A listening SMTP server: one NIOAsyncChannel per connection, each driven by an `SMTPSession`.
public final class SMTPServer: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var isSubmission: Bool
        /// Implicit TLS (port 465, RFC 8314): each connection starts with the TLS handshake,
        /// using the context `tlsContext` returns when it arrives (nil: the connection is refused).
        public var implicitTLS: Bool
        public var tlsContext: @Sendable () -> NIOSSLContext?
        /// The session configuration for a new connection, read when it arrives so that limits
        /// changed in LDAP apply to the next connection; the argument says whether the client
        /// is on loopback (where dev setups may allow plaintext AUTH).
        public var session: @Sendable (_ clientIsLoopback: Bool) -> SMTPSession.Configuration
        /// RFC 5321 §4.5.3.2: the server waits at least 5 minutes for a command.
        public var idleTimeout: TimeAmount

        public init(
            host: String, port: Int, isSubmission: Bool, implicitTLS: Bool = false,
            tlsContext: @escaping @Sendable () -> NIOSSLContext? = { nil }, idleTimeout: TimeAmount = .minutes(5),
            session: @escaping @Sendable (_ clientIsLoopback: Bool) -> SMTPSession.Configuration
        ) {
            self.host = host
            self.port = port
            self.isSubmission = isSubmission
            self.implicitTLS = implicitTLS
            self.tlsContext = tlsContext
            self.session = session
            self.idleTimeout = idleTimeout
        }
    }

    /// A connection as the loop sees it: the async channel, and the STARTTLS gate with the
    /// TLS context it may switch to (both nil when STARTTLS is not offered).
    struct Accepted: Sendable {
        var channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        var gate: NIOLoopBound<StartTLSGate>?
        var tls: NIOSSLContext?
    }

    private let loop: AcceptLoop<Accepted>
    public var localPort: Int { loop.localPort }

    private init(loop: AcceptLoop<Accepted>) {
        self.loop = loop
    }

    public static func start(settings: Settings, services: some SMTPServices, logger: Logger) async throws -> SMTPServer {
        let idleTimeout = settings.idleTimeout
        let implicitTLS = settings.implicitTLS
        let tlsContext = settings.tlsContext
        let serverChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .bind(host: settings.host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    var gate: NIOLoopBound<StartTLSGate>?
                    let context = tlsContext()
                    if implicitTLS {
                        guard let context else { throw SMTPServerError.noTLSCertificate }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    } else if context != nil {
                        let handler = StartTLSGate()
                        try channel.pipeline.syncOperations.addHandler(handler)
                        gate = NIOLoopBound(handler, eventLoop: channel.eventLoop)
                    }
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(SMTPIdleTimeoutHandler())
                    return Accepted(
                        channel: try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel),
                        gate: gate, tls: implicitTLS ? nil : context)
                }
            }
        let loop = AcceptLoop(serverChannel: serverChannel, requestedPort: settings.port, name: "SMTP", logger: logger) { connection in
            await SMTPConnection(settings: settings, services: services, logger: logger).run(connection)
        }
        return SMTPServer(loop: loop)
    }

    /// Stops accepting; sessions in progress go on until they end (the drain).
    public func stopAccepting() async {
        await loop.stopAccepting()
    }

    /// Stops accepting and ends open sessions.
    public func stop() async {
        await loop.stop()
    }
}

/// One client connection: feeds the session, performs its actions in order.
struct SMTPConnection<Services: SMTPServices> {
    let settings: SMTPServer.Settings
    let services: Services
    let logger: Logger

    func run(_ accepted: SMTPServer.Accepted) async {
        let connection = accepted.channel
        let remote = connection.channel.remoteAddress
        let context = SMTPConnectionContext(
            remoteAddress: remote?.ipAddress ?? "unknown",
            localAddress: connection.channel.localAddress?.ipAddress ?? "unknown",
            isSubmission: settings.isSubmission,
            sessionID: String(UInt64.random(in: 0...UInt64.max), radix: 36))
        if let refusal = services.connectionOpened(context) {
            logger.notice("SMTP connection refused", metadata: ["remote": "\(context.remoteAddress)", "reason": "\(refusal.lines.first ?? "")"])
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(string: refusal.encoded()))
            }
            return
        }
        defer { services.connectionClosed(context) }
        var configuration = settings.session(ClientAddress.isLoopback(remote))
        configuration.isSubmission = settings.isSubmission
        configuration.tlsActive = settings.implicitTLS
        configuration.tlsAvailable = settings.implicitTLS || accepted.gate != nil
        var logger = logger
        logger[metadataKey: "session"] = "\(context.sessionID)"
        logger[metadataKey: "remote"] = "\(context.remoteAddress)"
        var stored = 0
        do {
            try await connection.executeThenClose { inbound, outbound in
                var session = SMTPSession(configuration: configuration)
                var pending = session.start()
                var startedTLS = false
                func perform() async throws -> Bool {
                    var output = ByteBuffer()
                    while !pending.isEmpty {
                        let action = pending.removeFirst()
                        switch action {
                        case .send(let reply):
                            output.writeString(reply.encoded())
                        case .close:
                            if output.readableBytes > 0 { try await outbound.write(output) }
                            return true
                        case .startTLS:
                            guard let gate = accepted.gate, let tls = accepted.tls else { return true }
                            // The 220 goes out from the gate in the same event-loop tick that puts
                            // the TLS handler in, so no read can fall between the two.
                            let reply = output
                            output.clear()
                            try await gate.eventLoop.submit { try gate.value.startTLS(reply: reply, sslContext: tls) }.get()
                            startedTLS = true
                            logger.debug("STARTTLS")
                            pending.append(contentsOf: session.tlsStarted())
                        case .checkSender(let mailbox):
                            if output.readableBytes > 0 { try await outbound.write(output); output.clear() }
                            let refusal = await services.checkSender(mailbox, authenticatedUser: session.authenticatedUser, context: context)
                            pending.append(contentsOf: session.senderChecked(refusal))
                        case .checkRecipient(let mailbox):
                            if output.readableBytes > 0 { try await outbound.write(output); output.clear() }
                            pending.append(contentsOf: session.recipientChecked(await services.checkRecipient(mailbox, context: context)))
                        case .authenticate(let user, let password):
                            if output.readableBytes > 0 { try await outbound.write(output); output.clear() }
                            let ok = await services.authenticate(user: user, password: password, context: context)
                            logger.info("authentication", metadata: ["user": "\(user)", "result": "\(ok ? "ok" : "failed")"])
                            pending.append(contentsOf: session.authenticationFinished(success: ok))
                        case .store(let transaction):
                            if output.readableBytes > 0 { try await outbound.write(output); output.clear() }
                            let failure = await services.store(transaction, context: context)
                            if failure == nil { stored += 1 }
                            pending.append(contentsOf: session.transactionStored(failure: failure))
                        }
                    }
                    if output.readableBytes > 0 { try await outbound.write(output) }
                    return false
                }
                if try await perform() { return }
                for try await buffer in inbound {
                    let bytes = Array(buffer.readableBytesView)
                    pending = session.receive(bytes)
                    startedTLS = false
                    if try await perform() { return }
                    // The gate holds input after any STARTTLS line; if TLS did not start, let it go.
                    if let gate = accepted.gate, !startedTLS, StartTLSGate.Command.smtp.isMentioned(in: bytes) {
                        try await gate.eventLoop.submit { gate.value.release() }.get()
                    }
                }
            }
        } catch {
            logger.debug("SMTP connection ended with an error", metadata: ["error": "\(error)"])
        }
        logger.info("SMTP session ended", metadata: ["stored": "\(stored)"])
    }
}

enum SMTPServerError: Error, CustomStringConvertible {
    case noTLSCertificate

    var description: String { "no TLS certificate is configured (svcpkgTlsCertificateFile, svcpkgTlsKeyFile)" }
}


/// RFC 5321 §4.5.3.2: a client silent past the timeout gets 421 and the connection closes.
final class SMTPIdleTimeoutHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            let reply = context.channel.allocator.buffer(string: SMTPReply(421, "4.4.2", "Timeout, closing connection").encoded())
            let channel = context.channel
            context.writeAndFlush(NIOAny(reply)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
