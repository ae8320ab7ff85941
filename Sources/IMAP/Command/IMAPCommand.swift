/// A parsed client command: its tag and what it asks for (RFC 3501, RFC 9051 and the extensions
/// listed on each case).
public struct IMAPCommand: Sendable, Hashable, CustomStringConvertible {
    public var tag: String
    public var kind: Kind

    public init(tag: String, _ kind: Kind) {
        self.tag = tag
        self.kind = kind
    }

    public enum Kind: Sendable, Hashable {
        // Any state (RFC 9051 §6.1).
        case capability
        case noop
        case logout
        /// RFC 2971; nil for `ID NIL`.
        case id([IMAPIDField]?)
        /// RFC 5161; capability names uppercased.
        case enable([String])
        /// RFC 4978; the mechanism uppercased (only DEFLATE is defined).
        case compress(String)

        // Not authenticated (RFC 9051 §6.2).
        case startTLS
        /// Mechanism uppercased; RFC 4959 SASL-IR initial response.
        case authenticate(mechanism: String, initialResponse: IMAPInitialResponse?)
        case login(username: String, password: String)

        // Authenticated (RFC 9051 §6.3).
        case select(IMAPMailboxName, IMAPSelectParameters)
        case examine(IMAPMailboxName, IMAPSelectParameters)
        /// RFC 6154 §3: `CREATE name (USE (\Drafts))`.
        case create(IMAPMailboxName, specialUse: [String])
        case delete(IMAPMailboxName)
        case rename(from: IMAPMailboxName, to: IMAPMailboxName)
        case subscribe(IMAPMailboxName)
        case unsubscribe(IMAPMailboxName)
        case list(IMAPListCommand)
        case lsub(reference: [UInt8], pattern: [UInt8])
        case namespace
        case status(IMAPMailboxName, [IMAPStatusAttribute])
        /// One message, or several with MULTIAPPEND (RFC 3502).
        case append(IMAPMailboxName, [IMAPAppendMessage])
        /// RFC 2177; the session then reads `DONE` with `IMAPCommandParser.parseIdleDone`.
        case idle
        /// RFC 9208.
        case getQuota(root: [UInt8])
        case getQuotaRoot(IMAPMailboxName)
        case setQuota(root: [UInt8], [IMAPQuotaLimit])

        // Selected (RFC 9051 §6.4).
        case check
        case close
        case unselect
        case expunge
        /// RFC 4315 / RFC 9051 §6.4.9.
        case uidExpunge(IMAPSequenceSet)
        case search(IMAPSearchCommand)
        case fetch(IMAPFetchCommand)
        case store(IMAPStoreCommand)
        case copy(IMAPSequenceSet, to: IMAPMailboxName, byUID: Bool)
        /// RFC 6851.
        case move(IMAPSequenceSet, to: IMAPMailboxName, byUID: Bool)
        /// RFC 5256.
        case sort(IMAPSortCommand)
        case thread(IMAPThreadCommand)

        /// A command name this server does not know (uppercased, `UID ` kept); answer `BAD`.
        case unknown(String)
    }

    /// For logs: credentials and message bodies never appear (STYLE.md §9).
    public var description: String {
        switch kind {
        case .login(let username, _):
            return "\(tag) LOGIN \(username) <redacted>"
        case .authenticate(let mechanism, let initial):
            return "\(tag) AUTHENTICATE \(mechanism)\(initial == nil ? "" : " <redacted>")"
        case .append(let mailbox, let messages):
            return "\(tag) APPEND \(mailbox) (\(messages.count) message(s), \(messages.reduce(0) { $0 + $1.data.count }) octets)"
        default:
            return "\(tag) \(kind)"
        }
    }
}

/// RFC 4959 SASL-IR: `=` stands for an empty initial response.
public enum IMAPInitialResponse: Sendable, Hashable {
    case empty
    /// Base64 as sent; decode with `IMAPBase64.decode`.
    case base64(String)
}

public struct IMAPIDField: Sendable, Hashable {
    public var key: String
    public var value: String?

    public init(_ key: String, _ value: String?) {
        self.key = key
        self.value = value
    }
}

/// SELECT/EXAMINE parameters (RFC 4466 §2.1, RFC 7162 §3.1.8 and §3.2.5).
public struct IMAPSelectParameters: Sendable, Hashable {
    public var condStore: Bool
    public var qresync: IMAPQResyncParameters?

