import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// Web chat: the `/chat` page and its WebSocket (`/chat/socket`), which carries IRC lines
/// (IRCv3 WebSocket, one line per text message) to the node's IRC session code.
extension WebMail {
    enum ChatAdmission {
        case admitted(Authenticated, subprotocol: String?)
        case refused(HTTPResponse.Status, String)
    }

    /// Whether a request may open the chat socket. A WebSocket is not bound by the browser's
    /// same-origin policy, so the `Origin` header is what keeps another site's page from
    /// opening one with the user's cookie (RFC 6455 §10.2): it must be present and name this
    /// host. The session cookie names the account; no password ever reaches the script.
    func chatAdmission(_ request: Request) async -> ChatAdmission {
        guard let chat, chat.isEnabled, services.settings.enabled else { return .refused(.notFound, "Web chat is not offered by this node.") }
        if request.headers[.secFetchSite] == "cross-site" { return .refused(.forbidden, "Cross-site WebSocket requests are not accepted.") }
        guard let origin = request.headers[.origin], let authority = request.head.authority,
            let originHost = URL(string: origin)?.host, originHost.lowercased() == Self.hostName(authority).lowercased()
        else { return .refused(.forbidden, "WebSocket requests must come from this site's own pages (Origin).") }
        let offered = (request.headers[.secWebSocketProtocol] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        // IRCv3: without a subprotocol the client gets text messages too; one it did not offer is never chosen.
        guard offered.isEmpty || offered.contains(chat.subprotocol) else {
            return .refused(.badRequest, "The chat socket speaks the \(chat.subprotocol) subprotocol only.")
        }
        let auth: Authenticated
        do {
            auth = try await authenticate(request)
        } catch WebError.loginDisabled {
            return .refused(.serviceUnavailable, WebError.loginDisabled.message)
        } catch {
            return .refused(.unauthorized, "Sign in to web-mail first.")
        }
        return .admitted(auth, subprotocol: offered.isEmpty ? nil : chat.subprotocol)
    }

    /// The session still stands: not expired, not logged out everywhere, account still active.
    func chatSessionStillValid(_ auth: Authenticated) async -> Bool {
        guard auth.session.expiresAt > Int64(Date().timeIntervalSince1970) else { return false }
        guard let epoch = try? await currentEpoch(auth.store), epoch <= auth.session.epoch else { return false }
        return await services.accountIsActive(auth.session.user)
    }

    /// The chat page: channel list and join box, messages with scroll-back, members, topic.
    /// Everything dynamic is done by `chat.js` over the socket.
    func chatPage(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        guard chat?.isEnabled == true else { throw WebError.notFound("Web chat is not offered by this node.") }
        let auth = try await authenticate(request)
        return page(title: "Chat", template: "chat", data: ["socket": "/chat/socket", "chatCurrent": true], auth: auth, script: .chatScript)
    }

    /// `/chat/socket` reached without an upgrade: the status a refused upgrade stands for (401,
    /// 403, 400), else 426. (A refused upgrade itself gets hummingbird-websocket's bare 400;
    /// the reason is in the node's log. A page can ask here why.)
    func chatSocketWithoutUpgrade(_ request: Request, _ context: WebRequestContext) async -> Response {
        let status: HTTPResponse.Status
        let text: String
        switch await chatAdmission(request) {
        case .refused(let refusedStatus, let reason):
            status = refusedStatus
            text = reason
        case .admitted:
            status = .upgradeRequired
            text = "This address takes WebSocket connections only."
        }
        if status != .upgradeRequired {
            logger.notice("web chat socket refused", metadata: ["status": "\(status.code)", "reason": "\(text)", "remote": "\(request.clientAddress(context))"])
        }
        return Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    /// The WebSocket route, on the router given to the HTTP server's upgrade handler. A
    /// refused upgrade is answered 400 by hummingbird-websocket and never becomes a socket.
    public func registerWebSocket(on router: Router<WebRequestContext>) {
        router.ws("/chat/socket") { request, context in
            let subprotocol: String?
            switch await self.chatAdmission(request) {
            case .admitted(_, let offered):
                subprotocol = offered
            case .refused(let status, let reason):
                self.logger.notice(
                    "web chat upgrade refused", metadata: ["status": "\(status.code)", "reason": "\(reason)", "remote": "\(request.clientAddress(context))"])
                return .dontUpgrade
            }
            var headers = HTTPFields()
            if let subprotocol { headers[.secWebSocketProtocol] = subprotocol }
            return .upgrade(headers)
        } onUpgrade: { inbound, outbound, context in
            guard let chat = self.chat, case .admitted(let auth, _) = await self.chatAdmission(context.request) else { return }
            try await self.runChatSocket(
                chat: chat, auth: auth, remoteAddress: context.request.clientAddress(context.requestContext), inbound: inbound, outbound: outbound)
        }
    }

    func runChatSocket(chat: any WebChatServices, auth: Authenticated, remoteAddress: String, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let (input, inputSink) = AsyncStream.makeStream(of: String.self)
        let (credits, creditSink) = AsyncStream.makeStream(of: Void.self)
        let limit = chat.maxMessageBytes
        try await withThrowingTaskGroup(of: Void.self) { group in
            // One message read ahead at most: the next is read when the session took the last.
            group.addTask {
                defer { inputSink.finish() }
                var creditIterator = credits.makeAsyncIterator()
                for try await message in inbound.messages(maxSize: limit) {
                    guard case .text(let text) = message else {
                        try await outbound.close(.unacceptableData, reason: "text messages only (\(chat.subprotocol))")
                        return
                    }
                    inputSink.yield(text)
                    guard await creditIterator.next() != nil else { return }
                }
            }
            await chat.runChat(
                account: auth.session.user, remoteAddress: remoteAddress, input: input, handled: { creditSink.yield() },
                write: { lines in
                    for line in lines { try await outbound.write(.text(line)) }
                },
                admitted: { await self.chatSessionStillValid(auth) })
            creditSink.finish()
            group.cancelAll()
            // The reader's error (a message over the limit) closes the socket with its code.
            do {
                try await group.waitForAll()
            } catch is CancellationError {}
        }
    }
}
