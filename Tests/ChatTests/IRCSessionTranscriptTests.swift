import Foundation
import SharedTree
import Testing

@testable import Chat

/// Transcripts against the session and the real store and hubs on a temporary shared tree:
/// two hubs with different node names stand for two nodes.
@Suite(.serialized) struct IRCSessionTranscriptTests {
    static let caps = ["server-time", "message-tags", "echo-message", "account-tag", "multi-prefix", "away-notify", "batch", "draft/chathistory"]

    @Test func registrationWithSASL() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let alice = TestClient(cluster, node: "n1")
        #expect(await alice.send("CAP LS 302") == [
            ":irc.n1 CAP * LS :account-tag away-notify batch draft/chathistory echo-message message-tags multi-prefix sasl=PLAIN server-time"
        ])
        #expect(await alice.send("NICK alice") == [])
        #expect(await alice.send("USER alice 0 * :Alice A") == [])
        #expect(await alice.send("CAP REQ :sasl server-time bogus") == [":irc.n1 CAP alice NAK :sasl server-time bogus"])
        #expect(await alice.send("CAP REQ :sasl server-time") == [":irc.n1 CAP alice ACK :sasl server-time"])
        #expect(await alice.send("AUTHENTICATE PLAIN") == ["AUTHENTICATE +"])
        let wrong = Data("\0alice@example.org\0nope".utf8).base64EncodedString()
        #expect(await alice.send("AUTHENTICATE \(wrong)") == [":irc.n1 904 alice :SASL authentication failed"])
        #expect(await alice.send("AUTHENTICATE PLAIN") == ["AUTHENTICATE +"])
        let right = Data("\0alice@example.org\0pw-alice@example.org".utf8).base64EncodedString()
        #expect(await alice.send("AUTHENTICATE \(right)") == [
            ":irc.n1 900 alice alice!alice@example.org alice@example.org :You are now logged in as alice@example.org",
            ":irc.n1 903 alice :SASL authentication successful",
        ])
        let welcome = await alice.send("CAP END")
        #expect(welcome.first == ":irc.n1 001 alice :Welcome to the svcpkg IRC network alice!alice@example.org")
        #expect(welcome.contains { $0.hasPrefix(":irc.n1 005 alice ") && $0.contains("CHATHISTORY=100") && $0.contains("PREFIX=(ov)@+") })
        #expect(welcome.last == ":irc.n1 422 alice :MOTD File is missing")
        #expect(await alice.send("PING abc") == [":irc.n1 PONG irc.n1 abc"])
        #expect(await alice.send("AUTHENTICATE PLAIN") == [":irc.n1 907 alice :You have already authenticated using SASL"])
        #expect(await alice.send("NICK other") == [":alice!alice@example.org NICK other"])
        #expect(await alice.send("PING x") == [":irc.n1 PONG irc.n1 x"])
        #expect(await alice.send("NICK 9lives") == [":irc.n1 432 other 9lives :Erroneous nickname"])
        await alice.finish()
    }

    @Test func unauthenticatedIsRefusedUnlessAllowed() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let guest = TestClient(cluster, node: "n1")
        #expect(await guest.send("JOIN #x") == [":irc.n1 451 * :You have not registered"])
        #expect(await guest.send("NICK guest") == [])
        #expect(await guest.send("USER g 0 * :G") == [
            ":irc.n1 FAIL * ACCOUNT_REQUIRED :Log in with SASL PLAIN (your mail address and password)",
            ":irc.n1 904 guest :SASL authentication required",
            "ERROR :Closing Link: guest (Authentication required)",
        ])
        await guest.finish()

        let allowed = TestClient(cluster, node: "n1") { $0.allowGuests = true }
        #expect(await allowed.send("NICK visitor").isEmpty)
        #expect(await allowed.send("USER v 0 * :V").first == ":irc.n1 001 visitor :Welcome to the svcpkg IRC network visitor!~v@guest.svcpkg")
        await allowed.finish()

        // A nick an account has used belongs to it: guests and other accounts get 433.
        let owner = TestClient(cluster, node: "n1")
        _ = await owner.login(nick: "owned", account: "o@example.org")
        await owner.finish()
        let thief = TestClient(cluster, node: "n2") { $0.allowGuests = true }
        _ = await thief.send("NICK owned")
        #expect(await thief.send("USER t 0 * :T") == [":irc.n2 433 * owned :Nickname is registered to another account"])
        #expect(await thief.send("NICK free").isEmpty == false)
        await thief.finish()
    }

    @Test func plaintextPasswordsNeedTLS() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let client = TestClient(cluster, node: "n1") { $0.allowPlaintextAuth = false }
        _ = await client.send("CAP LS 302")
        _ = await client.send("CAP REQ sasl")
        #expect(await client.send("AUTHENTICATE PLAIN") == [":irc.n1 904 * :SASL authentication failed: PLAIN needs a TLS connection"])
        await client.finish()
    }

    @Test func twoNodesShareAChannel() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let alice = TestClient(cluster, node: "n1")
        let bob = TestClient(cluster, node: "n2")
        _ = await alice.login(nick: "alice", account: "alice@example.org", caps: Self.caps)
        _ = await bob.login(nick: "bob", account: "bob@example.org", caps: ["server-time"])

        let joinReply = await alice.send("JOIN #Team")
        #expect(joinReply == [
            "@account=alice@example.org;time=T :alice!alice@example.org JOIN #Team",
            ":irc.n1 353 alice = #Team :@alice",
            ":irc.n1 366 alice #Team :End of /NAMES list.",
        ])
        #expect(await alice.send("TOPIC #team :Plans for Monday") == [])
        #expect(await alice.drain() == ["@account=alice@example.org;time=T :alice!alice@example.org TOPIC #Team :Plans for Monday"])
        let joined = await bob.send("JOIN #TEAM")
        #expect(joined.first == "@time=T :bob!bob@example.org JOIN #Team")
        #expect(joined[1] == ":irc.n2 332 bob #Team :Plans for Monday")
        #expect(joined[2].hasPrefix(":irc.n2 333 bob #Team alice!alice@example.org "))
        #expect(Array(joined.suffix(2)) == [":irc.n2 353 bob = #Team :@alice bob", ":irc.n2 366 bob #Team :End of /NAMES list."])
        #expect(await alice.drain() == ["@account=bob@example.org;time=T :bob!bob@example.org JOIN #Team"])

        // Both directions; echo-message gives alice her own line back (with its msgid).
        #expect(await bob.send("PRIVMSG #team :hi alice") == [])
        #expect(await alice.drain() == ["@account=bob@example.org;msgid=ID;time=T :bob!bob@example.org PRIVMSG #Team :hi alice"])
        #expect(await bob.drain() == [])
        #expect(await alice.send("@+typing=done PRIVMSG #team :hello bob") == [])
        #expect(await alice.drain() == [
            "@account=alice@example.org;msgid=ID;+typing=done;time=T :alice!alice@example.org PRIVMSG #Team :hello bob"
        ])
        #expect(await bob.drain() == ["@time=T :alice!alice@example.org PRIVMSG #Team :hello bob"])

        // Modes: only operators; +m silences bob until voiced.
        #expect(await bob.send("MODE #team +m") == [":irc.n2 482 bob #Team :You're not channel operator"])
        #expect(await alice.send("MODE #team +mk secret") == [])
        #expect(await bob.drain() == ["@time=T :alice!alice@example.org MODE #Team +mk secret"])
        _ = await alice.drain()
        #expect(await bob.send("PRIVMSG #team :can I talk?") == [":irc.n2 404 bob #Team :Cannot send to channel (+m)"])
        #expect(await alice.send("MODE #team +v bob") == [])
        #expect(await bob.drain() == ["@time=T :alice!alice@example.org MODE #Team +v bob"])
        #expect(await bob.send("PRIVMSG #team :now I can") == [])
        let voiced = await alice.drain()
        #expect(voiced == [
            "@account=alice@example.org;time=T :alice!alice@example.org MODE #Team +v bob",
            "@account=bob@example.org;msgid=ID;time=T :bob!bob@example.org PRIVMSG #Team :now I can",
        ])
        let modes = await alice.send("MODE #team")
        #expect(modes.first == ":irc.n1 324 alice #Team +kmnt secret")
        #expect(modes.last?.hasPrefix(":irc.n1 329 alice #Team ") == true)
        #expect(await bob.send("NAMES #team") == [":irc.n2 353 bob = #Team :@alice +bob", ":irc.n2 366 bob #Team :End of /NAMES list."])
        #expect(await alice.send("NAMES #team") == [":irc.n1 353 alice = #Team :@alice +bob", ":irc.n1 366 alice #Team :End of /NAMES list."])
        #expect(await alice.send("MODE #team +o bob") == [])
        _ = await alice.drain()
        #expect(await alice.send("NAMES #team").first == ":irc.n1 353 alice = #Team :@alice @+bob")

        // Topic lock, kick, key.
        #expect(await bob.send("KICK #team alice :bye") == [])
        let kicked = await alice.drain()
        #expect(kicked == ["@account=bob@example.org;time=T :bob!bob@example.org KICK #Team alice :bye"])
        #expect(await alice.send("PRIVMSG #team :still here?") == [":irc.n1 404 alice #Team :Cannot send to channel (no external messages)"])
        #expect(await alice.send("JOIN #team") == [":irc.n1 475 alice #Team :Cannot join channel (+k)"])
        #expect(await alice.send("JOIN #team secret").first == "@account=alice@example.org;time=T :alice!alice@example.org JOIN #Team")
        _ = await bob.drain()

        // WHOIS sees the other node's user.
        let whois = await alice.send("WHOIS bob")
        #expect(whois.first == ":irc.n1 311 alice bob bob example.org * :bob real")
        #expect(whois.contains(":irc.n1 312 alice bob n2 :svcpkg node"))
        #expect(whois.contains(":irc.n1 330 alice bob bob@example.org :is logged in as"))
        #expect(whois.last == ":irc.n1 318 alice bob :End of /WHOIS list.")

        // PART and QUIT reach the other node.
        #expect(await bob.send("PART #team :later") == [])
        let parted = await alice.drain()
        #expect(parted == ["@account=bob@example.org;time=T :bob!bob@example.org PART #Team :later"])
        let partedSelf = await bob.drain()
        #expect(partedSelf == ["@time=T :bob!bob@example.org PART #Team :later"])
        #expect(await bob.send("JOIN #team secret").isEmpty == false)
        _ = await alice.drain()
        #expect(await bob.send("QUIT :gone") == ["ERROR :Closing Link: bob (Quit: gone)"])
        #expect(await alice.drain() == ["@account=bob@example.org;time=T :bob!bob@example.org QUIT :Quit: gone"])
        await bob.finish()
        await alice.finish()
    }

    @Test func nickChangesReachTheOtherNodeAndKeepOwnership() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let (alice, bob) = await TestClient.aliceAndBob(cluster, joining: "#a,#b")
        _ = await alice.drain()
        #expect(await bob.send("NICK robert") == [":bob!bob@example.org NICK robert"])
        // Shown once although alice shares two channels with him.
        #expect(await alice.drain() == [":bob!bob@example.org NICK robert"])
        #expect(await bob.drain() == [])
        #expect(await alice.send("NAMES #b") == [":irc.n1 353 alice = #b :@alice robert", ":irc.n1 366 alice #b :End of /NAMES list."])
        #expect(await alice.send("PRIVMSG robert :renamed?") == [])
        #expect(await bob.drain() == [":alice!alice@example.org PRIVMSG robert :renamed?"])
        #expect(await bob.send("PRIVMSG #a :as robert") == [])
        #expect(await alice.drain() == [":robert!bob@example.org PRIVMSG #a :as robert"])
        // Both nicks stay bob's account's: alice can take neither.
        #expect(await alice.send("NICK bob") == [":irc.n1 433 alice bob :Nickname is registered to another account"])
        #expect(await alice.send("NICK robert") == [":irc.n1 433 alice robert :Nickname is registered to another account"])
        #expect(await bob.send("PART #a") == [])
        #expect(await alice.drain() == [":robert!bob@example.org PART #a"])
        await alice.finish()
        await bob.finish()
    }

    @Test func awayNotifyTagmsgWhoAndPASS() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let alice = TestClient(cluster, node: "n1")
        _ = await alice.login(nick: "alice", account: "alice@example.org", caps: ["away-notify", "message-tags", "multi-prefix"])
        // bob logs in with PASS account:password, as clients without SASL do.
        let bob = TestClient(cluster, node: "n2")
        #expect(await bob.send("PASS bob@example.org:pw-bob@example.org") == [])
        #expect(await bob.send("NICK bob") == [])
        let welcome = await bob.send("USER bob 0 * :Bob B")
        #expect(welcome.first == ":irc.n2 900 bob bob!bob@example.org bob@example.org :You are now logged in as bob@example.org")
        #expect(welcome.dropFirst().first == ":irc.n2 001 bob :Welcome to the svcpkg IRC network bob!bob@example.org")
        _ = await alice.send("JOIN #x,#y")
        _ = await bob.send("JOIN #x,#y")
        _ = await alice.drain()

        #expect(await bob.send("AWAY :lunch") == [":irc.n2 306 bob :You have been marked as being away"])
        let away = await alice.drain()
        #expect(away == [":bob!bob@example.org AWAY :lunch"])
        let who = await alice.send("WHO #x")
        #expect(who == [
            ":irc.n1 352 alice #x alice example.org n1 alice H@ :0 alice",
            ":irc.n1 352 alice #x bob example.org n2 bob G :0 bob",
            ":irc.n1 315 alice #x :End of /WHO list.",
        ])
        #expect(await alice.send("WHOIS bob").contains(":irc.n1 301 alice bob :lunch"))
        #expect(await bob.send("AWAY") == [":irc.n2 305 bob :You are no longer marked as being away"])
        #expect(await alice.drain() == [":bob!bob@example.org AWAY"])

        // TAGMSG needs message-tags on both ends.
        let carol = TestClient(cluster, node: "n2")
        _ = await carol.login(nick: "carol", account: "carol@example.org", caps: ["message-tags"])
        _ = await carol.send("JOIN #x")
        _ = await alice.drain()
        #expect(await bob.drain() == [":carol!carol@example.org JOIN #x"])
        #expect(await alice.send("@+typing=active TAGMSG #x") == [])
        #expect(await alice.drain() == [])  // no echo-message
        #expect(await bob.drain() == [])
        let typing = await carol.drain()
        #expect(typing == ["@msgid=ID;+typing=active :alice!alice@example.org TAGMSG #x"])
        #expect(await bob.send("@+typing=active TAGMSG #x") == [])
        #expect(await carol.drain() == [])
        await carol.finish()

        let wrong = TestClient(cluster, node: "n1")
        _ = await wrong.send("PASS bob@example.org:nope")
        _ = await wrong.send("NICK bob2")
        #expect(await wrong.send("USER b 0 * :B") == [":irc.n1 464 bob2 :Password incorrect", "ERROR :Closing Link: bob2 (Bad password)"])
        await wrong.finish()
        await alice.finish()
        await bob.finish()
    }

    @Test func chathistoryLatestBeforeAfterAroundBetween() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let alice = TestClient(cluster, node: "n1")
        _ = await alice.login(nick: "alice", account: "alice@example.org", caps: ["server-time"])
        _ = await alice.send("JOIN #log")
        for number in 1...120 { _ = await alice.send("PRIVMSG #log :line \(number)") }
        let bob = TestClient(cluster, node: "n2")
        _ = await bob.login(nick: "bob", account: "bob@example.org", caps: Self.caps)
        _ = await bob.send("JOIN #log")
        let latest = await bob.send("CHATHISTORY LATEST #log * 100")
        #expect(latest.count == 102)
        #expect(latest.first == ":irc.n2 BATCH +h1 chathistory #log")
        #expect(latest[1] == "@batch=h1;account=alice@example.org;msgid=ID;time=T :alice!alice@example.org PRIVMSG #log :line 21")
        #expect(latest[100] == "@batch=h1;account=alice@example.org;msgid=ID;time=T :alice!alice@example.org PRIVMSG #log :line 120")
        #expect(latest.last == ":irc.n2 BATCH -h1")

        // The msgid of "line 50" is its sequence number in the log (JOIN was 1).
        let raw = try cluster.hub("n2").store.history(cluster.hub("n2").store.channelLog("#log"), query: .latest(.none), limit: 100)
        let line50 = try #require(raw.first { $0.text == "line 50" })
        let id = ChatStore.messageID(line50, log: "#log")
        let before = await bob.send("CHATHISTORY BEFORE #log msgid=\(id) 3")
        #expect(before.dropFirst().dropLast().map { $0.components(separatedBy: " :").last ?? "" } == ["line 47", "line 48", "line 49"])
        let after = await bob.send("CHATHISTORY AFTER #log msgid=\(id) 2")
        #expect(after.dropFirst().dropLast().map { $0.components(separatedBy: " :").last ?? "" } == ["line 51", "line 52"])
        let around = await bob.send("CHATHISTORY AROUND #log msgid=\(id) 4")
        #expect(around.dropFirst().dropLast().map { $0.components(separatedBy: " :").last ?? "" } == ["line 48", "line 49", "line 50", "line 51"])
        let line55 = try #require(raw.first { $0.text == "line 55" })
        let between = await bob.send("CHATHISTORY BETWEEN #log msgid=\(id) msgid=\(ChatStore.messageID(line55, log: "#log")) 10")
        #expect(between.dropFirst().dropLast().map { $0.components(separatedBy: " :").last ?? "" } == ["line 51", "line 52", "line 53", "line 54"])
        let timestamp = ServerTime.format(line50.time - 1)
        #expect(await bob.send("CHATHISTORY AFTER #log timestamp=\(timestamp) 1").count == 3)

        #expect(await bob.send("CHATHISTORY LATEST #nope * 10") == [":irc.n2 FAIL CHATHISTORY INVALID_TARGET LATEST #nope :You are not on that channel"])
        #expect(await bob.send("CHATHISTORY BEFORE #log * 10") == [":irc.n2 FAIL CHATHISTORY INVALID_PARAMS BEFORE :Invalid message reference"])
        #expect(await bob.send("CHATHISTORY LATEST #log") == [":irc.n2 FAIL CHATHISTORY NEED_MORE_PARAMS :Missing parameters"])
        await alice.finish()
        await bob.finish()
    }

    @Test func privateMessagesReachOnlyTheirParties() async throws {
        let cluster = try ChatCluster(nodes: ["n1", "n2"])
        defer { cluster.shutdown() }
        let alice = TestClient(cluster, node: "n1")
        let bob = TestClient(cluster, node: "n2")
        let carol = TestClient(cluster, node: "n2")
        _ = await alice.login(nick: "alice", account: "alice@example.org", caps: ["server-time", "draft/chathistory"])
        _ = await bob.login(nick: "bob", account: "bob@example.org", caps: ["server-time"])
        _ = await carol.login(nick: "carol", account: "carol@example.org", caps: ["server-time"])
        #expect(await alice.send("PRIVMSG bob :psst") == [])
        let psst = await bob.drain()
        #expect(psst == ["@time=T :alice!alice@example.org PRIVMSG bob :psst"])
        #expect(await carol.drain() == [])
        #expect(await alice.drain() == [])
        #expect(await bob.send("NOTICE alice :ok") == [])
        let ok = await alice.drain()
        #expect(ok == ["@time=T :bob!bob@example.org NOTICE alice :ok"])
        #expect(await carol.drain() == [])
        #expect(await alice.send("PRIVMSG nobody :hello?") == [":irc.n1 401 alice nobody :No such nick/channel"])
        #expect(await alice.send("NOTICE nobody :hello?") == [])
        let history = await alice.send("CHATHISTORY LATEST bob * 10")
        #expect(history == [
            "@time=T :alice!alice@example.org PRIVMSG bob :psst",
            "@time=T :bob!bob@example.org NOTICE alice :ok",
        ])
        #expect(await carol.send("CHATHISTORY LATEST bob * 10") == [])
        await alice.finish()
        await bob.finish()
        await carol.finish()
    }

    @Test func inviteOnlyBansAndLimits() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let (alice, bob) = await TestClient.aliceAndBob(cluster)
        _ = await alice.send("JOIN #priv")
        #expect(await alice.send("MODE #priv +i") == [])
        #expect(await bob.send("JOIN #priv") == [":irc.n2 473 bob #priv :Cannot join channel (+i)"])
        #expect(await alice.send("INVITE bob #priv") == [":irc.n1 341 alice bob #priv"])
        #expect(await bob.drain() == [":alice!alice@example.org INVITE bob #priv"])
        #expect(await bob.send("JOIN #priv").first == ":bob!bob@example.org JOIN #priv")
        #expect(await alice.send("MODE #priv +b bob") == [])
        #expect(await alice.send("MODE #priv b") == [":irc.n1 367 alice #priv bob!*@*", ":irc.n1 368 alice #priv :End of channel ban list"])
        #expect(await bob.send("PRIVMSG #priv :x") == [":irc.n2 404 bob #priv :Cannot send to channel (+b)"])
        #expect(await alice.send("MODE #priv -bi+l bob 1") == [])
        _ = await alice.drain()
        #expect(await alice.send("MODE #priv +x") == [":irc.n1 472 alice x :is unknown mode char to me for #priv"])
        #expect(await alice.send("MODE #priv +l") == [":irc.n1 461 alice MODE :Not enough parameters"])
        #expect(await alice.send("KICK #priv carol") == [":irc.n1 441 alice carol #priv :They aren't on that channel"])
        #expect(await alice.send("MODE alice +i") == [":irc.n1 221 alice +i"])
        #expect(await alice.send("MODE bob +i") == [":irc.n1 502 alice :Cant change mode for other users"])
        let list = await alice.send("LIST")
        #expect(list == [":irc.n1 321 alice Channel :Users  Name", ":irc.n1 322 alice #priv 2 :", ":irc.n1 323 alice :End of /LIST"])
        await alice.finish()
        await bob.finish()
    }

    @Test func hostileInputGetsNumerics() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let alice = TestClient(cluster, node: "n1") {
            $0.flood = FloodLimits(burst: 5, linesPerSecond: 1, ctcpBurst: 1, ctcpPerSecond: 0.1, maxRefused: 4)
        }
        _ = await alice.login(nick: "alice", account: "alice@example.org")
        #expect(await alice.send("PRIVMSG #c :" + String(repeating: "x", count: 600)) == [":irc.n1 417 alice :Input line was too long"])
        #expect(await alice.sendRaw(Array(repeating: UInt8(ascii: "A"), count: 20_000)) == [":irc.n1 417 alice :Input line was too long"])
        #expect(await alice.send("still part of the long line") == [])
        #expect(await alice.sendRaw(Array("PING \u{0}x\r\n".utf8)) == [":irc.n1 421 alice * :Malformed command"])
        #expect(await alice.send("FOO bar") == [":irc.n1 421 alice FOO :Unknown command"])
        #expect(await alice.send("PRIVMSG") == [":irc.n1 411 alice :No recipient given (PRIVMSG)"])
        #expect(await alice.send("JOIN bad") == [":irc.n1 403 alice bad :No such channel"])

        // Lines come 1 s apart on the test clock: one token back per line, so a burst of
        // lines in one read is what overflows the bucket.
        var flood: [UInt8] = []
        for _ in 0..<12 { flood += Array("PING x\r\n".utf8) }
        let answers = await alice.sendRaw(flood)
        #expect(answers.filter { $0.contains(" 263 ") }.count == 3)
        #expect(answers.suffix(2) == ["ERROR :Closing Link: alice (Excess Flood)"] || answers.last == "ERROR :Closing Link: alice (Excess Flood)")
        await alice.finish()
    }

    @Test func ctcpIsRateLimited() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let alice = TestClient(cluster, node: "n1") {
            $0.flood = FloodLimits(burst: 50, linesPerSecond: 10, ctcpBurst: 2, ctcpPerSecond: 0.01, maxRefused: 10)
        }
        let bob = TestClient(cluster, node: "n2")
        _ = await alice.login(nick: "alice", account: "alice@example.org")
        _ = await bob.login(nick: "bob", account: "bob@example.org")
        #expect(await alice.send("PRIVMSG bob :\u{1}VERSION\u{1}") == [])
        #expect(await alice.send("PRIVMSG bob :\u{1}VERSION\u{1}") == [])
        #expect(await alice.send("PRIVMSG bob :\u{1}VERSION\u{1}") == [":irc.n1 263 alice PRIVMSG :CTCP rate limit: please wait a while and try again"])
        #expect(await alice.send("PRIVMSG bob :\u{1}ACTION waves\u{1}") == [])
        #expect(await bob.drain().count == 3)
        await alice.finish()
        await bob.finish()
    }

    @Test func deadNodesMembersAreShownAsQuit() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let (alice, _) = await TestClient.aliceAndBob(cluster, joining: "#c")
        _ = await alice.drain()
        // n2 stops without a word: its heartbeat says "stopped" (a stale one counts the same).
        try HeartbeatStore.write(
            NodeHeartbeat(node: "n2", pid: getpid(), state: "stopped", version: "test", host: "localhost"), layout: SharedTreeLayout(root: cluster.root))
        let hub = cluster.hub("n1")
        await hub.refreshLiveness()
        await hub.reap()
        #expect(await alice.drain() == [":bob!bob@example.org QUIT :Connection lost (node down)"])
        #expect(try hub.store.nickRecord("bob")?.online == false)
        // Reaping again writes nothing more.
        await hub.reap()
        #expect(await alice.drain() == [])
        await alice.finish()
    }
}
