import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import Web

/// A node's chat that only answers the upgrade questions (the IRC side is ChatTests' and the
/// e2e tests').
struct TestChatServices: WebChatServices {
    var isEnabled: Bool { true }
    var subprotocol: String { "text.ircv3.net" }
    var maxMessageBytes: Int { 8703 }

    func runChat(
        account: String, remoteAddress: String, input: AsyncStream<String>, handled: @escaping @Sendable () -> Void,
        write: @escaping @Sendable ([String]) async throws -> Void, admitted: @escaping @Sendable () async -> Bool
    ) async {}
}

/// Web chat's page and the admission of its WebSocket upgrade. The upgrade route and
/// `/chat/socket` on the HTTP router ask the same `chatAdmission`; the router's answer shows
/// its verdict as a status (a refused upgrade itself is a bare 400 from hummingbird-websocket,
/// checked in tests/e2e/test_webchat.py).
@Suite struct WebChatTests {
    static func app(_ services: TestWebServices, chat: Bool = true) throws -> some ApplicationProtocol {
        let router = Router(context: WebRequestContext.self)
        try WebMail(services: services, chat: chat ? TestChatServices() : nil, logger: Logger(label: "test")).register(on: router)
        return Application(router: router)
    }

    static let upgrade: HTTPFields = [
        .connection: "Upgrade", .upgrade: "websocket", .secWebSocketVersion: "13", .secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ==",
        .secWebSocketProtocol: "text.ircv3.net",
    ]

    static func headers(_ browser: Browser, origin: String? = "http://localhost") -> HTTPFields {
        var headers = upgrade
        headers.append(contentsOf: browser.cookieHeader)
        if let origin { headers[.origin] = origin }
        return headers
    }

    @Test func upgradeNeedsTheSessionCookieAndOurOrigin() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try await Self.app(services).test(.router) { client in
            var browser = try await WebRouterTests.login(client)
            // With a valid cookie and our origin the upgrade is admitted (the router alone
            // answers 426: it is the upgrade handler that switches protocols).
            let admitted = try await client.execute(uri: "/chat/socket", method: .get, headers: Self.headers(browser))
            #expect(admitted.status == .upgradeRequired)
            // No cookie.
            let anonymous = try await client.execute(uri: "/chat/socket", method: .get, headers: Self.headers(Browser()))
            #expect(anonymous.status == .unauthorized)
            // Another site's page, or no Origin at all (a script outside a browser).
            let foreign = try await client.execute(uri: "/chat/socket", method: .get, headers: Self.headers(browser, origin: "https://evil.example"))
            #expect(foreign.status == .forbidden)
            let lookalike = try await client.execute(uri: "/chat/socket", method: .get, headers: Self.headers(browser, origin: "http://localhost.evil.example"))
            #expect(lookalike.status == .forbidden)
            let noOrigin = try await client.execute(uri: "/chat/socket", method: .get, headers: Self.headers(browser, origin: nil))
            #expect(noOrigin.status == .forbidden)
            var crossSite = Self.headers(browser)
            crossSite[.secFetchSite] = "cross-site"
            #expect(try await client.execute(uri: "/chat/socket", method: .get, headers: crossSite).status == .forbidden)
            // A subprotocol we do not speak.
            var binary = Self.headers(browser)
            binary[.secWebSocketProtocol] = "binary.ircv3.net"
            #expect(try await client.execute(uri: "/chat/socket", method: .get, headers: binary).status == .badRequest)
            // A tampered cookie.
            var value = Array(try #require(browser.cookies["svcpkg_session"]))
            value[12] = value[12] == "A" ? "B" : "A"
            browser.cookies["svcpkg_session"] = String(value)
            let tampered = try await client.execute(uri: "/chat/socket", method: .get, headers: Self.headers(browser))
            #expect(tampered.status == .unauthorized)
        }
    }

    @Test func admissionEndsWithTheSession() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        let mail = try WebMail(services: services, chat: TestChatServices(), logger: Logger(label: "test"))
        let store = try services.mailStore(for: "alice@example.org")
        let sealer = try #require(SessionSealer(key: services.key))
        let session = WebSession.new(user: "alice@example.org", epoch: 0, lifetime: 3600)
        let request = Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "node.example:8080", path: "/chat/socket", headerFields: [
                .cookie: "svcpkg_session=\(try sealer.seal(session))", .origin: "http://NODE.example:8080", .secWebSocketProtocol: "text.ircv3.net",
            ]),
            body: .init(buffer: ByteBuffer()))
        guard case .admitted(let auth, let subprotocol) = await mail.chatAdmission(request) else {
            Issue.record("a valid session from our origin is refused")
            return
        }
        #expect(subprotocol == "text.ircv3.net")
        #expect(auth.session.user == "alice@example.org")
        #expect(await mail.chatSessionStillValid(auth))
        // Disabled in the directory: the open socket's next check ends it.
        _ = services.disabled.withLockedValue { $0.insert("alice@example.org") }
        #expect(await mail.chatSessionStillValid(auth) == false)
        _ = services.disabled.withLockedValue { $0.remove("alice@example.org") }
        // Expired.
        var expired = auth
        expired.session.expiresAt = Int64(Date().timeIntervalSince1970) - 1
        #expect(await mail.chatSessionStillValid(expired) == false)
        // Logged out everywhere (the epoch read again after the node's cache time).
        _ = try RevocationEpoch.raise(store)
        try await Task.sleep(for: .milliseconds(Int(WebMail.epochCacheSeconds * 1000) + 200))
        #expect(await mail.chatSessionStillValid(auth) == false)
    }

    @Test func chatPageIsLinkedAndLoadsOnlyItsScript() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try await Self.app(services).test(.router) { client in
            let browser = try await WebRouterTests.login(client)
            let mail = String(buffer: try await client.execute(uri: "/mail", method: .get, headers: browser.cookieHeader).body)
            #expect(mail.contains("<a id=\"chat-link\" href=\"/chat\""))
            let page = try await client.execute(uri: "/chat", method: .get, headers: browser.cookieHeader)
            #expect(page.status == .ok)
            let html = String(buffer: page.body)
            #expect(html.contains("data-socket=\"/chat/socket\""))
            #expect(html.contains("<a id=\"chat-link\" href=\"/chat\" accesskey=\"t\" aria-current=\"page\">Chat</a>"))
            #expect(html.contains("<script src=\"\(WebAsset.chatScript.path)\" defer></script>"))
            #expect(!html.contains("<script>"))
            #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            let script = try await client.execute(uri: WebAsset.chatScript.path, method: .get)
            #expect(script.status == .ok)
            let js = String(buffer: script.body)
            #expect(js.contains("text.ircv3.net"))
            // Text from the server goes into the page as text only.
            #expect(!js.contains("innerHTML"))
            // Not signed in: to the login page.
            #expect(try await client.execute(uri: "/chat", method: .get).status == .seeOther)
        }
        try await Self.app(services, chat: false).test(.router) { client in
            let browser = try await WebRouterTests.login(client)
            let mail = String(buffer: try await client.execute(uri: "/mail", method: .get, headers: browser.cookieHeader).body)
            #expect(!mail.contains("href=\"/chat\""))
            #expect(try await client.execute(uri: "/chat", method: .get, headers: browser.cookieHeader).status == .notFound)
        }
    }
}
