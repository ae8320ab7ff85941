import Foundation
import Testing
@testable import POP3

/// Transcript tests: `C:` lines are fed to the session (pieces joined by `⏎` go in one read,
/// as a pipelining client sends them), `S:` lines are what the server writes, `A:` lines
/// name the other actions, and `R:` feeds a result back. Messages asked for by RETR/TOP are
/// streamed from `store` through `POP3MessageEncoder` in small chunks, as the server does.
struct Transcript {
    static let defaultStore = [
        "From: a@x.test\r\nSubject: one\r\n\r\nHello\r\n.hidden dot\r\nBye\r\n",  // 57 octets
        "Subject: two\n\nbare LF body\n.\n",  // 33 octets with CRLF
        "Subject: three\r\n\r\nx\r\n",  // 21 octets
    ]

    var session: POP3Session
    var store: [[UInt8]]
    var chunkSize = 5
    /// When false, RETR/TOP show `A: send N` and wait for `R: unavailable` or `R: interrupted`.
    var streamMessages = true
    var commits: [[String]] = []
    var closed = false

    init(_ configuration: POP3Session.Configuration, store: [String] = Transcript.defaultStore) {
        session = POP3Session(configuration: configuration)
        self.store = store.map { Array($0.utf8) }
    }

    var snapshot: [POP3MessageInfo] {
        store.enumerated().map { index, bytes in
            // Octets with CRLF line ends: each bare LF counts one more.
            let bareLF = zip([0] + bytes, bytes).filter { $1 == 0x0a && $0 != 0x0d }.count
            return POP3MessageInfo(uidl: "uid-\(index + 1)", size: bytes.count + bareLF)
        }
    }

    static func lines(_ text: String) -> [String] {
        var lines = text.components(separatedBy: "\r\n")
        if lines.last == "" { lines.removeLast() }
        return lines.map { "S: " + $0 }
    }

    mutating func run(_ script: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var output: [String] = []
        func render(_ actions: [POP3Session.Action]) {
            for action in actions {
                switch action {
                case .send(let response):
                    output += Self.lines(response.encoded())
                case .startTLS:
                    output.append("A: starttls")
                case .authenticate(let user, let password):
                    output.append("A: auth \(user) \(password)")
                case .lockMaildrop(let user):
                    output.append("A: lock \(user)")
                case .sendMessage(let index, let limit, let status):
                    guard streamMessages else {
                        output.append("A: send \(index + 1)" + (limit.map { " top \($0)" } ?? ""))
                        continue
                    }
                    var encoder = POP3MessageEncoder(bodyLineLimit: limit)
                    var bytes = Array(status.encoded().utf8)
                    var start = 0
                    while start < store[index].count && !encoder.isComplete {
                        let end = min(start + chunkSize, store[index].count)
                        encoder.encode(store[index][start..<end], into: &bytes)
                        start = end
                    }
                    bytes += encoder.finish()
                    output += Self.lines(String(decoding: bytes, as: UTF8.self))
                    render(session.messageSent(.sent))
                case .commitDeletions(let uidls):
                    commits.append(uidls)
                    output.append((["A: commit"] + uidls).joined(separator: " "))
                case .close:
                    closed = true
                    output.append("A: close")
                }
            }
        }
        var expected: [String] = []
        for line in script.split(separator: "\n", omittingEmptySubsequences: true) {
            let text = String(line.drop { $0 == " " })
            if text == "C:" || text.hasPrefix("C: ") {
                let pieces = String(text.dropFirst(3)).components(separatedBy: "⏎")
                render(session.receive(Array(pieces.map { $0 + "\r\n" }.joined().utf8)))
            } else if text == "connect" {
                render(session.start())
            } else if text.hasPrefix("R: ") {
                let result = String(text.dropFirst(3))
                switch result {
                case "auth invalid": render(session.authenticationFinished(.invalid))
                case "auth temp": render(session.authenticationFinished(.temporarilyRefused))
                case "auth delay": render(session.authenticationFinished(.loginDelay))
                case "locked": render(session.maildropLocked(.opened(snapshot)))
                case "in-use": render(session.maildropLocked(.inUse))
                case "lock failed": render(session.maildropLocked(.failed))
                case "tls": render(session.tlsStarted())
                case "committed": render(session.deletionsCommitted(success: true))
                case "commit failed": render(session.deletionsCommitted(success: false))
                case "unavailable": render(session.messageSent(.unavailable))
                case "interrupted": render(session.messageSent(.interrupted))
                default:
                    if result.hasPrefix("auth ok ") {
                        render(session.authenticationFinished(.ok(user: String(result.dropFirst(8)))))
                    } else {
                        Issue.record("unknown result \(text)", sourceLocation: sourceLocation)
                    }
                }
            } else {
                expected.append(text)
            }
        }
        func trimmed(_ lines: [String]) -> [String] {
            lines.map { String($0.reversed().drop { $0 == " " }.reversed()) }
        }
        #expect(trimmed(output) == trimmed(expected), sourceLocation: sourceLocation)
    }
}

