/// The lexical rules shared by the structured MIME fields (RFC 2045 §5.1 token and tspecials,
/// RFC 5322 §3.2 comments and quoted strings), over one unfolded field value. Tolerant: an
/// unterminated comment or quoted string runs to the end of the value.
struct MIMELexer {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { index >= bytes.count }

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// RFC 5322 §3.2.2 CFWS; returns the comments skipped, outermost parentheses removed.
    @discardableResult
    mutating func skipCFWS() -> [[UInt8]] {
        var comments: [[UInt8]] = []
        while index < bytes.count {
            let byte = bytes[index]
            if isWhiteSpace(byte) {
                index += 1
            } else if byte == 0x28 {
                comments.append(comment())
            } else {
                break
            }
        }
        return comments
    }

    /// A comment starting at "(": nested comments are kept in the text, quoted pairs unescaped.
    mutating func comment() -> [UInt8] {
        var text: [UInt8] = []
        var depth = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case 0x28:
                if depth > 0 { text.append(byte) }
                depth += 1
            case 0x29:
                depth -= 1
                if depth == 0 { return text }
                text.append(byte)
            case 0x5c where index < bytes.count:
                text.append(bytes[index])
                index += 1
            default:
                text.append(byte)
            }
        }
        return text
    }

    /// A quoted string starting at DQUOTE; the content with quoted pairs unescaped.
    mutating func quotedString() -> [UInt8] {
        var text: [UInt8] = []
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == 0x22 { return text }
            if byte == 0x5c && index < bytes.count {
                text.append(bytes[index])
                index += 1
            } else {
                text.append(byte)
            }
        }
        return text
    }

    /// RFC 2045 §5.1 token: any CHAR except SPACE, CTLs and tspecials (8-bit bytes tolerated).
    mutating func token() -> [UInt8] {
        let start = index
        while index < bytes.count && Self.isTokenByte(bytes[index]) { index += 1 }
        return Array(bytes[start..<index])
    }

    /// A parameter value: a quoted string, or (leniently, as Python reads it) everything up to
    /// ";", ",", white space or a comment, so unquoted values holding tspecials
    /// (`boundary=--=_x`, `type=text/html`) survive. Dovecot stops at the first tspecial.
    mutating func parameterValue() -> [UInt8] {
        if current == 0x22 { return quotedString() }
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x3b || byte == 0x2c || byte == 0x28 || byte == 0x22 || isWhiteSpace(byte) || byte < 0x20 || byte == 0x7f { break }
            index += 1
        }
        return Array(bytes[start..<index])
    }

    mutating func skip(to byte: UInt8) {
        while index < bytes.count && bytes[index] != byte {
            if bytes[index] == 0x22 {
                _ = quotedString()
            } else if bytes[index] == 0x28 {
                _ = comment()
            } else {
                index += 1
            }
        }
    }

    static func isTokenByte(_ byte: UInt8) -> Bool {
        if byte <= 0x20 || byte == 0x7f { return false }
        switch byte {
        case 0x28, 0x29, 0x3c, 0x3e, 0x40, 0x2c, 0x3b, 0x3a, 0x5c, 0x22, 0x2f, 0x5b, 0x5d, 0x3f, 0x3d: return false
        default: return true
        }
    }

    /// The first token of a value after CFWS (`7bit (comment)` → `7bit`).
    static func firstToken(_ value: [UInt8]) -> [UInt8] {
        var lexer = MIMELexer(value)
        lexer.skipCFWS()
        return lexer.token()
    }
}
