import Directory
import Foundation
import MailMessage
import MessageCache
import Metrics
import NIOPosix
import SharedTree
import Web

/// Web-mail's view of the node: LOGIN against LDAP with the shared failure limiter, the
/// user's store, the submission queue for sending, the node-local message cache for the
/// list view and search, and the file threads for blocking calls.
final class WebMailServices: WebServices {
    /// Messages larger than this are summarised from their first bytes and not indexed here
    /// (the search index reads them when a search needs them).
    static let maxIndexedOnListBytes = 4 << 20
    static let summaryPrefixBytes = 64 * 1024

    let mail: MailServices
    let cache: MessageCache?
    let searchIndex: MessageCacheSearchIndex?

    init(mail: MailServices, messageCache: MessageCache?) {
        self.mail = mail
        self.cache = messageCache
        self.searchIndex = messageCache.map { MessageCacheSearchIndex(cache: $0, fileThreads: mail.fileThreads, logger: mail.logger) }
    }

    var settings: WebSettings {
        let config = mail.runtime.snapshot.nodeConfig
        return WebSettings(
            enabled: config.modules.contains(.web), sessionKey: config.webSessionKey, sessionLifetime: config.webSessionLifetime, maxMessageSize: config.maxMessageSize,
            secureCookies: false, pollInterval: Double(config.imapPollInterval) / 1000, nodeName: config.nodeName)
    }

    func authenticate(user: String, password: String, remoteAddress: String) async -> WebLoginResult {
        switch await mail.checkCredentials(user: user, password: password, remoteAddress: remoteAddress, protocolName: "web") {
        case .ok(let account): return .ok(address: account.address)
        case .invalid: return .invalid
        case .refused: return .refused
        }
    }

    func mailStore(for address: String) throws -> MailStore { try mail.mailStore(address) }

    func accountIsActive(_ address: String) async -> Bool {
        do {
            return try await mail.account(address)?.active ?? false
        } catch {
            return true  // LDAP unreachable: keep serving (DESIGN.md), as IMAP sessions do
        }
    }

    func identities(of address: String) async -> [String] {
        guard let account = try? await mail.account(address) else { return [address] }
        return [account.address] + account.aliases.filter { $0.lowercased() != account.address.lowercased() }
    }

    /// The submission path of SMTP: sender owned by the user, the per-user message rate, a
    /// trace header, then the shared queue for every recipient (local ones too, as submitted
    /// SMTP mail does).
    func submit(message: [UInt8], sender: String, recipients: [String], user: String, remoteAddress: String) async throws {
        let config = mail.runtime.snapshot.nodeConfig
        guard let account = try await mail.account(user), account.active else { throw WebSubmitError("Your account cannot send mail now.") }
        let owned = Set([account.address.lowercased()] + account.aliases.map { $0.lowercased() })
        guard owned.contains(sender.lowercased()) else {
            Counter(label: "svcpkg_web_refused_total", dimensions: [("reason", "sender_not_owned")]).increment()
            throw WebSubmitError("You cannot send as \(sender).")
        }
        guard recipients.count <= config.maxRecipients else { throw WebSubmitError("At most \(config.maxRecipients) recipients per message.") }
        guard mail.messagesPerUser.take(user.lowercased(), rate: config.messageRatePerUser, period: 3600) else {
            Counter(label: "svcpkg_web_refused_total", dimensions: [("reason", "rate_per_user")]).increment()
            throw WebSubmitError("You have sent too many messages this hour; try again later.")
        }
        let queue = QueueStore(layout: mail.layout, node: mail.nodeName, lockOptions: mail.lockOptions)
        let id = queue.newID()
        let client = TraceHeaders.sanitize(remoteAddress)
        let trace = "Received: from [\(client)]\r\n\tby \(config.hostname) (Service Package) with HTTP web-mail id \(id); \(RFC5322Date.string(Date()))\r\n"
        let bytes = Array(trace.utf8) + message
        let eightBit = message.contains { $0 >= 0x80 }
        _ = try await mail.fileThreads.runIfActive {
            try queue.enqueue(message: bytes, sender: sender, recipients: recipients, authenticatedUser: user, requiresSMTPUTF8: false, eightBit: eightBit)
        }
        Counter(label: "svcpkg_web_messages_sent_total").increment()
    }

    func blocking<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await mail.fileThreads.runIfActive(work)
    }

    func summaries(store: MailStore, folder: MailFolderName, uidValidity: UInt32, messages: [StoredMessage]) throws -> [UInt32: MessageSummary] {
        var result: [UInt32: MessageSummary] = [:]
        var toIndex: [(key: MessageKey, message: [UInt8], internalDate: Date)] = []
        for message in messages {
            let key = MessageKey(user: store.user.address, folder: folder.name, uidValidity: uidValidity, uid: message.uid)
            if let cached = try cache?.cached(key) {
                result[message.uid] = Self.summary(cached)
                continue
            }
            if cache != nil, message.size <= Self.maxIndexedOnListBytes, let bytes = try store.readMessage(message, in: folder) {
                toIndex.append((key, bytes, message.arrivalDate))
            } else if let prefix = try store.readMessagePrefix(message, in: folder, maxBytes: Self.summaryPrefixBytes) {
                result[message.uid] = MessageSummary(header: prefix)
            }
        }
        if let cache, !toIndex.isEmpty {
            for cached in try cache.index(toIndex) { result[cached.key.uid] = Self.summary(cached) }
        }
        return result
    }

    /// The cache keeps the header fields as they are in the message (unfolded); they are
    /// decoded the same way as from the message itself.
    static func summary(_ cached: CachedMessage) -> MessageSummary {
        var header = "Subject: \(cached.subject ?? "")\r\nFrom: \(cached.from ?? "")\r\n"
        let threadFields: [(name: String, value: String?)] = [
            ("Date", cached.date), ("Message-ID", cached.messageID), ("In-Reply-To", cached.inReplyTo), ("References", cached.references),
        ]
        for field in threadFields {
            if let value = field.value { header += "\(field.name): \(value)\r\n" }
        }
        return MessageSummary(header: Array((header + "\r\n").utf8))
    }

    func sortFields(store: MailStore, snapshot: FolderSnapshot) throws -> [UInt32: MessageSummary]? {
        guard let cache, let searchIndex,
            try searchIndex.bringUpToDate(store: store, folder: snapshot.folder, uidValidity: snapshot.uidValidity, messages: snapshot.messages)
        else { return nil }
        let rows = try cache.cachedMessages(user: store.user.address, folder: snapshot.folder.name, uidValidity: snapshot.uidValidity)
        return Dictionary(rows.map { ($0.key.uid, Self.summary($0)) }, uniquingKeysWith: { first, _ in first })
    }

    func search(store: MailStore, snapshot: FolderSnapshot, needle: String) throws -> Set<UInt32>? {
        try searchIndex?.candidates(
            store: store, folder: snapshot.folder, uidValidity: snapshot.uidValidity, needle: needle, bodyOnly: false, messages: snapshot.messages)
    }
}
