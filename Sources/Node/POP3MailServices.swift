import Directory
import Foundation
import Logging
import Metrics
import NIOPosix
import POP3
import SharedTree

/// POP3's view of the node: authentication against LDAP (shared failure limits with SMTP)
/// and maildrops on the shared tree.
///
/// The maildrop lock is a lock file `svcpkg-pop3` in the user's home (the shared-tree lock
/// protocol): any node's POP3 login for the same user finds it and answers `[IN-USE]`; a lock
/// left by a dead node is broken after svcpkgLockStaleTimeout. It is not the INBOX's UID-list
/// lock, so IMAP and delivery go on while a POP3 session is open; the session's view is the
/// INBOX snapshot taken at login, and only its own deletions are applied at QUIT.
final class POP3MailServices: POP3Services {
    static let lockName = "svcpkg-pop3"
    static let chunkSize = 64 * 1024

    let mail: MailServices

    init(mail: MailServices) {
        self.mail = mail
    }

    func connectionOpened(_ context: POP3ConnectionContext) -> POP3Response? {
        guard mail.connections.open(context.remoteAddress, limit: mail.runtime.snapshot.nodeConfig.maxConnectionsPerIP) else {
            Counter(label: "svcpkg_pop3_refused_total", dimensions: [("reason", "connections_per_ip")]).increment()
            return .error(.sysTemp, "Too many connections from your address, try again later")
        }
        mail.runtime.connectionOpened()
        return nil
    }

    func connectionClosed(_ context: POP3ConnectionContext) {
        mail.connections.close(context.remoteAddress)
        mail.runtime.connectionClosed()
    }

    func authenticate(user: String, password: String, context: POP3ConnectionContext) async -> POP3AuthResult {
        switch await mail.checkCredentials(user: user, password: password, remoteAddress: context.remoteAddress, protocolName: "pop3") {
        case .ok(let account):
            let delay = mail.runtime.snapshot.nodeConfig.pop3LoginDelay
            if delay > 0, await !loginAllowed(account.address, delay: delay) { return .loginDelay }
            return .ok(user: account.address)
        case .invalid: return .invalid
        case .refused: return .temporarilyRefused
        }
    }

    /// LOGIN-DELAY across the cluster: the mtime of `svcpkg-pop3-login` in the user's home is the
    /// last login, judged by the file server's clock; a login that is allowed touches it.
    func loginAllowed(_ address: String, delay: Int) async -> Bool {
        let mail = self.mail
        return (try? await mail.fileThreads.runIfActive { () -> Bool in
            let store = try mail.mailStore(address)
            _ = try store.ensureDefaultFolders()
            let path = store.homeDirectory + "/svcpkg-pop3-login"
            let now = try FileServerClock.now(in: store.homeDirectory)
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                let last = attributes[.modificationDate] as? Date, now.timeIntervalSince(last) < Double(delay) {
                return false
            }
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            return true
        }) ?? true
    }

    func openMaildrop(user: String, context: POP3ConnectionContext) async -> POP3MaildropOpenResult {
        let mail = self.mail
        let logger = mail.logger
        do {
            let opened: (MailStore, LockFile, FolderSnapshot)? = try await mail.fileThreads.runIfActive {
                let store = try mail.mailStore(user)
                _ = try store.ensureDefaultFolders()  // a first login before any mail has a Maildir to lock
                guard let lock = try LockFile.tryAcquire(
                    name: Self.lockName, in: store.homeDirectory, node: mail.nodeName, options: mail.lockOptions)
                else { return nil }
                do {
                    return (store, lock, try store.sync(.inbox))
                } catch {
                    _ = try? lock.release()
                    throw error
                }
            }
            guard let (store, lock, snapshot) = opened else {
                logger.info("POP3 maildrop in use", metadata: ["user": "\(user)"])
                return .inUse
            }
            let keeper = lock.startKeeper()
            return .opened(SharedTreeMaildrop(store: store, lock: lock, keeper: keeper, snapshot: snapshot, fileThreads: mail.fileThreads, logger: logger))
        } catch {
            logger.error("cannot open POP3 maildrop", metadata: ["user": "\(user)", "error": "\(error)"])
            return .failed("\(error)")
        }
    }
}

