import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One message as a folder's UID list knows it.
public struct StoredMessage: Sendable, Equatable {
    public let uid: UInt32
    public let modSeq: UInt64
    public let flags: MessageFlags
    /// Sorted.
    public let keywords: [String]
    /// The file name in `cur/` (base name, `:2,`, flag letters) when the list was read.
    public let fileName: String
    /// Bytes on disk.
    public let size: Int
    /// RFC822.SIZE (bare LFs counted as CRLF), when the file name carries `W=`.
    public let virtualSize: Int?

    /// The base name (before `:2,`): stable for the life of the message in this folder.
    public var baseName: String { MaildirFileName(fileName).base }

    /// When the message arrived, from its base name (IMAP INTERNALDATE; APPEND sets it
    /// through `deliver(now:)`).
    public var arrivalDate: Date {
        let arrival = MaildirFileName.arrival(ofBase: baseName)
        return Date(timeIntervalSince1970: Double(arrival.seconds) + Double(arrival.micros) / 1_000_000)
    }
}

/// A folder's state after a `sync` (or as last written, for `readSnapshot`).
public struct FolderSnapshot: Sendable, Equatable {
    public let folder: MailFolderName
    public let uidValidity: UInt32
    public let uidNext: UInt32
    public let highestModSeq: UInt64
    /// Ascending UID order.
    public let messages: [StoredMessage]
    /// Taken before the folder was read: compare with `MailStore.changeToken(_:)` to learn
    /// whether to sync again.
    public let token: FolderChangeToken
    let expungeFloor: UInt64
    let expunged: [UIDList.ExpungeRecord]

    /// The message with `uid`, by binary search.
    public func message(uid: UInt32) -> StoredMessage? {
        var low = 0
        var high = messages.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let candidate = messages[middle].uid
            if candidate == uid { return messages[middle] }
            if candidate < uid { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }

    /// UIDs expunged with a MODSEQ above `modSeq` (RFC 7162 §3.2.5, VANISHED (EARLIER)).
    /// `complete` is false when the log was trimmed past `modSeq`: then some expunges are
    /// missing and the caller must fall back to reporting every UID it cannot find.
    public func vanished(sinceModSeq modSeq: UInt64) -> (uids: [UInt32], complete: Bool) {
        let uids = expunged.filter { $0.modSeq > modSeq }.map(\.uid)
        return (Array(Set(uids)).sorted(), modSeq >= expungeFloor)
    }
}

/// What `store` did.
public struct StoreResult: Sendable, Equatable {
    public let snapshot: FolderSnapshot
    /// UIDs whose flags or keywords changed (each got a new MODSEQ).
    public let changed: [UInt32]
    /// UIDs left alone because their MODSEQ was above UNCHANGEDSINCE (RFC 7162 §3.1.3).
    public let failed: [UInt32]
}

/// What `expunge` did.
public struct ExpungeResult: Sendable, Equatable {
    public let snapshot: FolderSnapshot
    /// Ascending.
    public let expunged: [UInt32]
}

/// What `copy` and `move` did: the pairs for COPYUID (RFC 4315 §3), in source UID order.
public struct CopyResult: Sendable, Equatable {
    public let targetUIDValidity: UInt32
    public let sourceUIDs: [UInt32]
    public let targetUIDs: [UInt32]
    public let targetSnapshot: FolderSnapshot
}

/// How `store` combines the given flags with the message's (IMAP STORE FLAGS, +FLAGS, -FLAGS).
public enum StoreOperation: Sendable, Equatable {
    case add, remove, replace
}

/// Cheap evidence of change in a folder: the attributes of `new/`, `cur/` and the UID list
/// (three open+fstat calls, whatever the folder's size). Deliveries change `new/`; our
/// commits change the UID list; other mail programs (mutt) change `cur/`.
///
/// A session polls `changeToken` every few seconds and syncs when `needsSync` says so, so
/// changes made on another node show within one poll interval, plus the NFS attribute cache
/// time (mount the tree with a short `actimeo`; opening the file forces revalidation of
/// the file itself, directories follow the `acdir*` settings). A session's own commit
/// also changes the token, which costs it one sync that finds nothing new.
public struct FolderChangeToken: Sendable, Hashable {
    struct Stamp: Sendable, Hashable {
        var inode: UInt64 = 0
        var size: Int64 = 0
        var modified: Int64 = 0
        var changed: Int64 = 0

        init() {}

        init(_ info: FileStatus) {
            inode = UInt64(truncatingIfNeeded: info.st_ino)
            size = Int64(info.st_size)
            #if canImport(Darwin)
            modified = Int64(info.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(info.st_mtimespec.tv_nsec)
            changed = Int64(info.st_ctimespec.tv_sec) * 1_000_000_000 + Int64(info.st_ctimespec.tv_nsec)
            #else
            modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
            #endif
        }
    }

    /// A directory changed less than this long before the token was taken may change
    /// again within the same timestamp tick without showing; such a token asks for one
    /// more sync (`isRecent`), as Dovecot does with a directory mtime younger than a
    /// second. So after a change a session syncs once more on its first poll that comes
    /// more than this long after it.
    public static let recentWindow: Double = 1

    let new: Stamp
    let cur: Stamp
    let uidList: Stamp
    /// `new/` or `cur/` changed within `recentWindow` of the local clock when the token
    /// was taken. (Judged by the local clock: with a node clock far ahead of the file
    /// server's, a change in the same tick can go unseen until the next change.)
    public let isRecent: Bool

    /// True when the folder may have changed since `self` was taken, judging by `current`
    /// (a fresh `changeToken`).
    public func needsSync(current: FolderChangeToken) -> Bool {
        isRecent || new != current.new || cur != current.cur || uidList != current.uidList
    }
}

/// A user's mail store on the shared tree: Maildir++ folders, UID lists, flags, keywords,
/// quota (DESIGN.md, "The shared tree").
///
/// Layout of the home `<root>/mail/<domain>/<h1h2>/<localpart>/` (see `MailUser`):
/// ```
/// Maildir/                      INBOX: cur/ new/ tmp/, maildirsize, subscriptions,
///                               svcpkg-uidlist, svcpkg-specialuse
/// Maildir/.<Name>/              a folder: cur/ new/ tmp/, maildirfolder, svcpkg-uidlist
/// Maildir/.<Parent>.<Child>/    a subfolder (see MailFolderName for the escaping)
/// svcpkg-mailboxes.lock         the lock of create/rename/delete and the list files
/// svcpkg-uidvalidity            the last UIDVALIDITY given to a new UID list
/// svcpkg-rename                 the journal of a folder rename in progress
/// svcpkg-tmp/                   folders being built or deleted
/// ```
/// Concurrency: delivery takes no lock (tmp/, fsync, rename into new/). Everything that
/// writes a UID list holds that folder's lock (`LockFile`, `svcpkg-uidlist.lock` in the
/// folder) and verifies it just before the commit. Folder operations hold the home's
/// mailbox-list lock; an operation never waits for a second lock while holding one, except
/// `deleteFolder` (mailbox list, then the folder), which nothing takes in the other order.
///
/// Every method blocks on the file server: call them from a thread pool, never an event loop.
public struct MailStore: Sendable {
    public let layout: SharedTreeLayout
    public let user: MailUser
    /// This node's name, recorded in the locks it takes.
    public let node: String
    public let lockOptions: LockOptions
    let logger: Logger

