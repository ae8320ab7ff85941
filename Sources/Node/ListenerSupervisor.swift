import Chat
import Directory
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import IMAP
import POP3
import SMTP
import ServiceLifecycle
import Web

/// Keeps the node's listeners in line with the effective config: binds what is enabled,
/// rebinds when an address or port changes, and on graceful shutdown drains (the agent says
/// `drain`, sessions get `svcpkgDrainTimeout` seconds) before closing the rest.
public struct ListenerSupervisor: Service {
    static let reconcileInterval: Duration = .milliseconds(200)
    static let retryAfterFailure: TimeInterval = 5

    let runtime: NodeRuntime
    let mail: MailServices
    let pop3: POP3MailServices
    let imap: IMAPMailServices
    let chat: ChatServices
    let chatHub: ChatHub
    /// The web-mail routes, mounted on the HTTP port; nil when they could not be set up.
    let web: WebMail?
    let tls: TLSContextProvider
    let metrics: NodeMetrics
    let logger: Logger

    init(
        runtime: NodeRuntime, mail: MailServices, pop3: POP3MailServices, imap: IMAPMailServices, chat: ChatServices, chatHub: ChatHub,
        web: WebMail?, tls: TLSContextProvider, metrics: NodeMetrics, logger: Logger
    ) {
        self.runtime = runtime
        self.mail = mail
        self.pop3 = pop3
        self.imap = imap
        self.chat = chat
        self.chatHub = chatHub
        self.web = web
        self.tls = tls
        self.metrics = metrics
        self.logger = logger
    }

    /// Modules this build serves.
    static let implementedModules: [ModuleName] = [.smtp, .submission, .pop3, .imap, .chat, .web]

    /// One protocol listener: its name (as in /healthz), the module that enables it, its port, implicit TLS.
    struct ProtocolListener: Sendable {
        var name: String
        var module: ModuleName
        var port: @Sendable (NodeConfig) -> Int
        var implicitTLS: Bool
    }

    static let protocolListeners: [ProtocolListener] = [
        ProtocolListener(name: "smtp", module: .smtp, port: { $0.smtpPort }, implicitTLS: false),
        ProtocolListener(name: "submission", module: .submission, port: { $0.submissionPort }, implicitTLS: false),
        ProtocolListener(name: "smtps", module: .submission, port: { $0.smtpsPort }, implicitTLS: true),
        ProtocolListener(name: "pop3", module: .pop3, port: { $0.pop3Port }, implicitTLS: false),
        ProtocolListener(name: "pop3s", module: .pop3, port: { $0.pop3sPort }, implicitTLS: true),
        ProtocolListener(name: "imap", module: .imap, port: { $0.imapPort }, implicitTLS: false),
        ProtocolListener(name: "imaps", module: .imap, port: { $0.imapsPort }, implicitTLS: true),
        ProtocolListener(name: "irc", module: .chat, port: { $0.ircPort }, implicitTLS: false),
        ProtocolListener(name: "ircs", module: .chat, port: { $0.ircsPort }, implicitTLS: true),
    ]

    struct Endpoint: Equatable, CustomStringConvertible {
        var host: String
        var port: Int
        var description: String { "\(host):\(port)" }
    }

    final class State {
        var http: (endpoint: Endpoint, server: HTTPHealthServer)?
        var https: (endpoint: Endpoint, server: HTTPHealthServer)?
        var agent: (endpoint: Endpoint, server: AgentCheckServer)?
        var failures: [String: (endpoint: Endpoint, at: Date)] = [:]
        var servers: [String: (endpoint: Endpoint, server: any ProtocolServer)] = [:]
    }

