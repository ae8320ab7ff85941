#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where things live on the shared tree (see DESIGN.md, "The shared tree (NFS rules)").
public struct SharedTreeLayout: Sendable {
    /// Absolute path of the shared tree, without a trailing slash.
    public let root: String

    public init(root: String) {
        self.root = PathUtil.normalize(root)
    }

    /// `<root>/mail`: one home per user, `<domain>/<h1h2>/<localpart>/`.
    public var mailDirectory: String { PathUtil.join(root, "mail") }
    /// `<root>/queue`: the MTA spool.
    public var queueDirectory: String { PathUtil.join(root, "queue") }
    /// `<root>/chat`: channel logs.
    public var chatDirectory: String { PathUtil.join(root, "chat") }
    /// `<root>/pim`: contacts and calendars.
    public var pimDirectory: String { PathUtil.join(root, "pim") }
    /// `<root>/cluster`.
    public var clusterDirectory: String { PathUtil.join(root, "cluster") }
    /// `<root>/cluster/nodes`: one heartbeat file per node.
    public var nodesDirectory: String { PathUtil.join(clusterDirectory, "nodes") }

    /// `<root>/cluster/nodes/<node>`, after checking that `node` is a valid node name
    /// (ASCII letters, digits, `-`, `_`, `.`; no leading `.`; 1–64 characters).
    public func heartbeatPath(node: String) throws(SharedTreeError) -> String {
        let name = try SafeName(node, kind: .node)
        return PathUtil.join(nodesDirectory, name.value)
    }

    /// Creates the top-level folders if they are missing (`mkdir -p`, mode 0755 less the
    /// process umask): mail, queue, chat, pim, cluster/nodes. By default the root itself
    /// must exist: creating it would hide an NFS export that is not mounted (the node would
    /// write to its local disk). Pass `createRoot: true` for a local tree (dev cluster, tests).
    public func createSkeleton(createRoot: Bool = false) throws(SharedTreeError) {
        if createRoot {
            var prefix = ""
            for component in root.split(separator: "/") {
                prefix += "/" + component
                try Posix.mkdir(prefix, mode: 0o755)
            }
        }
        guard let info = try Posix.stat(root) else {
            throw .io(operation: "stat", path: root, code: ENOENT)
        }
        guard Posix.isDirectory(info) else { throw .notADirectory(path: root) }
        for directory in [mailDirectory, queueDirectory, chatDirectory, pimDirectory, clusterDirectory, nodesDirectory] {
            try Posix.mkdir(directory, mode: 0o755)
        }
    }
}
