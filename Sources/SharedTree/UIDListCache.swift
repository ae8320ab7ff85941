import Foundation

/// What of a folder's change log (`UIDListLog`) has been applied to a list.
struct UIDListLogState: Sendable, Equatable {
    /// The log file's attributes when it was read.
    var stamp: FolderChangeToken.Stamp
    var logID: UInt64
    /// Bytes read and applied: the header and every whole record.
    var validLength: Int
    var records: Int
    /// Message lines in those records.
    var changes: Int
    /// Bytes follow the last whole record.
    var torn: Bool
}

/// Parsed UID lists of this process, by path, each with the attributes of the file it was
/// read from and what of the change log (`UIDListLog`) was applied to it. A list file is
/// only ever replaced whole by a rename (a new inode), so a file with the same inode, size,
/// mtime and ctime as the one parsed holds the same bytes: the open+fstat that every reader
/// does anyway decides whether the parse can be skipped. A log only grows between renames,
/// so a log with the same inode that got longer is read from where the last read stopped.
/// On NFS the open revalidates the attributes (close-to-open), so a list or log changed on
/// another node is never served from here.
final class UIDListCache: @unchecked Sendable {
    static let shared = UIDListCache()
    /// Lists kept; the least recently used goes first.
    static let maxLists = 256
    /// Bigger lists are parsed each time rather than held (about 200 bytes a message).
    static let maxEntriesPerList = 200_000

    struct Entry: Sendable {
        var stamp: FolderChangeToken.Stamp
        /// The list file's contents with `log` applied.
        var list: UIDList
        /// nil: no log applied (none there, or a stale one).
        var log: UIDListLogState?
        /// `list` as snapshot messages (file names as the list gives them), once asked for:
        /// kept in step by `apply`, so a change to one message does not rebuild the rest.
        var messages: [StoredMessage]?
        /// The `cur/` file names `list` gives, once asked for (`MailStore.snapshotIfInStep`).
        var curNames: Set<String>?

        init(stamp: FolderChangeToken.Stamp, list: UIDList, log: UIDListLogState?) {
            self.stamp = stamp
            self.list = list
            self.log = log
        }

        /// Applies what was read of the log (from `validLength` before on) and records how far.
        mutating func take(_ contents: UIDListLog.Contents, stamp: FolderChangeToken.Stamp, changesBefore: Int) {
            apply(contents.changes)
            log = UIDListLogState(
                stamp: stamp, logID: contents.logID, validLength: contents.validLength, records: contents.records,
                changes: changesBefore + contents.changes.count, torn: contents.torn)
        }

        /// Applies log lines to `list` and to what was made from it: a line changes the entry
        /// with its UID when its MODSEQ is higher (so a line already in the list changes
        /// nothing); a UID not listed is skipped. Entries are in ascending UID order.
        mutating func apply(_ changes: [UIDListLog.Change]) {
            for change in changes {
                list.highestModSeq = max(list.highestModSeq, change.modSeq)
                guard let index = list.index(ofUID: change.uid), list.entries[index].modSeq < change.modSeq else { continue }
                let old = list.entries[index]
                list.entries[index].modSeq = change.modSeq
                list.entries[index].info = change.info
                list.entries[index].keywords = change.keywords
                if messages != nil { messages?[index] = StoredMessage(listed: list.entries[index]) }
                if curNames != nil, change.info != old.info {
                    curNames?.remove(MaildirFileName.curName(base: old.base, info: old.info))
                    if curNames?.insert(MaildirFileName.curName(base: old.base, info: change.info)).inserted == false { curNames = nil }
                }
            }
        }
    }

    private let lock = NSLock()
    private var lists: [String: (entry: Entry, used: UInt64)] = [:]
    private var clock: UInt64 = 0

    func list(at path: String, stamp: FolderChangeToken.Stamp) -> UIDList? {
        entry(at: path, stamp: stamp)?.list
    }

    func entry(at path: String, stamp: FolderChangeToken.Stamp) -> Entry? {
        lock.lock()
        defer { lock.unlock() }
        guard let cached = lists[path], cached.entry.stamp == stamp else { return nil }
        clock += 1
        lists[path]?.used = clock
        return cached.entry
    }

    func keep(_ list: UIDList, at path: String, stamp: FolderChangeToken.Stamp, log: UIDListLogState? = nil) {
        keep(Entry(stamp: stamp, list: list, log: log), at: path)
    }

    func keep(_ entry: Entry, at path: String) {
        guard entry.list.entries.count <= Self.maxEntriesPerList else { return }
        lock.lock()
        defer { lock.unlock() }
        clock += 1
        lists[path] = (entry, clock)
        if lists.count > Self.maxLists, let oldest = lists.min(by: { $0.value.used < $1.value.used })?.key {
            lists[oldest] = nil
        }
    }

    /// Applies a record just appended to the log to the cached list, in place, when the
    /// cache holds the list with the log as it was before the append (`ifAt`); returns the
    /// entry then, else nil.
    func apply(_ changes: [UIDListLog.Change], log: UIDListLogState, at path: String, ifAt before: (stamp: FolderChangeToken.Stamp, log: UIDListLogState?)) -> Entry? {
        lock.lock()
        defer { lock.unlock() }
        // No copy of the entry may live while it is changed, or its arrays get copied whole.
        func holdsBefore() -> Bool {
            guard let cached = lists[path]?.entry else { return false }
            return cached.stamp == before.stamp && cached.log == before.log
        }
        guard holdsBefore() else { return nil }
        clock += 1
        lists[path]?.used = clock
        lists[path]?.entry.apply(changes)
        lists[path]?.entry.log = log
        return lists[path]?.entry
    }

