import Foundation
import Logging
import MailMessage
import SharedTree

/// One IMAP connection's state and command handling (RFC 9051, with RFC 3501 compatibility):
/// authentication state, the selected mailbox view, enabled extensions. Framing and parsing
/// happen before (`IMAPCommandFramer`, `IMAPCommandParser`); bytes and sockets after
/// (`IMAPServer`). Storage calls go through `IMAPServices.blocking` onto the node's file
/// threads, and every response goes out through the `send` closure in order.
public struct IMAPSession: Sendable {
    public struct Configuration: Sendable {
        /// Encrypted from the start (implicit TLS, port 993).
        public var tlsActive: Bool
        /// STARTTLS can be offered (a certificate is configured, and TLS is not active yet).
        public var tlsAvailable: Bool
        /// LOGIN and AUTHENTICATE PLAIN without TLS (loopback in dev, svcpkgAllowPlaintextAuthLoopback).
        public var allowPlaintextAuth: Bool
        public var limits: IMAPLimits
        /// The server name in the greeting.
        public var hostname: String

        public init(tlsActive: Bool = false, tlsAvailable: Bool = false, allowPlaintextAuth: Bool = false, limits: IMAPLimits = IMAPLimits(), hostname: String = "svcpkg") {
            self.tlsActive = tlsActive
            self.tlsAvailable = tlsAvailable
            self.allowPlaintextAuth = allowPlaintextAuth
            self.limits = limits
            self.hostname = hostname
        }
    }

    /// What the connection does after a command.
    public enum Next: Sendable, Equatable {
        case proceed
        /// Close the connection (after LOGOUT, or a fatal condition already answered with BYE).
        case close
        /// Send this tagged OK and start TLS in the same event-loop tick (RFC 9051 §6.2.1).
        case startTLS(IMAPResponse)
        /// Send `+ idling` and read lines until DONE, calling `poll` meanwhile (RFC 2177).
        case idle(tag: String)
        /// Send an empty challenge and hand the next line to `finishAuthentication`.
        case authenticationContinuation(tag: String)
        /// Send this tagged OK, then deflate both directions (RFC 4978).
        case compress(IMAPResponse)
    }

    public typealias Send = (IMAPResponse) async throws -> Void

    public private(set) var configuration: Configuration
    let services: any IMAPServices
    var context: IMAPConnectionContext
    var logger: Logger

    public private(set) var account: IMAPAccount?
    public private(set) var selected: IMAPMailboxView?
    private var selectedToken: FolderChangeToken?
    public private(set) var condStoreEnabled = false
    public private(set) var qresyncEnabled = false
    public private(set) var utf8Accept = false
    public private(set) var compressionActive = false
    /// RFC 5182 SEARCHRES: UIDs saved by `SEARCH RETURN (SAVE)`.
    private(set) var savedSearchResult: [UInt32] = []
    private var defaultFoldersEnsured = false
    /// Counters for the closing log line.
    public internal(set) var fetchedMessages = 0
    public private(set) var appendedMessages = 0

    public init(configuration: Configuration, services: any IMAPServices, context: IMAPConnectionContext, logger: Logger) {
        self.configuration = configuration
        self.services = services
        self.context = context
        self.logger = logger
    }

    var store: MailStore? { account?.store }

    // MARK: - Greeting and capabilities

    public var greeting: IMAPResponse {
        .untagged(.status(IMAPStatusResponse(.ok, code: .capability(capabilities), "\(configuration.hostname) svcpkg IMAP4rev2 ready")))
    }

    public var capabilities: [String] {
        var list = ["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"]
        if account == nil {
            if configuration.tlsAvailable && !configuration.tlsActive { list.append("STARTTLS") }
            if configuration.tlsActive || configuration.allowPlaintextAuth {
                list.append("AUTH=PLAIN")
            } else {
                list.append("LOGINDISABLED")
            }
        } else {
            list += [
                "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE",
                "CREATE-SPECIAL-USE", "CONDSTORE", "QRESYNC", "ESEARCH", "SEARCHRES", "STATUS=SIZE", "QUOTA",
                "QUOTA=RES-STORAGE", "MULTIAPPEND", "BINARY", "UTF8=ACCEPT", "SORT", "SORT=DISPLAY",
                "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "COMPRESS=DEFLATE",
            ]
        }
        return list
    }

    /// TLS is up (after STARTTLS): RFC 9051 §6.2.1, the client must ask for capabilities again.
    public mutating func tlsStarted() {
        configuration.tlsActive = true
        configuration.tlsAvailable = false
        context.tlsActive = true
    }

    var plaintextAuthAllowed: Bool { configuration.tlsActive || configuration.allowPlaintextAuth }

    // MARK: - Commands