    public func run() async throws {
        let stopping = NIOLockedValueBox(false)
        let state = State()
        await withGracefulShutdownHandler {
            while !stopping.withLockedValue({ $0 }) && !Task.isCancelled {
                await reconcile(state)
                try? await Task.sleep(for: Self.reconcileInterval)
            }
        } onGracefulShutdown: {
            stopping.withLockedValue { $0 = true }
        }
        runtime.update { $0.shuttingDown = true }
        // Stop accepting first; sessions in progress get the drain timeout to finish.
        for (_, running) in state.servers { await running.server.stopAccepting() }
        await drain()
        for (_, running) in state.servers { await running.server.stop() }
        if let agent = state.agent { await agent.server.stop() }
        if let http = state.http { await http.server.stop() }
        if let https = state.https { await https.server.stop() }
        logger.notice("listeners closed")
    }

    /// Waits until no session is left or the drain timeout passes.
    func drain() async {
        let timeout = TimeInterval(runtime.snapshot.nodeConfig.drainTimeout)
        let deadline = Date().addingTimeInterval(timeout)
        logger.notice("draining", metadata: ["connections": "\(runtime.snapshot.activeConnections)", "timeout": "\(Int(timeout))s"])
        while runtime.snapshot.activeConnections > 0 && Date() < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        let left = runtime.snapshot.activeConnections
        if left > 0 { logger.warning("drain timeout reached; closing remaining sessions", metadata: ["connections": "\(left)"]) }
    }

    func reconcile(_ state: State) async {
        let config = runtime.snapshot.nodeConfig
        await reconcileHTTP(config: config, state)
        let agentEndpoint = Endpoint(host: config.listenAddress, port: config.agentPort)
        if state.agent?.endpoint != agentEndpoint, shouldTry("agent", agentEndpoint, state) {
            if let old = state.agent {
                await old.server.stop()
                state.agent = nil
            }
            do {
                let server = try await AgentCheckServer.start(host: agentEndpoint.host, port: agentEndpoint.port, runtime: runtime)
                state.agent = (agentEndpoint, server)
                state.failures["agent"] = nil
                setStatus("agent", .up(address: agentEndpoint.host, port: agentEndpoint.port))
                logger.info("agent-check listening", metadata: ["endpoint": "\(agentEndpoint)"])
            } catch {
                state.failures["agent"] = (agentEndpoint, Date())
                setStatus("agent", .failed("cannot bind \(agentEndpoint): \(error)"))
                logger.error("cannot bind agent-check", metadata: ["endpoint": "\(agentEndpoint)", "error": "\(error)"])
            }
        }
        for listener in Self.protocolListeners {
            await reconcileListener(listener, config: config, state)
        }
        setStatus("web", webStatus(config: config, http: state.http?.endpoint))
        // Modules not written yet say so plainly when enabled.
        runtime.update { snapshot in
            for module in ModuleName.allCases where !Self.implementedModules.contains(module) {
                snapshot.listeners[module.rawValue] = config.modules.contains(module) ? .notInThisBuild : .disabled
            }
        }
    }

    /// HTTP (`svcpkgHttpPort`) and HTTPS (`svcpkgHttpsPort`): the same application, the
    /// second under the node's certificate and closed, saying why, while none is configured.
    func reconcileHTTP(config: NodeConfig, _ state: State) async {
        let runtime = self.runtime
        await reconcileHTTPListener("http", slot: \.http, desired: Endpoint(host: config.listenAddress, port: config.httpPort), state) { nil }
        let closedWithoutCertificate = missingCertificate(config)
        await reconcileHTTPListener(
            "https", slot: \.https, desired: closedWithoutCertificate == nil ? Endpoint(host: config.listenAddress, port: config.httpsPort) : nil,
            state, statusWhenClosed: closedWithoutCertificate ?? .disabled
        ) { [tls] in
            guard let configuration = tls.liveServerConfiguration(config: { runtime.snapshot.nodeConfig }) else {
                throw TLSSetupError("no TLS certificate loaded")
            }
            return configuration
        }
    }

