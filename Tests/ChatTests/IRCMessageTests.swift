import Testing

@testable import Chat

@Suite struct IRCMessageTests {
    struct ParseCase: Sendable, CustomStringConvertible {
        var line: String
        var tags: [IRCTag]
        var source: String?
        var command: String
        var params: [String]
        var description: String { line }
    }

    static let good: [ParseCase] = [
        ParseCase(line: "PING irc.example", tags: [], source: nil, command: "PING", params: ["irc.example"]),
        ParseCase(line: "privmsg #chan :hello world", tags: [], source: nil, command: "PRIVMSG", params: ["#chan", "hello world"]),
        ParseCase(line: ":nick!u@h PRIVMSG #c ::-)", tags: [], source: "nick!u@h", command: "PRIVMSG", params: ["#c", ":-)"]),
        ParseCase(line: "USER guest 0 * :Real Name", tags: [], source: nil, command: "USER", params: ["guest", "0", "*", "Real Name"]),
        ParseCase(line: "TOPIC #c :", tags: [], source: nil, command: "TOPIC", params: ["#c", ""]),
        ParseCase(line: "  NICK   bob  ", tags: [], source: nil, command: "NICK", params: ["bob"]),
        ParseCase(line: ":irc 001 bob :Welcome", tags: [], source: "irc", command: "001", params: ["bob", "Welcome"]),
        ParseCase(
            line: "@+typing=active;time=2026-01-01T00:00:00.000Z TAGMSG #c", tags: [IRCTag("+typing", "active"), IRCTag("time", "2026-01-01T00:00:00.000Z")],
            source: nil, command: "TAGMSG", params: ["#c"]),
        ParseCase(
            line: "@a=b\\sc\\:d\\\\e\\rf\\ng\\x;flag PRIVMSG x y", tags: [IRCTag("a", "b c;d\\e\rf\ngx"), IRCTag("flag", "")],
            source: nil, command: "PRIVMSG", params: ["x", "y"]),
        ParseCase(line: "@k=1;k=2 PING t", tags: [IRCTag("k", "2")], source: nil, command: "PING", params: ["t"]),
        ParseCase(line: "@example.com/key=v PING t", tags: [IRCTag("example.com/key", "v")], source: nil, command: "PING", params: ["t"]),
        ParseCase(line: "@trail=\\ PING t", tags: [IRCTag("trail", "")], source: nil, command: "PING", params: ["t"]),
        ParseCase(
            line: "MODE #c +ovl a b 10", tags: [], source: nil, command: "MODE", params: ["#c", "+ovl", "a", "b", "10"]),
    ]

    @Test(arguments: good)
    func parses(_ item: ParseCase) throws {
        let message = try IRCMessage.parse(Array(item.line.utf8))
        #expect(message.tags == item.tags)
        #expect(message.source == item.source)
        #expect(message.command == item.command)
        #expect(message.params == item.params)
    }

    struct BadCase: Sendable, CustomStringConvertible {
        var line: [UInt8]
        var error: IRCParseError
        var description: String { "\(error) \(line.count) bytes" }
    }

    static let bad: [BadCase] = [
        BadCase(line: [], error: .empty),
        BadCase(line: Array("   ".utf8), error: .empty),
        BadCase(line: Array("PRIVMSG #c :a\0b".utf8), error: .forbiddenByte),
        BadCase(line: Array("PRIVMSG #c :a\rb".utf8), error: .forbiddenByte),
        BadCase(line: Array(":src".utf8), error: .noCommand),
        BadCase(line: Array(": PING".utf8), error: .noCommand),
        BadCase(line: Array("PR1VMSG x".utf8), error: .malformedCommand),
        BadCase(line: Array("12 x".utf8), error: .malformedCommand),
        BadCase(line: Array("@=v PING".utf8), error: .malformedTags),
        BadCase(line: Array("@a=b;bad!key PING".utf8), error: .malformedTags),
        BadCase(line: Array("@vendor.com/ PING".utf8), error: .malformedTags),
        BadCase(line: Array(("CMD" + String(repeating: " p", count: 16)).utf8), error: .tooManyParams),
        BadCase(line: Array(("PRIVMSG #c :" + String(repeating: "x", count: 499)).utf8), error: .bodyTooLong),
        BadCase(line: Array(("@a=" + String(repeating: "v", count: 8188) + " PING").utf8), error: .tagsTooLong),
    ]

    @Test(arguments: bad)
    func refuses(_ item: BadCase) {
        #expect(throws: item.error) { try IRCMessage.parse(item.line) }
    }

    @Test func limitsAreInclusive() throws {
        // 510 octets of body and 8191 of tag section (with `@` and the space) are allowed.
        let body = "PRIVMSG #c :" + String(repeating: "x", count: 498)
        #expect(body.utf8.count == 510)
        _ = try IRCMessage.parse(Array(body.utf8))
        let tags = "@a=" + String(repeating: "v", count: 8187) + " "
        #expect(tags.utf8.count == 8191)
        _ = try IRCMessage.parse(Array((tags + "PING x").utf8))
        let fifteen = "CMD" + String(repeating: " p", count: 15)
        #expect(try IRCMessage.parse(Array(fifteen.utf8)).params.count == 15)
    }

