extension GrammarParser {
    /// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    /// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]`, after the command name.
    static func fetch(_ cursor: inout ParserCursor, byUID: Bool) throws(IMAPParseError) -> IMAPFetchCommand {
        try cursor.space()
        let set = try sequenceSet(&cursor)
        try cursor.space()
        let attributes: [IMAPFetchAttribute]
        if cursor.peek() == UInt8(ascii: "(") {
            attributes = try cursor.parenthesizedList(allowEmpty: false, maxItems: cursor.limits.maxFetchAttributes, fetchAttribute)
        } else if cursor.skipKeyword("ALL") {
            attributes = IMAPFetchAttribute.all
        } else if cursor.skipKeyword("FAST") {
            attributes = IMAPFetchAttribute.fast
        } else if cursor.skipKeyword("FULL") {
            attributes = IMAPFetchAttribute.full
        } else {
            attributes = [try fetchAttribute(&cursor)]
        }
        var command = IMAPFetchCommand(byUID: byUID, sequenceSet: set, attributes: attributes)
        if cursor.skip(IMAPCharacter.space) {
            try fetchModifiers(&cursor, into: &command)
        }
        return command
    }

    /// `fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"` (RFC 4466 §2.4):
    /// CHANGEDSINCE and VANISHED (RFC 7162 §3.1.4.1, §3.2.6).
    static func fetchModifiers(_ cursor: inout ParserCursor, into command: inout IMAPFetchCommand) throws(IMAPParseError) {
        var changedSince: UInt64?
        var vanished = false
        _ = try cursor.parenthesizedList(allowEmpty: false, maxItems: 8) { (cursor: inout ParserCursor) throws(IMAPParseError) in
            let name = cursor.keyword()
            switch name {
            case "CHANGEDSINCE" where changedSince == nil:
                try cursor.space()
                // mod-sequence-value is non-zero in RFC 7162, but clients do send 0 meaning "everything".
                changedSince = try number64(&cursor)
            case "VANISHED" where !vanished:
                vanished = true
            default:
                throw cursor.syntax("unknown or repeated FETCH modifier \"\(name.prefix(32))\"")
            }
        }
        guard !vanished || changedSince != nil else {
            throw cursor.syntax("VANISHED requires CHANGEDSINCE (RFC 7162 §3.2.6)")
        }
        command.changedSince = changedSince
        command.vanished = vanished
    }

