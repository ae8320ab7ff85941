import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 6154 special-use attributes of the folders made on first login.
public enum SpecialUse: String, Sendable, CaseIterable, Hashable {
    case sent = "\\Sent"
    case drafts = "\\Drafts"
    case trash = "\\Trash"
    case junk = "\\Junk"
    case archive = "\\Archive"
}

/// One line of a folder listing (IMAP LIST).
public struct FolderListEntry: Sendable, Equatable {
    public let name: MailFolderName
    /// False for a parent that exists only through its subfolders (IMAP `\NonExistent`,
    /// which implies `\Noselect`).
    public let exists: Bool
    public let hasChildren: Bool
    public let specialUse: SpecialUse?
    public let subscribed: Bool
}

/// Folder operations: create, rename, delete, list, subscriptions, special use. All of them
/// hold the home's mailbox-list lock (`svcpkg-mailboxes.lock`).
///
/// On disk besides the folders: `Maildir/subscriptions` (one folder name per line, as
/// Courier and Dovecot keep it; names use `/` between levels) and
/// `Maildir/svcpkg-specialuse` (one `<attribute> <folder name>` line per special-use
/// folder, e.g. `\Sent Sent`).
///
/// A folder is created complete or not at all: it is built (cur/ new/ tmp/, an empty
/// `maildirfolder`) in `svcpkg-tmp/` in the home and renamed into the Maildir. A rename
/// with subfolders is several rename(2) calls, so it is journalled first: `svcpkg-rename`
/// in the home names the old and new prefix, and whoever next takes the mailbox-list lock
/// (every folder operation, and `listFolders` when it sees the journal) finishes it, so
/// after a crash the folder and its subfolders end up all under the new name.
extension MailStore {
    /// The folders `ensureDefaultFolders` makes, with their attribute.
    public static let defaultFolders: [(name: String, use: SpecialUse)] = [
        ("Sent", .sent), ("Drafts", .drafts), ("Trash", .trash), ("Junk", .junk), ("Archive", .archive),
    ]

    static let mailboxListLockName = "svcpkg-mailboxes"
    static let renameJournalName = "svcpkg-rename"
    static let workDirectoryName = "svcpkg-tmp"
    static let subscriptionsFileName = "subscriptions"
    static let specialUseFileName = "svcpkg-specialuse"
    static let maxListFileBytes = 1 << 20

    var renameJournalPath: String { PathUtil.join(homeDirectory, Self.renameJournalName) }
    var workDirectory: String { PathUtil.join(homeDirectory, Self.workDirectoryName) }
    var subscriptionsPath: String { PathUtil.join(maildirDirectory, Self.subscriptionsFileName) }
    var specialUsePath: String { PathUtil.join(maildirDirectory, Self.specialUseFileName) }

    // MARK: - Public API

    /// Creates `folder` and any missing parents (IMAP CREATE), optionally with a
    /// special-use attribute (RFC 6154 CREATE-SPECIAL-USE). Throws `folderExists` when it
    /// exists (INBOX always does).
    public func createFolder(_ folder: MailFolderName, specialUse: SpecialUse? = nil) throws(MailStoreError) {
        if folder.isInbox { throw .folderExists(user: user.address, folder: folder.name) }
        try withMailboxListLock { _ throws(MailStoreError) in
            for ancestor in folder.ancestors where try !folderDirectoryExists(ancestor) {
                _ = try makeFolderDirectory(ancestor)
            }
            guard try makeFolderDirectory(folder) else {
                throw .folderExists(user: user.address, folder: folder.name)
            }
            if let specialUse {
                try updateSpecialUse { entries in
                    entries.removeAll { $0.use == specialUse || $0.folder == folder.name }
                    entries.append((specialUse, folder.name))
                }
            }
        }
    }

