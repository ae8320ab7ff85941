extension GrammarParser {
    /// `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`.
    /// The tag is returned separately so an error after it can still be answered with it.
    static func commandKind(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPCommand.Kind {
        let nameStart = cursor.index
        let name = cursor.keyword()
        guard let first = name.utf8.first, IMAPCharacter.isAlpha(first) else {
            cursor.index = nameStart
            throw cursor.syntax("expected a command name, found \(cursor.upcoming)")
        }
        guard let next = cursor.peek(), next == IMAPCharacter.space || next == IMAPCharacter.cr || next == IMAPCharacter.lf else {
            cursor.index = nameStart
            throw cursor.syntax("invalid command name \(cursor.upcoming)")
        }
        let kind: IMAPCommand.Kind
        switch name {
        case "CAPABILITY": kind = .capability
        case "NOOP": kind = .noop
        case "LOGOUT": kind = .logout
        case "STARTTLS": kind = .startTLS
        case "NAMESPACE": kind = .namespace
        case "IDLE": kind = .idle
        case "CHECK": kind = .check
        case "CLOSE": kind = .close
        case "UNSELECT": kind = .unselect
        case "EXPUNGE": kind = .expunge
        case "ID": kind = .id(try idParameters(&cursor))
        case "ENABLE": kind = .enable(try atomsToEnd(&cursor, what: "capability"))
        case "COMPRESS":
            try cursor.space()
            kind = .compress(try atom(&cursor).uppercased())
        case "AUTHENTICATE": kind = try authenticate(&cursor)
        case "LOGIN":
            try cursor.space()
            let username = try astringText(&cursor, what: "user name")
            try cursor.space()
            let password = try astringText(&cursor, what: "password")
            kind = .login(username: username, password: password)
        case "SELECT":
            let (mailbox, parameters) = try select(&cursor)
            kind = .select(mailbox, parameters)
        case "EXAMINE":
            let (mailbox, parameters) = try select(&cursor)
            kind = .examine(mailbox, parameters)
        case "CREATE": kind = try create(&cursor)
        case "DELETE": kind = .delete(try spaceMailbox(&cursor))
        case "RENAME":
            let from = try spaceMailbox(&cursor)
            kind = .rename(from: from, to: try spaceMailbox(&cursor))
        case "SUBSCRIBE": kind = .subscribe(try spaceMailbox(&cursor))
        case "UNSUBSCRIBE": kind = .unsubscribe(try spaceMailbox(&cursor))
        case "LIST": kind = .list(try list(&cursor))
        case "LSUB":
            try cursor.space()
            let reference = try astring(&cursor)
            try cursor.space()
            kind = .lsub(reference: reference, pattern: try listMailbox(&cursor))
        case "STATUS":
            let mailbox = try spaceMailbox(&cursor)
            try cursor.space()
            kind = .status(mailbox, try statusAttributeList(&cursor))
        case "APPEND": kind = try append(&cursor)
        case "GETQUOTA":
            try cursor.space()
            kind = .getQuota(root: try astring(&cursor))
        case "GETQUOTAROOT": kind = .getQuotaRoot(try spaceMailbox(&cursor))
        case "SETQUOTA": kind = try setQuota(&cursor)
        case "UID":
            kind = try uidCommand(&cursor)
            if case .unknown = kind { return kind }
        default:
            // Selected-state commands that also exist with the UID prefix.
            if let command = try selectedCommand(name, &cursor, byUID: false) {
                kind = command
            } else {
                return .unknown(String(name.prefix(32)))
            }
        }
        try cursor.lineEnd()
        return kind
    }

    /// SEARCH, FETCH, STORE, COPY, MOVE, SORT, THREAD (and EXPUNGE after UID); nil for other names.
    private static func selectedCommand(_ name: String, _ cursor: inout ParserCursor, byUID: Bool) throws(IMAPParseError) -> IMAPCommand.Kind? {
        switch name {
        case "SEARCH": return .search(try search(&cursor, byUID: byUID))
        case "FETCH": return .fetch(try fetch(&cursor, byUID: byUID))
        case "STORE": return .store(try store(&cursor, byUID: byUID))
        case "COPY", "MOVE":
            try cursor.space()
            let set = try sequenceSet(&cursor)
            let mailbox = try spaceMailbox(&cursor)
            return name == "COPY" ? .copy(set, to: mailbox, byUID: byUID) : .move(set, to: mailbox, byUID: byUID)
        case "SORT": return .sort(try sort(&cursor, byUID: byUID))
        case "THREAD": return .thread(try thread(&cursor, byUID: byUID))
        case "EXPUNGE" where byUID:
            try cursor.space()
            return .uidExpunge(try sequenceSet(&cursor))
        default: return nil
        }
    }

    /// `uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)` plus SORT and THREAD.
    private static func uidCommand(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPCommand.Kind {
        try cursor.space()
        let name = cursor.keyword()
        guard let first = name.utf8.first, IMAPCharacter.isAlpha(first) else {
            throw cursor.syntax("expected a command after UID, found \(cursor.upcoming)")
        }
        guard let kind = try selectedCommand(name, &cursor, byUID: true) else {
            return .unknown("UID " + String(name.prefix(32)))
        }
        return kind
    }

    private static func spaceMailbox(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPMailboxName {
        try cursor.space()
        return try mailbox(&cursor)
    }

    /// `1*(SP atom)`, uppercased (ENABLE capabilities).
    private static func atomsToEnd(_ cursor: inout ParserCursor, what: String) throws(IMAPParseError) -> [String] {
        var atoms: [String] = []
        while cursor.skip(IMAPCharacter.space) {
            guard atoms.count < cursor.limits.maxListItems else {
                throw cursor.limit("more than \(cursor.limits.maxListItems) items")
            }
            atoms.append(try atom(&cursor).uppercased())
        }
        guard !atoms.isEmpty else { throw cursor.syntax("expected at least one \(what)") }
        return atoms
    }

    /// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]`,
    /// `initial-resp = base64 / "="` (RFC 4959).
    private static func authenticate(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPCommand.Kind {
        try cursor.space()
        let mechanism = try atom(&cursor).uppercased()
        guard cursor.skip(IMAPCharacter.space) else {
            return .authenticate(mechanism: mechanism, initialResponse: nil)
        }
        if cursor.skip(UInt8(ascii: "=")) {
            return .authenticate(mechanism: mechanism, initialResponse: .empty)
        }
        return .authenticate(mechanism: mechanism, initialResponse: .base64(try base64(&cursor)))
    }

    /// `base64 = *(4base64-char) [base64-terminal]`, checked to decode.
    static func base64(_ cursor: inout ParserCursor) throws(IMAPParseError) -> String {
        let start = cursor.index
        while let byte = cursor.peek(), IMAPCharacter.isAlpha(byte) || IMAPCharacter.isDigit(byte)
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=") {
            cursor.index += 1
        }
        let bytes = cursor.bytes[start..<cursor.index]
        guard !bytes.isEmpty, IMAPBase64.decode(bytes) != nil else {
            cursor.index = start
            throw cursor.syntax("invalid base64")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// RFC 2971: `id = "ID" SP id-params-list`,
    /// `id-params-list = "(" [string SP nstring *(SP string SP nstring)] ")" / nil`.
    /// §3.3: fields at most 30 octets, values at most 1024, at most 30 pairs.
    private static func idParameters(_ cursor: inout ParserCursor) throws(IMAPParseError) -> [IMAPIDField]? {
        try cursor.space()
        if cursor.skipKeyword("NIL") { return nil }
        return try cursor.parenthesizedList(allowEmpty: true, maxItems: 30) { (cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPIDField in
            let keyBytes = try string(&cursor)
            guard keyBytes.count <= 30 else { throw cursor.limit("ID field name longer than 30 octets") }
            let key = try text(keyBytes, cursor, what: "ID field name")
            try cursor.space()
            guard let valueBytes = try nstring(&cursor) else { return IMAPIDField(key, nil) }
            guard valueBytes.count <= 1024 else { throw cursor.limit("ID value longer than 1024 octets") }
            return IMAPIDField(key, try text(valueBytes, cursor, what: "ID value"))
        }
    }

    /// RFC 9208 §4.1.3: `setquota = "SETQUOTA" SP quota-root-name SP setquota-list`,
    /// `setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"`.
    private static func setQuota(_ cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPCommand.Kind {
        try cursor.space()
        let root = try astring(&cursor)
        try cursor.space()
        let limits = try cursor.parenthesizedList(allowEmpty: true, maxItems: 16) { (cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPQuotaLimit in
            let resource = try atom(&cursor).uppercased()
            try cursor.space()
            return IMAPQuotaLimit(resource, try number64(&cursor))
        }
        return .setQuota(root: root, limits)
    }

    /// `search = "SEARCH" [search-return-opts] SP search-program`.
    static func search(_ cursor: inout ParserCursor, byUID: Bool) throws(IMAPParseError) -> IMAPSearchCommand {
        try cursor.space()
        var returnOptions: [IMAPSearchReturnOption]?
        if cursor.isKeyword("RETURN") {
            returnOptions = try searchReturnOptions(&cursor)
            try cursor.space()
        }
        let (charset, key) = try searchProgram(&cursor)
        return IMAPSearchCommand(byUID: byUID, charset: charset, returnOptions: returnOptions, key: key)
    }

    /// RFC 5256: `sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria`,
    /// `search-criteria = charset 1*(SP search-key)`.
    static func sort(_ cursor: inout ParserCursor, byUID: Bool) throws(IMAPParseError) -> IMAPSortCommand {
        try cursor.space()
        let criteria = try cursor.parenthesizedList(allowEmpty: false, maxItems: 16) { (cursor: inout ParserCursor) throws(IMAPParseError) -> IMAPSortCriterion in
            var reverse = false
            if cursor.skipKeyword("REVERSE") {
                reverse = true
                try cursor.space()
            }
            let start = cursor.index
            let name = cursor.keyword()
            guard let key = IMAPSortKey(rawValue: name) else {
                cursor.index = start
                throw cursor.syntax("unknown sort key \(cursor.upcoming)")
            }
            return IMAPSortCriterion(key, reverse: reverse)
        }
        try cursor.space()
        let charsetName = try charset(&cursor)
        try cursor.space()
        return IMAPSortCommand(byUID: byUID, criteria: criteria, charset: charsetName, key: try searchKeys(&cursor))
    }

    /// RFC 5256: `thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria`.
    static func thread(_ cursor: inout ParserCursor, byUID: Bool) throws(IMAPParseError) -> IMAPThreadCommand {
        try cursor.space()
        let algorithm: IMAPThreadAlgorithm
        switch try atom(&cursor).uppercased() {
        case "ORDEREDSUBJECT": algorithm = .orderedSubject
        case "REFERENCES": algorithm = .references
        case let other: algorithm = .other(String(other.prefix(32)))
        }
        try cursor.space()
        let charsetName = try charset(&cursor)
        try cursor.space()
        return IMAPThreadCommand(byUID: byUID, algorithm: algorithm, charset: charsetName, key: try searchKeys(&cursor))
    }
}