    /// `fetch-att`.
    static func fetchAttribute(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPFetchAttribute {
        let start = cursor.index
        let name = cursor.keyword()
        switch name {
        case "ENVELOPE": return .envelope
        case "FLAGS": return .flags
        case "INTERNALDATE": return .internalDate
        case "RFC822.SIZE": return .rfc822Size
        case "RFC822": return .rfc822
        case "RFC822.HEADER": return .rfc822Header
        case "RFC822.TEXT": return .rfc822Text
        case "BODYSTRUCTURE": return .bodyStructure
        case "UID": return .uid
        case "MODSEQ": return .modSeq
        case "BODY", "BODY.PEEK":
            let peek = name == "BODY.PEEK"
            guard cursor.peek() == UInt8(ascii: "[") else {
                guard !peek else { throw cursor.syntax("BODY.PEEK needs a section, as in BODY.PEEK[]") }
                return .body
            }
            let section = try self.section(&cursor)
            return .bodySection(section, partial: try partialIfPresent(&cursor), peek: peek)
        case "BINARY", "BINARY.PEEK":
            let part = try sectionBinary(&cursor)
            return .binary(part: part, partial: try partialIfPresent(&cursor), peek: name == "BINARY.PEEK")
        case "BINARY.SIZE":
            return .binarySize(part: try sectionBinary(&cursor))
        default:
            cursor.index = start
            if name.isEmpty { throw cursor.syntax("expected a FETCH item, found \(cursor.upcoming)") }
            throw cursor.syntax("unknown FETCH item \"\(name.prefix(32))\"")
        }
    }

    /// `section = "[" [section-spec] "]"`;
    /// `section-spec = section-msgtext / (section-part ["." section-text])`.
    static func section(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSection {
        try cursor.expect(UInt8(ascii: "["), "\"[\"")
        if cursor.skip(UInt8(ascii: "]")) { return .complete }
        var result = IMAPSection()
        if let byte = cursor.peek(), IMAPCharacter.isDigit(byte) {
            result.part = try sectionPart(&cursor)
            if cursor.skip(UInt8(ascii: ".")) {
                result.text = try sectionText(&cursor, afterPart: true)
            }
        } else {
            result.text = try sectionText(&cursor, afterPart: false)
        }
        try cursor.expect(UInt8(ascii: "]"), "\"]\" closing the section")
        return result
    }

    /// `section-part = nz-number *("." nz-number)`; stops before a `.` that starts section-text.
    static func sectionPart(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [UInt32] {
        var part = [try nzNumber(&cursor)]
        while cursor.peek() == UInt8(ascii: "."), let next = cursor.peek(1), IMAPCharacter.isDigit(next) {
            cursor.index += 1
            guard part.count < cursor.limits.maxNestingDepth else {
                throw cursor.limit("body part nested deeper than \(cursor.limits.maxNestingDepth) levels")
            }
            part.append(try nzNumber(&cursor))
        }
        return part
    }

    /// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`;
    /// after a part number also `"MIME"` (section-text).
    static func sectionText(_ cursor: inout ParserCursor, afterPart: Bool) throws(IMAPParseError) -> IMAPSectionText {
        let start = cursor.index
        let name = cursor.keyword()
        switch name {
        case "HEADER": return .header
        case "TEXT": return .text
        case "MIME" where afterPart: return .mime
        case "HEADER.FIELDS":
            try cursor.space()
            return .headerFields(try headerList(&cursor))
        case "HEADER.FIELDS.NOT":
            try cursor.space()
            return .headerFieldsNot(try headerList(&cursor))
        default:
            cursor.index = start
            throw cursor.syntax("unknown section \"\(name.prefix(32))\"")
        }
    }

    /// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`.
    static func headerList(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [String] {
        try cursor.parenthesizedList(allowEmpty: false, maxItems: cursor.limits.maxListItems, headerFieldName)
    }

    /// `section-binary = "[" [section-part] "]"` (RFC 3516).
    static func sectionBinary(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [UInt32] {
        try cursor.expect(UInt8(ascii: "["), "\"[\" after BINARY")
        if cursor.skip(UInt8(ascii: "]")) { return [] }
        let part = try sectionPart(&cursor)
        try cursor.expect(UInt8(ascii: "]"), "\"]\" closing the binary section")
        return part
    }

    /// `partial = "<" number64 "." nz-number64 ">"`.
    static func partialIfPresent(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPPartial? {
        guard cursor.skip(UInt8(ascii: "<")) else { return nil }
        let offset = try number64(&cursor)
        try cursor.expect(UInt8(ascii: "."), "\".\" in a partial range")
        let length = try nzNumber64(&cursor)
        try cursor.expect(UInt8(ascii: ">"), "\">\" closing a partial range")
        return IMAPPartial(offset: offset, length: length)
    }
}

// MARK: - STORE

extension GrammarParser {
    /// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`, after the name.
    static func store(_ cursor: inout ParserCursor, byUID: Bool) throws(IMAPParseError) -> IMAPStoreCommand {
        try cursor.space()
        let set = try sequenceSet(&cursor)
        try cursor.space()
        var unchangedSince: UInt64?
        if cursor.peek() == UInt8(ascii: "(") {
            // RFC 7162 §3.1.3: `store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer`.
            _ = try cursor.parenthesizedList(allowEmpty: false, maxItems: 8) { (cursor: inout ParserCursor) throws(IMAPParseError) in
                let name = cursor.keyword()
                guard name == "UNCHANGEDSINCE", unchangedSince == nil else {
                    throw cursor.syntax("unknown or repeated STORE modifier \"\(name.prefix(32))\"")
                }
                try cursor.space()
                unchangedSince = try number64(&cursor)
            }
            try cursor.space()
        }
        let operation: IMAPStoreCommand.Operation
        if cursor.skip(UInt8(ascii: "+")) {
            operation = .add
        } else if cursor.skip(UInt8(ascii: "-")) {
            operation = .remove
        } else {
            operation = .replace
        }
        let silent: Bool
        switch cursor.keyword() {
        case "FLAGS": silent = false
        case "FLAGS.SILENT": silent = true
        default: throw cursor.syntax("expected FLAGS, +FLAGS or -FLAGS (optionally .SILENT)")
        }
        try cursor.space()
        let flags: [IMAPFlag]
        if cursor.peek() == UInt8(ascii: "(") {
            flags = try flagList(&cursor)
        } else {
            var list = [try flag(&cursor)]
            while cursor.skip(IMAPCharacter.space) {
                guard list.count < cursor.limits.maxListItems else {
                    throw cursor.limit("more than \(cursor.limits.maxListItems) flags")
                }
                list.append(try flag(&cursor))
            }
            flags = list
        }
        return IMAPStoreCommand(
            byUID: byUID, sequenceSet: set, unchangedSince: unchangedSince,
            operation: operation, silent: silent, flags: flags
        )
    }
}
