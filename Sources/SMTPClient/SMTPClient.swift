import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Delivers one message to one SMTP server (a remote MX or a smarthost): one connection,
/// one transaction, driven by `SMTPClientStateMachine`.
public struct SMTPClient: Sendable {
    public let configuration: SMTPClientConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    /// Built once: loading the trust roots is not cheap. Nil when TLS is off or setup failed.
    private let tlsContext: NIOSSLContext?
    private let tlsSetupError: String?

    public init(eventLoopGroup: any EventLoopGroup, configuration: SMTPClientConfiguration, logger: Logger) {
        self.eventLoopGroup = eventLoopGroup
        self.configuration = configuration
        self.logger = logger
        guard configuration.tls != .none else {
            tlsContext = nil
            tlsSetupError = nil
            return
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = configuration.verifyCertificates ? .fullVerification : .none
        tls.trustRoots = configuration.trustRoots
        do {
            tlsContext = try NIOSSLContext(configuration: tls)
            tlsSetupError = nil
        } catch {
            tlsContext = nil
            tlsSetupError = "cannot set up TLS: \(error)"
        }
    }

    /// Delivers `message` (CRLF-normalised) to the server at `address:port`; `host` is the
    /// name for TLS (SNI and certificate verification) and logs. Never throws: every failure
    /// is in the outcome.
    public func deliver(
        host: String, address: String, port: Int, sender: String, recipients: [String], message: [UInt8],
        requireSMTPUTF8: Bool = false, eightBit: Bool = false
    ) async -> SMTPDeliveryOutcome {
        let transaction = SMTPClientStateMachine.Transaction(
            sender: sender, recipients: recipients, messageSize: message.count,
            requireSMTPUTF8: requireSMTPUTF8, eightBit: eightBit)
        var machine = SMTPClientStateMachine(configuration: configuration, transaction: transaction, remoteName: "\(host)[\(address)]:\(port)")
        var logger = logger
        logger[metadataKey: "remote"] = "\(host)[\(address)]:\(port)"
        for action in machine.start() {
            if case .close(let outcome) = action {
                Self.log(outcome, logger: logger)
                return outcome
            }
        }
        let loop = eventLoopGroup.next()
        let promise = loop.makePromise(of: SMTPDeliveryOutcome.self)
        let settings = SMTPClientHandler.Settings(
            machine: machine, message: message, tlsContext: tlsContext, tlsSetupError: tlsSetupError,
            serverHostname: Self.serverHostname(host))
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SMTPClientHandler(settings: settings, promise: promise))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: address, port: port).get()
        } catch {
            // The handler completes the promise only once the channel was active.
            var outcome = SMTPDeliveryOutcome(sessionFailure: nil, recipients: [], usedTLS: false, transcriptSummary: "")
            for action in machine.connectFailed(reason: "\(error)") {
                if case .close(let closing) = action { outcome = closing }
            }
            promise.succeed(outcome)
            Self.log(outcome, logger: logger)
            return outcome
        }
        logger.debug("SMTP delivery started", metadata: ["recipients": "\(recipients.count)", "bytes": "\(message.count)"])
        let outcome = await withTaskCancellationHandler {
            do {
                return try await promise.futureResult.get()
            } catch {
                // Unreachable: the promise is only ever succeeded.
                return SMTPDeliveryOutcome(
                    sessionFailure: SMTPSessionFailure(isPermanent: false, reason: "\(error)", stage: .greeting),
                    recipients: recipients.map { _ in .temporaryFailure("\(error)") }, usedTLS: false, transcriptSummary: "\(error)")
            }
        } onCancel: {
            channel.pipeline.fireUserInboundEventTriggered(SMTPClientHandler.Cancelled())
        }
        Self.log(outcome, logger: logger)
        return outcome
    }

    /// SNI carries names only (RFC 6066 §3): none for an address literal; no trailing dot.
    static func serverHostname(_ host: String) -> String? {
        var name = host
        if name.hasSuffix(".") { name.removeLast() }
        if name.isEmpty || name.hasPrefix("[") || (try? SocketAddress(ipAddress: name, port: 0)) != nil { return nil }
        return name
    }

    private static func log(_ outcome: SMTPDeliveryOutcome, logger: Logger) {
        var delivered = 0
        var temporary = 0
        var permanent = 0
        for result in outcome.recipients {
            switch result {
            case .delivered: delivered += 1
            case .temporaryFailure: temporary += 1
            case .permanentFailure: permanent += 1
            }
        }
        logger.info(
            "SMTP delivery finished",
            metadata: [
                "delivered": "\(delivered)", "temporary": "\(temporary)", "permanent": "\(permanent)",
                "tls": "\(outcome.usedTLS)", "summary": "\(outcome.transcriptSummary)",
            ])
    }
}

