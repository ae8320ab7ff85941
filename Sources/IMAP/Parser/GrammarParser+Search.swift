extension GrammarParser {
    /// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"`
    /// (RFC 4731, RFC 5182 SAVE). The leading space is the caller's.
    static func searchReturnOptions(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [IMAPSearchReturnOption] {
        try cursor.expectKeyword("RETURN")
        try cursor.space()
        let options = try cursor.parenthesizedList(allowEmpty: true, maxItems: 8) { (cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSearchReturnOption in
            let name = cursor.keyword()
            guard let option = IMAPSearchReturnOption(rawValue: name) else {
                throw cursor.syntax("unknown SEARCH RETURN option \"\(name.prefix(32))\"")
            }
            return option
        }
        // RFC 4731 §3.1: an empty list means ALL.
        return options.isEmpty ? [.all] : options
    }

    /// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`.
    static func searchProgram(_ cursor: inout ParserCursor) throws(IMAPParseError) -> (charset: String?, key: IMAPSearchKey) {
        var charsetName: String?
        if cursor.skipKeyword("CHARSET") {
            try cursor.space()
            charsetName = try charset(&cursor)
            try cursor.space()
        }
        return (charsetName, try searchKeys(&cursor))
    }

    /// `search-key *(SP search-key)` up to the end of the line; one key stays itself, several are an AND.
    static func searchKeys(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSearchKey {
        var keys = [try searchKey(&cursor)]
        while cursor.skip(IMAPCharacter.space) {
            keys.append(try searchKey(&cursor))
        }
        return keys.count == 1 ? keys[0] : .and(keys)
    }

    /// `search-key` (RFC 9051 §9 with RFC 3501's NEW/OLD/RECENT, RFC 7162 MODSEQ, RFC 5032
    /// OLDER/YOUNGER). NOT, OR and parentheses count toward the nesting limit; every key counts
    /// toward `maxSearchKeys`.
    static func searchKey(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSearchKey {
        cursor.searchKeyCount += 1
        guard cursor.searchKeyCount <= cursor.limits.maxSearchKeys else {
            throw cursor.limit("more than \(cursor.limits.maxSearchKeys) search keys")
        }
        guard let first = cursor.peek() else { throw cursor.syntax("expected a search key, found end of command") }
        if first == UInt8(ascii: "(") {
            try cursor.expect(UInt8(ascii: "("), "\"(\"")
            try cursor.enterNesting()
            defer { cursor.leaveNesting() }
            var keys = [try searchKey(&cursor)]
            while cursor.skip(IMAPCharacter.space) {
                keys.append(try searchKey(&cursor))
            }
            try cursor.expect(UInt8(ascii: ")"), "\")\" closing the search key list")
            return keys.count == 1 ? keys[0] : .and(keys)
        }
        if IMAPCharacter.isDigit(first) || first == UInt8(ascii: "*") || first == UInt8(ascii: "$") {
            return .sequenceNumbers(try sequenceSet(&cursor))
        }
        let start = cursor.index
        let name = cursor.keyword()
        switch name {
        case "ALL": return .all
        case "ANSWERED": return .answered
        case "DELETED": return .deleted
        case "DRAFT": return .draft
        case "FLAGGED": return .flagged
        case "NEW": return .new
        case "OLD": return .old
        case "RECENT": return .recent
        case "SEEN": return .seen
        case "UNANSWERED": return .unanswered
        case "UNDELETED": return .undeleted
        case "UNDRAFT": return .undraft
        case "UNFLAGGED": return .unflagged
        case "UNSEEN": return .unseen
        case "KEYWORD":
            try cursor.space()
            return .keyword(try flagKeyword(&cursor))
        case "UNKEYWORD":
            try cursor.space()
            return .unkeyword(try flagKeyword(&cursor))
        case "BCC": return .bcc(try searchString(&cursor))
        case "BODY": return .body(try searchString(&cursor))
        case "CC": return .cc(try searchString(&cursor))
        case "FROM": return .from(try searchString(&cursor))
        case "SUBJECT": return .subject(try searchString(&cursor))
        case "TEXT": return .text(try searchString(&cursor))
        case "TO": return .to(try searchString(&cursor))
        case "HEADER":
            try cursor.space()
            let field = try headerFieldName(&cursor)
            return .header(field, try searchString(&cursor))
        case "BEFORE": return .before(try searchDate(&cursor))
        case "ON": return .on(try searchDate(&cursor))
        case "SINCE": return .since(try searchDate(&cursor))
        case "SENTBEFORE": return .sentBefore(try searchDate(&cursor))
        case "SENTON": return .sentOn(try searchDate(&cursor))
        case "SENTSINCE": return .sentSince(try searchDate(&cursor))
        case "OLDER":
            try cursor.space()
            return .older(try nzNumber(&cursor))
        case "YOUNGER":
            try cursor.space()
            return .younger(try nzNumber(&cursor))
        case "LARGER":
            try cursor.space()
            return .larger(try number64(&cursor))
        case "SMALLER":
            try cursor.space()
            return .smaller(try number64(&cursor))
        case "UID":
            try cursor.space()
            return .uid(try sequenceSet(&cursor))
        case "MODSEQ":
            try cursor.space()
            return .modSeq(try searchModSeq(&cursor))
        case "NOT":
            try cursor.space()
            try cursor.enterNesting()
            defer { cursor.leaveNesting() }
            return .not(try searchKey(&cursor))
        case "OR":
            try cursor.space()
            try cursor.enterNesting()
            defer { cursor.leaveNesting() }
            let left = try searchKey(&cursor)
            try cursor.space()
            return .or(left, try searchKey(&cursor))
        default:
            cursor.index = start
            if name.isEmpty {
                throw cursor.syntax("expected a search key, found \(cursor.upcoming)")
            }
            throw cursor.syntax("unknown search key \"\(name.prefix(32))\"")
        }
    }

    /// SP astring, as UTF-8 (the charset is UTF-8 or its subset US-ASCII).
    private static func searchString(_ cursor: inout ParserCursor) throws(IMAPParseError) -> String {
        try cursor.space()
        return try astringText(&cursor, what: "search string")
    }

    private static func searchDate(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPDate {
        try cursor.space()
        return try date(&cursor)
    }

    /// `header-fld-name = astring`, restricted to RFC 5322 field-name characters (printable
    /// US-ASCII except `:`), uppercased.
    static func headerFieldName(_ cursor: inout ParserCursor) throws(IMAPParseError) -> String {
        let start = cursor.index
        let bytes = try astring(&cursor)
        guard !bytes.isEmpty, bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: ":") }) else {
            cursor.index = start
            throw cursor.syntax("invalid header field name")
        }
        return String(decoding: bytes.map(IMAPCharacter.uppercase), as: UTF8.self)
    }

    /// RFC 7162 §3.1.5: `"MODSEQ" SP [search-modseq-ext SP] mod-sequence-valzer`,
    /// `search-modseq-ext = entry-name SP entry-type-req`.
    static func searchModSeq(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSearchModSeq {
        guard cursor.peek() == IMAPCharacter.dquote else {
            return IMAPSearchModSeq(try number64(&cursor))
        }
        let entryBytes = try quoted(&cursor)
        let entry = try text(entryBytes, cursor, what: "MODSEQ entry name")
        try cursor.space()
        let typeName = cursor.keyword()
        guard let type = IMAPSearchModSeq.EntryType(rawValue: typeName) else {
            throw cursor.syntax("expected priv, shared or all, found \(cursor.upcoming)")
        }
        try cursor.space()
        return IMAPSearchModSeq(try number64(&cursor), entryName: entry, entryType: type)
    }
}
