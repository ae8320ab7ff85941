import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import SharedTree

/// A shared tree in a temporary directory with one user's store.
struct MailStoreFixture {
    let temp: TemporaryDirectory
    let layout: SharedTreeLayout
    let user: MailUser

    init(_ address: String = "alice@example.test") throws {
        temp = try TemporaryDirectory("mailstore")
        layout = SharedTreeLayout(root: temp.path + "/shared")
        try layout.createSkeleton(createRoot: true)
        user = try MailUser(address: address)
    }

    func store(node: String = "node-a", stale: Double = 30, timeout: Double = 30) -> MailStore {
        MailStore(layout: layout, user: user, node: node, lockOptions: LockOptions(staleTimeout: stale, timeout: timeout, initialBackoff: 0.001, maxBackoff: 0.02))
    }

    func remove() { temp.remove() }
}

func folder(_ name: String) throws(MailStoreError) -> MailFolderName {
    try MailFolderName(name)
}

func message(_ subject: String, body: String = "Hello.\n") -> [UInt8] {
    Array("From: a@example.test\nTo: b@example.test\nSubject: \(subject)\n\n\(body)".utf8)
}

/// Every path below `root`, relative to it, sorted (directories end in "/").
func treeListing(_ root: String) -> [String] {
    var result: [String] = []
    guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
    while let path = enumerator.nextObject() as? String {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isDirectory)
        result.append(isDirectory.boolValue ? path + "/" : path)
    }
    return result.sorted()
}

@discardableResult
func assertThrowsMailStoreError<T>(_ body: () throws(MailStoreError) -> T, file: StaticString = #filePath, line: UInt = #line) -> MailStoreError? {
    do {
        let value = try body()
        XCTFail("expected a MailStoreError, got \(value)", file: file, line: line)
        return nil
    } catch {
        return error
    }
}

