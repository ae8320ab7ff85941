import Foundation

/// One thing `checkConsistency` found wrong, with where and what to do.
public struct MailStoreProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The UID list cannot be parsed (the next sync sets it aside and starts a new UIDVALIDITY).
        case malformedUIDList
        case uidsNotAscending
        case duplicateUID
        /// Two UID list entries, or two files in cur/, with one base name.
        case duplicateFile
        /// A UID list entry whose file is gone (the next sync records it as expunged).
        case entryWithoutFile
        /// A file in cur/ that has no UID (the next sync gives it one).
        case fileWithoutUID
        /// A file in tmp/ (or a directory in the home's svcpkg-tmp/) older than 36 hours:
        /// left by a delivery, copy or folder operation that died.
        case staleTemporaryFile
        case uidNextTooLow
        case modSeqAboveHighest
        /// A `.` directory in the Maildir whose name this store would not have written.
        case undecodableFolder
        /// A folder rename was interrupted (the next folder operation finishes it).
        case interruptedRename
    }

    public let kind: Kind
    /// The folder's name, nil for problems of the home.
    public let folder: String?
    public let path: String
    public let detail: String

    public var description: String {
        let place = folder.map { "folder \(quoted($0))" } ?? "home"
        return "\(kind.rawValue): \(place): \(detail) (\(path))"
    }
}

