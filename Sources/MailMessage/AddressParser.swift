/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"` (RFC 9051 §7.5.2),
/// as raw bytes. Groups (RFC 5322 §3.4) become a start marker (host nil, mailbox = group name)
/// and an end marker (mailbox and host nil).
public struct EnvelopeAddress: Sendable, Hashable {
    /// The display name: the phrase with quotes removed and quoted pairs unescaped, encoded
    /// words left as written; or, without a phrase, the comment after the address.
    public var name: [UInt8]?
    /// The obsolete source route (`@a,@b`), without the final colon.
    public var adl: [UInt8]?
    public var mailbox: [UInt8]?
    public var host: [UInt8]?

    public init(name: [UInt8]? = nil, adl: [UInt8]? = nil, mailbox: [UInt8]?, host: [UInt8]?) {
        self.name = name
        self.adl = adl
        self.mailbox = mailbox
        self.host = host
    }

    public static func groupStart(_ name: [UInt8]) -> EnvelopeAddress { EnvelopeAddress(mailbox: name, host: nil) }
    public static let groupEnd = EnvelopeAddress(mailbox: nil, host: nil)

    /// What Dovecot sends for a missing local part or domain: IMAP has no way to say "none"
    /// here, since a nil host means a group marker.
    public static let missingMailbox = Array("MISSING_MAILBOX".utf8)
    public static let missingDomain = Array("MISSING_DOMAIN".utf8)

    public var isGroupStart: Bool { host == nil && mailbox != nil }
    public var isGroupEnd: Bool { host == nil && mailbox == nil }
}

/// RFC 5322 §3.4 address lists, with the obsolete forms of §4.4 (routes, CFWS around dots,
/// null list elements) and the usual breakage (missing domain, unbalanced brackets, junk).
enum AddressParser {
    private enum Kind: Equatable {
        case word, quoted, domainLiteral
        case special(UInt8)
    }

    private struct Token {
        var kind: Kind
        var text: [UInt8]
        var spaceBefore: Bool
    }

    static let maxAddresses = 10_000

    static func parse(_ value: [UInt8]) -> [EnvelopeAddress] {
        let (tokens, comments) = lex(value)
        var result: [EnvelopeAddress] = []
        var index = 0
        var inGroup = false
        var nextComment = 0
        while index < tokens.count && result.count < maxAddresses {
            let token = tokens[index]
            if token.kind == .special(0x2c) {
                index += 1
                continue
            }
            if token.kind == .special(0x3b) {
                if inGroup {
                    result.append(.groupEnd)
                    inGroup = false
                }
                index += 1
                continue
            }
            // The element runs to the next "," or ";" outside angle brackets.
            var end = index
            var angleDepth = 0
            var onlyPhrase = true
            while end < tokens.count {
                let kind = tokens[end].kind
                if kind == .special(0x3c) { angleDepth += 1 }
                if kind == .special(0x3e) { angleDepth = max(0, angleDepth - 1) }
                if angleDepth == 0 && (kind == .special(0x2c) || kind == .special(0x3b)) { break }
                // A group's display name (only phrase tokens) ends at its colon.
                if !inGroup && onlyPhrase && kind == .special(0x3a) { break }
                if !isPhraseToken(kind) { onlyPhrase = false }
                end += 1
            }
            if end < tokens.count && tokens[end].kind == .special(0x3a) {
                result.append(.groupStart(phrase(tokens[index..<end])))
                inGroup = true
                index = end + 1
                continue
            }
            // Comments are in token order: skip those before this element, take those in it.
            while nextComment < comments.count && comments[nextComment].position < index { nextComment += 1 }
            var nearby: [[UInt8]] = []
            var scan = nextComment
            while scan < comments.count && comments[scan].position <= end {
                nearby.append(comments[scan].text)
                scan += 1
            }
            result.append(mailbox(tokens[index..<end], comments: nearby))
            index = end
        }
        if inGroup && result.count < maxAddresses { result.append(.groupEnd) }
        return result
    }

    /// Tokens a display name is made of.
    private static func isPhraseToken(_ kind: Kind) -> Bool {
        switch kind {
        case .word, .quoted, .special(0x2e): true
        default: false
        }
    }

    private static func mailbox(_ tokens: ArraySlice<Token>, comments: [[UInt8]]) -> EnvelopeAddress {
        let comment = comments.last { !$0.isEmpty }
        guard let open = tokens.firstIndex(where: { $0.kind == .special(0x3c) }) else {
            var address = addrSpec(tokens)
            if address.name == nil { address.name = comment }
            return address
        }
        let close = tokens[open...].firstIndex { $0.kind == .special(0x3e) } ?? tokens.endIndex
        var inner = tokens[(open + 1)..<close]
        var route: [UInt8]?
        // RFC 5322 §4.4 obs-route: "@a,@b:" before the address.
        if inner.first?.kind == .special(0x40), let colon = inner.firstIndex(where: { $0.kind == .special(0x3a) }) {
            var adl: [UInt8] = []
            for token in inner[inner.startIndex..<colon] {
                switch token.kind {
                case .special(let byte) where byte == 0x40 || byte == 0x2c || byte == 0x2e: adl.append(byte)
                case .special: break
                default: adl.append(contentsOf: token.kind == .domainLiteral ? [0x5b] + token.text + [0x5d] : token.text)
                }
            }
            route = adl
            inner = inner[(colon + 1)...]
        }
        var address = addrSpec(inner)
        address.adl = route
        let name = phrase(tokens[tokens.startIndex..<open])
        address.name = name.isEmpty ? comment : name
        return address
    }

