import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Thin, typed wrappers over the few system calls the shared tree uses. Every wrapper
// retries EINTR and turns a failure into `SharedTreeError.io` naming the call and path.
// All of them block: callers run them off event loops.
/// The C `struct stat`, named so it cannot be confused with the `stat` functions.
typealias FileStatus = stat

enum Posix {
    static func fail(_ operation: String, _ path: String, _ code: Int32 = errno) -> SharedTreeError {
        .io(operation: operation, path: path, code: code)
    }

    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(SharedTreeError) -> Int32 {
        while true {
            let fd = flags & O_CREAT != 0 ? openCreating(path, flags, mode) : openExisting(path, flags)
            if fd >= 0 { return fd }
            let code = errno
            if code == EINTR { continue }
            throw fail("open", path, code)
        }
    }

    private static func openCreating(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
        #if canImport(Darwin)
        return Darwin.open(path, flags | O_CLOEXEC, mode)
        #else
        return Glibc.open(path, flags | O_CLOEXEC, mode)
        #endif
    }

    private static func openExisting(_ path: String, _ flags: Int32) -> Int32 {
        #if canImport(Darwin)
        return Darwin.open(path, flags | O_CLOEXEC)
        #else
        return Glibc.open(path, flags | O_CLOEXEC)
        #endif
    }

    /// Closes `fd`. A close error matters on NFS, where a delayed write error is reported here.
    static func close(_ fd: Int32, path: String) throws(SharedTreeError) {
        #if canImport(Darwin)
        let result = Darwin.close(fd)
        #else
        let result = Glibc.close(fd)
        #endif
        // After EINTR the descriptor state is unspecified on Linux (it is closed): never retry.
        if result != 0 && errno != EINTR {
            throw fail("close", path)
        }
    }

