import MailMessage

/// ENVELOPE and BODYSTRUCTURE written in IMAP syntax (RFC 9051 §9), the way Dovecot writes
/// them but with every string quoted, so fixtures can hold hand-written expectations. The
/// IMAP module has its own encoder; this one exists only to compare text.
enum IMAPRendering {
    static func string(_ bytes: [UInt8]?) -> String {
        guard let bytes else { return "NIL" }
        var text = "\""
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            if scalar == "\"" || scalar == "\\" { text += "\\" }
            text.unicodeScalars.append(scalar)
        }
        return text + "\""
    }

    static func string(_ text: String) -> String { string(Array(text.utf8)) }

    static func addresses(_ list: [EnvelopeAddress]) -> String {
        guard !list.isEmpty else { return "NIL" }
        return "(" + list.map { "(\(string($0.name)) \(string($0.adl)) \(string($0.mailbox)) \(string($0.host)))" }.joined() + ")"
    }

    static func envelope(_ envelope: Envelope) -> String {
        let items = [
            string(envelope.date), string(envelope.subject), addresses(envelope.from), addresses(envelope.sender),
            addresses(envelope.replyTo), addresses(envelope.to), addresses(envelope.cc), addresses(envelope.bcc),
            string(envelope.inReplyTo), string(envelope.messageID),
        ]
        return "(" + items.joined(separator: " ") + ")"
    }

    static func parameters(_ parameters: [MIMEParameter]) -> String {
        guard !parameters.isEmpty else { return "NIL" }
        return "(" + parameters.map { "\(string($0.name)) \(string($0.value))" }.joined(separator: " ") + ")"
    }

    static func extensionData(_ data: BodyExtension) -> String {
        let disposition = data.disposition.map { "(\(string($0.kind)) \(parameters($0.parameters)))" } ?? "NIL"
        let language = data.language.isEmpty ? "NIL" : "(" + data.language.map(string).joined(separator: " ") + ")"
        return "\(disposition) \(language) \(string(data.location))"
    }

    static func body(_ body: BodyStructure) -> String {
        switch body {
        case .multipart(let multipart):
            return "(" + multipart.parts.map(self.body).joined() + " \(string(multipart.subtype)) \(parameters(multipart.parameters)) \(extensionData(multipart.extensionData)))"
        case .singlePart(let part):
            var items = [
                string(part.type), string(part.subtype), parameters(part.fields.parameters), string(part.fields.id),
                string(part.fields.description), string(part.fields.encoding), String(part.fields.octets),
            ]
            switch part.kind {
            case .basic: break
            case .text(let lines): items.append(String(lines))
            case .message(let envelope, let inner, let lines): items += [self.envelope(envelope), self.body(inner), String(lines)]
            }
            items += [string(part.md5), extensionData(part.extensionData)]
            return "(" + items.joined(separator: " ") + ")"
        }
    }
}
