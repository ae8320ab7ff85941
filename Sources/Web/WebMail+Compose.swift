import Foundation
import HTTPTypes
import Hummingbird
import MailMessage
import NIOCore
import SharedTree

/// Compose, reply, forward, drafts, sending, and the settings page.
extension WebMail {
    // MARK: Compose and send

    func compose(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let auth = try await authenticate(request)
        let query = Self.query(request)
        let identities = await services.identities(of: auth.session.user)
        let store = auth.store
        let signature = try await services.blocking { try UserSignature.read(store) }
        // The signature goes under the user's text: before the quote of a reply or forward.
        let signed = signature.isEmpty ? "" : "\n\n-- \n" + signature
        var data: [String: Any] = ["heading": "New message", "to": query.first("to") ?? "", "text": signed]
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
            data["text"] = signed + draft.text
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

    // MARK: Settings

    func settingsPage(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let auth = try await authenticate(request)
        let store = auth.store
        let signature = try await services.blocking { try UserSignature.read(store) }
        var data: [String: Any] = [
            "signature": signature, "identities": await services.identities(of: auth.session.user).map { ["address": $0] },
            "maxSignature": UserSignature.maxBytes,
        ]
        if Self.query(request).first("saved") == "1" { data["notice"] = "Saved." }
        return page(title: "Settings", template: "settings", data: data, auth: auth)
    }

    func saveSettings(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let form = try await Self.readForm(request, limit: Self.maxSmallFormBytes)
        let auth = try await authenticate(request, form: form)
        let signature = (form.first("signature") ?? "").replacingOccurrences(of: "\r\n", with: "\n")
        guard signature.utf8.count <= UserSignature.maxBytes else {
            throw WebError.badRequest("The signature is longer than \(UserSignature.maxBytes) bytes.")
        }
        let store = auth.store
        try await services.blocking { try UserSignature.write(signature, to: store) }
        return Self.redirect("/settings?saved=1")
    }
}
