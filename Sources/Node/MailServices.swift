import DNSClient
import Directory
import Foundation
import Logging
import MailMessage
import MailAuth
import Metrics
import NIOConcurrencyHelpers
import NIOPosix
import SMTP
import SharedTree

/// Where one accepted recipient's copy goes.
enum DeliveryTarget: Sendable, Equatable {
    /// A local mailbox on the shared tree.
    case mailbox(address: String, quotaBytes: Int64?)
    /// Anything else (remote address, forward): the queue.
    case queue(address: String)
}

/// SMTP's view of the node: recipient policy, authentication and storage, on the directory
/// and the shared tree. Blocking file I/O runs on `fileThreads`, never on an event loop.
final class MailServices: SMTPServices {
    let runtime: NodeRuntime
    let directory: DirectoryClient
    let fileThreads: NIOThreadPool
    let logger: Logger
    let authFailures = AuthFailureLimiter()
    let connections = ConnectionCounter()
    let messagesPerIP = RateLimiter()
    let messagesPerUser = RateLimiter()
    let dnsResolvers = DNSResolverCache()
    /// Account lookups (also misses) for a few seconds: a burst of mail to one user costs one
    /// LDAP search, and LDAP changes show within `domainCacheTTL`.
    private let accountCache = NIOLockedValueBox<[String: (account: Account?, fetched: Date)]>([:])
    static let maxCachedAccounts = 10_000
    /// Recipients resolved at RCPT time, per session, so DATA does not ask LDAP again.
    private let acceptedRecipients = NIOLockedValueBox<[String: [String: [DeliveryTarget]]]>([:])
    private let domainCache = NIOLockedValueBox<(domains: [String: MailDomain], fetched: Date)?>(nil)
    static let domainCacheTTL: TimeInterval = 5

    init(runtime: NodeRuntime, directory: DirectoryClient, fileThreads: NIOThreadPool, logger: Logger) {
        self.runtime = runtime
        self.directory = directory
        self.fileThreads = fileThreads
        self.logger = logger
    }

    func connectionOpened(_ context: SMTPConnectionContext) -> SMTPReply? {
        guard connections.open(context.remoteAddress, limit: runtime.snapshot.nodeConfig.maxConnectionsPerIP) else {
            Counter(label: "svcpkg_smtp_refused_total", dimensions: [("reason", "connections_per_ip")]).increment()
            return SMTPReply(421, "4.7.0", "\(runtime.snapshot.nodeConfig.hostname) Too many connections from your address, try again later")
        }
        runtime.connectionOpened()
        return nil
    }

    func connectionClosed(_ context: SMTPConnectionContext) {
        _ = acceptedRecipients.withLockedValue { $0.removeValue(forKey: context.sessionID) }
        connections.close(context.remoteAddress)
        runtime.connectionClosed()
    }

    // MARK: - MAIL

    func checkSender(_ sender: SMTPMailbox?, authenticatedUser: String?, context: SMTPConnectionContext) async -> SMTPReply? {
        let config = runtime.snapshot.nodeConfig
        guard messagesPerIP.take(context.remoteAddress, rate: config.messageRatePerIP, period: 60) else {
            Counter(label: "svcpkg_smtp_refused_total", dimensions: [("reason", "rate_per_ip")]).increment()
            return SMTPReply(450, "4.7.1", "Too many messages from your address, try again later")
        }
        if context.isSubmission, let user = authenticatedUser {
            // The envelope sender must be the user or one of the user's aliases.
            guard await senderBelongs(sender, to: user) else {
                Counter(label: "svcpkg_smtp_refused_total", dimensions: [("reason", "sender_not_owned")]).increment()
                return SMTPReply(553, "5.7.1", "Sender address not owned by \(user)")
            }
            guard messagesPerUser.take(user.lowercased(), rate: config.messageRatePerUser, period: 3600) else {
                Counter(label: "svcpkg_smtp_refused_total", dimensions: [("reason", "rate_per_user")]).increment()
                return SMTPReply(450, "4.7.1", "Too many messages from \(user) this hour, try again later")
            }
        }
        return nil
    }

    var layout: SharedTreeLayout { SharedTreeLayout(root: runtime.snapshot.nodeConfig.sharedRoot) }
    var nodeName: String { runtime.snapshot.config.nodeName }
    var lockOptions: LockOptions {
        LockOptions(staleTimeout: TimeInterval(runtime.snapshot.nodeConfig.lockStaleTimeout), timeout: 30)
    }