    public mutating func handle(_ command: IMAPCommand, send: @escaping Send) async throws -> Next {
        let tag = command.tag
        let reply = TaggedReply(tag: tag, send: send)

        // Any state.
        switch command.kind {
        case .capability:
            try await send(.untagged(.capability(capabilities)))
            try await reply.ok("CAPABILITY completed")
            return .proceed
        case .noop, .check:
            if case .check = command.kind, selected == nil { break }
            guard try await refresh(allowExpunge: true, send: send) else { return .close }
            try await reply.ok("\(command.kind == .noop ? "NOOP" : "CHECK") completed")
            return .proceed
        case .logout:
            try await send(.untagged(.status(IMAPStatusResponse(.bye, "Logging out"))))
            try await reply.ok("LOGOUT completed")
            return .close
        case .id:
            try await send(.untagged(.id([IMAPIDField("name", "svcpkg"), IMAPIDField("vendor", "Service Package")])))
            try await reply.ok("ID completed")
            return .proceed
        case .enable(let names):
            guard account != nil else { break }
            var enabled: [String] = []
            for name in names {
                switch name {
                case "CONDSTORE" where !condStoreEnabled:
                    condStoreEnabled = true
                    enabled.append(name)
                case "QRESYNC" where !qresyncEnabled:
                    qresyncEnabled = true
                    condStoreEnabled = true
                    enabled.append(name)
                case "UTF8=ACCEPT" where !utf8Accept:
                    utf8Accept = true
                    enabled.append(name)
                default: break
                }
            }
            try await send(.untagged(.enabled(enabled)))
            try await reply.ok("ENABLE completed")
            return .proceed
        case .compress(let mechanism):
            guard account != nil else { break }
            guard mechanism == "DEFLATE" else {
                try await reply.no("Unknown compression mechanism \(mechanism)", code: .cannot)
                return .proceed
            }
            guard !compressionActive else {
                try await reply.no("Compression is already active", code: .compressionActive)
                return .proceed
            }
            compressionActive = true
            return .compress(.tagged(tag: tag, IMAPStatusResponse(.ok, "DEFLATE active")))
        case .unknown(let name):
            try await reply.bad("Unknown command \(name)")
            return .proceed
        default:
            break
        }

        // Not authenticated.
        if account == nil {
            switch command.kind {
            case .startTLS:
                guard configuration.tlsAvailable, !configuration.tlsActive else {
                    try await reply.bad("STARTTLS is not available")
                    return .proceed
                }
                return .startTLS(.tagged(tag: tag, IMAPStatusResponse(.ok, "Begin TLS negotiation now")))
            case .login(let username, let password):
                guard plaintextAuthAllowed else {
                    try await reply.no("Plaintext authentication is allowed only over TLS", code: .privacyRequired)
                    return .proceed
                }
                try await authenticate(tag: tag, user: username, password: password, send: send)
                return .proceed
            case .authenticate(let mechanism, let initialResponse):
                guard mechanism == "PLAIN" else {
                    try await reply.no("Unsupported authentication mechanism \(mechanism)", code: .cannot)
                    return .proceed
                }
                guard plaintextAuthAllowed else {
                    try await reply.no("Plaintext authentication is allowed only over TLS", code: .privacyRequired)
                    return .proceed
                }
                switch initialResponse {
                case nil:
                    return .authenticationContinuation(tag: tag)
                case .empty:
                    try await finishAuthentication(tag: tag, response: .data([]), send: send)
                case .base64(let text):
                    let decoded = IMAPBase64.decode(Array(text.utf8))
                    try await finishAuthentication(tag: tag, response: decoded.map { .data($0) } ?? .invalid, send: send)
                }
                return .proceed
            default:
                try await reply.bad("Command not valid before authentication")
                return .proceed
            }
        }

        switch command.kind {
        case .startTLS, .login, .authenticate:
            try await reply.bad("Already authenticated")
            return .proceed
        default:
            break
        }

        do {
            return try await handleAuthenticated(command, send: send)
        } catch let error as MailStoreError {
            logger.notice("IMAP command failed", metadata: ["command": "\(command)", "error": "\(error)"])
            let (code, text) = Self.describe(error)
            try await reply.no(text, code: code)
            return .proceed
        }
    }

    /// The line after an AUTHENTICATE challenge, or the SASL-IR initial response.
    public mutating func finishAuthentication(tag: String, response: IMAPAuthenticationResponse, send: Send) async throws {
        switch response {
        case .cancel:
            try await send(.tagged(tag: tag, IMAPStatusResponse(.bad, "Authentication cancelled")))
        case .invalid:
            try await send(.tagged(tag: tag, IMAPStatusResponse(.bad, "Invalid base64 in the authentication response")))
        case .data(let data):
            // RFC 4616: [authzid] NUL authcid NUL passwd.
            let parts = data.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, let authcid = String(validating: parts[1], as: UTF8.self),
                let password = String(validating: parts[2], as: UTF8.self), let authzid = String(validating: parts[0], as: UTF8.self)
            else {
                try await send(.tagged(tag: tag, IMAPStatusResponse(.bad, "Malformed PLAIN response")))
                return
            }
            guard authzid.isEmpty || authzid.lowercased() == authcid.lowercased() else {
                try await send(.tagged(tag: tag, IMAPStatusResponse(.no, code: .authorizationFailed, "Proxy authorization is not allowed")))
                return
            }
            try await authenticate(tag: tag, user: authcid, password: password, send: send)
        }
    }

    private mutating func authenticate(tag: String, user: String, password: String, send: Send) async throws {
        switch await services.authenticate(user: user, password: password, context: context) {
        case .ok(let authenticated):
            account = authenticated
            logger[metadataKey: "user"] = "\(authenticated.address)"
            try await send(.tagged(tag: tag, IMAPStatusResponse(.ok, code: .capability(capabilities), "Logged in")))
        case .invalid:
            try await send(.tagged(tag: tag, IMAPStatusResponse(.no, code: .authenticationFailed, "Authentication failed")))
        case .refused:
            try await send(.tagged(tag: tag, IMAPStatusResponse(.no, code: .unavailable, "Authentication temporarily unavailable, try again later")))
        case .overLimit:
            try await send(.tagged(tag: tag, IMAPStatusResponse(.no, code: .limit, "Too many connections for this user, close some and try again")))
        }
    }

