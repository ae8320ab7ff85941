import Foundation
import Logging
import MailMessage
import SharedTree
import Testing

@testable import IMAP

/// Services for transcripts: one user with password "secret", blocking work run inline.
struct TranscriptServices: IMAPServices {
    let store: MailStore
    var summaryCache: (any IMAPSummaryCache)? = nil

    func connectionOpened(_ context: IMAPConnectionContext) -> String? { nil }
    func connectionClosed(_ context: IMAPConnectionContext) {}
    func sessionEnded(user: String, context: IMAPConnectionContext) {}

    func authenticate(user: String, password: String, context: IMAPConnectionContext) async -> IMAPAuthResult {
        guard user == store.user.address, password == "secret" else { return .invalid }
        return .ok(IMAPAccount(address: user, store: store, quotaBytes: 1_000_000))
    }

    func blocking<Result: Sendable>(_ work: @escaping @Sendable () throws -> Result) async throws -> Result {
        try work()
    }
}

/// Collects encoded responses as text lines.
final class TranscriptOutput: @unchecked Sendable {
    var text = ""
    var encoder = IMAPResponseEncoder()

    func send(_ response: IMAPResponse) {
        text += String(decoding: encoder.encode(response), as: UTF8.self)
    }

    func take() -> [String] {
        defer { text = "" }
        return text.split(separator: "\r\n", omittingEmptySubsequences: true).map(String.init)
    }
}

/// A session over a real store in a temporary shared tree, fed command lines (`C:`) and
/// checked against response lines (`S:`).
struct Transcript {
    let root: String
    let store: MailStore
    var session: IMAPSession
    let output = TranscriptOutput()

    init(plaintextAllowed: Bool = true, summaryCache: (any IMAPSummaryCache)? = nil) throws {
        var template = Array((NSTemporaryDirectory() + "/imap-session-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        root = String(cString: made)
        try SharedTreeLayout(root: root).createSkeleton()
        store = MailStore(layout: SharedTreeLayout(root: root), user: try MailUser(address: "u@example.test"), node: "t1")
        let context = IMAPConnectionContext(remoteAddress: "127.0.0.1", localAddress: "127.0.0.1", sessionID: "t", tlsActive: false)
        session = IMAPSession(
            configuration: IMAPSession.Configuration(allowPlaintextAuth: plaintextAllowed), services: TranscriptServices(store: store, summaryCache: summaryCache),
            context: context, logger: Logger(label: "test"))
    }

    /// Sends one command line and returns the response lines.
    @discardableResult
    mutating func run(_ line: String) async throws -> [String] {
        let frame = Array((line + "\r\n").utf8)
        switch IMAPCommandParser(utf8Accept: session.utf8Accept).parse(frame) {
        case .failure(let error):
            output.send(error.suggestedResponse)
        case .success(let command):
            let output = self.output
            _ = try await session.handle(command) { output.send($0) }
            output.encoder.utf8Accept = session.utf8Accept
        }
        return output.take()
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: root)
    }
}

@Suite struct IMAPSessionTests {
    @Test func loginStateAndCapabilities() async throws {
        var t = try Transcript(plaintextAllowed: false)
        defer { t.cleanUp() }
        let capability = try await t.run("a CAPABILITY")
        #expect(capability[0].contains("LOGINDISABLED") && !capability[0].contains("AUTH=PLAIN"))
        #expect(try await t.run("b LOGIN u@example.test secret") == ["b NO [PRIVACYREQUIRED] Plaintext authentication is allowed only over TLS"])
        #expect(try await t.run("c SELECT INBOX") == ["c BAD Command not valid before authentication"])

        var open = try Transcript()
        defer { open.cleanUp() }
        #expect(try await open.run("a LOGIN u@example.test wrong") == ["a NO [AUTHENTICATIONFAILED] Authentication failed"])
        let login = try await open.run("b LOGIN u@example.test secret")
        #expect(login.count == 1 && login[0].hasPrefix("b OK [CAPABILITY IMAP4rev1 IMAP4rev2") && login[0].contains("CONDSTORE"))
        #expect(try await open.run("c LOGIN u@example.test secret") == ["c BAD Already authenticated"])
        #expect(try await open.run("d FETCH 1 FLAGS") == ["d BAD No mailbox selected"])
        #expect(try await open.run("e ENABLE CONDSTORE X-UNKNOWN") == ["* ENABLED CONDSTORE", "e OK ENABLE completed"])
    }

