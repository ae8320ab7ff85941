import MailMessage

/// A server response (RFC 9051 §7), encoded by `IMAPResponseEncoder`.
public enum IMAPResponse: Sendable, Hashable {
    /// `tag OK/NO/BAD [code] text`.
    case tagged(tag: String, IMAPStatusResponse)
    case untagged(IMAPUntaggedResponse)
    /// `+ text`: go on (literal, IDLE).
    case continuation(String)
    /// `+ base64`: an AUTHENTICATE challenge (empty data gives `+ `).
    case continuationChallenge([UInt8])
}

public enum IMAPStatus: String, Sendable, Hashable {
    case ok = "OK"
    case no = "NO"
    case bad = "BAD"
    case preauth = "PREAUTH"
    case bye = "BYE"
}

public struct IMAPStatusResponse: Sendable, Hashable {
    public var status: IMAPStatus
    public var code: IMAPResponseCode?
    /// Human-readable; CR, LF and other controls are replaced by spaces when encoded.
    public var text: String

    public init(_ status: IMAPStatus, code: IMAPResponseCode? = nil, _ text: String) {
        self.status = status
        self.code = code
        self.text = text
    }
}

/// RFC 9051 §7.1 response codes, with those of RFC 4315 (UIDPLUS), RFC 7162 (CONDSTORE,
/// QRESYNC), RFC 5530 (the error codes) and RFC 4978 (COMPRESS).
public enum IMAPResponseCode: Sendable, Hashable {
    case alert
    case alreadyExists
    case appendUID(uidValidity: UInt32, uids: IMAPSequenceSet)
    case authenticationFailed
    case authorizationFailed
    case badCharset([String])
    case cannot
    case capability([String])
    case clientBug
    case closed
    case compressionActive
    case contactAdmin
    /// Source UIDs and the destination UIDs they became, pairwise in order (RFC 4315 §3): build
    /// both with `IMAPSequenceSet(preservingOrder:)`.
    case copyUID(uidValidity: UInt32, source: IMAPSequenceSet, destination: IMAPSequenceSet)
    case corruption
    case expired
    case expungeIssued
    case hasChildren
    case highestModSeq(UInt64)
    case inUse
    case limit
    case modified(IMAPSequenceSet)
    case noModSeq
    case noPerm
    case nonexistent
    case notSaved
    case overQuota
    case parse
    case permanentFlags([IMAPFlag])
    case privacyRequired
    case readOnly
    case readWrite
    case serverBug
    case tooBig
    case tryCreate
    case uidNext(UInt32)
    case uidNotSticky
    case uidValidity(UInt32)
    case unavailable
    case unknownCTE
    /// RFC 3501 only (IMAP4rev1 clients).
    case unseen(UInt32)
    case useAttribute
    /// Any other code: an atom and optional text (no `]`).
    case other(String, String?)
}

public enum IMAPUntaggedResponse: Sendable, Hashable {
    /// `* OK/NO/BAD/PREAUTH/BYE [code] text`.
    case status(IMAPStatusResponse)
    case capability([String])
    /// RFC 5161.
    case enabled([String])
    case list(IMAPListResponse)
    case lsub(IMAPListResponse)
    case mailboxStatus(IMAPMailboxName, [IMAPStatusValue])
    case exists(UInt32)
    case recent(UInt32)
    case expunge(UInt32)
    /// RFC 7162 §3.2.10: UIDs; `earlier` for the answer to a QRESYNC or VANISHED fetch.
    case vanished(earlier: Bool, IMAPSequenceSet)
    case flags([IMAPFlag])
    /// `* SEARCH n...` with RFC 7162 `(MODSEQ n)` when the search used MODSEQ.
    case search([UInt32], modSeq: UInt64?)
    /// RFC 4731.
    case esearch(IMAPESearchResponse)
    /// RFC 5256.
    case sort([UInt32], modSeq: UInt64?)
    case thread([IMAPThreadNode])
    case namespace(IMAPNamespaceResponse)
    /// RFC 9208 §5.1.
    case quota(root: [UInt8], [IMAPQuotaResource])
    case quotaRoot(IMAPMailboxName, roots: [[UInt8]])
    /// RFC 2971; nil for `* ID NIL`.
    case id([IMAPIDField]?)
    case fetch(UInt32, [IMAPFetchValue])
}

public struct IMAPListResponse: Sendable, Hashable {
    /// `\HasNoChildren`, `\Noselect`, `\Subscribed`, `\Sent`...
    public var attributes: [String]
    /// The hierarchy delimiter; nil for a flat namespace (`NIL`).
    public var delimiter: Character?
    public var mailbox: IMAPMailboxName
    /// RFC 5258 §6 mbox-list-extended.
    public var extendedItems: [IMAPListExtendedItem]

    public init(attributes: [String], delimiter: Character?, mailbox: IMAPMailboxName, extendedItems: [IMAPListExtendedItem] = []) {
        self.attributes = attributes
        self.delimiter = delimiter
        self.mailbox = mailbox
        self.extendedItems = extendedItems
    }
}

public enum IMAPListExtendedItem: Sendable, Hashable {
    /// RFC 5258 §4: `("CHILDINFO" ("SUBSCRIBED"))`.
    case childInfo([String])
    /// RFC 9051 §6.3.9.7: `("OLDNAME" ("old"))`.
    case oldName(IMAPMailboxName)
}

public struct IMAPStatusValue: Sendable, Hashable {
    public var attribute: IMAPStatusAttribute
    public var value: UInt64

    public init(_ attribute: IMAPStatusAttribute, _ value: UInt64) {
        self.attribute = attribute
        self.value = value
    }
}

/// RFC 4731 §3.1 `* ESEARCH`; items left nil are omitted (ALL is omitted when nothing matched).
public struct IMAPESearchResponse: Sendable, Hashable {
    public var tag: String?
    public var byUID: Bool
    public var min: UInt32?
    public var max: UInt32?
    public var all: IMAPSequenceSet?
    public var count: UInt32?
    public var modSeq: UInt64?

    public init(tag: String?, byUID: Bool, min: UInt32? = nil, max: UInt32? = nil, all: IMAPSequenceSet? = nil, count: UInt32? = nil, modSeq: UInt64? = nil) {
        self.tag = tag
        self.byUID = byUID
        self.min = min
        self.max = max
        self.all = all
        self.count = count
        self.modSeq = modSeq
    }
}

/// One node of a THREAD result (RFC 5256 §4): a message, or a placeholder (`id == nil`) whose
/// children are siblings without a known parent. The tree `MessageThreading` builds.
public typealias IMAPThreadNode = MessageThread

public struct IMAPNamespace: Sendable, Hashable {
    public var prefix: IMAPMailboxName
    public var delimiter: Character?

    public init(prefix: IMAPMailboxName, delimiter: Character?) {
        self.prefix = prefix
        self.delimiter = delimiter
    }
}

public struct IMAPNamespaceResponse: Sendable, Hashable {
    public var personal: [IMAPNamespace]
    public var otherUsers: [IMAPNamespace]
    public var shared: [IMAPNamespace]

    public init(personal: [IMAPNamespace], otherUsers: [IMAPNamespace] = [], shared: [IMAPNamespace] = []) {
        self.personal = personal
        self.otherUsers = otherUsers
        self.shared = shared
    }
}

public struct IMAPQuotaResource: Sendable, Hashable {
    public var name: String
    public var usage: UInt64
    public var limit: UInt64

    public init(_ name: String, usage: UInt64, limit: UInt64) {
        self.name = name
        self.usage = usage
        self.limit = limit
    }
}
