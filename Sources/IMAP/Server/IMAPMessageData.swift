import Foundation
import MailMessage

/// FETCH data computed from a stored message's bytes: ENVELOPE, BODY/BODYSTRUCTURE,
/// BODY[section] and BINARY (RFC 9051 §6.4.5, RFC 3516), from the MailMessage parser.
struct IMAPMessageData {
    let bytes: [UInt8]
    private(set) lazy var structure: MessageStructure = MessageStructure.parse(bytes)
    /// ENVELOPE and BODYSTRUCTURE: from the summary cache, or computed here when first asked.
    private(set) var summary: ParsedSummary

    init(bytes: [UInt8], summary: ParsedSummary = ParsedSummary()) {
        self.bytes = bytes
        self.summary = summary
    }

    /// Only what the cache had: for ENVELOPE and BODYSTRUCTURE without the file.
    init(summary: ParsedSummary) {
        self.init(bytes: [], summary: summary)
    }

    mutating func envelope() -> IMAPEnvelope {
        // The header alone is enough (and `bytes` may be only the start of the message).
        let envelope = summary.envelope ?? Envelope(message: bytes)
        summary.envelope = envelope
        return Self.convert(envelope)
    }

    mutating func bodyStructure(extended: Bool) -> IMAPBodyStructure {
        let body = summary.bodyStructure ?? structure.bodyStructure
        summary.bodyStructure = body
        return Self.convert(body, extended: extended)
    }

    enum SectionFailure: Error {
        case unknownTransferEncoding
    }

    /// BODY[section]<partial>: nil (NIL) for a part the message does not have, as Dovecot does.
    mutating func section(_ section: IMAPSection, partial: IMAPPartial?) -> [UInt8]? {
        let path = section.part.map { Int($0) }
        let text: SectionText
        switch section.text {
        case nil: text = .full
        case .header: text = .header
        case .headerFields(let names): text = .headerFields(names)
        case .headerFieldsNot(let names): text = .headerFieldsNot(names)
        case .text: text = .text
        case .mime: text = .mime
        }
        let content: SectionContent
        do throws(SectionError) {
            content = try structure.section(of: bytes, path: path, part: text)
        } catch {
            return path.isEmpty ? [] : nil
        }
        let data = content.bytesWithCRLF(of: bytes)
        return Self.apply(partial, to: data)
    }

    /// BINARY[part]<partial>: the decoded part; throws for an unknown transfer encoding.
    mutating func binary(part: [UInt32], partial: IMAPPartial?) throws(SectionFailure) -> [UInt8]? {
        do throws(SectionError) {
            let decoded = try structure.binary(of: bytes, path: part.map { Int($0) })
            return Self.apply(partial, to: decoded)
        } catch {
            if case .unknownTransferEncoding = error { throw .unknownTransferEncoding }
            return nil
        }
    }

    static func apply(_ partial: IMAPPartial?, to data: [UInt8]) -> [UInt8] {
        guard let partial else { return data }
        let start = Int(min(UInt64(data.count), partial.offset))
        let end = Int(min(UInt64(data.count), partial.offset &+ partial.length))
        return Array(data[start..<max(start, end)])
    }

    // MARK: - MailMessage types to IMAP types

    static func convert(_ envelope: Envelope) -> IMAPEnvelope {
        IMAPEnvelope(
            date: envelope.date, subject: envelope.subject, from: envelope.from.map(convert), sender: envelope.sender.map(convert),
            replyTo: envelope.replyTo.map(convert), to: envelope.to.map(convert), cc: envelope.cc.map(convert),
            bcc: envelope.bcc.map(convert), inReplyTo: envelope.inReplyTo, messageID: envelope.messageID)
    }

    static func convert(_ address: EnvelopeAddress) -> IMAPAddress {
        IMAPAddress(name: address.name, adl: address.adl, mailbox: address.mailbox, host: address.host)
    }

    static func convert(_ parameters: [MIMEParameter]) -> [IMAPBodyParameter] {
        parameters.map { IMAPBodyParameter($0.name, $0.value) }
    }

    static func convert(_ data: BodyExtension) -> IMAPBodyExtension {
        IMAPBodyExtension(
            disposition: data.disposition.map { IMAPBodyDisposition($0.kind, parameters: convert($0.parameters)) },
            language: data.language, location: data.location)
    }

    static func convert(_ body: BodyStructure, extended: Bool) -> IMAPBodyStructure {
        switch body {
        case .multipart(let multipart):
            return .multipart(
                IMAPMultipartBody(
                    parts: multipart.parts.map { convert($0, extended: extended) }, subtype: multipart.subtype,
                    parameters: extended ? convert(multipart.parameters) : [],
                    extensionData: extended ? convert(multipart.extensionData) : nil))
        case .singlePart(let part):
            let kind: IMAPSinglePartBody.Kind
            switch part.kind {
            case .basic: kind = .basic
            case .text(let lines): kind = .text(lines: UInt64(max(0, lines)))
            case .message(let envelope, let inner, let lines):
                kind = .message(envelope: convert(envelope), body: convert(inner, extended: extended), lines: UInt64(max(0, lines)))
            }
            let fields = IMAPBodyFields(
                parameters: convert(part.fields.parameters), id: part.fields.id, description: part.fields.description,
                encoding: part.fields.encoding, octets: UInt32(clamping: part.fields.octets))
            return .singlePart(
                IMAPSinglePartBody(
                    type: part.type, subtype: part.subtype, fields: fields, kind: kind, md5: extended ? part.md5 : nil,
                    extensionData: extended ? convert(part.extensionData) : nil))
        }
    }
}