    public init(condStore: Bool = false, qresync: IMAPQResyncParameters? = nil) {
        self.condStore = condStore
        self.qresync = qresync
    }
}

/// RFC 7162 §3.2.5: `QRESYNC (uidvalidity modseq [known-uids [(known-seqs known-uids)]])`.
public struct IMAPQResyncParameters: Sendable, Hashable {
    public var uidValidity: UInt32
    public var modSeq: UInt64
    public var knownUIDs: IMAPSequenceSet?
    public var sequenceMatch: IMAPSequenceMatch?

    public init(uidValidity: UInt32, modSeq: UInt64, knownUIDs: IMAPSequenceSet? = nil, sequenceMatch: IMAPSequenceMatch? = nil) {
        self.uidValidity = uidValidity
        self.modSeq = modSeq
        self.knownUIDs = knownUIDs
        self.sequenceMatch = sequenceMatch
    }
}

public struct IMAPSequenceMatch: Sendable, Hashable {
    public var sequenceNumbers: IMAPSequenceSet
    public var uids: IMAPSequenceSet

    public init(sequenceNumbers: IMAPSequenceSet, uids: IMAPSequenceSet) {
        self.sequenceNumbers = sequenceNumbers
        self.uids = uids
    }
}

/// LIST, with the RFC 5258 LIST-EXTENDED additions.
public struct IMAPListCommand: Sendable, Hashable {
    public var selectionOptions: [IMAPListSelectionOption]
    /// The reference name as sent (`""` is common).
    public var reference: [UInt8]
    /// One or more list-mailbox patterns with `*` and `%` wildcards, as sent.
    public var patterns: [[UInt8]]
    public var returnOptions: [IMAPListReturnOption]
    /// Selection options, a parenthesised pattern list or RETURN were used: RFC 5258 §3
    /// extended semantics apply (for instance no `\Noselect` placeholders for missing parents).
    public var isExtended: Bool

    public init(
        selectionOptions: [IMAPListSelectionOption] = [], reference: [UInt8], patterns: [[UInt8]],
        returnOptions: [IMAPListReturnOption] = [], isExtended: Bool = false
    ) {
        self.selectionOptions = selectionOptions
        self.reference = reference
        self.patterns = patterns
        self.returnOptions = returnOptions
        self.isExtended = isExtended
    }
}

public enum IMAPListSelectionOption: Sendable, Hashable {
    case subscribed
    case remote
    case recursiveMatch
    /// RFC 6154 §5.
    case specialUse
    /// Unknown option, uppercased: RFC 5258 §3 asks the server to reject the command.
    case other(String)
}

public enum IMAPListReturnOption: Sendable, Hashable {
    case subscribed
    case children
    /// RFC 6154 §5.
    case specialUse
    /// RFC 5819.
    case status([IMAPStatusAttribute])
    case other(String)
}

public enum IMAPStatusAttribute: String, Sendable, Hashable, CaseIterable {
    case messages = "MESSAGES"
    case uidNext = "UIDNEXT"
    case uidValidity = "UIDVALIDITY"
    case unseen = "UNSEEN"
    case deleted = "DELETED"
    case size = "SIZE"
    case recent = "RECENT"
    /// RFC 7162 §3.1.6.
    case highestModSeq = "HIGHESTMODSEQ"
    /// RFC 7889.
    case appendLimit = "APPENDLIMIT"
}

public struct IMAPAppendMessage: Sendable, Hashable {
    public var flags: [IMAPFlag]
    public var internalDate: IMAPDateTime?
    public var data: [UInt8]
    /// Sent as literal8 (`~{n}`, RFC 3516): may contain NUL and binary content.
    public var isBinary: Bool
    /// Sent as `UTF8 (~{n})` (RFC 6855 §4): the message may have UTF-8 headers.
    public var isUTF8: Bool

    public init(flags: [IMAPFlag] = [], internalDate: IMAPDateTime? = nil, data: [UInt8], isBinary: Bool = false, isUTF8: Bool = false) {
        self.flags = flags
        self.internalDate = internalDate
        self.data = data
        self.isBinary = isBinary
        self.isUTF8 = isUTF8
    }
}

public struct IMAPQuotaLimit: Sendable, Hashable {
    /// Resource name uppercased (STORAGE, MESSAGE, ...).
    public var resource: String
    public var limit: UInt64

    public init(_ resource: String, _ limit: UInt64) {
        self.resource = resource
        self.limit = limit
    }
}

