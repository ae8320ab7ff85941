import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The file server's idea of "now". Mtimes on the shared tree are set by the file server,
/// so their age is judged against this, never against the local clock (node clocks drift).
public enum FileServerClock {
    /// Touches a probe file in `directory` (`.clock-probe.<host>.<pid>.<random>`, unique per
    /// call), reads back its mtime as set by the file server and removes it. Blocking: a
    /// few round trips to the file server.
    public static func now(in directory: String) throws(SharedTreeError) -> Date {
        let probe = PathUtil.join(directory, ".clock-probe.\(uniqueSuffix())")
        let fd = try Posix.open(probe, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        defer { _ = try? Posix.unlinkIfPresent(probe) }
        let info: FileStatus
        do throws(SharedTreeError) {
            // Creation already sets the mtime, but an explicit SET_TO_SERVER_TIME makes the
            // reply carry fresh post-operation attributes.
            if futimens(fd, nil) != 0 { throw Posix.fail("futimens", probe) }
            info = try Posix.fstat(fd, path: probe)
        } catch {
            Posix.closeQuietly(fd)
            throw error
        }
        try Posix.close(fd, path: probe)
        return Posix.modificationDate(info)
    }
}
