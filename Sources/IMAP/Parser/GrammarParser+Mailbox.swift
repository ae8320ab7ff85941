extension GrammarParser {
    /// SELECT/EXAMINE after the name: `SP mailbox [select-params]`,
    /// `select-params = SP "(" select-param *(SP select-param) ")"` (RFC 4466 §2.1).
    static func select(_ cursor: inout ParserCursor) throws(IMAPParseError) -> (IMAPMailboxName, IMAPSelectParameters) {
        try cursor.space()
        let name = try mailbox(&cursor)
        var parameters = IMAPSelectParameters()
        if cursor.skip(IMAPCharacter.space) {
            _ = try cursor.parenthesizedList(allowEmpty: false, maxItems: 8) { (cursor: inout ParserCursor) throws(IMAPParseError) in
                let start = cursor.index
                switch cursor.keyword() {
                case "CONDSTORE" where !parameters.condStore:
                    parameters.condStore = true
                case "QRESYNC" where parameters.qresync == nil:
                    try cursor.space()
                    parameters.qresync = try qresyncParameters(&cursor)
                default:
                    cursor.index = start
                    throw cursor.syntax("unknown or repeated SELECT parameter \(cursor.upcoming)")
                }
            }
        }
        return (name, parameters)
    }

    /// RFC 7162 §3.2.5: `"(" uidvalidity SP mod-sequence-value [SP known-uids]
    /// [SP seq-match-data] ")"`, `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`.
    static func qresyncParameters(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPQResyncParameters {
        try cursor.expect(UInt8(ascii: "("), "\"(\" after QRESYNC")
        let uidValidity = try nzNumber(&cursor)
        try cursor.space()
        var result = IMAPQResyncParameters(uidValidity: uidValidity, modSeq: try nzNumber64(&cursor))
        if cursor.skip(IMAPCharacter.space) {
            if cursor.peek() != UInt8(ascii: "(") {
                result.knownUIDs = try knownUIDSet(&cursor)
                if cursor.skip(IMAPCharacter.space) {
                    result.sequenceMatch = try sequenceMatchData(&cursor)
                }
            } else {
                result.sequenceMatch = try sequenceMatchData(&cursor)
            }
        }
        try cursor.expect(UInt8(ascii: ")"), "\")\" closing QRESYNC")
        return result
    }

    private static func sequenceMatchData(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSequenceMatch {
        try cursor.expect(UInt8(ascii: "("), "\"(\" of the sequence match data")
        let sequenceNumbers = try knownUIDSet(&cursor)
        try cursor.space()
        let uids = try knownUIDSet(&cursor)
        try cursor.expect(UInt8(ascii: ")"), "\")\" closing the sequence match data")
        return IMAPSequenceMatch(sequenceNumbers: sequenceNumbers, uids: uids)
    }

    /// CREATE after the name: `SP mailbox [SP "(" create-param *(SP create-param) ")"]` with the
    /// RFC 6154 §3 `USE (\Drafts ...)` parameter.
    static func create(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPCommand.Kind {
        try cursor.space()
        let name = try mailbox(&cursor)
        var uses: [String]?
        if cursor.skip(IMAPCharacter.space) {
            _ = try cursor.parenthesizedList(allowEmpty: false, maxItems: 8) { (cursor: inout ParserCursor) throws(IMAPParseError) in
                guard uses == nil, cursor.skipKeyword("USE") else {
                    throw cursor.syntax("unknown or repeated CREATE parameter \(cursor.upcoming)")
                }
                try cursor.space()
                uses = try cursor.parenthesizedList(allowEmpty: true, maxItems: 16) { (cursor: inout ParserCursor) throws(IMAPParseError) -> String in
                    try cursor.expect(IMAPCharacter.backslash, "a special-use attribute such as \\Drafts")
                    return "\\" + (try atom(&cursor))
                }
            }
        }
        return .create(name, specialUse: uses ?? [])
    }

    /// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`
    /// (RFC 5258 §6), after the name.
    static func list(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPListCommand {
        try cursor.space()
        var isExtended = false
        var selection: [IMAPListSelectionOption] = []
        if cursor.peek() == UInt8(ascii: "(") {
            isExtended = true
            selection = try cursor.parenthesizedList(allowEmpty: true, maxItems: 16) { (cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPListSelectionOption in
                let name = cursor.keyword()
                switch name {
                case "SUBSCRIBED": return .subscribed
                case "REMOTE": return .remote
                case "RECURSIVEMATCH": return .recursiveMatch
                case "SPECIAL-USE": return .specialUse
                case "": throw cursor.syntax("expected a LIST selection option, found \(cursor.upcoming)")
                default: return .other(name)
                }
            }
            // RFC 5258 §3: RECURSIVEMATCH needs another option to qualify (REMOTE does not count).
            if selection.contains(.recursiveMatch),
               !selection.contains(where: { $0 != .recursiveMatch && $0 != .remote }) {
                throw cursor.syntax("RECURSIVEMATCH must be combined with another selection option")
            }
            try cursor.space()
        }
        let reference = try astring(&cursor)
        try cursor.space()
        let patterns: [[UInt8]]
        if cursor.peek() == UInt8(ascii: "(") {
            isExtended = true
            patterns = try cursor.parenthesizedList(allowEmpty: false, maxItems: cursor.limits.maxListItems, listMailbox)
        } else {
            patterns = [try listMailbox(&cursor)]
        }
        var returnOptions: [IMAPListReturnOption] = []
        if cursor.skip(IMAPCharacter.space) {
            isExtended = true
            try cursor.expectKeyword("RETURN")
            try cursor.space()
            returnOptions = try cursor.parenthesizedList(allowEmpty: true, maxItems: 16) { (cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPListReturnOption in
                let name = cursor.keyword()
                switch name {
                case "SUBSCRIBED": return .subscribed
                case "CHILDREN": return .children
                case "SPECIAL-USE": return .specialUse
                case "STATUS":
                    try cursor.space()
                    return .status(try statusAttributeList(&cursor))
                case "": throw cursor.syntax("expected a LIST return option, found \(cursor.upcoming)")
                default: return .other(name)
                }
            }
        }
        return IMAPListCommand(
            selectionOptions: selection, reference: reference, patterns: patterns,
            returnOptions: returnOptions, isExtended: isExtended
        )
    }

    /// `"(" status-att *(SP status-att) ")"`.
    static func statusAttributeList(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [IMAPStatusAttribute] {
        try cursor.parenthesizedList(allowEmpty: false, maxItems: 16) { (cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPStatusAttribute in
            let start = cursor.index
            let name = cursor.keyword()
            guard let attribute = IMAPStatusAttribute(rawValue: name) else {
                cursor.index = start
                throw cursor.syntax("unknown STATUS item \(cursor.upcoming)")
            }
            return attribute
        }
    }

    /// APPEND after the name: `SP mailbox 1*append-message` (RFC 3502 MULTIAPPEND),
    /// `append-message = [SP flag-list] [SP date-time] SP append-data`,
    /// `append-data = literal / literal8 / "UTF8" SP "(" literal8 ")"` (RFC 3516, RFC 6855 §4).
    static func append(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPCommand.Kind {
        try cursor.space()
        let name = try mailbox(&cursor)
        var messages: [IMAPAppendMessage] = []
        while cursor.skip(IMAPCharacter.space) {
            guard messages.count < cursor.limits.maxAppendMessages else {
                throw cursor.limit("more than \(cursor.limits.maxAppendMessages) messages in one APPEND")
            }
            var flags: [IMAPFlag] = []
            if cursor.peek() == UInt8(ascii: "(") {
                flags = try flagList(&cursor)
                try cursor.space()
            }
            var internalDate: IMAPDateTime?
            if cursor.peek() == IMAPCharacter.dquote {
                internalDate = try dateTime(&cursor)
                try cursor.space()
            }
            if cursor.skipKeyword("UTF8") {
                try cursor.space()
                try cursor.expect(UInt8(ascii: "("), "\"(\" after UTF8")
                let data = try literal8(&cursor)
                try cursor.expect(UInt8(ascii: ")"), "\")\" after the UTF8 literal")
                messages.append(IMAPAppendMessage(flags: flags, internalDate: internalDate, data: data, isBinary: true, isUTF8: true))
            } else if cursor.peek() == UInt8(ascii: "~") {
                messages.append(IMAPAppendMessage(flags: flags, internalDate: internalDate, data: try literal8(&cursor), isBinary: true))
            } else if cursor.peek() == UInt8(ascii: "{") {
                messages.append(IMAPAppendMessage(flags: flags, internalDate: internalDate, data: try literal(&cursor)))
            } else {
                throw cursor.syntax("expected the message as a literal, found \(cursor.upcoming)")
            }
        }
        guard !messages.isEmpty else { throw cursor.syntax("APPEND needs a message") }
        return .append(name, messages)
    }
}