    /// The mail store of a local address.
    func mailStore(_ address: String) throws -> MailStore {
        MailStore(layout: layout, user: try MailUser(address: address), node: nodeName, lockOptions: lockOptions)
    }

    /// Local delivery of one copy, marked with its final recipient; `junk` files it in the
    /// user's Junk folder (special-use \\Junk). Blocking: call on `fileThreads`.
    func deliverLocally(_ message: [UInt8], to address: String, quotaBytes: Int64?, junk: Bool = false) throws {
        let store = try mailStore(address)
        let folder = junk ? (try store.ensureDefaultFolders()[.junk] ?? .inbox) : .inbox
        _ = try store.deliver(Array("Delivered-To: \(address)\r\n".utf8) + message, to: folder, quotaBytes: quotaBytes.map { Int($0) })
    }

    /// The resolver for the configured DNS server (svcpkgDnsServer).
    var dns: DNSResolver {
        dnsResolvers.resolver(for: runtime.snapshot.nodeConfig, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
    }

    /// Active local domains, cached a few seconds (one LDAP search per RCPT would be wasteful).
    func localDomains() async throws -> Set<String> {
        Set(try await activeDomains().keys)
    }

    /// Active local domains with their settings (DKIM, inbound policy), same cache.
    func activeDomains() async throws -> [String: MailDomain] {
        if let cached = domainCache.withLockedValue({ $0 }), Date().timeIntervalSince(cached.fetched) < Self.domainCacheTTL {
            return cached.domains
        }
        let domains = Dictionary(try await directory.domains().filter(\.active).map { ($0.name, $0) }) { first, _ in first }
        domainCache.withLockedValue { $0 = (domains, Date()) }
        return domains
    }

    /// Where the queue delivers an address it holds: addresses in the queue are final (aliases,
    /// groups and forwards were expanded when the message was accepted), so a local address is
    /// its own account's mailbox and nothing is expanded twice. Nil: a local address nobody owns.
    func queueTarget(_ address: String) async throws -> DeliveryTarget? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        let domain = address[address.index(after: at)...].lowercased()
        guard try await localDomains().contains(domain) else { return .queue(address: address) }
        guard let normalized = MailAddressText.normalize(address), let account = try await account(normalized) else {
            return nil
        }
        guard account.active else { throw RecipientRefusal(reply: SMTPReply(550, "5.2.1", "\(address): mailbox disabled")) }
        return .mailbox(address: account.address, quotaBytes: account.quotaBytes)
    }

    func account(_ address: String) async throws -> Account? {
        let key = address.lowercased()
        let now = Date()
        if let hit = accountCache.withLockedValue({ $0[key] }), now.timeIntervalSince(hit.fetched) < Self.domainCacheTTL {
            return hit.account
        }
        let account = try await directory.account(address: address)
        accountCache.withLockedValue { cache in
            if cache.count >= Self.maxCachedAccounts {
                cache = cache.filter { now.timeIntervalSince($0.value.fetched) < Self.domainCacheTTL }
                if cache.count >= Self.maxCachedAccounts { cache.removeAll() }
            }
            cache[key] = (account, now)
        }
        return account
    }

    // MARK: - RCPT

    func checkRecipient(_ recipient: SMTPMailbox, context: SMTPConnectionContext) async -> SMTPSession.RecipientVerdict {
        do {
            let targets = try await resolve(recipient, context: context)
            guard let targets else {
                return .reject(SMTPReply(550, "5.1.1", "\(recipient): no such user here"))
            }
            // Over quota is known before the data: refuse temporarily (RFC 3463 4.2.2 mailbox full).
            for case .mailbox(let address, let quota?) in targets {
                let usage = try await fileThreads.runIfActive { try self.mailStore(address).quotaUsage(limit: Int(quota)) }
                if Int64(usage.bytes) >= quota {
                    return .reject(SMTPReply(452, "4.2.2", "\(recipient): mailbox full"))
                }
            }
            let key = recipient.description.lowercased()
            acceptedRecipients.withLockedValue { $0[context.sessionID, default: [:]][key] = targets }
            return .accept
        } catch let refusal as RecipientRefusal {
            return .reject(refusal.reply)
        } catch {
            logger.error("recipient lookup failed", metadata: ["recipient": "\(recipient)", "error": "\(error)"])
            return .reject(SMTPReply(451, "4.3.0", "Temporary lookup failure, try again later"))
        }
    }

