import Foundation
import MailMessage
import SharedTree

/// What the web-mail needs from the rest of the node. The Node module implements it with the
/// directory (login, identities), the submission queue, the node-local message cache and the
/// node's file threads; the mail itself is the shared-tree `MailStore`, as for IMAP.
public protocol WebServices: Sendable {
    /// Checks a login against LDAP with the node's failure delay and per-address lockout.
    func authenticate(user: String, password: String, remoteAddress: String) async -> WebLoginResult
    /// False when the account was removed or disabled in LDAP since the login (its sessions
    /// end at once); true when the directory cannot answer (the node serves from what it has).
    func accountIsActive(_ address: String) async -> Bool
    /// The store of an authenticated account.
    func mailStore(for address: String) throws -> MailStore
    /// The addresses `address` may send as: the account address first, then its aliases.
    func identities(of address: String) async -> [String]
    /// Queues a composed message for delivery through the submission path (the same queue,
    /// trace header and limits as SMTP submission). `sender` must be one of `identities`.
    func submit(message: [UInt8], sender: String, recipients: [String], user: String, remoteAddress: String) async throws
    /// Runs blocking shared-tree or SQLite work on the node's file threads, never on an event loop.
    func blocking<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result
    /// The list-view facts of messages (subject, from, date) from the node's message cache,
    /// parsing and caching what is missing. Blocking: called inside `blocking`.
    func summaries(store: MailStore, folder: MailFolderName, uidValidity: UInt32, messages: [StoredMessage]) throws -> [UInt32: MessageSummary]
    /// UIDs of messages whose header or body contains `needle`; nil when the index cannot
    /// answer (the caller then scans). Blocking: called inside `blocking`.
    func search(store: MailStore, snapshot: FolderSnapshot, needle: String) throws -> Set<UInt32>?
    /// Subject, sender, Date, Message-ID and References of every message of the folder, for
    /// sorting by them and grouping conversations; nil while the node's cache does not have the
    /// whole folder yet (it is then being indexed).
    /// Blocking: called inside `blocking`.
    func sortFields(store: MailStore, snapshot: FolderSnapshot) throws -> [UInt32: MessageSummary]?
    /// The current settings (cluster key, lifetime, limits); read per request so LDAP changes apply at once.
    var settings: WebSettings { get }
}

public enum WebLoginResult: Sendable, Equatable {
    /// The canonical address (the login may have used an alias).
    case ok(address: String)
    case invalid
    /// Over the failure limit, or the directory could not answer.
    case refused
}

/// What the list view shows of a message besides its flags and arrival date, and what sorting
/// by date and grouping into conversations need of its header.
public struct MessageSummary: Sendable, Equatable {
    public var subject: String
    public var from: String
    /// The Date: field; nil when it is missing or unreadable (the arrival date stands in).
    public var sent: Date?
    /// The first message-id of Message-ID.
    public var messageID: String?
    /// The message-ids of References, else the first of In-Reply-To (RFC 5256 §2.2 step 1).
    public var references: [String]

    public init(subject: String, from: String, sent: Date? = nil, messageID: String? = nil, references: [String] = []) {
        self.subject = subject
        self.from = from
        self.sent = sent
        self.messageID = messageID
        self.references = references
    }

    /// From the message's header (decoded words, first From).
    public init(header message: [UInt8]) {
        let fields = RawHeader.fields(of: message)
        let envelope = Envelope(fields: fields)
        let decoded = envelope.decoded
        subject = decoded.subject ?? ""
        from = MessageSummary.display(decoded.from)
        // The same reading of Date, Message-ID and References as IMAP THREAD's.
        let thread = ThreadFacts(
            number: 0, sequence: 0, arrival: .distantPast, subject: subject, date: envelope.date, messageID: envelope.messageID,
            inReplyTo: envelope.inReplyTo, references: fields.first("References"))
        sent = thread.sent == .distantPast ? nil : thread.sent
        messageID = thread.messageID
        references = thread.references
    }

    static func display(_ entries: [AddressListEntry]) -> String {
        entries.map { entry -> String in
            switch entry {
            case .mailbox(let mailbox):
                if let name = mailbox.displayName, !name.isEmpty { return name }
                return mailbox.address
            case .group(let name, _): return name
            }
        }.joined(separator: ", ")
    }
}

/// Web-mail settings from the effective config.
public struct WebSettings: Sendable {
    /// The `web` module is enabled on this node (svcpkgModule); when not, only /healthz and /metrics answer.
    public var enabled: Bool
    /// The cluster key (32 bytes); nil: login is disabled and the pages say so.
    public var sessionKey: [UInt8]?
    /// Seconds a login lasts.
    public var sessionLifetime: Int
    /// The largest message the user may send (svcpkgMaxMessageSize); uploads are bounded by it.
    public var maxMessageSize: Int
    /// Cookies get `Secure` (the node serves HTTPS, or HAProxy terminates TLS).
    public var secureCookies: Bool
    /// Seconds between looks at the user's INBOX for the live-update stream.
    public var pollInterval: Double
    /// Messages per list page.
    public var pageSize: Int
    /// Sent as `X-Served-By` (which node answered, for operators and the cluster tests).
    public var nodeName: String?

    public init(
        enabled: Bool = true, sessionKey: [UInt8]?, sessionLifetime: Int = 43200, maxMessageSize: Int = 52_428_800, secureCookies: Bool = false,
        pollInterval: Double = 2, pageSize: Int = 50, nodeName: String? = nil
    ) {
        self.enabled = enabled
        self.sessionKey = sessionKey
        self.sessionLifetime = sessionLifetime
        self.maxMessageSize = maxMessageSize
        self.secureCookies = secureCookies
        self.pollInterval = pollInterval
        self.pageSize = pageSize
        self.nodeName = nodeName
    }
}

/// What web chat needs from the node: the IRC session of the chat module (the same session
/// and hub code as a TCP IRC client), run over the browser's WebSocket. The web module owns
/// the upgrade (cookie session, origin) and the frames; the node owns IRC.
public protocol WebChatServices: Sendable {
    /// The `chat` module is enabled on this node (read per request: LDAP changes apply at once).
    var isEnabled: Bool { get }
    /// The WebSocket subprotocol spoken (IRCv3: `text.ircv3.net`).
    var subprotocol: String { get }
    /// The largest text message taken from the browser (the IRC line limit); a larger frame
    /// or message closes the socket (1009).
    var maxMessageBytes: Int { get }
    /// Runs one chat connection of `account`, already authenticated by its web session, until
    /// the client quits or its input ends. `input` carries the browser's text messages (one IRC
    /// line each); `handled` is called after each one. `write` sends lines, one message each.
    /// `admitted` is asked every few seconds: false ends the connection (the web session was
    /// logged out everywhere, expired, or the account was disabled).
    func runChat(
        account: String, remoteAddress: String, input: AsyncStream<String>, handled: @escaping @Sendable () -> Void,
        write: @escaping @Sendable ([String]) async throws -> Void, admitted: @escaping @Sendable () async -> Bool) async
}
