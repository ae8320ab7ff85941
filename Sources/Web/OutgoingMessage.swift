import Foundation
import MailMessage

/// A message composed in the browser, written out as RFC 5322 / MIME: UTF-8 text in
/// quoted-printable, attachments in base64, non-ASCII header text as RFC 2047 encoded words.
/// Everything typed by the user that reaches a header has CR and LF removed first (no header
/// injection); addresses are checked one by one.
public struct OutgoingMessage: Sendable {
    public struct Attachment: Sendable, Equatable {
        public var filename: String
        public var contentType: String
        public var data: [UInt8]

        public init(filename: String, contentType: String, data: [UInt8]) {
            self.filename = filename
            self.contentType = contentType
            self.data = data
        }
    }

    public var from: String
    public var to: [String]
    public var cc: [String]
    public var bcc: [String]
    public var subject: String
    public var text: String
    public var inReplyTo: String?
    public var references: String?
    public var attachments: [Attachment]
    /// A whole message attached as message/rfc822 (forward).
    public var forwarded: [UInt8]?

    public init(
        from: String, to: [String], cc: [String] = [], bcc: [String] = [], subject: String, text: String,
        inReplyTo: String? = nil, references: String? = nil, attachments: [Attachment] = [], forwarded: [UInt8]? = nil
    ) {
        self.from = from
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.subject = subject
        self.text = text
        self.inReplyTo = inReplyTo
        self.references = references
        self.attachments = attachments
        self.forwarded = forwarded
    }

    /// Every envelope recipient (To, Cc and Bcc), each once.
    public var recipients: [String] {
        var seen: Set<String> = []
        return (to + cc + bcc).filter { seen.insert($0.lowercased()).inserted }
    }

    /// The message bytes. `messageID` without angle brackets. `includeBcc`: a draft keeps its
    /// Bcc recipients in a Bcc field; a message being sent never does.
    public func render(date: Date, messageID: String, boundarySeed: String, includeBcc: Bool = false) -> [UInt8] {
        var header = ""
        header += "Date: \(RFC5322Date.string(date))\r\n"
        header += "From: <\(from)>\r\n"
        if !to.isEmpty { header += "To: " + to.map { "<\($0)>" }.joined(separator: ",\r\n ") + "\r\n" }
        if !cc.isEmpty { header += "Cc: " + cc.map { "<\($0)>" }.joined(separator: ",\r\n ") + "\r\n" }
        if includeBcc, !bcc.isEmpty { header += "Bcc: " + bcc.map { "<\($0)>" }.joined(separator: ",\r\n ") + "\r\n" }
        header += "Subject: \(HeaderText.encode(subject))\r\n"
        header += "Message-ID: <\(messageID)>\r\n"
        if let inReplyTo = inReplyTo.map(HeaderText.singleLine), !inReplyTo.isEmpty { header += "In-Reply-To: \(inReplyTo)\r\n" }
        if let references = references.map(HeaderText.singleLine), !references.isEmpty { header += "References: \(references)\r\n" }
        header += "MIME-Version: 1.0\r\n"
        header += "User-Agent: Service Package web-mail\r\n"
        let textPart = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            + QuotedPrintable.encode(Array(text.utf8))
        guard !attachments.isEmpty || forwarded != nil else {
            return Array((header + textPart + "\r\n").utf8)
        }
        let boundary = "=_svcpkg_\(boundarySeed)"
        var body = "Content-Type: multipart/mixed; boundary=\"\(boundary)\"\r\n\r\nThis is a multi-part message in MIME format.\r\n"
        body += "--\(boundary)\r\n" + textPart + "\r\n"
        var bytes = Array((header + body).utf8)
        for attachment in attachments {
            let type = MediaTypeText.isValid(attachment.contentType) ? attachment.contentType.lowercased() : "application/octet-stream"
            var part = "--\(boundary)\r\nContent-Type: \(type)\r\nContent-Transfer-Encoding: base64\r\n"
            part += "Content-Disposition: attachment; \(HeaderText.filenameParameter(attachment.filename))\r\n\r\n"
            bytes += Array(part.utf8)
            bytes += Array(Self.base64Lines(attachment.data).utf8)
        }
        if let forwarded {
            bytes += Array("--\(boundary)\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"forwarded.eml\"\r\n\r\n".utf8)
            bytes += forwarded
            if forwarded.last != 0x0a { bytes += [0x0d, 0x0a] }
        }
        bytes += Array("--\(boundary)--\r\n".utf8)
        return bytes
    }

    static func base64Lines(_ data: [UInt8]) -> String {
        let encoded = Data(data).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return encoded.isEmpty ? "" : encoded + "\r\n"
    }
}

