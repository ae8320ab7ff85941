import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The few system calls the mail store needs beyond `Posix`. Blocking, like all of `Posix`.
extension Posix {
    /// `link(from, to)`; throws `.io` with the errno (EEXIST, EXDEV, EPERM, EMLINK …).
    static func hardLink(_ from: String, _ to: String) throws(SharedTreeError) {
        while true {
            if systemHardLink(from, to) == 0 { return }
            let code = errno
            if code == EINTR { continue }
            throw fail("link to \(to)", from, code)
        }
    }

    /// `lstat`, or nil when the path does not exist. Never follows a symlink.
    static func lstat(_ path: String) throws(SharedTreeError) -> FileStatus? {
        var info = FileStatus()
        if systemLstat(path, &info) == 0 { return info }
        let code = errno
        if code == ENOENT { return nil }
        throw fail("lstat", path, code)
    }

    static func rmdir(_ path: String) throws(SharedTreeError) {
        #if canImport(Darwin)
        let result = Darwin.rmdir(path)
        #else
        let result = Glibc.rmdir(path)
        #endif
        if result != 0 && errno != ENOENT { throw fail("rmdir", path) }
    }

    /// Names in `directory`; an empty list when it does not exist.
    static func listDirectoryIfPresent(_ directory: String) throws(SharedTreeError) -> [String] {
        do throws(SharedTreeError) {
            return try listDirectory(directory)
        } catch {
            guard error.isNotFound else { throw error }
            return []
        }
    }

    /// Removes `path` and everything below it without following symlinks (`rm -rf`).
    static func removeTree(_ path: String) throws(SharedTreeError) {
        guard let info = try lstat(path) else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in try listDirectoryIfPresent(path) {
                try removeTree(PathUtil.join(path, name))
            }
            try rmdir(path)
        } else {
            try unlinkIfPresent(path)
        }
    }

    /// Copies the file `from` to a new file `to` (O_EXCL) and fsyncs it.
    static func copyFile(_ from: String, _ to: String, mode: mode_t = 0o600) throws(SharedTreeError) {
        let input = try open(from, O_RDONLY)
        defer { closeQuietly(input) }
        let output = try open(to, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        do throws(SharedTreeError) {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { raw in read(input, raw.baseAddress, raw.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw fail("read", from)
                }
                if count == 0 { break }
                try writeAll(output, Array(buffer[0..<count]), path: to)
            }
            try fsync(output, path: to)
        } catch {
            closeQuietly(output)
            _ = try? unlinkIfPresent(to)
            throw error
        }
        try close(output, path: to)
    }

    /// Writes `bytes` to a new file (O_EXCL), fsyncs and closes it; removes it on failure.
    static func writeNewFile(_ path: String, _ bytes: [UInt8], mode: mode_t) throws(SharedTreeError) {
        let fd = try open(path, O_WRONLY | O_CREAT | O_EXCL, mode: mode)
        do throws(SharedTreeError) {
            try writeAll(fd, bytes, path: path)
            try fsync(fd, path: path)
        } catch {
            closeQuietly(fd)
            _ = try? unlinkIfPresent(path)
            throw error
        }
        do throws(SharedTreeError) {
            try close(fd, path: path)
        } catch {
            _ = try? unlinkIfPresent(path)
            throw error
        }
    }

    /// Appends `bytes` with one `write` on an O_APPEND descriptor (no fsync). Throws
    /// not-found when the file does not exist.
    static func append(_ path: String, _ bytes: [UInt8]) throws(SharedTreeError) {
        let fd = try open(path, O_WRONLY | O_APPEND)
        do throws(SharedTreeError) {
            try writeAll(fd, bytes, path: path)
        } catch {
            closeQuietly(fd)
            throw error
        }
        try close(fd, path: path)
    }

    /// Opens `path` (a directory when `directory`) and returns its attributes: on NFS the
    /// open revalidates them with the server (close-to-open), which a plain stat may not.
    /// Nil when it does not exist.
    static func freshStatus(_ path: String, directory: Bool) throws(SharedTreeError) -> FileStatus? {
        let fd: Int32
        do throws(SharedTreeError) {
            fd = try open(path, O_RDONLY | (directory ? O_DIRECTORY : 0))
        } catch {
            guard error.isNotFound else { throw error }
            return nil
        }
        defer { closeQuietly(fd) }
        return try fstat(fd, path: path)
    }
}

private func systemHardLink(_ from: String, _ to: String) -> Int32 {
    link(from, to)
}

private func systemLstat(_ path: String, _ info: inout FileStatus) -> Int32 {
    lstat(path, &info)
}