    // MARK: - Authenticated and selected states

    private mutating func handleAuthenticated(_ command: IMAPCommand, send: @escaping Send) async throws -> Next {
        let tag = command.tag
        let reply = TaggedReply(tag: tag, send: send)
        guard let store else { return .proceed }
        try await ensureDefaultFolders()

        switch command.kind {
        case .select(let name, let parameters), .examine(let name, let parameters):
            var readOnly = false
            if case .examine = command.kind { readOnly = true }
            if selected != nil {
                selected = nil
                selectedToken = nil
                try await send(.untagged(.status(IMAPStatusResponse(.ok, code: .closed, "Previous mailbox closed"))))
            }
            guard let folder = try await folderName(name, send: send, tag: tag) else { return .proceed }
            if parameters.condStore { condStoreEnabled = true }
            if parameters.qresync != nil && !qresyncEnabled {
                try await reply.bad("QRESYNC must be enabled first (RFC 7162 §3.2.5)")
                return .proceed
            }
            let snapshot: FolderSnapshot
            do {
                snapshot = try await blocking { try store.sync(folder) }
            } catch MailStoreError.folderNotFound {
                try await reply.no("No such mailbox", code: .nonexistent)
                return .proceed
            }
            var view = IMAPMailboxView(snapshot: snapshot, readOnly: readOnly)
            try await send(.untagged(.flags(IMAPFlags.mailboxFlags)))
            try await send(.untagged(.status(IMAPStatusResponse(.ok, code: .permanentFlags(readOnly ? [] : IMAPFlags.mailboxFlags + [.mayCreate]), "Flags permitted"))))
            try await send(.untagged(.exists(UInt32(view.count))))
            try await send(.untagged(.recent(0)))
            try await send(.untagged(.status(IMAPStatusResponse(.ok, code: .uidValidity(view.uidValidity), "UIDs valid"))))
            try await send(.untagged(.status(IMAPStatusResponse(.ok, code: .uidNext(view.uidNext), "Predicted next UID"))))
            try await send(.untagged(.status(IMAPStatusResponse(.ok, code: .highestModSeq(view.highestModSeq), "Highest"))))
            if let qresync = parameters.qresync, qresync.uidValidity == view.uidValidity {
                try await resynchronize(view: &view, snapshot: snapshot, qresync, send: send)
            }
            selected = view
            selectedToken = snapshot.token
            try await reply.ok("\(readOnly ? "EXAMINE" : "SELECT") completed", code: readOnly ? .readOnly : .readWrite)
            return .proceed

        case .create(let name, let specialUse):
            guard let folder = try await folderName(name, send: send, tag: tag, trimTrailingSeparator: true) else { return .proceed }
            var use: SpecialUse?
            if let first = specialUse.first {
                guard specialUse.count == 1, let known = SpecialUse(rawValue: first) ?? SpecialUse.allCases.first(where: { "\\\($0.rawValue)".lowercased() == first.lowercased() || $0.rawValue.lowercased() == first.lowercased() }) else {
                    try await reply.no("Unsupported special-use attribute", code: .useAttribute)
                    return .proceed
                }
                use = known
            }
            do {
                try await blocking { [use] in try store.createFolder(folder, specialUse: use) }
            } catch MailStoreError.folderExists {
                try await reply.no("Mailbox already exists", code: .alreadyExists)
                return .proceed
            }
            try await reply.ok("CREATE completed")
        case .delete(let name):
            guard let folder = try await folderName(name, send: send, tag: tag) else { return .proceed }
            if folder == selected?.folder {
                selected = nil
                selectedToken = nil
            }
            do {
                try await blocking { try store.deleteFolder(folder) }
            } catch MailStoreError.folderNotFound {
                try await reply.no("No such mailbox", code: .nonexistent)
                return .proceed
            }
            try await reply.ok("DELETE completed")
        case .rename(let from, let to):
            guard let source = try await folderName(from, send: send, tag: tag),
                let target = try await folderName(to, send: send, tag: tag, trimTrailingSeparator: true)
            else { return .proceed }
            do {
                try await blocking { try store.renameFolder(source, to: target) }
            } catch MailStoreError.folderNotFound {
                try await reply.no("No such mailbox", code: .nonexistent)
                return .proceed
            } catch MailStoreError.folderExists {
                try await reply.no("Target mailbox already exists", code: .alreadyExists)
                return .proceed
            }
            try await reply.ok("RENAME completed")
        case .subscribe(let name):
            guard let folder = try await folderName(name, send: send, tag: tag) else { return .proceed }
            try await blocking { try store.subscribe(folder) }
            try await reply.ok("SUBSCRIBE completed")
        case .unsubscribe(let name):
            guard let folder = try await folderName(name, send: send, tag: tag) else { return .proceed }
            try await blocking { try store.unsubscribe(folder) }
            try await reply.ok("UNSUBSCRIBE completed")
        case .list(let list):
            if let option = list.selectionOptions.first(where: { if case .other = $0 { true } else { false } }) {
                try await reply.bad("Unsupported LIST selection option \(option)")
                return .proceed
            }
            try await self.list(list, lsub: false, send: send)
            try await reply.ok("LIST completed")
        case .lsub(let reference, let pattern):
            try await self.list(IMAPListCommand(selectionOptions: [.subscribed], reference: reference, patterns: [pattern]), lsub: true, send: send)
            try await reply.ok("LSUB completed")
        case .namespace:
            try await send(.untagged(.namespace(IMAPNamespaceResponse(personal: [IMAPNamespace(prefix: IMAPMailboxName([]), delimiter: "/")]))))
            try await reply.ok("NAMESPACE completed")
        case .status(let name, let attributes):
            guard let folder = try await folderName(name, send: send, tag: tag) else { return .proceed }
            do {
                let values = try await status(of: folder, attributes)
                try await send(.untagged(.mailboxStatus(encodedName(folder), values)))
            } catch MailStoreError.folderNotFound {
                try await reply.no("No such mailbox", code: .nonexistent)
                return .proceed
            }
            try await reply.ok("STATUS completed")
        case .append(let name, let messages):
            guard let folder = try await folderName(name, send: send, tag: tag) else { return .proceed }
            try await append(messages, to: folder, tag: tag, send: send)
        case .idle:
            return .idle(tag: tag)
        case .getQuotaRoot(let name):
            guard let folder = try await folderName(name, send: send, tag: tag) else { return .proceed }
            try await send(.untagged(.quotaRoot(encodedName(folder), roots: [[]])))
            try await send(.untagged(.quota(root: [], try await quotaResources())))
            try await reply.ok("GETQUOTAROOT completed")
        case .getQuota(let root):
            guard root.isEmpty else {
                try await reply.no("No such quota root", code: .nonexistent)
                return .proceed
            }
            try await send(.untagged(.quota(root: [], try await quotaResources())))
            try await reply.ok("GETQUOTA completed")
        case .setQuota:
            try await reply.no("Quotas are set by the administrator in LDAP", code: .noPerm)
        default:
            guard selected != nil else {
                try await reply.bad("No mailbox selected")
                return .proceed
            }
            return try await handleSelected(command, send: send)
        }
        guard try await refresh(allowExpunge: true, send: send) else { return .close }
        return .proceed
    }

