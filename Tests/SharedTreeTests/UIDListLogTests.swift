import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import SharedTree

/// The flag change log beside a UID list (`UIDListLog`): a one-message STORE is an append,
/// other nodes apply it to the list they have, a torn tail is ignored, a full or torn log is
/// folded into the list, and MODSEQs stay exact throughout.
final class UIDListLogTests: XCTestCase {
    private var fixture: MailStoreFixture!
    /// This node's store ("node-a"); other nodes' come from `fixture.store(node:)`.
    private var store: MailStore { fixture.store() }

    override func setUpWithError() throws { fixture = try MailStoreFixture() }

    override func tearDown() { fixture.remove() }

    private func inbox(_ sub: String) -> String { store.maildirDirectory + "/" + sub }
    private var listPath: String { inbox(UIDList.fileName) }
    private var logPath: String { inbox(UIDListLog.fileName) }

    private func inode(_ path: String) throws -> Int? {
        try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
    }

    /// The folder as a node with nothing cached reads it.
    private func freshRead() throws -> UIDList {
        guard case .parsed(let list) = try UIDListRead.read(listPath, cache: UIDListCache()) else {
            XCTFail("no list")
            return UIDList(uidValidity: 1)
        }
        return list
    }

    private func deliverAndSync(_ count: Int) throws -> FolderSnapshot {
        for index in 1...count { try store.deliver(message("m\(index)")) }
        return try store.sync(.inbox)
    }

    func testRecordsRoundTripAndAreCheckedWhole() throws {
        let changes = [
            UIDListLog.Change(uid: 7, modSeq: 12, info: MaildirInfo(flags: [.seen, .flagged]), keywords: ["$A", "b"]),
            UIDListLog.Change(uid: 9, modSeq: 13, info: MaildirInfo(), keywords: []),
        ]
        let bytes = UIDListLog.header(logID: 42) + UIDListLog.record(changes) + UIDListLog.record([changes[1]])
        let contents = try XCTUnwrap(UIDListLog.parse(bytes))
        XCTAssertEqual(contents.logID, 42)
        XCTAssertEqual(contents.changes, changes + [changes[1]])
        XCTAssertEqual(contents.records, 2)
        XCTAssertEqual(contents.validLength, bytes.count)
        XCTAssertFalse(contents.torn)
        // Every cut inside the last record leaves the first one and marks the tail torn.
        let firstEnd = UIDListLog.header(logID: 42).count + UIDListLog.record(changes).count
        for cut in firstEnd..<bytes.count - 1 {
            let torn = try XCTUnwrap(UIDListLog.parse(Array(bytes[..<(cut + 1)])))
            XCTAssertEqual(torn.changes, changes, "cut at \(cut + 1)")
            XCTAssertEqual(torn.validLength, firstEnd)
            XCTAssertEqual(torn.torn, cut + 1 > firstEnd)
        }
        // A flipped byte fails the checksum.
        var flipped = bytes
        flipped[bytes.count - 3] ^= 0x01
        XCTAssertEqual(UIDListLog.parse(flipped)?.changes, changes)
        XCTAssertEqual(UIDListLog.parse(flipped)?.torn, true)
        XCTAssertNil(UIDListLog.parse(Array("svcpkg-uidlog 1 logid=".utf8)))
        XCTAssertEqual(UIDListLog.parse(UIDListLog.header(logID: UInt64.max))?.logID, UInt64.max, "20 digits")
        // The list header carries the log id; old lists without it read as 0.
        var list = UIDList(uidValidity: 5)
        list.logID = UInt64.max
        XCTAssertEqual(try UIDList.decode(list.encoded(), path: "x").logID, UInt64.max)
        XCTAssertEqual(try UIDList.decode(Array("svcpkg-uidlist 1 uidvalidity=1 uidnext=1 highestmodseq=1\n".utf8), path: "x").logID, 0)
    }

