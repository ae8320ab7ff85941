import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file writes that readers on any node see either entirely old or entirely new.
public enum AtomicFile {
    /// Writes `data` to `path`: a temporary file in the same directory (dot-prefixed,
    /// unique per call), fsync, rename over `path`, fsync of the directory. On failure the
    /// temporary file is removed and `path` is untouched. Blocking.
    ///
    /// Without `durable` both fsyncs are left out: readers still see the old or the new file
    /// whole (NFS flushes the data at close, before the rename; ext4 does the same for a
    /// rename over a file), but a crash of the file server may bring the old file back.
    /// Only for changes whose loss is harmless (flags: see `MailStore.store`).
    public static func write(_ data: [UInt8], to path: String, mode: mode_t = 0o644, durable: Bool = true) throws(SharedTreeError) {
        let directory = PathUtil.directory(of: path)
        let temporary = temporaryPath(for: path)
        let fd = try Posix.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        do throws(SharedTreeError) {
            // The umask may have narrowed the mode given to open().
            if fchmod(fd, mode) != 0 { throw Posix.fail("chmod", temporary) }
            try Posix.writeAll(fd, data, path: temporary)
            if durable { try Posix.fsync(fd, path: temporary) }
        } catch {
            Posix.closeQuietly(fd)
            _ = try? Posix.unlinkIfPresent(temporary)
            throw error
        }
        do throws(SharedTreeError) {
            try Posix.close(fd, path: temporary)
            try Posix.rename(temporary, path)
        } catch {
            _ = try? Posix.unlinkIfPresent(temporary)
            throw error
        }
        if durable { try Posix.fsyncDirectory(directory) }
    }

    /// Reads the whole file at `path`; throws `fileTooLarge` when it is bigger than
    /// `maxBytes` and `.io` (check `isNotFound`) when it cannot be opened. Blocking.
    public static func read(_ path: String, maxBytes: Int) throws(SharedTreeError) -> [UInt8] {
        try readWithStatus(path, maxBytes: maxBytes).bytes
    }

    /// Reads the file and its attributes from one open descriptor. On NFS, open() forces a
    /// fresh GETATTR (close-to-open consistency), so the mtime is the server's current one.
    static func readWithStatus(_ path: String, maxBytes: Int) throws(SharedTreeError) -> (bytes: [UInt8], status: FileStatus) {
        let fd = try Posix.open(path, O_RDONLY)
        defer { Posix.closeQuietly(fd) }
        let status = try Posix.fstat(fd, path: path)
        let bytes = try Posix.readAll(fd, path: path, maxBytes: maxBytes)
        return (bytes, status)
    }

    /// `.<name>.tmp.<host>.<pid>.<random>` beside `path`. Dot-prefixed so directory scans
    /// (heartbeats, Maildir folders) skip it; the name is cut so the result fits NAME_MAX.
    static func temporaryPath(for path: String) -> String {
        var name = ""
        for character in PathUtil.lastComponent(of: path) {
            if name.utf8.count + character.utf8.count > 64 { break }
            name.append(character)
        }
        return PathUtil.join(PathUtil.directory(of: path), ".\(name).tmp.\(uniqueSuffix())")
    }
}