    private mutating func handleSelected(_ command: IMAPCommand, send: @escaping Send) async throws -> Next {
        let tag = command.tag
        let reply = TaggedReply(tag: tag, send: send)
        guard let store, let view = selected else { return .proceed }
        let folder = view.folder

        switch command.kind {
        case .close, .unselect:
            if case .close = command.kind, !view.readOnly {
                _ = try await blocking { try store.expunge(folder) }
            }
            selected = nil
            selectedToken = nil
            try await reply.ok("\(command.kind == .close ? "CLOSE" : "UNSELECT") completed")
            return .proceed

        case .expunge, .uidExpunge:
            guard !view.readOnly else {
                try await reply.no("Mailbox is read-only", code: .readOnly)
                return .proceed
            }
            var uids: [UInt32]?
            if case .uidExpunge(let set) = command.kind {
                guard let resolved = try await resolve(set, byUID: true, tag: tag, send: send) else { return .proceed }
                uids = resolved
            }
            let result = try await blocking { [uids] in try store.expunge(folder, uids: uids) }
            try await apply(result.snapshot, allowExpunge: true, send: send)
            try await reply.ok("EXPUNGE completed", code: condStoreEnabled ? .highestModSeq(result.snapshot.highestModSeq) : nil)
            return .proceed

        case .search(let search):
            if search.key.usesModSeq { condStoreEnabled = true }
            guard let matches = try await self.search(search.key, tag: tag, send: send) else { return .proceed }
            try await reportSearch(matches, command: search, tag: tag, send: send)
            try await reply.ok("SEARCH completed")

        case .fetch(let fetch):
            guard var uids = try await resolve(fetch.sequenceSet, byUID: fetch.byUID, tag: tag, send: send) else { return .proceed }
            if fetch.changedSince != nil || fetch.attributes.contains(.modSeq) { condStoreEnabled = true }
            if fetch.vanished {
                guard fetch.byUID, qresyncEnabled, let since = fetch.changedSince else {
                    try await reply.bad("VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled")
                    return .proceed
                }
                try await reportVanished(in: fetch.sequenceSet, since: since, send: send)
            }
            if let since = fetch.changedSince {
                uids = uids.filter { (view.message(uid: $0)?.modSeq ?? 0) > since }
            }
            try await self.fetch(uids, attributes: fetch.attributes, byUID: fetch.byUID, send: send)
            try await reply.ok("FETCH completed")

        case .store(let storeCommand):
            guard !view.readOnly else {
                try await reply.no("Mailbox is read-only", code: .readOnly)
                return .proceed
            }
            if storeCommand.unchangedSince != nil { condStoreEnabled = true }
            guard let uids = try await resolve(storeCommand.sequenceSet, byUID: storeCommand.byUID, tag: tag, send: send) else { return .proceed }
            let (flags, keywords) = IMAPFlags.split(storeCommand.flags)
            let operation: StoreOperation
            switch storeCommand.operation {
            case .add: operation = .add
            case .remove: operation = .remove
            case .replace: operation = .replace
            }
            let since = storeCommand.unchangedSince
            let result = try await blocking { try store.store(folder, uids: uids, operation, flags: flags, keywords: keywords, unchangedSince: since) }
            let targets = Set(uids).subtracting(result.failed)
            try await apply(result.snapshot, allowExpunge: false, silent: targets, send: send)
            if !storeCommand.silent || condStoreEnabled {
                let changed = Set(result.changed)
                for uid in uids where targets.contains(uid) {
                    guard let sequence = selected?.sequenceNumber(of: uid), let message = selected?.message(uid: uid) else { continue }
                    // RFC 7162 §3.1.3: .SILENT still reports the new MODSEQ of changed messages.
                    if storeCommand.silent && !changed.contains(uid) { continue }
                    var items: [IMAPFetchValue] = []
                    if !storeCommand.silent { items.append(.flags(IMAPFlags.imapFlags(of: message))) }
                    if storeCommand.byUID || qresyncEnabled { items.append(.uid(uid)) }
                    if condStoreEnabled { items.append(.modSeq(message.modSeq)) }
                    try await send(.untagged(.fetch(sequence, items)))
                }
            }
            if result.failed.isEmpty {
                try await reply.ok("STORE completed")
            } else {
                let failed = storeCommand.byUID ? result.failed : result.failed.compactMap { selected?.sequenceNumber(of: $0) }
                try await reply.ok("Conditional STORE failed", code: .modified(IMAPSequenceSet(compacting: failed)))
            }

        case .sort(let sort):
            guard let matches = try await self.search(sort.key, tag: tag, send: send) else { return .proceed }
            let facts = try await sortFacts(matches)
            let sorted = IMAPSorting.sort(facts, by: sort.criteria)
            try await send(.untagged(.sort(sorted.map { sort.byUID ? $0.uid : $0.sequence }, modSeq: nil)))
            try await reply.ok("SORT completed")

        case .thread(let thread):
            guard let matches = try await self.search(thread.key, tag: tag, send: send) else { return .proceed }
            let facts = try await sortFacts(matches)
            let byUID = thread.byUID
            let number: (IMAPSortFacts) -> UInt32 = { byUID ? $0.uid : $0.sequence }
            switch thread.algorithm {
            case .orderedSubject:
                try await send(.untagged(.thread(IMAPThreading.orderedSubject(facts, number: number))))
            case .references:
                try await send(.untagged(.thread(IMAPThreading.references(facts, number: number))))
            case .other(let name):
                try await reply.no("Unsupported threading algorithm \(name)", code: .cannot)
                return .proceed
            }
            try await reply.ok("THREAD completed")

        case .copy(let set, let name, let byUID), .move(let set, let name, let byUID):
            var isMove = false
            if case .move = command.kind { isMove = true }
            if isMove && view.readOnly {
                try await reply.no("Mailbox is read-only", code: .readOnly)
                return .proceed
            }
            guard let uids = try await resolve(set, byUID: byUID, tag: tag, send: send) else { return .proceed }
            guard let target = try await folderName(name, send: send, tag: tag) else { return .proceed }
            let exists = try await blocking { try store.folderExists(target) }
            guard exists else {
                try await reply.no("No such mailbox", code: .tryCreate)
                return .proceed
            }
            guard !uids.isEmpty else {
                try await reply.ok("No messages \(isMove ? "moved" : "copied")")
                return .proceed
            }
            if let quota = account?.quotaBytes {
                let adding = uids.compactMap { selected?.message(uid: $0)?.size }.reduce(0, +)
                let usage = try await blocking { try store.quotaUsage(limit: Int(quota)) }
                if usage.bytes + adding > Int(quota) {
                    try await reply.no("Quota exceeded", code: .overQuota)
                    return .proceed
                }
            }
            let result: CopyResult
            if isMove {
                result = try await blocking { try store.move(uids: uids, from: folder, to: target) }
            } else {
                result = try await blocking { try store.copy(uids: uids, from: folder, to: target) }
            }
            let code = IMAPResponseCode.copyUID(
                uidValidity: result.targetUIDValidity, source: IMAPSequenceSet(preservingOrder: result.sourceUIDs),
                destination: IMAPSequenceSet(preservingOrder: result.targetUIDs))
            if isMove {
                // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges, then the tagged OK.
                try await send(.untagged(.status(IMAPStatusResponse(.ok, code: code, "Moved"))))
                if target == folder {
                    guard try await refresh(allowExpunge: true, send: send, force: true) else { return .close }
                } else {
                    let snapshot = try await blocking { try store.sync(folder) }
                    try await apply(snapshot, allowExpunge: true, send: send)
                }
                try await reply.ok("MOVE completed")
            } else {
                try await reply.ok("COPY completed", code: code)
            }
            return .proceed

        default:
            try await reply.bad("Command not valid in this state")
            return .proceed
        }
        // RFC 9051 §7.5.1: no EXPUNGE during FETCH, STORE or SEARCH.
        guard try await refresh(allowExpunge: false, send: send) else { return .close }
        return .proceed
    }

