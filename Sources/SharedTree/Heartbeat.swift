import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a node writes into `<root>/cluster/nodes/<node>` every few seconds.
public struct NodeHeartbeat: Codable, Sendable, Equatable {
    public var node: String
    public var pid: Int32
    /// The node's lifecycle state as the node module names it (e.g. "serving", "draining").
    public var state: String
    /// The svcpkg version the node runs.
    public var version: String
    public var host: String

    public init(node: String, pid: Int32, state: String, version: String, host: String) {
        self.node = node
        self.pid = pid
        self.state = state
        self.version = version
        self.host = host
    }
}

/// One heartbeat file as found on the tree.
public struct HeartbeatReading: Sendable {
    /// The node name (the file name).
    public let node: String
    /// The decoded contents; nil when the file could not be decoded (see `problem`).
    public let heartbeat: NodeHeartbeat?
    /// File server "now" minus the file's mtime, in seconds: how long ago the node last wrote it.
    public let age: TimeInterval
    /// Why `heartbeat` is nil, for `cluster status` to show.
    public let problem: String?

    public init(node: String, heartbeat: NodeHeartbeat?, age: TimeInterval, problem: String? = nil) {
        self.node = node
        self.heartbeat = heartbeat
        self.age = age
        self.problem = problem
    }
}

/// Node heartbeat files under `<root>/cluster/nodes`. All calls block on the file server.
public enum HeartbeatStore {
    /// The largest heartbeat file read; anything bigger was not written by svcpkg.
    public static let maxFileBytes = 64 * 1024

    /// Writes `heartbeat` as JSON into `layout.heartbeatPath(node: heartbeat.node)` with
    /// `AtomicFile`, which also sets the file's mtime to the file server's now.
    public static func write(_ heartbeat: NodeHeartbeat, layout: SharedTreeLayout) throws(SharedTreeError) {
        let path = try layout.heartbeatPath(node: heartbeat.node)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(heartbeat)
        } catch {
            throw .malformedFile(path: path, reason: "cannot encode the heartbeat: \(error)")
        }
        try AtomicFile.write(Array(data) + [UInt8(ascii: "\n")], to: path)
    }

    /// The heartbeat of `node`, or nil when it has no heartbeat file.
    public static func read(node: String, layout: SharedTreeLayout) throws(SharedTreeError) -> HeartbeatReading? {
        let path = try layout.heartbeatPath(node: node)
        let now = try FileServerClock.now(in: layout.nodesDirectory)
        return try reading(node: node, path: path, now: now)
    }

    /// Every heartbeat file in `layout.nodesDirectory`, sorted by node name. Names that are
    /// not valid node names (temporary files, clock probes, strays) are skipped, and so is a
    /// file removed between the listing and the read.
    public static func readAll(layout: SharedTreeLayout) throws(SharedTreeError) -> [HeartbeatReading] {
        let directory = layout.nodesDirectory
        let names = try Posix.listDirectory(directory)
            .filter { SafeName.isValid($0, kind: .node) }
            .sorted()
        let now = try FileServerClock.now(in: directory)
        var readings: [HeartbeatReading] = []
        for name in names {
            if let reading = try reading(node: name, path: PathUtil.join(directory, name), now: now) {
                readings.append(reading)
            }
        }
        return readings
    }

    private static func reading(node: String, path: String, now: Date) throws(SharedTreeError) -> HeartbeatReading? {
        let bytes: [UInt8]
        let status: FileStatus
        do throws(SharedTreeError) {
            (bytes, status) = try AtomicFile.readWithStatus(path, maxBytes: maxFileBytes)
        } catch {
            if error.isNotFound { return nil }
            // A stray file or directory under a node's name must not hide the other nodes.
            if case .fileTooLarge = error {
                return HeartbeatReading(node: node, heartbeat: nil, age: .infinity, problem: error.description)
            }
            if error.errnoCode == EISDIR {
                return HeartbeatReading(node: node, heartbeat: nil, age: .infinity, problem: "\(path) is a directory, not a heartbeat file; remove it")
            }
            throw error
        }
        let age = now.timeIntervalSince(Posix.modificationDate(status))
        do {
            let heartbeat = try JSONDecoder().decode(NodeHeartbeat.self, from: Data(bytes))
            return HeartbeatReading(node: node, heartbeat: heartbeat, age: age)
        } catch {
            let problem = SharedTreeError.malformedFile(path: path, reason: "not a heartbeat JSON object (\(error))").description
            return HeartbeatReading(node: node, heartbeat: nil, age: age, problem: problem)
        }
    }
}
