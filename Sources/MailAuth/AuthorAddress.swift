/// Author domains from RFC 5322 From fields, for DMARC (RFC 7489 §3.1, §6.6.1).
///
/// The parser walks the address list with quoted strings, nested comments, angle addresses
/// and groups in mind, so that an "@" in a display name (quoted, in a comment, or in an RFC
/// 2047 encoded word such as `=?utf-8?q?ceo=40bank.example?=`) is never taken for the
/// address. Only the addr-spec's domain counts.
enum AuthorAddress {
    static let maxFieldLength = 4096
    static let maxMailboxes = 32
    static let maxCommentDepth = 16

    enum Problem: Error, Equatable {
        case unparseable
        case noAddress
        case invalidDomain(String)
    }

    /// The lowercased domains of every mailbox in one From field value (unfolded).
    static func domains(in value: String) throws(Problem) -> [String] {
        guard value.utf8.count <= maxFieldLength else { throw .unparseable }
        var mailboxes: [(text: [UInt8], angle: [UInt8]?)] = []
        var current: [UInt8] = []
        var angle: [UInt8]?
        var inAngle = false
        var inQuote = false
        var commentDepth = 0
        var escaped = false

        func finishMailbox() {
            let trimmed = current.drop { $0 == 0x20 || $0 == 0x09 }
            if angle != nil || !trimmed.isEmpty { mailboxes.append((current, angle)) }
            current = []
            angle = nil
        }

        for byte in value.utf8 {
            if escaped {
                escaped = false
                if commentDepth == 0 {
                    if inAngle { angle?.append(byte) } else { current.append(byte) }
                }
                continue
            }
            if commentDepth > 0 {
                switch byte {
                case 0x5c: escaped = true
                case 0x28:
                    commentDepth += 1
                    guard commentDepth <= maxCommentDepth else { throw .unparseable }
                case 0x29: commentDepth -= 1
                default: break
                }
                continue
            }
            if inQuote {
                if byte == 0x5c { escaped = true }
                if byte == 0x22 { inQuote = false }
                if inAngle { angle?.append(byte) } else { current.append(byte) }
                continue
            }
            switch byte {
            case 0x22:
                inQuote = true
                if inAngle { angle?.append(byte) } else { current.append(byte) }
            case 0x28:
                commentDepth = 1
                // A comment separates words like white space does.
                if !inAngle { current.append(0x20) }
            case 0x3c where !inAngle:
                inAngle = true
                angle = []
            case 0x3e where inAngle:
                inAngle = false
            case 0x2c where !inAngle, 0x3b where !inAngle:
                finishMailbox()
                guard mailboxes.count <= maxMailboxes else { throw .unparseable }
            case 0x3a where !inAngle:
                // group = display-name ":" [group-list] ";": the name is not an address.
                current = []
            default:
                if inAngle { angle?.append(byte) } else { current.append(byte) }
            }
        }
        guard !inQuote, commentDepth == 0, !inAngle else { throw .unparseable }
        finishMailbox()
        guard !mailboxes.isEmpty else { throw .noAddress }

        var domains: [String] = []
        for mailbox in mailboxes.prefix(maxMailboxes) {
            var spec = mailbox.angle ?? mailbox.text
            // obs-route "<@relay1,@relay2:user@example.com>": the address follows the last ":".
            if mailbox.angle != nil, let colon = lastIndexOutsideQuotes(of: 0x3a, in: spec) { spec = Array(spec[(colon + 1)...]) }
            guard let at = lastIndexOutsideQuotes(of: 0x40, in: spec) else { throw .noAddress }
            let domainBytes = spec[(at + 1)...].filter { $0 != 0x20 && $0 != 0x09 }
            let text = String(decoding: domainBytes, as: UTF8.self)
            guard let domain = DomainName.normalized(text, minLabels: 1) else { throw .invalidDomain(String(text.prefix(80))) }
            domains.append(domain)
        }
        return domains
    }

    private static func lastIndexOutsideQuotes(of target: UInt8, in bytes: [UInt8]) -> Int? {
        var inQuote = false
        var escaped = false
        var found: Int?
        for (index, byte) in bytes.enumerated() {
            if escaped {
                escaped = false
                continue
            }
            if byte == 0x5c && inQuote {
                escaped = true
                continue
            }
            if byte == 0x22 { inQuote.toggle() }
            if !inQuote && byte == target { found = index }
        }
        return found
    }
}