    static let folderLockName = "svcpkg-uidlist"
    static let uidValidityFileName = "svcpkg-uidvalidity"
    /// A file in tmp/ older than this is a delivery that died (Maildir: 36 hours).
    public static let staleTemporaryAge: Double = 36 * 3600
    /// Mode of message files and store metadata: mail is private to the svcpkg user.
    static let fileMode: mode_t = 0o600
    static let directoryMode: mode_t = 0o700

    public init(layout: SharedTreeLayout, user: MailUser, node: String, lockOptions: LockOptions = LockOptions(), logger: Logger = Logger(label: "svcpkg.sharedtree.mailstore")) {
        self.layout = layout
        self.user = user
        self.node = node
        self.lockOptions = lockOptions
        var logger = logger
        logger[metadataKey: "user"] = "\(user.address)"
        self.logger = logger
    }

    /// `<root>/mail/<domain>/<h1h2>/<localpart>`.
    public var homeDirectory: String {
        PathUtil.join(PathUtil.join(PathUtil.join(layout.mailDirectory, user.domain), user.hashDirectory), user.localPart)
    }

    /// The Maildir (INBOX).
    public var maildirDirectory: String { PathUtil.join(homeDirectory, "Maildir") }

    /// The directory of `folder`: the Maildir for INBOX, else `Maildir/.<disk name>`.
    public func directory(of folder: MailFolderName) -> String {
        folder.isInbox ? maildirDirectory : PathUtil.join(maildirDirectory, "." + folder.diskName)
    }

    func paths(_ folder: MailFolderName) -> FolderPaths {
        FolderPaths(folder: folder, directory: directory(of: folder))
    }

    // MARK: - Delivery

    /// Delivers `message` into `folder` without taking a lock: `tmp/<name>`, fsync, rename
    /// into `new/<name>` (or `new/<name>:2,<flags>` when `flags` are given, as for IMAP
    /// APPEND), fsync of `new/`. When this returns the message is durable and will get a
    /// UID at the folder's next sync. Returns the file name in `new/`.
    ///
    /// With `quotaBytes`, throws `overQuota` before writing anything when the message
    /// would take the user's usage (from `maildirsize`) above it. INBOX is created when
    /// missing (mail may arrive before the first login); other folders must exist.
    @discardableResult
    public func deliver(_ message: [UInt8], to folder: MailFolderName = .inbox, flags: MessageFlags = [], quotaBytes: Int? = nil, now: Date = Date()) throws(MailStoreError) -> String {
        let folderPaths = paths(folder)
        if let quotaBytes {
            try checkQuota(adding: message.count, limit: quotaBytes)
        }
        let base = MaildirNames.newBase(size: message.count, virtualSize: MaildirNames.virtualSize(of: message), now: now)
        let temporary = PathUtil.join(folderPaths.tmp, base)
        do throws(SharedTreeError) {
            try Posix.writeNewFile(temporary, message, mode: Self.fileMode)
        } catch {
            guard error.isNotFound else { throw .storage(error) }
            if folder.isInbox {
                try createMaildir()
            } else {
                try createFolderSkeletonIfHalfMade(folderPaths)
            }
            try storage { () throws(SharedTreeError) in try Posix.writeNewFile(temporary, message, mode: Self.fileMode) }
        }
        let name = flags.isEmpty ? base : MaildirFileName.curName(base: base, info: MaildirInfo(flags: flags))
        do throws(SharedTreeError) {
            try Posix.rename(temporary, PathUtil.join(folderPaths.new, name))
            try Posix.fsyncDirectory(folderPaths.new)
        } catch {
            _ = try? Posix.unlinkIfPresent(temporary)
            throw .storage(error)
        }
        recordQuotaChange(bytes: message.count, messages: 1)
        return name
    }

    /// One message of an `append`.
    public struct Appended: Sendable {
        public var bytes: [UInt8]
        public var flags: MessageFlags
        public var keywords: [String]
        /// INTERNALDATE: the time in the file name.
        public var date: Date

        public init(bytes: [UInt8], flags: MessageFlags = [], keywords: [String] = [], date: Date = Date()) {
            self.bytes = bytes
            self.flags = flags
            self.keywords = keywords
            self.date = date
        }
    }

    /// IMAP APPEND and MULTIAPPEND (RFC 3502): every message written and fsync'd as by
    /// `deliver`, then, under the folder lock, UIDs given in the order of `messages` (after any
    /// other new arrivals, whatever the dates) with their keywords, in one sync. Returns the
    /// snapshot and the UIDs in order. A failure before the sync removes the files written.
    public func append(_ messages: [Appended], to folder: MailFolderName, quotaBytes: Int? = nil) throws(MailStoreError) -> (snapshot: FolderSnapshot, uids: [UInt32]) {
        for message in messages {
            for keyword in message.keywords { try Keywords.validate(keyword) }
        }
        if let quotaBytes {
            try checkQuota(adding: messages.reduce(0) { $0 + $1.bytes.count }, limit: quotaBytes)
        }
        let folderPaths = paths(folder)
        var written: [String] = []
        do throws(MailStoreError) {
            for message in messages {
                written.append(try deliver(message.bytes, to: folder, flags: message.flags, now: message.date))
            }
        } catch {
            for name in written { _ = try? Posix.unlinkIfPresent(PathUtil.join(folderPaths.new, name)) }
            throw error
        }
        let bases = written.map { MaildirFileName($0).base }
        var keywords: [String: [String]] = [:]
        for (base, message) in zip(bases, messages) where !message.keywords.isEmpty { keywords[base] = message.keywords }
        return try withFolderLock(folderPaths) { lock throws(MailStoreError) in
            let token = try changeToken(folderPaths)
            var state = try syncLocked(folderPaths, lock: lock, lastInOrder: bases, keywords: keywords)
            try commit(&state, lock: lock)
            var uidByBase: [String: UInt32] = [:]
            for entry in state.list.entries { uidByBase[entry.base] = entry.uid }
            return (state.snapshot(token: token), bases.compactMap { uidByBase[$0] })
        }
    }

