/// RFC 9051 §6.4.4 search keys, plus the RFC 3501 ones RFC 9051 dropped (NEW, OLD, RECENT),
/// RFC 7162 §3.1.5 MODSEQ and RFC 5032 OLDER/YOUNGER. String arguments are decoded UTF-8
/// (the only charsets accepted are UTF-8 and its subset US-ASCII).
public indirect enum IMAPSearchKey: Sendable, Hashable {
    case all
    case answered
    case deleted
    case draft
    case flagged
    case new
    case old
    case recent
    case seen
    case unanswered
    case undeleted
    case undraft
    case unflagged
    case unseen
    case keyword(IMAPFlag)
    case unkeyword(IMAPFlag)

    case bcc(String)
    case body(String)
    case cc(String)
    case from(String)
    case subject(String)
    case text(String)
    case to(String)
    /// Field name, then the substring (empty: the field merely exists).
    case header(String, String)

    /// INTERNALDATE, ignoring time and zone (RFC 9051 §6.4.4).
    case before(IMAPDate)
    case on(IMAPDate)
    case since(IMAPDate)
    /// The Date: header field.
    case sentBefore(IMAPDate)
    case sentOn(IMAPDate)
    case sentSince(IMAPDate)
    /// RFC 5032 WITHIN: seconds relative to now.
    case older(UInt32)
    case younger(UInt32)

    case larger(UInt64)
    case smaller(UInt64)

    case uid(IMAPSequenceSet)
    case sequenceNumbers(IMAPSequenceSet)
    case modSeq(IMAPSearchModSeq)

    case not(IMAPSearchKey)
    case or(IMAPSearchKey, IMAPSearchKey)
    /// A parenthesised list or several keys side by side.
    case and([IMAPSearchKey])
}

/// RFC 7162 §3.1.5: `MODSEQ [entry-name entry-type] modseq`.
public struct IMAPSearchModSeq: Sendable, Hashable {
    public enum EntryType: String, Sendable, Hashable {
        case `private` = "PRIV"
        case shared = "SHARED"
        case all = "ALL"
    }

    public var value: UInt64
    /// The metadata entry (`"/flags/\\draft"`), when given; its type is then set too.
    public var entryName: String?
    public var entryType: EntryType?

    public init(_ value: UInt64, entryName: String? = nil, entryType: EntryType? = nil) {
        self.value = value
        self.entryName = entryName
        self.entryType = entryName == nil ? nil : entryType
    }
}