    /// Renames `source` and its subfolders to `target` (IMAP RENAME), creating missing
    /// parents of `target`; subscriptions and special-use attributes follow. Renaming INBOX
    /// moves its messages into the new folder and leaves INBOX empty (RFC 9051 §6.3.6).
    public func renameFolder(_ source: MailFolderName, to target: MailFolderName) throws(MailStoreError) {
        if target.isInbox { throw .folderExists(user: user.address, folder: target.name) }
        if source.isInbox {
            try createFolder(target)
            let snapshot = try sync(.inbox)
            _ = try move(uids: snapshot.messages.map(\.uid), from: .inbox, to: target)
            return
        }
        if target.isSameOrInside(source) {
            throw .renameIntoItself(user: user.address, from: source.name, to: target.name)
        }
        try withMailboxListLock { listLock throws(MailStoreError) in
            let existing = try folderDiskNames()
            let moving = existing.filter { $0 == source.diskName || $0.hasPrefix(source.diskName + ".") }
            if moving.isEmpty { throw .folderNotFound(user: user.address, folder: source.name) }
            if existing.contains(where: { $0 == target.diskName || $0.hasPrefix(target.diskName + ".") }) {
                throw .folderExists(user: user.address, folder: target.name)
            }
            for ancestor in target.ancestors where try !folderDirectoryExists(ancestor) {
                _ = try makeFolderDirectory(ancestor)
            }
            // Wait for sessions working in the folders, so none commits into a moved one.
            var locks: [(LockFile, String)] = []
            defer {
                // Released where the folder ended up: under the new name, or still the old one.
                for (lock, directory) in locks where (try? relocated(lock, to: directory).release()) != true {
                    _ = try? lock.release()
                }
            }
            for name in moving.sorted() {
                let directory = PathUtil.join(maildirDirectory, "." + name)
                let lock = try storage { () throws(SharedTreeError) in
                    try LockFile.acquire(name: Self.folderLockName, in: directory, node: node, options: lockOptions, logger: lockLogger)
                }
                let newName = target.diskName + name.dropFirst(source.diskName.count)
                locks.append((lock, PathUtil.join(maildirDirectory, "." + newName)))
            }
            let journal = "\(Self.renameJournalName) 1\n\(source.diskName)\n\(target.diskName)\n"
            try storage { () throws(SharedTreeError) in
                try listLock.verify()
                try AtomicFile.write(Array(journal.utf8), to: renameJournalPath, mode: Self.fileMode)
            }
            try finishRename(from: source, to: target)
        }
    }

    /// Deletes `folder` and the messages in it (IMAP DELETE). INBOX cannot be deleted; a
    /// folder with subfolders is refused (`folderHasChildren`): delete those first.
    public func deleteFolder(_ folder: MailFolderName) throws(MailStoreError) {
        if folder.isInbox { throw .cannotDeleteInbox(user: user.address) }
        var usage = QuotaUsage(bytes: 0, messages: 0)
        try withMailboxListLock { listLock throws(MailStoreError) in
            let existing = try folderDiskNames()
            guard existing.contains(folder.diskName) else {
                if existing.contains(where: { $0.hasPrefix(folder.diskName + ".") }) {
                    throw .folderHasChildren(user: user.address, folder: folder.name)
                }
                throw .folderNotFound(user: user.address, folder: folder.name)
            }
            if existing.contains(where: { $0.hasPrefix(folder.diskName + ".") }) {
                throw .folderHasChildren(user: user.address, folder: folder.name)
            }
            let directory = directory(of: folder)
            // Wait for a session working in it; its lock goes away with the folder.
            _ = try storage { () throws(SharedTreeError) in
                try LockFile.acquire(name: Self.folderLockName, in: directory, node: node, options: lockOptions, logger: lockLogger)
            }
            try storage { () throws(SharedTreeError) in try Posix.mkdir(workDirectory, mode: Self.directoryMode) }
            let doomed = PathUtil.join(workDirectory, "deleted." + randomToken())
            try storage { () throws(SharedTreeError) in
                try listLock.verify()
                try Posix.rename(directory, doomed)
                try Posix.fsyncDirectory(maildirDirectory)
            }
            usage = try usageOfTree(doomed)
            try storage { () throws(SharedTreeError) in try Posix.removeTree(doomed) }
            try updateSpecialUse { entries in entries.removeAll { $0.folder == folder.name } }
        }
        if usage.messages > 0 { recordQuotaChange(bytes: -usage.bytes, messages: -usage.messages) }
    }

    /// True when `folder` exists (INBOX always does).
    public func folderExists(_ folder: MailFolderName) throws(MailStoreError) -> Bool {
        if folder.isInbox { return true }
        return try folderDirectoryExists(folder)
    }

    /// INBOX and every folder, sorted, with parents that exist only through their
    /// subfolders, subscriptions and special use (IMAP LIST / LSUB / LIST-EXTENDED).
    public func listFolders() throws(MailStoreError) -> [FolderListEntry] {
        if try storage({ () throws(SharedTreeError) in try Posix.stat(renameJournalPath) }) != nil {
            try withMailboxListLock { _ throws(MailStoreError) in }
        }
        var present = Set<MailFolderName>()
        for diskName in try folderDiskNames() {
            if let folder = MailFolderName(diskName: diskName) { present.insert(folder) }
        }
        var all = present
        for folder in present { all.formUnion(folder.ancestors) }
        var parents = Set<MailFolderName>()
        for folder in all { if let parent = folder.parent { parents.insert(parent) } }
        let subscribed = Set(try subscriptionLines())
        var uses: [String: SpecialUse] = [:]
        for entry in try specialUseEntries() { uses[entry.folder] = entry.use }
        var result = [FolderListEntry(name: .inbox, exists: true, hasChildren: false, specialUse: nil, subscribed: subscribed.contains("INBOX"))]
        for folder in all.sorted() {
            result.append(FolderListEntry(
                name: folder, exists: present.contains(folder), hasChildren: parents.contains(folder),
                specialUse: present.contains(folder) ? uses[folder.name] : nil, subscribed: subscribed.contains(folder.name)))
        }
        return result
    }