    /// Why a port that needs the node's certificate stays closed; nil when there is one.
    private func missingCertificate(_ config: NodeConfig) -> NodeRuntime.ListenerStatus? {
        guard tls.context(for: config) == nil else { return nil }
        return .failed(tls.lastError ?? "no TLS certificate configured (svcpkgTlsCertificateFile, svcpkgTlsKeyFile)")
    }

    private func reconcileHTTPListener(
        _ name: String, slot: ReferenceWritableKeyPath<State, (endpoint: Endpoint, server: HTTPHealthServer)?>, desired: Endpoint?,
        _ state: State, statusWhenClosed: NodeRuntime.ListenerStatus = .disabled,
        tlsConfiguration: () throws -> TLSConfiguration?
    ) async {
        await reconcileEndpoint(
            name, current: state[keyPath: slot]?.endpoint, desired: desired, statusWhenClosed: statusWhenClosed, state,
            stop: {
                await state[keyPath: slot]?.server.stop()
                state[keyPath: slot] = nil
            },
            start: { endpoint in
                let server = try await HTTPHealthServer.start(
                    host: endpoint.host, port: endpoint.port, tls: try tlsConfiguration(), runtime: runtime, metrics: metrics, web: web, logger: logger)
                state[keyPath: slot] = (endpoint, server)
            })
    }

    func reconcileListener(_ listener: ProtocolListener, config: NodeConfig, _ state: State) async {
        let name = listener.name
        let enabled = config.modules.contains(listener.module)
        var desired = enabled ? Endpoint(host: config.listenAddress, port: listener.port(config)) : nil
        var statusWhenClosed = NodeRuntime.ListenerStatus.disabled
        // Implicit TLS needs a certificate; without one the port stays closed and says why.
        if listener.implicitTLS, enabled, let closed = missingCertificate(config) {
            desired = nil
            statusWhenClosed = closed
        }
        await reconcileEndpoint(
            name, current: state.servers[name]?.endpoint, desired: desired, statusWhenClosed: statusWhenClosed, state,
            stop: {
                await state.servers[name]?.server.stop()
                state.servers[name] = nil
            },
            start: { endpoint in state.servers[name] = (endpoint, try await startServer(listener, at: endpoint)) })
    }

    /// Brings one listener to `desired` (nil: closed, showing `statusWhenClosed`): stops the old
    /// server when the endpoint changed, starts the new one, and reports either in `/healthz`;
    /// a failed bind is retried after `retryAfterFailure`.
    private func reconcileEndpoint(
        _ name: String, current: Endpoint?, desired: Endpoint?, statusWhenClosed: NodeRuntime.ListenerStatus, _ state: State,
        stop: () async -> Void, start: (Endpoint) async throws -> Void
    ) async {
        if current == desired {
            if desired == nil { setStatus(name, statusWhenClosed) }
            return
        }
        if let desired, !shouldTry(name, desired, state) { return }
        if let current {
            logger.notice("stopping \(name) listener", metadata: ["endpoint": "\(current)"])
            await stop()
        }
        guard let desired else {
            setStatus(name, statusWhenClosed)
            return
        }
        do {
            try await start(desired)
            state.failures[name] = nil
            setStatus(name, .up(address: desired.host, port: desired.port))
            logger.info("\(name) listening", metadata: ["endpoint": "\(desired)"])
        } catch {
            state.failures[name] = (desired, Date())
            setStatus(name, .failed("cannot bind \(desired): \(error)"))
            logger.error("cannot bind \(name)", metadata: ["endpoint": "\(desired)", "error": "\(error)"])
        }
    }

