import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import SharedTree

/// Writes `NAME.lock` as a holder that died would have left it: its record, its unique file
/// hard-linked to it, and an mtime `secondsAgo` in the past.
@discardableResult
func plantLock(name: String, in directory: String, node: String = "dead-node", pid: Int32 = 999_999, secondsAgo: Double) throws -> LockRecord {
    let record = LockRecord(node: node, pid: pid, host: "gone", token: randomToken(), created: Date().timeIntervalSince1970 - secondsAgo)
    let lockPath = directory + "/" + name + ".lock"
    let unique = try XCTUnwrap(LockFile.uniquePath(lockPath: lockPath, record: record))
    try Data(JSONEncoder().encode(record)).write(to: URL(fileURLWithPath: unique))
    XCTAssertEqual(link(unique, lockPath), 0)
    try setModificationTime(lockPath, secondsAgo: secondsAgo)
    return record
}

func readRecord(_ path: String) throws -> LockRecord {
    try JSONDecoder().decode(LockRecord.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
}

func linkCount(_ path: String) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { return -1 }
    return Int(info.st_nlink)
}

struct MutualExclusionViolation: Error, CustomStringConvertible {
    let description: String
}

/// The critical section of the counter tests: proves exclusivity with an O_EXCL marker,
/// reads the counter, yields the CPU, verifies the lock and writes counter + 1.
func incrementCounter(in directory: String, under lock: LockFile) throws {
    let marker = directory + "/inside"
    let fd = open(marker, O_CREAT | O_EXCL | O_WRONLY, 0o644)
    guard fd >= 0 else {
        throw MutualExclusionViolation(description: "two holders inside the critical section at once (errno \(errno))")
    }
    close(fd)
    let counterPath = directory + "/counter"
    let text: String
    // (`catch where error.isNotFound` crashes the Swift 6.3.1 compiler in MandatoryAllocBoxToStack.)
    do throws(SharedTreeError) {
        text = String(decoding: try AtomicFile.read(counterPath, maxBytes: 64), as: UTF8.self)
    } catch {
        guard error.isNotFound else { throw error }
        text = "0"
    }
    guard let value = Int(text) else {
        throw MutualExclusionViolation(description: "counter file holds \(text.debugDescription)")
    }
    usleep(200)
    try lock.verify()
    try AtomicFile.write(Array(String(value + 1).utf8), to: counterPath)
    guard unlink(marker) == 0 else {
        throw MutualExclusionViolation(description: "marker vanished while we held the lock")
    }
}

/// The critical section when holders may lose their lock (short stale timeouts): reads
/// the counter and commits counter + 1 only if `verify()` passes. Returns whether it
/// committed. A lost lock is an expected outcome here, a lost increment is not.
func incrementCounterIfStillHeld(in directory: String, under lock: LockFile) throws -> Bool {
    let counterPath = directory + "/counter"
    var value = 0
    do throws(SharedTreeError) {
        value = Int(String(decoding: try AtomicFile.read(counterPath, maxBytes: 64), as: UTF8.self)) ?? -1_000_000
    } catch {
        guard error.isNotFound else { throw error }
    }
    do throws(SharedTreeError) {
        try lock.verify()
    } catch {
        guard case .lockLost = error else { throw error }
        return false
    }
    try AtomicFile.write(Array(String(value + 1).utf8), to: counterPath)
    return true
}

func readCounter(in directory: String) throws -> Int {
    let text = String(decoding: try AtomicFile.read(directory + "/counter", maxBytes: 64), as: UTF8.self)
    return Int(text) ?? -1
}

/// Files that are not the lock protocol's normal residue (counter, its temp files).
func lockResidue(_ directory: String) throws -> [String] {
    try listing(directory).filter { $0.contains(".lock") }
}

final class LockFileTests: XCTestCase {
    let fast = LockOptions(staleTimeout: 30, timeout: 0.3, initialBackoff: 0.002, maxBackoff: 0.05)