    struct EncodeCase: Sendable, CustomStringConvertible {
        var message: IRCMessage
        var wire: String
        var description: String { wire }
    }

    static let encodings: [EncodeCase] = [
        EncodeCase(message: IRCMessage(command: "PING", params: ["x"]), wire: "PING x\r\n"),
        EncodeCase(message: IRCMessage(source: "s", command: "PRIVMSG", params: ["#c", "hi there"]), wire: ":s PRIVMSG #c :hi there\r\n"),
        EncodeCase(message: IRCMessage(command: "TOPIC", params: ["#c", ""]), wire: "TOPIC #c :\r\n"),
        EncodeCase(message: IRCMessage(command: "PRIVMSG", params: ["#c", ":)"]), wire: "PRIVMSG #c ::)\r\n"),
        EncodeCase(
            message: IRCMessage(tags: [IRCTag("time", "T"), IRCTag("x", "a b;c\\")], command: "AWAY"),
            wire: "@time=T;x=a\\sb\\:c\\\\ AWAY\r\n"),
    ]

    @Test(arguments: encodings)
    func encodes(_ item: EncodeCase) throws {
        #expect(item.message.encoded() == item.wire)
        let back = try IRCMessage.parse(Array(item.wire.utf8.dropLast(2)))
        #expect(back == item.message)
    }

    /// Found by the fuzzer: a space (or colon) followed by a combining mark is one Swift
    /// Character, so a Character test missed it and the parameter split on the wire.
    @Test func combiningMarksDoNotSplitParameters() throws {
        let message = IRCMessage(command: "MODE", params: ["#t", "+k", "a \u{0356}b"])
        #expect(try IRCMessage.parse(Array(message.encoded().utf8.dropLast(2))) == message)
        let colon = IRCMessage(command: "X", params: [":\u{0356}"])
        #expect(try IRCMessage.parse(Array(colon.encoded().utf8.dropLast(2))) == colon)
        let crash: [UInt8] = Array("MODE b a #t :omae+glk-\"#am".utf8) + [0xAF] + Array("m: ".utf8) + [0xCD, 0x96, 0xC3, 0xC3, 0xFF, 0x01]
        let parsed = try IRCMessage.parse(crash)
        #expect(try IRCMessage.parse(Array(parsed.encoded().utf8.dropLast(2))) == parsed)
        #expect(IRCSession.isCTCPRequest("\u{1}\u{0356}VERSION\u{1}"))
        #expect(!IRCSession.isCTCPRequest("\u{1}ACTION waves\u{1}"))
    }

    @Test func serverTimeRoundTrips() {
        let millis: Int64 = 1_796_620_200_123
        let text = ServerTime.format(millis)
        #expect(text == "2026-12-07T05:10:00.123Z")
        #expect(ServerTime.parse(text) == millis)
        #expect(ServerTime.parse("2026-12-07T05:10:00Z") == 1_796_620_200_000)
        #expect(ServerTime.parse("2026-12-07T05:10:00.1Z") == 1_796_620_200_100)
        #expect(ServerTime.parse("2026-13-07T05:10:00Z") == nil)
        #expect(ServerTime.parse("yesterday") == nil)
        #expect(ServerTime.day(millis) == "2026-12-07")
    }

    struct NameCase: Sendable, CustomStringConvertible {
        var name: String
        var nick: Bool
        var channel: Bool
        var description: String { name }
    }

    static let names: [NameCase] = [
        NameCase(name: "alice", nick: true, channel: false),
        NameCase(name: "[bot]_1-x", nick: true, channel: false),
        NameCase(name: "1alice", nick: false, channel: false),
        NameCase(name: "a b", nick: false, channel: false),
        NameCase(name: "#chat", nick: false, channel: true),
        NameCase(name: "#a,b", nick: false, channel: false),
        NameCase(name: "#", nick: false, channel: false),
        NameCase(name: "#ünïcode", nick: false, channel: true),
        NameCase(name: String(repeating: "n", count: 31), nick: false, channel: false),
    ]

    @Test(arguments: names)
    func nameRules(_ item: NameCase) {
        #expect(IRCNames.isValidNick(item.name) == item.nick)
        #expect(IRCNames.isValidChannel(item.name) == item.channel)
    }

    @Test func globMatchesBanMasks() {
        #expect(Glob.matches("*!*@example.org", "bob!bob@example.org"))
        #expect(Glob.matches("b?b!*@*", "bob!x@y"))
        #expect(!Glob.matches("*!*@example.org", "bob!bob@example.com"))
        #expect(Glob.normalizeMask("bob") == "bob!*@*")
        #expect(Glob.normalizeMask("u@h") == "*!u@h")
        // A pathological mask costs at most length × length steps.
        #expect(!Glob.matches(String(repeating: "*a", count: 50) + "b", String(repeating: "a", count: 400)))
    }
}
