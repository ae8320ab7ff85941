import Foundation
import XCTest

@testable import SharedTree

final class QueueStoreTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var layout: SharedTreeLayout!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory("queue")
        layout = SharedTreeLayout(root: directory.path)
        try layout.createSkeleton()
    }

    override func tearDown() {
        directory.remove()
    }

    private func store(_ node: String, stale: TimeInterval = 30) -> QueueStore {
        QueueStore(layout: layout, node: node, lockOptions: LockOptions(staleTimeout: stale, timeout: 0))
    }

    func testEnqueueIsDurableAndListed() throws {
        let queue = store("n1")
        let message = Array("Subject: hi\r\n\r\nbody\r\n".utf8)
        let envelope = try queue.enqueue(message: message, sender: "a@x.test", recipients: ["b@y.test", "c@y.test"])
        XCTAssertEqual(envelope.size, message.count)
        XCTAssertEqual(envelope.receivedBy, "n1")
        XCTAssertEqual(try queue.list(.incoming).map(\.id), [envelope.id])
        XCTAssertEqual(try queue.message(envelope.id), message)
        XCTAssertEqual(try queue.due().map(\.id), [envelope.id])
        // Another node sees the same entry.
        XCTAssertEqual(try store("n2").list(.incoming), [envelope])
    }

    func testIDsAreUniqueAndTimeOrdered() throws {
        let queue = store("n1")
        let early = queue.newID(now: Date(timeIntervalSince1970: 1_000))
        let late = queue.newID(now: Date(timeIntervalSince1970: 2_000))
        XCTAssertLessThan(early, late)
        XCTAssertEqual(Set((0..<1000).map { _ in queue.newID() }).count, 1000)
    }

    func testOnlyOneRunnerClaimsAnEntry() throws {
        let envelope = try store("n1").enqueue(message: [65], sender: "", recipients: ["b@y.test"])
        let first = try XCTUnwrap(try store("n1").claim(envelope.id))
        XCTAssertNil(try store("n2").claim(envelope.id))
        XCTAssertTrue(try store("n2").isClaimed(envelope.id))
        try first.complete()
        XCTAssertNil(try store("n2").claim(envelope.id), "delivered entries are gone")
        XCTAssertEqual(try store("n2").list(.incoming), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: store("n1").messagePath(envelope.id)))
    }

    func testClaimOfADeadRunnerIsTakenOverAfterTheStaleTimeoutAndNotBefore() throws {
        let envelope = try store("n1").enqueue(message: [65], sender: "a@x.test", recipients: ["b@y.test"])
        // n1 claims and "dies": its lock is never touched again.
        _ = try XCTUnwrap(try store("n1", stale: 10).claim(envelope.id))
        let lockPath = store("n1").locksDirectory + "/" + envelope.id + ".lock"
        try setModificationTime(lockPath, secondsAgo: 5)
        XCTAssertNil(try store("n2", stale: 10).claim(envelope.id), "5 s old: not stale yet")
        try setModificationTime(lockPath, secondsAgo: 11)
        let taken = try XCTUnwrap(try store("n2", stale: 10).claim(envelope.id), "11 s old: stale")
        XCTAssertEqual(taken.envelope.id, envelope.id)
        XCTAssertEqual(taken.lock.record.node, "n2")
        try taken.complete()
    }

    func testDeferAndFailMoveTheEnvelope() throws {
        let queue = store("n1")
        let envelope = try queue.enqueue(message: [65], sender: "a@x.test", recipients: ["b@y.test", "c@y.test"])
        var claim = try XCTUnwrap(try queue.claim(envelope.id))
        try claim.record { $0.recipients[0].status = .delivered }
        let later = Date().addingTimeInterval(600)
        try claim.defer(until: later) { $0.recipients[1].lastResult = "451 4.3.0 try later" }
        XCTAssertEqual(try queue.list(.incoming), [])
        let deferred = try XCTUnwrap(try queue.list(.deferred).first)
        XCTAssertEqual(deferred.attempts, 1)
        XCTAssertEqual(deferred.pendingRecipients.map(\.address), ["c@y.test"])
        XCTAssertEqual(deferred.recipients[1].lastResult, "451 4.3.0 try later")
        XCTAssertEqual(try queue.due(), [], "not due before its next attempt")
        XCTAssertEqual(try queue.due(now: later.addingTimeInterval(1)).map(\.id), [envelope.id])

        let again = try XCTUnwrap(try queue.claim(envelope.id))
        XCTAssertEqual(again.state, .deferred)
        try again.fail { $0.recipients[1].status = .failed }
        XCTAssertEqual(try queue.list(.deferred), [])
        XCTAssertEqual(try queue.find(envelope.id)?.1, .failed)
        XCTAssertNil(try queue.claim(envelope.id), "failed entries are not delivered again")
    }

    func testALostClaimCannotCommit() throws {
        let queue = store("n1", stale: 10)
        let envelope = try queue.enqueue(message: [65], sender: "a@x.test", recipients: ["b@y.test"])
        let stalled = try XCTUnwrap(try queue.claim(envelope.id))
        try setModificationTime(queue.locksDirectory + "/" + envelope.id + ".lock", secondsAgo: 60)
        let other = try XCTUnwrap(try store("n2", stale: 10).claim(envelope.id))
        XCTAssertThrowsError(try stalled.complete()) { error in
            guard case SharedTreeError.lockLost = error else { return XCTFail("\(error)") }
        }
        XCTAssertNotNil(try queue.find(envelope.id), "the stalled runner removed nothing")
        try other.complete()
    }

    func testOrphanMessagesAreRemovedAndEntriesKept() throws {
        let queue = store("n1")
        let kept = try queue.enqueue(message: [65], sender: "a@x.test", recipients: ["b@y.test"])
        // A crash after the message was written but before its envelope.
        let orphan = queue.messagePath(queue.newID())
        try AtomicFile.write([66], to: orphan)
        try setModificationTime(orphan, secondsAgo: 7200)
        XCTAssertEqual(try queue.removeOrphans(olderThan: 3600), 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: orphan))
        XCTAssertEqual(try queue.message(kept.id), [65])
    }

    func testHostileIDsAreRefused() throws {
        let queue = store("n1")
        XCTAssertThrowsError(try queue.claim("../../etc/passwd"))
        XCTAssertNil(try queue.find("../x"))
    }
}