    struct RecipientRefusal: Error {
        var reply: SMTPReply
    }

    /// The delivery targets of a recipient, nil when it is a local address nobody owns.
    func resolve(_ recipient: SMTPMailbox, context: SMTPConnectionContext) async throws -> [DeliveryTarget]? {
        let domains = try await localDomains()
        var domain = recipient.domain.lowercased()
        if domain.isEmpty, recipient.localPart.lowercased() == "postmaster" {
            // RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted.
            guard let first = domains.sorted().first else { return nil }
            domain = first
        }
        let address = "\(recipient.localPart)@\(domain)"
        guard domains.contains(domain) else {
            // Never an open relay: only an authenticated submitter may send to other domains.
            guard context.isSubmission else {
                throw RecipientRefusal(reply: SMTPReply(554, "5.7.1", "\(recipient): relay access denied"))
            }
            return [.queue(address: address)]
        }
        guard let normalized = MailAddressText.normalize(address) else {
            throw RecipientRefusal(reply: SMTPReply(553, "5.1.3", "\(recipient): invalid address"))
        }
        if let account = try await account(normalized) {
            guard account.active else {
                throw RecipientRefusal(reply: SMTPReply(550, "5.2.1", "\(recipient): mailbox disabled"))
            }
            var targets: [DeliveryTarget] = account.forwardTo.map { .queue(address: $0) }
            if account.forwardTo.isEmpty || account.keepForwardedCopy {
                targets.append(.mailbox(address: account.address, quotaBytes: account.quotaBytes))
            }
            return targets
        }
        if let members = try await directory.groupMembers(address: normalized) {
            var targets: [DeliveryTarget] = []
            for member in members {
                if let local = try await account(member), local.active {
                    targets.append(.mailbox(address: local.address, quotaBytes: local.quotaBytes))
                } else {
                    targets.append(.queue(address: member))
                }
            }
            return targets
        }
        return nil
    }

    // MARK: - AUTH

    func authenticate(user: String, password: String, context: SMTPConnectionContext) async -> Bool {
        if case .ok = await checkCredentials(user: user, password: password, remoteAddress: context.remoteAddress, protocolName: "smtp") {
            return true
        }
        return false
    }

    enum CredentialCheck {
        case ok(Account)
        case invalid
        /// Over the failure limit, or the directory could not answer.
        case refused
    }

    /// Credentials against LDAP with the failure delay and the per-address lockout
    /// (svcpkgAuthFailureDelay, svcpkgMaxAuthFailures, svcpkgAuthFailureWindow), for every protocol.
    func checkCredentials(user: String, password: String, remoteAddress: String, protocolName: String) async -> CredentialCheck {
        let config = runtime.snapshot.nodeConfig
        let limits = AuthFailureLimiter.Limits(
            delay: Double(config.authFailureDelayMilliseconds) / 1000, maxFailures: config.maxAuthFailures,
            window: TimeInterval(config.authFailureWindow))
        guard authFailures.allows(remoteAddress, limits: limits) else {
            // Refused without asking LDAP: no oracle and no load from a guesser.
            logger.warning("authentication refused: too many failures from this address", metadata: ["user": "\(user)", "protocol": "\(protocolName)"])
            try? await Task.sleep(for: .seconds(limits.delay * 5))
            return .refused
        }
        let account: Account?
        do {
            account = try await directory.authenticate(address: user, password: password)
        } catch DirectoryError.invalidAddress {
            // Not an address at all: a wrong login like any other, not a directory problem.
            account = nil
        } catch {
            logger.error("authentication lookup failed", metadata: ["user": "\(user)", "error": "\(error)"])
            return .refused
        }
        Counter(label: "svcpkg_auth_total", dimensions: [("protocol", protocolName), ("result", account != nil ? "ok" : "failed")]).increment()
        guard let account else {
            let wait = authFailures.recordFailure(remoteAddress, limits: limits)
            try? await Task.sleep(for: .seconds(wait))
            return .invalid
        }
        authFailures.recordSuccess(remoteAddress)
        return .ok(account)
    }

    // MARK: - DATA