/// A locked INBOX snapshot. UIDL is `UIDVALIDITY-UID` in hex: stable for the life of the
/// message whatever flags IMAP sets, unique, and well under RFC 1939's 70 characters.
final class SharedTreeMaildrop: POP3Maildrop {
    let store: MailStore
    let lock: LockFile
    let keeper: Task<Void, Never>
    let entries: [StoredMessage]
    let messages: [POP3MessageInfo]
    let uidByUIDL: [String: UInt32]
    let fileThreads: NIOThreadPool
    let logger: Logger

    init(store: MailStore, lock: LockFile, keeper: Task<Void, Never>, snapshot: FolderSnapshot, fileThreads: NIOThreadPool, logger: Logger) {
        self.store = store
        self.lock = lock
        self.keeper = keeper
        self.entries = snapshot.messages
        let uidls = snapshot.messages.map { Self.uidl(uidValidity: snapshot.uidValidity, uid: $0.uid) }
        self.messages = zip(uidls, snapshot.messages).map { POP3MessageInfo(uidl: $0, size: $1.virtualSize ?? $1.size) }
        self.uidByUIDL = Dictionary(zip(uidls, snapshot.messages.map(\.uid))) { first, _ in first }
        self.fileThreads = fileThreads
        self.logger = logger
    }

    static func uidl(uidValidity: UInt32, uid: UInt32) -> String {
        String(uidValidity, radix: 16) + "-" + String(uid, radix: 16)
    }

    func read(_ index: Int, chunk: ([UInt8]) async throws -> Void) async throws {
        guard entries.indices.contains(index) else { throw POP3MaildropError.noSuchMessage(index + 1) }
        let (store, message) = (self.store, entries[index])
        let handle: FileHandle = try await fileThreads.runIfActive {
            guard let path = try store.messagePath(message, in: .inbox) else {
                throw POP3MaildropError.messageGone(uid: message.uid)
            }
            return try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        }
        let box = UncheckedHandle(handle)
        defer { try? handle.close() }
        while true {
            let bytes: [UInt8] = try await fileThreads.runIfActive {
                Array(try box.handle.read(upToCount: SharedTreeMaildrop.chunkSize) ?? Data())
            }
            if bytes.isEmpty { return }
            try await chunk(bytes)
        }
    }

    static let chunkSize = POP3MailServices.chunkSize

    func commit(deleting uidls: [String]) async throws {
        let uids = uidls.compactMap { uidByUIDL[$0] }
        guard !uids.isEmpty else { return }
        let (store, lock) = (self.store, self.lock)
        try await fileThreads.runIfActive {
            // Only while the maildrop lock is still ours: a session whose lock was broken
            // (this node was stalled past the stale timeout) must not delete anything.
            try lock.verify()
            _ = try store.expunge(.inbox, uids: uids, onlyDeleted: false)
        }
        Counter(label: "svcpkg_pop3_deleted_total").increment(by: uids.count)
    }

    func release() async {
        keeper.cancel()
        let lock = self.lock
        do {
            _ = try await fileThreads.runIfActive { try lock.release() }
        } catch {
            // The pool is gone at shutdown: release on this thread rather than leave the lock to go stale.
            _ = try? lock.release()
        }
    }
}

/// FileHandle is not Sendable; each read happens on one pool thread at a time, in order.
struct UncheckedHandle: @unchecked Sendable {
    let handle: FileHandle
    init(_ handle: FileHandle) { self.handle = handle }
}

enum POP3MaildropError: Error, CustomStringConvertible {
    case noSuchMessage(Int)
    case messageGone(uid: UInt32)

    var description: String {
        switch self {
        case .noSuchMessage(let number): return "no message \(number) in the maildrop"
        case .messageGone(let uid): return "message UID \(uid) was removed from the INBOX during the session (by IMAP or another client)"
        }
    }
}