    func testOneFlagChangeIsAnAppendThatAnotherNodeReads() throws {
        let synced = try deliverAndSync(5)
        let listInode = try inode(listPath)
        let otherNode = UIDListCache()
        guard case .parsed(let before) = try UIDListRead.read(listPath, cache: otherNode) else { return XCTFail("no list") }
        XCTAssertEqual(before.entries.count, 5)

        let first = try store.store(.inbox, uids: [2], .add, flags: [.seen])
        XCTAssertEqual(first.changed, [2])
        XCTAssertEqual(try inode(listPath), listInode, "the list is not rewritten")
        XCTAssertTrue(FileManager.default.fileExists(atPath: logPath))
        let seen = try XCTUnwrap(first.snapshot.message(uid: 2))
        XCTAssertEqual(seen.flags, [.seen])
        XCTAssertEqual(seen.modSeq, synced.highestModSeq + 1)
        XCTAssertEqual(first.snapshot.highestModSeq, synced.highestModSeq + 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: inbox("cur/" + seen.fileName)))

        // Another node: its cached list gets the appended record, and a cold read agrees.
        guard case .parsed(let after) = try UIDListRead.read(listPath, cache: otherNode) else { return XCTFail("no list") }
        XCTAssertEqual(after, try freshRead())
        XCTAssertEqual(after.highestModSeq, first.snapshot.highestModSeq)
        XCTAssertEqual(after.entries[1].info.flags, [.seen])
        XCTAssertEqual(after.entries[1].modSeq, seen.modSeq)

        // A second change, by another node's store object, and keywords only.
        let second = try fixture.store(node: "node-b").store(.inbox, uids: [4, 2], .add, keywords: ["$Label1"])
        XCTAssertEqual(second.changed, [2, 4])
        XCTAssertEqual(second.snapshot.message(uid: 2)?.modSeq, seen.modSeq + 1)
        XCTAssertEqual(second.snapshot.message(uid: 4)?.modSeq, seen.modSeq + 2)
        guard case .parsed(let later) = try UIDListRead.read(listPath, cache: otherNode) else { return XCTFail("no list") }
        XCTAssertEqual(later, try freshRead())
        XCTAssertEqual(later.entries[3].keywords, ["$Label1"])
        XCTAssertEqual(try inode(listPath), listInode)
        // The cache was changed in place; what callers hold from before is as it was.
        XCTAssertEqual(first.snapshot.message(uid: 4)?.keywords, [])
        XCTAssertEqual(first.snapshot.message(uid: 4)?.modSeq, synced.message(uid: 4)?.modSeq)
        XCTAssertEqual(before.entries[1].info.flags, [])
        XCTAssertEqual(after.entries[3].keywords, [])

        // Everyone's snapshots agree with the store's answer.
        let synced2 = try fixture.store(node: "node-c").sync(.inbox)
        XCTAssertEqual(synced2.messages, second.snapshot.messages)
        XCTAssertEqual(try store.readSnapshot(.inbox)?.messages, second.snapshot.messages)
        XCTAssertEqual(synced2.highestModSeq, second.snapshot.highestModSeq)