    func store(_ transaction: SMTPSession.Transaction, context: SMTPConnectionContext) async -> SMTPReply? {
        let queueID = QueueStore(layout: layout, node: nodeName).newID()
        var targets: [DeliveryTarget] = []
        do {
            // Taken and forgotten: the next transaction's RCPTs fill it again.
            let known = acceptedRecipients.withLockedValue { $0.removeValue(forKey: context.sessionID) ?? [:] }
            for recipient in transaction.recipients {
                if let cached = known[recipient.description.lowercased()] {
                    targets += cached
                } else {
                    targets += try await resolve(recipient, context: context) ?? []
                }
            }
        } catch {
            return SMTPReply(451, "4.3.0", "Temporary lookup failure, try again later")
        }
        let config = runtime.snapshot.nodeConfig
        var body = transaction.message
        var junkDomains: Set<String> = []
        if !context.isSubmission {
            // Mail from outside: SPF, DKIM and DMARC, recorded in Authentication-Results and
            // acted on per the recipient domain's svcpkgInboundAuthPolicy.
            let verdict = await authenticateInbound(transaction, context: context, targets: targets, hostname: config.hostname)
            if let refusal = verdict.refusal { return refusal }
            junkDomains = verdict.junkDomains
            body = Array(verdict.header.utf8) + AuthenticationResultsFilter.removingForged(from: body, authServID: config.hostname)
        }
        let trace = TraceHeaders.make(
            transaction: transaction, context: context, hostname: config.hostname, id: queueID, date: Date())
        let message = Array(trace.utf8) + body
        let sender = transaction.sender?.description ?? ""
        let resolved = targets
        let junkFor = junkDomains
        let (layout, nodeName, lockOptions, logger) = (self.layout, self.nodeName, self.lockOptions, self.logger)
        let services = self
        do {
            try await fileThreads.runIfActive {
                var queued: [String] = []
                for target in resolved {
                    switch target {
                    case .queue(let address):
                        queued.append(address)
                    case .mailbox(let address, let quota):
                        if context.isSubmission {
                            queued.append(address)  // submitted mail goes through the queue
                            continue
                        }
                        do {
                            let junk = junkFor.contains(Self.domain(of: address))
                            try services.deliverLocally(message, to: address, quotaBytes: quota, junk: junk)
                        } catch {
                            // Accepted is accepted: what cannot be stored now waits in the queue.
                            logger.warning("local delivery deferred to the queue", metadata: ["to": "\(address)", "error": "\(error)"])
                            queued.append(address)
                        }
                    }
                }
                if !queued.isEmpty {
                    try QueueStore(layout: layout, node: nodeName, lockOptions: lockOptions)
                        .enqueue(
                            message: message, sender: sender, recipients: queued, authenticatedUser: transaction.authenticatedUser,
                            requiresSMTPUTF8: transaction.requiresSMTPUTF8, eightBit: transaction.eightBit)
                }
            }
        } catch {
            logger.error("cannot store message", metadata: ["error": "\(error)", "id": "\(queueID)"])
            return SMTPReply(451, "4.3.0", "Cannot store the message now, try again later")
        }
        Counter(label: "svcpkg_smtp_messages_accepted_total", dimensions: [("port", context.isSubmission ? "submission" : "mx")]).increment()
        logger.info("message accepted", metadata: [
            "id": "\(queueID)", "from": "\(sender)", "recipients": "\(transaction.recipients.count)", "size": "\(message.count)",
        ])
        return nil
    }

    struct InboundVerdict {
        var header: String
        var refusal: SMTPReply?
        /// Recipient domains whose copies go to Junk.
        var junkDomains: Set<String>
    }