final class MailStoreNameTests: XCTestCase {
    func testFNV1aVectorsAndHomeLayout() throws {
        XCTAssertEqual(MailUser.fnv1a64([]), 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(MailUser.fnv1a64(Array("a".utf8)), 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(MailUser.fnv1a64(Array("foobar".utf8)), 0x8594_4171_f739_67e8)
        let user = try MailUser(address: "Alice@Example.TEST")
        XCTAssertEqual(user.domain, "example.test")
        XCTAssertEqual(user.localPart, "Alice")
        let expected = String(MailUser.fnv1a64(Array("Alice@example.test".utf8)) >> 56, radix: 16)
        XCTAssertEqual(user.hashDirectory, expected.count == 1 ? "0" + expected : expected)
        let store = MailStore(layout: SharedTreeLayout(root: "/srv/shared"), user: user, node: "n1")
        XCTAssertEqual(store.homeDirectory, "/srv/shared/mail/example.test/\(user.hashDirectory)/Alice")
        XCTAssertEqual(store.maildirDirectory, store.homeDirectory + "/Maildir")
    }

    func testInvalidUsersAreRefused() {
        for address in ["../x@example.test", "a@b/c", "x\u{0}y@example.test", "@example.test", "alice", "alice@", "a..b@example.test", "alice@..", "alice@exa mple.test", ".alice@example.test"] {
            let error = assertThrowsMailStoreError { () throws(MailStoreError) in try MailUser(address: address) }
            guard case .invalidUser = error else { return XCTFail("\(address): \(String(describing: error))") }
        }
    }

    func testFolderNamesMapToMaildirPlusPlus() throws {
        XCTAssertTrue(try folder("inbox").isInbox)
        XCTAssertEqual(try folder("InBoX"), .inbox)
        XCTAssertEqual(try folder("Archive/2024").diskName, "Archive.2024")
        XCTAssertEqual(try folder("a.b").diskName, "a%2Eb")
        XCTAssertEqual(try folder("100%/x\\y").diskName, "100%25.x%5Cy")
        XCTAssertEqual(try folder("Entwürfe").diskName, "Entwürfe")
        XCTAssertEqual(try folder("A/B/C").parent, try folder("A/B"))
        XCTAssertEqual(try folder("A/B/C").ancestors, [try folder("A"), try folder("A/B")])
        for name in ["Archive/2024", "a.b", "100%/x\\y", "Entwürfe", "..a", "a/.b."] {
            let parsed = try folder(name)
            XCTAssertEqual(MailFolderName(diskName: parsed.diskName), parsed, name)
            XCTAssertEqual(parsed.name, name)
        }
        // On-disk names this store would not write are not folders.
        for disk in ["a%2e", "a%", "a%zz", "a..b", "", "INBOX", "a.", "%2E%2E"] {
            XCTAssertNil(MailFolderName(diskName: disk), disk)
        }
    }

    func testUnsafeFolderNamesAreRefusedWithAClearReason() {
        let cases: [(String, String)] = [
            ("", "empty"), ("../x", "\"..\""), ("a/../../b", "\"..\""), (".", "\".\""), ("..", "\"..\""),
            ("a//b", "empty level"), ("/a", "empty level"), ("a/", "empty level"),
            ("a\u{0}b", "NUL"), ("a\u{1}b", "control"), ("a\u{7F}b", "control"), ("a\nb", "control"),
            (String(repeating: "x", count: 300), "limit"), (String(repeating: "a/", count: 40) + "a", "levels"),
            ("INBOX/child", "below INBOX"), ("inbox/child", "below INBOX"),
        ]
        for (name, reason) in cases {
            let error = assertThrowsMailStoreError { () throws(MailStoreError) in try MailFolderName(name) }
            guard case .invalidFolderName(_, let text) = error else { XCTFail("\(name.debugDescription): \(String(describing: error))"); continue }
            XCTAssertTrue(text.contains(reason), "\(name.debugDescription): \(text)")
            XCTAssertTrue(error?.description.hasPrefix("invalid folder name") ?? false)
        }
    }

    func testKeywordValidation() {
        for good in ["$Label1", "NonJunk", "$Forwarded", "a.b-c_d"] {
            XCTAssertNoThrow(try Keywords.validate(good))
        }
        for bad in ["", "\\Seen", "a b", "a(b", "a]", "a%", "a*", "é", String(repeating: "k", count: 101)] {
            XCTAssertThrowsError(try Keywords.validate(bad), bad)
        }
    }

    func testUIDListRoundTripAndBoundedExpungeLog() throws {
        var list = UIDList(uidValidity: 1234)
        list.entries = [
            .init(uid: 1, modSeq: 2, info: MaildirInfo(flags: [.seen, .flagged]), size: 10, virtualSize: 12, base: "1.M1P1.h,S=10,W=12", keywords: ["$A", "b"]),
            .init(uid: 5, modSeq: 3, info: MaildirInfo(), size: 7, virtualSize: nil, base: "odd name%with space", keywords: []),
        ]
        list.uidNext = 6
        list.highestModSeq = 9
        list.recordExpunged([2, 3, 4], modSeq: 8)
        let decoded = try UIDList.decode(list.encoded(), path: "x")
        XCTAssertEqual(decoded, list)
        XCTAssertTrue(String(decoding: list.encoded(), as: UTF8.self).contains("x 2-4 8\n"))

        var big = UIDList(uidValidity: 1)
        for round in 0..<11 {
            big.recordExpunged((UInt32(round * 1000 + 1)...UInt32(round * 1000 + 1000)).map { $0 }, modSeq: UInt64(round + 10))
        }
        XCTAssertLessThanOrEqual(big.expunged.count, UIDList.maxExpungeRecords)
        XCTAssertEqual(big.expungeFloor, 10)
        XCTAssertEqual(try UIDList.decode(big.encoded(), path: "x"), big)
        XCTAssertThrowsError(try UIDList.decode(Array("garbage\n".utf8), path: "x"))
        XCTAssertThrowsError(try UIDList.decode(Array("svcpkg-uidlist 1 uidvalidity=1 uidnext=2 highestmodseq=1\n1 x\n".utf8), path: "x"))
    }
}

final class MailStoreTests: XCTestCase {
    private var fixture: MailStoreFixture!
    private var store: MailStore!

    override func setUpWithError() throws {
        fixture = try MailStoreFixture()
        store = fixture.store()
    }

    override func tearDown() {
        fixture.remove()
    }

    private func inbox(_ sub: String) -> String { store.maildirDirectory + "/" + sub }

    func testDeliveryUsesStandardMaildirNamesAndNeedsNoSync() throws {
        let body = message("one")
        let name = try store.deliver(body)
        let pattern = #"^[0-9]+\.M[0-9]+P[0-9]+Q[0-9]+R[0-9a-f]+\.[A-Za-z0-9._-]+,S=[0-9]+,W=[0-9]+$"#
        XCTAssertNotNil(name.range(of: pattern, options: .regularExpression), name)
        XCTAssertTrue(name.hasSuffix(",S=\(body.count),W=\(body.count + 5)"), "five bare LFs count as CRLF: \(name)")
        XCTAssertEqual(try listing(inbox("new")), [name])
        XCTAssertEqual(try listing(inbox("tmp")), [])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: inbox("new/" + name))), Data(body))
        XCTAssertEqual(try fileMode(inbox("new/" + name)), 0o600)
        // Delivered with flags (IMAP APPEND): the info is in the name already.
        let flagged = try store.deliver(message("two"), flags: [.seen, .draft])
        XCTAssertTrue(flagged.hasSuffix(":2,DS"), flagged)
        XCTAssertEqual(MaildirNames.virtualSize(of: Array("a\r\nb\nc".utf8)), 7)
    }

    func testSyncAssignsAscendingUIDsOnceAndNeverReusesThem() throws {
        let names = try (1...3).map { try store.deliver(message("m\($0)")) }
        let first = try store.sync(.inbox)
        XCTAssertGreaterThan(first.uidValidity, 0)
        XCTAssertEqual(first.messages.map(\.uid), [1, 2, 3])
        XCTAssertEqual(first.messages.map(\.baseName), names, "UIDs in order of arrival")
        XCTAssertEqual(first.uidNext, 4)
        XCTAssertEqual(try listing(inbox("new")), [])
        XCTAssertEqual(try listing(inbox("cur")), names.map { $0 + ":2," }.sorted())
        XCTAssertTrue(first.messages.allSatisfy { $0.flags.isEmpty && $0.keywords.isEmpty })
        XCTAssertEqual(first.messages.map(\.size), names.map { MaildirFileName.sizes(ofBase: $0).size ?? -1 })

        // Nothing new: the list is not rewritten.
        let before = try FileManager.default.attributesOfItem(atPath: inbox("svcpkg-uidlist"))[.systemFileNumber] as? Int
        let again = try store.sync(.inbox)
        XCTAssertEqual(again.messages, first.messages)
        XCTAssertEqual(again.highestModSeq, first.highestModSeq)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: inbox("svcpkg-uidlist"))[.systemFileNumber] as? Int, before)

        _ = try store.store(.inbox, uids: [3], .add, flags: [.deleted])
        XCTAssertEqual(try store.expunge(.inbox).expunged, [3])
        try store.deliver(message("m4"))
        let later = try store.sync(.inbox)
        XCTAssertEqual(later.messages.map(\.uid), [1, 2, 4], "UID 3 is never given again")
        XCTAssertEqual(later.uidValidity, first.uidValidity)
        // A reader without the lock sees the last written list.
        XCTAssertEqual(try store.readSnapshot(.inbox)?.messages, later.messages)
        // Another node's store object sees the same.
        XCTAssertEqual(try fixture.store(node: "node-b").sync(.inbox).messages, later.messages)
    }

    func testFlagsLiveInTheFileNameAndKeywordsInTheUIDList() throws {
        try (1...3).forEach { _ = try store.deliver(message("m\($0)")) }
        let synced = try store.sync(.inbox)
        let result = try store.store(.inbox, uids: [1, 2, 99], .add, flags: [.seen, .flagged], keywords: ["$Label1"])
        XCTAssertEqual(result.changed, [1, 2])
        XCTAssertEqual(result.failed, [])
        let one = try XCTUnwrap(result.snapshot.message(uid: 1))
        XCTAssertTrue(one.fileName.hasSuffix(":2,FS"), one.fileName)
        XCTAssertEqual(one.flags, [.seen, .flagged])
        XCTAssertEqual(one.keywords, ["$Label1"])
        XCTAssertGreaterThan(one.modSeq, synced.highestModSeq)
        XCTAssertNotEqual(result.snapshot.message(uid: 1)?.modSeq, result.snapshot.message(uid: 2)?.modSeq, "one MODSEQ per changed message")
        XCTAssertTrue(FileManager.default.fileExists(atPath: inbox("cur/" + one.fileName)))
        let list = try String(contentsOfFile: inbox("svcpkg-uidlist"), encoding: .utf8)
        XCTAssertTrue(list.contains(" FS \(one.size) "), list)
        XCTAssertTrue(list.contains(" $Label1\n"), list)

        // Storing what is already there changes nothing.
        XCTAssertEqual(try store.store(.inbox, uids: [1], .add, flags: [.seen]).changed, [])
        let removed = try store.store(.inbox, uids: [1], .remove, flags: [.flagged], keywords: ["$Label1"])
        XCTAssertEqual(removed.snapshot.message(uid: 1)?.flags, [.seen])
        XCTAssertEqual(removed.snapshot.message(uid: 1)?.keywords, [])
        let replaced = try store.store(.inbox, uids: [3], .replace, flags: [.answered, .deleted, .draft, .passed], keywords: ["b", "a"])
        XCTAssertTrue(replaced.snapshot.message(uid: 3)?.fileName.hasSuffix(":2,DPRT") ?? false)
        XCTAssertEqual(replaced.snapshot.message(uid: 3)?.keywords, ["a", "b"])

        // CONDSTORE: UNCHANGEDSINCE below a message's MODSEQ fails it, the rest go on.
        let current = replaced.snapshot
        let modSeq2 = try XCTUnwrap(current.message(uid: 2)?.modSeq)
        let conditional = try store.store(.inbox, uids: [2, 3], .add, flags: [.seen], keywords: ["x"], unchangedSince: modSeq2)
        XCTAssertEqual(conditional.changed, [2])
        XCTAssertEqual(conditional.failed, [3])
        XCTAssertThrowsError(try store.store(.inbox, uids: [1], .add, keywords: ["bad keyword"]))
    }

    func testFlagChangesByOtherProgramsAreTakenWithANewModSeq() throws {
        try store.deliver(message("m"))
        let before = try store.sync(.inbox)
        let file = try XCTUnwrap(before.messages.first?.fileName)
        // What mutt does when the user replies: rename with the new info.
        XCTAssertEqual(rename(inbox("cur/" + file), inbox("cur/" + MaildirFileName(file).base + ":2,RS")), 0)
        let after = try store.sync(.inbox)
        XCTAssertEqual(after.messages.first?.flags, [.answered, .seen])
        XCTAssertGreaterThan(after.messages.first?.modSeq ?? 0, before.highestModSeq)
        // Unknown info letters (Dovecot keyword letters) are kept through our changes.
        let path = inbox("cur/" + (after.messages.first?.fileName ?? ""))
        XCTAssertEqual(rename(path, inbox("cur/" + MaildirFileName(file).base + ":2,RSab")), 0)
        let stored = try store.store(.inbox, uids: [1], .add, flags: [.flagged])
        XCTAssertTrue(stored.snapshot.messages.first?.fileName.hasSuffix(":2,FRSab") ?? false, "\(stored.snapshot.messages)")
        // A reader with an old snapshot still finds the renamed file.
        let old = try XCTUnwrap(before.messages.first)
        XCTAssertEqual(try store.readMessage(old, in: .inbox), message("m"))
    }

    /// A sync with nothing to take in reads the list without the lock (another node holding
    /// it does not delay it); a delivery, a rename by another program or a removed file
    /// still needs the lock, and waits for it.
    func testSyncInStepTakesNoLockAndAnythingElseWaitsForIt() throws {
        try (1...3).forEach { _ = try store.deliver(message("m\($0)")) }
        let synced = try store.sync(.inbox)
        let impatient = fixture.store(timeout: 0.2)
        let held = try LockFile.acquire(name: MailStore.folderLockName, in: store.maildirDirectory, node: "node-b")
        defer { _ = try? held.release() }
        XCTAssertEqual(try impatient.sync(.inbox).messages, synced.messages)

        let file = synced.messages[1].fileName
        XCTAssertEqual(rename(inbox("cur/" + file), inbox("cur/" + MaildirFileName(file).base + ":2,S")), 0)
        XCTAssertNotNil(assertThrowsMailStoreError { () throws(MailStoreError) in try impatient.sync(.inbox) }, "a flag change by another program")
        XCTAssertEqual(rename(inbox("cur/" + MaildirFileName(file).base + ":2,S"), inbox("cur/" + file)), 0)
        XCTAssertEqual(try impatient.sync(.inbox).messages, synced.messages)

        XCTAssertEqual(unlink(inbox("cur/" + synced.messages[2].fileName)), 0)
        XCTAssertNotNil(assertThrowsMailStoreError { () throws(MailStoreError) in try impatient.sync(.inbox) }, "a file removed")
        _ = try held.release()
        XCTAssertEqual(try store.sync(.inbox).messages.map(\.uid), [1, 2])

        try store.deliver(message("m4"))
        let again = try LockFile.acquire(name: MailStore.folderLockName, in: store.maildirDirectory, node: "node-b")
        XCTAssertNotNil(assertThrowsMailStoreError { () throws(MailStoreError) in try impatient.sync(.inbox) }, "a delivery waiting in new/")
        _ = try again.release()
        XCTAssertEqual(try store.sync(.inbox).messages.map(\.uid), [1, 2, 4])
    }

    /// Parsed lists are reused only while the file is the one parsed: a list replaced by
    /// another node (here: written behind the store's back) is read again.
    func testParsedUIDListsAreReusedOnlyForTheSameFile() throws {
        try (1...2).forEach { _ = try store.deliver(message("m\($0)")) }
        let synced = try store.sync(.inbox)
        let path = store.maildirDirectory + "/" + UIDList.fileName
        guard case .parsed(let cached) = try UIDListRead.read(path) else { return XCTFail("no list") }
        XCTAssertEqual(cached.entries.map(\.uid), [1, 2])
        var changed = cached
        changed.entries.removeLast()
        changed.uidNext = 7
        try AtomicFile.write(changed.encoded(), to: path)
        XCTAssertEqual(try store.readSnapshot(.inbox)?.uidNext, 7)
        XCTAssertEqual(try store.readSnapshot(.inbox)?.messages.map(\.uid), [1])
        // Same size, same inode, new bytes (never done by svcpkg, which renames): the mtime
        // tells them apart once the clock has ticked (ext4 stamps are a few ms coarse).
        usleep(30_000)
        var same = changed
        same.uidNext = 8
        let fd = open(path, O_WRONLY | O_TRUNC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        _ = same.encoded().withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        XCTAssertEqual(try store.readSnapshot(.inbox)?.uidNext, 8)
        XCTAssertEqual(synced.messages.count, 2)
    }

    func testExpungeRecordsVanishedUIDs() throws {
        try (1...4).forEach { _ = try store.deliver(message("m\($0)")) }
        let start = try store.sync(.inbox)
        _ = try store.store(.inbox, uids: [2, 3], .add, flags: [.deleted])
        let restricted = try store.expunge(.inbox, uids: [3, 4])
        XCTAssertEqual(restricted.expunged, [3], "UID EXPUNGE: deleted and in the set")
        let all = try store.expunge(.inbox)
        XCTAssertEqual(all.expunged, [2])
        let forced = try store.expunge(.inbox, uids: [4], onlyDeleted: false)
        XCTAssertEqual(forced.expunged, [4])
        XCTAssertEqual(forced.snapshot.messages.map(\.uid), [1])
        XCTAssertEqual(try listing(inbox("cur")).count, 1)
        let vanished = forced.snapshot.vanished(sinceModSeq: start.highestModSeq)
        XCTAssertEqual(vanished.uids, [2, 3, 4])
        XCTAssertTrue(vanished.complete)
        let later = forced.snapshot.vanished(sinceModSeq: all.snapshot.highestModSeq)
        XCTAssertEqual(later.uids, [4])
        // A file removed behind our back (another program) is recorded at the next sync.
        let file = try XCTUnwrap(forced.snapshot.messages.first?.fileName)
        XCTAssertEqual(unlink(inbox("cur/" + file)), 0)
        let synced = try store.sync(.inbox)
        XCTAssertEqual(synced.messages, [])
        XCTAssertEqual(synced.vanished(sinceModSeq: forced.snapshot.highestModSeq).uids, [1])
    }

    func testCopyLinksAndMoveRenamesWithCopyUIDPairs() throws {
        try store.createFolder(try folder("Work"))
        try (1...4).forEach { _ = try store.deliver(message("m\($0)")) }
        _ = try store.sync(.inbox)
        _ = try store.store(.inbox, uids: [2], .add, flags: [.flagged], keywords: ["$Important"])
        let work = try folder("Work")
        let copied = try store.copy(uids: [4, 2, 77], from: .inbox, to: work)
        XCTAssertEqual(copied.sourceUIDs, [2, 4])
        XCTAssertEqual(copied.targetUIDs, [1, 2])
        let target = copied.targetSnapshot
        XCTAssertEqual(copied.targetUIDValidity, target.uidValidity)
        XCTAssertEqual(target.message(uid: 1)?.flags, [.flagged])
        XCTAssertEqual(target.message(uid: 1)?.keywords, ["$Important"])
        let copyPath = try XCTUnwrap(try store.messagePath(try XCTUnwrap(target.message(uid: 1)), in: work))
        XCTAssertEqual(linkCount(copyPath), 2, "copied by hard link")
        XCTAssertEqual(try store.sync(.inbox).messages.count, 4, "copy leaves the source alone")

        let sourceBefore = try store.sync(.inbox)
        let moved = try store.move(uids: [1, 3], from: .inbox, to: work)
        XCTAssertEqual(moved.sourceUIDs, [1, 3])
        XCTAssertEqual(moved.targetUIDs, [3, 4])
        let source = try store.sync(.inbox)
        XCTAssertEqual(source.messages.map(\.uid), [2, 4])
        XCTAssertEqual(source.vanished(sinceModSeq: sourceBefore.highestModSeq).uids, [1, 3])
        XCTAssertEqual(try listing(inbox("cur")).count, 2)
        XCTAssertEqual(try listing(store.directory(of: work) + "/cur").count, 4)
        XCTAssertEqual(try listing(store.directory(of: work) + "/tmp"), [])
        let bodies = try moved.targetSnapshot.messages.map { try XCTUnwrap(store.readMessage($0, in: work)) }
        XCTAssertEqual(Set(bodies.map { String(decoding: $0, as: UTF8.self) }).count, 4)

        // Moving to a folder that does not exist moves nothing.
        let error = assertThrowsMailStoreError { () throws(MailStoreError) in try store.move(uids: [2], from: .inbox, to: try folder("Nope")) }
        XCTAssertEqual(error, .folderNotFound(user: "alice@example.test", folder: "Nope"))
        XCTAssertEqual(try store.sync(.inbox).messages.map(\.uid), [2, 4])
        XCTAssertThrowsError(try store.move(uids: [2], from: .inbox, to: .inbox))
    }

    func testFolderCreateRenameDeleteAndSubscriptions() throws {
        try store.createFolder(try folder("Projects/2024/Q1"))
        for name in [".Projects", ".Projects.2024", ".Projects.2024.Q1"] {
            XCTAssertEqual(try listing(inbox(name)), ["cur", "maildirfolder", "new", "tmp"], name)
        }
        XCTAssertEqual(try String(contentsOfFile: inbox(".Projects/maildirfolder"), encoding: .utf8), "")
        XCTAssertEqual(assertThrowsMailStoreError { () throws(MailStoreError) in try store.createFolder(try folder("Projects")) },
                       .folderExists(user: "alice@example.test", folder: "Projects"))
        XCTAssertEqual(assertThrowsMailStoreError { () throws(MailStoreError) in try store.createFolder(.inbox) },
                       .folderExists(user: "alice@example.test", folder: "INBOX"))
        try store.createFolder(try folder("a.b"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: inbox(".a%2Eb/cur")))
        try store.subscribe(try folder("Projects/2024"))
        try store.subscribe(try folder("a.b"))
        try store.subscribe(try folder("Projects/2024"))
        XCTAssertEqual(try String(contentsOfFile: inbox("subscriptions"), encoding: .utf8), "Projects/2024\na.b\n")

        try store.deliver(message("kept"), to: try folder("Projects/2024/Q1"))
        try store.renameFolder(try folder("Projects"), to: try folder("Archive/Old"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: inbox(".Projects")))
        for name in [".Archive", ".Archive.Old", ".Archive.Old.2024", ".Archive.Old.2024.Q1"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: inbox(name + "/cur")), name)
        }
        XCTAssertEqual(try store.sync(try folder("Archive/Old/2024/Q1")).messages.count, 1)
        XCTAssertEqual(try store.subscriptions(), [try folder("Archive/Old/2024"), try folder("a.b")])
        XCTAssertEqual(assertThrowsMailStoreError { () throws(MailStoreError) in try store.renameFolder(try folder("Archive"), to: try folder("Archive/x")) },
                       .renameIntoItself(user: "alice@example.test", from: "Archive", to: "Archive/x"))
        XCTAssertEqual(assertThrowsMailStoreError { () throws(MailStoreError) in try store.renameFolder(try folder("a.b"), to: try folder("Archive")) },
                       .folderExists(user: "alice@example.test", folder: "Archive"))
        XCTAssertEqual(assertThrowsMailStoreError { () throws(MailStoreError) in try store.renameFolder(try folder("Gone"), to: try folder("X")) },
                       .folderNotFound(user: "alice@example.test", folder: "Gone"))

        let listed = try store.listFolders()
        XCTAssertEqual(listed.map(\.name.name), ["INBOX", "Archive", "Archive/Old", "Archive/Old/2024", "Archive/Old/2024/Q1", "a.b"])
        XCTAssertEqual(listed.first { $0.name.name == "Archive/Old" }?.hasChildren, true)
        XCTAssertEqual(listed.first { $0.name.name == "Archive/Old/2024/Q1" }?.hasChildren, false)
        XCTAssertEqual(listed.first { $0.name.name == "a.b" }?.subscribed, true)

        XCTAssertEqual(assertThrowsMailStoreError { () throws(MailStoreError) in try store.deleteFolder(.inbox) }, .cannotDeleteInbox(user: "alice@example.test"))
        XCTAssertEqual(assertThrowsMailStoreError { () throws(MailStoreError) in try store.deleteFolder(try folder("Archive/Old")) },
                       .folderHasChildren(user: "alice@example.test", folder: "Archive/Old"))
        try store.deleteFolder(try folder("Archive/Old/2024/Q1"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: inbox(".Archive.Old.2024.Q1")))
        XCTAssertEqual(assertThrowsMailStoreError { () throws(MailStoreError) in try store.deleteFolder(try folder("Archive/Old/2024/Q1")) },
                       .folderNotFound(user: "alice@example.test", folder: "Archive/Old/2024/Q1"))
        XCTAssertEqual(try listing(store.homeDirectory + "/svcpkg-tmp"), [], "nothing left from building or deleting")
        try store.unsubscribe(try folder("a.b"))
        XCTAssertEqual(try store.subscriptions(), [try folder("Archive/Old/2024")])

        // Parents that exist only through children are listed as not existing.
        XCTAssertEqual(mkdir(inbox(".Lone.Child"), 0o700), 0)
        for sub in ["cur", "new", "tmp"] { XCTAssertEqual(mkdir(inbox(".Lone.Child/" + sub), 0o700), 0) }
        let lone = try store.listFolders().first { $0.name.name == "Lone" }
        XCTAssertEqual(lone?.exists, false)
        XCTAssertEqual(lone?.hasChildren, true)
    }

    func testAFolderMadeAgainGetsANewUIDValidityAndLeftoversAreRemoved() throws {
        let name = try folder("Again")
        try store.createFolder(name)
        try store.deliver(message("m"), to: name)
        let first = try store.sync(name)
        try store.deleteFolder(name)
        try store.createFolder(name)
        let second = try store.sync(name)
        XCTAssertGreaterThan(second.uidValidity, first.uidValidity, "same name, same second: still a new UIDVALIDITY")
        XCTAssertEqual(second.messages, [])
        // A folder operation that died left a half-built folder behind.
        let work = store.homeDirectory + "/svcpkg-tmp"
        XCTAssertEqual(mkdir(work + "/new.dead", 0o700), 0)
        XCTAssertEqual(mkdir(work + "/new.dead/cur", 0o700), 0)
        try setModificationTime(work + "/new.dead", secondsAgo: 60)
        try store.createFolder(try folder("Other"))
        XCTAssertEqual(try listing(work), [])
    }

    func testInterruptedRenameIsFinishedByTheNextFolderOperation() throws {
        try store.createFolder(try folder("Old/a"))
        try store.createFolder(try folder("Old/b"))
        try store.subscribe(try folder("Old/b"))
        // A renamer died after the journal and the first of three renames.
        try writeText("svcpkg-rename 1\nOld\nNew\n", to: store.homeDirectory + "/svcpkg-rename")
        XCTAssertEqual(rename(inbox(".Old"), inbox(".New")), 0)
        XCTAssertEqual(try store.checkConsistency().map(\.kind), [.interruptedRename])
        let names = try store.listFolders().map(\.name.name)
        XCTAssertEqual(names, ["INBOX", "New", "New/a", "New/b"])
        XCTAssertEqual(try store.subscriptions(), [try folder("New/b")])
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.homeDirectory + "/svcpkg-rename"))
        XCTAssertEqual(try store.checkConsistency(), [])
    }

    func testRenamingInboxMovesItsMessages() throws {
        try (1...2).forEach { _ = try store.deliver(message("m\($0)")) }
        _ = try store.sync(.inbox)
        try store.renameFolder(.inbox, to: try folder("Saved"))
        XCTAssertEqual(try store.sync(.inbox).messages, [])
        XCTAssertEqual(try store.sync(try folder("Saved")).messages.map(\.uid), [1, 2])
    }

    func testDefaultFoldersOnFirstLogin() throws {
        let made = try store.ensureDefaultFolders()
        XCTAssertEqual(made[.sent], try folder("Sent"))
        XCTAssertEqual(made.count, 5)
        XCTAssertEqual(try listing(store.maildirDirectory).filter { $0.hasPrefix(".") }, [".Archive", ".Drafts", ".Junk", ".Sent", ".Trash"])
        XCTAssertEqual(try String(contentsOfFile: inbox("svcpkg-specialuse"), encoding: .utf8),
                       "\\Sent Sent\n\\Drafts Drafts\n\\Trash Trash\n\\Junk Junk\n\\Archive Archive\n")
        XCTAssertEqual(try store.subscriptions().map(\.name), ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"])
        XCTAssertEqual(try store.listFolders().first { $0.name.name == "Trash" }?.specialUse, .trash)
        // The attribute follows a rename; the default name is not made again.
        try store.renameFolder(try folder("Trash"), to: try folder("Deleted Items"))
        XCTAssertEqual(try store.ensureDefaultFolders()[.trash], try folder("Deleted Items"))
        XCTAssertFalse(try store.folderExists(try folder("Trash")))
        // A deleted special folder is made again at the next login.
        try store.deleteFolder(try folder("Junk"))
        XCTAssertEqual(try store.ensureDefaultFolders()[.junk], try folder("Junk"))
        XCTAssertTrue(try store.folderExists(try folder("Junk")))
        try store.createFolder(try folder("Outbox"), specialUse: .sent)
        XCTAssertEqual(try store.specialUseFolders()[.sent], try folder("Outbox"))
    }

    func testQuotaIsKeptInMaildirsizeAndRefusesBeforeWriting() throws {
        let limit = 1000
        let body = message("q", body: String(repeating: "x", count: 200) + "\n")
        var delivered = 0
        while true {
            do throws(MailStoreError) {
                try store.deliver(body, quotaBytes: limit)
                delivered += 1
            } catch {
                guard case .overQuota(let who, let used, let cap) = error else { throw error }
                XCTAssertEqual(who, "alice@example.test")
                XCTAssertEqual(used, delivered * body.count)
                XCTAssertEqual(cap, limit)
                XCTAssertTrue(error.description.contains("over quota"))
                break
            }
        }
        XCTAssertEqual(delivered, limit / body.count)
        XCTAssertEqual(try listing(inbox("new")).count, delivered, "nothing written for the refused message")
        XCTAssertEqual(try listing(inbox("tmp")), [])
        let text = try String(contentsOfFile: inbox("maildirsize"), encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("1000S,0C\n0 0\n"), text)
        XCTAssertEqual(text.split(separator: "\n").count, 2 + delivered, "one appended line per delivery: \(text)")
        XCTAssertEqual(try store.quotaUsage(), QuotaUsage(bytes: delivered * body.count, messages: delivered))

        _ = try store.sync(.inbox)
        _ = try store.expunge(.inbox, uids: [1], onlyDeleted: false)
        XCTAssertEqual(try store.quotaUsage(), QuotaUsage(bytes: (delivered - 1) * body.count, messages: delivered - 1))
        try store.deliver(body, quotaBytes: limit)

        // A torn or corrupt file is rebuilt from a scan.
        try writeText("1000S,0C\n0 0\n12", to: inbox("maildirsize"))
        XCTAssertEqual(try store.quotaUsage(), QuotaUsage(bytes: delivered * body.count, messages: delivered))
        XCTAssertEqual(try String(contentsOfFile: inbox("maildirsize"), encoding: .utf8), "1000S,0C\n\(delivered * body.count) \(delivered)\n")
        // So is one that grew past 5120 bytes.
        for _ in 0..<1500 { store.recordQuotaChange(bytes: 0, messages: 0) }
        XCTAssertLessThan(try fileSize(inbox("maildirsize")), 5121)
        // A changed limit is written at the next check.
        _ = try store.quotaUsage(limit: 5000)
        XCTAssertTrue(try String(contentsOfFile: inbox("maildirsize"), encoding: .utf8).hasPrefix("5000S,0C\n"))
    }

    func testChangeTokenIsCheapAndSeesDeliveriesFlagsAndCommits() throws {
        try store.deliver(message("m"))
        let snapshot = try store.sync(.inbox)
        // Let the directories age past the "recent" window.
        for sub in ["new", "cur"] { try setModificationTime(inbox(sub), secondsAgo: 10) }
        let quiet = try store.changeToken(.inbox)
        XCTAssertFalse(quiet.isRecent)
        XCTAssertFalse(quiet.needsSync(current: try store.changeToken(.inbox)))
        XCTAssertTrue(snapshot.token.isRecent, "taken right after a delivery")

        try fixture.store(node: "node-b").deliver(message("n"))
        XCTAssertTrue(quiet.needsSync(current: try store.changeToken(.inbox)), "a delivery changes new/")
        let synced = try store.sync(.inbox)
        for sub in ["new", "cur"] { try setModificationTime(inbox(sub), secondsAgo: 10) }
        let settled = try store.changeToken(.inbox)
        _ = try fixture.store(node: "node-b").store(.inbox, uids: [synced.messages[0].uid], .add, keywords: ["k"])
        XCTAssertTrue(settled.needsSync(current: try store.changeToken(.inbox)), "a commit changes the UID list")
        XCTAssertEqual(assertThrowsMailStoreError { () throws(MailStoreError) in try store.changeToken(try folder("Missing")) },
                       .folderNotFound(user: "alice@example.test", folder: "Missing"))
    }

    func testUnreadableUIDListIsSetAsideWithANewUIDValidity() throws {
        try store.deliver(message("m"))
        let first = try store.sync(.inbox)
        try writeText("svcpkg-uidlist 1 uidvalidity=\(first.uidValidity) uidnext=2 highestmodseq=2\nnonsense\n", to: inbox("svcpkg-uidlist"))
        XCTAssertEqual(try store.checkConsistency().map(\.kind), [.malformedUIDList])
        let rebuilt = try store.sync(.inbox)
        XCTAssertGreaterThan(rebuilt.uidValidity, first.uidValidity)
        XCTAssertEqual(rebuilt.messages.count, 1)
        XCTAssertEqual(try listing(store.maildirDirectory).filter { $0.hasPrefix("svcpkg-uidlist.broken.") }.count, 1)
    }

    func testConsistencyCheckFindsProblemsAndOneSyncRepairsThem() throws {
        try (1...3).forEach { _ = try store.deliver(message("m\($0)")) }
        let snapshot = try store.sync(.inbox)
        XCTAssertEqual(try store.checkConsistency(), [])
        var list = try XCTUnwrap(try store.readList(store.paths(.inbox)))
        list.entries.swapAt(0, 1)
        list.entries.append(list.entries[2])
        list.uidNext = 2
        list.entries.append(.init(uid: 9, modSeq: 99, info: MaildirInfo(), size: 1, virtualSize: nil, base: "gone", keywords: []))
        try AtomicFile.write(list.encoded(), to: inbox("svcpkg-uidlist"))
        try writeText("x", to: inbox("cur/123.stray:2,S"))
        try writeText("x", to: inbox("tmp/123.dead"))
        try setModificationTime(inbox("tmp/123.dead"), secondsAgo: 40 * 3600)
        try writeText("y", to: inbox("tmp/124.fresh"))
        XCTAssertEqual(mkdir(inbox(".bad%zz"), 0o700), 0)
        let kinds = Set(try store.checkConsistency().map(\.kind))
        XCTAssertEqual(kinds, [.uidsNotAscending, .duplicateUID, .duplicateFile, .entryWithoutFile, .fileWithoutUID, .staleTemporaryFile, .uidNextTooLow, .modSeqAboveHighest, .undecodableFolder])
        _ = try store.sync(.inbox)
        XCTAssertEqual(Set(try store.checkConsistency().map(\.kind)), [.staleTemporaryFile, .undecodableFolder])
        XCTAssertEqual(try store.removeStaleTemporaryFiles(in: .inbox), 1)
        XCTAssertEqual(try listing(inbox("tmp")), ["124.fresh"])
        let after = try store.sync(.inbox)
        XCTAssertEqual(after.uidValidity, snapshot.uidValidity)
        XCTAssertEqual(Set(after.messages.map(\.uid)).count, after.messages.count)
        XCTAssertGreaterThan(after.uidNext, after.messages.map(\.uid).max() ?? 0)
    }

    func testPathEscapeAttemptsCreateNothingOutsideTheHome() throws {
        try store.ensureDefaultFolders()
        let before = treeListing(fixture.temp.path)
        let hostile = ["../x", "a/../../b", "..", "../../../../etc", "a\u{0}b", "x\u{1B}[31m", String(repeating: "y", count: 256), "/etc/passwd", "a//b"]
        for name in hostile {
            let error = assertThrowsMailStoreError { () throws(MailStoreError) in try store.createFolder(try folder(name)) }
            guard case .invalidFolderName = error else { XCTFail("\(name.debugDescription): \(String(describing: error))"); continue }
            XCTAssertThrowsError(try store.deliver(message("x"), to: try folder(name)))
        }
        for address in ["../../x@example.test", "x@../../y", "x@a/b", "x/y@example.test"] {
            XCTAssertThrowsError(try MailUser(address: address), address)
        }
        XCTAssertEqual(treeListing(fixture.temp.path), before, "nothing created anywhere")
        // Names with dots and percent signs stay inside the Maildir.
        for name in ["..a", "a.", "%2E%2E", "x/..y"] {
            let dotted = try folder(name)
            try store.createFolder(dotted)
            let path = store.directory(of: dotted)
            XCTAssertEqual(PathUtil.directory(of: path), store.maildirDirectory, name)
            XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/cur"), name)
        }
        let outside = treeListing(fixture.temp.path).filter { !$0.hasPrefix("shared/mail/example.test/") }
        XCTAssertEqual(outside, before.filter { !$0.hasPrefix("shared/mail/example.test/") })
    }
}

func fileSize(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
}
