import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServerSupport

/// What a POP3 session needs from the rest of the node. The Node module implements it with
/// the directory and the shared tree; the POP3 module never imports those.
public protocol POP3Services: Sendable {
    /// Connection accounting for load, drain and per-address limits: nil admits the
    /// connection; a response (`-ERR [SYS/TEMP] …`) is sent instead of the greeting and the
    /// connection closes.
    func connectionOpened(_ context: POP3ConnectionContext) -> POP3Response?
    /// Follows every admitted connection (not a refused one).
    func connectionClosed(_ context: POP3ConnectionContext)
    /// Checks credentials (USER/PASS or AUTH PLAIN). Failure delays and per-address limits
    /// belong here (answer `.temporarilyRefused` for an address over its limit), and so does
    /// LOGIN-DELAY enforcement (`.loginDelay`).
    func authenticate(user: String, password: String, context: POP3ConnectionContext) async -> POP3AuthResult
    /// Locks the user's maildrop (the shared-tree lock file) and snapshots it. A lock held by
    /// a live session elsewhere is `.inUse`, never a wait.
    func openMaildrop(user: String, context: POP3ConnectionContext) async -> POP3MaildropOpenResult
}

/// A locked maildrop, as the session sees it. The implementation keeps its lock alive
/// (touching the lock file) until `release`.
public protocol POP3Maildrop: Sendable {
    /// The snapshot taken when the lock was acquired, in maildrop order; mail delivered later
    /// is not in it. Read once, when the maildrop is opened.
    var messages: [POP3MessageInfo] { get }
    /// Streams the stored bytes of message `index` (0-based in `messages`) to `chunk` in
    /// pieces of bounded size (64 KiB is right), awaiting each call before reading on: that
    /// await is how a slow client slows the reading down. When `chunk` throws, stop reading
    /// and rethrow (TOP stops this way once it has its lines). Blocking file I/O belongs on
    /// a thread pool, never on the event loop.
    func read(_ index: Int, chunk: ([UInt8]) async throws -> Void) async throws
    /// UPDATE state (RFC 1939 §6): removes these messages (by UIDL) under the lock, after
    /// verifying the lock is still ours. Throwing tells the client `-ERR [SYS/TEMP] Some
    /// deleted messages not removed`. Called at most once, and only after QUIT.
    func commit(deleting uidls: [String]) async throws
    /// Drops the lock. Called exactly once for every maildrop opened: right after `commit`
    /// (before the QUIT reply goes out), or when the session ends any other way (drop,
    /// timeout, server stop), then possibly from a cancelled task: it must not give up on
    /// cancellation.
    func release() async
}

public enum POP3MaildropOpenResult: Sendable {
    case opened(any POP3Maildrop)
    /// The lock is held by another live session (RFC 2449 §8.1.1 `[IN-USE]`).
    case inUse
    /// Anything else (the shared tree unreachable, a broken store); the reason is logged.
    case failed(String)
}

/// Facts about the connection that services may need (for rate limits and logs).
public struct POP3ConnectionContext: Sendable {
    public var remoteAddress: String
    public var localAddress: String
    public var sessionID: String
    /// Encrypted at the time of the call (implicit TLS, or after STLS).
    public var tlsActive: Bool

    public init(remoteAddress: String, localAddress: String, sessionID: String, tlsActive: Bool) {
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.sessionID = sessionID
        self.tlsActive = tlsActive
    }
}

/// A listening POP3 server: one NIOAsyncChannel per connection, each driven by a `POP3Session`.
public final class POP3Server: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        /// Implicit TLS (port 995, RFC 8314): each connection starts with the TLS handshake,
        /// using the context `tlsContext` returns when it arrives (nil: the connection is refused).
        /// Otherwise STLS is offered when `tlsContext` returns a context.
        public var implicitTLS: Bool
        public var tlsContext: @Sendable () -> NIOSSLContext?
        /// The session configuration for a new connection, read when it arrives so that limits
        /// changed in LDAP apply to the next connection; the argument says whether the client
        /// is on loopback (where dev setups may allow plaintext authentication).
        public var session: @Sendable (_ clientIsLoopback: Bool) -> POP3Session.Configuration
        /// RFC 1939 §3: the autologout timer is at least 10 minutes. It runs while nothing is
        /// read or written, so a long RETR to a slow but reading client is not cut off.
        public var idleTimeout: TimeAmount

        public init(
            host: String, port: Int, implicitTLS: Bool = false,
            tlsContext: @escaping @Sendable () -> NIOSSLContext? = { nil }, idleTimeout: TimeAmount = .minutes(10),
            session: @escaping @Sendable (_ clientIsLoopback: Bool) -> POP3Session.Configuration
        ) {
            self.host = host
            self.port = port
            self.implicitTLS = implicitTLS
            self.tlsContext = tlsContext
            self.session = session
            self.idleTimeout = idleTimeout
        }
    }

    /// A connection as the loop sees it: the async channel, and the STLS gate with the TLS
    /// context it may switch to (both nil when STLS is not offered).
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

    public static func start(settings: Settings, services: some POP3Services, logger: Logger) async throws -> POP3Server {
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
                        guard let context else { throw POP3ServerError.noTLSCertificate }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    } else if context != nil {
                        let handler = StartTLSGate(command: .pop3)
                        try channel.pipeline.syncOperations.addHandler(handler)
                        gate = NIOLoopBound(handler, eventLoop: channel.eventLoop)
                    }
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(POP3IdleTimeoutHandler())
                    return Accepted(
                        channel: try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel),
                        gate: gate, tls: implicitTLS ? nil : context)
                }
            }
        let loop = AcceptLoop(serverChannel: serverChannel, requestedPort: settings.port, name: "POP3", logger: logger) { connection in
            await POP3Connection(settings: settings, services: services, logger: logger).run(connection)
        }
        return POP3Server(loop: loop)
    }

    /// Stops accepting; sessions in progress go on until they end (the drain).
    public func stopAccepting() async {
        await loop.stopAccepting()
    }

    /// Stops accepting and ends open sessions (they commit nothing; their maildrops are released).
    public func stop() async {
        await loop.stop()
    }
}

