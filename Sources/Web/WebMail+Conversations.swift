import Foundation
import Hummingbird
import MailMessage
import SharedTree

/// The conversation view: a folder's messages grouped by thread (`ConversationIndex`), one row
/// per conversation, and a page per conversation with its messages in reading order.
extension WebMail {
    /// The folder's conversations, from the node's message cache; kept per node for the folder's
    /// content (flags do not change it). nil while the cache does not hold the whole folder yet.
    func conversationIndex(store: MailStore, snapshot: FolderSnapshot) async throws -> ConversationIndex? {
        let key = Self.folderContentKey(store, snapshot, "conversations")
        if let hit = conversationIndexes.withLockedValue({ $0[key] }) { return hit }
        let index: ConversationIndex? = try await services.blocking {
            guard let fields = try self.listFields(store: store, snapshot: snapshot) else { return nil }
            return ConversationIndex(messages: snapshot.messages.map { ($0.uid, $0.arrivalDate) }, fields: fields)
        }
        if let index {
            conversationIndexes.withLockedValue { cache in
                if cache.count >= Self.maxConversationIndexes { cache.removeAll() }
                cache[key] = index
            }
        }
        return index
    }

    /// One row per conversation: participants, subject, count, unread count (from the
    /// snapshot's current flags) and the arrival date of its newest message.
    func conversationRows(_ conversations: [ConversationIndex.Conversation], folder: MailFolderName, snapshot: FolderSnapshot) -> [[String: Any]] {
        conversations.map { conversation in
            let messages = conversation.uids.compactMap { snapshot.message(uid: $0) }
            let unread = messages.filter { !$0.flags.contains(.seen) }.count
            var row: [String: Any] = [
                "conversation": conversation.newest, "subject": conversation.subject.isEmpty ? "(no subject)" : conversation.subject,
                "participants": conversation.participants.joined(separator: ", "), "count": conversation.uids.count,
                "date": snapshot.message(uid: conversation.newest).map { DateText.short($0.arrivalDate) } ?? "",
                "unread": unread > 0, "flagged": messages.contains { $0.flags.contains(.flagged) },
                "href": Self.conversationLink(folder.name, uid: conversation.newest),
            ]
            if conversation.uids.count > 1 { row["many"] = true }
            if unread > 0 { row["unreadCount"] = unread }
            return row
        }
    }

    /// How much of each message the conversation page reads for its text (the message's own
    /// page shows all of it).
    static let maxConversationBodyBytes = 256 * 1024

    static func conversationLink(_ folder: String, uid: UInt32) -> String {
        "/conversation?folder=\(URLQuery.encode(folder))&uid=\(uid)"
    }

    /// A conversation's messages in reading order (oldest first), paged, with the same actions
    /// as the folder list, and below the list each message's text (remote images blocked;
    /// nothing is marked read). Named by any of its messages' UIDs.
    func conversation(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let auth = try await authenticate(request)
        let query = Self.query(request)
        let folder = try Self.folder(query)
        guard let uid = query.first("uid").flatMap(UInt32.init), uid > 0 else { throw WebError.badRequest("No conversation was named.") }
        let store = auth.store
        let snapshot = try await loadSnapshot(store, folder)
        guard snapshot.message(uid: uid) != nil else {
            throw WebError.notFound("The conversation is no longer in \(folder.name) (moved or deleted elsewhere).")
        }
        var notice: String?
        var uids = [uid]
        var subject = ""
        if let found = try await conversationIndex(store: store, snapshot: snapshot)?.conversation(containing: uid) {
            uids = found.uids
            subject = found.subject
        } else {
            notice = "This folder is being indexed on this node; its conversations show when that is done."
        }
        let messages = uids.compactMap { snapshot.message(uid: $0) }
        let pageSize = max(1, services.settings.pageSize)
        let pages = max(1, (messages.count + pageSize - 1) / pageSize)
        let pageNumber = min(max(1, Int(query.first("page") ?? "") ?? 1), pages)
        let start = min(messages.count, (pageNumber - 1) * pageSize)
        let slice = Array(messages[start..<min(messages.count, start + pageSize)])
        let rows = try await messageRows(slice, store: store, snapshot: snapshot)
        if subject.isEmpty { subject = (rows.first?["subject"] as? String) ?? "" }
        // Each message's text below the list, from its first bytes (a page holds up to 50).
        let limit = Self.maxConversationBodyBytes
        let views = try await services.blocking {
            try slice.map { message in try store.readMessagePrefix(message, in: folder, maxBytes: limit).map(MessageView.init) }
        }
        let texts: [[String: Any]] = zip(zip(slice, rows), views).compactMap { pair, view in
            guard let view else { return nil }
            let (message, row) = pair
            var entry = Self.body(of: view, partBase: Self.partLink(folder.name, uid: message.uid), showImages: false).data
            entry["from"] = row["from"] ?? ""
            entry["subject"] = row["subject"] ?? ""
            entry["date"] = view.envelope.date ?? (row["date"] as? String) ?? ""
            entry["href"] = Self.messageLink(folder.name, uid: message.uid)
            if message.size > limit { entry["shortened"] = true }
            return entry
        }
        let (nav, names) = try await folderList(store, current: folder)
        let base = Self.conversationLink(folder.name, uid: uid)
        var data: [String: Any] = [
            "folder": folder.name, "folders": nav, "messages": rows, "empty": rows.isEmpty,
            "heading": subject.isEmpty ? "(no subject)" : subject, "inConversation": true, "texts": texts,
            "back": Self.folderLink(folder.name) + "&view=conversations",
            "targets": names.filter { $0 != folder.name }.map { ["name": $0] },
            "reload": pageNumber > 1 ? base + "&page=\(pageNumber)" : base,
            "range": "\(start + 1)–\(start + slice.count) of \(messages.count) in this conversation",
        ]
        if pageNumber > 1 { data["newer"] = pageNumber == 2 ? base : base + "&page=\(pageNumber - 1)" }
        if pageNumber < pages { data["older"] = base + "&page=\(pageNumber + 1)" }
        if let notice { data["notice"] = notice }
        return page(title: subject.isEmpty ? "Conversation" : subject, template: "mailbox", data: data, auth: auth)
    }

    /// The UIDs of the conversations named in an action form (`conversation`: one UID of
    /// each), limited to the messages the page showed (`before`: the folder's UIDNEXT then),
    /// so mail that arrived since is not changed unseen.
    func conversationMembers(_ form: WebForm, store: MailStore, folder: MailFolderName) async throws -> [UInt32] {
        let named = form.all("conversation").compactMap(UInt32.init).filter { $0 > 0 }
        guard !named.isEmpty else { return [] }
        let before = form.first("before").flatMap(UInt32.init) ?? UInt32.max
        let snapshot = try await loadSnapshot(store, folder)
        guard let index = try await conversationIndex(store: store, snapshot: snapshot) else {
            throw WebError.badRequest("This folder is being indexed on this node; try again in a moment.")
        }
        var members: Set<UInt32> = []
        for uid in named {
            guard let conversation = index.conversation(containing: uid) else { continue }
            members.formUnion(conversation.uids.filter { $0 < before })
        }
        return members.sorted()
    }
}
