/// The IMAP grammar as one small function per ABNF rule of RFC 9051 §9 (and the extensions'
/// grammars), named after the rule. Every function takes the cursor `inout`, consumes exactly
/// its rule or throws, and leaves surrounding spaces to its caller.
enum GrammarParser {}

// MARK: - Numbers

extension GrammarParser {
    private static func digits(_ cursor: inout ParserCursor, maximum: UInt64, what: String) throws(IMAPParseError) -> UInt64 {
        let start = cursor.index
        var value: UInt64 = 0
        while let byte = cursor.peek(), IMAPCharacter.isDigit(byte) {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2, sum <= maximum else {
                cursor.index = start
                throw cursor.syntax("\(what) larger than \(maximum)")
            }
            value = sum
            cursor.index += 1
        }
        guard cursor.index > start else { throw cursor.syntax("expected \(what), found \(cursor.upcoming)") }
        return value
    }

    /// `number`: 32-bit unsigned.
    static func number(_ cursor: inout ParserCursor) throws(IMAPParseError) -> UInt32 {
        UInt32(try digits(&cursor, maximum: UInt64(UInt32.max), what: "a number"))
    }

    /// `nz-number`: 1 to 4294967295 (RFC 9051 §9); sequence numbers and UIDs are never 0.
    static func nzNumber(_ cursor: inout ParserCursor) throws(IMAPParseError) -> UInt32 {
        let start = cursor.index
        let value = try number(&cursor)
        guard value != 0 else {
            cursor.index = start
            throw cursor.syntax("expected a non-zero number, found 0")
        }
        return value
    }

    /// `number64`: 63-bit unsigned (RFC 9051 §9).
    static func number64(_ cursor: inout ParserCursor) throws(IMAPParseError) -> UInt64 {
        try digits(&cursor, maximum: UInt64(Int64.max), what: "a number")
    }

    /// `nz-number64` / RFC 7162 `mod-sequence-value`.
    static func nzNumber64(_ cursor: inout ParserCursor) throws(IMAPParseError) -> UInt64 {
        let start = cursor.index
        let value = try number64(&cursor)
        guard value != 0 else {
            cursor.index = start
            throw cursor.syntax("expected a non-zero number, found 0")
        }
        return value
    }
}

// MARK: - Strings

extension GrammarParser {
    /// `tag = 1*<any ASTRING-CHAR except "+">`.
    static func tag(_ cursor: inout ParserCursor) throws(IMAPParseError) -> String {
        let start = cursor.index
        while let byte = cursor.peek(), IMAPCharacter.isAStringChar(byte), byte != UInt8(ascii: "+") {
            cursor.index += 1
            guard cursor.index - start <= cursor.limits.maxTagLength else {
                throw cursor.limit("tag longer than \(cursor.limits.maxTagLength) characters")
            }
        }
        guard cursor.index > start else { throw cursor.syntax("expected a tag, found \(cursor.upcoming)") }
        return String(decoding: cursor.bytes[start..<cursor.index], as: UTF8.self)
    }