        // The next sync that gives out a UID folds the log into the list.
        try store.deliver(message("new"))
        let folded = try store.sync(.inbox)
        XCTAssertFalse(FileManager.default.fileExists(atPath: logPath))
        XCTAssertNotEqual(try inode(listPath), listInode)
        XCTAssertEqual(Array(folded.messages.prefix(5)), second.snapshot.messages)
        XCTAssertGreaterThan(folded.highestModSeq, second.snapshot.highestModSeq)
        let onDisk = try UIDList.decode(Array(try Data(contentsOf: URL(fileURLWithPath: listPath))), path: listPath)
        XCTAssertEqual(onDisk.entries[1].info.flags, [.seen])
        XCTAssertEqual(onDisk.entries[3].keywords, ["$Label1"])
        XCTAssertEqual(try freshRead(), onDisk)
    }

    func testATornTailIsIgnoredAndTheNextStoreRewritesTheList() throws {
        _ = try deliverAndSync(3)
        let good = try store.store(.inbox, uids: [1], .add, flags: [.flagged])
        let listInode = try inode(listPath)
        // A writer that died in the middle of its append: half a record, then a bad checksum.
        let record = UIDListLog.record([UIDListLog.Change(uid: 2, modSeq: good.snapshot.highestModSeq + 1, info: MaildirInfo(flags: [.seen]), keywords: [])])
        for tail in [Array(record.prefix(record.count - 4)), Array(record.dropLast()) + [UInt8(ascii: "x")]] {
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: logPath)))
            let base = bytes.count
            bytes += tail
            try Data(bytes).write(to: URL(fileURLWithPath: logPath))
            XCTAssertEqual(try store.readSnapshot(.inbox)?.messages, good.snapshot.messages, "the torn record is not applied")
            XCTAssertEqual(try freshRead().highestModSeq, good.snapshot.highestModSeq)
            try Data(bytes.prefix(base)).write(to: URL(fileURLWithPath: logPath))
        }
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: logPath)))
        bytes += record.prefix(10)
        try Data(bytes).write(to: URL(fileURLWithPath: logPath))

        // The next store does not append after the torn bytes: it writes the list whole.
        let next = try store.store(.inbox, uids: [3], .add, flags: [.answered])
        XCTAssertEqual(next.changed, [3])
        XCTAssertNotEqual(try inode(listPath), listInode)
        XCTAssertFalse(FileManager.default.fileExists(atPath: logPath))
        XCTAssertEqual(next.snapshot.message(uid: 1)?.flags, [.flagged])
        XCTAssertEqual(next.snapshot.message(uid: 2)?.flags, [])
        XCTAssertEqual(next.snapshot.message(uid: 3)?.modSeq, good.snapshot.highestModSeq + 1)
        XCTAssertEqual(try freshRead().entries.map(\.info.flags), [[.flagged], [], [.answered]])
        // And the one after appends to a new log again.
        _ = try store.store(.inbox, uids: [2], .add, flags: [.seen])
        XCTAssertTrue(FileManager.default.fileExists(atPath: logPath))
        XCTAssertEqual(try store.sync(.inbox).messages.map(\.flags), [[.flagged], [.seen], [.answered]])
    }

    func testAStaleLogOfAnEarlierListIsIgnored() throws {
        let synced = try deliverAndSync(2)
        let list = try freshRead()
        // A crash between writing the list whole and removing the old log leaves a log whose
        // id is not the list's: its records are in the list already, or older.
        let stale = UIDListLog.header(logID: list.logID &+ 1)
            + UIDListLog.record([UIDListLog.Change(uid: 1, modSeq: synced.highestModSeq + 5, info: MaildirInfo(flags: [.deleted]), keywords: ["old"])])
        try Data(stale).write(to: URL(fileURLWithPath: logPath))
        XCTAssertEqual(try freshRead(), list)
        XCTAssertEqual(try store.sync(.inbox).messages, synced.messages)
        // A store replaces it with a log of its own.
        let result = try store.store(.inbox, uids: [2], .add, flags: [.seen])
        XCTAssertEqual(result.snapshot.message(uid: 2)?.modSeq, synced.highestModSeq + 1)
        XCTAssertEqual(UIDListLog.parse(Array(try Data(contentsOf: URL(fileURLWithPath: logPath))))?.logID, list.logID)
        XCTAssertEqual(try freshRead().entries.map(\.info.flags), [[], [.seen]])
    }

    func testAFullLogIsFoldedIntoTheList() throws {
        let synced = try deliverAndSync(2)
        let list = try freshRead()
        // A log at its limit (written here in one record of repeated lines).
        var modSeq = synced.highestModSeq
        let lines = (0..<UIDListLog.maxChanges).map { index -> UIDListLog.Change in
            modSeq += 1
            return UIDListLog.Change(uid: UInt32(index % 2 + 1), modSeq: modSeq, info: MaildirInfo(flags: index % 4 < 2 ? [.seen] : []), keywords: [])
        }
        try Data(UIDListLog.header(logID: list.logID) + UIDListLog.record(lines)).write(to: URL(fileURLWithPath: logPath))
        // (The file names do not carry \Seen: the records are made up, the last says no flags.)
        XCTAssertEqual(try freshRead().highestModSeq, modSeq)
        let listInode = try inode(listPath)
        let result = try store.store(.inbox, uids: [1], .add, flags: [.flagged])
        XCTAssertEqual(result.changed, [1])
        XCTAssertNotEqual(try inode(listPath), listInode, "written whole")
        XCTAssertFalse(FileManager.default.fileExists(atPath: logPath))
        XCTAssertEqual(result.snapshot.message(uid: 1)?.modSeq, modSeq + 1, "MODSEQs go on from the log's")
        XCTAssertEqual(try freshRead().highestModSeq, modSeq + 1)
    }

    func testCondStoreThroughTheLog() throws {
        let synced = try deliverAndSync(3)
        let since = synced.highestModSeq
        let first = try store.store(.inbox, uids: [1, 2], .add, flags: [.seen], unchangedSince: since)
        XCTAssertEqual(first.changed, [1, 2])
        XCTAssertEqual(first.failed, [])
        // RFC 7162 §3.1.3: UID 1 changed after `since`, so it fails; UID 3 did not.
        let second = try store.store(.inbox, uids: [1, 3], .add, flags: [.flagged], unchangedSince: since)
        XCTAssertEqual(second.changed, [3])
        XCTAssertEqual(second.failed, [1])
        XCTAssertEqual(second.snapshot.message(uid: 1)?.flags, [.seen])
        let modSeqs = second.snapshot.messages.map(\.modSeq)
        XCTAssertEqual(modSeqs, [since + 1, since + 2, since + 3])
        XCTAssertEqual(second.snapshot.highestModSeq, since + 3)
        // What changed since a MODSEQ, as another node sees it (QRESYNC's FETCH part).
        let other = try fixture.store(node: "node-b").sync(.inbox)
        XCTAssertEqual(other.messages.filter { $0.modSeq > since + 1 }.map(\.uid), [2, 3])
        XCTAssertEqual(other.vanished(sinceModSeq: since).uids, [])
        // Expunges still go through the list, above every logged MODSEQ.
        _ = try store.store(.inbox, uids: [2], .add, flags: [.deleted])
        let expunged = try store.expunge(.inbox)
        XCTAssertEqual(expunged.expunged, [2])
        XCTAssertEqual(expunged.snapshot.vanished(sinceModSeq: since + 3).uids, [2])
        XCTAssertEqual(expunged.snapshot.highestModSeq, since + 5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: logPath))
    }

    func testAFileRenamedByAnotherProgramSendsTheRestTheLongWay() throws {
        let synced = try deliverAndSync(3)
        // mutt marks message 2 as replied: its file name changes behind the list's back.
        let old = try XCTUnwrap(synced.message(uid: 2)).fileName
        try FileManager.default.moveItem(atPath: inbox("cur/" + old), toPath: inbox("cur/" + old.replacingOccurrences(of: ":2,", with: ":2,R")))
        let result = try store.store(.inbox, uids: [1, 2, 3], .add, flags: [.seen])
        XCTAssertEqual(result.changed, [1, 2, 3])
        XCTAssertEqual(result.snapshot.message(uid: 2)?.flags, [.answered, .seen], "mutt's change is kept")
        XCTAssertEqual(result.snapshot.messages.map(\.flags), [[.seen], [.answered, .seen], [.seen]])
        XCTAssertEqual(try listing(inbox("cur")).filter { $0.hasSuffix(":2,S") || $0.hasSuffix(":2,RS") }.count, 3)
        let modSeqs = result.snapshot.messages.map(\.modSeq)
        XCTAssertEqual(Set(modSeqs).count, 3)
        XCTAssertTrue(modSeqs.allSatisfy { $0 > synced.highestModSeq })
        XCTAssertEqual(try fixture.store(node: "node-b").sync(.inbox).messages, result.snapshot.messages)
    }

    func testAListFromBeforeChangeLogsIsWrittenWholeOnce() throws {
        let synced = try deliverAndSync(2)
        // A list as an earlier svcpkg wrote it: no log id.
        var list = try freshRead()
        list.logID = 0
        try AtomicFile.write(list.encoded(), to: listPath)
        let first = try store.store(.inbox, uids: [1], .add, flags: [.seen])
        XCTAssertFalse(FileManager.default.fileExists(atPath: logPath))
        XCTAssertNotEqual(try freshRead().logID, 0)
        let second = try store.store(.inbox, uids: [2], .add, flags: [.seen])
        XCTAssertTrue(FileManager.default.fileExists(atPath: logPath))
        XCTAssertEqual(second.snapshot.messages.map(\.modSeq), [synced.highestModSeq + 1, synced.highestModSeq + 2])
        XCTAssertEqual(first.snapshot.highestModSeq, synced.highestModSeq + 1)
    }
}
