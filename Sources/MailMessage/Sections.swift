/// The text after the part numbers of a BODY[section] (RFC 9051 §6.4.5, RFC 3501 §6.4.5).
public enum SectionText: Sendable, Hashable {
    /// No specifier: the whole message, or the body of the part.
    case full
    case header
    case headerFields([String])
    case headerFieldsNot([String])
    case mime
    case text
}

public enum SectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The part numbers name no part of this message (Dovecot sends an empty string then).
    case noSuchPart([Int])
    /// HEADER, HEADER.FIELDS and TEXT after part numbers need a message/rfc822 part.
    case notAMessage([Int])
    /// MIME needs part numbers.
    case mimeWithoutPart
    /// BINARY of a part whose Content-Transfer-Encoding is not known (RFC 3516 §4.3: the
    /// server answers `NO [UNKNOWN-CTE]`).
    case unknownTransferEncoding(path: [Int], encoding: String)

    public var description: String {
        let name = { (path: [Int]) in path.map(String.init).joined(separator: ".") }
        switch self {
        case .noSuchPart(let path): return "the message has no part \(name(path))"
        case .notAMessage(let path): return "part \(name(path)) is not a message/rfc822 part"
        case .mimeWithoutPart: return "MIME needs a part number"
        case .unknownTransferEncoding(let path, let encoding): return "part \(name(path)) has the unknown encoding \(encoding)"
        }
    }
}

/// A section of the stored message: one range of its bytes, or bytes put together (the lines of
/// HEADER.FIELDS are not contiguous).
public enum SectionContent: Sendable, Hashable {
    case range(Range<Int>)
    case bytes([UInt8])

    public var count: Int {
        switch self {
        case .range(let range): range.count
        case .bytes(let bytes): bytes.count
        }
    }

    public func bytes(of message: [UInt8]) -> [UInt8] {
        switch self {
        case .range(let range): Array(message[range.clamped(to: 0..<message.count)])
        case .bytes(let bytes): bytes
        }
    }

    /// The bytes with every bare LF sent as CRLF, as IMAP sends the message (the sizes in
    /// BODYSTRUCTURE count line breaks that way). Apply `partial` to `.bytes(...)` of this.
    public func bytesWithCRLF(of message: [UInt8]) -> [UInt8] {
        let raw = bytes(of: message)
        var result: [UInt8] = []
        result.reserveCapacity(raw.count + raw.count / 32)
        var previous: UInt8 = 0
        for byte in raw {
            if byte == 0x0a && previous != 0x0d { result.append(0x0d) }
            result.append(byte)
            previous = byte
        }
        return result
    }

    /// `<origin.length>` (RFC 9051 §6.4.5): the octets from `origin` on, at most `length` of
    /// them; empty when `origin` is past the end.
    public func partial(origin: Int, length: Int?) -> SectionContent {
        let origin = max(0, origin)
        let available = max(0, count - origin)
        let taken = min(available, max(0, length ?? available))
        switch self {
        case .range(let range):
            let start = min(range.upperBound, range.lowerBound + origin)
            return .range(start..<(start + taken))
        case .bytes(let bytes):
            let start = min(bytes.count, origin)
            return .bytes(Array(bytes[start..<(start + taken)]))
        }
    }
}

extension MessageStructure {
    /// The part named by IMAP part numbers (`[2, 1]` is part 2.1). RFC 9051 §6.4.5: part 1
    /// of a non-multipart message is its body; the numbers after a message/rfc822 part
    /// address the parts of the message inside it, where again part 1 of a non-multipart
    /// message is its body. An empty path is the message itself.
    public func part(at path: [Int]) throws(SectionError) -> MessagePart {
        var current = root
        for (position, number) in path.enumerated() {
            let container: MessagePart
            if position == 0 {
                container = root
            } else if case .message(let inner) = current.content {
                container = inner
            } else if case .multipart = current.content {
                container = current
            } else {
                throw .noSuchPart(path)
            }
            switch container.content {
            case .multipart(let children):
                guard number >= 1, number <= children.count else { throw .noSuchPart(path) }
                current = children[number - 1]
            case .single, .message:
                guard number == 1 else { throw .noSuchPart(path) }
                current = container
            }
        }
        return current
    }

