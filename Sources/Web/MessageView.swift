import Foundation
import MailMessage

/// A stored message as the reading page shows it: decoded header, the part to display
/// (HTML preferred in multipart/alternative), the attachments, and the inline images that
/// `cid:` URLs in the HTML point to.
public struct MessageView: Sendable {
    public struct Part: Sendable, Equatable {
        /// IMAP part number, e.g. `2.1`.
        public var path: [Int]
        public var filename: String?
        public var mediaType: String
        public var size: Int

        public var pathText: String { path.map(String.init).joined(separator: ".") }
    }

    public enum Body: Sendable, Equatable {
        case text(String)
        case html(String)
        case none
    }

    public let envelope: DecodedEnvelope
    public let body: Body
    public let attachments: [Part]
    /// Content-ID (without brackets) → part, for `cid:` images.
    public let contentIDs: [String: [Int]]
    public let structure: MessageStructure
    public let raw: [UInt8]

    public init(_ message: [UInt8]) {
        raw = message
        structure = MessageStructure.parse(message)
        envelope = Envelope(fields: structure.root.fields).decoded
        var chosen: (path: [Int], part: MessagePart)?
        var leaves: [(path: [Int], part: MessagePart, inAlternative: Bool)] = []
        Self.walk(structure.root, path: [], isRoot: true, inAlternative: false, chosen: &chosen, leaves: &leaves)
        var cids: [String: [Int]] = [:]
        var parts: [Part] = []
        for leaf in leaves where leaf.path != chosen?.path {
            if let id = leaf.part.contentID {
                let text = String(decoding: id, as: UTF8.self).trimmingCharacters(in: .whitespaces)
                cids[String(text.trimmingCharacters(in: CharacterSet(charactersIn: "<>")))] = leaf.path
            }
            // The other forms of the chosen text are not attachments.
            let isText = leaf.part.contentType.isText && leaf.part.filename == nil
            if leaf.inAlternative && isText { continue }
            if isText && leaf.part.disposition?.isAttachment != true && chosen == nil { continue }
            parts.append(Part(path: leaf.path, filename: leaf.part.filename, mediaType: leaf.part.contentType.mediaType, size: leaf.part.bodyRange.count))
        }
        attachments = parts
        contentIDs = cids
        if let chosen {
            let text = structure.decodedText(of: chosen.part, in: message) ?? ""
            body = chosen.part.contentType.mediaType == "text/html" ? .html(text) : .text(text)
        } else {
            body = .none
        }
    }

    /// Depth-first over the MIME tree: collects the leaves and picks the first displayable
    /// text part (in multipart/alternative the richest form we show: HTML, else plain).
    private static func walk(
        _ part: MessagePart, path: [Int], isRoot: Bool, inAlternative: Bool, chosen: inout (path: [Int], part: MessagePart)?,
        leaves: inout [(path: [Int], part: MessagePart, inAlternative: Bool)]
    ) {
        switch part.content {
        case .multipart(let children):
            let alternative = part.contentType.mediaType == "multipart/alternative"
            if alternative, chosen == nil {
                let indexed = children.enumerated().map { (path + [$0.offset + 1], $0.element) }
                let pick = indexed.last { $0.1.contentType.mediaType == "text/html" }
                    ?? indexed.last { $0.1.contentType.mediaType == "text/plain" }
                if let pick, pick.1.disposition?.isAttachment != true { chosen = (pick.0, pick.1) }
            }
            for (offset, child) in children.enumerated() {
                walk(child, path: path + [offset + 1], isRoot: false, inAlternative: inAlternative || alternative, chosen: &chosen, leaves: &leaves)
            }
        case .single, .message:
            let leafPath = isRoot ? [1] : path
            let type = part.contentType.mediaType
            if chosen == nil, type == "text/plain" || type == "text/html", part.disposition?.isAttachment != true, part.filename == nil {
                chosen = (leafPath, part)
            }
            leaves.append((leafPath, part, inAlternative))
        }
    }