@Suite struct POP3SessionTests {
    /// Implicit TLS (995): plaintext authentication is fine.
    let tls = POP3Session.Configuration(hostname: "pop.example.test", tlsAvailable: true, tlsActive: true, maxErrors: 5)
    /// Port 110 with a certificate: STLS first.
    let plain = POP3Session.Configuration(hostname: "pop.example.test", tlsAvailable: true, maxErrors: 5)

    /// Logs in as alice over `tls`, with the default store.
    func loggedIn(_ configuration: POP3Session.Configuration? = nil) -> Transcript {
        var t = Transcript(configuration ?? tls)
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: USER alice
            S: +OK Send PASS
            C: PASS secret
            A: auth alice secret
            R: auth ok alice@example.test
            A: lock alice@example.test
            R: locked
            S: +OK Maildrop has 3 messages (111 octets)
            """)
        return t
    }

    @Test func everyTransactionCommand() {
        var t = loggedIn()
        t.run("""
            C: STAT
            S: +OK 3 111
            C: LIST
            S: +OK 3 messages (111 octets)
            S: 1 57
            S: 2 33
            S: 3 21
            S: .
            C: LIST 2
            S: +OK 2 33
            C: UIDL
            S: +OK Unique-ID listing follows
            S: 1 uid-1
            S: 2 uid-2
            S: 3 uid-3
            S: .
            C: UIDL 3
            S: +OK 3 uid-3
            C: RETR 1
            S: +OK 57 octets
            S: From: a@x.test
            S: Subject: one
            S:
            S: Hello
            S: ..hidden dot
            S: Bye
            S: .
            C: RETR 2
            S: +OK 33 octets
            S: Subject: two
            S:
            S: bare LF body
            S: ..
            S: .
            C: TOP 1 0
            S: +OK Top of message follows
            S: From: a@x.test
            S: Subject: one
            S:
            S: .
            C: TOP 1 2
            S: +OK Top of message follows
            S: From: a@x.test
            S: Subject: one
            S:
            S: Hello
            S: ..hidden dot
            S: .
            C: DELE 1
            S: +OK Message 1 deleted
            C: STAT
            S: +OK 2 54
            C: LIST
            S: +OK 2 messages (54 octets)
            S: 2 33
            S: 3 21
            S: .
            C: UIDL
            S: +OK Unique-ID listing follows
            S: 2 uid-2
            S: 3 uid-3
            S: .
            C: NOOP
            S: +OK
            C: QUIT
            A: commit uid-1
            R: committed
            S: +OK pop.example.test POP3 server signing off (2 messages left)
            A: close
            """)
        #expect(t.commits == [["uid-1"]])
        #expect(t.closed)
    }

    @Test func deletedAndMissingMessages() {
        var t = loggedIn()
        t.run("""
            C: DELE 2
            S: +OK Message 2 deleted
            C: DELE 2
            S: -ERR Message 2 already deleted
            C: RETR 2
            S: -ERR Message 2 already deleted
            C: LIST 2
            S: -ERR Message 2 already deleted
            C: RSET
            S: +OK Maildrop has 3 messages (111 octets)
            C: LIST 2
            S: +OK 2 33
            C: DELE 3
            S: +OK Message 3 deleted
            C: DELE 1
            S: +OK Message 1 deleted
            C: UIDL 4
            S: -ERR No such message
            C: RETR 3
            S: -ERR Message 3 already deleted
            S: -ERR Too many errors, closing connection
            A: close
            """)
        // The connection closed without QUIT: nothing is removed.
        #expect(t.commits.isEmpty)
    }

    @Test func outOfRangeAndBadArguments() {
        var t = loggedIn(POP3Session.Configuration(hostname: "pop.example.test", tlsActive: true, maxErrors: 20))
        t.run("""
            C: RETR 0
            S: -ERR No such message
            C: RETR 4
            S: -ERR No such message
            C: TOP 99999999999999999999999 1
            S: -ERR No such message
            C: UIDL 0
            S: -ERR No such message
            C: LIST x
            S: -ERR Syntax error: expected a number, got "x"
            C: DELE
            S: -ERR Syntax error: DELE msg
            C: TOP 1
            S: -ERR Syntax error: TOP msg n
            C: STAT now
            S: -ERR Syntax error: no argument allowed
            C: LAST
            S: -ERR Unknown command
            C: USER bob
            S: -ERR Command not valid in the TRANSACTION state
            C: PASS x
            S: -ERR Command not valid in the TRANSACTION state
            C: AUTH PLAIN
            S: -ERR Command not valid in the TRANSACTION state
            C: STLS
            S: -ERR STLS not available
            C: STAT
            S: +OK 3 111
            """)
    }

    @Test func authorizationStateErrors() {
        var t = Transcript(POP3Session.Configuration(hostname: "pop.example.test", tlsActive: true, maxErrors: 20))
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: STAT
            S: -ERR Command not valid in the AUTHORIZATION state
            C: LIST
            S: -ERR Command not valid in the AUTHORIZATION state
            C: RETR 1
            S: -ERR Command not valid in the AUTHORIZATION state
            C: DELE 1
            S: -ERR Command not valid in the AUTHORIZATION state
            C: TOP 1 1
            S: -ERR Command not valid in the AUTHORIZATION state
            C: UIDL
            S: -ERR Command not valid in the AUTHORIZATION state
            C: RSET
            S: -ERR Command not valid in the AUTHORIZATION state
            C: NOOP
            S: -ERR Command not valid in the AUTHORIZATION state
            C: PASS secret
            S: -ERR Send USER first
            C: USER alice
            S: +OK Send PASS
            C: CAPA
            S: +OK Capability list follows
            S: TOP
            S: UIDL
            S: RESP-CODES
            S: AUTH-RESP-CODE
            S: PIPELINING
            S: EXPIRE NEVER
            S: USER
            S: SASL PLAIN
            S: .
            C: PASS secret
            S: -ERR Send USER first
            C: HELO
            S: -ERR Unknown command
            C: USER alice
            S: +OK Send PASS
            C: PASS secret
            A: auth alice secret
            R: auth invalid
            S: -ERR [AUTH] Authentication failed
            C: QUIT
            S: +OK pop.example.test POP3 server signing off
            A: close
            """)
        #expect(t.commits.isEmpty, "QUIT in AUTHORIZATION enters no UPDATE state")
    }

    @Test func authenticationAndLockResults() {
        var t = Transcript(tls)
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: USER alice
            S: +OK Send PASS
            C: PASS secret
            A: auth alice secret
            R: auth temp
            S: -ERR [SYS/TEMP] Authentication temporarily unavailable, try again later
            C: USER alice
            S: +OK Send PASS
            C: PASS secret
            A: auth alice secret
            R: auth delay
            S: -ERR [LOGIN-DELAY] Logged in too recently, try again later
            C: USER alice
            S: +OK Send PASS
            C: PASS secret
            A: auth alice secret
            R: auth ok alice@example.test
            A: lock alice@example.test
            R: in-use
            S: -ERR [IN-USE] Maildrop is locked by another session, try again later
            C: STAT
            S: -ERR Command not valid in the AUTHORIZATION state
            C: USER alice
            S: +OK Send PASS
            C: PASS secret
            A: auth alice secret
            R: auth ok alice@example.test
            A: lock alice@example.test
            R: lock failed
            S: -ERR [SYS/TEMP] Cannot open the maildrop, try again later
            C: USER alice
            S: +OK Send PASS
            C: PASS secret
            A: auth alice secret
            R: auth ok alice@example.test
            A: lock alice@example.test
            R: locked
            S: +OK Maildrop has 3 messages (111 octets)
            C: STAT
            S: +OK 3 111
            """)
        #expect(t.session.user == "alice@example.test")
    }

    @Test func passwordsMayContainSpaces() {
        var t = Transcript(tls)
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: USER alice
            S: +OK Send PASS
            C: PASS correct horse battery staple
            A: auth alice correct horse battery staple
            """)
    }

    @Test func stlsThenPlaintextAuthentication() {
        var t = Transcript(plain)
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: CAPA
            S: +OK Capability list follows
            S: TOP
            S: UIDL
            S: RESP-CODES
            S: AUTH-RESP-CODE
            S: PIPELINING
            S: EXPIRE NEVER
            S: STLS
            S: .
            C: USER alice
            S: -ERR Plaintext authentication is not allowed without TLS, use STLS
            C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
            S: -ERR Plaintext authentication is not allowed without TLS, use STLS
            C: AUTH
            S: +OK Supported mechanisms follow
            S: .
            C: STLS
            S: +OK Begin TLS negotiation
            A: starttls
            R: tls
            C: CAPA
            S: +OK Capability list follows
            S: TOP
            S: UIDL
            S: RESP-CODES
            S: AUTH-RESP-CODE
            S: PIPELINING
            S: EXPIRE NEVER
            S: USER
            S: SASL PLAIN
            S: .
            C: STLS
            S: -ERR STLS not available
            C: AUTH
            S: +OK Supported mechanisms follow
            S: PLAIN
            S: .
            C: USER alice
            S: +OK Send PASS
            C: PASS secret
            A: auth alice secret
            """)
    }

    /// CVE-2011-0411: commands sent in plaintext after STLS, before the handshake, are dropped.
    @Test func plaintextInjectedAfterSTLSIsDropped() {
        var t = Transcript(plain)
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: STLS⏎USER evil⏎PASS evil
            S: +OK Begin TLS negotiation
            A: starttls
            R: tls
            C: NOOP
            S: -ERR Command not valid in the AUTHORIZATION state
            C: PASS secret
            S: -ERR Send USER first
            """)
    }

    @Test func stlsRefusedWithoutCertificate() {
        var t = Transcript(POP3Session.Configuration(hostname: "pop.example.test", allowPlaintextAuth: true))
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: STLS
            S: -ERR STLS not available
            C: USER alice
            S: +OK Send PASS
            """)
    }

    @Test func authPlain() {
        var t = Transcript(POP3Session.Configuration(hostname: "pop.example.test", tlsActive: true, maxErrors: 20))
        // AGFsaWNlAHNlY3JldA== is "\0alice\0secret"; YWxpY2UAYWxpY2UAc2VjcmV0 is "alice\0alice\0secret";
        // Ym9iAGFsaWNlAHNlY3JldA== is "bob\0alice\0secret"; YWxpY2U= is "alice" (no NULs).
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: AUTH CRAM-MD5
            S: -ERR Unrecognized authentication mechanism
            C: AUTH PLAIN
            S: +
            C: *
            S: -ERR Authentication cancelled
            C: AUTH PLAIN
            S: +
            C: not base64!
            S: -ERR Cannot decode the response
            C: AUTH PLAIN YWxpY2U=
            S: -ERR Malformed PLAIN response
            C: AUTH PLAIN =
            S: -ERR Malformed PLAIN response
            C: AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==
            S: -ERR [AUTH] Authorization identity not allowed
            C: AUTH PLAIN AGFsaWNlAA==
            S: -ERR [AUTH] Authentication failed
            C: AUTH PLAIN
            S: +
            C: YWxpY2UAYWxpY2UAc2VjcmV0
            A: auth alice secret
            R: auth invalid
            S: -ERR [AUTH] Authentication failed
            C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
            A: auth alice secret
            R: auth ok alice@example.test
            A: lock alice@example.test
            R: locked
            S: +OK Maildrop has 3 messages (111 octets)
            """)
    }

    /// RFC 2449 §6.6: a burst of commands is answered in order, each after the results the
    /// one before it waited for.
    @Test func pipelinedCommands() {
        var t = Transcript(tls)
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: CAPA⏎USER alice⏎PASS secret⏎STAT⏎LIST 1⏎RETR 3⏎DELE 3⏎UIDL⏎QUIT
            S: +OK Capability list follows
            S: TOP
            S: UIDL
            S: RESP-CODES
            S: AUTH-RESP-CODE
            S: PIPELINING
            S: EXPIRE NEVER
            S: USER
            S: SASL PLAIN
            S: .
            S: +OK Send PASS
            A: auth alice secret
            R: auth ok alice
            A: lock alice
            R: locked
            S: +OK Maildrop has 3 messages (111 octets)
            S: +OK 3 111
            S: +OK 1 57
            S: +OK 21 octets
            S: Subject: three
            S:
            S: x
            S: .
            S: +OK Message 3 deleted
            S: +OK Unique-ID listing follows
            S: 1 uid-1
            S: 2 uid-2
            S: .
            A: commit uid-3
            R: committed
            S: +OK pop.example.test POP3 server signing off (2 messages left)
            A: close
            """)
    }

    @Test func pipelinedInputWaitsForEachResult() {
        var session = POP3Session(configuration: tls)
        _ = session.start()
        #expect(session.receive(Array("USER a\r\nPASS b\r\nSTAT\r\nQUIT\r\n".utf8)) == [
            .send(.ok("Send PASS")), .authenticate(user: "a", password: "b"),
        ])
        #expect(session.authenticationFinished(.ok(user: "a")) == [.lockMaildrop(user: "a")])
        #expect(session.maildropLocked(.opened([POP3MessageInfo(uidl: "u", size: 5)])) == [
            .send(.ok("Maildrop has 1 message (5 octets)")), .send(.ok("1 5")), .commitDeletions([]),
        ])
        #expect(session.deletionsCommitted(success: true) == [
            .send(.ok("pop.example.test POP3 server signing off (1 message left)")), .close,
        ])
        #expect(session.receive(Array("STAT\r\n".utf8)) == [], "closed: input is ignored")
    }

    @Test func commitFailureIsReported() {
        var t = loggedIn()
        t.run("""
            C: DELE 1⏎DELE 3⏎QUIT
            S: +OK Message 1 deleted
            S: +OK Message 3 deleted
            A: commit uid-1 uid-3
            R: commit failed
            S: -ERR [SYS/TEMP] Some deleted messages not removed
            A: close
            """)
    }

    @Test func quitWithNothingDeletedAndEmptyMaildrop() {
        var t = Transcript(tls, store: [])
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            C: USER a⏎PASS b
            S: +OK Send PASS
            A: auth a b
            R: auth ok a
            A: lock a
            R: locked
            S: +OK Maildrop has 0 messages (0 octets)
            C: LIST
            S: +OK 0 messages (0 octets)
            S: .
            C: RETR 1
            S: -ERR No such message
            C: QUIT
            A: commit
            R: committed
            S: +OK pop.example.test POP3 server signing off (maildrop empty)
            A: close
            """)
    }

    /// RFC 2449 §6.7: with EXPIRE 0 the client may not leave mail behind; retrieved messages
    /// go at QUIT. TOP is no retrieval.
    @Test func expireZeroDeletesRetrievedMessages() {
        var t = loggedIn(POP3Session.Configuration(hostname: "pop.example.test", tlsActive: true, expire: .days(0), loginDelay: 900))
        t.run("""
            C: CAPA
            S: +OK Capability list follows
            S: TOP
            S: UIDL
            S: RESP-CODES
            S: AUTH-RESP-CODE
            S: PIPELINING
            S: EXPIRE 0
            S: LOGIN-DELAY 900
            S: USER
            S: SASL PLAIN
            S: .
            C: TOP 1 0
            S: +OK Top of message follows
            S: From: a@x.test
            S: Subject: one
            S:
            S: .
            C: RETR 3
            S: +OK 21 octets
            S: Subject: three
            S:
            S: x
            S: .
            C: DELE 2
            S: +OK Message 2 deleted
            C: QUIT
            A: commit uid-2 uid-3
            R: committed
            S: +OK pop.example.test POP3 server signing off (1 message left)
            A: close
            """)
    }

    @Test func unreadableAndInterruptedMessages() {
        var t = loggedIn()
        t.streamMessages = false
        t.run("""
            C: RETR 1⏎STAT
            A: send 1
            R: unavailable
            S: -ERR [SYS/TEMP] Cannot read message 1, try again later
            S: +OK 3 111
            C: TOP 2 5
            A: send 2 top 5
            R: interrupted
            A: close
            """)
    }

    @Test func messagesStreamAcrossEveryChunkSize() {
        for chunkSize in 1...12 {
            var t = loggedIn()
            t.chunkSize = chunkSize
            t.run("""
                C: RETR 2
                S: +OK 33 octets
                S: Subject: two
                S:
                S: bare LF body
                S: ..
                S: .
                C: TOP 1 1
                S: +OK Top of message follows
                S: From: a@x.test
                S: Subject: one
                S:
                S: Hello
                S: .
                """)
        }
    }

    @Test func overlongLinesAreRefusedAndSkipped() {
        var t = Transcript(POP3Session.Configuration(hostname: "pop.example.test", tlsActive: true, maxErrors: 5))
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            """)
        // A long line in one read.
        #expect(t.session.receive(Array(("USER " + String(repeating: "a", count: 2000) + "\r\n").utf8)) == [.send(.error("Line too long"))])
        // A longer one in pieces: reported once, then dropped as it comes, up to its LF.
        #expect(t.session.receive([UInt8](repeating: 0x41, count: 1000)) == [])
        #expect(t.session.receive([UInt8](repeating: 0x41, count: 1000)) == [.send(.error("Line too long"))])
        for _ in 0..<100 { #expect(t.session.receive([UInt8](repeating: 0x41, count: 10_000)) == []) }
        t.run("""
            C: ⏎CAPA
            S: +OK Capability list follows
            S: TOP
            S: UIDL
            S: RESP-CODES
            S: AUTH-RESP-CODE
            S: PIPELINING
            S: EXPIRE NEVER
            S: USER
            S: SASL PLAIN
            S: .
            C: USER alice
            S: +OK Send PASS
            """)
        // 1024 octets is still a command line.
        let longest = "USER " + String(repeating: "b", count: 1019)
        #expect(t.session.receive(Array((longest + "\r\n").utf8)) == [.send(.error("Syntax error: user name too long"))])
    }

    @Test func controlCharactersAndTooManyErrors() {
        var t = Transcript(POP3Session.Configuration(hostname: "pop.example.test", tlsActive: true, maxErrors: 3))
        t.run("""
            connect
            S: +OK pop.example.test POP3 server ready
            """)
        #expect(t.session.receive(Array("USER al\0ice\r\n".utf8)) == [.send(.error("Invalid characters in command"))])
        #expect(t.session.receive(Array("USER a\rPASS b\r\n".utf8)) == [.send(.error("Invalid characters in command"))])
        #expect(t.session.receive(Array("XYZZY\r\nNOOP\r\n".utf8)) == [
            .send(.error("Unknown command")), .send(.error("Too many errors, closing connection")), .close,
        ])
    }

    @Test func tooMuchPipelinedInputWhileWaitingCloses() {
        var session = POP3Session(configuration: POP3Session.Configuration(hostname: "h", tlsActive: true, maxBufferedInput: 1000))
        _ = session.start()
        let burst = "USER a\r\nPASS b\r\n" + String(repeating: "NOOP\r\n", count: 200)
        #expect(session.receive(Array(burst.utf8)) == [
            .send(.ok("Send PASS")), .authenticate(user: "a", password: "b"),
            .send(.error("Too much pipelined input, closing connection")), .close,
        ])
    }

    @Test func idleDropBeforeQuitCommitsNothing() {
        var t = loggedIn()
        t.run("""
            C: DELE 1⏎DELE 2
            S: +OK Message 1 deleted
            S: +OK Message 2 deleted
            """)
        // The connection drops here: the server just stops feeding the session. No action
        // ever asked for a commit.
        #expect(t.commits.isEmpty)
        #expect(!t.closed)
    }
}
