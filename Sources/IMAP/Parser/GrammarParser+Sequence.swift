extension GrammarParser {
    /// `seq-number = nz-number / "*"`.
    static func sequenceNumber(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSequenceNumber {
        if cursor.skip(UInt8(ascii: "*")) { return .last }
        return .number(try nzNumber(&cursor))
    }

    /// `seq-range = seq-number ":" seq-number`, or a lone seq-number.
    static func sequenceRange(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSequenceRange {
        let first = try sequenceNumber(&cursor)
        guard cursor.skip(UInt8(ascii: ":")) else { return IMAPSequenceRange(first, first) }
        return IMAPSequenceRange(first, try sequenceNumber(&cursor))
    }

    /// `sequence-set = (seq-number / seq-range) ["," sequence-set]`, or `$` alone (RFC 5182).
    static func sequenceSet(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSequenceSet {
        if cursor.skip(UInt8(ascii: "$")) {
            if let next = cursor.peek(), next == UInt8(ascii: ",") || next == UInt8(ascii: ":") || IMAPCharacter.isAtomChar(next) {
                throw cursor.syntax("\"$\" stands alone and cannot be combined with other numbers")
            }
            return .lastSearchResult
        }
        var ranges: [IMAPSequenceRange] = []
        repeat {
            guard ranges.count < cursor.limits.maxSequenceSetRanges else {
                throw cursor.limit("more than \(cursor.limits.maxSequenceSetRanges) ranges in a sequence set")
            }
            ranges.append(try sequenceRange(&cursor))
        } while cursor.skip(UInt8(ascii: ","))
        return .ranges(ranges)
    }

    /// A sequence set of UIDs the client claims to know (RFC 7162 §3.2.5): no `*`, no `$`.
    static func knownUIDSet(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSequenceSet {
        let start = cursor.index
        let set = try sequenceSet(&cursor)
        guard set != .lastSearchResult, !set.containsLast else {
            cursor.index = start
            throw cursor.syntax("\"*\" and \"$\" are not allowed in known UIDs")
        }
        return set
    }
}

// MARK: - Dates

extension GrammarParser {
    /// `date-month`, case-insensitively.
    static func dateMonth(_ cursor: inout ParserCursor) throws(IMAPParseError) -> Int {
        for (offset, name) in IMAPDate.monthNames.enumerated() where cursor.skipKeyword(name.uppercased(), notFollowedBy: IMAPCharacter.isAlpha) {
            return offset + 1
        }
        throw cursor.syntax("expected a month name (Jan...Dec), found \(cursor.upcoming)")
    }

    private static func fixedDigits(_ cursor: inout ParserCursor, count: Int, what: String) throws(IMAPParseError) -> Int {
        var value = 0
        for _ in 0..<count {
            guard let byte = cursor.peek(), IMAPCharacter.isDigit(byte) else {
                throw cursor.syntax("expected \(count) digits of \(what), found \(cursor.upcoming)")
            }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            cursor.index += 1
        }
        return value
    }

    /// `date-text = date-day "-" date-month "-" date-year`, date-day being 1 or 2 digits.
    static func dateText(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPDate {
        let start = cursor.index
        var day = try fixedDigits(&cursor, count: 1, what: "the day")
        if let byte = cursor.peek(), IMAPCharacter.isDigit(byte) {
            day = day * 10 + Int(byte - UInt8(ascii: "0"))
            cursor.index += 1
        }
        try cursor.expect(UInt8(ascii: "-"), "\"-\" in a date")
        let month = try dateMonth(&cursor)
        try cursor.expect(UInt8(ascii: "-"), "\"-\" in a date")
        let year = try fixedDigits(&cursor, count: 4, what: "the year")
        guard let date = IMAPDate(year: year, month: month, day: day) else {
            cursor.index = start
            throw cursor.syntax("no such date")
        }
        return date
    }

    /// `date = date-text / DQUOTE date-text DQUOTE`.
    static func date(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPDate {
        let quoted = cursor.skip(IMAPCharacter.dquote)
        let date = try dateText(&cursor)
        if quoted {
            try cursor.expect(IMAPCharacter.dquote, "closing quote of the date")
        }
        return date
    }

    /// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`.
    /// date-day-fixed is `SP DIGIT / 2DIGIT`; a single digit without the space is tolerated.
    static func dateTime(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPDateTime {
        let start = cursor.index
        try cursor.expect(IMAPCharacter.dquote, "a date-time")
        _ = cursor.skip(IMAPCharacter.space)
        var day = try fixedDigits(&cursor, count: 1, what: "the day")
        if let byte = cursor.peek(), IMAPCharacter.isDigit(byte) {
            day = day * 10 + Int(byte - UInt8(ascii: "0"))
            cursor.index += 1
        }
        try cursor.expect(UInt8(ascii: "-"), "\"-\" in a date-time")
        let month = try dateMonth(&cursor)
        try cursor.expect(UInt8(ascii: "-"), "\"-\" in a date-time")
        let year = try fixedDigits(&cursor, count: 4, what: "the year")
        try cursor.space()
        let hour = try fixedDigits(&cursor, count: 2, what: "the hour")
        try cursor.expect(UInt8(ascii: ":"), "\":\" in the time")
        let minute = try fixedDigits(&cursor, count: 2, what: "the minutes")
        try cursor.expect(UInt8(ascii: ":"), "\":\" in the time")
        let second = try fixedDigits(&cursor, count: 2, what: "the seconds")
        try cursor.space()
        let sign: Int
        if cursor.skip(UInt8(ascii: "+")) {
            sign = 1
        } else if cursor.skip(UInt8(ascii: "-")) {
            sign = -1
        } else {
            throw cursor.syntax("expected a zone (+hhmm or -hhmm), found \(cursor.upcoming)")
        }
        let zoneHours = try fixedDigits(&cursor, count: 2, what: "the zone")
        let zoneMinutes = try fixedDigits(&cursor, count: 2, what: "the zone")
        try cursor.expect(IMAPCharacter.dquote, "closing quote of the date-time")
        guard zoneMinutes < 60,
              let date = IMAPDate(year: year, month: month, day: day),
              let dateTime = IMAPDateTime(date: date, hour: hour, minute: minute, second: second, zoneMinutes: sign * (zoneHours * 60 + zoneMinutes))
        else {
            cursor.index = start
            throw cursor.syntax("no such date and time")
        }
        return dateTime
    }
}