    /// Starts the server of `listener`'s protocol. STARTTLS/STLS is offered on the plain ports
    /// whenever a certificate is configured.
    private func startServer(_ listener: ProtocolListener, at endpoint: Endpoint) async throws -> any ProtocolServer {
        let runtime = self.runtime
        let tls = self.tls
        let tlsContext: @Sendable () -> NIOSSLContext? = { tls.context(for: runtime.snapshot.nodeConfig) }
        if listener.module == .pop3 {
            let settings = POP3Server.Settings(
                host: endpoint.host, port: endpoint.port, implicitTLS: listener.implicitTLS, tlsContext: tlsContext
            ) { loopback in
                let config = runtime.snapshot.nodeConfig
                return POP3Session.Configuration(
                    hostname: config.hostname, tlsAvailable: false,
                    allowPlaintextAuth: config.allowPlaintextAuthLoopback && loopback,
                    expire: config.pop3ExpireDays.map { .days($0) } ?? .never,
                    loginDelay: config.pop3LoginDelay > 0 ? config.pop3LoginDelay : nil)
            }
            return try await POP3Server.start(settings: settings, services: pop3, logger: logger)
        }
        if listener.module == .imap {
            let settings = IMAPServer.Settings(
                host: endpoint.host, port: endpoint.port, implicitTLS: listener.implicitTLS, tlsContext: tlsContext,
                pollInterval: { .milliseconds(runtime.snapshot.nodeConfig.imapPollInterval) }
            ) { loopback in
                let config = runtime.snapshot.nodeConfig
                return IMAPSession.Configuration(
                    allowPlaintextAuth: config.allowPlaintextAuthLoopback && loopback,
                    limits: IMAPLimits(maxAppendLiteralSize: config.maxMessageSize, maxAppendCommandSize: max(100 * 1_048_576, config.maxMessageSize + 1_048_576)),
                    hostname: config.hostname)
            }
            return try await IMAPServer.start(settings: settings, services: imap, logger: logger)
        }
        if listener.module == .chat {
            let pid = chatHub.pid
            let settings = IRCServer.Settings(
                host: endpoint.host, port: endpoint.port, implicitTLS: listener.implicitTLS, tlsContext: tlsContext
            ) { loopback, tlsActive in
                ChatServices.sessionConfiguration(runtime.snapshot.nodeConfig, loopback: loopback, tlsActive: tlsActive, pid: pid)
            }
            return try await IRCServer.start(settings: settings, hub: chatHub, services: chat, logger: logger)
        }
        let isSubmission = listener.module == .submission
        let settings = SMTPServer.Settings(
            host: endpoint.host, port: endpoint.port, isSubmission: isSubmission, implicitTLS: listener.implicitTLS,
            tlsContext: tlsContext
        ) { loopback in
            let config = runtime.snapshot.nodeConfig
            return SMTPSession.Configuration(
                hostname: config.hostname, isSubmission: isSubmission, tlsAvailable: false,
                allowPlaintextAuth: config.allowPlaintextAuthLoopback && loopback, maxMessageSize: config.maxMessageSize,
                maxRecipients: config.maxRecipients)
        }
        return try await SMTPServer.start(settings: settings, services: mail, logger: logger)
    }

    /// Web-mail rides on the HTTP listener; without the cluster key nobody can log in, which
    /// /healthz says in so many words.
    func webStatus(config: NodeConfig, http: Endpoint?) -> NodeRuntime.ListenerStatus {
        guard config.modules.contains(.web) else { return .disabled }
        guard web != nil else { return .failed("web-mail could not be set up (see the log)") }
        guard config.webSessionKey != nil else { return .failed("web login disabled: no svcpkgWebSessionKey in LDAP") }
        guard let http else { return .failed("the HTTP port is not listening") }
        return .up(address: http.host, port: http.port)
    }

    private func shouldTry(_ key: String, _ endpoint: Endpoint, _ state: State) -> Bool {
        guard let failure = state.failures[key], failure.endpoint == endpoint else { return true }
        return Date().timeIntervalSince(failure.at) >= Self.retryAfterFailure
    }

    private func setStatus(_ key: String, _ status: NodeRuntime.ListenerStatus) {
        runtime.update { $0.listeners[key] = status }
    }
}

