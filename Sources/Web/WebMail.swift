import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MailMessage
import Mustache
import NIOConcurrencyHelpers
import NIOCore
import SharedTree

/// The web-mail application: routes on the node's HTTP router, cookie sessions, CSRF checks,
/// the pages. Every page is server-rendered; the store is the user's `MailStore` on the shared
/// tree, read and changed exactly as IMAP does (folder snapshots, flags, move, expunge).
public final class WebMail: Sendable {
    static let sessionCookie = "svcpkg_session"
    static let loginCookie = "svcpkg_login"
    /// Login and action forms are small; compose forms are bounded by the message size.
    static let maxSmallFormBytes = 64 * 1024
    /// A message read for display, as the IMAP limits allow.
    static let maxDisplayBytes = 64 << 20
    /// How long a node trusts a revocation epoch it read from the shared tree.
    static let epochCacheSeconds: TimeInterval = 2
    /// A live-update stream ends after this long (the browser's EventSource reconnects).
    static let eventStreamSeconds: TimeInterval = 300

    let services: any WebServices
    /// Web chat (`/chat`); nil when the node does not offer it.
    let chat: (any WebChatServices)?
    let library: MustacheLibrary
    let logger: Logger
    let snapshots = FolderSnapshotCache()
    /// Folder orders by sender or subject (`sortedUIDs`), per folder state.
    let sortedOrders = NIOLockedValueBox<[String: [UInt32]]>([:])
    static let maxSortedOrders = 32
    /// Folder conversations (`conversationIndex`), per folder content; a 100,000-message folder's
    /// takes a few MB, so fewer are kept.
    let conversationIndexes = NIOLockedValueBox<[String: ConversationIndex]>([:])
    static let maxConversationIndexes = 8
    /// The header fields of recently sorted or grouped folders (`listFields`), per folder
    /// version: a later state of the folder asks the message cache only for its new messages.
    /// About 30 MB for a 100,000-message folder, so few are kept.
    let folderFields = NIOLockedValueBox<[String: [UInt32: MessageSummary]]>([:])
    static let maxFolderFields = 4
    /// More new messages than this since the kept fields: all rows are read again.
    static let maxIncrementalFields = 2000
    /// Live-update streams per user on this node.
    let streams = NIOLockedValueBox<[String: Int]>([:])
    static let maxStreamsPerUser = 8
    let epochs = NIOLockedValueBox<[String: (epoch: UInt64, read: Date)]>([:])

    public init(services: any WebServices, chat: (any WebChatServices)? = nil, logger: Logger) throws {
        self.services = services
        self.chat = chat
        self.library = try WebTemplates.library()
        self.logger = logger
    }

    /// Adds the web-mail routes and the security headers / error pages middleware.
    public func register(on router: Router<WebRequestContext>) {
        router.add(middleware: WebSecurityMiddleware(mail: self))
        for asset in WebAsset.all {
            router.get(RouterPath(asset.path)) { _, _ -> Response in
                Response(
                    status: .ok,
                    headers: [.contentType: asset.contentType, .cacheControl: "public, max-age=31536000, immutable"],
                    body: .init(byteBuffer: ByteBuffer(string: asset.body)))
            }
        }
        router.get("/") { request, _ -> Response in
            Self.redirect(request.cookie(Self.sessionCookie) == nil ? "/login" : "/mail")
        }
        router.get("/login") { request, _ in self.loginPage(request) }
        router.post("/login") { request, context in try await self.login(request, context) }
        router.post("/logout") { request, context in try await self.logout(request, context, everywhere: false) }
        router.post("/logout-everywhere") { request, context in try await self.logout(request, context, everywhere: true) }
        router.get("/mail") { request, context in try await self.mailbox(request, context) }
        router.get("/search") { request, context in try await self.mailbox(request, context) }
        router.get("/message") { request, context in try await self.message(request, context) }
        router.get("/conversation") { request, context in try await self.conversation(request, context) }
        router.get("/part") { request, context in try await self.part(request, context) }
        router.post("/action") { request, context in try await self.action(request, context) }
        router.get("/compose") { request, context in try await self.compose(request, context) }
        router.post("/send") { request, context in try await self.send(request, context) }
        router.get("/events") { request, context in try await self.events(request, context) }
        router.get("/settings") { request, context in try await self.settingsPage(request, context) }
        router.post("/settings") { request, context in try await self.saveSettings(request, context) }
        router.get("/chat") { request, context in try await self.chatPage(request, context) }
        router.get("/chat/socket") { request, context in await self.chatSocketWithoutUpgrade(request, context) }
    }