    /// The decoded content of a part (transfer encoding undone); nil when there is no such part.
    public func content(of path: [Int]) -> (part: MessagePart, data: [UInt8])? {
        guard let part = try? structure.part(at: path), let data = try? structure.binary(of: raw, path: path) else { return nil }
        return (part, data)
    }

    /// The message's text for quoting in a reply or forward: the plain text, or the HTML's text.
    public var quotableText: String {
        switch body {
        case .text(let text): return text
        case .html: return structure.searchableBodyText(of: raw)
        case .none: return ""
        }
    }

    // MARK: - Reply and forward

    public static func addresses(_ entries: [AddressListEntry]) -> [String] {
        entries.flatMap { entry -> [String] in
            switch entry {
            case .mailbox(let mailbox): [mailbox.address]
            case .group(_, let members): members.map(\.address)
            }
        }.filter { AddressInput.isValid($0) }
    }

    public static func display(_ entries: [AddressListEntry]) -> String {
        entries.map { entry -> String in
            switch entry {
            case .mailbox(let mailbox):
                if let name = mailbox.displayName, !name.isEmpty { return "\(name) <\(mailbox.address)>" }
                return mailbox.address
            case .group(let name, let members): return "\(name): " + members.map(\.address).joined(separator: ", ") + ";"
            }
        }.joined(separator: ", ")
    }

    public enum ComposeMode: String, Sendable {
        case reply, replyAll = "replyall", forward
    }

    /// The form a reply, reply-all or forward starts with. `own`: the user's addresses, left
    /// out of reply-all.
    public func draft(_ mode: ComposeMode, own: [String]) -> Draft {
        let subject = envelope.subject ?? ""
        let quotedLines = quotableText.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let trimmed = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            return trimmed.hasPrefix(">") ? ">" + trimmed : "> " + trimmed
        }
        let from = Self.display(envelope.from)
        switch mode {
        case .forward:
            var intro = "\n\n---------- Forwarded message ----------\n"
            intro += "From: \(from)\nDate: \(envelope.date ?? "")\nSubject: \(subject)\n"
            intro += "To: \(Self.display(envelope.to))\n\n"
            return Draft(to: "", cc: "", subject: Self.prefixed("Fwd:", subject), text: intro + quotableText, inReplyTo: nil, references: nil)
        case .reply, .replyAll:
            let replyTo = Self.addresses(envelope.replyTo.isEmpty ? envelope.from : envelope.replyTo)
            var cc: [String] = []
            if mode == .replyAll {
                let mine = Set(own.map { $0.lowercased() } + replyTo.map { $0.lowercased() })
                var seen = mine
                cc = Self.addresses(envelope.to + envelope.cc).filter { seen.insert($0.lowercased()).inserted }
            }
            let messageID = envelope.messageID?.trimmingCharacters(in: .whitespaces)
            let earlier = structure.root.fields.first("References").map { HeaderText.singleLine(String(decoding: $0, as: UTF8.self)) }
            let references = [earlier, messageID].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
            let text = "\n\nOn \(envelope.date ?? "an unknown date"), \(from) wrote:\n" + quotedLines.joined(separator: "\n")
            return Draft(
                to: replyTo.joined(separator: ", "), cc: cc.joined(separator: ", "), subject: Self.prefixed("Re:", subject), text: text,
                inReplyTo: messageID, references: references.isEmpty ? nil : references)
        }
    }

    static func prefixed(_ prefix: String, _ subject: String) -> String {
        subject.lowercased().hasPrefix(prefix.lowercased()) ? subject : "\(prefix) \(subject)"
    }

    public struct Draft: Sendable, Equatable {
        public var to: String
        public var cc: String
        public var subject: String
        public var text: String
        public var inReplyTo: String?
        public var references: String?
    }
}
