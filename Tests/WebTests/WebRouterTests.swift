import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SharedTree
import Testing

@testable import Web

/// The services of a node for the router tests: a real store on a temporary shared tree, one
/// account, and a list of submitted messages in place of the queue.
final class TestWebServices: WebServices {
    struct Submitted: Sendable {
        var message: [UInt8]
        var sender: String
        var recipients: [String]
    }

    let root: String
    let key: [UInt8] = (0..<32).map { UInt8(255 - $0) }
    let submitted = NIOLockedValueBox<[Submitted]>([])
    let logins = NIOLockedValueBox<[String]>([])

    init() throws {
        root = NSTemporaryDirectory() + "svcpkg-web-\(UUID().uuidString)"
        try SharedTreeLayout(root: root).createSkeleton(createRoot: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    var settings: WebSettings { WebSettings(sessionKey: key, sessionLifetime: 3600, maxMessageSize: 1 << 20, pageSize: 50) }

    func authenticate(user: String, password: String, remoteAddress: String) async -> WebLoginResult {
        logins.withLockedValue { $0.append(remoteAddress) }
        if password == "locked-out" { return .refused }
        return user == "alice@example.org" && password == "secret" ? .ok(address: "alice@example.org") : .invalid
    }

    func mailStore(for address: String) throws -> MailStore {
        MailStore(layout: SharedTreeLayout(root: root), user: try MailUser(address: address), node: "test")
    }

    func identities(of address: String) async -> [String] { [address, "al@example.org"] }

    let disabled = NIOLockedValueBox<Set<String>>([])

    func accountIsActive(_ address: String) async -> Bool { !disabled.withLockedValue { $0.contains(address) } }

    func submit(message: [UInt8], sender: String, recipients: [String], user: String, remoteAddress: String) async throws {
        submitted.withLockedValue { $0.append(Submitted(message: message, sender: sender, recipients: recipients)) }
    }

    func blocking<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result { try work() }

    func summaries(store: MailStore, folder: MailFolderName, uidValidity: UInt32, messages: [StoredMessage]) throws -> [UInt32: MessageSummary] {
        var result: [UInt32: MessageSummary] = [:]
        for message in messages {
            if let prefix = try store.readMessagePrefix(message, in: folder, maxBytes: 65536) { result[message.uid] = MessageSummary(header: prefix) }
        }
        return result
    }

    func search(store: MailStore, snapshot: FolderSnapshot, needle: String) throws -> Set<UInt32>? { nil }

    func sortFields(store: MailStore, snapshot: FolderSnapshot) throws -> [UInt32: MessageSummary]? {
        try summaries(store: store, folder: snapshot.folder, uidValidity: snapshot.uidValidity, messages: snapshot.messages)
    }

    func deliver(_ text: String) throws {
        _ = try mailStore(for: "alice@example.org").deliver(Array(text.utf8))
    }
}

/// A browser for the test client: keeps cookies, finds the CSRF token in pages.
struct Browser {
    var cookies: [String: String] = [:]

    var cookieHeader: HTTPFields {
        guard !cookies.isEmpty else { return [:] }
        return [.cookie: cookies.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: "; ")]
    }

    mutating func take(_ response: TestResponse) {
        for field in response.headers[values: .setCookie] {
            let pair = field.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let name = String(pair[0])
            if pair[1].isEmpty || field.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = String(pair[1]) }
        }
    }

    static func hidden(_ name: String, in page: String) -> String? {
        guard let range = page.range(of: "name=\"\(name)\" value=\"") else { return nil }
        let rest = page[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }
}

@Suite struct WebRouterTests {
    static func app(_ services: TestWebServices) throws -> some ApplicationProtocol {
        let router = Router(context: WebRequestContext.self)
        try WebMail(services: services, logger: Logger(label: "test")).register(on: router)
        router.get("/healthz") { _, _ in "ok" }
        return Application(router: router)
    }

    static let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    /// Logs in as alice and returns the browser with the session cookie.
    static func login(_ client: some TestClientProtocol) async throws -> Browser {
        var browser = Browser()
        let page = try await client.execute(uri: "/login", method: .get)
        browser.take(page)
        let nonce = try #require(Browser.hidden("_login", in: String(buffer: page.body)))
        var headers = form
        headers.append(contentsOf: browser.cookieHeader)
        let response = try await client.execute(
            uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: "_login=\(nonce)&user=alice%40example.org&password=secret"))
        #expect(response.status == .seeOther)
        #expect(response.headers[.location] == "/mail")
        let setCookie = response.headers[values: .setCookie].first { $0.hasPrefix("svcpkg_session=") } ?? ""
        #expect(setCookie.contains("HttpOnly"))
        #expect(setCookie.contains("SameSite=Strict"))
        browser.take(response)
        #expect(browser.cookies["svcpkg_session"] != nil)
        return browser
    }

