import Chat
import Logging
import Web

/// Web chat's view of the node: a WebSocket of the web-mail runs the same IRC session and hub
/// as the IRC port (`IRCLineConnection`), with the account of the web session and the limits
/// of a TCP client (connections per address, flood buckets, line length).
final class WebChatBridge: WebChatServices {
    let chat: ChatServices
    let hub: ChatHub
    let runtime: NodeRuntime
    let logger: Logger

    init(chat: ChatServices, hub: ChatHub, runtime: NodeRuntime, logger: Logger) {
        self.chat = chat
        self.hub = hub
        self.runtime = runtime
        self.logger = logger
    }

    var isEnabled: Bool { runtime.snapshot.nodeConfig.modules.contains(.chat) }
    var subprotocol: String { IRCWebSocketFraming.subprotocol }
    var maxMessageBytes: Int { IRCWebSocketFraming.maxMessageBytes }

    func runChat(
        account: String, remoteAddress: String, input: AsyncStream<String>, handled: @escaping @Sendable () -> Void,
        write: @escaping @Sendable ([String]) async throws -> Void, admitted: @escaping @Sendable () async -> Bool
    ) async {
        let config = runtime.snapshot.nodeConfig
        guard config.modules.contains(.chat) else {
            try? await write([IRCWebSocketFraming.text(from: IRCMessage(command: "ERROR", params: ["Closing Link: chat is not enabled on this node"]))])
            return
        }
        if let refusal = chat.connectionOpened(remoteAddress: remoteAddress) {
            try? await write([IRCWebSocketFraming.text(from: IRCMessage(command: "ERROR", params: [refusal]))])
            return
        }
        defer { chat.connectionClosed(remoteAddress: remoteAddress) }
        var logger = logger
        logger[metadataKey: "session"] = "\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        logger[metadataKey: "remote"] = "\(remoteAddress)"
        logger[metadataKey: "user"] = "\(account)"
        logger.info("web chat session started")
        // Not loopback: the account is already known, and no password is ever taken here.
        let configuration = ChatServices.sessionConfiguration(config, loopback: false, tlsActive: false, pid: hub.pid)
        let connection = IRCLineConnection(hub: hub, authenticator: chat, remoteAddress: remoteAddress, logger: logger)
        await connection.run(
            session: IRCSession(configuration: configuration, authenticatedAs: account), input: input, handled: handled, write: write,
            admitted: admitted)
    }
}