    /// Adds `folder` to `subscriptions` (it need not exist, RFC 9051 §6.3.7).
    public func subscribe(_ folder: MailFolderName) throws(MailStoreError) {
        try withMailboxListLock { _ throws(MailStoreError) in
            var lines = try subscriptionLines()
            guard !lines.contains(folder.name) else { return }
            lines.append(folder.name)
            try writeLines(lines, to: subscriptionsPath)
        }
    }

    public func unsubscribe(_ folder: MailFolderName) throws(MailStoreError) {
        try withMailboxListLock { _ throws(MailStoreError) in
            let lines = try subscriptionLines()
            let remaining = lines.filter { $0 != folder.name }
            if remaining.count != lines.count { try writeLines(remaining, to: subscriptionsPath) }
        }
    }

    /// Subscribed names that are valid folder names, in file order.
    public func subscriptions() throws(MailStoreError) -> [MailFolderName] {
        try subscriptionLines().compactMap { try? MailFolderName($0) }
    }

    /// The special-use folders as recorded.
    public func specialUseFolders() throws(MailStoreError) -> [SpecialUse: MailFolderName] {
        var result: [SpecialUse: MailFolderName] = [:]
        for entry in try specialUseEntries() {
            if let folder = try? MailFolderName(entry.folder) { result[entry.use] = folder }
        }
        return result
    }

    /// Gives `folder` the attribute `use` (taken from any other folder), or with nil
    /// removes the folder's attribute.
    public func setSpecialUse(_ use: SpecialUse?, for folder: MailFolderName) throws(MailStoreError) {
        try withMailboxListLock { _ throws(MailStoreError) in
            guard try folderExists(folder) else { throw .folderNotFound(user: user.address, folder: folder.name) }
            try updateSpecialUse { entries in
                entries.removeAll { $0.folder == folder.name || $0.use == use }
                if let use { entries.append((use, folder.name)) }
            }
        }
    }

    /// Call on a user's login: makes sure INBOX and the special-use folders exist (Sent,
    /// Drafts, Trash, Junk, Archive: each created and subscribed unless a folder already
    /// has its attribute). A cheap check (one small read and a few stats) when all are
    /// there; the mailbox-list lock only when something is missing.
    @discardableResult
    public func ensureDefaultFolders() throws(MailStoreError) -> [SpecialUse: MailFolderName] {
        if let complete = try completeSpecialUse() { return complete }
        try createMaildir()
        try withMailboxListLock { _ throws(MailStoreError) in
            var assigned: [SpecialUse: MailFolderName] = [:]
            for entry in try specialUseEntries() {
                if let folder = try? MailFolderName(entry.folder), try folderExists(folder) { assigned[entry.use] = folder }
            }
            var subscribed = try subscriptionLines()
            let subscribedBefore = subscribed
            for (name, use) in Self.defaultFolders where assigned[use] == nil {
                let folder = try MailFolderName(name)
                if try !folderDirectoryExists(folder) {
                    _ = try makeFolderDirectory(folder)
                    if !subscribed.contains(folder.name) { subscribed.append(folder.name) }
                }
                assigned[use] = folder
            }
            if !subscribed.contains("INBOX") { subscribed.insert("INBOX", at: 0) }
            try updateSpecialUse { entries in
                entries = SpecialUse.allCases.compactMap { use in assigned[use].map { (use, $0.name) } }
            }
            if subscribed != subscribedBefore { try writeLines(subscribed, to: subscriptionsPath) }
        }
        return try specialUseFolders()
    }

    // MARK: - Internals