    static func csrf(_ client: some TestClientProtocol, _ browser: Browser) async throws -> String {
        let page = try await client.execute(uri: "/mail", method: .get, headers: browser.cookieHeader)
        return try #require(Browser.hidden("_csrf", in: String(buffer: page.body)))
    }

    @Test func securityHeadersOnEveryResponse() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try await Self.app(services).test(.router) { client in
            for uri in ["/login", "/healthz", "/nowhere", WebAsset.script.path] {
                let response = try await client.execute(uri: uri, method: .get)
                let csp = response.headers[.contentSecurityPolicy] ?? ""
                #expect(csp.contains("script-src 'self'"), "\(uri)")
                #expect(csp.contains("frame-ancestors 'none'"))
                #expect(!csp.contains("unsafe-inline"))
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
                #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
                #expect(response.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
            }
            let page = try await client.execute(uri: "/login", method: .get)
            let html = String(buffer: page.body)
            #expect(html.contains("name=\"viewport\""))
            #expect(!html.contains("<script>"))
            #expect(html.contains(WebAsset.script.path))
            let asset = try await client.execute(uri: WebAsset.stylesheet.path, method: .get)
            #expect(asset.headers[.cacheControl]?.contains("immutable") == true)
        }
    }

    @Test func loginNeedsTheRightPasswordAndTheFormNonce() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try await Self.app(services).test(.router) { client in
            let redirect = try await client.execute(uri: "/mail", method: .get)
            #expect(redirect.status == .seeOther)
            #expect(redirect.headers[.location] == "/login")
            var browser = Browser()
            let page = try await client.execute(uri: "/login", method: .get)
            browser.take(page)
            let nonce = try #require(Browser.hidden("_login", in: String(buffer: page.body)))
            var headers = Self.form
            headers.append(contentsOf: browser.cookieHeader)
            headers[HTTPField.Name("X-Forwarded-For")!] = "198.51.100.7"
            let wrong = try await client.execute(
                uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: "_login=\(nonce)&user=alice%40example.org&password=nope"))
            #expect(wrong.status == .unauthorized)
            #expect(services.logins.withLockedValue { $0 }.first == "198.51.100.7")
            let locked = try await client.execute(
                uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: "_login=\(nonce)&user=alice%40example.org&password=locked-out"))
            #expect(locked.status == .tooManyRequests)
            #expect(String(buffer: locked.body).contains("Too many failed sign-ins"))
            let noNonce = try await client.execute(
                uri: "/login", method: .post, headers: Self.form, body: ByteBuffer(string: "_login=\(nonce)&user=alice%40example.org&password=secret"))
            #expect(noNonce.status == .forbidden)
            _ = try await Self.login(client)
        }
    }

    @Test func tamperedOrForeignCookiesAreRefused() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try await Self.app(services).test(.router) { client in
            var browser = try await Self.login(client)
            let ok = try await client.execute(uri: "/mail", method: .get, headers: browser.cookieHeader)
            #expect(ok.status == .ok)
            var value = Array(try #require(browser.cookies["svcpkg_session"]))
            value[10] = value[10] == "A" ? "B" : "A"
            browser.cookies["svcpkg_session"] = String(value)
            let refused = try await client.execute(uri: "/mail", method: .get, headers: browser.cookieHeader)
            #expect(refused.status == .seeOther)
            #expect(refused.headers[.location] == "/login")
            // A session sealed with another key (another cluster) is refused too.
            let foreign = try #require(SessionSealer(key: [UInt8](repeating: 1, count: 32)))
                .seal(WebSession.new(user: "alice@example.org", epoch: 0, lifetime: 3600))
            let other = try await client.execute(uri: "/mail", method: .get, headers: [.cookie: "svcpkg_session=\(foreign)"])
            #expect(other.status == .seeOther)
        }
    }

    @Test func postsNeedTheCSRFTokenAndOurOrigin() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try services.deliver("From: bob@example.org\r\nSubject: Flag me\r\n\r\nbody\r\n")
        try await Self.app(services).test(.router) { client in
            let browser = try await Self.login(client)
            let token = try await Self.csrf(client, browser)
            var headers = Self.form
            headers.append(contentsOf: browser.cookieHeader)
            let without = try await client.execute(uri: "/action", method: .post, headers: headers, body: ByteBuffer(string: "folder=INBOX&uid=1&action=flag"))
            #expect(without.status == .forbidden)
            let wrong = try await client.execute(uri: "/action", method: .post, headers: headers, body: ByteBuffer(string: "_csrf=x\(token)&folder=INBOX&uid=1&action=flag"))
            #expect(wrong.status == .forbidden)
            var crossSite = headers
            crossSite[.origin] = "https://evil.example"
            let foreign = try await client.execute(uri: "/action", method: .post, headers: crossSite, body: ByteBuffer(string: "_csrf=\(token)&folder=INBOX&uid=1&action=flag"))
            #expect(foreign.status == .forbidden)
            let store = try services.mailStore(for: "alice@example.org")
            #expect(try store.sync(.inbox).message(uid: 1)?.flags.contains(.flagged) == false)
            let done = try await client.execute(uri: "/action", method: .post, headers: headers, body: ByteBuffer(string: "_csrf=\(token)&folder=INBOX&uid=1&action=flag&return=%2Fmail"))
            #expect(done.status == .seeOther)
            #expect(try store.sync(.inbox).message(uid: 1)?.flags.contains(.flagged) == true)
        }
    }

    @Test func listReadActionsAndBadFolders() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        for number in 1...60 {
            try services.deliver("From: Bob <bob@example.org>\r\nSubject: =?UTF-8?B?w6Rw?= number \(number)\r\n\r\nbody \(number)\r\n")
        }
        try await Self.app(services).test(.router) { client in
            let browser = try await Self.login(client)
            let first = String(buffer: try await client.execute(uri: "/mail", method: .get, headers: browser.cookieHeader).body)
            #expect(first.contains("äp number 60"))
            #expect(first.contains("äp number 11"))
            #expect(!first.contains("äp number 10<"))
            #expect(first.contains("1–50 of 60"))
            #expect(first.contains(">INBOX<") && first.contains(">60<"))
            let second = String(buffer: try await client.execute(uri: "/mail?folder=INBOX&page=2", method: .get, headers: browser.cookieHeader).body)
            #expect(second.contains("äp number 10<") && second.contains("äp number 1<"))
            let oldest = String(buffer: try await client.execute(uri: "/mail?folder=INBOX&order=oldest", method: .get, headers: browser.cookieHeader).body)
            #expect(oldest.contains("äp number 1<") && oldest.contains("äp number 50<") && !oldest.contains("äp number 51<"))
            #expect(oldest.contains("/mail?folder=INBOX&amp;page=2&amp;order=oldest"))
            let message = try await client.execute(uri: "/message?folder=INBOX&uid=7", method: .get, headers: browser.cookieHeader)
            #expect(message.status == .ok)
            #expect(String(buffer: message.body).contains("body 7"))
            let store = try services.mailStore(for: "alice@example.org")
            #expect(try store.sync(.inbox).message(uid: 7)?.flags.contains(.seen) == true)
            let bad = try await client.execute(uri: "/mail?folder=..%2F..%2Fetc", method: .get, headers: browser.cookieHeader)
            #expect(bad.status == .badRequest || bad.status == .notFound)
            let missing = try await client.execute(uri: "/message?folder=INBOX&uid=999", method: .get, headers: browser.cookieHeader)
            #expect(missing.status == .notFound)
            let token = try await Self.csrf(client, browser)
            var headers = Self.form
            headers.append(contentsOf: browser.cookieHeader)
            let delete = try await client.execute(uri: "/action", method: .post, headers: headers, body: ByteBuffer(string: "_csrf=\(token)&folder=INBOX&uid=1&uid=2&action=delete"))
            #expect(delete.status == .seeOther)
            let trash = try #require(try store.ensureDefaultFolders()[.trash])
            #expect(try store.sync(trash).messages.count == 2)
            #expect(try store.sync(.inbox).messages.count == 58)
            let move = try await client.execute(uri: "/action", method: .post, headers: headers, body: ByteBuffer(string: "_csrf=\(token)&folder=INBOX&uid=3&action=move&target=..%2Fevil"))
            #expect(move.status == .badRequest)
            #expect(try store.sync(.inbox).messages.count == 58)
            let unread = try await client.execute(uri: "/action", method: .post, headers: headers, body: ByteBuffer(string: "_csrf=\(token)&folder=INBOX&uid=7&action=unread&return=https%3A%2F%2Fevil.example"))
            #expect(unread.headers[.location] == "/mail?folder=INBOX")
            #expect(try store.sync(.inbox).message(uid: 7)?.flags.contains(.seen) == false)
            // Unread first: the two messages opened now (read) go to the end, on page 2 of 58 messages.
            for uid in [60, 59] { _ = try await client.execute(uri: "/message?folder=INBOX&uid=\(uid)", method: .get, headers: browser.cookieHeader) }
            let unreadFirst = String(buffer: try await client.execute(uri: "/mail?folder=INBOX&order=unread&page=2", method: .get, headers: browser.cookieHeader).body)
            #expect(unreadFirst.contains("äp number 59<") && unreadFirst.contains("äp number 60<"))
            let newestFirst = String(buffer: try await client.execute(uri: "/mail?folder=INBOX", method: .get, headers: browser.cookieHeader).body)
            #expect(newestFirst.contains("äp number 60<"))
            // By subject: "äp number 10" < "äp number 11" < … as text; reply prefixes do not count.
            try services.deliver("From: Zed <zed@example.org>\r\nSubject: Re: Fwd: äp number 100\r\n\r\nx\r\n")
            let bySubject = String(buffer: try await client.execute(uri: "/mail?folder=INBOX&order=subject", method: .get, headers: browser.cookieHeader).body)
            let ten = try #require(bySubject.range(of: ">äp number 10<"))
            let hundred = try #require(bySubject.range(of: ">Re: Fwd: äp number 100<"))
            let eleven = try #require(bySubject.range(of: ">äp number 11<"))
            #expect(ten.lowerBound < hundred.lowerBound && hundred.lowerBound < eleven.lowerBound)
            #expect(!bySubject.contains(">äp number 9<"))  // "9" sorts after "59": page 2
            let bySender = String(buffer: try await client.execute(uri: "/mail?folder=INBOX&order=sender&page=2", method: .get, headers: browser.cookieHeader).body)
            #expect(bySender.contains("Re: Fwd: äp number 100"))
            #expect(bySender.contains("<option value=\"sender\" selected>"))
        }
    }

    /// True when every one of `parts` is in `page`, in this order.
    static func order(_ page: String, _ parts: String...) -> Bool {
        let found = parts.compactMap { page.range(of: $0)?.lowerBound }
        return found.count == parts.count && found == found.sorted()
    }

    @Test func conversationsDateOrderAndReversal() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try services.deliver("From: Ann <ann@example.org>\r\nSubject: Lunch\r\nMessage-ID: <lunch@x>\r\nDate: Mon, 7 Dec 2026 12:00:00 +0000\r\n\r\nwhere?\r\n")
        try services.deliver("From: Cat <cat@example.org>\r\nSubject: Budget\r\nMessage-ID: <budget@x>\r\nDate: Mon, 7 Dec 2026 08:00:00 +0000\r\n\r\nnumbers\r\n")
        try services.deliver("From: Bob <bob@example.org>\r\nSubject: Re: Lunch\r\nMessage-ID: <re1@x>\r\nIn-Reply-To: <lunch@x>\r\nDate: Mon, 7 Dec 2026 12:05:00 +0000\r\n\r\nhere\r\n")
        try services.deliver("From: Dan <dan@example.org>\r\nSubject: Old news\r\nMessage-ID: <old@x>\r\nDate: Sun, 1 Jan 2006 00:00:00 +0000\r\n\r\nx\r\n")
        try await Self.app(services).test(.router) { client in
            let browser = try await Self.login(client)
            func get(_ uri: String) async throws -> String { String(buffer: try await client.execute(uri: uri, method: .get, headers: browser.cookieHeader).body) }
            // One row per conversation, by its newest arrival: the reply put "Lunch" before "Budget".
            let list = try await get("/mail?folder=INBOX&view=conversations")
            #expect(list.contains("1–3 of 3 conversations"))
            let lunch = try #require(list.range(of: ">Lunch</a>"))
            let old = try #require(list.range(of: ">Old news</a>"))
            let budget = try #require(list.range(of: ">Budget</a>"))
            #expect(old.lowerBound < lunch.lowerBound && lunch.lowerBound < budget.lowerBound)
            #expect(Self.order(list, ">Old news</a>", ">Lunch</a>", ">Budget</a>"))
            #expect(list.contains("Ann, Bob <span class=\"count\" aria-label=\"2 messages\">2</span>"))
            #expect(list.contains("(2 unread)"))
            #expect(list.contains("name=\"conversation\" value=\"3\""))
            #expect(list.contains("<option value=\"conversations\" selected>"))
            let reversed = try await get("/mail?folder=INBOX&view=conversations&reverse=1")
            #expect(Self.order(reversed, ">Budget</a>", ">Lunch</a>", ">Old news</a>"))
            // Opening a conversation (by any of its UIDs) lists its messages in order.
            let conversation = try await get("/conversation?folder=INBOX&uid=1")
            #expect(conversation.contains("1–2 of 2 in this conversation"))
            let first = try #require(conversation.range(of: "/message?folder=INBOX&amp;uid=1\""))
            let reply = try #require(conversation.range(of: "/message?folder=INBOX&amp;uid=3\""))
            #expect(first.lowerBound < reply.lowerBound)
            #expect(!conversation.contains("Budget"))
            // Their texts follow the list, in the same order.
            #expect(Self.order(conversation, "/message?folder=INBOX&amp;uid=3\"", "<pre class=\"text-body\">where?", "<pre class=\"text-body\">here"))
            #expect(try await client.execute(uri: "/conversation?folder=INBOX&uid=99", method: .get, headers: browser.cookieHeader).status == .notFound)
            // By the Date: field, newest first, and reversed.
            let byDate = try await get("/mail?folder=INBOX&order=date")
            #expect(Self.order(byDate, ">Re: Lunch</a>", ">Lunch</a>", ">Budget</a>", ">Old news</a>"))
            let byDateReversed = try await get("/mail?folder=INBOX&order=date&reverse=1")
            #expect(Self.order(byDateReversed, ">Old news</a>", ">Budget</a>", ">Lunch</a>", ">Re: Lunch</a>"))
            #expect(byDateReversed.contains("id=\"reverse\" name=\"reverse\" value=\"1\" checked"))
            #expect(byDateReversed.contains("/mail?folder=INBOX&amp;order=date&amp;reverse=1"))
            let newestReversed = try await get("/mail?folder=INBOX&reverse=1")
            #expect(Self.order(newestReversed, ">Lunch</a>", ">Budget</a>", ">Re: Lunch</a>", ">Old news</a>"))
            // A conversation row's action acts on all its messages, but not on mail that came later.
            try services.deliver("From: Ann <ann@example.org>\r\nSubject: Re: Lunch\r\nIn-Reply-To: <re1@x>\r\n\r\nok\r\n")
            let token = try await Self.csrf(client, browser)
            var headers = Self.form
            headers.append(contentsOf: browser.cookieHeader)
            let read = try await client.execute(
                uri: "/action", method: .post, headers: headers,
                body: ByteBuffer(string: "_csrf=\(token)&folder=INBOX&conversation=3&before=5&action=read&return=%2Fmail%3Fview%3Dconversations"))
            #expect(read.status == .seeOther)
            let store = try services.mailStore(for: "alice@example.org")
            let flags = try store.sync(.inbox).messages.map { ($0.uid, $0.flags.contains(.seen)) }
            #expect(flags.map(\.0) == [1, 2, 3, 4, 5] && flags.map(\.1) == [true, false, true, false, false])
            let moved = try await client.execute(
                uri: "/action", method: .post, headers: headers, body: ByteBuffer(string: "_csrf=\(token)&folder=INBOX&conversation=1&action=delete"))
            #expect(moved.status == .seeOther)
            #expect(try store.sync(.inbox).messages.map(\.uid) == [2, 4])
            // The kept grouping follows new and removed messages.
            let remaining = try await get("/mail?folder=INBOX&view=conversations")
            #expect(remaining.contains("1–2 of 2 conversations") && !remaining.contains(">Lunch</a>"))
            #expect(Self.order(remaining, ">Old news</a>", ">Budget</a>"))
        }
    }

    @Test func htmlMailIsSanitizedAndAttachmentsDownload() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try services.deliver(ComposeTests.alternative.replacingOccurrences(of: "<p>HTML", with: "<img src=\"https://tracker.example/p.gif\"><p onclick=\"alert(2)\">HTML"))
        try await Self.app(services).test(.router) { client in
            let browser = try await Self.login(client)
            let page = try await client.execute(uri: "/message?folder=INBOX&uid=1", method: .get, headers: browser.cookieHeader)
            let html = String(buffer: page.body)
            #expect(html.contains("HTML lunch"))
            #expect(!html.contains("alert("))
            #expect(!html.contains("onclick"))
            #expect(!html.contains(" src=\"https://tracker.example"))
            #expect(html.contains("data-remote-src=\"https://tracker.example/p.gif\""))
            #expect(html.contains("Show images"))
            #expect(html.contains("/part?folder=INBOX&amp;uid=1&amp;part=1.2"))
            #expect(page.headers[.contentSecurityPolicy]?.contains("https:") == false)
            let shown = try await client.execute(uri: "/message?folder=INBOX&uid=1&images=1", method: .get, headers: browser.cookieHeader)
            #expect(String(buffer: shown.body).contains(" src=\"https://tracker.example/p.gif\""))
            #expect(shown.headers[.contentSecurityPolicy]?.contains("img-src 'self' data: https:") == true)
            let image = try await client.execute(uri: "/part?folder=INBOX&uid=1&part=1.2", method: .get, headers: browser.cookieHeader)
            #expect(image.headers[.contentType] == "image/png")
            let pdf = try await client.execute(uri: "/part?folder=INBOX&uid=1&part=2&download=1", method: .get, headers: browser.cookieHeader)
            #expect(pdf.headers[.contentType] == "application/octet-stream")
            #expect(pdf.headers[.contentDisposition]?.hasPrefix("attachment; filename=\"menu.pdf\"") == true)
            #expect(pdf.headers[.xContentTypeOptions] == "nosniff")
            #expect(Array(buffer: pdf.body) == Array("%PDF-".utf8))
            let none = try await client.execute(uri: "/part?folder=INBOX&uid=1&part=9", method: .get, headers: browser.cookieHeader)
            #expect(none.status == .notFound)
        }
    }

    @Test func sendQueuesAndKeepsACopyInSent() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try services.deliver("From: Bob <bob@example.org>\r\nTo: al@example.org\r\nSubject: Question\r\nMessage-ID: <q1@example.org>\r\n\r\nDo you?\r\n")
        try await Self.app(services).test(.router) { client in
            let browser = try await Self.login(client)
            let compose = String(buffer: try await client.execute(uri: "/compose?mode=reply&folder=INBOX&uid=1", method: .get, headers: browser.cookieHeader).body)
            #expect(compose.contains("value=\"Re: Question\""))
            #expect(compose.contains("<option value=\"al@example.org\" selected>"))
            #expect(compose.contains("&gt; Do you?"))
            let token = try #require(Browser.hidden("_csrf", in: compose))
            func part(_ name: String, _ value: String) -> String {
                "--B\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n"
            }
            var body = part("_csrf", token) + part("from", "al@example.org") + part("to", "Bob <bob@example.org>") + part("cc", "") + part("bcc", "")
            body += part("subject", "Re: Question") + part("text", "Yes.\r\n\r\n> Do you?") + part("in_reply_to", "<q1@example.org>")
            body += part("references", "<q1@example.org>") + part("forward", "") + part("replied", "1:INBOX")
            body += "--B\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nattached text\r\n--B--\r\n"
            var headers: HTTPFields = [.contentType: "multipart/form-data; boundary=B"]
            headers.append(contentsOf: browser.cookieHeader)
            let sent = try await client.execute(uri: "/send", method: .post, headers: headers, body: ByteBuffer(string: body))
            #expect(sent.status == .seeOther)
            let queued = try #require(services.submitted.withLockedValue { $0 }.first)
            #expect(queued.sender == "al@example.org")
            #expect(queued.recipients == ["bob@example.org"])
            let view = MessageView(queued.message)
            #expect(view.envelope.inReplyTo == "<q1@example.org>")
            #expect(view.attachments.first?.filename == "a.txt")
            let store = try services.mailStore(for: "alice@example.org")
            let sentFolder = try #require(try store.ensureDefaultFolders()[.sent])
            let copy = try #require(try store.sync(sentFolder).messages.first)
            #expect(try store.readMessage(copy, in: sentFolder) == queued.message)
            #expect(try store.sync(.inbox).message(uid: 1)?.flags.contains(.answered) == true)
            // Sending as someone else is refused and nothing is queued.
            let forged = body.replacingOccurrences(of: "al@example.org", with: "boss@example.org")
            let refused = try await client.execute(uri: "/send", method: .post, headers: headers, body: ByteBuffer(string: forged))
            #expect(refused.status == .unprocessableContent)
            #expect(services.submitted.withLockedValue { $0.count } == 1)
        }
    }

    static func multipart(_ fields: [(name: String, value: String)], file: (name: String, content: String)? = nil) -> String {
        var body = fields.map { "--B\r\nContent-Disposition: form-data; name=\"\($0.name)\"\r\n\r\n\($0.value)\r\n" }.joined()
        if let file {
            body += "--B\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"\(file.name)\"\r\nContent-Type: text/plain\r\n\r\n\(file.content)\r\n"
        }
        return body + "--B--\r\n"
    }

    @Test func draftsAreSavedEditedAndSentWithTheirAttachments() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try await Self.app(services).test(.router) { client in
            let browser = try await Self.login(client)
            let token = try await Self.csrf(client, browser)
            var headers: HTTPFields = [.contentType: "multipart/form-data; boundary=B"]
            headers.append(contentsOf: browser.cookieHeader)
            let first: [(name: String, value: String)] = [
                ("_csrf", token), ("from", "alice@example.org"), ("to", ""), ("cc", ""), ("bcc", "hidden@example.org"),
                ("subject", "Plans"), ("text", "First thoughts"), ("save", "draft"),
            ]
            let saved = try await client.execute(uri: "/send", method: .post, headers: headers, body: ByteBuffer(string: Self.multipart(first, file: ("plan.txt", "the plan"))))
            #expect(saved.status == .seeOther)
            #expect(services.submitted.withLockedValue { $0.isEmpty })
            let store = try services.mailStore(for: "alice@example.org")
            let drafts = try #require(try store.ensureDefaultFolders()[.drafts])
            let draft = try #require(try store.sync(drafts).messages.first)
            #expect(draft.flags.contains(.draft))
            let view = String(buffer: try await client.execute(uri: "/message?folder=Drafts&uid=\(draft.uid)", method: .get, headers: browser.cookieHeader).body)
            #expect(view.contains("Edit draft"))
            let edit = String(buffer: try await client.execute(uri: "/compose?mode=draft&folder=Drafts&uid=\(draft.uid)", method: .get, headers: browser.cookieHeader).body)
            #expect(edit.contains("value=\"hidden@example.org\""))
            #expect(edit.contains("First thoughts"))
            #expect(edit.contains("plan.txt"))
            #expect(Browser.hidden("draft", in: edit) == "\(draft.uid):Drafts")
            // Another message's reference is not a draft: nothing can be deleted through it.
            try services.deliver("From: bob@example.org\r\nSubject: keep me\r\n\r\nx\r\n")
            let notDraft = try await client.execute(uri: "/compose?mode=draft&folder=INBOX&uid=1", method: .get, headers: browser.cookieHeader)
            #expect(notDraft.status == .notFound)
            let second: [(name: String, value: String)] = [
                ("_csrf", token), ("from", "alice@example.org"), ("to", "bob@example.org"), ("cc", ""), ("bcc", "hidden@example.org"),
                ("subject", "Plans"), ("text", "Final"), ("draft", "\(draft.uid):Drafts"),
            ]
            let sent = try await client.execute(uri: "/send", method: .post, headers: headers, body: ByteBuffer(string: Self.multipart(second)))
            #expect(sent.status == .seeOther)
            let queued = try #require(services.submitted.withLockedValue { $0 }.first)
            #expect(queued.recipients == ["bob@example.org", "hidden@example.org"])
            #expect(!String(decoding: queued.message, as: UTF8.self).contains("Bcc:"))
            let message = MessageView(queued.message)
            #expect(message.attachments.map(\.filename) == ["plan.txt"])
            #expect(message.attachments.first.flatMap { message.content(of: $0.path)?.data } == Array("the plan".utf8))
            #expect(try store.sync(drafts).messages.isEmpty)
            #expect(try store.sync(.inbox).messages.count == 1)
        }
    }

    @Test func signatureIsKeptOnTheSharedTreeAndAddedToNewMessages() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try services.deliver("From: Bob <bob@example.org>\r\nSubject: Hi\r\n\r\nHello Alice\r\n")
        try await Self.app(services).test(.router) { client in
            let browser = try await Self.login(client)
            let settings = String(buffer: try await client.execute(uri: "/settings", method: .get, headers: browser.cookieHeader).body)
            #expect(settings.contains("al@example.org"))
            let token = try #require(Browser.hidden("_csrf", in: settings))
            var headers = Self.form
            headers.append(contentsOf: browser.cookieHeader)
            let refused = try await client.execute(uri: "/settings", method: .post, headers: headers, body: ByteBuffer(string: "signature=forged"))
            #expect(refused.status == .forbidden)
            let tooLong = try await client.execute(
                uri: "/settings", method: .post, headers: headers, body: ByteBuffer(string: "_csrf=\(token)&signature=" + String(repeating: "x", count: 5000)))
            #expect(tooLong.status == .badRequest)
            let saved = try await client.execute(uri: "/settings", method: .post, headers: headers, body: ByteBuffer(string: "_csrf=\(token)&signature=Alice+%3C3%0D%0AExample+Org"))
            #expect(saved.status == .seeOther)
            let store = try services.mailStore(for: "alice@example.org")
            #expect(try UserSignature.read(store) == "Alice <3\nExample Org")
            let compose = String(buffer: try await client.execute(uri: "/compose", method: .get, headers: browser.cookieHeader).body)
            #expect(compose.contains("\n\n-- \nAlice &lt;3\nExample Org</textarea>"))
            let reply = String(buffer: try await client.execute(uri: "/compose?mode=reply&folder=INBOX&uid=1", method: .get, headers: browser.cookieHeader).body)
            let signatureAt = try #require(reply.range(of: "-- \nAlice"))
            let quoteAt = try #require(reply.range(of: "&gt; Hello Alice"))
            #expect(signatureAt.lowerBound < quoteAt.lowerBound)
        }
    }

    @Test func oversizedUploadsAreRefusedAndNothingIsSent() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try await Self.app(services).test(.router) { client in
            let browser = try await Self.login(client)
            let token = try await Self.csrf(client, browser)
            var headers: HTTPFields = [.contentType: "multipart/form-data; boundary=B"]
            headers.append(contentsOf: browser.cookieHeader)
            let fields: [(name: String, value: String)] = [("_csrf", token), ("from", "alice@example.org"), ("to", "bob@example.org"), ("subject", "big")]
            // Over the form limit (the message size plus 1 MiB): refused before parsing.
            let huge = Self.multipart(fields, file: ("big.bin", String(repeating: "x", count: 2_200_000)))
            let refused = try await client.execute(uri: "/send", method: .post, headers: headers, body: ByteBuffer(string: huge))
            #expect(refused.status == .contentTooLarge)
            // Under the form limit but over the message size once encoded: the form comes back.
            let large = Self.multipart(fields, file: ("big.bin", String(repeating: "x", count: 900_000)))
            let again = try await client.execute(uri: "/send", method: .post, headers: headers, body: ByteBuffer(string: large))
            #expect(again.status == .unprocessableContent)
            #expect(String(buffer: again.body).contains("the largest allowed is 1.0 MB"))
            #expect(services.submitted.withLockedValue { $0.isEmpty })
            let store = try services.mailStore(for: "alice@example.org")
            let sent = try #require(try store.ensureDefaultFolders()[.sent])
            #expect(try store.sync(sent).messages.isEmpty)
        }
    }

    @Test func logoutEverywhereRevokesOldCookies() async throws {
        let services = try TestWebServices()
        defer { services.remove() }
        try await Self.app(services).test(.router) { client in
            let phone = try await Self.login(client)
            let laptop = try await Self.login(client)
            let token = try await Self.csrf(client, laptop)
            var headers = Self.form
            headers.append(contentsOf: laptop.cookieHeader)
            let out = try await client.execute(uri: "/logout-everywhere", method: .post, headers: headers, body: ByteBuffer(string: "_csrf=\(token)"))
            #expect(out.status == .seeOther)
            let old = try await client.execute(uri: "/mail", method: .get, headers: phone.cookieHeader)
            #expect(old.status == .seeOther)
            #expect(old.headers[.location] == "/login")
            let fresh = try await Self.login(client)
            #expect(try await client.execute(uri: "/mail", method: .get, headers: fresh.cookieHeader).status == .ok)
            // An account disabled in the directory loses its sessions at once.
            _ = services.disabled.withLockedValue { $0.insert("alice@example.org") }
            #expect(try await client.execute(uri: "/mail", method: .get, headers: fresh.cookieHeader).status == .seeOther)
        }
    }
}