    func testAcquireAndRelease() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let lock = try LockFile.acquire(name: "folder", in: temp.path, node: "node-a", options: fast)
        XCTAssertEqual(lock.path, temp.file("folder.lock"))
        let record = try readRecord(lock.path)
        XCTAssertEqual(record, lock.record)
        XCTAssertEqual(record.node, "node-a")
        XCTAssertEqual(record.pid, getpid())
        XCTAssertEqual(record.token.count, 32)
        XCTAssertEqual(linkCount(lock.path), 2, "the unique file stays linked while held")
        let holder = try XCTUnwrap(LockFile.holder(name: "folder", in: temp.path))
        XCTAssertEqual(holder.node, "node-a")
        XCTAssertEqual(holder.pid, getpid())
        XCTAssertLessThan(holder.age ?? 99, 1)
        try lock.touch()
        try lock.verify()
        XCTAssertTrue(try lock.release())
        XCTAssertEqual(try listing(temp.path), [])
        XCTAssertNil(try LockFile.holder(name: "folder", in: temp.path))
        XCTAssertFalse(try lock.release(), "a second release finds nothing")
    }

    func testSecondAcquirerTimesOutNamingTheHolder() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let lock = try LockFile.acquire(name: "folder", in: temp.path, node: "node-a", options: fast)
        XCTAssertNil(try LockFile.tryAcquire(name: "folder", in: temp.path, node: "node-b", options: fast))

        let start = Date()
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in
            try LockFile.acquire(name: "folder", in: temp.path, node: "node-b", options: self.fast)
        }
        let waited = Date().timeIntervalSince(start)
        guard case .lockTimeout(let path, let reportedWait, let holder)? = error else {
            return XCTFail("expected lockTimeout, got \(String(describing: error))")
        }
        XCTAssertEqual(path, lock.path)
        XCTAssertGreaterThanOrEqual(waited, 0.29)
        XCTAssertGreaterThanOrEqual(reportedWait, 0.29)
        XCTAssertEqual(holder?.node, "node-a")
        XCTAssertEqual(holder?.pid, getpid())
        let text = error?.description ?? ""
        XCTAssertTrue(text.contains(lock.path) && text.contains("node node-a pid \(getpid())") && text.contains("last touched"), text)
        XCTAssertEqual(try lockResidue(temp.path).count, 2, "the waiter's unique file is removed")
        XCTAssertTrue(try lock.release())
    }

    func testWaiterGetsTheLockWhenReleased() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let lock = try LockFile.acquire(name: "folder", in: temp.path, node: "node-a", options: fast)
        let releaser = Thread {
            Thread.sleep(forTimeInterval: 0.3)
            _ = try? lock.release()
        }
        releaser.start()
        let start = Date()
        var options = fast
        options.timeout = 10
        let second = try LockFile.acquire(name: "folder", in: temp.path, node: "node-b", options: options)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.25)
        XCTAssertEqual(try readRecord(second.path).node, "node-b")
        XCTAssertTrue(try second.release())
        XCTAssertEqual(try listing(temp.path), [])
    }

    func testStaleLockIsBrokenAfterTheTimeoutAndNotBefore() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let dead = try plantLock(name: "folder", in: temp.path, secondsAgo: 1)
        let lastTouch = try modificationTime(temp.file("folder.lock"))
        let options = LockOptions(staleTimeout: 2.5, timeout: 8, initialBackoff: 0.005, maxBackoff: 0.1)

        XCTAssertNil(try LockFile.tryAcquire(name: "folder", in: temp.path, node: "node-b", options: options))
        let holder = try XCTUnwrap(LockFile.holder(name: "folder", in: temp.path))
        XCTAssertEqual(holder.node, dead.node)
        XCTAssertEqual(holder.pid, dead.pid)

        let lock = try LockFile.acquire(name: "folder", in: temp.path, node: "node-b", options: options)
        let acquiredAt = Date()
        XCTAssertGreaterThan(acquiredAt.timeIntervalSince(lastTouch), 2.5, "broken only once older than the stale timeout")
        XCTAssertLessThan(acquiredAt.timeIntervalSince(lastTouch), 4.5, "and soon after")
        XCTAssertEqual(try readRecord(lock.path).token, lock.record.token)
        // The dead holder's unique file and the broken file are gone.
        XCTAssertEqual(try lockResidue(temp.path).sorted(), [PathUtil.lastComponent(of: lock.uniquePath), "folder.lock"].sorted())
        XCTAssertTrue(try lock.release())
        XCTAssertEqual(try listing(temp.path), [])
    }

    func testLongDeadLockIsBrokenAtOnce() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try plantLock(name: "folder", in: temp.path, secondsAgo: 100)
        let lock = try XCTUnwrap(LockFile.tryAcquire(name: "folder", in: temp.path, node: "node-b", options: fast))
        XCTAssertTrue(try lock.release())
        XCTAssertEqual(try listing(temp.path), [])
    }

    func testUnreadableStaleLockIsBrokenByMtime() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try writeText("garbage", to: temp.file("folder.lock"))
        XCTAssertNil(try LockFile.tryAcquire(name: "folder", in: temp.path, node: "node-b", options: fast))
        try setModificationTime(temp.file("folder.lock"), secondsAgo: 60)
        let lock = try XCTUnwrap(LockFile.tryAcquire(name: "folder", in: temp.path, node: "node-b", options: fast))
        XCTAssertTrue(try lock.release())
        XCTAssertEqual(try listing(temp.path), [])
    }

    func testVerifyDetectsAStolenLock() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let options = LockOptions(staleTimeout: 1, timeout: 2, initialBackoff: 0.005, maxBackoff: 0.05)
        let first = try LockFile.acquire(name: "folder", in: temp.path, node: "node-a", options: options)
        // node-a stalls for longer than the stale timeout: no touches.
        try setModificationTime(first.path, secondsAgo: 5)
        let second = try LockFile.acquire(name: "folder", in: temp.path, node: "node-b", options: options)

        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try first.verify() }
        guard case .lockLost(let path, let holder)? = error else {
            return XCTFail("expected lockLost, got \(String(describing: error))")
        }
        XCTAssertEqual(path, first.path)
        XCTAssertEqual(holder?.node, "node-b")
        XCTAssertTrue(error?.description.contains("node node-b") ?? false)
        let touchError = assertThrowsSharedTreeError { () throws(SharedTreeError) in try first.touch() }
        guard case .lockLost? = touchError else { return XCTFail("got \(String(describing: touchError))") }

        XCTAssertFalse(try first.release(), "release must not remove node-b's lock")
        try second.verify()
        XCTAssertEqual(try readRecord(second.path).node, "node-b")
        XCTAssertTrue(try second.release())
        XCTAssertEqual(try listing(temp.path), [])
    }

    func testVerifyDetectsReplacedContents() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let lock = try LockFile.acquire(name: "folder", in: temp.path, node: "node-a", options: fast)
        var other = lock.record
        other.token = randomToken()
        other.node = "intruder"
        try AtomicFile.write(Array(try JSONEncoder().encode(other)), to: lock.path)
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try lock.verify() }
        guard case .lockLost(_, let holder)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(holder?.node, "intruder")
        XCTAssertFalse(try lock.release())
        XCTAssertEqual(try readRecord(temp.file("folder.lock")).node, "intruder", "someone else's lock is put back")
    }

    func testVerifyDetectsAMissingLock() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let lock = try LockFile.acquire(name: "folder", in: temp.path, node: "node-a", options: fast)
        XCTAssertEqual(unlink(lock.path), 0)
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in try lock.verify() }
        XCTAssertEqual(error, .lockLost(path: lock.path, holder: nil))
        XCTAssertFalse(try lock.release())
        XCTAssertEqual(try listing(temp.path), [])
    }

    /// The break protocol step by step: a fresh look before the rename, a check after it,
    /// and a claim marker that keeps concurrent breakers apart.
    func testBreakerChecksBeforeAndAfterItsRename() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let options = LockOptions(staleTimeout: 2, timeout: 1)
        let holder = try LockFile.acquire(name: "folder", in: temp.path, node: "node-a", options: options)
        var breaker = try Acquisition(name: "folder", directory: temp.path, node: "node-b", options: options, logger: LockFile.defaultLogger)
        defer { breaker.abandon() }

        // Judged stale from an old look, but the holder touched it since.
        try setModificationTime(holder.path, secondsAgo: 10)
        let old = try XCTUnwrap(LockSnapshot.read(holder.path))
        try holder.touch()
        XCTAssertEqual(try breaker.breakStale(old), .notStale)
        try holder.verify()

        // Judged stale as another lock (another token) than the one there now.
        try setModificationTime(holder.path, secondsAgo: 10)
        let judged = try XCTUnwrap(LockSnapshot.read(holder.path))
        let other = LockSnapshot(record: LockRecord(node: "x", pid: 1, host: "h", token: randomToken(), created: 0), device: judged.device, inode: judged.inode, links: 2, modified: judged.modified)
        XCTAssertEqual(try breaker.breakStale(other), .notStale)

        // The holder touches it in the instant between the fresh look and the rename.
        breaker.beforeBreakRename = { _ = try? holder.touch() }
        XCTAssertEqual(try breaker.breakStale(judged), .restored)
        breaker.beforeBreakRename = nil
        try holder.verify()

        // Another breaker holds a live claim on it: back off.
        try setModificationTime(holder.path, secondsAgo: 10)
        let stale = try XCTUnwrap(LockSnapshot.read(holder.path))
        let marker = holder.path + ".breaking." + holder.record.token
        try writeText("{}", to: marker)
        XCTAssertEqual(try breaker.breakStale(stale), .busy)
        try holder.verify()
        // That breaker died: its claim goes stale and the next generation is claimed.
        try setModificationTime(holder.path, secondsAgo: 10)
        try setModificationTime(marker, secondsAgo: 10)
        let stale2 = try XCTUnwrap(LockSnapshot.read(holder.path))
        XCTAssertEqual(try breaker.breakStale(stale2), .broken)
        XCTAssertEqual(unlink(marker), 0)

        XCTAssertEqual(try breaker.breakStale(stale2), .lostRace, "nothing left to break")
        XCTAssertThrowsError(try holder.verify())
        XCTAssertFalse(try holder.release())
        breaker.abandon()
        XCTAssertEqual(try listing(temp.path), [])
    }

    func testLockNamesAreValidated() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        for name in ["", "../x", "a/b", ".hidden", "a\u{0}b", String(repeating: "x", count: 97)] {
            let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in
                try LockFile.acquire(name: name, in: temp.path, node: "node-a", options: self.fast)
            }
            guard case .invalidName? = error else { return XCTFail("\(name.debugDescription): got \(String(describing: error))") }
        }
        let badNode = assertThrowsSharedTreeError { () throws(SharedTreeError) in
            try LockFile.acquire(name: "folder", in: temp.path, node: "../n", options: self.fast)
        }
        guard case .invalidName? = badNode else { return XCTFail("got \(String(describing: badNode))") }
        XCTAssertEqual(try listing(temp.path), [])
    }

    func testMissingDirectoryIsAnIOError() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let error = assertThrowsSharedTreeError { () throws(SharedTreeError) in
            try LockFile.acquire(name: "folder", in: temp.file("gone"), node: "node-a", options: self.fast)
        }
        XCTAssertEqual(error?.errnoCode, ENOENT)
        XCTAssertTrue(error?.description.contains(temp.file("gone/folder.lock")) ?? false)
    }

    func testRemoveLeftovers() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let held = try LockFile.acquire(name: "held", in: temp.path, node: "node-a", options: fast)
        try setModificationTime(held.uniquePath, secondsAgo: 1000)
        try writeText("{}", to: temp.file("other.lock.tmp.node-b.1.0123456789abcdef0123456789abcdef"))
        try writeText("{}", to: temp.file("other.lock.broken.abc"))
        try writeText("{}", to: temp.file("fresh.lock.tmp.node-b.1.0123456789abcdef0123456789abcdef"))
        try writeText("keep", to: temp.file("unrelated"))
        try setModificationTime(temp.file("other.lock.tmp.node-b.1.0123456789abcdef0123456789abcdef"), secondsAgo: 1000)
        try setModificationTime(temp.file("other.lock.broken.abc"), secondsAgo: 1000)
        try setModificationTime(temp.file("unrelated"), secondsAgo: 1000)
        XCTAssertEqual(try LockFile.removeLeftovers(in: temp.path, olderThan: 300), 2)
        XCTAssertEqual(try listing(temp.path).sorted(), [
            "fresh.lock.tmp.node-b.1.0123456789abcdef0123456789abcdef",
            "held.lock",
            PathUtil.lastComponent(of: held.uniquePath),
            "unrelated",
        ].sorted())
        XCTAssertTrue(try held.release())
    }

    func testManyThreadsNeverLoseAnIncrement() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let threads = 8
        let perThread = 25
        let options = LockOptions(staleTimeout: 30, timeout: 60, initialBackoff: 0.001, maxBackoff: 0.02)
        let failures = runThreads(threads) { index in
            for _ in 0..<perThread {
                let lock = try LockFile.acquire(name: "counter", in: temp.path, node: "thread-\(index)", options: options)
                try incrementCounter(in: temp.path, under: lock)
                guard try lock.release() else {
                    throw MutualExclusionViolation(description: "lock lost before release")
                }
            }
        }
        XCTAssertEqual(failures, [])
        XCTAssertEqual(try readCounter(in: temp.path), threads * perThread)
        XCTAssertEqual(try lockResidue(temp.path), [])
    }

    /// Several acquirers find the same long-dead lock at once: exactly one rename wins each
    /// time and every acquirer still gets the lock exclusively.
    func testConcurrentBreakersOfOneStaleLock() throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        try plantLock(name: "counter", in: temp.path, secondsAgo: 100)
        let options = LockOptions(staleTimeout: 5, timeout: 30, initialBackoff: 0.001, maxBackoff: 0.02)
        let start = DispatchGroup()
        start.enter()
        let failures = runThreads(8) { index in
            start.wait()
            let lock = try LockFile.acquire(name: "counter", in: temp.path, node: "breaker-\(index)", options: options)
            try incrementCounter(in: temp.path, under: lock)
            guard try lock.release() else {
                throw MutualExclusionViolation(description: "lock lost before release")
            }
        } beforeJoin: {
            start.leave()
        }
        XCTAssertEqual(failures, [])
        XCTAssertEqual(try readCounter(in: temp.path), 8)
        XCTAssertEqual(try lockResidue(temp.path), [], "the dead holder's unique file and all broken files are removed")
    }

    func testAsyncAcquireAndKeeperHoldTheLockPastTheStaleTimeout() async throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let options = LockOptions(staleTimeout: 0.8, timeout: 5, initialBackoff: 0.005, maxBackoff: 0.05)
        let lock = try await LockFile.acquire(name: "folder", in: temp.path, node: "node-a", options: options)
        let keeper = lock.startKeeper(interval: .milliseconds(100))
        try await Task.sleep(for: .milliseconds(2000))
        XCTAssertNil(try LockFile.tryAcquire(name: "folder", in: temp.path, node: "node-b", options: options), "kept fresh")
        try lock.verify()
        keeper.cancel()
        await keeper.value
        try await Task.sleep(for: .milliseconds(1200))
        let second = try XCTUnwrap(LockFile.tryAcquire(name: "folder", in: temp.path, node: "node-b", options: options), "stale once the keeper stops")
        XCTAssertThrowsError(try lock.verify())
        XCTAssertTrue(try second.release())
        XCTAssertEqual(try listing(temp.path), [])
    }

    func testAsyncWaitEndsOnCancellation() async throws {
        let temp = try TemporaryDirectory()
        defer { temp.remove() }
        let path = temp.path
        let lock = try await LockFile.acquire(name: "folder", in: path, node: "node-a", options: fast)
        let waiter = Task { () async throws -> LockFile in
            try await LockFile.acquire(name: "folder", in: path, node: "node-b", options: LockOptions(timeout: 30, maxBackoff: 0.05))
        }
        try await Task.sleep(for: .milliseconds(200))
        waiter.cancel()
        let result = await waiter.result
        guard case .failure(let error) = result else { return XCTFail("expected cancellation") }
        XCTAssertEqual(error as? SharedTreeError, .cancelled(operation: "waiting for lock", path: lock.path))
        XCTAssertTrue(try lock.release())
        XCTAssertEqual(try listing(path), [])
    }
}

/// Runs `body` on `count` threads and returns the errors they threw, as text.
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void, beforeJoin: () -> Void = {}) -> [String] {
    let group = DispatchGroup()
    let failures = FailureList()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            defer { group.leave() }
            do {
                try body(index)
            } catch {
                failures.append("thread \(index): \(error)")
            }
        }
        thread.start()
    }
    beforeJoin()
    group.wait()
    return failures.all
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    func add(_ amount: Int) {
        lock.lock()
        count += amount
        lock.unlock()
    }

    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
}

final class FailureList: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []

    func append(_ item: String) {
        lock.lock()
        items.append(item)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}