    @Test func selectFetchStoreExpunge() async throws {
        var t = try Transcript()
        defer { t.cleanUp() }
        try await t.run("a LOGIN u@example.test secret")
        try t.store.deliver(Array("Subject: one\r\nFrom: A <a@x.test>\r\n\r\nbody one\r\n".utf8))
        try t.store.deliver(Array("Subject: two\r\n\r\nbody two\r\n".utf8))
        let select = try await t.run("b SELECT INBOX")
        #expect(select.contains("* 2 EXISTS"))
        #expect(select.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)"))
        #expect(select.last == "b OK [READ-WRITE] SELECT completed")
        #expect(try await t.run("c FETCH 1:* (UID FLAGS)") == ["* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 2 FLAGS ())", "c OK FETCH completed"])
        #expect(try await t.run("d FETCH 3 FLAGS") == ["d BAD Invalid message sequence number 3 (the mailbox has 2 messages)"])
        #expect(try await t.run("e UID FETCH 5:7 FLAGS") == ["e OK FETCH completed"])
        // RFC 9051 §6.4.8: `n:*` with n past the last UID still names the last message.
        #expect(try await t.run("f UID FETCH 9:* FLAGS") == ["* 2 FETCH (UID 2 FLAGS ())", "f OK FETCH completed"])
        #expect(try await t.run("g FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])") == [
            "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {16}", "Subject: one", " FLAGS (\\Seen))", "g OK FETCH completed",
        ])
        #expect(try await t.run("h STORE 2 +FLAGS (\\Deleted \\Recent Work)") == ["* 2 FETCH (FLAGS (\\Deleted Work))", "h OK STORE completed"])
        #expect(try await t.run("i SEARCH DELETED") == ["* SEARCH 2", "i OK SEARCH completed"])
        #expect(try await t.run("j SEARCH KEYWORD work") == ["* SEARCH 2", "j OK SEARCH completed"])
        #expect(try await t.run("k EXPUNGE") == ["* 2 EXPUNGE", "k OK EXPUNGE completed"])
        #expect(try await t.run("l FETCH 1:* (UID)") == ["* 1 FETCH (UID 1)", "l OK FETCH completed"])
    }

    @Test func changesFromElsewhereAreReported() async throws {
        var t = try Transcript()
        defer { t.cleanUp() }
        try await t.run("a LOGIN u@example.test secret")
        for index in 1...3 { try t.store.deliver(Array("Subject: \(index)\r\n\r\nx\r\n".utf8)) }
        try await t.run("b SELECT INBOX")
        // Another session (another node) flags 1, expunges 2 and a delivery arrives.
        _ = try t.store.store(.inbox, uids: [1], .add, flags: .flagged)
        _ = try t.store.store(.inbox, uids: [2], .add, flags: .deleted)
        _ = try t.store.expunge(.inbox)
        try t.store.deliver(Array("Subject: 4\r\n\r\nx\r\n".utf8))
        // FETCH may not report the expunge (RFC 9051 §7.5.1): message 2 keeps its number.
        let fetch = try await t.run("c FETCH 3 (UID)")
        #expect(fetch.contains("* 1 FETCH (FLAGS (\\Flagged))"))
        #expect(fetch.contains("* 4 EXISTS"))
        #expect(fetch.contains("* 3 FETCH (UID 3)"))
        #expect(!fetch.contains { $0.contains("EXPUNGE") })
        let noop = try await t.run("d NOOP")
        #expect(noop == ["* 2 EXPUNGE", "d OK NOOP completed"])
        #expect(try await t.run("e FETCH 1:* (UID)") == ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)", "e OK FETCH completed"])
    }

    @Test func foldersAppendCopyAndMove() async throws {
        var t = try Transcript()
        defer { t.cleanUp() }
        try await t.run("a LOGIN u@example.test secret")
        #expect(try await t.run("b CREATE Work/2026") == ["b OK CREATE completed"])
        #expect(try await t.run("c CREATE Work") == ["c NO [ALREADYEXISTS] Mailbox already exists"])
        #expect(try await t.run("d CREATE ../etc") == ["d NO [CANNOT] Invalid mailbox name: level \"..\" is not allowed"])
        #expect(try await t.run("e LIST \"\" Work*") == [
            "* LIST (\\HasChildren) \"/\" \"Work\"", "* LIST (\\HasNoChildren) \"/\" \"Work/2026\"", "e OK LIST completed",
        ])
        let append = try await t.run("f APPEND Work (\\Seen) {12+}\r\nSubject: a\r\n")
        #expect(append.count == 1 && append[0].hasPrefix("f OK [APPENDUID ") && append[0].hasSuffix(" 1] APPEND completed"))
        #expect(try await t.run("g APPEND Nowhere {12+}\r\nSubject: a\r\n") == ["g NO [TRYCREATE] No such mailbox"])
        try await t.run("h SELECT Work")
        let copy = try await t.run("i COPY 1 INBOX")
        #expect(copy.count == 1 && copy[0].hasPrefix("i OK [COPYUID ") && copy[0].hasSuffix(" 1 1] COPY completed"))
        let move = try await t.run("j MOVE 1 Trash")
        #expect(move.count == 3 && move[0].hasPrefix("* OK [COPYUID ") && move[1] == "* 1 EXPUNGE" && move[2] == "j OK MOVE completed")
        #expect(try await t.run("k STATUS Trash (MESSAGES UNSEEN)") == ["* STATUS \"Trash\" (MESSAGES 1 UNSEEN 0)", "k OK STATUS completed"])
    }

    /// RFC 3502: MULTIAPPEND gives UIDs in the order sent, whatever the INTERNALDATEs.
    @Test func multiappendKeepsCommandOrder() async throws {
        var t = try Transcript()
        defer { t.cleanUp() }
        try await t.run("a LOGIN u@example.test secret")
        let append = try await t.run(
            "b APPEND INBOX () \"01-Jan-2024 10:00:00 +0000\" {12+}\r\nSubject: 0\r\n (\\Flagged $Work) \"01-Jan-2020 10:00:00 +0000\" {12+}\r\n"
                + "Subject: 1\r\n () \"01-Jan-2022 10:00:00 +0000\" {12+}\r\nSubject: 2\r\n")
        #expect(append.count == 1 && append[0].hasPrefix("b OK [APPENDUID ") && append[0].hasSuffix(" 1:3] APPEND completed"))
        try await t.run("c SELECT INBOX")
        #expect(try await t.run("d FETCH 1:3 (FLAGS INTERNALDATE)") == [
            "* 1 FETCH (FLAGS () INTERNALDATE \" 1-Jan-2024 10:00:00 +0000\")",
            "* 2 FETCH (FLAGS (\\Flagged $Work) INTERNALDATE \" 1-Jan-2020 10:00:00 +0000\")",
            "* 3 FETCH (FLAGS () INTERNALDATE \" 1-Jan-2022 10:00:00 +0000\")", "d OK FETCH completed",
        ])
    }

    @Test func sortAndThread() async throws {
        var t = try Transcript()
        defer { t.cleanUp() }
        try await t.run("a LOGIN u@example.test secret")
        let messages = [
            "Subject: Hello\r\nFrom: Zed <z@x.test>\r\nDate: 3 Jan 2024 10:00:00 +0000\r\nMessage-ID: <a@x>\r\n\r\nx\r\n",
            "Subject: Re: hello\r\nFrom: amy@x.test\r\nDate: 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n\r\nx\r\n",
            "Subject: [list] other\r\nFrom: bob@x.test\r\nDate: 2 Jan 2024 10:00:00 +0000\r\nMessage-ID: <c@x>\r\n\r\nxxxxxxxx\r\n",
        ]
        for message in messages { try t.store.deliver(Array(message.utf8)) }
        try await t.run("b SELECT INBOX")
        #expect(try await t.run("c SORT (DATE) UTF-8 ALL") == ["* SORT 2 3 1", "c OK SORT completed"])
        #expect(try await t.run("d SORT (REVERSE SIZE) UTF-8 ALL") == ["* SORT 2 3 1", "d OK SORT completed"])
        #expect(try await t.run("e SORT (SUBJECT FROM) UTF-8 ALL") == ["* SORT 2 1 3", "e OK SORT completed"])
        #expect(try await t.run("f SORT (DISPLAYFROM) UTF-8 ALL") == ["* SORT 2 3 1", "f OK SORT completed"])
        #expect(try await t.run("g THREAD REFERENCES UTF-8 ALL") == ["* THREAD (3)(1 2)", "g OK THREAD completed"])
        #expect(try await t.run("h THREAD ORDEREDSUBJECT UTF-8 ALL") == ["* THREAD (2 1)(3)", "h OK THREAD completed"])
    }
}