/// Addresses typed into To/Cc/Bcc: `a@b, Name <c@d>; e@f`.
public enum AddressInput {
    public static let maxRecipients = 100

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case invalid(String)
        case tooMany

        public var description: String {
            switch self {
            case .invalid(let text): "“\(text)” is not an e-mail address"
            case .tooMany: "more than \(AddressInput.maxRecipients) recipients"
            }
        }
    }

    public static func parse(_ text: String) throws(Problem) -> [String] {
        var result: [String] = []
        for piece in text.split(whereSeparator: { $0 == "," || $0 == ";" || $0 == "\n" || $0 == "\r" }) {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            var address = trimmed
            if let open = trimmed.lastIndex(of: "<"), let close = trimmed.lastIndex(of: ">"), open < close {
                address = String(trimmed[trimmed.index(after: open)..<close]).trimmingCharacters(in: .whitespaces)
            }
            guard isValid(address) else { throw .invalid(trimmed) }
            result.append(address)
        }
        guard result.count <= maxRecipients else { throw .tooMany }
        return result
    }

    /// `local@domain` with printable characters and no space, quote or bracket (what the queue
    /// and the SMTP client accept without quoting).
    public static func isValid(_ address: String) -> Bool {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, address.utf8.count <= 254 else { return false }
        let forbidden: Set<UInt8> = [0x20, 0x22, 0x28, 0x29, 0x2c, 0x3a, 0x3b, 0x3c, 0x3e, 0x5b, 0x5c, 0x5d]
        guard address.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7f && !forbidden.contains($0) }) else { return false }
        return parts[1].contains(".") || parts[1] == "localhost"
    }
}

enum HeaderText {
    /// One line of printable text: control characters (CR, LF) become spaces.
    static func singleLine(_ text: String) -> String {
        let unfolded = text.replacingOccurrences(of: "\r\n", with: " ")
        return String(String.UnicodeScalarView(unfolded.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
            .trimmingCharacters(in: .whitespaces)
    }

    /// RFC 2047 B-encoded words for non-ASCII text, folded; ASCII text as it is.
    static func encode(_ text: String) -> String {
        let line = singleLine(text)
        guard !line.utf8.allSatisfy({ $0 < 0x80 }) || line.contains("=?") else { return line }
        // Words of at most 45 bytes of UTF-8 (60 base64 characters), split between characters.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in line {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45 {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words.joined(separator: "\r\n ")
    }

    /// `filename="name"` for ASCII names, else RFC 2231 `filename*=utf-8''%..`.
    static func filenameParameter(_ name: String) -> String {
        let clean = singleLine(name).replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "\\", with: "_")
        let safe = clean.isEmpty ? "attachment" : String(clean.prefix(200))
        if safe.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f && $0 != 0x22 }) { return "filename=\"\(safe)\"" }
        return "filename*=utf-8''" + (safe.addingPercentEncoding(withAllowedCharacters: URLQuery.unreserved) ?? "attachment")
    }
}

/// `type/subtype` with token characters only (RFC 2045 §5.1), no parameters.
enum MediaTypeText {
    static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let tspecials: Set<UInt8> = Array("()<>@,;:\\\"/[]?= ".utf8).reduce(into: []) { $0.insert($1) }
        return parts.count == 2 && text.utf8.count <= 127
            && parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && !tspecials.contains($0) } }
    }
}

/// RFC 2045 §6.7 quoted-printable with CRLF line breaks and soft breaks before 76 characters.
enum QuotedPrintable {
    static func encode(_ bytes: [UInt8]) -> String {
        var output = ""
        var line = ""
        let hex = Array("0123456789ABCDEF")
        func flush(hard: Bool) {
            // RFC 2045 rule 3: a space or tab at the end of a line is encoded.
            if hard, let last = line.last, last == " " || last == "\t" {
                line.removeLast()
                line += last == " " ? "=20" : "=09"
            }
            output += line + (hard ? "\r\n" : "=\r\n")
            line = ""
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0d, index + 1 < bytes.count, bytes[index + 1] == 0x0a {
                flush(hard: true)
                index += 2
                continue
            }
            if byte == 0x0a {
                flush(hard: true)
                index += 1
                continue
            }
            let piece: String
            if (byte >= 0x21 && byte <= 0x7e && byte != 0x3d) || byte == 0x20 || byte == 0x09 {
                piece = String(UnicodeScalar(byte))
            } else {
                piece = "=" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 0x0f)])
            }
            if line.count + piece.count > 75 { flush(hard: false) }
            line += piece
            index += 1
        }
        if !line.isEmpty { flush(hard: true) }
        // A body starting with "From " or a lone "." line is harmless in QP for SMTP (the
        // queue's SMTP client dot-stuffs), so nothing more is needed.
        return output
    }
}