    /// Keeps what was made from `entry` (messages, names) when the cache still holds the
    /// same version of the list and log.
    func remember(_ entry: Entry, at path: String) {
        lock.lock()
        defer { lock.unlock() }
        guard let cached = lists[path], cached.entry.stamp == entry.stamp, cached.entry.log == entry.log else { return }
        lists[path]?.entry = entry
    }

    func forget(_ path: String) {
        lock.lock()
        defer { lock.unlock() }
        lists[path] = nil
    }
}

/// What reading a UID list file found.
enum UIDListRead {
    case missing
    case parsed(UIDList)
    /// Too big or malformed: the bytes when they could be read, and why.
    case unreadable(bytes: [UInt8]?, SharedTreeError)

    /// How often a reader starts again when the list was replaced while it read the log.
    static let maxAttempts = 5

    /// Reads and parses the list at `path` with its change log (`path` + `.log`) applied,
    /// taking what it can from `UIDListCache`. Throws only for I/O errors other than "not
    /// found".
    static func read(_ path: String, cache: UIDListCache = .shared) throws(SharedTreeError) -> UIDListRead {
        try readWithLog(path, cache: cache).read
    }

    /// `read`, and with a parsed list the list file's attributes and what of the log was
    /// applied (`log` nil: none, or a stale log was ignored).
    ///
    /// The list is read first, then the log, then the list's attributes again: a list
    /// replaced meanwhile (written whole, with the log folded in) means starting again, so
    /// a list is never paired with a log that is not its own.
    static func readWithLog(_ path: String, cache: UIDListCache = .shared) throws(SharedTreeError) -> (read: UIDListRead, entry: UIDListCache.Entry?) {
        let logPath = path + ".log"
        var attempt = 0
        var bypassCache = false
        while true {
            attempt += 1
            let fd: Int32
            do throws(SharedTreeError) {
                fd = try Posix.open(path, O_RDONLY)
            } catch {
                if error.isNotFound { return (.missing, nil) }
                throw error
            }
            defer { Posix.closeQuietly(fd) }
            let stamp = FolderChangeToken.Stamp(try Posix.fstat(fd, path: path))
            var entry: UIDListCache.Entry
            if !bypassCache, let cached = cache.entry(at: path, stamp: stamp) {
                entry = cached
            } else {
                let bytes: [UInt8]
                do throws(SharedTreeError) {
                    bytes = try Posix.readAll(fd, path: path, maxBytes: UIDList.maxBytes)
                } catch {
                    if case .fileTooLarge = error { return (.unreadable(bytes: nil, error), nil) }
                    throw error
                }
                do throws(SharedTreeError) {
                    entry = UIDListCache.Entry(stamp: stamp, list: try UIDList.decode(bytes, path: path), log: nil)
                } catch {
                    return (.unreadable(bytes: bytes, error), nil)
                }
            }
            guard try applyLog(logPath, to: &entry) else {
                // The cached list had records of a log that is gone or was replaced: parse
                // the list again (then the log is read whole, which always applies).
                cache.forget(path)
                bypassCache = true
                continue
            }
            bypassCache = false
            let now = try Posix.freshStatus(path, directory: false).map(FolderChangeToken.Stamp.init)
            if now != stamp && attempt < maxAttempts {
                // Replaced meanwhile: the log read may be the new list's. (After the last
                // attempt the pair read is still consistent, only older: a log that is not
                // the list's own is ignored.)
                continue
            }
            cache.keep(entry, at: path)
            return (.parsed(entry.list), entry)
        }
    }

    /// Brings `entry` up to date with the log at `logPath`. False when that needs the list
    /// as it is on disk (the log applied before is gone or was replaced).
    private static func applyLog(_ logPath: String, to entry: inout UIDListCache.Entry) throws(SharedTreeError) -> Bool {
        let fd: Int32
        do throws(SharedTreeError) {
            fd = try Posix.open(logPath, O_RDONLY)
        } catch {
            guard error.isNotFound else { throw error }
            return entry.log == nil
        }
        defer { Posix.closeQuietly(fd) }
        let stamp = FolderChangeToken.Stamp(try Posix.fstat(fd, path: logPath))
        if let applied = entry.log {
            if applied.stamp == stamp { return true }
            // Appended since (the only change made to a log in place): read the rest.
            guard applied.stamp.inode == stamp.inode, Int(stamp.size) >= applied.validLength, !(applied.torn && Int(stamp.size) == applied.validLength) else {
                return false
            }
            if lseek(fd, off_t(applied.validLength), SEEK_SET) < 0 { throw Posix.fail("lseek", logPath) }
            guard let rest = try readRest(fd, logPath) else { return false }
            var contents = UIDListLog.Contents(logID: applied.logID, records: applied.records, validLength: applied.validLength)
            UIDListLog.parseRecords(rest[...], into: &contents)
            entry.take(contents, stamp: stamp, changesBefore: applied.changes)
            return true
        }
        // A log too big to be one of ours is ignored, and the next writer replaces it.
        guard entry.list.logID != 0, let bytes = try readRest(fd, logPath) else { return true }
        // A log of another list (stale: its records are in the list) is ignored.
        guard let contents = UIDListLog.parse(bytes), contents.logID == entry.list.logID else { return true }
        entry.take(contents, stamp: stamp, changesBefore: 0)
        return true
    }

    /// The log from the descriptor's offset to its end; nil when that is over `UIDListLog.maxBytes`.
    private static func readRest(_ fd: Int32, _ logPath: String) throws(SharedTreeError) -> [UInt8]? {
        do throws(SharedTreeError) {
            return try Posix.readAll(fd, path: logPath, maxBytes: UIDListLog.maxBytes)
        } catch {
            if case .fileTooLarge = error { return nil }
            throw error
        }
    }
}