    // MARK: - Sync and snapshots

    /// Brings the UID list up to date under the folder lock: moves `new/` files to `cur/`
    /// (adding `:2,`), gives UIDs in order of arrival to files not listed yet, takes flag
    /// changes made by other programs (new MODSEQ), drops entries whose file is gone
    /// (recorded as expunged with a MODSEQ), and returns the snapshot.
    public func sync(_ folder: MailFolderName) throws(MailStoreError) -> FolderSnapshot {
        let folderPaths = paths(folder)
        // Most syncs find nothing to do (a session's own commit, a poll in the second after
        // a change): then the list as written is the answer, and no lock is taken.
        if let snapshot = try snapshotIfInStep(folderPaths) { return snapshot }
        return try withFolderLock(folderPaths) { lock throws(MailStoreError) in
            let token = try changeToken(folderPaths)
            var state = try syncLocked(folderPaths, lock: lock)
            try commit(&state, lock: lock)
            return state.snapshot(token: token)
        }
    }

    /// The folder as its UID list says, read without the lock, when a locked sync would
    /// change nothing: no delivery waits in `new/` and `cur/` holds exactly the files the
    /// list names, under the names it gives them (so no flags changed by another program and
    /// nothing removed). nil when a locked sync is needed. A writer renames and removes files
    /// before it replaces the list, and the list is read before `cur/` is listed, so a commit
    /// running meanwhile shows as a difference here, never as a wrong snapshot.
    func snapshotIfInStep(_ folderPaths: FolderPaths) throws(MailStoreError) -> FolderSnapshot? {
        let token = try changeToken(folderPaths)
        do throws(SharedTreeError) {
            guard try !Posix.listDirectory(folderPaths.new).contains(where: { !$0.hasPrefix(".") }) else { return nil }
        } catch {
            if error.isNotFound { return nil }
            throw .storage(error)
        }
        // A list that cannot be read is the locked sync's to repair (and its errors to report).
        guard let list = try? readList(folderPaths), list.isInOrder else { return nil }
        var named = Set<String>(minimumCapacity: list.entries.count)
        for entry in list.entries {
            guard named.insert(MaildirFileName.curName(base: entry.base, info: entry.info)).inserted else { return nil }
        }
        var files = 0
        for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectory(folderPaths.cur) }) where !name.hasPrefix(".") {
            guard named.contains(name) else { return nil }
            files += 1
        }
        guard files == named.count else { return nil }
        return SyncState(folder: folderPaths.folder, list: list, names: [:], dirty: false).snapshot(token: token)
    }

    /// The UID list as last written, read without the lock (a rename replaces it whole, so
    /// the read is consistent); nil when the folder has never been synced. Files named in
    /// it may since have been renamed (flags) or removed: open them with `messagePath`.
    public func readSnapshot(_ folder: MailFolderName) throws(MailStoreError) -> FolderSnapshot? {
        let folderPaths = paths(folder)
        let token = try changeToken(folderPaths)
        guard let list = try readList(folderPaths) else { return nil }
        return SyncState(folder: folder, list: list, names: [:], dirty: false).snapshot(token: token)
    }

    /// The attributes that tell a session to sync (`FolderChangeToken`): three open+fstat
    /// calls, independent of the folder's size.
    public func changeToken(_ folder: MailFolderName) throws(MailStoreError) -> FolderChangeToken {
        try changeToken(paths(folder))
    }

    func changeToken(_ folderPaths: FolderPaths, creatingInbox: Bool = true) throws(MailStoreError) -> FolderChangeToken {
        let newInfo: FileStatus?
        let curInfo: FileStatus?
        let listInfo: FileStatus?
        do throws(SharedTreeError) {
            newInfo = try Posix.freshStatus(folderPaths.new, directory: true)
            curInfo = try Posix.freshStatus(folderPaths.cur, directory: true)
            listInfo = try Posix.freshStatus(folderPaths.uidList, directory: false)
        } catch {
            throw .storage(error)
        }
        guard let newInfo, let curInfo else {
            if folderPaths.folder.isInbox && creatingInbox {
                try createMaildir()
                return try changeToken(folderPaths, creatingInbox: false)
            }
            throw .folderNotFound(user: user.address, folder: folderPaths.folder.name)
        }
        let new = FolderChangeToken.Stamp(newInfo)
        let cur = FolderChangeToken.Stamp(curInfo)
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        let window = Int64(FolderChangeToken.recentWindow * 1_000_000_000)
        let recent = now - max(new.modified, cur.modified) < window
        return FolderChangeToken(new: new, cur: cur, uidList: listInfo.map(FolderChangeToken.Stamp.init) ?? .init(), isRecent: recent)
    }

    /// The path of `message`'s file now: the recorded name if it is still there, else the
    /// file in `cur/` with the same base name (its flags changed); nil when it is gone
    /// (expunged or moved away).
    public func messagePath(_ message: StoredMessage, in folder: MailFolderName) throws(MailStoreError) -> String? {
        let folderPaths = paths(folder)
        let recorded = PathUtil.join(folderPaths.cur, message.fileName)
        if try storage({ () throws(SharedTreeError) in try Posix.stat(recorded) }) != nil { return recorded }
        return try locate(base: message.baseName, in: folderPaths).map { PathUtil.join(folderPaths.cur, $0) }
    }

    /// The bytes of `message` (at most `maxBytes`); nil when it is gone.
    public func readMessage(_ message: StoredMessage, in folder: MailFolderName, maxBytes: Int = 1 << 30) throws(MailStoreError) -> [UInt8]? {
        for _ in 0..<3 {
            guard let path = try messagePath(message, in: folder) else { return nil }
            do throws(SharedTreeError) {
                return try AtomicFile.read(path, maxBytes: maxBytes)
            } catch {
                // Renamed (flags) between the lookup and the open: look again.
                guard error.isNotFound else { throw .storage(error) }
            }
        }
        return nil
    }

