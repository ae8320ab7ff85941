import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServerSupport

/// A listening IMAP server: one NIOAsyncChannel per connection, framed by
/// `IMAPCommandFramer`, parsed by `IMAPCommandParser`, driven by an `IMAPSession`.
public final class IMAPServer: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        /// Implicit TLS (port 993, RFC 8314); otherwise STARTTLS is offered when `tlsContext`
        /// returns a context.
        public var implicitTLS: Bool
        public var tlsContext: @Sendable () -> NIOSSLContext?
        /// The session configuration for a new connection, read when it arrives (limits changed
        /// in LDAP apply to the next connection); the argument says whether the client is on loopback.
        public var session: @Sendable (_ clientIsLoopback: Bool) -> IMAPSession.Configuration
        /// RFC 9051 §5.4: the autologout timer is at least 30 minutes; it runs while nothing is
        /// read or written (IDLE clients re-issue IDLE within it, RFC 2177).
        public var idleTimeout: TimeAmount
        /// How often a session looks for changes made elsewhere while it IDLEs: the latency
        /// with which other nodes' deliveries, flag changes and expunges reach it.
        public var pollInterval: @Sendable () -> Duration

        public init(
            host: String, port: Int, implicitTLS: Bool = false, tlsContext: @escaping @Sendable () -> NIOSSLContext? = { nil },
            idleTimeout: TimeAmount = .minutes(30), pollInterval: @escaping @Sendable () -> Duration = { .seconds(1) },
            session: @escaping @Sendable (_ clientIsLoopback: Bool) -> IMAPSession.Configuration
        ) {
            self.host = host
            self.port = port
            self.implicitTLS = implicitTLS
            self.tlsContext = tlsContext
            self.idleTimeout = idleTimeout
            self.pollInterval = pollInterval
            self.session = session
        }
    }

    struct Accepted: Sendable {
        var channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        var gate: NIOLoopBound<StartTLSGate>?
        var tls: NIOSSLContext?
        /// Where COMPRESS puts the deflate handlers: just before it (after TLS).
        var idle: NIOLoopBound<IdleStateHandler>
    }

    private let loop: AcceptLoop<Accepted>
    public var localPort: Int { loop.localPort }

    private init(loop: AcceptLoop<Accepted>) {
        self.loop = loop
    }

    public static func start(settings: Settings, services: some IMAPServices, logger: Logger) async throws -> IMAPServer {
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
                        guard let context else { throw IMAPServerError.noTLSCertificate }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    } else if context != nil {
                        let handler = StartTLSGate(command: .imap)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        gate = NIOLoopBound(handler, eventLoop: channel.eventLoop)
                    }
                    let idle = IdleStateHandler(allTimeout: idleTimeout)
                    try channel.pipeline.syncOperations.addHandler(idle)
                    try channel.pipeline.syncOperations.addHandler(IMAPIdleTimeoutHandler())
                    return Accepted(
                        channel: try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel),
                        gate: gate, tls: implicitTLS ? nil : context, idle: NIOLoopBound(idle, eventLoop: channel.eventLoop))
                }
            }
        let loop = AcceptLoop(serverChannel: serverChannel, requestedPort: settings.port, name: "IMAP", logger: logger) { connection in
            await IMAPConnection(settings: settings, services: services, logger: logger).run(connection)
        }
        return IMAPServer(loop: loop)
    }

    /// Stops accepting; sessions in progress go on (the drain).
    public func stopAccepting() async {
        await loop.stopAccepting()
    }

    /// Stops accepting and ends open sessions.
    public func stop() async {
        await loop.stop()
    }
}

enum IMAPServerError: Error, CustomStringConvertible {
    case noTLSCertificate

    var description: String { "no TLS certificate is configured (svcpkgTlsCertificateFile, svcpkgTlsKeyFile)" }
}

/// Responses encoded into one buffer and written when it grows past `flushThreshold` or the
/// connection has nothing more to say for now.
final class IMAPOutput {
    static let flushThreshold = 64 * 1024
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var encoder = IMAPResponseEncoder()
    private var bytes: [UInt8] = []

    init(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.outbound = outbound
    }

    func send(_ response: IMAPResponse) async throws {
        encoder.encode(response, into: &bytes)
        if bytes.count >= Self.flushThreshold { try await flush() }
    }

