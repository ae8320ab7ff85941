import SharedTree

/// What an IMAP session needs from the rest of the node. The Node module implements it with
/// the directory and the node's thread pool; the mail itself is the shared-tree `MailStore`.
public protocol IMAPServices: Sendable {
    /// Connection accounting for load, drain and per-address limits: nil admits the
    /// connection; otherwise the text of the `* BYE` sent instead of the greeting.
    func connectionOpened(_ context: IMAPConnectionContext) -> String?
    /// Follows every admitted connection.
    func connectionClosed(_ context: IMAPConnectionContext)
    /// Checks credentials (LOGIN, AUTHENTICATE PLAIN) with the failure delay and lockout.
    func authenticate(user: String, password: String, context: IMAPConnectionContext) async -> IMAPAuthResult
    /// Follows every successful authentication when the connection ends (per-user accounting).
    func sessionEnded(user: String, context: IMAPConnectionContext)
    /// Runs blocking shared-tree work on the node's file thread pool, never on an event loop.
    func blocking<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result
    /// The node's full-text index for SEARCH BODY/TEXT, if it has one.
    var searchIndex: (any IMAPSearchIndex)? { get }
    /// The node's cache of ENVELOPE and BODYSTRUCTURE, if it has one.
    var summaryCache: (any IMAPSummaryCache)? { get }
}

extension IMAPServices {
    public var searchIndex: (any IMAPSearchIndex)? { nil }
    public var summaryCache: (any IMAPSummaryCache)? { nil }
}

public enum IMAPAuthResult: Sendable {
    case ok(IMAPAccount)
    case invalid
    /// Over the failure limit, or the directory could not answer (`NO [UNAVAILABLE]`).
    case refused
    /// The credentials are right but the user has too many connections (`NO [LIMIT]`).
    case overLimit
}

/// An authenticated user and their store.
public struct IMAPAccount: Sendable {
    /// The canonical address (the login name may have been an alias).
    public var address: String
    public var store: MailStore
    /// RFC 9208 STORAGE limit; nil: none.
    public var quotaBytes: Int64?

    public init(address: String, store: MailStore, quotaBytes: Int64?) {
        self.address = address
        self.store = store
        self.quotaBytes = quotaBytes
    }
}

/// Facts about the connection that services may need (for limits and logs).
public struct IMAPConnectionContext: Sendable {
    public var remoteAddress: String
    public var localAddress: String
    public var sessionID: String
    /// Encrypted at the time of the call (implicit TLS, or after STARTTLS).
    public var tlsActive: Bool

    public init(remoteAddress: String, localAddress: String, sessionID: String, tlsActive: Bool) {
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.sessionID = sessionID
        self.tlsActive = tlsActive
    }
}