    /// The first `maxBytes` of `message` (its header, for SORT and THREAD); nil when it is gone.
    public func readMessagePrefix(_ message: StoredMessage, in folder: MailFolderName, maxBytes: Int) throws(MailStoreError) -> [UInt8]? {
        for _ in 0..<3 {
            guard let path = try messagePath(message, in: folder) else { return nil }
            do throws(SharedTreeError) {
                let fd = try Posix.open(path, O_RDONLY)
                defer { Posix.closeQuietly(fd) }
                return try Posix.readPrefix(fd, path: path, maxBytes: maxBytes)
            } catch {
                guard error.isNotFound else { throw .storage(error) }
            }
        }
        return nil
    }

    // MARK: - Flags and keywords

    /// Changes the flags and keywords of the messages with `uids` (IMAP STORE): system
    /// flags by renaming the file (`:2,` letters), keywords in the UID list; each changed
    /// message gets a new MODSEQ. With `unchangedSince` (CONDSTORE), messages whose MODSEQ
    /// is above it are left alone and reported in `failed`. UIDs not in the folder are
    /// ignored. Concurrent stores from several processes are serialised by the folder
    /// lock: per message, the last one wins and nothing else is lost.
    public func store(_ folder: MailFolderName, uids: [UInt32], _ operation: StoreOperation, flags: MessageFlags = [], keywords: [String] = [], unchangedSince: UInt64? = nil) throws(MailStoreError) -> StoreResult {
        for keyword in keywords { try Keywords.validate(keyword) }
        let keywordSet = Set(keywords)
        if keywordSet.count > Keywords.maxPerMessage {
            throw .invalidKeyword(keyword: keywords.joined(separator: " "), reason: "more than \(Keywords.maxPerMessage) keywords")
        }
        let wanted = Set(uids)
        let folderPaths = paths(folder)
        return try withFolderLock(folderPaths) { lock throws(MailStoreError) in
            let token = try changeToken(folderPaths)
            var state = try syncLocked(folderPaths, lock: lock)
            var toucher = LockToucher(lock: lock)
            var changed: [UInt32] = []
            var failed: [UInt32] = []
            for index in state.list.entries.indices where wanted.contains(state.list.entries[index].uid) {
                let entry = state.list.entries[index]
                if let unchangedSince, entry.modSeq > unchangedSince {
                    failed.append(entry.uid)
                    continue
                }
                var info = entry.info
                var newKeywords = Set(entry.keywords)
                switch operation {
                case .add:
                    info.flags.formUnion(flags)
                    newKeywords.formUnion(keywordSet)
                case .remove:
                    info.flags.subtract(flags)
                    newKeywords.subtract(keywordSet)
                case .replace:
                    info.flags = flags
                    newKeywords = keywordSet
                }
                if newKeywords.count > Keywords.maxPerMessage {
                    // Left alone, like a message that failed UNCHANGEDSINCE: the rest go on.
                    failed.append(entry.uid)
                    continue
                }
                let sortedKeywords = newKeywords.sorted()
                if info == entry.info && sortedKeywords == entry.keywords { continue }
                if info != entry.info {
                    guard let oldName = state.names[entry.base] else { continue }
                    let newName = MaildirFileName.curName(base: entry.base, info: info)
                    do throws(SharedTreeError) {
                        try Posix.rename(PathUtil.join(folderPaths.cur, oldName), PathUtil.join(folderPaths.cur, newName))
                    } catch {
                        // Moved or removed by another program meanwhile: the next sync sees it.
                        guard error.isNotFound else { throw .storage(error) }
                        continue
                    }
                    state.names[entry.base] = newName
                }
                state.list.highestModSeq += 1
                state.list.entries[index].info = info
                state.list.entries[index].keywords = sortedKeywords
                state.list.entries[index].modSeq = state.list.highestModSeq
                state.dirty = true
                changed.append(entry.uid)
                try toucher.touchIfDue()
            }
            // Flag changes are not made durable (no fsync of cur/ or of the list), as Dovecot
            // does not: a crash of the file server can undo the last ones, which loses no
            // message; a sync that also gave new messages UIDs is still made durable.
            try commit(&state, lock: lock, durable: false)
            return StoreResult(snapshot: state.snapshot(token: token), changed: changed, failed: failed)
        }
    }

    // MARK: - Expunge

    /// Removes messages (IMAP EXPUNGE / UID EXPUNGE, POP3 DELE at QUIT): those flagged
    /// `\Deleted` (restricted to `uids` when given), or with `onlyDeleted: false` exactly
    /// the `uids` given. The expunged UIDs are recorded with one new MODSEQ for VANISHED.
    public func expunge(_ folder: MailFolderName, uids: [UInt32]? = nil, onlyDeleted: Bool = true) throws(MailStoreError) -> ExpungeResult {
        let wanted = uids.map { Set($0) }
        let folderPaths = paths(folder)
        var removedBytes = 0
        let result = try withFolderLock(folderPaths) { lock throws(MailStoreError) -> ExpungeResult in
            let token = try changeToken(folderPaths)
            var state = try syncLocked(folderPaths, lock: lock)
            var toucher = LockToucher(lock: lock)
            var removed: [UInt32] = []
            var kept: [UIDList.Entry] = []
            kept.reserveCapacity(state.list.entries.count)
            for entry in state.list.entries {
                let selected = (wanted?.contains(entry.uid) ?? true) && (!onlyDeleted || entry.info.flags.contains(.deleted))
                guard selected, let name = state.names[entry.base] else {
                    kept.append(entry)
                    continue
                }
                try storage { () throws(SharedTreeError) in try Posix.unlinkIfPresent(PathUtil.join(folderPaths.cur, name)) }
                state.names[entry.base] = nil
                removed.append(entry.uid)
                removedBytes += entry.size
                try toucher.touchIfDue()
            }
            if !removed.isEmpty {
                try storage { () throws(SharedTreeError) in try Posix.fsyncDirectory(folderPaths.cur) }
                state.list.entries = kept
                state.list.highestModSeq += 1
                state.list.recordExpunged(removed, modSeq: state.list.highestModSeq)
                state.dirty = true
            }
            try commit(&state, lock: lock)
            return ExpungeResult(snapshot: state.snapshot(token: token), expunged: removed)
        }
        if !result.expunged.isEmpty { recordQuotaChange(bytes: -removedBytes, messages: -result.expunged.count) }
        return result
    }

    // MARK: - Copy and move