    /// Runs `body` holding the mailbox-list lock, after finishing an interrupted rename.
    func withMailboxListLock<T>(_ body: (LockFile) throws(MailStoreError) -> T) throws(MailStoreError) -> T {
        let lock: LockFile
        do throws(SharedTreeError) {
            lock = try LockFile.acquire(name: Self.mailboxListLockName, in: homeDirectory, node: node, options: lockOptions, logger: lockLogger)
        } catch {
            guard error.isNotFound else { throw .storage(error) }
            try createMaildir()
            lock = try storage { () throws(SharedTreeError) in
                try LockFile.acquire(name: Self.mailboxListLockName, in: homeDirectory, node: node, options: lockOptions, logger: lockLogger)
            }
        }
        defer { _ = try? lock.release() }
        try finishInterruptedRename()
        try removeWorkLeftovers()
        return try body(lock)
    }

    /// Everything in `svcpkg-tmp/` is made and removed under the mailbox-list lock, so what
    /// we find there holding the lock was left by a process that died (or lost the lock:
    /// hence only entries older than the stale timeout go).
    func removeWorkLeftovers() throws(MailStoreError) {
        let names = try storage { () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(workDirectory) }
        guard !names.isEmpty else { return }
        let now = try storage { () throws(SharedTreeError) in try FileServerClock.now(in: workDirectory) }
        for name in names {
            let path = PathUtil.join(workDirectory, name)
            guard let info = try storage({ () throws(SharedTreeError) in try Posix.lstat(path) }),
                now.timeIntervalSince(Posix.modificationDate(info)) > lockOptions.staleTimeout
            else { continue }
            logger.notice("removing a leftover of a folder operation that died", metadata: ["path": "\(path)"])
            try storage { () throws(SharedTreeError) in try Posix.removeTree(path) }
        }
    }

    /// A lock whose directory was renamed, at its new place.
    func relocated(_ lock: LockFile, to directory: String) -> LockFile {
        LockFile(
            path: PathUtil.join(directory, PathUtil.lastComponent(of: lock.path)), record: lock.record, options: lock.options,
            uniquePath: PathUtil.join(directory, PathUtil.lastComponent(of: lock.uniquePath)), logger: lock.logger)
    }