/// Hummingbird application serving `/healthz`, `/metrics` and web-mail, run in a service
/// group of its own so that it can be stopped (and rebound) without stopping the node.
final class HTTPHealthServer: Sendable {
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(group: ServiceGroup, task: Task<Void, any Error>) {
        self.group = group
        self.task = task
    }

    /// `tls`: serve HTTPS with it (the HTTPS port) instead of plain HTTP.
    static func start(
        host: String, port: Int, tls: TLSConfiguration? = nil, runtime: NodeRuntime, metrics: NodeMetrics, web: WebMail?, logger: Logger
    ) async throws -> HTTPHealthServer {
        let router = Router(context: WebRequestContext.self)
        // On the TLS port every request is HTTPS (Secure cookies, HSTS).
        if tls != nil { router.add(middleware: MarkServedOverTLS()) }
        // First, so that its middleware (security headers, error pages) covers every route.
        web?.register(on: router)
        router.get("/healthz") { _, _ -> Response in
            let report = HealthReport(runtime: runtime)
            return Response(
                status: .init(code: report.httpStatus),
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: report.json() + "\n")))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render(runtime: runtime))))
        }
        // Web chat's WebSocket upgrade (`/chat/socket`) on the same port and engine; a frame or
        // message longer than an IRC line closes the socket (1009).
        let webSocketRouter = Router(context: WebRequestContext.self)
        web?.registerWebSocket(on: webSocketRouter)
        let maxFrame = IRCWebSocketFraming.maxMessageBytes
        let started = OneShot<Void>()
        let plain: HTTPServerBuilder = .http1WebSocketUpgrade(webSocketRouter: webSocketRouter, configuration: .init(ws: .init(maxFrameSize: maxFrame)))
        let server: HTTPServerBuilder = try tls.map { try .tls(plain, tlsConfiguration: $0) } ?? plain
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: "svcpkg"),
            onServerRunning: { _ in started.succeed(()) },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task {
            do {
                try await group.run()
                started.fail(CancellationError())
            } catch {
                started.fail(error)
                throw error
            }
        }
        try await started.wait()
        return HTTPHealthServer(group: group, task: task)
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// Marks requests that came in on the node's own TLS port as `https` (the request's scheme),
/// so web-mail treats them as HTTPS (Secure cookies, HSTS), as it does behind a content switch
/// that terminates TLS and says so in `X-Forwarded-Proto`.
struct MarkServedOverTLS: RouterMiddleware {
    typealias Context = WebRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var head = request.head
        head.scheme = "https"
        return try await next(Request(head: head, body: request.body), context)
    }
}

/// A value delivered once, awaited once.
final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case pending
        case waiting(CheckedContinuation<Value, any Error>)
        case done(Result<Value, any Error>)
    }

    private let state = NIOLockedValueBox<State>(.pending)

    func succeed(_ value: Value) { complete(.success(value)) }
    func fail(_ error: any Error) { complete(.failure(error)) }

    private func complete(_ result: Result<Value, any Error>) {
        let continuation: CheckedContinuation<Value, any Error>? = state.withLockedValue { state in
            switch state {
            case .pending:
                state = .done(result)
                return nil
            case .waiting(let continuation):
                state = .done(result)
                return continuation
            case .done:
                return nil
            }
        }
        continuation?.resume(with: result)
    }

    func wait() async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<Value, any Error>? = state.withLockedValue { state in
                switch state {
                case .pending:
                    state = .waiting(continuation)
                    return nil
                case .done(let result):
                    return result
                case .waiting:
                    return .failure(CancellationError())
                }
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

/// What the supervisor needs of a protocol server to drain and stop it.
protocol ProtocolServer: Sendable {
    func stopAccepting() async
    func stop() async
}

extension SMTPServer: ProtocolServer {}
extension POP3Server: ProtocolServer {}
extension IMAPServer: ProtocolServer {}
extension IRCServer: ProtocolServer {}
