import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import Chat

/// IRC over WebSocket (web chat): the message↔line adapter as a table, a session that starts
/// authenticated by the web session, and a whole `IRCLineConnection` talking to a TCP-style
/// client on another hub of the same shared tree.
@Suite struct WebChatTests {
    @Test(arguments: [
        ("PRIVMSG #a :hi", IRCWebSocketFraming.Input.line(Array("PRIVMSG #a :hi".utf8))),
        ("PRIVMSG #a :hi\r\n", .line(Array("PRIVMSG #a :hi".utf8))),
        ("PRIVMSG #a :hi\n", .line(Array("PRIVMSG #a :hi".utf8))),
        ("PRIVMSG #a :é ✓", .line(Array("PRIVMSG #a :é ✓".utf8))),
        ("", .empty),
        ("\r\n", .empty),
        ("PRIVMSG #a :one\r\nQUIT", .malformed),
        ("PRIVMSG #a :one\nQUIT", .malformed),
        ("PRIVMSG #a :cr\ronly", .malformed),
        ("PRIVMSG #a :nul\u{0}", .malformed),
        ("PRIVMSG #a :x\r\n\r\n", .malformed),
        (String(repeating: "a", count: IRCLimits.maxLineBytes), .line(Array(repeating: UInt8(ascii: "a"), count: IRCLimits.maxLineBytes))),
        (String(repeating: "a", count: IRCLimits.maxLineBytes + 1), .tooLong),
        (String(repeating: "a", count: IRCLimits.maxLineBytes) + "\r\n", .line(Array(repeating: UInt8(ascii: "a"), count: IRCLimits.maxLineBytes))),
    ])
    func messagesBecomeLines(text: String, expected: IRCWebSocketFraming.Input) {
        #expect(IRCWebSocketFraming.input(fromText: text) == expected)
    }

    @Test func linesBecomeMessagesWithoutLineEnding() {
        let message = IRCMessage(tags: [IRCTag("time", "2026-01-01T00:00:00.000Z")], source: "bob!bob@example.org", command: "PRIVMSG", params: ["#a", "hi there"])
        #expect(IRCWebSocketFraming.text(from: message) == "@time=2026-01-01T00:00:00.000Z :bob!bob@example.org PRIVMSG #a :hi there")
        #expect(IRCWebSocketFraming.text(from: IRCMessage(command: "PING", params: ["x"])) == "PING x")
        #expect(IRCWebSocketFraming.maxMessageBytes == IRCLimits.maxLineBytes + 2)
    }

    @Test func sessionAuthenticatedByTheWebNeedsNoPassword() {
        let configuration = IRCSession.Configuration(serverName: "irc.n1", node: "n1", pid: 1)
        var session = IRCSession(configuration: configuration, authenticatedAs: "alice@example.org")
        #expect(session.receive(Array("NICK alice".utf8), now: 1000).isEmpty)
        let actions = session.receive(Array("USER alice 0 * :Alice".utf8), now: 2000)
        guard case .request(.register(let user)) = actions.first else {
            Issue.record("registration was not requested: \(actions)")
            return
        }
        #expect(user.account == "alice@example.org")
        #expect(user.userHost == "alice@example.org")
        // SASL is not needed and not taken.
        var other = IRCSession(configuration: configuration, authenticatedAs: "alice@example.org")
        let sasl = other.receive(Array("AUTHENTICATE PLAIN".utf8), now: 1000)
        #expect(sasl == [.send(IRCMessage(source: "irc.n1", command: "907", params: ["*", "You have already authenticated using SASL"]))])
    }

    /// Waits until `lines` has a line containing `text` (polling the hubs, as their run loops would).
    static func wait(for text: String, in lines: NIOLockedValueBox<[String]>, cluster: ChatCluster) async -> Bool {
        for _ in 0..<200 {
            if lines.withLockedValue({ $0.contains { $0.contains(text) } }) { return true }
            for hub in cluster.hubs.values { await hub.pollAll() }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test func webClientAndTCPClientOnAnotherNodeShareAChannel() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let bob = TestClient(cluster, node: "n2")
        _ = await bob.login(nick: "bob", account: "bob@example.org")
        _ = await bob.send("JOIN #web")
        _ = await bob.send("PRIVMSG #web :before the browser came")

        let written = NIOLockedValueBox<[String]>([])
        let admitted = NIOLockedValueBox(true)
        let handledCount = NIOLockedValueBox(0)
        let (input, sink) = AsyncStream.makeStream(of: String.self)
        let connection = IRCLineConnection(
            hub: cluster.hub("n1"), authenticator: TableAuthenticator(), remoteAddress: "192.0.2.9", admissionCheckInterval: .milliseconds(50),
            logger: ChatCluster.logger)
        let configuration = IRCSession.Configuration(serverName: "irc.n1", node: "n1", pid: getpid())
        let run = Task {
            await connection.run(
                session: IRCSession(configuration: configuration, authenticatedAs: "alice@example.org"), input: input,
                handled: { handledCount.withLockedValue { $0 += 1 } },
                write: { lines in written.withLockedValue { $0 += lines } }, admitted: { admitted.withLockedValue { $0 } })
        }
        for line in ["CAP LS 302", "CAP REQ :batch draft/chathistory echo-message server-time", "NICK alice", "USER alice 0 * :Alice", "CAP END", "JOIN #web"] {
            sink.yield(line)
        }
        #expect(await Self.wait(for: " 366 alice #web ", in: written, cluster: cluster))
        #expect(written.withLockedValue { $0.contains { $0.contains(" 001 alice ") } })
        // Scroll-back: the line sent before the browser joined.
        sink.yield("CHATHISTORY LATEST #web * 50")
        #expect(await Self.wait(for: "PRIVMSG #web :before the browser came", in: written, cluster: cluster))
        // A message smuggling a second line is refused whole.
        sink.yield("PRIVMSG #web :one\r\nPART #web")
        #expect(await Self.wait(for: " 421 alice * :Malformed command", in: written, cluster: cluster))
        // Both directions, exact text.
        sink.yield("PRIVMSG #web :hello from the web ✓")
        #expect(await Self.wait(for: "PRIVMSG #web :hello from the web ✓", in: written, cluster: cluster))  // echo-message
        var seenByBob: [String] = []
        for _ in 0..<100 where !seenByBob.contains(where: { $0.contains("hello from the web") }) {
            seenByBob += await bob.drain()
        }
        #expect(seenByBob.contains(":alice!alice@example.org PRIVMSG #web :hello from the web ✓"))
        #expect(seenByBob.allSatisfy { !$0.contains("PART") })
        _ = await bob.send("PRIVMSG #web :hi web")
        #expect(await Self.wait(for: ":bob!bob@example.org PRIVMSG #web :hi web", in: written, cluster: cluster))
        #expect(written.withLockedValue { $0.allSatisfy { !$0.contains("\r") && !$0.contains("\n") } })
        #expect(handledCount.withLockedValue { $0 } >= 9)
        // The web session ends: the next check closes the connection, and bob sees the QUIT.
        admitted.withLockedValue { $0 = false }
        let reason = await run.value
        #expect(reason == "Web session ended")
        #expect(written.withLockedValue { $0.last } == "ERROR :Closing Link: Web session ended, sign in again")
        var quit: [String] = []
        for _ in 0..<100 where !quit.contains(where: { $0.contains("QUIT") }) { quit += await bob.drain() }
        #expect(quit.contains { $0.hasPrefix(":alice!alice@example.org QUIT") })
        sink.finish()
        await bob.finish()
    }
}