    /// RFC 7489 §6.6: the receiver applies the sender domain's DMARC policy, bounded here by
    /// what each recipient domain allows (svcpkgInboundAuthPolicy).
    func authenticateInbound(
        _ transaction: SMTPSession.Transaction, context: SMTPConnectionContext, targets: [DeliveryTarget], hostname: String
    ) async -> InboundVerdict {
        let authenticator = MailAuthenticator(resolver: MailAuthDNS(resolver: dns))
        let report = await authenticator.authenticate(
            message: transaction.message, clientIP: context.remoteAddress, helo: transaction.clientName,
            mailFrom: transaction.sender?.description ?? "")
        let header = report.authenticationResultsHeader(authServID: hostname)
        Counter(label: "svcpkg_smtp_dmarc_total", dimensions: [("result", "\(report.dmarc.result)")]).increment()
        guard report.dmarc.result == .fail, report.dmarc.policy != .none else {
            return InboundVerdict(header: header, refusal: nil, junkDomains: [])
        }
        let domains = (try? await activeDomains()) ?? [:]
        let recipientDomains = Set(targets.compactMap { target -> String? in
            if case .mailbox(let address, _) = target { return Self.domain(of: address) }
            return nil
        })
        let policies = recipientDomains.map { domains[$0]?.inboundAuthPolicy ?? .reject }
        if report.dmarc.policy == .reject, !policies.isEmpty, policies.allSatisfy({ $0 == .reject }) {
            let author = report.dmarc.fromDomain.isEmpty ? "the sender domain" : report.dmarc.fromDomain
            logger.notice("message refused by DMARC policy", metadata: ["from": "\(author)"])
            return InboundVerdict(
                header: header,
                refusal: SMTPReply(550, "5.7.1", "Rejected by the DMARC policy of \(author)"),
                junkDomains: [])
        }
        let junk = recipientDomains.filter { (domains[$0]?.inboundAuthPolicy ?? .reject) != .none }
        return InboundVerdict(header: header, refusal: nil, junkDomains: junk)
    }

    static func domain(of address: String) -> String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return address[address.index(after: at)...].lowercased()
    }

    func senderBelongs(_ sender: SMTPMailbox?, to user: String) async -> Bool {
        guard let sender else { return false }
        guard let account = try? await account(user) else { return false }
        let address = sender.description.lowercased()
        return account.address == address || account.aliases.contains(address)
    }
}

/// RFC 5321 §4.4: the Return-Path and Received trace fields a receiving server adds.
enum TraceHeaders {
    static func make(transaction: SMTPSession.Transaction, context: SMTPConnectionContext, hostname: String, id: String, date: Date) -> String {
        // RFC 3848 protocol names: ESMTPSA = with TLS and AUTH.
        let with = "ESMTP" + (transaction.usedTLS ? "S" : "") + (transaction.authenticatedUser != nil ? "A" : "")
        let helo = sanitize(transaction.clientName)
        var received = "Received: from \(helo) ([\(context.remoteAddress)])\r\n\tby \(hostname) (Service Package) with \(with) id \(id)"
        if transaction.recipients.count == 1, let only = transaction.recipients.first {
            received += "\r\n\tfor <\(sanitize(only.description))>"
        }
        received += "; \(rfc5322Date(date))\r\n"
        let returnPath = "Return-Path: <\(sanitize(transaction.sender?.description ?? ""))>\r\n"
        return returnPath + received
    }

    /// Envelope data is client-controlled: nothing but printable text reaches a header
    /// (no CR/LF header injection; the parser already refuses control characters).
    static func sanitize(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f }.prefix(255).map(Character.init))
    }

    static func rfc5322Date(_ date: Date) -> String { RFC5322Date.string(date) }
}

/// RFC 8601 §5: a receiver removes Authentication-Results fields that claim to come from its
/// own authserv-id before adding its own, so a sender cannot forge our verdict.
enum AuthenticationResultsFilter {
    static func removingForged(from message: [UInt8], authServID: String) -> [UInt8] {
        let name = Array("authentication-results:".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(message.count)
        var index = 0
        var dropping = false
        while index < message.count {
            var end = index
            while end < message.count && message[end] != 10 { end += 1 }
            let lineEnd = min(end + 1, message.count)
            let line = message[index..<lineEnd]
            let content = line.filter { $0 != 13 && $0 != 10 }
            if content.isEmpty {
                output += message[index...]  // the blank line and the body, untouched
                return output
            }
            let continuation = content.first == 32 || content.first == 9
            if !continuation {
                dropping = false
                if content.count > name.count, zip(content.prefix(name.count), name).allSatisfy({ $0 | 0x20 == $1 }) {
                    let value = String(decoding: content.dropFirst(name.count), as: UTF8.self)
                    let id = value.split(separator: ";", maxSplits: 1).first.map {
                        $0.trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init) ?? ""
                    } ?? ""
                    dropping = id.lowercased() == authServID.lowercased()
                }
            }
            if !dropping { output += line }
            index = lineEnd
        }
        return output
    }
}
