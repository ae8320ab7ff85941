import Foundation
import NIOCore
import NIOSSL
import Testing
@testable import POP3

/// The server on a real loopback socket, driven by Python's `poplib` and by raw sockets,
/// with an in-memory maildrop behind it. Responses are checked byte for byte.
@Suite(.enabled(if: TestSupport.pythonAvailable, "python3 is not installed"))
struct POP3ServerTests {
    func start(
        _ services: MemoryServices, implicitTLS: Bool = false, tls: NIOSSLContext? = nil, idleTimeout: TimeAmount = .seconds(30),
        plaintextOnLoopback: Bool = true
    ) async throws -> POP3Server {
        let settings = POP3Server.Settings(host: "127.0.0.1", port: 0, implicitTLS: implicitTLS, tlsContext: { tls }, idleTimeout: idleTimeout) { loopback in
            POP3Session.Configuration(hostname: "pop.example.test", allowPlaintextAuth: plaintextOnLoopback && loopback)
        }
        return try await POP3Server.start(settings: settings, services: services, logger: TestSupport.logger)
    }

    /// Lines with trailing spaces removed (an empty message line prints as `S: ` or `>`).
    func lines(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0.reversed().drop { $0 == " " }.reversed()) }
    }

    func expectOutput(_ result: TestSupport.ProcessResult, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 0, "client failed: \(result.output)", sourceLocation: sourceLocation)
        #expect(lines(result.output) == lines(expected + "\n"), sourceLocation: sourceLocation)
    }

    static let capabilities = """
        TOP
        UIDL
        RESP-CODES
        AUTH-RESP-CODE
        PIPELINING
        EXPIRE NEVER
        """

    @Test func poplibSession() async throws {
        let services = MemoryServices(mail: ["alice@example.test": TestSupport.threeMessages])
        let server = try await start(services)
        let result = try await TestSupport.python("""
            p = poplib.POP3('127.0.0.1', port, timeout=10)
            show(p.getwelcome())
            capa(p)
            attempt(p.user, 'alice@example.test')
            attempt(p.pass_, 'wrong')
            show(p.user('alice@example.test'))
            show(p.pass_('secret'))
            show(p.stat())
            show(p.list())
            show(p.list(2))
            show(p.retr(1), True)
            show(p.retr(2), True)
            show(p.top(2, 0), True)
            show(p.uidl())
            show(p.uidl(3))
            show(p.dele(2))
            attempt(p.retr, 2)
            attempt(p.list, 9)
            show(p.rset())
            show(p.dele(2))
            show(p.noop())
            show(p.quit())
            """, port: server.localPort)
        expectOutput(result, """
            +OK pop.example.test POP3 server ready
            \(Self.capabilities)
            USER
            SASL PLAIN
            +OK Send PASS
            error -ERR [AUTH] Authentication failed
            +OK Send PASS
            +OK Maildrop has 3 messages (111 octets)
            (3, 111)
            +OK 3 messages (111 octets)
            >1 57
            >2 33
            >3 21
            +OK 2 33
            +OK 57 octets
            >From: a@x.test
            >Subject: one
            >
            >Hello
            >.hidden dot
            >Bye
            octets 57
            +OK 33 octets
            >Subject: two
            >
            >bare LF body
            >.
            octets 33
            +OK Top of message follows
            >Subject: two
            >
            octets 16
            +OK Unique-ID listing follows
            >1 uid-1
            >2 uid-2
            >3 uid-3
            +OK 3 uid-3
            +OK Message 2 deleted
            error -ERR Message 2 already deleted
            error -ERR No such message
            +OK Maildrop has 3 messages (111 octets)
            +OK Message 2 deleted
            +OK
            +OK pop.example.test POP3 server signing off (2 messages left)
            """)
        let maildrop = try #require(services.maildrops.first)
        #expect(await TestSupport.eventually { maildrop.record.withLockedValue { $0.releases } == 1 })
        #expect(maildrop.record.withLockedValue { $0.commits } == [["uid-2"]])
        #expect(await TestSupport.eventually { services.state.withLockedValue { $0.closed } == 1 })
        await server.stop()
    }

    /// RFC 2449 §6.6: one write holding the whole conversation; answers come in order. A
    /// message that cannot be read gets -ERR, and the session goes on.
    @Test func pipelinedBurst() async throws {
        let services = MemoryServices(mail: ["alice@example.test": TestSupport.threeMessages + [.unreadable]])
        let server = try await start(services)
        let result = try await TestSupport.python("""
            s = socket.create_connection(('127.0.0.1', port), timeout=10)
            s.sendall(b'CAPA\\r\\nUSER alice@example.test\\r\\nPASS secret\\r\\nSTAT\\r\\nLIST\\r\\nRETR 3\\r\\nRETR 4\\r\\nTOP 1 1\\r\\nDELE 3\\r\\nQUIT\\r\\n')
            dump(recv_all(s))
            """, port: server.localPort)
        expectOutput(result, """
            S: +OK pop.example.test POP3 server ready
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
            S: +OK Maildrop has 4 messages (211 octets)
            S: +OK 4 211
            S: +OK 4 messages (211 octets)
            S: 1 57
            S: 2 33
            S: 3 21
            S: 4 100
            S: .
            S: +OK 21 octets
            S: Subject: three
            S:
            S: x
            S: .
            S: -ERR [SYS/TEMP] Cannot read message 4, try again later
            S: +OK Top of message follows
            S: From: a@x.test
            S: Subject: one
            S:
            S: Hello
            S: .
            S: +OK Message 3 deleted
            S: +OK pop.example.test POP3 server signing off (3 messages left)
            """)
        let maildrop = try #require(services.maildrops.first)
        #expect(await TestSupport.eventually { maildrop.record.withLockedValue { $0.releases } == 1 })
        #expect(maildrop.record.withLockedValue { $0.commits } == [["uid-3"]])
        await server.stop()
    }

    /// RFC 2449 §8.1.1: a second session for a locked maildrop gets [IN-USE] and stays in
    /// AUTHORIZATION; once the first one quits, it gets in.
    @Test func inUseWhileAnotherSessionHoldsTheLock() async throws {
        let services = MemoryServices(mail: ["alice@example.test": TestSupport.threeMessages])
        let server = try await start(services)
        let result = try await TestSupport.python("""
            p1 = poplib.POP3('127.0.0.1', port, timeout=10)
            p1.user('alice@example.test')
            show(p1.pass_('secret'))
            p2 = poplib.POP3('127.0.0.1', port, timeout=10)
            show(p2.user('alice@example.test'))
            attempt(p2.pass_, 'secret')
            attempt(p2.stat)
            show(p1.quit())
            show(p2.user('alice@example.test'))
            show(p2.pass_('secret'))
            show(p2.quit())
            """, port: server.localPort)
        expectOutput(result, """
            +OK Maildrop has 3 messages (111 octets)
            +OK Send PASS
            error -ERR [IN-USE] Maildrop is locked by another session, try again later
            error -ERR Command not valid in the AUTHORIZATION state
            +OK pop.example.test POP3 server signing off (3 messages left)
            +OK Send PASS
            +OK Maildrop has 3 messages (111 octets)
            +OK pop.example.test POP3 server signing off (3 messages left)
            """)
        #expect(services.maildrops.count == 2)
        await server.stop()
    }

    /// RFC 1939 §6: only QUIT enters UPDATE; a dropped connection deletes nothing.
    @Test func dropBeforeQuitCommitsNothing() async throws {
        let services = MemoryServices(mail: ["alice@example.test": TestSupport.threeMessages])
        let server = try await start(services)
        let result = try await TestSupport.python("""
            p = poplib.POP3('127.0.0.1', port, timeout=10)
            p.user('alice@example.test')
            p.pass_('secret')
            show(p.dele(1))
            show(p.dele(2))
            p.sock.shutdown(socket.SHUT_RDWR)
            p.sock.close()
            """, port: server.localPort)
        expectOutput(result, """
            +OK Message 1 deleted
            +OK Message 2 deleted
            """)
        let maildrop = try #require(services.maildrops.first)
        #expect(await TestSupport.eventually { maildrop.record.withLockedValue { $0.releases } == 1 })
        #expect(maildrop.record.withLockedValue { $0.commits }.isEmpty)
        #expect(await TestSupport.eventually { services.state.withLockedValue { $0.held.isEmpty } })
        await server.stop()
    }

    @Test func overlongLinesAndNULs() async throws {
        let services = MemoryServices()
        let server = try await start(services)
        let result = try await TestSupport.python("""
            s = socket.create_connection(('127.0.0.1', port), timeout=10)
            s.sendall(b'USER ' + b'a' * 5000 + b'\\r\\nUSER a\\x00b\\r\\nCAPA\\r\\n')
            data = recv_lines(s, 1 + 2 + 10)
            for _ in range(20):
                s.sendall(b'X' * 10000)
            time.sleep(0.2)
            s.sendall(b'\\r\\nQUIT\\r\\n')
            dump(data + recv_all(s))
            """, port: server.localPort)
        expectOutput(result, """
            S: +OK pop.example.test POP3 server ready
            S: -ERR Line too long
            S: -ERR Invalid characters in command
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
            S: -ERR Line too long
            S: +OK pop.example.test POP3 server signing off
            """)
        await server.stop()
    }

    /// RFC 1939 §3: the autologout timer closes the connection without UPDATE.
    @Test func idleClientIsDisconnected() async throws {
        let services = MemoryServices(mail: ["alice@example.test": TestSupport.threeMessages])
        // Long enough that a loaded machine still greets in time.
        let server = try await start(services, idleTimeout: .seconds(2))
        let result = try await TestSupport.python("""
            p = poplib.POP3('127.0.0.1', port, timeout=10)
            p.user('alice@example.test')
            p.pass_('secret')
            show(p.dele(1))
            print(text(p.file.readline()).strip())
            print(repr(p.file.readline()))
            """, port: server.localPort)
        expectOutput(result, """
            +OK Message 1 deleted
            -ERR Disconnected for inactivity
            b''
            """)
        let maildrop = try #require(services.maildrops.first)
        #expect(await TestSupport.eventually { maildrop.record.withLockedValue { $0.releases } == 1 })
        #expect(maildrop.record.withLockedValue { $0.commits }.isEmpty)
        await server.stop()
    }

    @Test func refusedConnectionGetsOneLine() async throws {
        let services = MemoryServices(refusal: .error(.sysTemp, "Too many connections from your address, try again later"))
        let server = try await start(services)
        let result = try await TestSupport.python("""
            s = socket.create_connection(('127.0.0.1', port), timeout=10)
            dump(recv_all(s))
            """, port: server.localPort)
        expectOutput(result, "S: -ERR [SYS/TEMP] Too many connections from your address, try again later")
        #expect(services.state.withLockedValue { ($0.opened, $0.closed) } == (1, 0))
        await server.stop()
    }

    /// A client that stops reading stops the maildrop reading: the server holds at most what
    /// the socket buffers take, never the whole message.
    @Test func retrFollowsTheClientsPace() async throws {
        let size = 64 * 1024 * 1024
        let services = MemoryServices(mail: ["alice@example.test": [.generated(octets: size)]])
        let server = try await start(services)
        async let client = TestSupport.python("""
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.settimeout(20)
            s.connect(('127.0.0.1', port))
            s.sendall(b'USER alice@example.test\\r\\nPASS secret\\r\\nRETR 1\\r\\n')
            dump(recv_lines(s, 4))
            time.sleep(4)
            s.close()
            """, port: server.localPort)
        let chunks = { services.maildrops.first?.record.withLockedValue { $0.chunksRead } ?? 0 }
        #expect(await TestSupport.eventually { chunks() > 0 })
        // Wait for reading to stall: the same count twice, 300 ms apart.
        var last = -1
        for _ in 0..<20 {
            let now = chunks()
            if now == last { break }
            last = now
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(last * 64 * 1024 < 24 * 1024 * 1024, "read \(last) chunks of 64 KiB while the client read nothing")
        expectOutput(try await client, """
            S: +OK pop.example.test POP3 server ready
            S: +OK Send PASS
            S: +OK Maildrop has 1 message (\(size) octets)
            S: +OK \(size) octets
            """)
        let maildrop = try #require(services.maildrops.first)
        #expect(await TestSupport.eventually { maildrop.record.withLockedValue { $0.releases } == 1 })
        #expect(maildrop.record.withLockedValue { $0.commits }.isEmpty)
        await server.stop()
    }

    @Test func largeMessageArrivesWhole() async throws {
        let size = 4 * 1024 * 1024
        let services = MemoryServices(mail: ["alice@example.test": [.generated(octets: size)]])
        let server = try await start(services)
        let result = try await TestSupport.python("""
            p = poplib.POP3('127.0.0.1', port, timeout=20)
            p.user('alice@example.test')
            p.pass_('secret')
            resp, lines, octets = p.retr(1)
            print(text(resp), len(lines), octets, len(set(lines)))
            resp, lines, octets = p.top(1, 3)
            print(text(resp), len(lines), octets)
            p.quit()
            """, port: server.localPort)
        expectOutput(result, """
            +OK \(size) octets \(size / 64) \(size) 1
            +OK Top of message follows \(size / 64) \(size)
            """)
        await server.stop()
    }

    @Test(.enabled(if: TestSupport.opensslAvailable, "openssl is not installed"))
    func stlsWithPoplib() async throws {
        let certificate = try await TestSupport.Certificate.make()
        defer { try? FileManager.default.removeItem(at: certificate.directory) }
        let services = MemoryServices(mail: ["alice@example.test": TestSupport.threeMessages])
        let server = try await start(services, tls: certificate.context, plaintextOnLoopback: false)
        let result = try await TestSupport.python("""
            p = poplib.POP3('127.0.0.1', port, timeout=10)
            capa(p)
            attempt(p.user, 'alice@example.test')
            show(p.stls(ssl.create_default_context(cafile=sys.argv[2])))
            capa(p)
            show(p.user('alice@example.test'))
            show(p.pass_('secret'))
            show(p.retr(1), True)
            show(p.quit())
            """, port: server.localPort, [certificate.certificatePath])
        expectOutput(result, """
            \(Self.capabilities)
            STLS
            error -ERR Plaintext authentication is not allowed without TLS, use STLS
            +OK Begin TLS negotiation
            \(Self.capabilities)
            USER
            SASL PLAIN
            +OK Send PASS
            +OK Maildrop has 3 messages (111 octets)
            +OK 57 octets
            >From: a@x.test
            >Subject: one
            >
            >Hello
            >.hidden dot
            >Bye
            octets 57
            +OK pop.example.test POP3 server signing off (3 messages left)
            """)
        await server.stop()
    }

    /// CVE-2011-0411: a command sent in plaintext right behind STLS must not run inside TLS.
    @Test(.enabled(if: TestSupport.opensslAvailable, "openssl is not installed"))
    func plaintextInjectedBehindSTLSIsDropped() async throws {
        let certificate = try await TestSupport.Certificate.make()
        defer { try? FileManager.default.removeItem(at: certificate.directory) }
        let services = MemoryServices(mail: ["alice@example.test": TestSupport.threeMessages])
        let server = try await start(services, tls: certificate.context, plaintextOnLoopback: false)
        let result = try await TestSupport.python("""
            s = socket.create_connection(('127.0.0.1', port), timeout=10)
            data = recv_lines(s, 1)
            s.sendall(b'STLS\\r\\nUSER alice@example.test\\r\\n')
            dump(data + recv_lines(s, 1))
            t = ssl.create_default_context(cafile=sys.argv[2]).wrap_socket(s, server_hostname='127.0.0.1')
            t.sendall(b'PASS secret\\r\\nQUIT\\r\\n')
            dump(recv_all(t))
            """, port: server.localPort, [certificate.certificatePath])
        expectOutput(result, """
            S: +OK pop.example.test POP3 server ready
            S: +OK Begin TLS negotiation
            S: -ERR Send USER first
            S: +OK pop.example.test POP3 server signing off
            """)
        #expect(services.state.withLockedValue { $0.authentications }.isEmpty)
        await server.stop()
    }

    /// STLS refused (RFC 2595 §4: only in AUTHORIZATION): the gate lets go of the commands it
    /// held behind the STLS line, and they are answered in plaintext.
    @Test(.enabled(if: TestSupport.opensslAvailable, "openssl is not installed"))
    func refusedSTLSReleasesHeldCommands() async throws {
        let certificate = try await TestSupport.Certificate.make()
        defer { try? FileManager.default.removeItem(at: certificate.directory) }
        let services = MemoryServices(mail: ["alice@example.test": TestSupport.threeMessages])
        let server = try await start(services, tls: certificate.context)
        let result = try await TestSupport.python("""
            s = socket.create_connection(('127.0.0.1', port), timeout=10)
            s.sendall(b'USER alice@example.test\\r\\nPASS secret\\r\\nSTLS\\r\\nSTAT\\r\\nQUIT\\r\\n')
            dump(recv_all(s))
            """, port: server.localPort)
        expectOutput(result, """
            S: +OK pop.example.test POP3 server ready
            S: +OK Send PASS
            S: +OK Maildrop has 3 messages (111 octets)
            S: -ERR Command not valid in the TRANSACTION state
            S: +OK 3 111
            S: +OK pop.example.test POP3 server signing off (3 messages left)
            """)
        await server.stop()
    }

    /// Port 995 style: TLS from the first byte, then AUTH PLAIN with the `+ ` continuation.
    @Test(.enabled(if: TestSupport.opensslAvailable, "openssl is not installed"))
    func implicitTLSWithAuthPlain() async throws {
        let certificate = try await TestSupport.Certificate.make()
        defer { try? FileManager.default.removeItem(at: certificate.directory) }
        let services = MemoryServices(mail: ["alice@example.test": TestSupport.threeMessages])
        let server = try await start(services, implicitTLS: true, tls: certificate.context, plaintextOnLoopback: false)
        let result = try await TestSupport.python("""
            ctx = ssl.create_default_context(cafile=sys.argv[2])
            s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', port), timeout=10), server_hostname='127.0.0.1')
            data = recv_lines(s, 1)
            s.sendall(b'CAPA\\r\\nAUTH PLAIN\\r\\n')
            data += recv_lines(s, 11)
            s.sendall(base64.b64encode(b'\\0alice@example.test\\0secret') + b'\\r\\n')
            data += recv_lines(s, 1)
            s.sendall(b'STAT\\r\\nQUIT\\r\\n')
            dump(data + recv_all(s))
            p = poplib.POP3_SSL('127.0.0.1', port, context=ctx, timeout=10)
            p.user('alice@example.test')
            show(p.pass_('secret'))
            show(p.quit())
            """, port: server.localPort, [certificate.certificatePath])
        expectOutput(result, """
            S: +OK pop.example.test POP3 server ready
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
            S: +
            S: +OK Maildrop has 3 messages (111 octets)
            S: +OK 3 111
            S: +OK pop.example.test POP3 server signing off (3 messages left)
            +OK Maildrop has 3 messages (111 octets)
            +OK pop.example.test POP3 server signing off (3 messages left)
            """)
        await server.stop()
    }
}