enum POP3ServerError: Error, CustomStringConvertible {
    case noTLSCertificate

    var description: String { "no TLS certificate is configured (svcpkgTlsCertificateFile, svcpkgTlsKeyFile)" }
}

/// Thrown from the chunk callback to end a TOP read once its lines are out.
struct POP3EnoughRead: Error {}

/// One client connection: feeds the session, performs its actions in order.
struct POP3Connection<Services: POP3Services> {
    let settings: POP3Server.Settings
    let services: Services
    let logger: Logger

    /// What a session did, for its closing log line.
    struct Counters {
        var retrieved = 0
        var deleted = 0
    }

    func run(_ accepted: POP3Server.Accepted) async {
        let connection = accepted.channel
        let remote = connection.channel.remoteAddress
        var context = POP3ConnectionContext(
            remoteAddress: remote?.ipAddress ?? "unknown",
            localAddress: connection.channel.localAddress?.ipAddress ?? "unknown",
            sessionID: String(UInt64.random(in: 0...UInt64.max), radix: 36),
            tlsActive: settings.implicitTLS)
        if let refusal = services.connectionOpened(context) {
            logger.notice("POP3 connection refused", metadata: ["remote": "\(context.remoteAddress)", "reason": "\(refusal.text)"])
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(string: refusal.encoded()))
            }
            return
        }
        defer { services.connectionClosed(context) }
        var configuration = settings.session(ClientAddress.isLoopback(remote))
        configuration.tlsActive = settings.implicitTLS
        configuration.tlsAvailable = settings.implicitTLS || accepted.gate != nil
        var logger = logger
        logger[metadataKey: "session"] = "\(context.sessionID)"
        logger[metadataKey: "remote"] = "\(context.remoteAddress)"
        var maildrop: (any POP3Maildrop)?
        var counters = Counters()
        var session = POP3Session(configuration: configuration)
        do {
            try await connection.executeThenClose { inbound, outbound in
                var pending = session.start()
                var startedTLS = false
                /// Performs the pending actions in order; true when the connection is to close.
                func perform() async throws -> Bool {
                    var output = ByteBuffer()
                    func flush() async throws {
                        guard output.readableBytes > 0 else { return }
                        try await outbound.write(output)
                        output.clear()
                    }
                    while !pending.isEmpty {
                        let action = pending.removeFirst()
                        switch action {
                        case .send(let response):
                            output.writeString(response.encoded())
                        case .close:
                            try await flush()
                            return true
                        case .startTLS:
                            guard let gate = accepted.gate, let tls = accepted.tls else { return true }
                            // The +OK goes out from the gate in the same event-loop tick that puts
                            // the TLS handler in, so no read can fall between the two.
                            let reply = output
                            output.clear()
                            try await gate.eventLoop.submit { try gate.value.startTLS(reply: reply, sslContext: tls) }.get()
                            startedTLS = true
                            context.tlsActive = true
                            logger.debug("STLS")
                            pending += session.tlsStarted()
                        case .authenticate(let user, let password):
                            try await flush()
                            let result = await services.authenticate(user: user, password: password, context: context)
                            logger.info("authentication", metadata: ["user": "\(user)", "result": "\(Self.describe(result))"])
                            pending += session.authenticationFinished(result)
                        case .lockMaildrop(let user):
                            try await flush()
                            switch await services.openMaildrop(user: user, context: context) {
                            case .opened(let opened):
                                maildrop = opened
                                logger[metadataKey: "user"] = "\(user)"
                                pending += session.maildropLocked(.opened(opened.messages))
                            case .inUse:
                                logger.info("maildrop in use", metadata: ["user": "\(user)"])
                                pending += session.maildropLocked(.inUse)
                            case .failed(let reason):
                                logger.error("cannot open maildrop", metadata: ["user": "\(user)", "error": "\(reason)"])
                                pending += session.maildropLocked(.failed)
                            }
                        case .sendMessage(let index, let bodyLineLimit, let status):
                            try await flush()
                            guard let maildrop else {
                                pending += session.messageSent(.unavailable)
                                continue
                            }
                            let outcome = await Self.stream(
                                index, bodyLineLimit: bodyLineLimit, status: status, from: maildrop, to: outbound, logger: logger)
                            if outcome == .sent && bodyLineLimit == nil { counters.retrieved += 1 }
                            pending += session.messageSent(outcome)
                        case .commitDeletions(let uidls):
                            try await flush()
                            var success = false
                            if let held = maildrop {
                                do {
                                    try await held.commit(deleting: uidls)
                                    success = true
                                    counters.deleted = uidls.count
                                } catch {
                                    logger.error("commit of deletions failed", metadata: ["count": "\(uidls.count)", "error": "\(error)"])
                                }
                                // Unlocked before the reply: a client that reconnects as soon as it
                                // reads it must not find its own maildrop [IN-USE].
                                await held.release()
                                maildrop = nil
                            }
                            pending += session.deletionsCommitted(success: success)
                        }
                    }
                    try await flush()
                    return false
                }
                if try await perform() { return }
                for try await buffer in inbound {
                    let bytes = buffer.readableBytesView
                    pending = session.receive(bytes)
                    startedTLS = false
                    if try await perform() { return }
                    // The gate holds input after any STLS line; if TLS did not start, let it go.
                    if let gate = accepted.gate, !startedTLS, StartTLSGate.Command.pop3.isMentioned(in: bytes) {
                        try await gate.eventLoop.submit { gate.value.release() }.get()
                    }
                }
            }
        } catch {
            logger.debug("POP3 connection ended with an error", metadata: ["error": "\(error)"])
        }
        if let maildrop { await maildrop.release() }
        logger.info(
            "POP3 session ended",
            metadata: [
                "user": "\(session.user ?? "-")", "retrieved": "\(counters.retrieved)", "deleted": "\(counters.deleted)",
            ])
    }

    /// Streams one message: the status line goes out with the first chunk (or, for an empty
    /// message, with the terminator), then the dot-stuffed bytes as they are read. Each write
    /// waits while the channel is not writable, and the maildrop reads on only after it.
    static func stream(
        _ index: Int, bodyLineLimit: Int?, status: POP3Response, from maildrop: any POP3Maildrop,
        to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, logger: Logger
    ) async -> POP3Session.MessageOutcome {
        var encoder = POP3MessageEncoder(bodyLineLimit: bodyLineLimit)
        var started = false
        var encoded: [UInt8] = []
        func send(_ bytes: [UInt8]) async throws {
            var buffer = ByteBuffer()
            if !started {
                started = true
                buffer.writeString(status.encoded())
            }
            buffer.writeBytes(bytes)
            try await outbound.write(buffer)
        }
        do {
            do {
                try await maildrop.read(index) { chunk in
                    encoded.removeAll(keepingCapacity: true)
                    encoder.encode(chunk, into: &encoded)
                    if !encoded.isEmpty || !started { try await send(encoded) }
                    if encoder.isComplete { throw POP3EnoughRead() }
                }
            } catch {
                // TOP ended the read (the maildrop may have wrapped the error on its way out).
                guard encoder.isComplete else { throw error }
            }
            try await send(encoder.finish())
            return .sent
        } catch {
            logger.error("reading a message failed", metadata: ["index": "\(index)", "error": "\(error)", "started": "\(started)"])
            return started ? .interrupted : .unavailable
        }
    }

    static func describe(_ result: POP3AuthResult) -> String {
        switch result {
        case .ok: return "ok"
        case .invalid: return "failed"
        case .temporarilyRefused: return "refused"
        case .loginDelay: return "login-delay"
        }
    }

}

/// RFC 1939 §3: a client idle past the autologout timer is disconnected without entering
/// the UPDATE state, so nothing it marked is deleted.
final class POP3IdleTimeoutHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long the goodbye may take to reach a client before the connection is closed anyway.
    static let closeGrace: TimeAmount = .seconds(5)

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            let channel = context.channel
            let reply = channel.allocator.buffer(string: POP3Response.error("Disconnected for inactivity").encoded())
            // A client that stopped reading would never let the write complete.
            channel.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
            context.writeAndFlush(NIOAny(reply)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