    /// The header facts SORT and THREAD use, for the messages with `uids`.
    private func sortFacts(_ uids: [UInt32]) async throws -> [IMAPSortFacts] {
        guard let store, let view = selected else { return [] }
        let folder = view.folder
        let messages: [(UInt32, StoredMessage)] = uids.compactMap { uid in
            guard let message = view.message(uid: uid), let sequence = view.sequenceNumber(of: uid) else { return nil }
            return (sequence, message)
        }
        return try await blocking {
            try messages.map { sequence, message in
                let prefix = try store.readMessagePrefix(message, in: folder, maxBytes: Self.sortHeaderBytes)
                return IMAPSortFacts(sequence: sequence, message: message, header: prefix.map { MessageStructure.parse($0).root.fields })
            }
        }
    }

    /// How much of a message SORT and THREAD read for its header.
    static let sortHeaderBytes = 64 * 1024

    // MARK: - Mailbox changes from elsewhere

    /// Looks for changes in the selected mailbox (three stats on the shared tree) and reports
    /// them. False when the session cannot go on (the mailbox was deleted or its UIDVALIDITY
    /// changed): a `* BYE` has been sent.
    @discardableResult
    public mutating func refresh(allowExpunge: Bool, send: Send, force: Bool = false) async throws -> Bool {
        guard let store, let view = selected else { return true }
        let folder = view.folder
        let previous = selectedToken
        do {
            let snapshot: FolderSnapshot? = try await blocking {
                let token = try store.changeToken(folder)
                guard force || previous.map({ $0.needsSync(current: token) }) ?? true else { return nil }
                return try store.sync(folder)
            }
            if let snapshot {
                guard snapshot.uidValidity == view.uidValidity else {
                    try await send(.untagged(.status(IMAPStatusResponse(.bye, "The mailbox was recreated: UIDVALIDITY changed, select it again"))))
                    return false
                }
                selectedToken = snapshot.token
                try await apply(snapshot, allowExpunge: allowExpunge, send: send)
            } else if allowExpunge, selected?.pendingExpunges.isEmpty == false {
                for response in selected!.flushExpunges(qresync: qresyncEnabled) { try await send(.untagged(response)) }
            }
        } catch MailStoreError.folderNotFound {
            try await send(.untagged(.status(IMAPStatusResponse(.bye, "The selected mailbox was deleted elsewhere"))))
            return false
        }
        return true
    }

