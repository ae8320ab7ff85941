import Foundation
import HTTPTypes
import Hummingbird
import MailMessage
import NIOCore
import SharedTree

/// The message list, search, reading a message and its parts, and actions on messages.
extension WebMail {
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
        let allowed: Set<UInt32>? = searching ? Set(candidates.map(\.uid)) : nil
        var list = ListView(query: query)
        var conversations: [ConversationIndex.Conversation]?
        var ordered: [StoredMessage] = []
        if list.conversations {
            if let index = try await conversationIndex(store: store, snapshot: snapshot) {
                conversations = index.conversations.filter { conversation in allowed.map { set in conversation.uids.contains { set.contains($0) } } ?? true }
            } else {
                notice = "Conversations need this folder in the node's index, which is being built now; showing the newest messages first."
                list = ListView(order: .newest, reverse: false, conversations: false)
            }
        }
        if conversations == nil {
            if list.order.needsCache {
                if let uids = try await sortedUIDs(store: store, snapshot: snapshot, order: list.order) {
                    ordered = uids.filter { allowed?.contains($0) ?? true }.compactMap { snapshot.message(uid: $0) }
                } else {
                    notice = "Sorting \(list.order.label.lowercased()) needs this folder in the node's index, which is being built now; showing the newest first."
                    list = ListView(order: .newest, reverse: list.reverse, conversations: false)
                    ordered = list.order.apply(candidates)
                }
            } else {
                ordered = list.order.apply(candidates)
            }
        }
        if list.reverse {
            ordered.reverse()
            conversations?.reverse()
        }
        let total = conversations?.count ?? ordered.count
        let pages = max(1, (total + pageSize - 1) / pageSize)
        let pageNumber = min(max(1, Int(query.first("page") ?? "") ?? 1), pages)
        let start = min(total, (pageNumber - 1) * pageSize)
        let end = min(total, start + pageSize)
        let (nav, names) = try await folderList(store, current: folder)
        func link(_ page: Int) -> String {
            let base = searching ? "/search?folder=\(URLQuery.encode(folder.name))&q=\(URLQuery.encode(needle))&page=\(page)" : Self.folderLink(folder.name, page: page)
            return base + list.queryText(hasQuery: base.contains("?"))
        }
        var data: [String: Any] = [
            "folder": folder.name, "folders": nav, "query": needle,
            "heading": searching ? "Search “\(needle)” in \(folder.name)" : folder.name,
            "targets": names.filter { $0 != folder.name }.map { ["name": $0] },
            "reload": link(pageNumber),
            "range": total == 0 ? "" : "\(start + 1)–\(end) of \(total)\(conversations == nil ? "" : " conversations")",
            "orders": ListOrder.allCases.map { ["value": $0.rawValue, "label": $0.label, "selected": $0 == list.order] },
            "views": [
                ["value": "messages", "label": "Messages", "selected": !list.conversations],
                ["value": "conversations", "label": "Conversations", "selected": list.conversations],
            ] as [[String: Any]],
            "reverse": list.reverse,
            "searchAction": searching ? "/search" : "/mail",
        ]
        if let conversations {
            let shown = Array(conversations[start..<end])
            data["conversations"] = conversationRows(shown, folder: folder, snapshot: snapshot)
            data["conversationView"] = true
            data["empty"] = shown.isEmpty
            data["before"] = "\(snapshot.uidNext)"
        } else {
            let slice = Array(ordered[start..<end])
            data["messages"] = try await messageRows(slice, store: store, snapshot: snapshot)
            data["empty"] = slice.isEmpty
        }
        if searching { data["q"] = needle }
        if pageNumber > 1 { data["newer"] = link(pageNumber - 1) }
        if pageNumber < pages { data["older"] = link(pageNumber + 1) }
        if query.first("sent") == "1" { notice = "Your message was sent." }
        if query.first("saved") == "1" { notice = "The draft was saved." }
        if let notice { data["notice"] = notice }
        let live = "/events?folder=\(URLQuery.encode(folder.name))&state=\(Self.folderState(snapshot))"
        let autoreload = !searching && pageNumber == 1 && list.order == .newest && !list.reverse
        return page(title: folder.name, template: "mailbox", data: data, auth: auth, live: live, autoreload: autoreload)
    }

    /// The rows of the message table (subject and sender from the node's message cache).
    func messageRows(_ messages: [StoredMessage], store: MailStore, snapshot: FolderSnapshot) async throws -> [[String: Any]] {
        let services = self.services
        let folder = snapshot.folder
        let uidValidity = snapshot.uidValidity
        let summaries = try await services.blocking { try services.summaries(store: store, folder: folder, uidValidity: uidValidity, messages: messages) }
        return messages.map { message in
            let summary = summaries[message.uid]
            let subject = summary?.subject ?? ""
            return [
                "uid": message.uid, "subject": subject.isEmpty ? "(no subject)" : subject, "from": summary?.from ?? "",
                "date": DateText.short(message.arrivalDate), "unread": !message.flags.contains(.seen),
                "flagged": message.flags.contains(.flagged), "href": Self.messageLink(folder.name, uid: message.uid),
            ]
        }
    }

    /// How the list is shown: messages in an order, or conversations (newest first); either
    /// reversed. From the query (`order`, `view=conversations`, `reverse=1`) and back into links.
    struct ListView: Equatable {
        var order: ListOrder
        var reverse: Bool
        var conversations: Bool

        init(order: ListOrder, reverse: Bool, conversations: Bool) {
            self.order = order
            self.reverse = reverse
            self.conversations = conversations
        }

        init(query: WebForm) {
            self.init(
                order: query.first("order").flatMap(ListOrder.init(rawValue:)) ?? .newest, reverse: query.first("reverse") == "1",
                conversations: query.first("view") == "conversations")
        }

        /// The query parameters that differ from the default view, for links.
        func queryText(hasQuery: Bool) -> String {
            var parts: [String] = []
            if conversations { parts.append("view=conversations") } else if order != .newest { parts.append("order=\(order.rawValue)") }
            if reverse { parts.append("reverse=1") }
            guard !parts.isEmpty else { return "" }
            return (hasQuery ? "&" : "?") + parts.joined(separator: "&")
        }
    }

    /// Orders the list can be shown in. The first four work on the folder snapshot alone (UIDs
    /// in arrival order and flags), so they cost the same on a 100,000-message folder as on a
    /// small one; date, sender and subject come from the node's message cache (`sortedUIDs`).
    enum ListOrder: String, CaseIterable {
        case newest, oldest, unread, flagged, date, sender, subject

        var needsCache: Bool { self == .date || self == .sender || self == .subject }

        var label: String {
            switch self {
            case .newest: "Newest first"
            case .oldest: "Oldest first"
            case .unread: "Unread first"
            case .flagged: "Flagged first"
            case .date: "By date sent"
            case .sender: "By sender"
            case .subject: "By subject"
            }
        }

        /// The sort key of a message for `.sender` and `.subject`: lower-cased, and for the
        /// subject without reply and forward prefixes, so a conversation stays together.
        func key(_ summary: MessageSummary?) -> String {
            guard let summary else { return "" }
            guard self == .subject else { return summary.from.lowercased() }
            var text = summary.subject.trimmingCharacters(in: .whitespaces).lowercased()
            var stripped = true
            while stripped {
                stripped = false
                for prefix in ["re:", "fwd:", "fw:", "aw:", "wg:"] where text.hasPrefix(prefix) {
                    text = String(text.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
                    stripped = true
                }
            }
            return text
        }

        /// The folder's messages in this order (for `.date`, `.sender` and `.subject` given the
        /// header fields by UID; without them, newest first).
        func sorted(_ messages: [StoredMessage], fields: [UInt32: MessageSummary]) -> [UInt32] {
            switch self {
            case .date:
                // Newest Date: first; a message without a readable Date: counts by its arrival.
                let keyed = messages.map { (date: fields[$0.uid]?.sent ?? $0.arrivalDate, uid: $0.uid) }
                return keyed.sorted { $0.date != $1.date ? $0.date > $1.date : $0.uid > $1.uid }.map(\.uid)
            case .sender, .subject:
                let keyed = messages.map { (key: key(fields[$0.uid]), uid: $0.uid) }
                return keyed.sorted { $0.key != $1.key ? $0.key < $1.key : $0.uid > $1.uid }.map(\.uid)
            case .newest, .oldest, .unread, .flagged:
                return apply(messages).map(\.uid)
            }
        }

        func apply(_ messages: [StoredMessage]) -> [StoredMessage] {
            let newestFirst = Array(messages.reversed())
            switch self {
            case .newest: return newestFirst
            case .oldest: return messages
            case .unread: return newestFirst.filter { !$0.flags.contains(.seen) } + newestFirst.filter { $0.flags.contains(.seen) }
            case .flagged: return newestFirst.filter { $0.flags.contains(.flagged) } + newestFirst.filter { !$0.flags.contains(.flagged) }
            case .date, .sender, .subject: return newestFirst  // sorted by `sortedUIDs`
            }
        }
    }

    /// The key of what depends on a folder's messages but not on their flags: UIDVALIDITY,
    /// UIDNEXT and the count change with every delivery and expunge, not with a STORE.
    static func folderContentKey(_ store: MailStore, _ snapshot: FolderSnapshot, _ what: String) -> String {
        [store.user.address, snapshot.folder.name, "\(snapshot.uidValidity)", "\(snapshot.uidNext)", "\(snapshot.messages.count)", what]
            .joined(separator: "\u{0}")
    }

    /// The folder's UIDs by date sent, sender or subject (ties: newest first), from the node's
    /// message cache; kept per node for the folder's content (`folderContentKey`). nil while the
    /// cache does not hold the whole folder yet.
    func sortedUIDs(store: MailStore, snapshot: FolderSnapshot, order: ListOrder) async throws -> [UInt32]? {
        let key = Self.folderContentKey(store, snapshot, order.rawValue)
        if let hit = sortedOrders.withLockedValue({ $0[key] }) { return hit }
        let sorted: [UInt32]? = try await services.blocking {
            guard let fields = try self.listFields(store: store, snapshot: snapshot) else { return nil }
            return order.sorted(snapshot.messages, fields: fields)
        }
        if let sorted {
            sortedOrders.withLockedValue { cache in
                if cache.count >= Self.maxSortedOrders { cache.removeAll() }
                cache[key] = sorted
            }
        }
        return sorted
    }

    /// The header fields of every message of the folder (`WebServices.sortFields`), or nil while
    /// the node's cache does not hold the whole folder. After a delivery only the new messages
    /// are asked for (`folderFields`): the rest of a folder version's fields never change.
    /// Blocking: called inside `blocking`.
    func listFields(store: MailStore, snapshot: FolderSnapshot) throws -> [UInt32: MessageSummary]? {
        let key = [store.user.address, snapshot.folder.name, "\(snapshot.uidValidity)"].joined(separator: "\u{0}")
        var fields: [UInt32: MessageSummary]?
        if let known = folderFields.withLockedValue({ $0[key] }) {
            let missing = snapshot.messages.filter { known[$0.uid] == nil }
            if missing.count <= Self.maxIncrementalFields {
                var current: [UInt32: MessageSummary] = [:]
                current.reserveCapacity(snapshot.messages.count)
                for message in snapshot.messages {
                    if let summary = known[message.uid] { current[message.uid] = summary }
                }
                let fresh = try services.summaries(store: store, folder: snapshot.folder, uidValidity: snapshot.uidValidity, messages: missing)
                fields = current.merging(fresh) { _, new in new }
            }
        }
        if fields == nil { fields = try services.sortFields(store: store, snapshot: snapshot) }
        if let fields {
            folderFields.withLockedValue { cache in
                if cache[key] == nil, cache.count >= Self.maxFolderFields { cache.removeAll() }
                cache[key] = fields
            }
        }
        return fields
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
        let partBase = Self.partLink(folder.name, uid: uid)
        let body = Self.body(of: view, partBase: partBase, showImages: showImages)
        data.merge(body.data) { _, new in new }
        if body.remoteImagesBlocked {
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

    /// The link to one part of a message, without the part's path.
    static func partLink(_ folder: String, uid: UInt32) -> String {
        "/part?folder=\(URLQuery.encode(folder))&uid=\(uid)&part="
    }

    /// A message's text for a page: `text` (escaped by the template) or `html` (through the
    /// sanitizer, `cid:` images served from the message's parts, remote images only when asked).
    static func body(of view: MessageView, partBase: String, showImages: Bool) -> (data: [String: Any], remoteImagesBlocked: Bool) {
        switch view.body {
        case .text(let text): return (["text": text], false)
        case .html(let html):
            let cids = view.contentIDs
            let options = HTMLSanitizer.Options(
                allowRemoteImages: showImages,
                contentIDURL: { id in cids[id].map { partBase + $0.map(String.init).joined(separator: ".") } })
            let clean = HTMLSanitizer().sanitize(html, options: options)
            return (["html": clean.html], clean.remoteImagesBlocked)
        case .none: return (["text": "(This message has no text.)"], false)
        }
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
        let store = auth.store
        // A conversation row stands for all its messages.
        let members = try await conversationMembers(form, store: store, folder: folder)
        let uids = Array(Set(form.all("uid").compactMap(UInt32.init).filter { $0 > 0 } + members)).sorted()
        guard !uids.isEmpty else { return Self.redirect(back) }
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
        if action == .move || action == .delete, destination.hasPrefix("/message") || destination.hasPrefix("/conversation") {
            return Self.redirect(Self.folderLink(folder.name))
        }
        return Self.redirect(destination)
    }
}