    /// Copies the messages with `uids` (as the source's UID list names them) into `target`
    /// (IMAP COPY): each file is hard-linked (or, where links fail, copied and fsynced)
    /// into the target's `tmp/` without a lock, then, under the target's lock, renamed into
    /// its `cur/` with the same flags and given UIDs in source order. Keywords go along.
    /// UIDs not in the source are skipped.
    public func copy(uids: [UInt32], from source: MailFolderName, to target: MailFolderName) throws(MailStoreError) -> CopyResult {
        let sourcePaths = paths(source)
        let targetPaths = paths(target)
        let entries = try selectedEntries(uids, in: sourcePaths)
        try requireFolder(targetPaths)
        var prepared: [PreparedMessage] = []
        do throws(MailStoreError) {
            for entry in entries {
                let base = MaildirNames.newBase(size: entry.size, virtualSize: entry.virtualSize)
                let temporary = PathUtil.join(targetPaths.tmp, base)
                guard try linkOrCopy(entry, from: sourcePaths, to: temporary) else { continue }
                prepared.append(PreparedMessage(sourceUID: entry.uid, base: base, info: MaildirInfo(flags: entry.info.flags), keywords: entry.keywords, size: entry.size))
            }
            try storage { () throws(SharedTreeError) in try Posix.fsyncDirectory(targetPaths.tmp) }
        } catch {
            for message in prepared { _ = try? Posix.unlinkIfPresent(PathUtil.join(targetPaths.tmp, message.base)) }
            throw error
        }
        let result = try withFolderLock(targetPaths) { lock throws(MailStoreError) -> CopyResult in
            var toucher = LockToucher(lock: lock)
            for message in prepared {
                try storage { () throws(SharedTreeError) in
                    try Posix.rename(PathUtil.join(targetPaths.tmp, message.base), PathUtil.join(targetPaths.cur, message.curName))
                }
                try toucher.touchIfDue()
            }
            try storage { () throws(SharedTreeError) in try Posix.fsyncDirectory(targetPaths.cur) }
            return try assignTargetUIDs(prepared, in: targetPaths, lock: lock)
        }
        let bytes = prepared.reduce(0) { $0 + $1.size }
        if !prepared.isEmpty { recordQuotaChange(bytes: bytes, messages: prepared.count) }
        return result
    }

    /// Moves the messages with `uids` into `target` (IMAP MOVE, RFC 6851): under the
    /// target's lock each file is renamed from the source's `cur/` into the target's `cur/`
    /// under a new unique name and given a target UID (in source order); then the source is
    /// synced, which records the expunges.
    ///
    /// Crash safety: one rename(2) per message, so at every instant the file is in exactly
    /// one folder — never in both, never in neither. A crash after the rename and before
    /// the target's UID list is written leaves the file in the target's `cur/` without a
    /// UID (the next sync of the target gives it one; the COPYUID answer is lost); a crash
    /// before the source's sync leaves a source entry without its file (the next sync of
    /// the source records it as expunged). Readers of the target see each message once.
    public func move(uids: [UInt32], from source: MailFolderName, to target: MailFolderName) throws(MailStoreError) -> CopyResult {
        let sourcePaths = paths(source)
        let targetPaths = paths(target)
        if source == target {
            throw .invalidFolderName(name: target.name, reason: "a message cannot be moved into the folder it is in")
        }
        let entries = try selectedEntries(uids, in: sourcePaths)
        try requireFolder(targetPaths)
        let result = try withFolderLock(targetPaths) { lock throws(MailStoreError) -> CopyResult in
            var toucher = LockToucher(lock: lock)
            var moved: [PreparedMessage] = []
            for entry in entries {
                let message = PreparedMessage(
                    sourceUID: entry.uid, base: MaildirNames.newBase(size: entry.size, virtualSize: entry.virtualSize),
                    info: MaildirInfo(flags: entry.info.flags), keywords: entry.keywords, size: entry.size)
                if try renameAcross(entry, from: sourcePaths, to: PathUtil.join(targetPaths.cur, message.curName)) {
                    moved.append(message)
                }
                try toucher.touchIfDue()
            }
            if !moved.isEmpty {
                try storage { () throws(SharedTreeError) in
                    try Posix.fsyncDirectory(targetPaths.cur)
                    try Posix.fsyncDirectory(sourcePaths.cur)
                }
            }
            return try assignTargetUIDs(moved, in: targetPaths, lock: lock)
        }
        // The messages have moved: a failure to record the expunges now must not make the
        // client retry the MOVE (it would find nothing to move). The next sync records them.
        do throws(MailStoreError) {
            _ = try sync(source)
        } catch {
            logger.warning("moved messages; recording their expunge in the source failed and is left to its next sync", metadata: [
                "folder": "\(source.name)", "error": "\(error)",
            ])
        }
        return result
    }

    // MARK: - Internals

    struct FolderPaths {
        let folder: MailFolderName
        let directory: String
        var cur: String { PathUtil.join(directory, "cur") }
        var new: String { PathUtil.join(directory, "new") }
        var tmp: String { PathUtil.join(directory, "tmp") }
        var uidList: String { PathUtil.join(directory, UIDList.fileName) }
    }

    struct PreparedMessage {
        let sourceUID: UInt32
        let base: String
        let info: MaildirInfo
        let keywords: [String]
        let size: Int
        var curName: String { MaildirFileName.curName(base: base, info: info) }
    }

    /// A UID list being brought up to date under the lock, with the `cur/` names found.
    struct SyncState {
        let folder: MailFolderName
        var list: UIDList
        /// Base name → current file name in `cur/`, for every file found.
        var names: [String: String]
        var dirty: Bool
        /// UIDNEXT and UIDVALIDITY of the list on disk (0 when there was none).
        var loadedUIDNext: UInt32 = 0
        var loadedUIDValidity: UInt32 = 0

        func snapshot(token: FolderChangeToken) -> FolderSnapshot {
            let messages = list.entries.map { entry in
                StoredMessage(
                    uid: entry.uid, modSeq: entry.modSeq, flags: entry.info.flags, keywords: entry.keywords,
                    fileName: names[entry.base] ?? MaildirFileName.curName(base: entry.base, info: entry.info),
                    size: entry.size, virtualSize: entry.virtualSize)
            }
            return FolderSnapshot(
                folder: folder, uidValidity: list.uidValidity, uidNext: list.uidNext, highestModSeq: list.highestModSeq,
                messages: messages, token: token, expungeFloor: list.expungeFloor, expunged: list.expunged)
        }
    }

    /// Touches a held lock when a quarter of the stale timeout has passed since the last
    /// touch, so long loops under the lock keep it fresh.
    struct LockToucher {
        let lock: LockFile
        var last = ContinuousClock.now