    /// `local-part "@" domain`; the last "@" splits them. The domain ends where its dot-atom
    /// (or domain literal) ends; junk after it is dropped. Words without "@" and without dots
    /// between them are a display name without an address (as Dovecot reads them).
    private static func addrSpec(_ tokens: ArraySlice<Token>) -> EnvelopeAddress {
        let at = tokens.lastIndex { $0.kind == .special(0x40) }
        let localTokens = at.map { tokens[tokens.startIndex..<$0] } ?? tokens
        var local: [UInt8] = []
        var previousWasWord = false
        var wordsWithoutDot = false
        for token in localTokens {
            switch token.kind {
            case .word, .quoted:
                if previousWasWord {
                    local.append(0x20)
                    wordsWithoutDot = true
                }
                local.append(contentsOf: token.text)
                previousWasWord = true
            case .special(0x2e):
                local.append(0x2e)
                previousWasWord = false
            default:
                previousWasWord = false
            }
        }
        if at == nil && wordsWithoutDot {
            return EnvelopeAddress(name: local, mailbox: EnvelopeAddress.missingMailbox, host: EnvelopeAddress.missingDomain)
        }
        var domain: [UInt8] = []
        if let at {
            var expectWord = true
            scan: for token in tokens[(at + 1)...] {
                switch token.kind {
                case .word where expectWord:
                    domain.append(contentsOf: token.text)
                    expectWord = false
                case .domainLiteral where expectWord && domain.isEmpty:
                    domain.append(contentsOf: [0x5b] + token.text + [0x5d])
                    expectWord = false
                case .special(0x2e) where !expectWord:
                    domain.append(0x2e)
                    expectWord = true
                default:
                    if !domain.isEmpty { break scan }
                }
            }
        }
        return EnvelopeAddress(
            mailbox: local.isEmpty ? EnvelopeAddress.missingMailbox : local,
            host: domain.isEmpty ? EnvelopeAddress.missingDomain : domain)
    }

    /// RFC 5322 §3.2.5 phrase (with obs-phrase dots): words joined by one space where the
    /// message had white space or a comment between them, quoted strings unquoted.
    private static func phrase(_ tokens: ArraySlice<Token>) -> [UInt8] {
        var text: [UInt8] = []
        for token in tokens {
            let piece: [UInt8]
            switch token.kind {
            case .word, .quoted: piece = token.text
            case .domainLiteral: piece = [0x5b] + token.text + [0x5d]
            case .special(let byte): piece = [byte]
            }
            if token.spaceBefore && !text.isEmpty { text.append(0x20) }
            text.append(contentsOf: piece)
        }
        return text
    }

    /// Tokens and the comments between them; a comment's position is the index of the token after it.
    private static func lex(_ value: [UInt8]) -> ([Token], [(position: Int, text: [UInt8])]) {
        var lexer = MIMELexer(value)
        var tokens: [Token] = []
        var comments: [(position: Int, text: [UInt8])] = []
        while !lexer.isAtEnd {
            let before = lexer.index
            for comment in lexer.skipCFWS() { comments.append((tokens.count, comment)) }
            guard let byte = lexer.current else { break }
            let space = lexer.index > before
            switch byte {
            case 0x22:
                tokens.append(Token(kind: .quoted, text: lexer.quotedString(), spaceBefore: space))
            case 0x5b:
                lexer.index += 1
                var text: [UInt8] = []
                while let inner = lexer.current, inner != 0x5d {
                    if inner == 0x5c { lexer.index += 1 }
                    if let escaped = lexer.current { text.append(escaped) }
                    lexer.index += 1
                }
                if lexer.current == 0x5d { lexer.index += 1 }
                tokens.append(Token(kind: .domainLiteral, text: text, spaceBefore: space))
            case 0x28, 0x29, 0x3c, 0x3e, 0x5d, 0x3a, 0x3b, 0x40, 0x5c, 0x2c, 0x2e:
                lexer.index += 1
                // A stray ")" or "\" is junk; keep it out of names and addresses.
                if byte != 0x29 && byte != 0x5c && byte != 0x5d { tokens.append(Token(kind: .special(byte), text: [byte], spaceBefore: space)) }
            default:
                let start = lexer.index
                while let next = lexer.current, isAtext(next) { lexer.index += 1 }
                if lexer.index == start { lexer.index += 1 }
                tokens.append(Token(kind: .word, text: Array(value[start..<lexer.index]), spaceBefore: space))
            }
        }
        return (tokens, comments)
    }

    /// RFC 5322 §3.2.3 atext, plus 8-bit bytes (RFC 6532) and control junk.
    private static func isAtext(_ byte: UInt8) -> Bool {
        if isWhiteSpace(byte) { return false }
        switch byte {
        case 0x28, 0x29, 0x3c, 0x3e, 0x5b, 0x5d, 0x3a, 0x3b, 0x40, 0x5c, 0x2c, 0x2e, 0x22: return false
        default: return true
        }
    }
}
