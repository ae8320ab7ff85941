/// A mail address as SMTP carries it: local part and domain, both as received
/// (the local part is case-sensitive per RFC 5321 §2.4; the domain is not).
public struct SMTPMailbox: Sendable, Equatable, CustomStringConvertible {
    public var localPart: String
    public var domain: String

    public init(localPart: String, domain: String) {
        self.localPart = localPart
        self.domain = domain
    }

    public var description: String { "\(localPart)@\(domain)" }
}

/// RFC 5321 §4.1.1: the commands a server understands.
public enum SMTPCommand: Sendable, Equatable {
    case helo(String)
    case ehlo(String)
    /// `nil` is the null reverse-path `<>`.
    case mail(from: SMTPMailbox?, parameters: [SMTPParameter])
    /// `postmaster` without a domain is allowed by RFC 5321 §4.1.1.3 and arrives as domain "".
    case rcpt(to: SMTPMailbox, parameters: [SMTPParameter])
    case data
    /// RFC 3030 CHUNKING.
    case bdat(size: Int, last: Bool)
    case rset
    case noop
    case quit
    case vrfy(String)
    case help
    case startTLS
    /// RFC 4954: mechanism and optional initial response ("=" is an empty one).
    case auth(mechanism: String, initialResponse: String?)
}

/// An ESMTP parameter such as `SIZE=1000` or `SMTPUTF8` (value nil).
public struct SMTPParameter: Sendable, Equatable {
    public var keyword: String
    public var value: String?

    public init(_ keyword: String, _ value: String? = nil) {
        self.keyword = keyword
        self.value = value
    }
}

/// Why a command line was refused; each maps to one reply.
public enum SMTPSyntaxError: Error, Sendable, Equatable {
    case unknownCommand(String)
    case syntax(String)
    case lineTooLong
    case invalidCharacters

    public var reply: SMTPReply {
        switch self {
        case .unknownCommand: return SMTPReply(500, "5.5.1", "Command not recognized")
        case .syntax(let why): return SMTPReply(501, "5.5.4", "Syntax error: \(why)")
        case .lineTooLong: return SMTPReply(500, "5.5.6", "Line too long")
        case .invalidCharacters: return SMTPReply(500, "5.5.2", "Invalid characters in command")
        }
    }
}

/// One SMTP reply: code, optional enhanced status (RFC 3463) and text lines.
public struct SMTPReply: Sendable, Equatable {
    public var code: Int
    public var enhanced: String?
    public var lines: [String]

    public init(_ code: Int, _ enhanced: String?, _ lines: String...) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
    }

    public init(code: Int, enhanced: String?, lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
    }

    /// Wire form: `250-first`, …, `250 last`, each CRLF-terminated (RFC 5321 §4.2.1).
    public func encoded(withEnhancedCodes: Bool = true) -> String {
        let texts = lines.isEmpty ? [""] : lines
        var out = ""
        for (index, text) in texts.enumerated() {
            let separator = index == texts.count - 1 ? " " : "-"
            let prefix = withEnhancedCodes && enhanced != nil ? "\(enhanced ?? "") " : ""
            out += "\(code)\(separator)\(prefix)\(text)\r\n"
        }
        return out
    }
}