/// The NIO edge: performs the state machine's actions on one channel, on its event loop.
final class SMTPClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Settings: Sendable {
        var machine: SMTPClientStateMachine
        var message: [UInt8]
        var tlsContext: NIOSSLContext?
        var tlsSetupError: String?
        var serverHostname: String?
    }

    /// The task awaiting the delivery was cancelled (node shutdown).
    struct Cancelled: Sendable {}

    /// Source bytes per write while sending the message; backpressure keeps at most about
    /// the channel's high water mark plus one chunk queued.
    static let chunkSize = 64 * 1024

    private var machine: SMTPClientStateMachine
    private var parser: SMTPReplyParser
    private let settings: Settings
    private let promise: EventLoopPromise<SMTPDeliveryOutcome>
    private var encoder: SMTPMessageEncoder?
    private var context: ChannelHandlerContext?
    private var timer: Scheduled<Void>?
    private var sessionTimer: Scheduled<Void>?
    private var active = false
    private var done = false

    init(settings: Settings, promise: EventLoopPromise<SMTPDeliveryOutcome>) {
        self.settings = settings
        self.machine = settings.machine
        self.parser = SMTPReplyParser(
            maxLineLength: settings.machine.configuration.maxReplyLineLength,
            maxLines: settings.machine.configuration.maxReplyLines)
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { becomeActive(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if active, !done { perform(machine.connectionLost(reason: "connection closed")) }
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        becomeActive(context: context)
        context.fireChannelActive()
    }

    private func becomeActive(context: ChannelHandlerContext) {
        guard !active else { return }
        active = true
        let limit = TimeAmount(machine.configuration.sessionTimeout)
        sessionTimer = context.eventLoop.assumeIsolated().scheduleTask(in: limit) { [self] in
            sessionTimer = nil
            perform(machine.timedOut(sessionLimit: true))
        }
        rearmTimer()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if active, !done { perform(machine.connectionLost(reason: "connection closed by the server")) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        let buffer = unwrapInboundIn(data)
        parser.append(buffer.readableBytesView)
        do {
            // `.startTLS` resets the parser, so bytes after the 220 are dropped here.
            while !done, let reply = try parser.next() {
                perform(machine.receive(reply: reply))
            }
        } catch {
            perform(machine.protocolViolation(reason: error.description))
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            let version = try? context.pipeline.syncOperations.nioSSL_tlsVersion()
            perform(machine.tlsEstablished(protocolVersion: version.map(Self.describe)))
        } else if event is Cancelled {
            perform(machine.connectionLost(reason: "delivery cancelled"))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !done else { return }
        if error is NIOSSLError || error is BoringSSLError {
            perform(machine.tlsFailed(reason: "\(error)"))
        } else {
            perform(machine.connectionLost(reason: "\(error)"))
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { writeMessage() }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Actions

    private func perform(_ actions: [SMTPClientStateMachine.Action]) {
        guard let context else { return }
        for action in actions where !done {
            switch action {
            case .connect:
                break
            case .send(let bytes):
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
            case .startTLS:
                startTLS(context: context)
            case .sendMessage:
                encoder = SMTPMessageEncoder(message: settings.message)
                writeMessage()
            case .close(let outcome):
                done = true
                timer?.cancel()
                sessionTimer?.cancel()
                encoder = nil
                promise.succeed(outcome)
                context.close(promise: nil)
            }
        }
        rearmTimer()
    }

    private func startTLS(context: ChannelHandlerContext) {
        // RFC 3207 §4.2 (and CVE-2011-0411 in reverse): nothing the server sent in plaintext
        // after its 220 may be read as a reply once TLS is up.
        parser.reset()
        guard let tlsContext = settings.tlsContext else {
            perform(machine.tlsFailed(reason: settings.tlsSetupError ?? "TLS is not configured"))
            return
        }
        do {
            let handler = try NIOSSLClientHandler(context: tlsContext, serverHostname: settings.serverHostname)
            try context.pipeline.syncOperations.addHandler(handler, position: .before(self))
        } catch {
            perform(machine.tlsFailed(reason: "\(error)"))
        }
    }

    /// Writes chunks while the channel is writable; `channelWritabilityChanged` resumes.
    private func writeMessage() {
        guard let context, var encoder, !done else { return }
        self.encoder = nil
        while !encoder.isFinished, context.channel.isWritable {
            var buffer = context.channel.allocator.buffer(capacity: Self.chunkSize + 1024)
            encoder.encodeNext(into: &buffer, maxBytes: Self.chunkSize)
            // Each completed write is progress: the data block timeout starts again.
            context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenSuccess { [self] in rearmTimer() }
        }
        if encoder.isFinished {
            perform(machine.messageSent())
        } else {
            self.encoder = encoder
        }
    }

    private func rearmTimer() {
        timer?.cancel()
        timer = nil
        guard !done, let context, let timeout = machine.timeout else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
            timer = nil
            perform(machine.timedOut())
        }
    }

    static func describe(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLSv1.0"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }
}
