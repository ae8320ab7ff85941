/// Every bound the IMAP framer and parser enforce on client input. Input is hostile: each of
/// these turns into a `BAD`/`NO` (or a closed connection) instead of unbounded memory or time.
/// `NodeConfig` is expected to fill these from LDAP; the defaults are safe on their own.
public struct IMAPLimits: Sendable, Hashable {
    /// One line of a command outside literals, CRLF included. RFC 7162 §4 asks clients to keep
    /// lines under 8192 octets and servers to accept at least that; large UID sets need more.
    public var maxLineLength: Int
    /// Any single literal in a command other than APPEND (LOGIN passwords, SEARCH strings...).
    public var maxLiteralSize: Int
    /// A single message literal in APPEND; the value the server advertises as APPENDLIMIT (RFC 7889).
    public var maxAppendLiteralSize: Int
    /// A whole non-APPEND command, every line segment and literal included.
    public var maxCommandSize: Int
    /// A whole APPEND command: with MULTIAPPEND (RFC 3502) several messages travel in one command.
    public var maxAppendCommandSize: Int
    /// Bytes of an over-long line the framer is willing to read and drop while looking for its
    /// end; a client that keeps streaming without a newline beyond this is disconnected.
    public var maxDiscardedBytes: Int
    /// The command tag.
    public var maxTagLength: Int
    /// Parenthesised lists and NOT/OR chains inside one another (search keys, body sections).
    public var maxNestingDepth: Int
    /// Ranges in one sequence set (`1:3,5,7:*` is three).
    public var maxSequenceSetRanges: Int
    /// Search keys in one SEARCH/SORT/THREAD program, counted over the whole tree.
    public var maxSearchKeys: Int
    /// Items in one FETCH.
    public var maxFetchAttributes: Int
    /// Items in any other list: flags, patterns, header names, capabilities, status items, ID fields.
    public var maxListItems: Int
    /// Messages in one MULTIAPPEND command.
    public var maxAppendMessages: Int

    public init(
        maxLineLength: Int = 65_536,
        maxLiteralSize: Int = 65_536,
        maxAppendLiteralSize: Int = 50 * 1_048_576,
        maxCommandSize: Int = 1_048_576,
        maxAppendCommandSize: Int = 100 * 1_048_576,
        maxDiscardedBytes: Int = 1_048_576,
        maxTagLength: Int = 64,
        maxNestingDepth: Int = 32,
        maxSequenceSetRanges: Int = 10_000,
        maxSearchKeys: Int = 1_000,
        maxFetchAttributes: Int = 128,
        maxListItems: Int = 1_000,
        maxAppendMessages: Int = 1_000
    ) {
        self.maxLineLength = maxLineLength
        self.maxLiteralSize = maxLiteralSize
        self.maxAppendLiteralSize = maxAppendLiteralSize
        self.maxCommandSize = maxCommandSize
        self.maxAppendCommandSize = maxAppendCommandSize
        self.maxDiscardedBytes = maxDiscardedBytes
        self.maxTagLength = maxTagLength
        self.maxNestingDepth = maxNestingDepth
        self.maxSequenceSetRanges = maxSequenceSetRanges
        self.maxSearchKeys = maxSearchKeys
        self.maxFetchAttributes = maxFetchAttributes
        self.maxListItems = maxListItems
        self.maxAppendMessages = maxAppendMessages
    }

    /// RFC 7888 §4: with only LITERAL- advertised, a non-synchronising literal may hold at most 4096 octets.
    public static let literalMinusMaximum = 4096
}

/// Which non-synchronising literal extension the server advertises (RFC 7888).
public enum IMAPLiteralExtension: Sendable, Hashable {
    /// Neither: `{n+}` is still tolerated up to the LITERAL- maximum, since refusing it can only
    /// mean closing the connection.
    case none
    /// LITERAL+: `{n+}` of any size up to the applicable literal limit.
    case literalPlus
    /// LITERAL-: `{n+}` only up to 4096 octets.
    case literalMinus
}
