import Foundation

/// Parsed UID lists of this process, by path, each with the attributes of the file it was
/// read from. A list file is only ever replaced whole by a rename (a new inode), so a file
/// with the same inode, size, mtime and ctime as the one parsed holds the same bytes: the
/// open+fstat that every reader does anyway decides whether the parse can be skipped. On
/// NFS the open revalidates the attributes (close-to-open), so a list replaced on another
/// node is never served from here.
final class UIDListCache: @unchecked Sendable {
    static let shared = UIDListCache()
    /// Lists kept; the least recently used goes first.
    static let maxLists = 256
    /// Bigger lists are parsed each time rather than held (about 200 bytes a message).
    static let maxEntriesPerList = 200_000

    private let lock = NSLock()
    private var lists: [String: (stamp: FolderChangeToken.Stamp, list: UIDList, used: UInt64)] = [:]
    private var clock: UInt64 = 0

    func list(at path: String, stamp: FolderChangeToken.Stamp) -> UIDList? {
        lock.lock()
        defer { lock.unlock() }
        guard let cached = lists[path], cached.stamp == stamp else { return nil }
        clock += 1
        lists[path]?.used = clock
        return cached.list
    }

    func keep(_ list: UIDList, at path: String, stamp: FolderChangeToken.Stamp) {
        guard list.entries.count <= Self.maxEntriesPerList else { return }
        lock.lock()
        defer { lock.unlock() }
        clock += 1
        lists[path] = (stamp, list, clock)
        if lists.count > Self.maxLists, let oldest = lists.min(by: { $0.value.used < $1.value.used })?.key {
            lists[oldest] = nil
        }
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

    /// Reads and parses the list at `path`, or takes the parse from `UIDListCache` when the
    /// file is the one parsed before. Throws only for I/O errors other than "not found".
    static func read(_ path: String, cache: UIDListCache = .shared) throws(SharedTreeError) -> UIDListRead {
        let fd: Int32
        do throws(SharedTreeError) {
            fd = try Posix.open(path, O_RDONLY)
        } catch {
            if error.isNotFound { return .missing }
            throw error
        }
        defer { Posix.closeQuietly(fd) }
        let stamp = FolderChangeToken.Stamp(try Posix.fstat(fd, path: path))
        if let list = cache.list(at: path, stamp: stamp) { return .parsed(list) }
        let bytes: [UInt8]
        do throws(SharedTreeError) {
            bytes = try Posix.readAll(fd, path: path, maxBytes: UIDList.maxBytes)
        } catch {
            if case .fileTooLarge = error { return .unreadable(bytes: nil, error) }
            throw error
        }
        do throws(SharedTreeError) {
            let list = try UIDList.decode(bytes, path: path)
            cache.keep(list, at: path, stamp: stamp)
            return .parsed(list)
        } catch {
            return .unreadable(bytes: bytes, error)
        }
    }
}