    /// IDLE: called every poll interval while the client idles.
    public mutating func poll(send: Send) async throws -> Bool {
        try await refresh(allowExpunge: true, send: send)
    }

    mutating func apply(_ snapshot: FolderSnapshot, allowExpunge: Bool, silent: Set<UInt32> = [], send: Send) async throws {
        guard var view = selected else { return }
        let options = IMAPMailboxView.UpdateOptions(allowExpunge: allowExpunge, condStore: condStoreEnabled, qresync: qresyncEnabled, silentUIDs: silent)
        let responses = view.update(to: snapshot, options: options)
        selected = view
        for response in responses { try await send(.untagged(response)) }
    }

    /// RFC 7162 §3.2.5.1: what changed since the client's MODSEQ, at SELECT (QRESYNC).
    private mutating func resynchronize(view: inout IMAPMailboxView, snapshot: FolderSnapshot, _ qresync: IMAPQResyncParameters, send: Send) async throws {
        var known: [UInt32]?
        if let knownUIDs = qresync.knownUIDs {
            known = (try? view.resolve(knownUIDs, byUID: true)) ?? []
        }
        let (vanished, complete) = snapshot.vanished(sinceModSeq: qresync.modSeq)
        var reported = vanished
        if !complete, let knownUIDs = qresync.knownUIDs, case .ranges(let ranges) = knownUIDs {
            // The expunge log does not reach back that far: every UID the client may know that is gone.
            let present = Set(view.uids)
            var missing: [UInt32] = []
            for range in ranges {
                let bounds = range.resolved(largest: view.uidNext)
                guard bounds.count <= 1_000_000 else { continue }
                for uid in bounds where !present.contains(uid) { missing.append(uid) }
            }
            reported = missing
        }
        if let knownUIDs = qresync.knownUIDs {
            reported = reported.filter { knownUIDs.contains($0, largest: view.uidNext) }
        }
        if !reported.isEmpty {
            try await send(.untagged(.vanished(earlier: true, IMAPSequenceSet(compacting: reported))))
        }
        for (sequence, message) in view.liveMessages where message.modSeq > qresync.modSeq {
            if let known, !known.contains(message.uid) { continue }
            try await send(.untagged(.fetch(sequence, [.uid(message.uid), .flags(IMAPFlags.imapFlags(of: message)), .modSeq(message.modSeq)])))
        }
    }

    private func reportVanished(in set: IMAPSequenceSet, since: UInt64, send: Send) async throws {
        guard let store, let view = selected else { return }
        let folder = view.folder
        let snapshot = try await blocking { try store.readSnapshot(folder) }
        guard let snapshot else { return }
        let (uids, _) = snapshot.vanished(sinceModSeq: since)
        let inSet = uids.filter { set.contains($0, largest: view.uidNext) }
        if !inSet.isEmpty {
            try await send(.untagged(.vanished(earlier: true, IMAPSequenceSet(compacting: inSet))))
        }
    }

    // MARK: - Helpers