extension MailStore {
    /// Checks every folder of the user (for `svcpkg check --store USER`): the UID list
    /// against itself (ascending, unique UIDs, UIDNEXT and HIGHESTMODSEQ above what is
    /// listed) and against the files (entries without files, files without UIDs), stale
    /// temporary files, undecodable folder directories and interrupted renames. Each folder
    /// is read under its lock, so a sync in progress is not reported half-done. An empty
    /// result means the store is consistent. Changes nothing.
    public func checkConsistency(staleAge: Double = MailStore.staleTemporaryAge) throws(MailStoreError) -> [MailStoreProblem] {
        var problems: [MailStoreProblem] = []
        guard try storage({ () throws(SharedTreeError) in try Posix.stat(maildirDirectory) }) != nil else { return [] }
        let now = try storage { () throws(SharedTreeError) in try FileServerClock.now(in: maildirDirectory) }
        if try storage({ () throws(SharedTreeError) in try Posix.stat(renameJournalPath) }) != nil {
            problems.append(MailStoreProblem(kind: .interruptedRename, folder: nil, path: renameJournalPath, detail: "a folder rename did not finish; the next folder operation finishes it"))
        }
        for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(workDirectory) }) {
            let path = PathUtil.join(workDirectory, name)
            if let info = try storage({ () throws(SharedTreeError) in try Posix.lstat(path) }), now.timeIntervalSince(Posix.modificationDate(info)) > staleAge {
                problems.append(MailStoreProblem(kind: .staleTemporaryFile, folder: nil, path: path, detail: "left by a folder operation that died; remove it"))
            }
        }
        var folders: [MailFolderName] = [.inbox]
        for diskName in try folderDiskNames().sorted() {
            if let folder = MailFolderName(diskName: diskName) {
                folders.append(folder)
            } else {
                let path = PathUtil.join(maildirDirectory, "." + diskName)
                problems.append(MailStoreProblem(kind: .undecodableFolder, folder: nil, path: path, detail: "not a folder name svcpkg writes; it is not listed to clients"))
            }
        }
        for folder in folders {
            do throws(MailStoreError) {
                problems += try withFolderLock(paths(folder)) { _ throws(MailStoreError) in
                    try checkFolder(paths(folder), now: now, staleAge: staleAge)
                }
            } catch {
                // Deleted or renamed while we looked.
                if case .folderNotFound = error { continue }
                throw error
            }
        }
        return problems
    }

    /// Removes files in `folder`'s tmp/ older than `olderThan` seconds by the file server's
    /// clock (deliveries that died; Maildir says 36 hours). Returns how many.
    @discardableResult
    public func removeStaleTemporaryFiles(in folder: MailFolderName, olderThan: Double = MailStore.staleTemporaryAge) throws(MailStoreError) -> Int {
        let folderPaths = paths(folder)
        let names = try storage { () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(folderPaths.tmp) }
        guard !names.isEmpty else { return 0 }
        let now = try storage { () throws(SharedTreeError) in try FileServerClock.now(in: folderPaths.tmp) }
        var removed = 0
        for name in names {
            let path = PathUtil.join(folderPaths.tmp, name)
            guard let info = try storage({ () throws(SharedTreeError) in try Posix.lstat(path) }), !Posix.isDirectory(info),
                now.timeIntervalSince(Posix.modificationDate(info)) > olderThan
            else { continue }
            if try storage({ () throws(SharedTreeError) in try Posix.unlinkIfPresent(path) }) { removed += 1 }
        }
        return removed
    }

    func checkFolder(_ folderPaths: FolderPaths, now: Date, staleAge: Double) throws(MailStoreError) -> [MailStoreProblem] {
        var problems: [MailStoreProblem] = []
        let folder = folderPaths.folder.name
        func report(_ kind: MailStoreProblem.Kind, _ path: String, _ detail: String) {
            problems.append(MailStoreProblem(kind: kind, folder: folder, path: path, detail: detail))
        }

        var files: [String: [String]] = [:]
        for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(folderPaths.cur) }) where !name.hasPrefix(".") {
            files[MaildirFileName(name).base, default: []].append(name)
        }
        for (_, names) in files where names.count > 1 {
            report(.duplicateFile, folderPaths.cur, "files \(names.sorted().joined(separator: ", ")) share one base name")
        }
        for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(folderPaths.tmp) }) {
            let path = PathUtil.join(folderPaths.tmp, name)
            if let info = try storage({ () throws(SharedTreeError) in try Posix.lstat(path) }), now.timeIntervalSince(Posix.modificationDate(info)) > staleAge {
                report(.staleTemporaryFile, path, "left by a delivery that died; remove it")
            }
        }

        let bytes: [UInt8]
        do throws(SharedTreeError) {
            bytes = try AtomicFile.read(folderPaths.uidList, maxBytes: UIDList.maxBytes)
        } catch {
            guard error.isNotFound else {
                report(.malformedUIDList, folderPaths.uidList, "\(error)")
                return problems
            }
            for (base, names) in files.sorted(by: { $0.key < $1.key }) {
                report(.fileWithoutUID, PathUtil.join(folderPaths.cur, names[0]), "no UID list yet for base \(base)")
            }
            return problems
        }
        let list: UIDList
        do throws(SharedTreeError) {
            list = try UIDList.decode(bytes, path: folderPaths.uidList)
        } catch {
            report(.malformedUIDList, folderPaths.uidList, "\(error)")
            return problems
        }
        var previous: UInt32 = 0
        var seenUIDs = Set<UInt32>()
        var listedBases = Set<String>()
        var maxUID: UInt32 = 0
        for entry in list.entries {
            if !seenUIDs.insert(entry.uid).inserted {
                report(.duplicateUID, folderPaths.uidList, "UID \(entry.uid) is listed twice")
            } else if entry.uid <= previous {
                report(.uidsNotAscending, folderPaths.uidList, "UID \(entry.uid) follows UID \(previous)")
            }
            previous = entry.uid
            maxUID = max(maxUID, entry.uid)
            if !listedBases.insert(entry.base).inserted {
                report(.duplicateFile, folderPaths.uidList, "base \(entry.base) is listed under two UIDs")
            }
            if files[entry.base] == nil {
                report(.entryWithoutFile, folderPaths.uidList, "UID \(entry.uid) (\(entry.base)) has no file in cur/")
            }
            if entry.modSeq > list.highestModSeq {
                report(.modSeqAboveHighest, folderPaths.uidList, "UID \(entry.uid) has MODSEQ \(entry.modSeq) above HIGHESTMODSEQ \(list.highestModSeq)")
            }
        }
        if !list.entries.isEmpty && list.uidNext <= maxUID {
            report(.uidNextTooLow, folderPaths.uidList, "UIDNEXT \(list.uidNext) is not above the highest UID \(maxUID)")
        }
        for (base, names) in files.sorted(by: { $0.key < $1.key }) where !listedBases.contains(base) {
            report(.fileWithoutUID, PathUtil.join(folderPaths.cur, names[0]), "not in the UID list")
        }
        return problems
    }
}