    /// Closes `fd` on an error path, where a second error would only hide the first.
    static func closeQuietly(_ fd: Int32) {
        #if canImport(Darwin)
        _ = Darwin.close(fd)
        #else
        _ = Glibc.close(fd)
        #endif
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SharedTreeError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                write(fd, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw fail("write", path)
            }
            offset += written
        }
    }

    /// Reads at most `maxBytes` bytes; throws `fileTooLarge` when the file holds more.
    static func readAll(_ fd: Int32, path: String, maxBytes: Int) throws(SharedTreeError) -> [UInt8] {
        let limit = max(0, maxBytes)
        // One byte more than the limit is read to tell "exactly at the limit" from "over it".
        let cap = limit < Int.max ? limit + 1 : limit
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(cap, 64 * 1024))
        while true {
            let want = min(chunk.count, cap - result.count)
            if want <= 0 { throw .fileTooLarge(path: path, limit: limit) }
            let count = chunk.withUnsafeMutableBytes { buffer in
                read(fd, buffer.baseAddress, want)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw fail("read", path)
            }
            if count == 0 { return result }
            result.append(contentsOf: chunk[0..<count])
            if result.count > limit { throw .fileTooLarge(path: path, limit: limit) }
        }
    }

    /// At most `maxBytes` from the start of the file (less when the file is shorter).
    static func readPrefix(_ fd: Int32, path: String, maxBytes: Int) throws(SharedTreeError) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(max(0, maxBytes), 64 * 1024))
        while result.count < maxBytes {
            let want = min(chunk.count, maxBytes - result.count)
            let count = chunk.withUnsafeMutableBytes { buffer in
                read(fd, buffer.baseAddress, want)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw fail("read", path)
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    static func fsync(_ fd: Int32, path: String) throws(SharedTreeError) {
        while true {
            #if canImport(Darwin)
            let result = Darwin.fsync(fd)
            #else
            let result = Glibc.fsync(fd)
            #endif
            if result == 0 { return }
            if errno == EINTR { continue }
            throw fail("fsync", path)
        }
    }

    /// Makes a rename, link or unlink in `directory` durable.
    static func fsyncDirectory(_ directory: String) throws(SharedTreeError) {
        let fd = try open(directory, O_RDONLY | O_DIRECTORY)
        defer { closeQuietly(fd) }
        while true {
            #if canImport(Darwin)
            let result = Darwin.fsync(fd)
            #else
            let result = Glibc.fsync(fd)
            #endif
            if result == 0 { return }
            let code = errno
            if code == EINTR { continue }
            // Some file systems cannot fsync a directory; their metadata operations are synchronous.
            if code == EINVAL || code == ENOTSUP || code == EBADF { return }
            throw fail("fsync", directory, code)
        }
    }

    static func fstat(_ fd: Int32, path: String) throws(SharedTreeError) -> FileStatus {
        var info = FileStatus()
        #if canImport(Darwin)
        let result = Darwin.fstat(fd, &info)
        #else
        let result = Glibc.fstat(fd, &info)
        #endif
        if result != 0 { throw fail("stat", path) }
        return info
    }

    /// `stat`, or nil when the path does not exist.
    static func stat(_ path: String) throws(SharedTreeError) -> FileStatus? {
        var info = FileStatus()
        if systemStat(path, &info) == 0 { return info }
        let code = errno
        if code == ENOENT { return nil }
        throw fail("stat", path, code)
    }

    static func rename(_ from: String, _ to: String) throws(SharedTreeError) {
        #if canImport(Darwin)
        let result = Darwin.rename(from, to)
        #else
        let result = Glibc.rename(from, to)
        #endif
        if result != 0 { throw fail("rename to \(to)", from) }
    }

    /// Removes `path`; a missing file is not an error (returns false).
    @discardableResult
    static func unlinkIfPresent(_ path: String) throws(SharedTreeError) -> Bool {
        #if canImport(Darwin)
        let result = Darwin.unlink(path)
        #else
        let result = Glibc.unlink(path)
        #endif
        if result == 0 { return true }
        let code = errno
        if code == ENOENT { return false }
        throw fail("unlink", path, code)
    }

    /// Sets the mtime (and atime) of `path` to "now" as the file server sees it: over NFS a
    /// `utimes(path, NULL)` is sent as SETATTR with SET_TO_SERVER_TIME.
    static func touch(_ path: String) throws(SharedTreeError) {
        #if canImport(Darwin)
        let result = Darwin.utimes(path, nil)
        #else
        let result = Glibc.utimes(path, nil)
        #endif
        if result != 0 { throw fail("utimes", path) }
    }

    static func mkdir(_ path: String, mode: mode_t) throws(SharedTreeError) {
        #if canImport(Darwin)
        let result = Darwin.mkdir(path, mode)
        #else
        let result = Glibc.mkdir(path, mode)
        #endif
        if result == 0 { return }
        let code = errno
        if code == EEXIST {
            guard let info = try stat(path) else { throw fail("mkdir", path, code) }
            if !isDirectory(info) { throw .notADirectory(path: path) }
            return
        }
        throw fail("mkdir", path, code)
    }

    /// Names in `directory`, without "." and "..", in no particular order.
    static func listDirectory(_ directory: String) throws(SharedTreeError) -> [String] {
        guard let handle = opendir(directory) else { throw fail("opendir", directory) }
        defer { closedir(handle) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(handle) else {
                if errno != 0 { throw fail("readdir", directory) }
                return names
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                let bytes = raw.prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
    }

    static func isDirectory(_ info: FileStatus) -> Bool {
        info.st_mode & S_IFMT == S_IFDIR
    }

    static func modificationDate(_ info: FileStatus) -> Date {
        #if canImport(Darwin)
        let time = info.st_mtimespec
        #else
        let time = info.st_mtim
        #endif
        return Date(timeIntervalSince1970: Double(time.tv_sec) + Double(time.tv_nsec) / 1_000_000_000)
    }
}

/// The C `stat` function; inside `Posix` the name means `Posix.stat`.
private func systemStat(_ path: String, _ info: inout FileStatus) -> Int32 {
    stat(path, &info)
}

/// Process-wide facts used to make file names unique across nodes and processes.
enum ProcessIdentity {
    /// The host name, reduced to characters that are safe in a file name.
    static let host: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        let name = String(decoding: bytes, as: UTF8.self)
        let safe = String(name.unicodeScalars.prefix(64).map { scalar -> Character in
            let allowed = (scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)))
                || scalar == "-" || scalar == "_" || scalar == "."
            return allowed ? Character(scalar) : "_"
        })
        return safe.isEmpty ? "unknown-host" : safe
    }()

    static var pid: Int32 { getpid() }
}

/// A random 128-bit value in hex, from the system's CSPRNG.
func randomToken() -> String {
    var generator = SystemRandomNumberGenerator()
    let high = generator.next() as UInt64
    let low = generator.next() as UInt64
    return hex(high) + hex(low)
}

private func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}

/// A suffix unique to this call: host, pid and a random token.
func uniqueSuffix() -> String {
    "\(ProcessIdentity.host).\(ProcessIdentity.pid).\(randomToken())"
}

enum PathUtil {
    /// `base` + "/" + `name`, without doubling a trailing slash.
    static func join(_ base: String, _ name: String) -> String {
        base.hasSuffix("/") ? base + name : base + "/" + name
    }

    /// Removes trailing slashes (but keeps "/").
    static func normalize(_ path: String) -> String {
        var result = path
        while result.count > 1 && result.hasSuffix("/") { result.removeLast() }
        return result
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func lastComponent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