        init(lock: LockFile) { self.lock = lock }

        mutating func touchIfDue() throws(MailStoreError) {
            let now = ContinuousClock.now
            guard seconds(now - last) > lock.options.touchInterval else { return }
            try storage { () throws(SharedTreeError) in try lock.touch() }
            last = now
        }
    }

    var lockLogger: Logger {
        var logger = LockFile.defaultLogger
        logger[metadataKey: "user"] = "\(user.address)"
        return logger
    }

    /// Runs `body` holding `folder`'s lock. A missing INBOX is created; a missing folder is
    /// `folderNotFound`.
    func withFolderLock<T>(_ folderPaths: FolderPaths, _ body: (LockFile) throws(MailStoreError) -> T) throws(MailStoreError) -> T {
        let lock: LockFile
        do throws(SharedTreeError) {
            lock = try LockFile.acquire(name: Self.folderLockName, in: folderPaths.directory, node: node, options: lockOptions, logger: lockLogger)
        } catch {
            guard error.isNotFound else { throw .storage(error) }
            guard folderPaths.folder.isInbox else {
                throw .folderNotFound(user: user.address, folder: folderPaths.folder.name)
            }
            try createMaildir()
            lock = try storage { () throws(SharedTreeError) in
                try LockFile.acquire(name: Self.folderLockName, in: folderPaths.directory, node: node, options: lockOptions, logger: lockLogger)
            }
        }
        defer { _ = try? lock.release() }
        return try body(lock)
    }

    /// Throws `folderNotFound` unless the folder's directory exists (INBOX is created).
    func requireFolder(_ folderPaths: FolderPaths) throws(MailStoreError) {
        if try storage({ () throws(SharedTreeError) in try Posix.stat(folderPaths.cur) }) != nil { return }
        if folderPaths.folder.isInbox {
            try createMaildir()
            return
        }
        if try storage({ () throws(SharedTreeError) in try Posix.stat(folderPaths.directory) }) != nil {
            try createFolderSkeletonIfHalfMade(folderPaths)
            return
        }
        throw .folderNotFound(user: user.address, folder: folderPaths.folder.name)
    }

    /// Creates the home and the Maildir with cur/ new/ tmp/ (`mkdir -p`; `<root>/mail`
    /// must exist, so an unmounted tree is never written to).
    func createMaildir() throws(MailStoreError) {
        let mail = layout.mailDirectory
        guard let info = try storage({ () throws(SharedTreeError) in try Posix.stat(mail) }) else {
            throw .storage(.io(operation: "stat", path: mail, code: ENOENT))
        }
        guard Posix.isDirectory(info) else { throw .storage(.notADirectory(path: mail)) }
        try storage { () throws(SharedTreeError) in
            let domain = PathUtil.join(mail, user.domain)
            let hash = PathUtil.join(domain, user.hashDirectory)
            try Posix.mkdir(domain, mode: 0o755)
            try Posix.mkdir(hash, mode: 0o755)
            try Posix.mkdir(homeDirectory, mode: Self.directoryMode)
            try Posix.mkdir(maildirDirectory, mode: Self.directoryMode)
            for sub in ["cur", "new", "tmp"] {
                try Posix.mkdir(PathUtil.join(maildirDirectory, sub), mode: Self.directoryMode)
            }
        }
    }

    /// A folder directory without cur/ new/ tmp/ (made by hand, or by another program that
    /// died): completes it.
    func createFolderSkeletonIfHalfMade(_ folderPaths: FolderPaths) throws(MailStoreError) {
        guard let info = try storage({ () throws(SharedTreeError) in try Posix.stat(folderPaths.directory) }), Posix.isDirectory(info) else {
            throw .folderNotFound(user: user.address, folder: folderPaths.folder.name)
        }
        try storage { () throws(SharedTreeError) in
            for sub in [folderPaths.cur, folderPaths.new, folderPaths.tmp] {
                try Posix.mkdir(sub, mode: Self.directoryMode)
            }
        }
    }

    /// The UID list as last written; nil when there is none.
    func readList(_ folderPaths: FolderPaths) throws(MailStoreError) -> UIDList? {
        switch try storage({ () throws(SharedTreeError) in try UIDListRead.read(folderPaths.uidList) }) {
        case .missing: return nil
        case .parsed(let list): return list
        case .unreadable(_, let error): throw .storage(error)
        }
    }

    /// The source entries for copy/move, ascending by UID, from the last written list.
    func selectedEntries(_ uids: [UInt32], in folderPaths: FolderPaths) throws(MailStoreError) -> [UIDList.Entry] {
        try requireFolder(folderPaths)
        guard let list = try readList(folderPaths) else { return [] }
        let wanted = Set(uids)
        return list.entries.filter { wanted.contains($0.uid) }.sorted { $0.uid < $1.uid }
    }