final class QueueStoreOperatorTests: XCTestCase {
    func testRetryAndDelete() throws {
        let directory = try TemporaryDirectory("queue-op")
        defer { directory.remove() }
        let layout = SharedTreeLayout(root: directory.path)
        try layout.createSkeleton()
        let queue = QueueStore(layout: layout, node: "n1", lockOptions: LockOptions(staleTimeout: 30, timeout: 0))
        let envelope = try queue.enqueue(message: [65], sender: "a@x.test", recipients: ["b@y.test"])
        let claim = try XCTUnwrap(try queue.claim(envelope.id))
        XCTAssertFalse(try queue.delete(envelope.id), "a claimed entry is not deleted under the runner")
        try claim.fail { $0.recipients[0].status = .failed }
        XCTAssertTrue(try queue.retryNow(envelope.id))
        let retried = try XCTUnwrap(try queue.find(envelope.id))
        XCTAssertEqual(retried.1, .incoming)
        XCTAssertEqual(retried.0.recipients[0].status, .pending)
        XCTAssertEqual(try queue.due().map(\.id), [envelope.id])
        XCTAssertTrue(try queue.delete(envelope.id))
        XCTAssertNil(try queue.find(envelope.id))
        XCTAssertFalse(FileManager.default.fileExists(atPath: queue.messagePath(envelope.id)))
        XCTAssertFalse(try queue.delete(envelope.id))
    }
}
