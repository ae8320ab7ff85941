#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Who holds (or held) a lock file, as read from its contents and its mtime.
public struct LockHolder: Sendable, Equatable, CustomStringConvertible {
    public var node: String
    public var pid: Int32
    public var host: String
    /// File server "now" minus the lock file's mtime, when it could be measured.
    public var age: Double?

    public init(node: String, pid: Int32, host: String, age: Double?) {
        self.node = node
        self.pid = pid
        self.host = host
        self.age = age
    }

    public var description: String {
        var text = "node \(node) pid \(pid) (host \(host))"
        if let age {
            text += ", last touched \(formatSeconds(age)) ago"
        }
        return text
    }
}

/// Everything that can go wrong on the shared tree. Each description names what failed,
/// the path, the system's error text where there is one, and what an operator can do.
public enum SharedTreeError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A system call (`operation`, e.g. "open", "rename") failed on `path` with `code` (an errno value).
    case io(operation: String, path: String, code: Int32)
    /// `path` exists but is not a directory where a directory is required.
    case notADirectory(path: String)
    /// `path` is larger than the caller's limit; it was not read.
    case fileTooLarge(path: String, limit: Int)
    /// `path` could not be parsed or encoded (`reason` says why).
    case malformedFile(path: String, reason: String)
    /// A name (node, user local part, domain, folder, file name) is unsafe to use in a path.
    case invalidName(kind: String, name: String, reason: String)
    /// Gave up waiting for the lock at `path` after `waited` seconds; `holder` is who held it at the last look.
    case lockTimeout(path: String, waited: Double, holder: LockHolder?)
    /// The lock at `path` is no longer ours: it was broken as stale or removed. `holder` is who holds it now, if anyone.
    case lockLost(path: String, holder: LockHolder?)
    /// The task doing `operation` on `path` was cancelled.
    case cancelled(operation: String, path: String)

    /// The errno value behind an `.io` error, nil for every other case.
    public var errnoCode: Int32? {
        if case .io(_, _, let code) = self { return code }
        return nil
    }

    /// True when the error is an `.io` error for a missing file or directory.
    public var isNotFound: Bool { errnoCode == ENOENT }

    public var description: String {
        switch self {
        case .io(let operation, let path, let code):
            var text = "\(operation) \(path) failed: \(errnoText(code)) (errno \(code))"
            if let hint = Self.hint(forErrno: code) {
                text += "; \(hint)"
            }
            return text
        case .notADirectory(let path):
            return "\(path) is not a directory; the shared tree root and its top-level folders must be directories (is the NFS export mounted at the right place?)"
        case .fileTooLarge(let path, let limit):
            return "\(path) is larger than the limit of \(limit) bytes and was not read; remove or repair the file if it is not what svcpkg wrote"
        case .malformedFile(let path, let reason):
            return "\(path) is malformed: \(reason); remove or repair the file"
        case .invalidName(let kind, let name, let reason):
            return "invalid \(kind) \(quoted(name)): \(reason)"
        case .lockTimeout(let path, let waited, let holder):
            let who = holder.map { "held by \($0)" } ?? "held by an unknown owner"
            return "timed out after \(formatSeconds(waited)) waiting for lock \(path), \(who); if that holder is gone the lock is broken automatically once it is older than the stale timeout, otherwise check what it is doing"
        case .lockLost(let path, let holder):
            let who = holder.map { "it is now held by \($0)" } ?? "it no longer exists"
            return "lost lock \(path): \(who); the lock was broken as stale (was this process paused longer than the stale timeout, or is the file server's clock jumping?) — the operation was not committed and can be retried"
        case .cancelled(let operation, let path):
            return "\(operation) \(path) was cancelled"
        }
    }

    static func hint(forErrno code: Int32) -> String? {
        switch code {
        case EACCES, EPERM:
            return "check that the svcpkg user owns the shared tree and may write to it"
        case ENOENT:
            return "the path does not exist: is the shared tree mounted and its skeleton created?"
        case EROFS:
            return "the file system is mounted read-only: remount it read-write"
        case ENOSPC, EDQUOT:
            return "the file system is full or over quota: free space on the file server"
        case ESTALE:
            return "stale NFS file handle: the export changed under the mount; remount the shared tree"
        case EIO, ETIMEDOUT:
            return "the file server did not complete the request: check the NFS mount and the server"
        case ENAMETOOLONG:
            return "the path is longer than the file system allows: use shorter names"
        case ENOTDIR:
            return "a component of the path is not a directory: check the shared tree's layout"
        default:
            return nil
        }
    }
}

/// The system's text for an errno value.
func errnoText(_ code: Int32) -> String {
    // glibc's strerror returns static strings for known codes and a thread-local buffer otherwise.
    guard let text = strerror(code) else { return "unknown error" }
    return String(cString: text)
}

func formatSeconds(_ seconds: Double) -> String {
    let tenths = (seconds * 10).rounded() / 10
    return "\(tenths) s"
}

/// Quotes a name for an error message, escaping control characters so the message stays one line.
func quoted(_ name: String) -> String {
    var out = "\""
    for scalar in name.unicodeScalars.prefix(300) {
        switch scalar.value {
        case 0x22: out += "\\\""
        case 0x5C: out += "\\\\"
        case 0..<0x20, 0x7F, 0x80..<0xA0:
            out += "\\u{\(String(scalar.value, radix: 16))}"
        default:
            out.unicodeScalars.append(scalar)
        }
    }
    if name.unicodeScalars.count > 300 { out += "…" }
    return out + "\""
}