    /// `atom = 1*ATOM-CHAR` (7-bit, no specials).
    static func atom(_ cursor: inout ParserCursor) throws(IMAPParseError) -> String {
        let start = cursor.index
        while let byte = cursor.peek(), IMAPCharacter.isAtomChar(byte) {
            cursor.index += 1
        }
        guard cursor.index > start else { throw cursor.syntax("expected an atom, found \(cursor.upcoming)") }
        return String(decoding: cursor.bytes[start..<cursor.index], as: UTF8.self)
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`; with UTF8=ACCEPT, QUOTED-CHAR includes UTF-8
    /// sequences (RFC 9051 §9, RFC 6855 §3).
    static func quoted(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [UInt8] {
        try cursor.expect(IMAPCharacter.dquote, "a quoted string")
        var output: [UInt8] = []
        while true {
            guard let byte = cursor.peek() else { throw cursor.syntax("unterminated quoted string") }
            switch byte {
            case IMAPCharacter.dquote:
                cursor.index += 1
                return output
            case IMAPCharacter.backslash:
                guard let escaped = cursor.peek(1), escaped == IMAPCharacter.dquote || escaped == IMAPCharacter.backslash else {
                    throw cursor.syntax("backslash in a quoted string must precede \" or \\")
                }
                output.append(escaped)
                cursor.index += 2
            case 0x80...:
                guard cursor.utf8Accept else {
                    throw cursor.syntax("8-bit data in a quoted string; send it as a literal")
                }
                let length = utf8SequenceLength(cursor.bytes, at: cursor.index)
                guard length > 0 else { throw cursor.syntax("invalid UTF-8 in a quoted string") }
                output.append(contentsOf: cursor.bytes[cursor.index..<(cursor.index + length)])
                cursor.index += length
            default:
                guard IMAPCharacter.isTextChar(byte) else {
                    throw cursor.syntax(byte == 0 ? "NUL in a quoted string" : "CR or LF in a quoted string")
                }
                output.append(byte)
                cursor.index += 1
            }
        }
    }

    /// The length of the well-formed UTF-8 sequence (RFC 3629 §4: no overlongs, no surrogates)
    /// starting with a non-ASCII byte at `index`, or 0.
    static func utf8SequenceLength(_ bytes: [UInt8], at index: Int) -> Int {
        func continuation(_ offset: Int, _ range: ClosedRange<UInt8> = 0x80...0xbf) -> Bool {
            index + offset < bytes.count && range.contains(bytes[index + offset])
        }
        switch bytes[index] {
        case 0xc2...0xdf: return continuation(1) ? 2 : 0
        case 0xe0: return continuation(1, 0xa0...0xbf) && continuation(2) ? 3 : 0
        case 0xe1...0xec, 0xee...0xef: return continuation(1) && continuation(2) ? 3 : 0
        case 0xed: return continuation(1, 0x80...0x9f) && continuation(2) ? 3 : 0
        case 0xf0: return continuation(1, 0x90...0xbf) && continuation(2) && continuation(3) ? 4 : 0
        case 0xf1...0xf3: return continuation(1) && continuation(2) && continuation(3) ? 4 : 0
        case 0xf4: return continuation(1, 0x80...0x8f) && continuation(2) && continuation(3) ? 4 : 0
        default: return 0
        }
    }

    /// `"{" number64 ["+"] "}" CRLF` (with `~` before for literal8): the size. The framer has
    /// already checked it against the limits; here it only has to fit the frame.
    private static func literalHeader(_ cursor: inout ParserCursor, binary: Bool) throws(IMAPParseError) -> Int {
        if binary {
            try cursor.expect(UInt8(ascii: "~"), "\"~\" of a literal8")
        }
        try cursor.expect(UInt8(ascii: "{"), "a literal")
        let size = try number64(&cursor)
        _ = cursor.skip(UInt8(ascii: "+"))
        try cursor.expect(UInt8(ascii: "}"), "\"}\" closing the literal size")
        _ = cursor.skip(IMAPCharacter.cr)
        try cursor.expect(IMAPCharacter.lf, "end of line after the literal size")
        guard size <= UInt64(cursor.bytes.count - cursor.index) else {
            throw cursor.syntax("literal of \(size) octets runs past the end of the command")
        }
        return Int(size)
    }

    /// `literal`: CHAR8 excludes NUL (RFC 9051 §4.3); binary content needs literal8.
    static func literal(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [UInt8] {
        let size = try literalHeader(&cursor, binary: false)
        let data = Array(cursor.bytes[cursor.index..<(cursor.index + size)])
        guard !data.contains(0) else { throw cursor.syntax("NUL in a literal; binary data needs literal8 (~{n})") }
        cursor.index += size
        return data
    }

    /// `literal8 = "~{" number64 ["+"] "}" CRLF *OCTET` (RFC 3516, RFC 7888).
    static func literal8(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [UInt8] {
        let size = try literalHeader(&cursor, binary: true)
        let data = Array(cursor.bytes[cursor.index..<(cursor.index + size)])
        cursor.index += size
        return data
    }

    /// `string = quoted / literal`.
    static func string(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [UInt8] {
        switch cursor.peek() {
        case IMAPCharacter.dquote: return try quoted(&cursor)
        case UInt8(ascii: "{"): return try literal(&cursor)
        default: throw cursor.syntax("expected a quoted string or literal, found \(cursor.upcoming)")
        }
    }

    /// `astring = 1*ASTRING-CHAR / string`.
    static func astring(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [UInt8] {
        switch cursor.peek() {
        case IMAPCharacter.dquote, UInt8(ascii: "{"):
            return try string(&cursor)
        default:
            let start = cursor.index
            while let byte = cursor.peek(), IMAPCharacter.isAStringChar(byte) {
                cursor.index += 1
            }
            guard cursor.index > start else {
                if let byte = cursor.peek(), byte >= 0x80 {
                    throw cursor.syntax("8-bit data outside a quoted string or literal")
                }
                throw cursor.syntax("expected an atom or string, found \(cursor.upcoming)")
            }
            return Array(cursor.bytes[start..<cursor.index])
        }
    }

    /// `nstring = string / nil`.
    static func nstring(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [UInt8]? {
        if cursor.skipKeyword("NIL") { return nil }
        return try string(&cursor)
    }

    /// Text arguments the server interprets (user names, search strings) must be UTF-8.
    static func text(_ bytes: [UInt8], _ cursor: ParserCursor, what: String) throws(IMAPParseError) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw cursor.syntax("\(what) is not valid UTF-8")
        }
        return text
    }

    /// An astring decoded as UTF-8.
    static func astringText(_ cursor: inout ParserCursor, what: String) throws(IMAPParseError) -> String {
        let bytes = try astring(&cursor)
        return try text(bytes, cursor, what: what)
    }

    /// `mailbox = "INBOX" / astring`.
    static func mailbox(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPMailboxName {
        IMAPMailboxName(try astring(&cursor))
    }

    /// `list-mailbox = 1*list-char / string`: a LIST pattern with `*` and `%`.
    static func listMailbox(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [UInt8] {
        switch cursor.peek() {
        case IMAPCharacter.dquote, UInt8(ascii: "{"):
            return try string(&cursor)
        default:
            let start = cursor.index
            while let byte = cursor.peek(), IMAPCharacter.isListChar(byte) {
                cursor.index += 1
            }
            guard cursor.index > start else { throw cursor.syntax("expected a mailbox pattern, found \(cursor.upcoming)") }
            return Array(cursor.bytes[start..<cursor.index])
        }
    }

    /// `flag = "\" atom / flag-keyword` (system flags, flag extensions and keywords).
    static func flag(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPFlag {
        let system = cursor.skip(IMAPCharacter.backslash)
        let name = try atom(&cursor)
        return IMAPFlag(system ? "\\" + name : name)
    }

    /// `flag-keyword = atom`.
    static func flagKeyword(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPFlag {
        IMAPFlag(try atom(&cursor))
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`.
    static func flagList(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [IMAPFlag] {
        try cursor.parenthesizedList(allowEmpty: true, maxItems: cursor.limits.maxListItems, flag)
    }

    /// `charset = atom / quoted`; only UTF-8 and US-ASCII are accepted (RFC 9051 §6.4.4 requires
    /// both; anything else is `NO [BADCHARSET]`).
    static func charset(_ cursor: inout ParserCursor) throws(IMAPParseError) -> String {
        let start = cursor.index
        let name: String
        if cursor.peek() == IMAPCharacter.dquote {
            name = String(decoding: try quoted(&cursor), as: UTF8.self)
        } else {
            name = try atom(&cursor)
        }
        let upper = name.uppercased()
        guard upper == "UTF-8" || upper == "US-ASCII" else {
            throw IMAPParseError(.unsupportedCharset(String(name.prefix(64))), "unsupported charset", offset: start)
        }
        return upper
    }
}
