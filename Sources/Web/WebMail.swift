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
    let library: MustacheLibrary
    let logger: Logger
    let snapshots = FolderSnapshotCache()
    /// Live-update streams per user on this node.
    let streams = NIOLockedValueBox<[String: Int]>([:])
    static let maxStreamsPerUser = 8
    private let epochs = NIOLockedValueBox<[String: (epoch: UInt64, read: Date)]>([:])

    public init(services: any WebServices, logger: Logger) throws {
        self.services = services
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
        router.get("/part") { request, context in try await self.part(request, context) }
        router.post("/action") { request, context in try await self.action(request, context) }
        router.get("/compose") { request, context in try await self.compose(request, context) }
        router.post("/send") { request, context in try await self.send(request, context) }
        router.get("/events") { request, context in try await self.events(request, context) }
    }

    // MARK: - Sessions

    /// A logged-in request: its session and the user's store.
    struct Authenticated {
        var session: WebSession
        var store: MailStore
    }

    /// The session of the request, or `WebError.loginRequired` (a redirect to the login page)
    /// when there is none, it is forged or expired, or the user logged out everywhere since.
    /// A state-changing request must also carry the session's CSRF token and come from our
    /// own origin.
    func authenticate(_ request: Request, form: WebForm? = nil) async throws -> Authenticated {
        guard let sealer = services.settings.sessionKey.flatMap(SessionSealer.init(key:)) else { throw WebError.loginDisabled }
        guard let cookie = request.cookie(Self.sessionCookie) else { throw WebError.loginRequired }
        let session: WebSession
        do {
            session = try sealer.open(cookie)
        } catch {
            logger.notice("web session cookie refused", metadata: ["reason": "\(error)"])
            throw WebError.loginRequired
        }
        let store: MailStore
        do {
            store = try services.mailStore(for: session.user)
        } catch {
            throw WebError.loginRequired
        }
        guard try await currentEpoch(store) <= session.epoch else { throw WebError.loginRequired }
        if request.method == .post {
            try Self.checkOrigin(request)
            let presented = form?.first("_csrf") ?? request.headers[.xCSRFToken]
            guard session.acceptsCSRFToken(presented) else { throw WebError.forbidden("The form is missing its security token or it does not match your session. Reload the page and try again.") }
        }
        return Authenticated(session: session, store: store)
    }

    /// Cross-site POSTs are refused outright (SameSite=Strict cookies already keep the session
    /// out of them; this also covers the login form).
    static func checkOrigin(_ request: Request) throws {
        if let site = request.headers[.secFetchSite], site == "cross-site" {
            throw WebError.forbidden("Cross-site requests are not accepted.")
        }
        if let origin = request.headers[.origin], origin != "null", let host = request.head.authority {
            guard let originHost = URL(string: origin)?.host, originHost.lowercased() == Self.hostName(host).lowercased() else {
                throw WebError.forbidden("Requests from another site are not accepted.")
            }
        }
    }

    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        return String(authority.split(separator: ":").first ?? "")
    }

    /// The user's revocation epoch (file `svcpkg-web-epoch` in the home on the shared tree),
    /// cached for a couple of seconds per node.
    func currentEpoch(_ store: MailStore) async throws -> UInt64 {
        let key = store.user.address
        if let cached = epochs.withLockedValue({ $0[key] }), Date().timeIntervalSince(cached.read) < Self.epochCacheSeconds {
            return cached.epoch
        }
        let epoch = try await services.blocking { try RevocationEpoch.read(store) }
        epochs.withLockedValue { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[key] = (epoch, Date())
        }
        return epoch
    }

    func sessionCookie(_ value: String, request: Request, maxAge: Int) -> Cookie {
        Cookie(
            name: Self.sessionCookie, value: value, maxAge: maxAge, path: "/",
            secure: services.settings.secureCookies || request.isHTTPS, httpOnly: true, sameSite: .strict)
    }

    func loginPage(_ request: Request, error: String? = nil, user: String = "", status: HTTPResponse.Status = .ok) -> Response {
        var data: [String: Any] = ["user": user]
        if let error { data["error"] = error }
        let disabled = services.settings.sessionKey.flatMap(SessionSealer.init(key:)) == nil
        if disabled {
            data["disabled"] = "Web login is disabled: the cluster has no web session key (svcpkgWebSessionKey in LDAP)."
        }
        // Double-submit token for the login form itself (login CSRF): a random value in a
        // short-lived SameSite=Strict cookie and in the form.
        let nonce = Base64URL.encode((0..<18).map { _ in UInt8.random(in: 0...255) })
        data["nonce"] = nonce
        var response = page(title: "Sign in", template: "login", data: data, auth: nil, status: disabled ? .serviceUnavailable : status)
        response.setCookie(
            Cookie(name: Self.loginCookie, value: nonce, maxAge: 3600, path: "/login", secure: services.settings.secureCookies || request.isHTTPS, httpOnly: true, sameSite: .strict))
        return response
    }

    func login(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let settings = services.settings
        guard let sealer = settings.sessionKey.flatMap(SessionSealer.init(key:)) else { throw WebError.loginDisabled }
        try Self.checkOrigin(request)
        let form = try await Self.readForm(request, limit: Self.maxSmallFormBytes)
        guard let nonce = request.cookie(Self.loginCookie), let presented = form.first("_login"),
            ConstantTime.equal(Array(nonce.utf8), Array(presented.utf8))
        else {
            return loginPage(request, error: "Your sign-in form expired. Please try again.", status: .forbidden)
        }
        let user = (form.first("user") ?? "").trimmingCharacters(in: .whitespaces)
        let password = form.first("password") ?? ""
        guard !user.isEmpty, user.utf8.count <= 254, !password.isEmpty, password.utf8.count <= 1024 else {
            return loginPage(request, error: "Enter your e-mail address and password.", user: String(user.prefix(254)), status: .unauthorized)
        }
        let client = request.clientAddress(context)
        switch await services.authenticate(user: user, password: password, remoteAddress: client) {
        case .invalid:
            logger.notice("web login failed", metadata: ["user": "\(user)", "remote": "\(client)"])
            return loginPage(request, error: "The e-mail address or the password is wrong.", user: user, status: .unauthorized)
        case .refused:
            return loginPage(request, error: "Too many failed sign-ins from your address, or the directory is not answering. Try again in a few minutes.", user: user, status: .tooManyRequests)
        case .ok(let address):
            let store = try services.mailStore(for: address)
            let epoch = try await services.blocking { try RevocationEpoch.read(store) }
            let session = WebSession.new(user: address, epoch: epoch, lifetime: settings.sessionLifetime)
            var response = Self.redirect("/mail")
            response.setCookie(sessionCookie(try sealer.seal(session), request: request, maxAge: settings.sessionLifetime))
            response.setCookie(Cookie(name: Self.loginCookie, value: "", maxAge: 0, path: "/login", httpOnly: true, sameSite: .strict))
            logger.info("web login", metadata: ["user": "\(address)", "remote": "\(client)"])
            return response
        }
    }

    func logout(_ request: Request, _ context: WebRequestContext, everywhere: Bool) async throws -> Response {
        let form = try await Self.readForm(request, limit: Self.maxSmallFormBytes)
        let auth = try await authenticate(request, form: form)
        if everywhere {
            let store = auth.store
            let raised = try await services.blocking { try RevocationEpoch.raise(store) }
            epochs.withLockedValue { $0[store.user.address] = (raised, Date()) }
            logger.notice("web logout everywhere", metadata: ["user": "\(auth.session.user)"])
        }
        var response = Self.redirect("/login")
        response.setCookie(sessionCookie("", request: request, maxAge: 0))
        return response
    }

    // MARK: - Pages

    func page(title: String, template: String, data: [String: Any], auth: Authenticated?, status: HTTPResponse.Status = .ok, live: String? = nil, autoreload: Bool = false) -> Response {
        var data = data
        data["title"] = title
        data["css"] = WebAsset.stylesheet.path
        data["js"] = WebAsset.script.path
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

    // MARK: Message list and search

    func mailbox(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let auth = try await authenticate(request)
        let query = Self.query(request)
        let folder = try Self.folder(query)
        let pageSize = max(1, services.settings.pageSize)
        let needle = (query.first("q") ?? "").trimmingCharacters(in: .whitespaces)
        let searching = request.uri.path == "/search" && !needle.isEmpty
        let store = auth.store
        let snapshot = try await loadSnapshot(store, folder)
        var candidates = snapshot.messages
        var notice: String?
        if searching {
            let matches = try await search(store: store, snapshot: snapshot, needle: String(needle.prefix(200)))
            candidates = candidates.filter { matches.uids.contains($0.uid) }
            notice = matches.partial ? "Showing matches among the newest messages in subject and sender only; the full-text index of this folder is being built." : nil
        }
        let total = candidates.count
        let pages = max(1, (total + pageSize - 1) / pageSize)
        let pageNumber = min(max(1, Int(query.first("page") ?? "") ?? 1), pages)
        // Newest first: the UID list is in arrival order, so the page is a slice from the end.
        let end = total - (pageNumber - 1) * pageSize
        let start = max(0, end - pageSize)
        let slice = Array(candidates[start..<max(start, end)].reversed())
        let services = self.services
        let uidValidity = snapshot.uidValidity
        let summaries = try await services.blocking { try services.summaries(store: store, folder: folder, uidValidity: uidValidity, messages: slice) }
        let (nav, names) = try await folderList(store, current: folder)
        let rows: [[String: Any]] = slice.map { message in
            let summary = summaries[message.uid]
            let subject = summary?.subject ?? ""
            return [
                "uid": message.uid, "subject": subject.isEmpty ? "(no subject)" : subject, "from": summary?.from ?? "",
                "date": DateText.short(message.arrivalDate), "unread": !message.flags.contains(.seen),
                "flagged": message.flags.contains(.flagged), "href": Self.messageLink(folder.name, uid: message.uid),
            ]
        }
        func link(_ page: Int) -> String {
            searching ? "/search?folder=\(URLQuery.encode(folder.name))&q=\(URLQuery.encode(needle))&page=\(page)" : Self.folderLink(folder.name, page: page)
        }
        var data: [String: Any] = [
            "folder": folder.name, "folders": nav, "messages": rows, "empty": rows.isEmpty, "query": needle,
            "heading": searching ? "Search “\(needle)” in \(folder.name)" : folder.name,
            "targets": names.filter { $0 != folder.name }.map { ["name": $0] },
            "reload": link(pageNumber),
            "range": total == 0 ? "" : "\((pageNumber - 1) * pageSize + 1)–\((pageNumber - 1) * pageSize + slice.count) of \(total)",
        ]
        if pageNumber > 1 { data["newer"] = link(pageNumber - 1) }
        if pageNumber < pages { data["older"] = link(pageNumber + 1) }
        if query.first("sent") == "1" { notice = "Your message was sent." }
        if query.first("saved") == "1" { notice = "The draft was saved." }
        if let notice { data["notice"] = notice }
        let live = "/events?folder=\(URLQuery.encode(folder.name))"
        return page(title: folder.name, template: "mailbox", data: data, auth: auth, live: live, autoreload: !searching && pageNumber == 1)
    }

    func loadSnapshot(_ store: MailStore, _ folder: MailFolderName) async throws -> FolderSnapshot {
        let snapshots = self.snapshots
        do {
            return try await services.blocking { try snapshots.snapshot(store, folder) }
        } catch let error as MailStoreError where error.isNotFound {
            throw WebError.notFound("There is no folder “\(folder.name)”.")
        }
    }

    /// Full-text search through the node's index; when it cannot answer yet (a big folder
    /// never indexed on this node), subject and sender of the newest messages.
    func search(store: MailStore, snapshot: FolderSnapshot, needle: String) async throws -> (uids: Set<UInt32>, partial: Bool) {
        let services = self.services
        return try await services.blocking {
            if let found = try services.search(store: store, snapshot: snapshot, needle: needle) { return (found, false) }
            let newest = Array(snapshot.messages.suffix(2000))
            let summaries = try services.summaries(store: store, folder: snapshot.folder, uidValidity: snapshot.uidValidity, messages: newest)
            let lowered = needle.lowercased()
            let uids = summaries.filter { $0.value.subject.lowercased().contains(lowered) || $0.value.from.lowercased().contains(lowered) }.keys
            return (Set(uids), snapshot.messages.count > newest.count || needle.count < 3)
        }
    }

    // MARK: Reading

    struct LoadedMessage {
        var folder: MailFolderName
        var stored: StoredMessage
        var view: MessageView
    }

    func loadMessage(_ auth: Authenticated, _ query: WebForm) async throws -> LoadedMessage {
        let folder = try Self.folder(query)
        guard let uid = query.first("uid").flatMap(UInt32.init), uid > 0 else { throw WebError.badRequest("No message was named.") }
        let snapshot = try await loadSnapshot(auth.store, folder)
        guard let stored = snapshot.message(uid: uid) else {
            throw WebError.notFound("The message is no longer in \(folder.name) (moved or deleted elsewhere).")
        }
        let store = auth.store
        // Reading and parsing (up to the display limit) on the file threads.
        let view = try await services.blocking { try store.readMessage(stored, in: folder, maxBytes: Self.maxDisplayBytes).map(MessageView.init) }
        guard let view else {
            throw WebError.notFound("The message is no longer in \(folder.name) (moved or deleted elsewhere).")
        }
        return LoadedMessage(folder: folder, stored: stored, view: view)
    }

    func message(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let auth = try await authenticate(request)
        let query = Self.query(request)
        let loaded = try await loadMessage(auth, query)
        let folder = loaded.folder
        let uid = loaded.stored.uid
        let view = loaded.view
        let store = auth.store
        // Opening a message marks it read, as every mail client does (other clients see it).
        if !loaded.stored.flags.contains(.seen) {
            _ = try await services.blocking { try store.store(folder, uids: [uid], .add, flags: [.seen]) }
        }
        let (nav, names) = try await folderList(store, current: folder)
        let showImages = query.first("images") == "1"
        let base = Self.messageLink(folder.name, uid: uid)
        let envelope = view.envelope
        var data: [String: Any] = [
            "folder": folder.name, "folders": nav, "uid": uid, "subject": envelope.subject.map { $0.isEmpty ? "(no subject)" : $0 } ?? "(no subject)",
            "from": MessageView.display(envelope.from), "date": envelope.date ?? "", "back": Self.folderLink(folder.name), "flagged": loaded.stored.flags.contains(.flagged),
            "targets": names.filter { $0 != folder.name }.map { ["name": $0] },
            "reply": "/compose?mode=reply&folder=\(URLQuery.encode(folder.name))&uid=\(uid)",
            "replyAll": "/compose?mode=replyall&folder=\(URLQuery.encode(folder.name))&uid=\(uid)",
            "forward": "/compose?mode=forward&folder=\(URLQuery.encode(folder.name))&uid=\(uid)",
        ]
        // Mustache shows a section for any string, the empty one too: only present headers are set.
        let addressFields: [(key: String, entries: [AddressListEntry])] = [("to", envelope.to), ("cc", envelope.cc)]
        for field in addressFields where !field.entries.isEmpty {
            data[field.key] = MessageView.display(field.entries)
        }
        let partBase = "/part?folder=\(URLQuery.encode(folder.name))&uid=\(uid)&part="
        var blocked = false
        switch view.body {
        case .text(let text): data["text"] = text
        case .html(let html):
            let cids = view.contentIDs
            let options = HTMLSanitizer.Options(
                allowRemoteImages: showImages,
                contentIDURL: { id in cids[id].map { partBase + $0.map(String.init).joined(separator: ".") } })
            let clean = HTMLSanitizer().sanitize(html, options: options)
            data["html"] = clean.html
            blocked = clean.remoteImagesBlocked
        case .none: data["text"] = "(This message has no text.)"
        }
        if blocked {
            data["imagesBlocked"] = true
            data["showImages"] = base + "&images=1"
        }
        data["attachments"] = view.attachments.map { part -> [String: Any] in
            [
                "href": partBase + part.pathText + "&download=1", "name": part.filename ?? "part \(part.pathText)",
                "type": part.mediaType, "size": ByteCountText.format(part.size),
            ]
        }
        data["hasAttachments"] = !view.attachments.isEmpty
        if loaded.stored.flags.contains(.draft) {
            data["editDraft"] = "/compose?mode=draft&folder=\(URLQuery.encode(folder.name))&uid=\(uid)"
        }
        var response = page(title: envelope.subject ?? "Message", template: "message", data: data, auth: auth)
        if showImages {
            // The user asked for this message's remote images: only this page may load them.
            response.headers[.contentSecurityPolicy] = WebSecurityMiddleware.contentSecurityPolicy(remoteImages: true)
        }
        return response
    }

    /// One part of a message: an inline image for a `cid:` URL, or an attachment download.
    func part(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let auth = try await authenticate(request)
        let query = Self.query(request)
        let loaded = try await loadMessage(auth, query)
        let path = (query.first("part") ?? "").split(separator: ".").compactMap { Int($0) }
        guard !path.isEmpty, path.count <= 32, let (part, data) = loaded.view.content(of: path) else {
            throw WebError.notFound("The message has no such part.")
        }
        let type = part.contentType.mediaType
        let inlineImage = query.first("download") != "1" && Self.inlineImageTypes.contains(type)
        var headers: HTTPFields = [.contentType: inlineImage ? type : "application/octet-stream", .cacheControl: "private, no-store"]
        let name = part.filename ?? (part.contentType.isEncapsulatedMessage ? "message.eml" : "part-\(path.map(String.init).joined(separator: "."))")
        headers[.contentDisposition] = (inlineImage ? "inline; " : "attachment; ") + ContentDispositionText.filename(name)
        // Nothing served from a message may run anything, even if opened directly.
        headers[.contentSecurityPolicy] = "default-src 'none'; img-src 'self'; sandbox"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Images shown inline (raster formats only: SVG can carry script).
    static let inlineImageTypes: Set<String> = ["image/png", "image/gif", "image/jpeg", "image/webp"]

    // MARK: Actions

    enum Action: String {
        case read, unread, flag, unflag, delete, move
    }

    func action(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let form = try await Self.readForm(request, limit: Self.maxSmallFormBytes)
        let auth = try await authenticate(request, form: form)
        let folder = try Self.folder(form)
        let back = Self.safeReturn(form.first("return"), fallback: Self.folderLink(folder.name))
        guard let action = form.first("action").flatMap(Action.init(rawValue:)) else { throw WebError.badRequest("Unknown action.") }
        let uids = form.all("uid").compactMap(UInt32.init).filter { $0 > 0 }
        guard !uids.isEmpty else { return Self.redirect(back) }
        let store = auth.store
        var target: MailFolderName?
        if action == .move {
            target = try Self.folder(WebForm(fields: [.init(name: "folder", value: form.first("target") ?? "")]))
        }
        let moveTarget = target
        let destination: String = try await services.blocking {
            switch action {
            case .read: _ = try store.store(folder, uids: uids, .add, flags: [.seen])
            case .unread: _ = try store.store(folder, uids: uids, .remove, flags: [.seen])
            case .flag: _ = try store.store(folder, uids: uids, .add, flags: [.flagged])
            case .unflag: _ = try store.store(folder, uids: uids, .remove, flags: [.flagged])
            case .move:
                if let moveTarget, moveTarget != folder { _ = try store.move(uids: uids, from: folder, to: moveTarget) }
            case .delete:
                let trash = try store.ensureDefaultFolders()[.trash]
                if let trash, trash != folder {
                    _ = try store.move(uids: uids, from: folder, to: trash)
                } else {
                    // Deleting in the Trash removes for good.
                    _ = try store.store(folder, uids: uids, .add, flags: [.deleted])
                    _ = try store.expunge(folder, uids: uids)
                }
            }
            return back
        }
        // After deleting or moving the open message, go back to its folder.
        if action == .move || action == .delete, destination.hasPrefix("/message") { return Self.redirect(Self.folderLink(folder.name)) }
        return Self.redirect(destination)
    }

    // MARK: Compose and send

    func compose(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let auth = try await authenticate(request)
        let query = Self.query(request)
        let identities = await services.identities(of: auth.session.user)
        var data: [String: Any] = ["heading": "New message", "to": query.first("to") ?? ""]
        var fromAddress = auth.session.user
        if query.first("mode") == "draft" {
            let reference = "\(query.first("uid") ?? ""):\(query.first("folder") ?? "")"
            guard let draft = try await referencedDraft(reference, store: auth.store) else {
                throw WebError.notFound("There is no such draft (sent or deleted elsewhere?).")
            }
            let envelope = draft.view.envelope
            data["heading"] = "Draft"
            data["to"] = MessageView.addresses(envelope.to).joined(separator: ", ")
            data["cc"] = MessageView.addresses(envelope.cc).joined(separator: ", ")
            data["bcc"] = MessageView.addresses(envelope.bcc).joined(separator: ", ")
            data["subject"] = envelope.subject ?? ""
            data["text"] = draft.view.quotableText.replacingOccurrences(of: "\r\n", with: "\n")
            data["inReplyTo"] = envelope.inReplyTo ?? ""
            data["references"] = draft.view.structure.root.fields.first("References").map { HeaderText.singleLine(String(decoding: $0, as: UTF8.self)) } ?? ""
            data["draft"] = reference
            data["draftAttachments"] = draft.view.attachments.map { ["name": $0.filename ?? "attachment"] }
            data["hasDraftAttachments"] = !draft.view.attachments.isEmpty
            if let sender = MessageView.addresses(envelope.from).first { fromAddress = sender }
        } else if let mode = query.first("mode").flatMap(MessageView.ComposeMode.init(rawValue:)) {
            let loaded = try await loadMessage(auth, query)
            let draft = loaded.view.draft(mode, own: identities)
            data["to"] = draft.to
            data["cc"] = draft.cc
            data["subject"] = draft.subject
            data["text"] = draft.text
            data["inReplyTo"] = draft.inReplyTo ?? ""
            data["references"] = draft.references ?? ""
            data["heading"] = mode == .forward ? "Forward" : "Reply"
            if mode == .forward {
                data["forward"] = "\(loaded.stored.uid):\(loaded.folder.name)"
                data["forwardNote"] = true
            } else {
                data["replied"] = "\(loaded.stored.uid):\(loaded.folder.name)"
            }
            // Answer from the address the message was sent to, when it is one of ours.
            let recipients = Set(MessageView.addresses(loaded.view.envelope.to + loaded.view.envelope.cc).map { $0.lowercased() })
            if let own = identities.first(where: { recipients.contains($0.lowercased()) }) { fromAddress = own }
        }
        data["identities"] = identities.map { ["address": $0, "selected": $0.lowercased() == fromAddress.lowercased()] }
        data["maxUpload"] = ByteCountText.format(services.settings.maxMessageSize)
        return page(title: data["heading"] as? String ?? "Compose", template: "compose", data: data, auth: auth)
    }

    func send(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let settings = services.settings
        // Base64 makes attachments a third larger in the message than in the upload.
        let form = try await Self.readForm(request, limit: settings.maxMessageSize + 1_048_576)
        let auth = try await authenticate(request, form: form)
        let identities = await services.identities(of: auth.session.user)
        func again(_ error: String) -> Response {
            var data: [String: Any] = ["heading": "New message", "error": error]
            for name in ["to", "cc", "bcc", "subject", "text", "forward", "replied", "draft"] { data[name] = form.first(name) ?? "" }
            data["inReplyTo"] = form.first("in_reply_to") ?? ""
            data["references"] = form.first("references") ?? ""
            data["forwardNote"] = !(form.first("forward") ?? "").isEmpty
            let from = form.first("from") ?? auth.session.user
            data["identities"] = identities.map { ["address": $0, "selected": $0.lowercased() == from.lowercased()] }
            data["maxUpload"] = ByteCountText.format(settings.maxMessageSize)
            return page(title: "Compose", template: "compose", data: data, auth: auth, status: .unprocessableContent)
        }
        guard let from = form.first("from"), let sender = identities.first(where: { $0.lowercased() == from.lowercased() }) else {
            return again("Choose one of your own addresses as the sender.")
        }
        let to: [String], cc: [String], bcc: [String]
        do {
            to = try AddressInput.parse(form.first("to") ?? "")
            cc = try AddressInput.parse(form.first("cc") ?? "")
            bcc = try AddressInput.parse(form.first("bcc") ?? "")
        } catch {
            return again("Recipients: \(error).")
        }
        let saving = form.first("save") == "draft"
        guard saving || !(to + cc + bcc).isEmpty else { return again("Add at least one recipient.") }
        let store = auth.store
        // A draft being edited: its attachments go with the new version, which replaces it.
        var previousDraft: (folder: MailFolderName, uid: UInt32, view: MessageView)?
        if let reference = form.first("draft"), !reference.isEmpty {
            guard let draft = try await referencedDraft(reference, store: store) else {
                return again("The draft was changed or sent elsewhere; copy your text and start a new message.")
            }
            previousDraft = draft
        }
        var forwarded: [UInt8]?
        if let reference = form.first("forward"), !reference.isEmpty {
            guard let original = try await referencedMessage(reference, store: store) else {
                return again("The message to forward is no longer there.")
            }
            forwarded = original.bytes
        }
        let uploads = form.files.filter { $0.field == "attachment" }.map {
            OutgoingMessage.Attachment(filename: $0.filename, contentType: $0.contentType, data: $0.data)
        }
        let outgoing = OutgoingMessage(
            from: sender, to: to, cc: cc, bcc: bcc, subject: form.first("subject") ?? "",
            text: (form.first("text") ?? "").replacingOccurrences(of: "\r\n", with: "\n"),
            inReplyTo: form.first("in_reply_to"), references: form.first("references"),
            attachments: (previousDraft.map { Self.attachments(of: $0.view) } ?? []) + uploads,
            forwarded: forwarded)
        guard outgoing.recipients.count <= AddressInput.maxRecipients else { return again("Too many recipients.") }
        let domain = sender.split(separator: "@").last.map(String.init) ?? "localhost"
        let id = Base64URL.encode((0..<15).map { _ in UInt8.random(in: 0...255) })
        let bytes = outgoing.render(date: Date(), messageID: "\(id)@\(domain)", boundarySeed: id, includeBcc: saving)
        guard bytes.count <= settings.maxMessageSize else {
            return again("The message is \(ByteCountText.format(bytes.count)); the largest allowed is \(ByteCountText.format(settings.maxMessageSize)).")
        }
        if saving {
            let drafts = try await services.blocking { () -> MailFolderName in
                let drafts = try store.ensureDefaultFolders()[.drafts] ?? .inbox
                _ = try store.append([MailStore.Appended(bytes: bytes, flags: [.draft, .seen])], to: drafts)
                return drafts
            }
            if let previousDraft { try await removeDraft(previousDraft.folder, uid: previousDraft.uid, store: store) }
            return Self.redirect(Self.folderLink(drafts.name) + "&saved=1")
        }
        do {
            try await services.submit(message: bytes, sender: sender, recipients: outgoing.recipients, user: auth.session.user, remoteAddress: request.clientAddress(context))
        } catch let error as WebSubmitError {
            return again(error.message)
        }
        // The copy in Sent, and \Answered on the message replied to.
        let replied = form.first("replied")
        try await services.blocking {
            let sent = try store.ensureDefaultFolders()[.sent] ?? .inbox
            _ = try store.append([MailStore.Appended(bytes: bytes, flags: [.seen])], to: sent)
        }
        if let previousDraft { try await removeDraft(previousDraft.folder, uid: previousDraft.uid, store: store) }
        if let replied, let original = try await referencedMessage(replied, store: store) {
            let folder = original.folder
            let uid = original.uid
            _ = try? await services.blocking { try store.store(folder, uids: [uid], .add, flags: [.answered]) }
        }
        logger.info("web message sent", metadata: ["user": "\(auth.session.user)", "recipients": "\(outgoing.recipients.count)", "size": "\(bytes.count)"])
        return Self.redirect(Self.folderLink("INBOX") + "&sent=1")
    }

    /// A draft named as `uid:folder`: only a message flagged \Draft in the Drafts folder (a
    /// form cannot get any other message deleted).
    func referencedDraft(_ reference: String, store: MailStore) async throws -> (folder: MailFolderName, uid: UInt32, view: MessageView)? {
        guard let found = try await referencedMessage(reference, store: store) else { return nil }
        let folder = found.folder
        let uid = found.uid
        let isDraft = try await services.blocking {
            try store.ensureDefaultFolders()[.drafts] == folder && store.sync(folder).message(uid: uid)?.flags.contains(.draft) == true
        }
        return isDraft ? (folder, uid, MessageView(found.bytes)) : nil
    }

    func removeDraft(_ folder: MailFolderName, uid: UInt32, store: MailStore) async throws {
        _ = try await services.blocking {
            _ = try store.store(folder, uids: [uid], .add, flags: [.deleted])
            return try store.expunge(folder, uids: [uid])
        }
    }

    /// The attachments of a message, to send again (a draft's).
    static func attachments(of view: MessageView) -> [OutgoingMessage.Attachment] {
        view.attachments.compactMap { part in
            view.content(of: part.path).map {
                OutgoingMessage.Attachment(filename: part.filename ?? "attachment", contentType: part.mediaType, data: $0.data)
            }
        }
    }

    /// A message named as `uid:folder` in a compose form.
    func referencedMessage(_ reference: String, store: MailStore) async throws -> (folder: MailFolderName, uid: UInt32, bytes: [UInt8])? {
        let parts = reference.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let uid = UInt32(parts[0]), let folder = try? MailFolderName(String(parts[1])) else { return nil }
        let snapshot = try await loadSnapshot(store, folder)
        guard let stored = snapshot.message(uid: uid) else { return nil }
        let limit = services.settings.maxMessageSize
        guard let bytes = try await services.blocking({ try store.readMessage(stored, in: folder, maxBytes: limit) }) else { return nil }
        return (folder, uid, bytes)
    }

    // MARK: Live updates

    /// Server-sent events: `change` whenever the folder's messages or flags change (new mail,
    /// another client's IMAP STORE on another node), found by polling the folder's change
    /// token as an IMAP IDLE session does.
    func events(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let auth = try await authenticate(request)
        let folder = try Self.folder(Self.query(request))
        let store = auth.store
        let services = self.services
        let snapshots = self.snapshots
        let interval = max(0.2, services.settings.pollInterval)
        let start = try await loadSnapshot(store, folder)
        let user = auth.session.user.lowercased()
        let epoch = auth.session.epoch
        let body = ResponseBody { writer in
            // Counted while the stream runs, so a page opened in many tabs cannot hold more
            // than a few polling loops on this node; the others are told to come back later.
            let admitted = self.streams.withLockedValue { streams -> Bool in
                guard streams[user, default: 0] < Self.maxStreamsPerUser else { return false }
                streams[user, default: 0] += 1
                return true
            }
            guard admitted else {
                try await writer.write(ByteBuffer(string: "retry: 60000\n: too many live streams for this user on this node\n\n"))
                try await writer.finish(nil)
                return
            }
            defer {
                self.streams.withLockedValue { streams in
                    let left = (streams[user] ?? 1) - 1
                    streams[user] = left > 0 ? left : nil
                }
            }
            var last = start
            try await writer.write(ByteBuffer(string: "retry: 3000\n: connected\n\n"))
            let deadline = Date().addingTimeInterval(Self.eventStreamSeconds)
            var sinceWrite: TimeInterval = 0
            // Ends when the user logs out everywhere (the browser's reconnect then gets 401).
            while Date() < deadline, !Task.isCancelled, try await self.currentEpoch(store) <= epoch {
                try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
                sinceWrite += interval
                let current = try await services.blocking { try snapshots.snapshot(store, folder) }
                if current.uidNext != last.uidNext || current.highestModSeq != last.highestModSeq || current.messages.count != last.messages.count {
                    let unseen = current.messages.reduce(0) { $0 + ($1.flags.contains(.seen) ? 0 : 1) }
                    try await writer.write(ByteBuffer(string: "event: change\ndata: {\"exists\":\(current.messages.count),\"unseen\":\(unseen)}\n\n"))
                    last = current
                    sinceWrite = 0
                } else if sinceWrite >= 15 {
                    // A comment keeps proxies from timing the stream out and finds closed connections.
                    try await writer.write(ByteBuffer(string: ": ping\n\n"))
                    sinceWrite = 0
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }
}

/// Folder snapshots per user and folder on this node, renewed when the folder's change token
/// says so (three stat calls) instead of reading the UID list on every page: a page of a
/// 100,000-message folder costs the token, a slice and 50 cache lookups.
final class FolderSnapshotCache: Sendable {
    static let maxEntries = 256
    private let entries = NIOLockedValueBox<[String: FolderSnapshot]>([:])

    /// Blocking: call on the file threads.
    func snapshot(_ store: MailStore, _ folder: MailFolderName) throws -> FolderSnapshot {
        let key = store.user.address + "\u{0}" + folder.name
        let token = try store.changeToken(folder)
        if let cached = entries.withLockedValue({ $0[key] }), !cached.token.needsSync(current: token) {
            return cached
        }
        let fresh = try store.sync(folder)
        entries.withLockedValue { entries in
            if entries.count >= Self.maxEntries, let victim = entries.keys.first { entries[victim] = nil }
            entries[key] = fresh
        }
        return fresh
    }
}

/// The per-user revocation epoch on the shared tree: `svcpkg-web-epoch` in the user's home.
/// Sessions made before the epoch was raised are refused on every node.
enum RevocationEpoch {
    static let fileName = "svcpkg-web-epoch"

    static func path(_ store: MailStore) -> String { store.homeDirectory + "/" + fileName }

    /// Blocking.
    static func read(_ store: MailStore) throws -> UInt64 {
        do {
            let bytes = try AtomicFile.read(path(store), maxBytes: 64)
            return UInt64(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        } catch {
            if error.isNotFound { return 0 }
            throw error
        }
    }

    /// Blocking. Returns the new epoch.
    static func raise(_ store: MailStore) throws -> UInt64 {
        _ = try store.changeToken(.inbox)  // makes the home if the user never had mail
        let next = try read(store) + 1
        try AtomicFile.write(Array("\(next)\n".utf8), to: path(store), mode: 0o600)
        return next
    }
}

/// What `WebServices.submit` throws when the message is refused (shown to the user).
public struct WebSubmitError: Error, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

enum ByteCountText {
    static func format(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) bytes" }
        if bytes < 1 << 20 { return "\((bytes + 512) / 1024) KB" }
        return String(format: "%.1f MB", Double(bytes) / 1_048_576)
    }
}

enum DateText {
    /// `2026-12-07 10:15` in UTC (the page does not know the reader's zone without script).
    static func short(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min))"
    }
}

enum ContentDispositionText {
    /// RFC 6266: an ASCII fallback and the UTF-8 name.
    static func filename(_ name: String) -> String {
        let clean = HeaderText.singleLine(name)
        let ascii = String(clean.unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7f && $0 != "\"" && $0 != "\\" ? Character($0) : "_" })
        return "filename=\"\(ascii)\"; filename*=UTF-8''\(URLQuery.encode(clean))"
    }
}