    func flush() async throws {
        guard !bytes.isEmpty else { return }
        let buffer = ByteBuffer(bytes: bytes)
        bytes.removeAll(keepingCapacity: true)
        try await outbound.write(buffer)
    }

    /// What is buffered, taken out (for the STARTTLS reply, which the gate writes).
    func take() -> [UInt8] {
        defer { bytes.removeAll() }
        return bytes
    }
}

/// One client connection.
struct IMAPConnection<Services: IMAPServices> {
    let settings: IMAPServer.Settings
    let services: Services
    let logger: Logger

    enum Event: Sendable {
        case input(ByteBuffer)
        case inputEnded
        case tick
    }

    enum Mode {
        case commands
        case idling(tag: String)
        case authenticating(tag: String)
    }

    func run(_ accepted: IMAPServer.Accepted) async {
        let connection = accepted.channel
        let remote = connection.channel.remoteAddress
        let context = IMAPConnectionContext(
            remoteAddress: remote?.ipAddress ?? "unknown", localAddress: connection.channel.localAddress?.ipAddress ?? "unknown",
            sessionID: String(UInt64.random(in: 0...UInt64.max), radix: 36), tlsActive: settings.implicitTLS)
        if let refusal = services.connectionOpened(context) {
            logger.notice("IMAP connection refused", metadata: ["remote": "\(context.remoteAddress)", "reason": "\(refusal)"])
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(bytes: IMAPResponseEncoder().encode(.untagged(.status(IMAPStatusResponse(.bye, code: .unavailable, refusal))))))
            }
            return
        }
        defer { services.connectionClosed(context) }
        var configuration = settings.session(ClientAddress.isLoopback(remote))
        configuration.tlsActive = settings.implicitTLS
        configuration.tlsAvailable = !settings.implicitTLS && accepted.gate != nil
        var logger = logger
        logger[metadataKey: "session"] = "\(context.sessionID)"
        logger[metadataKey: "remote"] = "\(context.remoteAddress)"
        var session = IMAPSession(configuration: configuration, services: services, context: context, logger: logger)
        let limits = configuration.limits
        let pollInterval = settings.pollInterval()
        do {
            try await connection.executeThenClose { inbound, outbound in
                let (events, eventSink) = AsyncStream.makeStream(of: Event.self)
                let (credits, creditSink) = AsyncStream.makeStream(of: Void.self)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // The reader hands over one buffer at a time and waits for the loop to take
                    // it, so a client cannot make the server buffer more than one read ahead.
                    group.addTask {
                        var creditIterator = credits.makeAsyncIterator()
                        do {
                            for try await buffer in inbound {
                                eventSink.yield(.input(buffer))
                                guard await creditIterator.next() != nil else { break }
                            }
                        } catch {}
                        eventSink.yield(.inputEnded)
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: pollInterval)
                            eventSink.yield(.tick)
                        }
                    }
                    let output = IMAPOutput(outbound: outbound)
                    defer {
                        group.cancelAll()
                        creditSink.finish()
                        eventSink.finish()
                    }
                    try await Self.serve(
                        session: &session, events: events, credit: { creditSink.yield() }, output: output, gate: accepted.gate,
                        tls: accepted.tls, idle: accepted.idle, channel: connection.channel, limits: limits, logger: logger)
                }
            }
        } catch {
            logger.debug("IMAP connection ended with an error", metadata: ["error": "\(error)"])
        }
        if let account = session.account { services.sessionEnded(user: account.address, context: context) }
        logger.info(
            "IMAP session ended",
            metadata: ["user": "\(session.account?.address ?? "-")", "fetched": "\(session.fetchedMessages)", "appended": "\(session.appendedMessages)"])
    }

    /// The command loop: returns when the session or the client ends.
    static func serve(
        session: inout IMAPSession, events: AsyncStream<Event>, credit: () -> Void, output: IMAPOutput,
        gate: NIOLoopBound<StartTLSGate>?, tls: NIOSSLContext?, idle: NIOLoopBound<IdleStateHandler>, channel: any Channel,
        limits: IMAPLimits, logger: Logger
    ) async throws {
        var framer = IMAPCommandFramer(limits: limits, literalExtension: .literalPlus)
        var mode = Mode.commands
        let send: IMAPSession.Send = { try await output.send($0) }
        try await output.send(session.greeting)
        try await output.flush()
        for await event in events {
            switch event {
            case .inputEnded:
                return
            case .tick:
                guard case .idling = mode else { continue }
                guard try await session.poll(send: send) else {
                    try await output.flush()
                    return
                }
                try await output.flush()
                continue
            case .input(let buffer):
                framer.append(buffer.readableBytesView)
                var startedTLS = false
                eventLoop: while let framing = framer.nextEvent() {
                    switch framing {
                    case .continuationRequired:
                        try await output.send(.continuation("Ready for literal data"))
                        try await output.flush()
                    case .error(let error):
                        logger.info("IMAP framing error", metadata: ["error": "\(error.kind)"])
                        try await output.send(error.suggestedResponse)
                        if error.disposition == .closeConnection {
                            try await output.flush()
                            return
                        }
                    case .frame(let frame):
                        let parser = IMAPCommandParser(limits: limits, utf8Accept: session.utf8Accept)
                        switch mode {
                        case .idling(let tag):
                            mode = .commands
                            if parser.parseIdleDone(frame) {
                                try await output.send(.tagged(tag: tag, IMAPStatusResponse(.ok, "IDLE terminated")))
                            } else {
                                try await output.send(.tagged(tag: tag, IMAPStatusResponse(.bad, "Expected DONE to end IDLE")))
                            }
                        case .authenticating(let tag):
                            mode = .commands
                            try await session.finishAuthentication(tag: tag, response: parser.parseAuthenticationResponse(frame), send: send)
                        case .commands:
                            switch parser.parse(frame) {
                            case .failure(let error):
                                try await output.send(error.suggestedResponse)
                            case .success(let command):
                                logger.trace("IMAP command", metadata: ["command": "\(command)"])
                                let next = try await session.handle(command, send: send)
                                output.encoder.utf8Accept = session.utf8Accept
                                switch next {
                                case .proceed:
                                    break
                                case .close:
                                    try await output.flush()
                                    return
                                case .idle(let tag):
                                    mode = .idling(tag: tag)
                                    try await output.send(.continuation("idling"))
                                case .authenticationContinuation(let tag):
                                    mode = .authenticating(tag: tag)
                                    try await output.send(.continuationChallenge([]))
                                case .compress(let reply):
                                    try await output.send(reply)
                                    let bytes = output.take()
                                    // The OK is written and the deflate handlers put in within one
                                    // event-loop task: the OK goes out uncompressed, nothing after it does.
                                    try await channel.eventLoop.submit {
                                        channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
                                        let pipeline = channel.pipeline.syncOperations
                                        try pipeline.addHandler(try DeflateInboundHandler(), position: .before(idle.value))
                                        try pipeline.addHandler(try DeflateOutboundHandler(), position: .before(idle.value))
                                    }.get()
                                    // Bytes read with the COMPRESS line were sent uncompressed, against
                                    // RFC 4978 §3: drop them.
                                    framer = IMAPCommandFramer(limits: limits, literalExtension: .literalPlus)
                                    break eventLoop
                                case .startTLS(let reply):
                                    guard let gate, let tls else {
                                        try await output.flush()
                                        return
                                    }
                                    try await output.send(reply)
                                    let bytes = output.take()
                                    // The OK goes out from the gate in the same event-loop tick
                                    // that puts the TLS handler in, so no read falls between them.
                                    try await gate.eventLoop.submit { try gate.value.startTLS(reply: ByteBuffer(bytes: bytes), sslContext: tls) }.get()
                                    session.tlsStarted()
                                    startedTLS = true
                                    // Anything read with the STARTTLS line was plaintext: forget it.
                                    framer = IMAPCommandFramer(limits: limits, literalExtension: .literalPlus)
                                    break eventLoop
                                }
                            }
                        }
                    }
                }
                try await output.flush()
                if let gate, !startedTLS, StartTLSGate.Command.imap.isMentioned(in: buffer.readableBytesView) {
                    try await gate.eventLoop.submit { gate.value.release() }.get()
                }
                credit()
            }
        }
    }

}

/// RFC 9051 §5.4: a client idle past the autologout timer gets `* BYE` and is disconnected.
final class IMAPIdleTimeoutHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let closeGrace: TimeAmount = .seconds(5)

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            let channel = context.channel
            let bye = IMAPResponseEncoder().encode(.untagged(.status(IMAPStatusResponse(.bye, "Autologout: idle for too long"))))
            channel.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
            context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: bye))).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
