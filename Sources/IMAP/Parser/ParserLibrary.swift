/// Why a command could not be parsed. `offset` is the byte position in the frame, for logs.
public struct IMAPParseError: Error, Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// The bytes do not follow the grammar: answer `BAD`.
        case syntax
        /// The command is well-formed but goes beyond one of `IMAPLimits`: answer `BAD [LIMIT]`.
        case limitExceeded
        /// SEARCH/SORT/THREAD named a charset other than UTF-8 and US-ASCII: answer
        /// `NO [BADCHARSET (UTF-8 US-ASCII)]` (RFC 9051 §6.4.4).
        case unsupportedCharset(String)
    }

    public var kind: Kind
    public var message: String
    public var offset: Int

    public init(_ kind: Kind, _ message: String, offset: Int) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }
}

/// RFC 9051 §9 character classes.
enum IMAPCharacter {
    static let space = UInt8(ascii: " ")
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let dquote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")

    static func isCTL(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7f }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    static func isAlpha(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
    }

    /// ATOM-CHAR: any CHAR (7-bit, not NUL) except atom-specials.
    static func isAtomChar(_ byte: UInt8) -> Bool {
        guard byte < 0x80, !isCTL(byte) else { return false }
        switch byte {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), space,
             UInt8(ascii: "%"), UInt8(ascii: "*"), dquote, backslash, UInt8(ascii: "]"):
            return false
        default:
            return true
        }
    }

    /// ASTRING-CHAR = ATOM-CHAR / resp-specials.
    static func isAStringChar(_ byte: UInt8) -> Bool { isAtomChar(byte) || byte == UInt8(ascii: "]") }

    /// list-char = ATOM-CHAR / list-wildcards / resp-specials.
    static func isListChar(_ byte: UInt8) -> Bool {
        isAStringChar(byte) || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "*")
    }

    /// TEXT-CHAR = any CHAR except CR and LF.
    static func isTextChar(_ byte: UInt8) -> Bool { byte >= 0x01 && byte < 0x80 && byte != cr && byte != lf }

    static func uppercase(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") ? byte - 0x20 : byte
    }
}

/// The position in one frame plus the bookkeeping every rule needs: limits, nesting depth and
/// the running count of search keys. The grammar functions in `GrammarParser` each take it `inout`.
struct ParserCursor {
    let bytes: [UInt8]
    var index: Int
    let limits: IMAPLimits
    /// UTF8=ACCEPT (RFC 6855 §3) is enabled: quoted strings may carry UTF-8.
    let utf8Accept: Bool
    var depth = 0
    var searchKeyCount = 0

    init(_ bytes: [UInt8], limits: IMAPLimits, utf8Accept: Bool) {
        self.bytes = bytes
        self.index = 0
        self.limits = limits
        self.utf8Accept = utf8Accept
    }

    var isAtEnd: Bool { index >= bytes.count }

    func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    func syntax(_ message: String) -> IMAPParseError { IMAPParseError(.syntax, message, offset: index) }

    func limit(_ message: String) -> IMAPParseError { IMAPParseError(.limitExceeded, message, offset: index) }

    /// A description of the next bytes for error messages, printable and short.
    var upcoming: String {
        guard !isAtEnd else { return "end of command" }
        let slice = bytes[index..<min(bytes.count, index + 16)]
        if slice.first == IMAPCharacter.cr || slice.first == IMAPCharacter.lf { return "end of line" }
        let text = slice.map { $0 >= 0x20 && $0 < 0x7f ? Character(Unicode.Scalar($0)) : "?" }
        return "\"" + String(text) + "\""
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(IMAPParseError) {
        guard peek() == byte else { throw syntax("expected \(what), found \(upcoming)") }
        index += 1
    }

    mutating func skip(_ byte: UInt8) -> Bool {
        guard peek() == byte else { return false }
        index += 1
        return true
    }

    mutating func space() throws(IMAPParseError) {
        try expect(IMAPCharacter.space, "a space")
    }

    /// The next bytes spell `word` (case-insensitively) and are not followed by `continuing`.
    func isKeyword(_ word: String, notFollowedBy continuing: (UInt8) -> Bool = IMAPCharacter.isAtomChar) -> Bool {
        var offset = 0
        for expected in word.utf8 {
            guard let byte = peek(offset), IMAPCharacter.uppercase(byte) == expected else { return false }
            offset += 1
        }
        if let next = peek(offset), continuing(next) { return false }
        return true
    }

    mutating func skipKeyword(_ word: String, notFollowedBy continuing: (UInt8) -> Bool = IMAPCharacter.isAtomChar) -> Bool {
        guard isKeyword(word, notFollowedBy: continuing) else { return false }
        index += word.utf8.count
        return true
    }

    mutating func expectKeyword(_ word: String) throws(IMAPParseError) {
        guard skipKeyword(word) else { throw syntax("expected \(word), found \(upcoming)") }
    }

    /// Letters, digits, `.`, `-` and `_`, uppercased: command names, FETCH and SEARCH keywords.
    mutating func keyword() -> String {
        let start = index
        while let byte = peek(), IMAPCharacter.isAlpha(byte) || IMAPCharacter.isDigit(byte)
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") {
            index += 1
        }
        return String(decoding: bytes[start..<index].map(IMAPCharacter.uppercase), as: UTF8.self)
    }

    mutating func enterNesting() throws(IMAPParseError) {
        depth += 1
        guard depth <= limits.maxNestingDepth else {
            throw limit("nesting deeper than \(limits.maxNestingDepth) levels")
        }
    }

    mutating func leaveNesting() {
        depth -= 1
    }

    /// CRLF and the end of the frame. A bare LF is accepted as a line end, as most servers do.
    mutating func lineEnd() throws(IMAPParseError) {
        _ = skip(IMAPCharacter.cr)
        guard skip(IMAPCharacter.lf), isAtEnd else {
            throw syntax("expected end of line, found \(upcoming)")
        }
    }

    var isAtLineEnd: Bool {
        peek() == IMAPCharacter.cr || peek() == IMAPCharacter.lf || isAtEnd
    }

    /// `( item *(SP item) )` with the count bounded; `allowEmpty` for `()`.
    mutating func parenthesizedList<T>(
        allowEmpty: Bool,
        maxItems: Int,
        _ item: (inout ParserCursor) throws(IMAPParseError) -> T
    ) throws(IMAPParseError) -> [T] {
        try expect(UInt8(ascii: "("), "\"(\"")
        try enterNesting()
        defer { leaveNesting() }
        var items: [T] = []
        if skip(UInt8(ascii: ")")) {
            guard allowEmpty else { throw syntax("empty list") }
            return items
        }
        while true {
            guard items.count < maxItems else { throw limit("more than \(maxItems) items in a list") }
            items.append(try item(&self))
            if skip(UInt8(ascii: ")")) { return items }
            try space()
        }
    }
}