    /// The current name in `cur/` of the file with `base`, by listing `cur/`.
    func locate(base: String, in folderPaths: FolderPaths) throws(MailStoreError) -> String? {
        for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(folderPaths.cur) }) where !name.hasPrefix(".") {
            if MaildirFileName(name).base == base { return name }
        }
        return nil
    }

    /// Hard-links (else copies) the source file of `entry` to `destination`. False when the
    /// source file is gone.
    func linkOrCopy(_ entry: UIDList.Entry, from folderPaths: FolderPaths, to destination: String) throws(MailStoreError) -> Bool {
        var name = MaildirFileName.curName(base: entry.base, info: entry.info)
        for attempt in 0..<3 {
            let source = PathUtil.join(folderPaths.cur, name)
            do throws(SharedTreeError) {
                try Posix.hardLink(source, destination)
                return true
            } catch {
                switch error.errnoCode {
                case ENOENT:
                    guard attempt < 2, let current = try locate(base: entry.base, in: folderPaths) else { return false }
                    name = current
                case EXDEV, EPERM, EMLINK, ENOTSUP, EOPNOTSUPP:
                    do throws(SharedTreeError) {
                        try Posix.copyFile(source, destination, mode: Self.fileMode)
                        return true
                    } catch {
                        guard error.isNotFound, attempt < 2, let current = try locate(base: entry.base, in: folderPaths) else {
                            if error.isNotFound { return false }
                            throw .storage(error)
                        }
                        name = current
                    }
                default:
                    throw .storage(error)
                }
            }
        }
        return false
    }

    /// Renames the source file of `entry` to `destination`. False when it is gone.
    func renameAcross(_ entry: UIDList.Entry, from folderPaths: FolderPaths, to destination: String) throws(MailStoreError) -> Bool {
        var name = MaildirFileName.curName(base: entry.base, info: entry.info)
        for attempt in 0..<3 {
            do throws(SharedTreeError) {
                try Posix.rename(PathUtil.join(folderPaths.cur, name), destination)
                return true
            } catch {
                guard error.isNotFound else { throw .storage(error) }
                // Renamed (flags) by another process since the list was written, or gone.
                guard attempt < 2, let current = try locate(base: entry.base, in: folderPaths) else { return false }
                name = current
            }
        }
        return false
    }

    /// Under the target's lock, with `messages` already in its `cur/`: syncs, giving them
    /// UIDs after any other new arrivals and in the given order, and commits.
    func assignTargetUIDs(_ messages: [PreparedMessage], in folderPaths: FolderPaths, lock: LockFile) throws(MailStoreError) -> CopyResult {
        let token = try changeToken(folderPaths)
        var keywords: [String: [String]] = [:]
        for message in messages where !message.keywords.isEmpty { keywords[message.base] = message.keywords }
        var state = try syncLocked(folderPaths, lock: lock, lastInOrder: messages.map(\.base), keywords: keywords)
        try commit(&state, lock: lock)
        var uidByBase: [String: UInt32] = [:]
        for entry in state.list.entries { uidByBase[entry.base] = entry.uid }
        var sourceUIDs: [UInt32] = []
        var targetUIDs: [UInt32] = []
        for message in messages {
            guard let uid = uidByBase[message.base] else { continue }
            sourceUIDs.append(message.sourceUID)
            targetUIDs.append(uid)
        }
        return CopyResult(targetUIDValidity: state.list.uidValidity, sourceUIDs: sourceUIDs, targetUIDs: targetUIDs, targetSnapshot: state.snapshot(token: token))
    }

    /// The heart of `sync`, under the folder lock. `lastInOrder` names base names that get
    /// their UIDs after all other new files and in that order (copy/move: COPYUID pairs
    /// must be in source order); `keywords` gives new files their keywords.
    func syncLocked(_ folderPaths: FolderPaths, lock: LockFile, lastInOrder: [String] = [], keywords: [String: [String]] = [:]) throws(MailStoreError) -> SyncState {
        var toucher = LockToucher(lock: lock)
        var (list, dirty) = try loadListForWriting(folderPaths)
        // A list made or repaired just now counts as new: its first commit is durable.
        let loaded: (uidNext: UInt32, uidValidity: UInt32) = dirty ? (0, 0) : (list.uidNext, list.uidValidity)

        // new/ → cur/, adding the empty info `:2,` (a file delivered with flags has it already).
        var newNames: [String]
        do throws(SharedTreeError) {
            newNames = try Posix.listDirectory(folderPaths.new)
        } catch {
            guard error.isNotFound else { throw .storage(error) }
            try createFolderSkeletonIfHalfMade(folderPaths)
            newNames = []
        }
        var movedAny = false
        for name in newNames where !name.hasPrefix(".") {
            let target = name.contains(":") ? name : name + ":2,"
            do throws(SharedTreeError) {
                try Posix.rename(PathUtil.join(folderPaths.new, name), PathUtil.join(folderPaths.cur, target))
                movedAny = true
            } catch {
                guard error.isNotFound else { throw .storage(error) }
            }
            try toucher.touchIfDue()
        }
        if movedAny { try storage { () throws(SharedTreeError) in try Posix.fsyncDirectory(folderPaths.cur) } }

        var names: [String: String] = [:]
        for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectory(folderPaths.cur) }) where !name.hasPrefix(".") {
            let base = MaildirFileName(name).base
            // Two files with one base name only come from other programs; keep one, the
            // consistency check reports the other.
            if let existing = names[base], existing < name { continue }
            names[base] = name
        }
        try toucher.touchIfDue()

        // Listed messages: still there (flags changed by another program?) or gone.
        var listed = Set<String>()
        listed.reserveCapacity(list.entries.count)
        var kept: [UIDList.Entry] = []
        kept.reserveCapacity(list.entries.count)
        var gone: [UInt32] = []
        for var entry in list.entries {
            guard let name = names[entry.base] else {
                gone.append(entry.uid)
                continue
            }
            listed.insert(entry.base)
            let info = MaildirFileName(name).info ?? MaildirInfo()
            if info != entry.info {
                list.highestModSeq += 1
                entry.info = info
                entry.modSeq = list.highestModSeq
                dirty = true
            }
            kept.append(entry)
        }
        list.entries = kept
        if !gone.isEmpty {
            list.highestModSeq += 1
            list.recordExpunged(gone, modSeq: list.highestModSeq)
            dirty = true
        }

        // New files: UIDs in order of arrival, then the copied/moved ones in their order.
        let pending = Set(lastInOrder)
        var arrivals: [(key: (Int, Int), base: String)] = []
        for base in names.keys where !listed.contains(base) && !pending.contains(base) {
            let arrival = MaildirFileName.arrival(ofBase: base)
            arrivals.append(((arrival.seconds, arrival.micros), base))
        }
        arrivals.sort { $0.key != $1.key ? $0.key < $1.key : $0.base < $1.base }
        var order = arrivals.map(\.base)
        for base in lastInOrder where names[base] != nil && !listed.contains(base) { order.append(base) }
        for base in order {
            guard let name = names[base] else { continue }
            guard list.uidNext < UInt32.max else {
                throw .uidSpaceExhausted(user: user.address, folder: folderPaths.folder.name)
            }
            let sizes = MaildirFileName.sizes(ofBase: base)
            var size = sizes.size
            if size == nil {
                size = try storage { () throws(SharedTreeError) in try Posix.stat(PathUtil.join(folderPaths.cur, name)) }.map { Int($0.st_size) }
            }
            guard let size else { continue }  // removed by another program this instant
            list.highestModSeq += 1
            list.entries.append(UIDList.Entry(
                uid: list.uidNext, modSeq: list.highestModSeq, info: MaildirFileName(name).info ?? MaildirInfo(), size: size,
                virtualSize: sizes.virtualSize, base: base, keywords: keywords[base] ?? []))
            list.uidNext += 1
            listed.insert(base)
            dirty = true
            try toucher.touchIfDue()
        }
        return SyncState(
            folder: folderPaths.folder, list: list, names: names, dirty: dirty, loadedUIDNext: loaded.uidNext,
            loadedUIDValidity: loaded.uidValidity)
    }

    /// The list to update under the lock: the file as written (repaired if its order is
    /// off), a new list when there is none, or a new UIDVALIDITY when it is unreadable.
    func loadListForWriting(_ folderPaths: FolderPaths) throws(MailStoreError) -> (UIDList, dirty: Bool) {
        var list: UIDList
        switch try storage({ () throws(SharedTreeError) in try UIDListRead.read(folderPaths.uidList) }) {
        case .missing:
            return (UIDList(uidValidity: try newUIDValidity(folderPaths, above: nil)), true)
        case .unreadable(let bytes, let error):
            return try replaceLostList(folderPaths, previous: bytes, reason: "\(error)")
        case .parsed(let parsed):
            list = parsed
        }
        let repaired = list.repairOrder()
        if repaired {
            logger.warning("UID list was out of order or had duplicates; repaired", metadata: ["folder": "\(folderPaths.folder.name)"])
        }
        return (list, repaired)
    }

    /// A list that cannot be read is kept aside for the operator and replaced; the new
    /// UIDVALIDITY is above the old one when the old header is still legible, so clients
    /// drop their caches (RFC 9051 §2.3.1.1).
    func replaceLostList(_ folderPaths: FolderPaths, previous: [UInt8]?, reason: String) throws(MailStoreError) -> (UIDList, dirty: Bool) {
        var oldValidity: UInt32?
        if let previous, let header = previous.split(separator: UInt8(ascii: "\n")).first {
            for field in String(decoding: header, as: UTF8.self).split(separator: " ") where field.hasPrefix("uidvalidity=") {
                oldValidity = UInt32(field.dropFirst("uidvalidity=".count))
            }
        }
        let aside = folderPaths.uidList + ".broken." + randomToken()
        try storage { () throws(SharedTreeError) in try Posix.rename(folderPaths.uidList, aside) }
        logger.error("UID list unreadable; kept aside and rebuilt with a new UIDVALIDITY (clients will resynchronise)", metadata: [
            "folder": "\(folderPaths.folder.name)", "path": "\(aside)", "reason": "\(reason)",
        ])
        return (UIDList(uidValidity: try newUIDValidity(folderPaths, above: oldValidity)), true)
    }

    /// UIDVALIDITY for a new list: the file server clock in seconds, but above the last
    /// value given out in this home (`svcpkg-uidvalidity`, so a folder deleted and made
    /// again within one second still gets a new one) and above `above` when given.
    func newUIDValidity(_ folderPaths: FolderPaths, above: UInt32?) throws(MailStoreError) -> UInt32 {
        let now = try storage { () throws(SharedTreeError) in try FileServerClock.now(in: folderPaths.directory) }
        let path = PathUtil.join(homeDirectory, Self.uidValidityFileName)
        var last: UInt32 = 0
        do throws(SharedTreeError) {
            let text = String(decoding: try AtomicFile.read(path, maxBytes: 64), as: UTF8.self)
            last = UInt32(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        } catch {
            guard error.isNotFound else { throw .storage(error) }
        }
        var value = UInt32(clamping: max(1, Int64(now.timeIntervalSince1970)))
        for floor in [last, above ?? 0] where value <= floor {
            value = floor == UInt32.max ? 1 : floor + 1
        }
        let written = value
        try storage { () throws(SharedTreeError) in try AtomicFile.write(Array("\(written)\n".utf8), to: path, mode: Self.fileMode) }
        return value
    }

    /// Verifies the lock and writes the list if it changed.
    /// Writes the list when it changed. `durable: false` skips the fsyncs unless the list
    /// gives out UIDs (or a UIDVALIDITY) it did not have on disk: a UID handed out must never
    /// be handed out again after a crash.
    func commit(_ state: inout SyncState, lock: LockFile, durable: Bool = true) throws(MailStoreError) {
        guard state.dirty else { return }
        let bytes = state.list.encoded()
        let mustLast = durable || state.list.uidNext != state.loadedUIDNext || state.list.uidValidity != state.loadedUIDValidity
        let path = paths(state.folder).uidList
        try storage { () throws(SharedTreeError) in
            try lock.verify()
            UIDListCache.shared.forget(path)
            try AtomicFile.write(bytes, to: path, mode: Self.fileMode, durable: mustLast)
            // Under the lock nobody else replaces the file: what is there now is this list,
            // so the next read (ours or another session's on this node) needs no parse.
            if let status = try Posix.freshStatus(path, directory: false) {
                UIDListCache.shared.keep(state.list, at: path, stamp: FolderChangeToken.Stamp(status))
            }
        }
        state.dirty = false
        state.loadedUIDNext = state.list.uidNext
        state.loadedUIDValidity = state.list.uidValidity
    }
}

