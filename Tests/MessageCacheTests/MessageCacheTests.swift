import Foundation
import Testing
import MailMessage
@testable import MessageCache

@Suite struct MessageCacheTests {
    let path = NSTemporaryDirectory() + "svcpkg-cache-\(UInt64.random(in: 0...UInt64.max))/cache.sqlite"

    func key(_ uid: UInt32, folder: String = "INBOX", validity: UInt32 = 7) -> MessageKey {
        MessageKey(user: "alice@example.test", folder: folder, uidValidity: validity, uid: uid)
    }

    func message(_ subject: String, _ body: String) -> [UInt8] {
        Array("From: Bob <bob@example.test>\r\nSubject: \(subject)\r\nMessage-ID: <\(subject)@x>\r\n\r\n\(body)\r\n".utf8)
    }

    @Test func indexesAndReadsBack() throws {
        let cache = try MessageCache(path: path)
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let indexed = try cache.index(key(1), message: message("Quarterly report", "numbers inside"), internalDate: date)
        #expect(try cache.cached(key(1)) == indexed)
        #expect(indexed.subject == "Quarterly report")
        #expect(indexed.from == "Bob <bob@example.test>")
        #expect(indexed.internalDate == date)
        #expect(try cache.cached(key(2)) == nil)
        // A second index of the same key replaces, never duplicates.
        try cache.index(key(1), message: message("Quarterly report", "numbers inside"), internalDate: date)
        #expect(try cache.count(user: "alice@example.test") == 1)
    }

    @Test func substringSearchLikeIMAP() throws {
        let cache = try MessageCache(path: path)
        try cache.index(key(1), message: message("Lunch", "Shall we meet at the Zürich office?"), internalDate: Date())
        try cache.index(key(2), message: message("Invoice", "Payment due"), internalDate: Date())
        try cache.index(key(3, folder: "Archive"), message: message("Lunch again", "office"), internalDate: Date())
        #expect(try cache.search(user: "alice@example.test", folder: "INBOX", uidValidity: 7, contains: "ffic", in: .text) == [1])
        #expect(try cache.search(user: "alice@example.test", folder: "INBOX", uidValidity: 7, contains: "ZÜRICH", in: .body) == [1])
        #expect(try cache.search(user: "alice@example.test", folder: "INBOX", uidValidity: 7, contains: "invoice", in: .text) == [2])
        #expect(try cache.search(user: "alice@example.test", folder: "INBOX", uidValidity: 7, contains: "invoice", in: .body) == [])
        #expect(try cache.search(user: "alice@example.test", folder: "INBOX", uidValidity: 7, contains: "of", in: .text) == nil)
        // Query syntax in the needle is taken literally.
        #expect(try cache.search(user: "alice@example.test", folder: "INBOX", uidValidity: 7, contains: "\" OR body:*", in: .text) == [])
    }

    @Test func pruneAndForget() throws {
        let cache = try MessageCache(path: path)
        for uid in UInt32(1)...5 { try cache.index(key(uid), message: message("m\(uid)", "text"), internalDate: Date()) }
        try cache.index(key(9, validity: 6), message: message("old", "text"), internalDate: Date())
        #expect(try cache.prune(user: "alice@example.test", folder: "INBOX", uidValidity: 7, keeping: [1, 3]) == 4)
        #expect(try cache.cachedUIDs(user: "alice@example.test", folder: "INBOX", uidValidity: 7) == [1, 3])
        #expect(try cache.search(user: "alice@example.test", folder: "INBOX", uidValidity: 7, contains: "text", in: .body) == [1, 3])
        #expect(try cache.forget(user: "alice@example.test") == 2)
        #expect(try cache.count(user: "alice@example.test") == 0)
    }

    @Test func summariesMergeAndGoWithTheirMessage() throws {
        let cache = try MessageCache(path: path)
        let user = "alice@example.test"
        let envelope = Envelope(subject: Array("Hello".utf8), from: [EnvelopeAddress(name: nil, mailbox: Array("a".utf8), host: Array("x".utf8))])
        let body = BodyStructure.emptyTextPlain
        try cache.storeSummaries(user: user, folder: "INBOX", uidValidity: 7, [1: ParsedSummary(envelope: envelope)])
        #expect(try cache.summaries(user: user, folder: "INBOX", uidValidity: 7, uids: [1, 2]) == [1: ParsedSummary(envelope: envelope)])
        // A later BODYSTRUCTURE joins the envelope already there; nil never erases.
        try cache.storeSummaries(user: user, folder: "INBOX", uidValidity: 7, [1: ParsedSummary(bodyStructure: body)])
        #expect(try cache.summaries(user: user, folder: "INBOX", uidValidity: 7, uids: [1]) == [1: ParsedSummary(envelope: envelope, bodyStructure: body)])
        #expect(try cache.summaries(user: user, folder: "INBOX", uidValidity: 8, uids: [1]) == [:])
        // Indexing for search keeps the summary too, parsed once.
        try cache.index(key(2), message: message("Indexed", "text"), internalDate: Date())
        let indexed = try cache.summaries(user: user, folder: "INBOX", uidValidity: 7, uids: [2])[2]
        #expect(indexed?.envelope?.subject == Array("Indexed".utf8) && indexed?.bodyStructure != nil)
        // More UIDs than SQLite binds in one statement.
        #expect(try cache.summaries(user: user, folder: "INBOX", uidValidity: 7, uids: Array(1...2000)).count == 2)
        // Expunged messages lose their summaries with their rows.
        try cache.prune(user: user, folder: "INBOX", uidValidity: 7, keeping: [2])
        #expect(try cache.summaries(user: user, folder: "INBOX", uidValidity: 7, uids: [1, 2]).keys.sorted() == [2])
    }
}