@Suite struct IMAPHelperTests {
    @Test(arguments: [
        ("INBOX", "*", true), ("inbox", "INBOX", true), ("Work/2026", "%", false), ("Work/2026", "Work/%", true),
        ("Work/2026", "*", true), ("Work", "W%k", true), ("Work/x/y", "Work/*/y", true), ("Work/x/y", "Work/%/y", true),
        ("Work/x/z/y", "Work/%/y", false), ("a", "", false), ("", "", true),
    ])
    func listPattern(name: String, pattern: String, matches: Bool) {
        #expect(IMAPListPattern.matches(name, pattern: pattern) == matches)
    }

    @Test func listPatternIsNotExponential() {
        let name = String(repeating: "a", count: 2000) + "b"
        let pattern = String(repeating: "*a", count: 500) + "c"
        #expect(!IMAPListPattern.matches(name, pattern: pattern))
    }

    @Test(arguments: [
        ("Re: hello", "HELLO"), ("RE: Fwd: [list]  hello (fwd)", "HELLO"), ("[Fwd: re: hello]", "HELLO"), ("[list]", "[LIST]"),
        ("Fw[x]: a", "A"), ("  spaced \t out  ", "SPACED OUT"), ("Re:", ""),
    ])
    func baseSubject(subject: String, expected: String) {
        #expect(BaseSubject.extract(subject) == expected)
    }

    @Test func rfc5322Dates() {
        #expect(RFC5322DateTime.parse("Mon, 7 Dec 2026 10:00:00 +0100") == Date(timeIntervalSince1970: 1_796_637_600 - 3600))
        #expect(RFC5322DateTime.parse("7 Dec 26 10:00 GMT") == Date(timeIntervalSince1970: 1_796_637_600))
        #expect(RFC5322DateTime.parse("garbage") == nil)
        #expect(RFC5322DateDay.parse("Tue, 31 Feb 2026") == nil)
    }
}
