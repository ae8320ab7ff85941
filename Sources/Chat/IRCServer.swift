import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServerSupport

/// What an IRC connection needs from the node besides the hub.
public protocol IRCServices: ChatAuthenticator {
    /// nil admits the connection; a reason refuses it (sent as `ERROR`).
    func connectionOpened(remoteAddress: String) -> String?
    /// Follows every admitted connection.
    func connectionClosed(remoteAddress: String)
}

/// A listening IRC server (plain or implicit TLS): one NIOAsyncChannel per connection,
/// each driven by an `IRCConnectionDriver` that merges client input with the hub's deliveries.
public final class IRCServer: Sendable {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var implicitTLS: Bool
        public var tlsContext: @Sendable () -> NIOSSLContext?
        /// The session configuration for a new connection (limits changed in LDAP apply to
        /// the next connection); the argument says whether the client is on loopback.
        public var session: @Sendable (_ clientIsLoopback: Bool, _ tlsActive: Bool) -> IRCSession.Configuration
        /// A client silent this long gets a PING; silent twice as long, it is disconnected.
        public var pingInterval: Duration

        public init(
            host: String, port: Int, implicitTLS: Bool = false, tlsContext: @escaping @Sendable () -> NIOSSLContext? = { nil },
            pingInterval: Duration = .seconds(90),
            session: @escaping @Sendable (_ clientIsLoopback: Bool, _ tlsActive: Bool) -> IRCSession.Configuration
        ) {
            self.host = host
            self.port = port
            self.implicitTLS = implicitTLS
            self.tlsContext = tlsContext
            self.pingInterval = pingInterval
            self.session = session
        }
    }

    private let loop: AcceptLoop<NIOAsyncChannel<ByteBuffer, ByteBuffer>>
    public var localPort: Int { loop.localPort }

    private init(loop: AcceptLoop<NIOAsyncChannel<ByteBuffer, ByteBuffer>>) {
        self.loop = loop
    }

    public static func start(settings: Settings, hub: ChatHub, services: some IRCServices, logger: Logger) async throws -> IRCServer {
        let implicitTLS = settings.implicitTLS
        let tlsContext = settings.tlsContext
        let serverChannel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .bind(host: settings.host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicitTLS {
                        guard let context = tlsContext() else { throw IRCServerError.noTLSCertificate }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let loop = AcceptLoop(serverChannel: serverChannel, requestedPort: settings.port, name: "IRC", logger: logger) { connection in
            await IRCConnection(settings: settings, hub: hub, services: services, logger: logger).run(connection)
        }
        return IRCServer(loop: loop)
    }

    /// Stops accepting and ends the sessions: chat sessions never end by themselves, so
    /// there is nothing to drain. Each client gets `ERROR` (and reconnects, through HAProxy,
    /// to another node); its channels get its QUIT line.
    public func stopAccepting() async {
        await loop.stop()
    }

    /// Stops accepting and ends open sessions (each writes its QUIT lines).
    public func stop() async {
        await loop.stop()
    }
}

enum IRCServerError: Error, CustomStringConvertible {
    case noTLSCertificate

    var description: String { "no TLS certificate is configured (svcpkgTlsCertificateFile, svcpkgTlsKeyFile)" }
}

struct IRCConnection<Services: IRCServices> {
    let settings: IRCServer.Settings
    let hub: ChatHub
    let services: Services
    let logger: Logger

    typealias Event = IRCConnectionEvent<ByteBuffer>

    func run(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let remote = connection.channel.remoteAddress
        let remoteAddress = remote?.ipAddress ?? "unknown"
        if let refusal = services.connectionOpened(remoteAddress: remoteAddress) {
            logger.notice("IRC connection refused", metadata: ["remote": "\(remoteAddress)", "reason": "\(refusal)"])
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(string: IRCMessage(command: "ERROR", params: [refusal]).encoded()))
            }
            return
        }
        defer { services.connectionClosed(remoteAddress: remoteAddress) }
        var logger = logger
        logger[metadataKey: "session"] = "\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        logger[metadataKey: "remote"] = "\(remoteAddress)"
        let configuration = settings.session(ClientAddress.isLoopback(remote), settings.implicitTLS)
        let (clientID, deliveries) = hub.connect()
        var driver = IRCConnectionDriver(
            hub: hub, authenticator: services, session: IRCSession(configuration: configuration), clientID: clientID,
            remoteAddress: remoteAddress)
        let pingInterval = settings.pingInterval
        var closeReason = "Connection closed"
        do {
            try await connection.executeThenClose { inbound, outbound in
                let (events, sink) = AsyncStream.makeStream(of: Event.self)
                let (credits, creditSink) = AsyncStream.makeStream(of: Void.self)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // One read ahead at most: the reader waits until the loop took the last one.
                    group.addTask {
                        var creditIterator = credits.makeAsyncIterator()
                        do {
                            for try await buffer in inbound {
                                sink.yield(.input(buffer))
                                guard await creditIterator.next() != nil else { break }
                            }
                        } catch {}
                        sink.yield(.inputEnded)
                    }
                    group.addTask { await Event.forward(deliveries, to: sink) }
                    group.addTask { await Event.tick(every: pingInterval / 3, to: sink) }
                    defer {
                        group.cancelAll()
                        creditSink.finish()
                        sink.finish()
                    }
                    var lastInput = ContinuousClock.now
                    var pinged = false
                    for await event in events {
                        let output: IRCConnectionDriver.Output
                        switch event {
                        case .inputEnded:
                            return
                        case .input(let buffer):
                            lastInput = .now
                            pinged = false
                            output = await driver.received(buffer.readableBytesView)
                            creditSink.yield()
                        case .delivery(let delivery):
                            output = await driver.delivered(delivery)
                        case .deliveriesEnded:
                            closeReason = "SendQ exceeded"
                            try? await outbound.write(ByteBuffer(string: IRCMessage(command: "ERROR", params: ["Closing Link: SendQ exceeded"]).encoded()))
                            return
                        case .tick:
                            let silent = ContinuousClock.now - lastInput
                            if silent > pingInterval * 2 {
                                closeReason = "Ping timeout"
                                try? await outbound.write(ByteBuffer(string: IRCMessage(command: "ERROR", params: ["Closing Link: Ping timeout"]).encoded()))
                                return
                            }
                            if silent > pingInterval && !pinged {
                                pinged = true
                                try await outbound.write(ByteBuffer(string: IRCMessage(command: "PING", params: [driver.session.configuration.serverName]).encoded()))
                            }
                            continue
                        }
                        if !output.messages.isEmpty { try await outbound.write(ByteBuffer(string: output.text)) }
                        if output.close {
                            closeReason = "Quit"
                            return
                        }
                    }
                    // The events end without a word only when the server stops (this task is
                    // cancelled): the goodbye is written from a task that is not.
                    closeReason = "Server shutting down"
                    let goodbye = ByteBuffer(string: IRCMessage(command: "ERROR", params: ["Closing Link: Server shutting down, reconnect"]).encoded())
                    await Task { try? await outbound.write(goodbye) }.value
                }
            }
        } catch {
            logger.debug("IRC connection ended with an error", metadata: ["error": "\(error)"])
        }
        await driver.end(closeReason: closeReason)
        logger.info(
            "IRC session ended",
            metadata: ["user": "\(driver.session.account ?? "-")", "nick": "\(driver.session.nick ?? "-")", "requests": "\(driver.requests)"])
    }
}
