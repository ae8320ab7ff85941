import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import SharedTree

final class SharedTreeLayoutTests: XCTestCase {
    func testPaths() throws {
        let layout = SharedTreeLayout(root: "/srv/shared/")
        XCTAssertEqual(layout.root, "/srv/shared")
        XCTAssertEqual(layout.clusterDirectory, "/srv/shared/cluster")
        XCTAssertEqual(layout.nodesDirectory, "/srv/shared/cluster/nodes")
        XCTAssertEqual(layout.mailDirectory, "/srv/shared/mail")
        XCTAssertEqual(layout.queueDirectory, "/srv/shared/queue")
        XCTAssertEqual(try layout.heartbeatPath(node: "node-a_1.example"), "/srv/shared/cluster/nodes/node-a_1.example")
        XCTAssertEqual(SharedTreeLayout(root: "/").nodesDirectory, "/cluster/nodes")
    }

    func testHeartbeatPathRejectsBadNodeNames() {
        let layout = SharedTreeLayout(root: "/srv/shared")
        let bad = ["", ".hidden", "..", "a/b", "../x", "a b", "a\u{0}b", "a\nb", "é", String(repeating: "n", count: 65), "a..b"]
        for name in bad {
            let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try layout.heartbeatPath(node: name) }
            guard case .invalidName(let kind, _, _)? = error else {
                XCTFail("\(name.debugDescription): expected invalidName, got \(String(describing: error))")
                continue
            }
            XCTAssertEqual(kind, "node name")
        }
        XCTAssertNoThrow(try layout.heartbeatPath(node: String(repeating: "n", count: 64)))
        XCTAssertNoThrow(try layout.heartbeatPath(node: "a"))
    }

    func testCreateSkeletonIsIdempotent() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let layout = SharedTreeLayout(root: temp.path)
        try layout.createSkeleton()
        try layout.createSkeleton()
        XCTAssertEqual(try listing(temp.path), ["chat", "cluster", "mail", "pim", "queue"])
        XCTAssertEqual(try listing(layout.clusterDirectory), ["nodes"])
        let mode = try fileMode(layout.nodesDirectory)
        XCTAssertEqual(mode & 0o700, 0o700)
        XCTAssertEqual(mode & 0o022, 0, "never group/world writable")
    }

    func testCreateSkeletonRefusesMissingRoot() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let layout = SharedTreeLayout(root: temp.file("not-mounted"))
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try layout.createSkeleton() }
        XCTAssertEqual(error?.errnoCode, ENOENT)
        XCTAssertTrue(error?.description.contains(temp.file("not-mounted")) ?? false)
        XCTAssertFalse(FileManager.default.fileExists(atPath: temp.file("not-mounted")))

        let local = SharedTreeLayout(root: temp.file("dev/state/shared"))
        try local.createSkeleton(createRoot: true)
        XCTAssertEqual(try listing(local.root), ["chat", "cluster", "mail", "pim", "queue"])
    }

    func testCreateSkeletonReportsFileInTheWay() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try writeText("x", to: temp.file("cluster"))
        let layout = SharedTreeLayout(root: temp.path)
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try layout.createSkeleton() }
        XCTAssertEqual(error, .notADirectory(path: temp.file("cluster")))

        let rootIsFile = SharedTreeLayout(root: temp.file("cluster"))
        let error2 = assertThrowsSharedTreeError { () throws(SharedTreeError) in try rootIsFile.createSkeleton() }
        XCTAssertEqual(error2, .notADirectory(path: temp.file("cluster")))
    }
}

final class FileServerClockTests: XCTestCase {
    func testNowIsTheFileSystemClockAndLeavesNoProbe() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let before = Date()
        let now = try FileServerClock.now(in: temp.path)
        let after = Date()
        // Local disk: the file system clock is the local (coarse) clock.
        XCTAssertGreaterThan(now.timeIntervalSince(before), -0.1)
        XCTAssertLessThan(now.timeIntervalSince(after), 0.1)
        XCTAssertEqual(try listing(temp.path), [])
    }

    func testNowInMissingDirectoryNamesThePath() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try FileServerClock.now(in: temp.file("gone")) }
        XCTAssertEqual(error?.errnoCode, ENOENT)
        let text = error?.description ?? ""
        XCTAssertTrue(text.contains(temp.file("gone")), text)
        XCTAssertTrue(text.contains("No such file or directory"), text)
    }
}

