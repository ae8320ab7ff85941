#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Start-up and health checks of the shared tree.
public enum SharedTreeProbe {
    /// Checks that the tree is there and writable: the root exists and is a directory, and
    /// a file can be created, written, fsynced and removed in `<root>/cluster`. Throws an
    /// error naming the path and the system's error text. Blocking.
    public static func checkWritable(layout: SharedTreeLayout) throws(SharedTreeError) {
        for directory in [layout.root, layout.clusterDirectory] {
            guard let info = try Posix.stat(directory) else {
                throw .io(operation: "stat", path: directory, code: ENOENT)
            }
            guard Posix.isDirectory(info) else { throw .notADirectory(path: directory) }
        }
        let probe = PathUtil.join(layout.clusterDirectory, ".write-probe.\(uniqueSuffix())")
        let fd = try Posix.open(probe, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do throws(SharedTreeError) {
            try Posix.writeAll(fd, Array("svcpkg write probe\n".utf8), path: probe)
            try Posix.fsync(fd, path: probe)
        } catch {
            Posix.closeQuietly(fd)
            _ = try? Posix.unlinkIfPresent(probe)
            throw error
        }
        do throws(SharedTreeError) {
            try Posix.close(fd, path: probe)
        } catch {
            _ = try? Posix.unlinkIfPresent(probe)
            throw error
        }
        try Posix.unlinkIfPresent(probe)
    }
}
