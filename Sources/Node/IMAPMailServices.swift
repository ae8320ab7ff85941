import Directory
import IMAP
import MailMessage
import MessageCache
import Metrics
import NIOPosix
import SharedTree

/// IMAP's view of the node: connection accounting and limits shared with SMTP and POP3,
/// authentication against LDAP (shared failure delay and lockout), the user's store on the
/// shared tree, and the file threads for blocking store calls.
final class IMAPMailServices: IMAPServices {
    let mail: MailServices
    let searchIndex: (any IMAPSearchIndex)?
    let summaryCache: (any IMAPSummaryCache)?
    /// Authenticated IMAP connections per user on this node (svcpkgMaxConnectionsPerUser).
    let userConnections = ConnectionCounter()

    init(mail: MailServices, messageCache: MessageCache?) {
        self.mail = mail
        self.searchIndex = messageCache.map { MessageCacheSearchIndex(cache: $0, fileThreads: mail.fileThreads, logger: mail.logger) }
        self.summaryCache = messageCache.map { MessageCacheSummaries(cache: $0) }
    }

    func connectionOpened(_ context: IMAPConnectionContext) -> String? {
        guard mail.connections.open(context.remoteAddress, limit: mail.runtime.snapshot.nodeConfig.maxConnectionsPerIP) else {
            Counter(label: "svcpkg_imap_refused_total", dimensions: [("reason", "connections_per_ip")]).increment()
            return "Too many connections from your address, try again later"
        }
        mail.runtime.connectionOpened()
        return nil
    }

    func connectionClosed(_ context: IMAPConnectionContext) {
        mail.connections.close(context.remoteAddress)
        mail.runtime.connectionClosed()
    }

    func authenticate(user: String, password: String, context: IMAPConnectionContext) async -> IMAPAuthResult {
        switch await mail.checkCredentials(user: user, password: password, remoteAddress: context.remoteAddress, protocolName: "imap") {
        case .ok(let account):
            guard userConnections.open(account.address.lowercased(), limit: mail.runtime.snapshot.nodeConfig.maxConnectionsPerUser) else {
                Counter(label: "svcpkg_imap_refused_total", dimensions: [("reason", "connections_per_user")]).increment()
                return .overLimit
            }
            do {
                return .ok(IMAPAccount(address: account.address, store: try mail.mailStore(account.address), quotaBytes: account.quotaBytes))
            } catch {
                mail.logger.error("IMAP login: no store for the account", metadata: ["user": "\(account.address)", "error": "\(error)"])
                userConnections.close(account.address.lowercased())
                return .refused
            }
        case .invalid: return .invalid
        case .refused: return .refused
        }
    }

    func sessionEnded(user: String, context: IMAPConnectionContext) {
        userConnections.close(user.lowercased())
    }

    func blocking<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await mail.fileThreads.runIfActive(work)
    }
}

/// IMAP's ENVELOPE/BODYSTRUCTURE cache is the node-local message cache.
struct MessageCacheSummaries: IMAPSummaryCache {
    let cache: MessageCache

    func summaries(user: String, folder: String, uidValidity: UInt32, uids: [UInt32]) throws -> [UInt32: ParsedSummary] {
        try cache.summaries(user: user, folder: folder, uidValidity: uidValidity, uids: uids)
    }

    func storeSummaries(user: String, folder: String, uidValidity: UInt32, _ summaries: [UInt32: ParsedSummary]) throws {
        try cache.storeSummaries(user: user, folder: folder, uidValidity: uidValidity, summaries)
    }
}