    /// BODY[section]: the bytes of `path` and `text` in the stored message.
    public func section(of message: [UInt8], path: [Int], part text: SectionText) throws(SectionError) -> SectionContent {
        guard !path.isEmpty else {
            switch text {
            case .full: return .range(0..<messageSize)
            case .mime: throw .mimeWithoutPart
            case .header, .headerFields, .headerFieldsNot, .text: return Self.headerOrText(root, text, in: message)
            }
        }
        let target = try part(at: path)
        switch text {
        case .full:
            return .range(target.bodyRange)
        case .mime:
            // The part's own header; for part 1 of a non-multipart message, the message header.
            return .range(target.headerRange)
        case .header, .headerFields, .headerFieldsNot, .text:
            guard case .message(let inner) = target.content else { throw .notAMessage(path) }
            return Self.headerOrText(inner, text, in: message)
        }
    }

    /// BINARY[section] (RFC 3516 §4.2): the body of the part with its Content-Transfer-Encoding
    /// undone. An empty path is the whole message, sent as it is.
    public func binary(of message: [UInt8], path: [Int]) throws(SectionError) -> [UInt8] {
        guard !path.isEmpty else { return message }
        let target = try part(at: path)
        let body = message[target.bodyRange.clamped(to: 0..<message.count)]
        let encoding = target.transferEncoding
        guard let decoded = encoding.decode(body) else {
            let token = MIMELexer.firstToken(target.fields.first("Content-Transfer-Encoding") ?? [])
            throw .unknownTransferEncoding(path: path, encoding: String(decoding: token, as: UTF8.self))
        }
        return decoded
    }

    /// The decoded content of a part for web-mail: transfer encoding undone, text converted
    /// from its charset (unknown charsets and bytes invalid in theirs read as UTF-8 or
    /// Windows-1252). nil for an unknown transfer encoding.
    public func decodedText(of part: MessagePart, in message: [UInt8]) -> String? {
        guard let decoded = part.transferEncoding.decode(message[part.bodyRange.clamped(to: 0..<message.count)]) else { return nil }
        let charset = part.contentType.decodedParameter("charset") ?? "us-ascii"
        return Charset.decode(decoded, charset: charset) ?? lenientString(decoded)
    }

    private static func headerOrText(_ part: MessagePart, _ text: SectionText, in message: [UInt8]) -> SectionContent {
        switch text {
        case .text: return .range(part.bodyRange)
        case .headerFields(let names): return .bytes(headerLines(part, in: message) { field in names.contains { field.hasName($0) } })
        case .headerFieldsNot(let names): return .bytes(headerLines(part, in: message) { field in !names.contains { field.hasName($0) } })
        default: return .range(part.headerRange)
        }
    }

    /// The lines of the matching fields as they are in the message, then the blank line that
    /// ends the header (RFC 9051 §6.4.5: "the blank line is included in all header fetches,
    /// except in the case of a message which has no body and no blank line").
    private static func headerLines(_ part: MessagePart, in message: [UInt8], _ include: (RawHeaderField) -> Bool) -> [UInt8] {
        var result: [UInt8] = []
        let available = 0..<message.count
        for field in part.fields where include(field) {
            result.append(contentsOf: message[field.range.clamped(to: available)])
            if let last = result.last, last != 0x0a { result.append(contentsOf: [0x0d, 0x0a]) }
        }
        if !part.defects.contains(.unterminatedHeader) {
            let header = part.headerRange.clamped(to: available)
            // The blank line: CRLF or LF as in the message.
            let crlf = header.count >= 2 && message[header.upperBound - 2] == 0x0d
            result.append(contentsOf: crlf ? [0x0d, 0x0a] : [0x0a])
        }
        return result
    }
}

extension MessageStructure {
    /// Parses `message` and returns BODY[section] as bytes.
    public static func section(of message: [UInt8], path: [Int], part text: SectionText, limits: MIMELimits = MIMELimits()) throws(SectionError) -> [UInt8] {
        try parse(message, limits: limits).section(of: message, path: path, part: text).bytes(of: message)
    }
}