    func blocking<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await services.blocking(work)
    }

    private mutating func ensureDefaultFolders() async throws {
        guard !defaultFoldersEnsured, let store else { return }
        _ = try await blocking { try store.ensureDefaultFolders() }
        defaultFoldersEnsured = true
    }

    /// The store's name for a mailbox name from the client, or nil after answering NO.
    private func folderName(_ name: IMAPMailboxName, send: Send, tag: String, trimTrailingSeparator: Bool = false) async throws -> MailFolderName? {
        guard var decoded = name.decoded(utf8Accept: utf8Accept) else {
            try await send(.tagged(tag: tag, IMAPStatusResponse(.no, code: .cannot, "Invalid mailbox name encoding")))
            return nil
        }
        // RFC 9051 §6.3.4: CREATE "foo/" creates foo.
        if trimTrailingSeparator, decoded.count > 1, decoded.hasSuffix("/") { decoded.removeLast() }
        do {
            return try MailFolderName(decoded)
        } catch {
            try await send(.tagged(tag: tag, IMAPStatusResponse(.no, code: .cannot, Self.describe(error).text)))
            return nil
        }
    }

    func encodedName(_ folder: MailFolderName) -> IMAPMailboxName {
        folder.isInbox ? .inbox : IMAPMailboxName(encoding: folder.name, utf8Accept: utf8Accept)
    }

    /// Resolves a set against the selected mailbox; nil after answering BAD.
    func resolve(_ set: IMAPSequenceSet, byUID: Bool, tag: String, send: Send) async throws -> [UInt32]? {
        guard let view = selected else { return nil }
        if case .lastSearchResult = set {
            let live = Set(view.uids)
            return savedSearchResult.filter { live.contains($0) }
        }
        do throws(IMAPMailboxView.SetError) {
            return try view.resolve(set, byUID: byUID)
        } catch {
            guard case .sequenceNumberOutOfRange(let number) = error else { return nil }
            try await send(.tagged(tag: tag, IMAPStatusResponse(.bad, "Invalid message sequence number \(number) (the mailbox has \(view.count) messages)")))
            return nil
        }
    }

    mutating func saveSearchResult(_ uids: [UInt32]) {
        savedSearchResult = uids
    }

    private func status(of folder: MailFolderName, _ attributes: [IMAPStatusAttribute]) async throws -> [IMAPStatusValue] {
        guard let store else { return [] }
        let snapshot = try await blocking { try store.sync(folder) }
        let quota = account?.quotaBytes
        return attributes.compactMap { attribute in
            switch attribute {
            case .messages: return IMAPStatusValue(attribute, UInt64(snapshot.messages.count))
            case .uidNext: return IMAPStatusValue(attribute, UInt64(snapshot.uidNext))
            case .uidValidity: return IMAPStatusValue(attribute, UInt64(snapshot.uidValidity))
            case .unseen: return IMAPStatusValue(attribute, UInt64(snapshot.messages.filter { !$0.flags.contains(.seen) }.count))
            case .deleted: return IMAPStatusValue(attribute, UInt64(snapshot.messages.filter { $0.flags.contains(.deleted) }.count))
            case .size: return IMAPStatusValue(attribute, UInt64(snapshot.messages.reduce(0) { $0 + ($1.virtualSize ?? $1.size) }))
            case .recent: return IMAPStatusValue(attribute, 0)
            case .highestModSeq: return IMAPStatusValue(attribute, snapshot.highestModSeq)
            case .appendLimit: return quota.map { IMAPStatusValue(attribute, UInt64(max(0, $0))) }
            }
        }
    }

    private func quotaResources() async throws -> [IMAPQuotaResource] {
        guard let store, let quota = account?.quotaBytes else { return [] }
        let usage = try await blocking { try store.quotaUsage(limit: Int(quota)) }
        // RFC 9208 §5.1: STORAGE is counted in units of 1024 octets.
        return [IMAPQuotaResource("STORAGE", usage: UInt64(max(0, usage.bytes)) / 1024, limit: UInt64(max(0, quota)) / 1024)]
    }

    private mutating func append(_ messages: [IMAPAppendMessage], to folder: MailFolderName, tag: String, send: Send) async throws {
        guard let store else { return }
        let exists = try await blocking { try store.folderExists(folder) }
        guard exists else {
            try await send(.tagged(tag: tag, IMAPStatusResponse(.no, code: .tryCreate, "No such mailbox")))
            return
        }
        if messages.contains(where: { $0.data.isEmpty }) {
            try await send(.tagged(tag: tag, IMAPStatusResponse(.no, "Empty messages cannot be appended")))
            return
        }
        let items = messages.map { message -> MailStore.Appended in
            let (flags, keywords) = IMAPFlags.split(message.flags)
            let date = message.internalDate.map { Date(timeIntervalSince1970: TimeInterval($0.secondsSince1970)) } ?? Date()
            return MailStore.Appended(bytes: message.data, flags: flags, keywords: keywords, date: date)
        }
        // RFC 3502: the messages get UIDs in the order sent, whatever their dates; every one
        // is written (fsync'd) before any gets a UID.
        // The store checks the quota (and rebuilds a stale maildirsize) before writing anything:
        // over it, `overQuota` becomes NO [OVERQUOTA].
        let quota = account?.quotaBytes.map { Int($0) }
        let result = try await blocking { try store.append(items, to: folder, quotaBytes: quota) }
        let uidValidity = result.snapshot.uidValidity
        appendedMessages += result.uids.count
        try await send(.tagged(tag: tag, IMAPStatusResponse(.ok, code: .appendUID(uidValidity: uidValidity, uids: IMAPSequenceSet(preservingOrder: result.uids)), "APPEND completed")))
    }

    private func list(_ command: IMAPListCommand, lsub: Bool, send: Send) async throws {
        guard let store else { return }
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root.
        if command.patterns.count == 1, command.patterns[0].isEmpty {
            let entry = IMAPListResponse(attributes: ["\\Noselect"], delimiter: "/", mailbox: IMAPMailboxName([]))
            try await send(.untagged(lsub ? .lsub(entry) : .list(entry)))
            return
        }
        let entries = try await blocking { try store.listFolders() }
        let subscribedOnly = command.selectionOptions.contains(.subscribed)
        let specialUseOnly = command.selectionOptions.contains(.specialUse)
        let returnSubscribed = !lsub && (command.returnOptions.contains(.subscribed) || subscribedOnly)
        let returnSpecialUse = !lsub && (command.returnOptions.contains(.specialUse) || !command.isExtended || specialUseOnly)
        var statusAttributes: [IMAPStatusAttribute]?
        for option in command.returnOptions {
            if case .status(let attributes) = option { statusAttributes = attributes }
        }
        let reference = utf8Accept ? String(decoding: command.reference, as: UTF8.self) : (ModifiedUTF7.decode(command.reference) ?? "")
        let patterns = command.patterns.map { pattern -> String in
            let text = utf8Accept ? String(decoding: pattern, as: UTF8.self) : (ModifiedUTF7.decode(pattern) ?? String(decoding: pattern, as: UTF8.self))
            if reference.isEmpty || text.hasPrefix("/") { return text }
            return reference.hasSuffix("/") ? reference + text : reference + "/" + text
        }
        for entry in entries {
            let name = entry.name.name
            guard patterns.contains(where: { IMAPListPattern.matches(name, pattern: $0) }) else { continue }
            if subscribedOnly && !entry.subscribed { continue }
            if specialUseOnly && entry.specialUse == nil { continue }
            if !entry.exists && (subscribedOnly || command.isExtended) && !entry.subscribed { continue }
            var attributes: [String] = []
            if !entry.exists { attributes.append(command.isExtended || subscribedOnly ? "\\NonExistent" : "\\Noselect") }
            if !lsub { attributes.append(entry.hasChildren ? "\\HasChildren" : "\\HasNoChildren") }
            if returnSubscribed && entry.subscribed { attributes.append("\\Subscribed") }
            if returnSpecialUse, let use = entry.specialUse { attributes.append("\\" + use.rawValue) }
            let response = IMAPListResponse(attributes: attributes, delimiter: "/", mailbox: encodedName(entry.name))
            try await send(.untagged(lsub ? .lsub(response) : .list(response)))
            if let statusAttributes, entry.exists {
                if let values = try? await status(of: entry.name, statusAttributes) {
                    try await send(.untagged(.mailboxStatus(encodedName(entry.name), values)))
                }
            }
        }
    }

    static func describe(_ error: MailStoreError) -> (code: IMAPResponseCode?, text: String) {
        switch error {
        case .invalidFolderName(_, let reason): return (.cannot, "Invalid mailbox name: \(reason)")
        case .invalidKeyword(let keyword, let reason): return (.cannot, "Invalid keyword \(keyword): \(reason)")
        case .folderNotFound: return (.nonexistent, "No such mailbox")
        case .folderExists: return (.alreadyExists, "Mailbox already exists")
        case .folderHasChildren: return (.hasChildren, "Mailbox has children; delete them first")
        case .cannotDeleteInbox: return (.cannot, "INBOX cannot be deleted")
        case .renameIntoItself: return (.cannot, "A mailbox cannot be renamed into itself")
        case .overQuota: return (.overQuota, "Quota exceeded")
        case .uidSpaceExhausted: return (.limit, "The mailbox has used up its UIDs")
        case .renameConflict: return (.inUse, "Another rename is in progress, try again")
        case .storage, .invalidUser: return (.serverBug, "Storage error, try again later")
        }
    }

    static func describe(_ error: any Error) -> (code: IMAPResponseCode?, text: String) {
        if let error = error as? MailStoreError { return describe(error) }
        return (.serverBug, "\(error)")
    }
}