final class AtomicFileTests: XCTestCase {
    func testWriteThenReadAndOverwrite() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let path = temp.file("data")
        try AtomicFile.write(Array("first".utf8), to: path)
        XCTAssertEqual(try AtomicFile.read(path, maxBytes: 100), Array("first".utf8))
        try AtomicFile.write(Array("second, longer".utf8), to: path, mode: 0o600)
        XCTAssertEqual(try AtomicFile.read(path, maxBytes: 100), Array("second, longer".utf8))
        XCTAssertEqual(try fileMode(path), 0o600)
        try AtomicFile.write([], to: path)
        XCTAssertEqual(try AtomicFile.read(path, maxBytes: 0), [])
        XCTAssertEqual(try listing(temp.path), ["data"], "no temporary file left behind")
    }

    func testLargeWrite() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let path = temp.file("big")
        let data = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try AtomicFile.write(data, to: path)
        XCTAssertEqual(try AtomicFile.read(path, maxBytes: data.count), data)
    }

    func testReadLimit() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let path = temp.file("data")
        try AtomicFile.write(Array("12345".utf8), to: path)
        XCTAssertEqual(try AtomicFile.read(path, maxBytes: 5), Array("12345".utf8))
        XCTAssertEqual(try AtomicFile.read(path, maxBytes: Int.max), Array("12345".utf8))
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try AtomicFile.read(path, maxBytes: 4) }
        XCTAssertEqual(error, .fileTooLarge(path: path, limit: 4))
    }

    func testReadMissingFile() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try AtomicFile.read(temp.file("nope"), maxBytes: 10) }
        XCTAssertEqual(error?.isNotFound, true)
        XCTAssertTrue(error?.description.contains(temp.file("nope")) ?? false)
    }

    func testWriteIntoMissingDirectoryNamesTheTemporaryPath() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in
            try AtomicFile.write([1, 2, 3], to: temp.file("missing/data"))
        }
        XCTAssertEqual(error?.errnoCode, ENOENT)
        XCTAssertTrue(error?.description.contains(temp.file("missing/")) ?? false)
    }

    func testConcurrentWritersNeverExposeAPartialFile() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let path = temp.file("data")
        let a = [UInt8](repeating: UInt8(ascii: "a"), count: 50_000)
        let b = [UInt8](repeating: UInt8(ascii: "b"), count: 70_000)
        try AtomicFile.write(a, to: path)
        DispatchQueue.concurrentPerform(iterations: 4) { (index: Int) -> Void in
            for _ in 0..<20 {
                do {
                    if index < 2 {
                        try AtomicFile.write(index == 0 ? a : b, to: path)
                    } else {
                        let read = try AtomicFile.read(path, maxBytes: 100_000)
                        XCTAssertTrue(read == a || read == b, "read \(read.count) bytes")
                    }
                } catch {
                    XCTFail("\(error)")
                }
            }
        }
        XCTAssertEqual(try listing(temp.path), ["data"])
    }
}

final class HeartbeatStoreTests: XCTestCase {
    func testWriteReadAndReadAll() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let layout = SharedTreeLayout(root: temp.path)
        try layout.createSkeleton()

        XCTAssertNil(try HeartbeatStore.read(node: "node-b", layout: layout))
        XCTAssertEqual(try HeartbeatStore.readAll(layout: layout).count, 0)

        let b = NodeHeartbeat(node: "node-b", pid: 42, state: "serving", version: "0.1.0", host: "hb")
        let a = NodeHeartbeat(node: "node-a", pid: 7, state: "draining", version: "0.1.0", host: "ha")
        try HeartbeatStore.write(b, layout: layout)
        try HeartbeatStore.write(a, layout: layout)

        let readB = try XCTUnwrap(HeartbeatStore.read(node: "node-b", layout: layout))
        XCTAssertEqual(readB.node, "node-b")
        XCTAssertEqual(readB.heartbeat, b)
        XCTAssertLessThan(abs(readB.age), 1)

        // Strays that readAll must skip: a temporary file, a clock probe, a directory name with a space.
        try writeText("{}", to: layout.nodesDirectory + "/.node-c.tmp.h.1.abc")
        try writeText("x", to: layout.nodesDirectory + "/.clock-probe.h.1.abc")
        try writeText("x", to: layout.nodesDirectory + "/not a node")
        try setModificationTime(try layout.heartbeatPath(node: "node-a"), secondsAgo: 100)