extension UIDList {
    /// What `repairOrder` would leave as it is, as far as a reader can tell cheaply: UIDs
    /// ascending below UIDNEXT, MODSEQs at most HIGHESTMODSEQ (duplicate base names are the
    /// caller's to see).
    var isInOrder: Bool {
        var previous: UInt32 = 0
        for entry in entries {
            guard entry.uid > previous, entry.modSeq <= highestModSeq else { return false }
            previous = entry.uid
        }
        return previous < uidNext && expunged.allSatisfy { $0.modSeq <= highestModSeq }
    }

    /// Sorts entries by UID and drops duplicate UIDs and base names (first kept); raises
    /// UIDNEXT and HIGHESTMODSEQ above what is listed. True when anything changed.
    mutating func repairOrder() -> Bool {
        var changed = false
        var previous: UInt32 = 0
        var ascending = true
        for entry in entries {
            if entry.uid <= previous { ascending = false }
            previous = entry.uid
        }
        if !ascending {
            var seenUIDs = Set<UInt32>()
            var seenBases = Set<String>()
            entries = entries.filter { seenUIDs.insert($0.uid).inserted && seenBases.insert($0.base).inserted }
            entries.sort { $0.uid < $1.uid }
            changed = true
        } else {
            var seenBases = Set<String>()
            let count = entries.count
            entries = entries.filter { seenBases.insert($0.base).inserted }
            if entries.count != count { changed = true }
        }
        if let last = entries.last, uidNext <= last.uid {
            uidNext = last.uid < UInt32.max ? last.uid + 1 : UInt32.max
            changed = true
        }
        let maxModSeq = max(entries.map(\.modSeq).max() ?? 0, expunged.map(\.modSeq).max() ?? 0)
        if highestModSeq < maxModSeq {
            highestModSeq = maxModSeq
            changed = true
        }
        return changed
    }
}