/// The tagged OK/NO/BAD that ends one command.
struct TaggedReply {
    let tag: String
    let send: IMAPSession.Send

    func ok(_ text: String, code: IMAPResponseCode? = nil) async throws {
        try await send(.tagged(tag: tag, IMAPStatusResponse(.ok, code: code, text)))
    }

    func no(_ text: String, code: IMAPResponseCode? = nil) async throws {
        try await send(.tagged(tag: tag, IMAPStatusResponse(.no, code: code, text)))
    }

    func bad(_ text: String, code: IMAPResponseCode? = nil) async throws {
        try await send(.tagged(tag: tag, IMAPStatusResponse(.bad, code: code, text)))
    }
}

/// LIST patterns (RFC 9051 §6.3.9): `*` matches anything, `%` anything but the delimiter.
/// Dynamic programming over (name position, pattern position): linear in their product
/// whatever the client sends, never exponential backtracking.
enum IMAPListPattern {
    static func matches(_ name: String, pattern: String) -> Bool {
        // INBOX is case-insensitive (RFC 9051 §5.1).
        let isInbox = name.uppercased() == "INBOX"
        let name = Array((isInbox ? "INBOX" : name).unicodeScalars)
        var pattern = Array(pattern.unicodeScalars)
        if isInbox, String(String.UnicodeScalarView(pattern)).uppercased() == "INBOX" { pattern = Array("INBOX".unicodeScalars) }
        // reachable[i]: the first j pattern characters can match the first i name characters.
        var reachable = [Bool](repeating: false, count: name.count + 1)
        reachable[0] = true
        for p in pattern {
            var next = [Bool](repeating: false, count: name.count + 1)
            switch p {
            case "*":
                var any = false
                for i in 0...name.count {
                    any = any || reachable[i]
                    next[i] = any
                }
            case "%":
                var any = false
                for i in 0...name.count {
                    if i > 0 && name[i - 1] == "/" { any = false }
                    any = any || reachable[i]
                    next[i] = any
                }
            default:
                for i in 0..<name.count where reachable[i] && name[i] == p { next[i + 1] = true }
            }
            reachable = next
        }
        return reachable[name.count]
    }
}

extension IMAPSearchKey {
    /// True when the key asks about MODSEQ (it enables CONDSTORE, RFC 7162 §3.1).
    var usesModSeq: Bool {
        switch self {
        case .modSeq: return true
        case .not(let key): return key.usesModSeq
        case .or(let a, let b): return a.usesModSeq || b.usesModSeq
        case .and(let keys): return keys.contains { $0.usesModSeq }
        default: return false
        }
    }
}