    // MARK: - Pages

    func page(
        title: String, template: String, data: [String: Any], auth: Authenticated?, status: HTTPResponse.Status = .ok, live: String? = nil, autoreload: Bool = false,
        script: WebAsset = .script
    ) -> Response {
        var data = data
        data["title"] = title
        data["css"] = WebAsset.stylesheet.path
        data["js"] = script.path
        data["chatLink"] = chat?.isEnabled == true
        if let auth {
            data["user"] = auth.session.user
            data["csrf"] = auth.session.csrfToken
        }
        if data["folder"] == nil { data["folder"] = "INBOX" }
        if let live {
            data["live"] = live
            data["autoreload"] = autoreload ? "1" : "0"
        }
        data["body"] = library.render(data, withTemplate: template) ?? ""
        let html = library.render(data, withTemplate: "layout") ?? ""
        return Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
    }

    /// A relative link back into the web-mail (`return` fields are checked: no other site).
    static func safeReturn(_ value: String?, fallback: String) -> String {
        guard let value, value.hasPrefix("/"), !value.hasPrefix("//"), !value.contains("\\"),
            !value.unicodeScalars.contains(where: { $0.value < 0x20 })
        else { return fallback }
        return value
    }

    static func folderLink(_ folder: String, page: Int? = nil) -> String {
        var link = "/mail?folder=\(URLQuery.encode(folder))"
        if let page, page > 1 { link += "&page=\(page)" }
        return link
    }

    static func messageLink(_ folder: String, uid: UInt32) -> String {
        "/message?folder=\(URLQuery.encode(folder))&uid=\(uid)"
    }

    /// The folder named in the request (default INBOX), validated by the store's rules.
    static func folder(_ query: WebForm) throws -> MailFolderName {
        let name = query.first("folder") ?? "INBOX"
        do {
            return try MailFolderName(name)
        } catch {
            throw WebError.badRequest("“\(name.prefix(100))” is not a valid folder name.")
        }
    }

    static func query(_ request: Request) -> WebForm {
        WebForm.urlEncoded(Substring(request.uri.query ?? ""))
    }

    /// The form of a POST: URL-encoded or multipart, at most `limit` bytes.
    static func readForm(_ request: Request, limit: Int) async throws -> WebForm {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw WebError.tooLarge("The form is larger than \(ByteCountText.format(limit)).")
        }
        let type = request.headers[.contentType] ?? ""
        if type.lowercased().hasPrefix("multipart/form-data") {
            do {
                return try WebForm.multipart(Array(buffer.readableBytesView), contentType: type)
            } catch {
                throw WebError.badRequest("The form could not be read: \(error)")
            }
        }
        return WebForm.urlEncoded(Substring(String(buffer: buffer)))
    }

    /// Folder list entries with unread counts, for the navigation.
    func folderList(_ store: MailStore, current: MailFolderName) async throws -> (nav: [[String: Any]], names: [String]) {
        let snapshots = self.snapshots
        let entries = try await services.blocking { () -> [(name: String, unread: Int)] in
            _ = try store.ensureDefaultFolders()
            return try store.listFolders().filter(\.exists).map { entry in
                let snapshot = try snapshots.snapshot(store, entry.name)
                return (entry.name.name, snapshot.messages.reduce(0) { $0 + ($1.flags.contains(.seen) ? 0 : 1) })
            }
        }
        let nav: [[String: Any]] = entries.map { entry in
            var item: [String: Any] = ["name": entry.name, "href": Self.folderLink(entry.name), "current": entry.name == current.name]
            if entry.unread > 0 { item["unread"] = entry.unread }
            return item
        }
        return (nav, entries.map(\.name))
    }
}
