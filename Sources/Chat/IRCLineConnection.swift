import Logging

/// One IRC session over a transport that carries whole lines: web chat's WebSocket, one IRC
/// line per text message (`IRCWebSocketFraming`). The same driver, session and hub as a TCP
/// client (`IRCConnection`), so a web user and a TCP user share channels, order and history;
/// only the framing and the reasons a connection ends differ:
/// - input ends when the browser closes the socket (or the HTTP server stops),
/// - `admitted` is asked every `admissionCheckInterval`: when the web session that opened the
///   socket has ended (logged out everywhere, expired, account disabled) the client gets
///   `ERROR` and the connection closes.
public struct IRCLineConnection: Sendable {
    public let hub: ChatHub
    public let authenticator: any ChatAuthenticator
    public let remoteAddress: String
    public let admissionCheckInterval: Duration
    public let logger: Logger

    public init(hub: ChatHub, authenticator: any ChatAuthenticator, remoteAddress: String, admissionCheckInterval: Duration = .seconds(5), logger: Logger) {
        self.hub = hub
        self.authenticator = authenticator
        self.remoteAddress = remoteAddress
        self.admissionCheckInterval = admissionCheckInterval
        self.logger = logger
    }

    typealias Event = IRCConnectionEvent<String>

    /// Runs until the client quits, its input ends, it floods, or its admission ends.
    /// - input: the text messages from the client; after each one is handled `handled()` is
    ///   called, so the transport reads one message ahead at most (backpressure).
    /// - write: sends lines (without CR LF), one message each, in order.
    /// - Returns: why the connection ended (for the log).
    @discardableResult
    public func run(
        session: IRCSession, input: AsyncStream<String>, handled: @escaping @Sendable () -> Void,
        write: @escaping @Sendable ([String]) async throws -> Void, admitted: @escaping @Sendable () async -> Bool
    ) async -> String {
        let (clientID, deliveries) = hub.connect()
        var driver = IRCConnectionDriver(hub: hub, authenticator: authenticator, session: session, clientID: clientID, remoteAddress: remoteAddress)
        let interval = admissionCheckInterval
        var closeReason = "Connection closed"
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await text in input { sink.yield(.input(text)) }
                sink.yield(.inputEnded)
            }
            group.addTask { await Event.forward(deliveries, to: sink) }
            group.addTask { await Event.tick(every: interval, to: sink) }
            defer {
                group.cancelAll()
                sink.finish()
            }
            for await event in events {
                let output: IRCConnectionDriver.Output
                switch event {
                case .inputEnded:
                    return
                case .input(let text):
                    output = await driver.received(IRCWebSocketFraming.input(fromText: text))
                    handled()
                case .delivery(let delivery):
                    output = await driver.delivered(delivery)
                case .deliveriesEnded:
                    closeReason = "SendQ exceeded"
                    try? await write([IRCWebSocketFraming.text(from: IRCMessage(command: "ERROR", params: ["Closing Link: SendQ exceeded"]))])
                    return
                case .tick:
                    if await admitted() { continue }
                    closeReason = "Web session ended"
                    try? await write([IRCWebSocketFraming.text(from: IRCMessage(command: "ERROR", params: ["Closing Link: Web session ended, sign in again"]))])
                    return
                }
                if !output.messages.isEmpty {
                    do {
                        try await write(output.messages.map(IRCWebSocketFraming.text(from:)))
                    } catch {
                        closeReason = "Write error"
                        return
                    }
                }
                if output.close {
                    closeReason = "Quit"
                    return
                }
            }
            closeReason = "Server shutting down"
        }
        await driver.end(closeReason: closeReason)
        logger.info(
            "web chat session ended",
            metadata: [
                "user": "\(driver.session.account ?? "-")", "nick": "\(driver.session.nick ?? "-")", "requests": "\(driver.requests)",
                "reason": "\(closeReason)",
            ])
        return closeReason
    }
}
