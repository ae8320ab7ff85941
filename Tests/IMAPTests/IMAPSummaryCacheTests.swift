import Foundation
import MailMessage
import NIOConcurrencyHelpers
import SharedTree
import Testing

@testable import IMAP

/// A summary cache in memory, counting what it is asked and given.
final class MemorySummaryCache: IMAPSummaryCache {
    struct State {
        var rows: [String: ParsedSummary] = [:]
        var stores = 0
    }
    let state = NIOLockedValueBox(State())

    func summaries(user: String, folder: String, uidValidity: UInt32, uids: [UInt32]) throws -> [UInt32: ParsedSummary] {
        state.withLockedValue { state in
            var found: [UInt32: ParsedSummary] = [:]
            for uid in uids { found[uid] = state.rows["\(user)/\(folder)/\(uidValidity)/\(uid)"] }
            return found
        }
    }

    func storeSummaries(user: String, folder: String, uidValidity: UInt32, _ summaries: [UInt32: ParsedSummary]) throws {
        state.withLockedValue { state in
            state.stores += 1
            for (uid, summary) in summaries {
                let key = "\(user)/\(folder)/\(uidValidity)/\(uid)"
                state.rows[key] = summary.merged(with: state.rows[key] ?? ParsedSummary())
            }
        }
    }
}

@Suite struct IMAPSummaryCacheTests {
    static let message = Array("""
        From: Ann <ann@example.test>\r
        To: bob@example.test\r
        Subject: Plans\r
        Message-ID: <p1@example.test>\r
        MIME-Version: 1.0\r
        Content-Type: multipart/mixed; boundary=b\r
        \r
        --b\r
        Content-Type: text/plain\r
        \r
        hello\r
        --b--\r

        """.utf8)

    /// Overwrites the stored file (never done to a real store: files are immutable) so that a
    /// FETCH answered from the file would differ from one answered from the cache.
    func rewriteFile(_ t: Transcript) throws {
        let snapshot = try t.store.sync(.inbox)
        let path = try #require(try t.store.messagePath(snapshot.messages[0], in: .inbox))
        let other = String(decoding: Self.message, as: UTF8.self)
            .replacingOccurrences(of: "Subject: Plans", with: "Subject: Other").replacingOccurrences(of: "text/plain", with: "text/html")
        try Data(other.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Logged in, one message delivered, INBOX selected.
    static func selectedTranscript(_ cache: MemorySummaryCache?) async throws -> Transcript {
        var t = try Transcript(summaryCache: cache)
        try await t.run("a LOGIN u@example.test secret")
        try t.store.deliver(Self.message)
        try await t.run("b SELECT INBOX")
        return t
    }

    @Test func envelopeAndBodyStructureComeFromTheCacheOnceFetched() async throws {
        let cache = MemorySummaryCache()
        var t = try await Self.selectedTranscript(cache)
        defer { t.cleanUp() }
        let first = try await t.run("c FETCH 1 (ENVELOPE BODYSTRUCTURE)")
        #expect(first[0].contains("\"Plans\"") && first[0].contains("(\"TEXT\" \"PLAIN\""))
        #expect(cache.state.withLockedValue { $0.stores } == 1)
        try rewriteFile(t)
        // Answered from the cache: the same bytes as before, and nothing stored again.
        #expect(try await t.run("d FETCH 1 (ENVELOPE BODYSTRUCTURE)") == first.map { $0.replacingOccurrences(of: "c OK", with: "d OK") })
        #expect(try await t.run("e FETCH 1 BODY") == [
            "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 0) \"MIXED\"))", "e OK FETCH completed",
        ])
        #expect(cache.state.withLockedValue { $0.stores } == 1)
        // A body section still reads the file.
        #expect(try await t.run("f FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")[1] == "Subject: Other")
    }

    @Test func envelopeOnlyFetchIsCompletedByALaterBodyStructure() async throws {
        let cache = MemorySummaryCache()
        var t = try await Self.selectedTranscript(cache)
        defer { t.cleanUp() }
        try await t.run("c FETCH 1 ENVELOPE")
        let row = cache.state.withLockedValue { $0.rows.values.first }
        #expect(row?.envelope != nil && row?.bodyStructure == nil)
        // BODYSTRUCTURE is not cached yet: read from the file, then kept beside the envelope.
        try rewriteFile(t)
        let body = try await t.run("d FETCH 1 (ENVELOPE BODYSTRUCTURE)")
        #expect(body[0].contains("\"Plans\"") && body[0].contains("(\"TEXT\" \"HTML\""))
        let complete = cache.state.withLockedValue { $0.rows.values.first }
        #expect(complete?.envelope != nil && complete?.bodyStructure != nil)
    }

    @Test func withoutACacheTheFileIsTheAnswer() async throws {
        var t = try await Self.selectedTranscript(nil)
        defer { t.cleanUp() }
        #expect(try await t.run("c FETCH 1 ENVELOPE")[0].contains("\"Plans\""))
        try rewriteFile(t)
        #expect(try await t.run("d FETCH 1 ENVELOPE")[0].contains("\"Other\""))
    }
}