public struct IMAPSearchCommand: Sendable, Hashable {
    public var byUID: Bool
    /// Uppercased; only UTF-8 and US-ASCII get this far (others fail with `.unsupportedCharset`).
    public var charset: String?
    /// RFC 4731 ESEARCH: nil without RETURN (answer with `* SEARCH`); `RETURN ()` means `[.all]`.
    public var returnOptions: [IMAPSearchReturnOption]?
    /// Several top-level keys are an implicit `.and`.
    public var key: IMAPSearchKey

    public init(byUID: Bool = false, charset: String? = nil, returnOptions: [IMAPSearchReturnOption]? = nil, key: IMAPSearchKey) {
        self.byUID = byUID
        self.charset = charset
        self.returnOptions = returnOptions
        self.key = key
    }
}

public enum IMAPSearchReturnOption: String, Sendable, Hashable {
    case min = "MIN"
    case max = "MAX"
    case all = "ALL"
    case count = "COUNT"
    /// RFC 5182 SEARCHRES.
    case save = "SAVE"
}

public struct IMAPFetchCommand: Sendable, Hashable {
    public var byUID: Bool
    public var sequenceSet: IMAPSequenceSet
    /// The macros ALL, FAST and FULL are expanded here.
    public var attributes: [IMAPFetchAttribute]
    /// RFC 7162 §3.1.4.1.
    public var changedSince: UInt64?
    /// RFC 7162 §3.2.6 (UID FETCH only; the session checks).
    public var vanished: Bool

    public init(byUID: Bool = false, sequenceSet: IMAPSequenceSet, attributes: [IMAPFetchAttribute], changedSince: UInt64? = nil, vanished: Bool = false) {
        self.byUID = byUID
        self.sequenceSet = sequenceSet
        self.attributes = attributes
        self.changedSince = changedSince
        self.vanished = vanished
    }
}

public struct IMAPStoreCommand: Sendable, Hashable {
    public enum Operation: Sendable, Hashable {
        case replace
        case add
        case remove
    }

    public var byUID: Bool
    public var sequenceSet: IMAPSequenceSet
    /// RFC 7162 §3.1.3.
    public var unchangedSince: UInt64?
    public var operation: Operation
    public var silent: Bool
    public var flags: [IMAPFlag]

    public init(byUID: Bool = false, sequenceSet: IMAPSequenceSet, unchangedSince: UInt64? = nil, operation: Operation, silent: Bool = false, flags: [IMAPFlag]) {
        self.byUID = byUID
        self.sequenceSet = sequenceSet
        self.unchangedSince = unchangedSince
        self.operation = operation
        self.silent = silent
        self.flags = flags
    }
}

/// RFC 5256 §3 sort keys, with RFC 5957 DISPLAYFROM/DISPLAYTO.
public enum IMAPSortKey: String, Sendable, Hashable {
    case arrival = "ARRIVAL"
    case cc = "CC"
    case date = "DATE"
    case from = "FROM"
    case size = "SIZE"
    case subject = "SUBJECT"
    case to = "TO"
    case displayFrom = "DISPLAYFROM"
    case displayTo = "DISPLAYTO"
}

public struct IMAPSortCriterion: Sendable, Hashable {
    public var reverse: Bool
    public var key: IMAPSortKey

    public init(_ key: IMAPSortKey, reverse: Bool = false) {
        self.key = key
        self.reverse = reverse
    }
}

public struct IMAPSortCommand: Sendable, Hashable {
    public var byUID: Bool
    public var criteria: [IMAPSortCriterion]
    public var charset: String
    public var key: IMAPSearchKey

    public init(byUID: Bool = false, criteria: [IMAPSortCriterion], charset: String, key: IMAPSearchKey) {
        self.byUID = byUID
        self.criteria = criteria
        self.charset = charset
        self.key = key
    }
}

public enum IMAPThreadAlgorithm: Sendable, Hashable {
    case orderedSubject
    case references
    /// Uppercased; the session answers `NO` for algorithms it does not advertise.
    case other(String)
}

public struct IMAPThreadCommand: Sendable, Hashable {
    public var byUID: Bool
    public var algorithm: IMAPThreadAlgorithm
    public var charset: String
    public var key: IMAPSearchKey

    public init(byUID: Bool = false, algorithm: IMAPThreadAlgorithm, charset: String, key: IMAPSearchKey) {
        self.byUID = byUID
        self.algorithm = algorithm
        self.charset = charset
        self.key = key
    }
}