    /// Disk names (without the leading dot) of the folder directories in the Maildir.
    func folderDiskNames() throws(MailStoreError) -> [String] {
        var result: [String] = []
        for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(maildirDirectory) }) where name.hasPrefix(".") && name.count > 1 && name != ".." {
            guard let info = try storage({ () throws(SharedTreeError) in try Posix.lstat(PathUtil.join(maildirDirectory, name)) }), Posix.isDirectory(info) else { continue }
            result.append(String(name.dropFirst()))
        }
        return result
    }

    func folderDirectoryExists(_ folder: MailFolderName) throws(MailStoreError) -> Bool {
        if folder.isInbox { return true }
        guard let info = try storage({ () throws(SharedTreeError) in try Posix.lstat(directory(of: folder)) }) else { return false }
        return Posix.isDirectory(info)
    }

    /// Builds the folder in `svcpkg-tmp/` and renames it into place. False when it exists.
    func makeFolderDirectory(_ folder: MailFolderName) throws(MailStoreError) -> Bool {
        try createMaildir()
        try storage { () throws(SharedTreeError) in try Posix.mkdir(workDirectory, mode: Self.directoryMode) }
        let building = PathUtil.join(workDirectory, "new." + randomToken())
        do throws(SharedTreeError) {
            try Posix.mkdir(building, mode: Self.directoryMode)
            for sub in ["cur", "new", "tmp"] {
                try Posix.mkdir(PathUtil.join(building, sub), mode: Self.directoryMode)
            }
            // Maildir++: marks a folder, so quota tools find the Maildir one level up.
            try Posix.writeNewFile(PathUtil.join(building, "maildirfolder"), [], mode: Self.fileMode)
            if try Posix.lstat(directory(of: folder)) != nil {
                try Posix.removeTree(building)
                return false
            }
            try Posix.rename(building, directory(of: folder))
            try Posix.fsyncDirectory(maildirDirectory)
            return true
        } catch {
            _ = try? Posix.removeTree(building)
            // rename(2) onto a non-empty directory: it was created meanwhile.
            if error.errnoCode == ENOTEMPTY || error.errnoCode == EEXIST { return false }
            throw .storage(error)
        }
    }

    /// Finishes a rename left by a crash (see the type's comment).
    func finishInterruptedRename() throws(MailStoreError) {
        let bytes: [UInt8]
        do throws(SharedTreeError) {
            bytes = try AtomicFile.read(renameJournalPath, maxBytes: 4096)
        } catch {
            if error.isNotFound { return }
            throw .storage(error)
        }
        let lines = bytes.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
        guard lines.count == 3, lines[0] == "\(Self.renameJournalName) 1",
            let source = MailFolderName(diskName: lines[1]), let target = MailFolderName(diskName: lines[2])
        else {
            let aside = renameJournalPath + ".broken." + randomToken()
            try storage { () throws(SharedTreeError) in try Posix.rename(renameJournalPath, aside) }
            logger.error("unreadable folder rename journal set aside; check the user's folders", metadata: ["path": "\(aside)"])
            return
        }
        logger.notice("finishing an interrupted folder rename", metadata: ["from": "\(source.name)", "to": "\(target.name)"])
        try finishRename(from: source, to: target)
    }

    /// Renames every remaining `.<source>` and `.<source>.*` to the `target` prefix, moves
    /// subscriptions and special use along, and removes the journal. Idempotent.
    func finishRename(from source: MailFolderName, to target: MailFolderName) throws(MailStoreError) {
        for name in try folderDiskNames().sorted() where name == source.diskName || name.hasPrefix(source.diskName + ".") {
            let newName = target.diskName + name.dropFirst(source.diskName.count)
            let from = PathUtil.join(maildirDirectory, "." + name)
            let to = PathUtil.join(maildirDirectory, "." + newName)
            if try storage({ () throws(SharedTreeError) in try Posix.lstat(to) }) != nil {
                throw .renameConflict(user: user.address, from: source.name, to: target.name)
            }
            try storage { () throws(SharedTreeError) in try Posix.rename(from, to) }
        }
        try storage { () throws(SharedTreeError) in try Posix.fsyncDirectory(maildirDirectory) }
        let lines = try subscriptionLines()
        let renamed = lines.map { line in
            (try? MailFolderName(line)).flatMap { $0.replacingPrefix(source, with: target) }?.name ?? line
        }
        if renamed != lines { try writeLines(renamed, to: subscriptionsPath) }
        try updateSpecialUse { entries in
            entries = entries.map { entry in
                ((try? MailFolderName(entry.folder)).flatMap { $0.replacingPrefix(source, with: target) }).map { (entry.use, $0.name) } ?? entry
            }
        }
        try storage { () throws(SharedTreeError) in
            try Posix.unlinkIfPresent(renameJournalPath)
            try Posix.fsyncDirectory(homeDirectory)
        }
    }

    /// Message bytes and count in the cur/ and new/ of a folder directory.
    func usageOfTree(_ directory: String) throws(MailStoreError) -> QuotaUsage {
        var bytes = 0
        var messages = 0
        for sub in ["cur", "new"] {
            for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(PathUtil.join(directory, sub)) }) where !name.hasPrefix(".") {
                bytes += MaildirFileName.sizes(ofBase: MaildirFileName(name).base).size ?? 0
                messages += 1
            }
        }
        return QuotaUsage(bytes: bytes, messages: messages)
    }

    /// All special uses assigned to existing folders, or nil when something is missing.
    func completeSpecialUse() throws(MailStoreError) -> [SpecialUse: MailFolderName]? {
        var result: [SpecialUse: MailFolderName] = [:]
        for entry in try specialUseEntries() {
            guard let folder = try? MailFolderName(entry.folder), try folderDirectoryExists(folder) else { return nil }
            result[entry.use] = folder
        }
        return result.count == SpecialUse.allCases.count ? result : nil
    }

    func subscriptionLines() throws(MailStoreError) -> [String] {
        try readLines(subscriptionsPath)
    }

    func specialUseEntries() throws(MailStoreError) -> [(use: SpecialUse, folder: String)] {
        try readLines(specialUsePath).compactMap { line in
            guard let space = line.firstIndex(of: " "), let use = SpecialUse(rawValue: String(line[..<space])) else { return nil }
            return (use, String(line[line.index(after: space)...]))
        }
    }

    func updateSpecialUse(_ change: (inout [(use: SpecialUse, folder: String)]) -> Void) throws(MailStoreError) {
        let before = try specialUseEntries()
        var entries = before
        change(&entries)
        let lines = entries.map { "\($0.use.rawValue) \($0.folder)" }
        if lines != before.map({ "\($0.use.rawValue) \($0.folder)" }) { try writeLines(lines, to: specialUsePath) }
    }

    func readLines(_ path: String) throws(MailStoreError) -> [String] {
        let bytes: [UInt8]
        do throws(SharedTreeError) {
            bytes = try AtomicFile.read(path, maxBytes: Self.maxListFileBytes)
        } catch {
            if error.isNotFound { return [] }
            throw .storage(error)
        }
        return bytes.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }.filter { !$0.isEmpty }
    }

    func writeLines(_ lines: [String], to path: String) throws(MailStoreError) {
        let text = lines.map { $0 + "\n" }.joined()
        try storage { () throws(SharedTreeError) in try AtomicFile.write(Array(text.utf8), to: path, mode: Self.fileMode) }
    }
}