        let all = try HeartbeatStore.readAll(layout: layout)
        XCTAssertEqual(all.map(\.node), ["node-a", "node-b"])
        XCTAssertEqual(all.map(\.heartbeat), [a, b])
        XCTAssertEqual(all[0].age, 100, accuracy: 2)
        XCTAssertLessThan(all[1].age, 2)
    }

    func testMalformedHeartbeatIsReportedNotThrown() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let layout = SharedTreeLayout(root: temp.path)
        try layout.createSkeleton()
        try writeText("{\"node\": 1", to: try layout.heartbeatPath(node: "broken"))
        let reading = try XCTUnwrap(HeartbeatStore.read(node: "broken", layout: layout))
        XCTAssertNil(reading.heartbeat)
        XCTAssertTrue(reading.problem?.contains("broken") ?? false)
        XCTAssertEqual(try HeartbeatStore.readAll(layout: layout).map(\.node), ["broken"])
    }

    func testStrayDirectoryDoesNotHideOtherNodes() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let layout = SharedTreeLayout(root: temp.path)
        try layout.createSkeleton()
        try FileManager.default.createDirectory(atPath: layout.nodesDirectory + "/stray", withIntermediateDirectories: false)
        try HeartbeatStore.write(NodeHeartbeat(node: "node-a", pid: 1, state: "serving", version: "0", host: "h"), layout: layout)
        let all = try HeartbeatStore.readAll(layout: layout)
        XCTAssertEqual(all.map(\.node), ["node-a", "stray"])
        XCTAssertNotNil(all[0].heartbeat)
        XCTAssertNil(all[1].heartbeat)
        XCTAssertTrue(all[1].problem?.contains("is a directory") ?? false)
    }

    func testHeartbeatForInvalidNodeIsRejected() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let layout = SharedTreeLayout(root: temp.path)
        try layout.createSkeleton()
        let beat = NodeHeartbeat(node: "../evil", pid: 1, state: "serving", version: "0", host: "h")
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try HeartbeatStore.write(beat, layout: layout) }
        guard case .invalidName? = error else { return XCTFail("got \(String(describing: error))") }
    }
}

final class SharedTreeProbeTests: XCTestCase {
    func testWritableTree() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let layout = SharedTreeLayout(root: temp.path)
        try layout.createSkeleton()
        try SharedTreeProbe.checkWritable(layout: layout)
        XCTAssertEqual(try listing(layout.clusterDirectory), ["nodes"], "the probe file is removed")
    }

    func testMissingRootAndMissingCluster() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let missing = SharedTreeLayout(root: temp.file("absent"))
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try SharedTreeProbe.checkWritable(layout: missing) }
        XCTAssertEqual(error, .io(operation: "stat", path: temp.file("absent"), code: ENOENT))
        XCTAssertTrue(error?.description.contains("is the shared tree mounted") ?? false)

        let empty = SharedTreeLayout(root: temp.path)
        let error2 = assertThrowsSharedTreeError { () throws(SharedTreeError) in try SharedTreeProbe.checkWritable(layout: empty) }
        XCTAssertEqual(error2, .io(operation: "stat", path: temp.file("cluster"), code: ENOENT))

        try writeText("x", to: temp.file("file"))
        let fileRoot = SharedTreeLayout(root: temp.file("file"))
        let error3 = assertThrowsSharedTreeError { () throws(SharedTreeError) in try SharedTreeProbe.checkWritable(layout: fileRoot) }
        XCTAssertEqual(error3, .notADirectory(path: temp.file("file")))
    }

    func testReadOnlyTree() throws {
        try XCTSkipIf(geteuid() == 0, "root ignores directory permissions")
        let temp = try TemporaryDirectory()
        defer {
            chmod(temp.file("cluster"), 0o755)
            temp.remove()
        }
        let layout = SharedTreeLayout(root: temp.path)
        try layout.createSkeleton()
        chmod(layout.clusterDirectory, 0o555)
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try SharedTreeProbe.checkWritable(layout: layout) }
        XCTAssertEqual(error?.errnoCode, EACCES)
        XCTAssertTrue(error?.description.contains("Permission denied") ?? false)
    }
}

final class SharedTreeErrorTests: XCTestCase {
    func testDescriptionsNameWhatPathAndErrno() {
        let io = SharedTreeError.io(operation: "rename to /t/b", path: "/t/a", code: EROFS)
        XCTAssertEqual(io.description, "rename to /t/b /t/a failed: Read-only file system (errno \(EROFS)); the file system is mounted read-only: remount it read-write")
        let holder = LockHolder(node: "n1", pid: 9, host: "h1", age: 3.24)
        let timeout = SharedTreeError.lockTimeout(path: "/t/x.lock", waited: 10, holder: holder)
        XCTAssertTrue(timeout.description.contains("/t/x.lock"))
        XCTAssertTrue(timeout.description.contains("node n1 pid 9 (host h1), last touched 3.2 s ago"))
        let invalid = SharedTreeError.invalidName(kind: "domain", name: "a\nb", reason: "it contains a control character")
        XCTAssertEqual(invalid.description, "invalid domain \"a\\u{a}b\": it contains a control character")
    }
}
