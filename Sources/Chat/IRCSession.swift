import Foundation

/// What the session asks its driver to do with the shared state (the `ChatHub`).
public enum ChatRequest: Sendable, Equatable {
    case register(ChatUser)
    /// A registered client's new nick.
    case nick(String)
    case join(channel: String, key: String?)
    case part(channel: String, reason: String?)
    /// PRIVMSG, NOTICE or TAGMSG to a channel (`#…`) or a nick.
    case post(ChatEvent.Kind, target: String, text: String?, tags: [String: String]?)
    /// nil text: show the topic.
    case topic(channel: String, text: String?)
    case names(channel: String)
    case modeQuery(channel: String)
    case banList(channel: String)
    case mode(channel: String, modeString: String, arguments: [String])
    case kick(channel: String, victim: String, reason: String)
    case invite(nick: String, channel: String)
    case list
    case who(mask: String)
    case whois(nick: String)
    case away(String?)
    case history(target: String, query: HistoryQuery, limit: Int)
    case quit(reason: String)
}

/// The driver's answer to a request.
public enum ChatReply: Sendable {
    case done
    case refused(IRCError)
    case joined(ChatEvent, ChannelState)
    /// The channel's state for TOPIC/NAMES/MODE/WHO queries (nil: no such channel).
    case channel(ChannelState?)
    case channels([ChannelState])
    /// WHOIS / WHO of a nick: its record and the channels it is in.
    case user(NickRecord?, channels: [String])
    case invited(nick: String, channel: String)
    case history([ChatEvent])
}

public enum IRCAction: Sendable, Equatable {
    case send(IRCMessage)
    case authenticate(user: String, password: String)
    case request(ChatRequest)
    case close
}

public enum AuthenticationResult: Sendable, Equatable {
    case ok(account: String)
    case invalid
    /// Too many failures from the address, or the directory could not answer.
    case temporarilyRefused
}

/// One IRC client connection as a pure state machine: lines and replies in, actions out.
/// Registration (CAP 302, SASL PLAIN, PASS, NICK, USER), capabilities, flood limits and
/// all formatting live here; the shared state lives behind `ChatRequest`s.
public struct IRCSession: Sendable {
    public struct Configuration: Sendable {
        public var serverName: String
        public var networkName = "svcpkg"
        public var version = "svcpkg"
        public var motd: [String] = []
        /// Unauthenticated clients may chat (with nicks no account owns).
        public var allowGuests = false
        /// Plaintext passwords (SASL PLAIN, PASS) allowed without TLS.
        public var allowPlaintextAuth = false
        public var tlsActive = false
        public var node: String
        public var pid: Int32
        public var flood = FloodLimits()
        public var maxChannels = 50
        /// Targets per PRIVMSG/NOTICE (TARGMAX).
        public var maxTargets = 4

        public init(serverName: String, node: String, pid: Int32) {
            self.serverName = serverName
            self.node = node
            self.pid = pid
        }
    }

    public static let supportedCaps: [String] = [
        "account-tag", "away-notify", "batch", "draft/chathistory", "echo-message", "message-tags", "multi-prefix", "sasl",
        "server-time",
    ]
    /// SASL's AUTHENTICATE payload is sent in 400-byte pieces; a PLAIN response is far smaller.
    static let maxSASLBytes = 2048

    enum Phase: Equatable { case registering, registered, closed }

    public let configuration: Configuration
    var phase = Phase.registering
    public private(set) var nick: String?
    var userName: String?
    var realName: String?
    var capNegotiating = false
    /// Waiting for the hub to grant the nick.
    var registrationPending = false
    public private(set) var caps: Set<String> = []
    public private(set) var account: String?
    var saslBuffer: String?
    var authenticating = false
    var passCredentials: (user: String, password: String)?
    /// Folded name → name of channels this connection is in.
    public private(set) var channels: [String: String] = [:]
    var away: String?
    var invisible = false
    var commands: TokenBucket
    var ctcp: TokenBucket
    var refusedInRow = 0
    /// Nick → time of a QUIT shown, so a user quitting several shared channels is shown once.
    var quitsShown: [String: Int64] = [:]
    /// Nick → away message last shown (away-notify), for the same reason.
    var awayShown: [String: String] = [:]
    /// `old>new` → time of a NICK shown, for the same reason.
    var nickChangesShown: [String: Int64] = [:]
    var batchCounter = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.commands = TokenBucket(capacity: configuration.flood.burst, ratePerSecond: configuration.flood.linesPerSecond)
        self.ctcp = TokenBucket(capacity: configuration.flood.ctcpBurst, ratePerSecond: configuration.flood.ctcpPerSecond)
    }

    /// A session whose account was established outside IRC: web chat, where the web-mail
    /// session cookie already names the account. No SASL or password is needed (and none is
    /// accepted); the client still registers with NICK and USER.
    public init(configuration: Configuration, authenticatedAs account: String) {
        self.init(configuration: configuration)
        self.account = account
    }

    public var isRegistered: Bool { phase == .registered }
    public var isClosed: Bool { phase == .closed }

    /// The user as logs record it, once the nick is known.
    public var user: ChatUser? {
        guard let nick else { return nil }
        let host = account.flatMap { $0.split(separator: "@").last.map(String.init) } ?? "guest.\(configuration.networkName)"
        // The account's local part for a logged-in user (not spoofable); `~` and the USER
        // name for a guest, as ident-less servers show it.
        let claimed = account.flatMap { $0.split(separator: "@").first.map(String.init) } ?? userName ?? nick
        var ident = IRCNames.truncate(claimed.filter { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }, to: 16)
        if ident.isEmpty { ident = "user" }
        if account == nil { ident = "~" + ident }
        return ChatUser(
            nick: nick, userHost: "\(ident)@\(host)", account: account, realName: realName ?? nick,
            node: configuration.node, pid: configuration.pid)
    }

    // MARK: Input

    /// A line that was longer than the framer allows.
    public mutating func lineTooLong() -> [IRCAction] {
        [numeric("417", [], "Input line was too long")]
    }

    /// A line that cannot be an IRC line (CR, LF or NUL inside a WebSocket message).
    public mutating func malformedLine() -> [IRCAction] {
        [numeric("421", ["*"], "Malformed command")]
    }

    /// One line from the client (without CR LF); `now` in milliseconds drives flood control.
    public mutating func receive(_ line: [UInt8], now: Int64) -> [IRCAction] {
        guard phase != .closed else { return [] }
        let message: IRCMessage
        do {
            message = try IRCMessage.parse(line)
        } catch {
            switch error {
            case .empty: return []
            case .tagsTooLong, .bodyTooLong: return [numeric("417", [], "Input line was too long")]
            case .tooManyParams: return [numeric("461", ["*"], "Too many parameters")]
            default: return [numeric("421", ["*"], "Malformed command")]
            }
        }
        if message.clientTagBytes > IRCLimits.maxClientTagBytes { return [numeric("417", [], "Input line was too long")] }
        if let refusal = floodCheck(message, now: now) { return refusal }
        return handle(message)
    }

    /// The bucket is charged for every command but PONG and QUIT once registered; CTCP
    /// requests also pay into their own bucket and are dropped quietly when it is empty.
    mutating func floodCheck(_ message: IRCMessage, now: Int64) -> [IRCAction]? {
        if message.command == "QUIT" || message.command == "PONG" { return nil }
        if !commands.take(now: now) {
            refusedInRow += 1
            if refusedInRow >= configuration.flood.maxRefused {
                phase = .closed
                return [.send(IRCMessage(command: "ERROR", params: ["Closing Link: \(nick ?? "*") (Excess Flood)"])), .close]
            }
            return [numeric("263", [message.command], "Flooding: please wait a while and try again")]
        }
        refusedInRow = 0
        if message.command == "PRIVMSG" || message.command == "NOTICE", let text = message.params.last, Self.isCTCPRequest(text) {
            if !ctcp.take(now: now) {
                return message.command == "PRIVMSG" ? [numeric("263", [message.command], "CTCP rate limit: please wait a while and try again")] : []
            }
        }
        return nil
    }

    /// CTCP other than ACTION (which is just text).
    static func isCTCPRequest(_ text: String) -> Bool {
        // Bytes, not Characters: \u{1} and a combining mark after it are one Character.
        text.utf8.first == 1 && !text.utf8.starts(with: "\u{1}ACTION".utf8)
    }

    mutating func handle(_ message: IRCMessage) -> [IRCAction] {
        let p = message.params
        switch message.command {
        case "CAP": return cap(p)
        case "AUTHENTICATE": return authenticate(p)
        case "PASS":
            guard phase == .registering else { return [numeric("462", [], "You may not reregister")] }
            guard let pass = p.first else { return [needMore("PASS")] }
            // `account:password` (as bouncers send it); a bare password needs the account in USER.
            if let colon = pass.firstIndex(of: ":") {
                passCredentials = (String(pass[..<colon]), String(pass[pass.index(after: colon)...]))
            } else {
                passCredentials = ("", pass)
            }
            return []
        case "NICK": return nickCommand(p)
        case "USER":
            guard phase == .registering, userName == nil else { return [numeric("462", [], "You may not reregister")] }
            guard p.count >= 4, !p[0].isEmpty else { return [needMore("USER")] }
            userName = p[0]
            realName = IRCNames.truncate(p[3], to: 100)
            return tryRegister()
        case "PING":
            guard let token = p.first else { return [numeric("409", [], "No origin specified")] }
            return [.send(IRCMessage(source: configuration.serverName, command: "PONG", params: [configuration.serverName, token]))]
        case "PONG": return []
        case "QUIT":
            let reason = p.first.map { "Quit: \(IRCNames.truncate($0, to: 200))" } ?? "Client Quit"
            let wasRegistered = phase == .registered
            phase = .closed
            let goodbye = IRCAction.send(IRCMessage(command: "ERROR", params: ["Closing Link: \(nick ?? "*") (\(reason))"]))
            return (wasRegistered ? [.request(.quit(reason: reason))] : []) + [goodbye, .close]
        default:
            guard phase == .registered else {
                return [numeric("451", [], "You have not registered")]
            }
            return registeredCommand(message)
        }
    }

    // MARK: Registration

    mutating func cap(_ p: [String]) -> [IRCAction] {
        guard let sub = p.first?.uppercased() else { return [needMore("CAP")] }
        let target = nick ?? "*"
        switch sub {
        case "LS":
            if phase == .registering { capNegotiating = true }
            let version = p.count > 1 ? Int(p[1]) ?? 0 : 0
            let list = Self.supportedCaps.map { $0 == "sasl" && version >= 302 ? "sasl=PLAIN" : $0 }.joined(separator: " ")
            return [.send(IRCMessage(source: configuration.serverName, command: "CAP", params: [target, "LS", list]))]
        case "LIST":
            return [.send(IRCMessage(source: configuration.serverName, command: "CAP", params: [target, "LIST", caps.sorted().joined(separator: " ")]))]
        case "REQ":
            if phase == .registering { capNegotiating = true }
            let requested = (p.count > 1 ? p[1] : "").split(separator: " ").map(String.init)
            let known = requested.allSatisfy { Self.supportedCaps.contains($0.hasPrefix("-") ? String($0.dropFirst()) : $0) }
            guard known, !requested.isEmpty else {
                return [.send(IRCMessage(source: configuration.serverName, command: "CAP", params: [target, "NAK", p.count > 1 ? p[1] : ""]))]
            }
            for cap in requested {
                if cap.hasPrefix("-") { caps.remove(String(cap.dropFirst())) } else { caps.insert(cap) }
            }
            return [.send(IRCMessage(source: configuration.serverName, command: "CAP", params: [target, "ACK", requested.joined(separator: " ")]))]
        case "END":
            guard phase == .registering else { return [] }
            capNegotiating = false
            return tryRegister()
        default:
            return [numeric("410", [sub], "Invalid CAP command")]
        }
    }

    mutating func authenticate(_ p: [String]) -> [IRCAction] {
        guard let argument = p.first else { return [needMore("AUTHENTICATE")] }
        if account != nil { return [numeric("907", [], "You have already authenticated using SASL")] }
        if authenticating { return [] }
        if argument == "*" {
            saslBuffer = nil
            return [numeric("906", [], "SASL authentication aborted")]
        }
        guard let buffer = saslBuffer else {
            guard argument.uppercased() == "PLAIN" else {
                return [numeric("908", ["PLAIN"], "are available SASL mechanisms"), numeric("904", [], "SASL authentication failed")]
            }
            guard configuration.tlsActive || configuration.allowPlaintextAuth else {
                return [numeric("904", [], "SASL authentication failed: PLAIN needs a TLS connection")]
            }
            saslBuffer = ""
            return [.send(IRCMessage(command: "AUTHENTICATE", params: ["+"]))]
        }
        // Pieces of 400 bytes; a shorter piece (or `+`) ends the response.
        let piece = argument == "+" ? "" : argument
        let joined = buffer + piece
        guard joined.utf8.count <= Self.maxSASLBytes else {
            saslBuffer = nil
            return [numeric("905", [], "SASL message too long")]
        }
        if piece.utf8.count == 400 {
            saslBuffer = joined
            return []
        }
        saslBuffer = nil
        guard let data = Data(base64Encoded: joined) else { return [numeric("904", [], "SASL authentication failed")] }
        // RFC 4616: authzid NUL authcid NUL passwd.
        let parts = Array(data).split(separator: 0, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return [numeric("904", [], "SASL authentication failed")] }
        let authzid = String(decoding: parts[0], as: UTF8.self)
        let user = String(decoding: parts[1], as: UTF8.self)
        let password = String(decoding: parts[2], as: UTF8.self)
        guard authzid.isEmpty || authzid == user, !user.isEmpty else { return [numeric("904", [], "SASL authentication failed")] }
        authenticating = true
        return [.authenticate(user: user, password: password)]
    }

    /// The answer to `.authenticate`.
    public mutating func authenticationFinished(_ result: AuthenticationResult) -> [IRCAction] {
        authenticating = false
        switch result {
        case .ok(let account):
            self.account = account
            let mask = user?.source ?? "*"
            var out = [numeric("900", [mask, account], "You are now logged in as \(account)")]
            if passCredentials == nil { out.append(numeric("903", [], "SASL authentication successful")) }
            passCredentials = nil
            return out + (registrationPending ? [] : tryRegister())
        case .invalid, .temporarilyRefused:
            let reason = result == .invalid ? "SASL authentication failed" : "SASL authentication failed: try again later"
            if passCredentials != nil {
                passCredentials = nil
                phase = .closed
                return [numeric("464", [], "Password incorrect"), .send(IRCMessage(command: "ERROR", params: ["Closing Link: \(nick ?? "*") (Bad password)"])), .close]
            }
            return [numeric("904", [], reason)]
        }
    }

    mutating func nickCommand(_ p: [String]) -> [IRCAction] {
        guard let wanted = p.first, !wanted.isEmpty else { return [numeric("431", [], "No nickname given")] }
        guard IRCNames.isValidNick(wanted) else { return [numeric("432", [wanted], "Erroneous nickname")] }
        if phase == .registered {
            if wanted == nick { return [] }
            return [.request(.nick(wanted))]
        }
        guard !registrationPending else { return [] }
        nick = wanted
        return tryRegister()
    }

    mutating func tryRegister() -> [IRCAction] {
        guard phase == .registering, !capNegotiating, !registrationPending, !authenticating, nick != nil, userName != nil else { return [] }
        if account == nil, let credentials = passCredentials {
            guard configuration.tlsActive || configuration.allowPlaintextAuth else {
                passCredentials = nil
                return [numeric("464", [], "Password incorrect: plaintext passwords need a TLS connection")]
            }
            authenticating = true
            return [.authenticate(user: credentials.user.isEmpty ? userName ?? "" : credentials.user, password: credentials.password)]
        }
        if account == nil && !configuration.allowGuests {
            phase = .closed
            return [
                .send(IRCMessage(source: configuration.serverName, command: "FAIL", params: ["*", "ACCOUNT_REQUIRED", "Log in with SASL PLAIN (your mail address and password)"])),
                numeric("904", [], "SASL authentication required"),
                .send(IRCMessage(command: "ERROR", params: ["Closing Link: \(nick ?? "*") (Authentication required)"])), .close,
            ]
        }
        guard let user else { return [] }
        registrationPending = true
        return [.request(.register(user))]
    }

    mutating func registered() -> [IRCAction] {
        registrationPending = false
        phase = .registered
        let me = nick ?? "*"
        var out: [IRCAction] = [
            numeric("001", [], "Welcome to the \(configuration.networkName) IRC network \(user?.source ?? me)"),
            numeric("002", [], "Your host is \(configuration.serverName), running version \(configuration.version)"),
            numeric("003", [], "This server was created for \(configuration.networkName)"),
            .send(IRCMessage(source: configuration.serverName, command: "004", params: [me, configuration.serverName, configuration.version, "i", "biklmnostv", "bklov"])),
        ]
        let tokens = [
            "AWAYLEN=\(IRCNames.maxAwayLength)", "CASEMAPPING=ascii", "CHANLIMIT=#:\(configuration.maxChannels)",
            "CHANMODES=b,k,l,imnt", "CHANNELLEN=\(IRCNames.maxChannelLength)", "CHANTYPES=#", "CHATHISTORY=\(ChatStore.maxHistory)",
            "KICKLEN=\(IRCNames.maxKickReasonLength)", "MODES=12", "MSGREFTYPES=msgid,timestamp", "NETWORK=\(configuration.networkName)",
            "NICKLEN=\(IRCNames.maxNickLength)", "PREFIX=(ov)@+", "TARGMAX=PRIVMSG:\(configuration.maxTargets),NOTICE:\(configuration.maxTargets),JOIN:,PART:",
            "TOPICLEN=\(IRCNames.maxTopicLength)",
        ]
        out.append(.send(IRCMessage(source: configuration.serverName, command: "005", params: [me] + tokens + ["are supported by this server"])))
        out += motd()
        return out
    }

    func motd() -> [IRCAction] {
        guard !configuration.motd.isEmpty else { return [numeric("422", [], "MOTD File is missing")] }
        return [numeric("375", [], "- \(configuration.serverName) Message of the day - ")]
            + configuration.motd.map { numeric("372", [], "- \($0)") } + [numeric("376", [], "End of /MOTD command.")]
    }

    // MARK: Registered commands

    mutating func registeredCommand(_ message: IRCMessage) -> [IRCAction] {
        let p = message.params
        switch message.command {
        case "JOIN":
            guard let list = p.first else { return [needMore("JOIN")] }
            if list == "0" { return channels.values.sorted().map { .request(.part(channel: $0, reason: "Left all channels")) } }
            let keys = p.count > 1 ? p[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
            var out: [IRCAction] = []
            for (index, name) in list.split(separator: ",").map(String.init).enumerated().prefix(configuration.maxChannels) {
                guard IRCNames.isValidChannel(name) else {
                    out.append(numeric("403", [name], "No such channel"))
                    continue
                }
                if channels[IRCNames.fold(name)] != nil { continue }
                guard channels.count < configuration.maxChannels else {
                    out.append(numeric("405", [name], "You have joined too many channels"))
                    continue
                }
                let key = index < keys.count && !keys[index].isEmpty ? keys[index] : nil
                out.append(.request(.join(channel: name, key: key)))
            }
            return out
        case "PART":
            guard let list = p.first else { return [needMore("PART")] }
            let reason = p.count > 1 ? IRCNames.truncate(p[1], to: 200) : nil
            return list.split(separator: ",").map(String.init).map { name in
                channels[IRCNames.fold(name)] == nil
                    ? (IRCNames.isValidChannel(name) ? numeric("442", [name], "You're not on that channel") : numeric("403", [name], "No such channel"))
                    : .request(.part(channel: name, reason: reason))
            }
        case "PRIVMSG", "NOTICE", "TAGMSG":
            return messageCommand(message)
        case "TOPIC":
            guard let name = p.first else { return [needMore("TOPIC")] }
            guard IRCNames.isValidChannel(name) else { return [numeric("403", [name], "No such channel")] }
            if p.count > 1 {
                guard channels[IRCNames.fold(name)] != nil else { return [numeric("442", [name], "You're not on that channel")] }
                return [.request(.topic(channel: name, text: p[1]))]
            }
            return [.request(.topic(channel: name, text: nil))]
        case "NAMES":
            guard let list = p.first else { return [numeric("366", ["*"], "End of /NAMES list.")] }
            return list.split(separator: ",").prefix(configuration.maxTargets).map { .request(.names(channel: String($0))) }
        case "LIST":
            return [.request(.list)]
        case "WHO":
            guard let mask = p.first else { return [numeric("315", ["*"], "End of /WHO list.")] }
            return [.request(.who(mask: mask))]
        case "WHOIS":
            guard let target = p.last, !target.isEmpty else { return [numeric("431", [], "No nickname given")] }
            return [.request(.whois(nick: String(target.split(separator: ",").first ?? "")))]
        case "MODE":
            return modeCommand(p)
        case "KICK":
            guard p.count >= 2 else { return [needMore("KICK")] }
            let reason = p.count > 2 ? p[2] : nick ?? ""
            return p[1].split(separator: ",").prefix(configuration.maxTargets).map {
                .request(.kick(channel: p[0], victim: String($0), reason: reason))
            }
        case "INVITE":
            guard p.count >= 2 else { return [needMore("INVITE")] }
            return [.request(.invite(nick: p[0], channel: p[1]))]
        case "AWAY":
            let text = p.first.flatMap { $0.isEmpty ? nil : IRCNames.truncate($0, to: IRCNames.maxAwayLength) }
            away = text
            return [.request(.away(text))]
        case "MOTD":
            return motd()
        case "CHATHISTORY":
            return chathistory(p)
        case "USERHOST", "ISON", "LUSERS", "VERSION", "TIME", "INFO", "ADMIN", "STATS", "LINKS", "KILL", "OPER", "WALLOPS", "USERS", "SETNAME":
            return [numeric("421", [message.command], "Unknown command")]
        default:
            return [numeric("421", [message.command], "Unknown command")]
        }
    }

    mutating func messageCommand(_ message: IRCMessage) -> [IRCAction] {
        let p = message.params
        let isNotice = message.command == "NOTICE"
        let kind: ChatEvent.Kind = message.command == "TAGMSG" ? .tagmsg : isNotice ? .notice : .privmsg
        guard let targets = p.first, !targets.isEmpty else {
            return isNotice ? [] : [numeric("411", [], "No recipient given (\(message.command))")]
        }
        let text: String? = kind == .tagmsg ? nil : p.count > 1 ? p[1] : nil
        if kind != .tagmsg && (text ?? "").isEmpty { return isNotice ? [] : [numeric("412", [], "No text to send")] }
        let clientTags = message.tags.filter(\.isClientOnly)
        if kind == .tagmsg && (clientTags.isEmpty || !caps.contains("message-tags")) { return [] }
        let tags: [String: String]? = caps.contains("message-tags") && !clientTags.isEmpty
            ? Dictionary(clientTags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }) : nil
        let list = targets.split(separator: ",").map(String.init)
        guard list.count <= configuration.maxTargets else {
            return [numeric("407", [targets], "Too many targets")]
        }
        return list.map { .request(.post(kind, target: $0, text: text, tags: tags)) }
    }

    mutating func modeCommand(_ p: [String]) -> [IRCAction] {
        guard let target = p.first else { return [needMore("MODE")] }
        if !IRCNames.isChannel(target) {
            guard IRCNames.fold(target) == IRCNames.fold(nick ?? "") else {
                return [numeric("502", [], "Cant change mode for other users")]
            }
            if p.count > 1 {
                var adding = true
                for letter in p[1] {
                    switch letter {
                    case "+": adding = true
                    case "-": adding = false
                    case "i": invisible = adding
                    default: return [numeric("501", [], "Unknown MODE flag")]
                    }
                }
            }
            return [numeric("221", [invisible ? "+i" : "+"], "").replacingTrailing()]
        }
        guard p.count > 1 else { return [.request(.modeQuery(channel: target))] }
        let modeString = p[1]
        let arguments = Array(p.dropFirst(2))
        // `+b` (or `b`) without a mask lists the bans.
        if modeString.trimmingCharacters(in: CharacterSet(charactersIn: "+")) == "b" && arguments.isEmpty {
            return [.request(.banList(channel: target))]
        }
        return [.request(.mode(channel: target, modeString: modeString, arguments: arguments))]
    }

    mutating func chathistory(_ p: [String]) -> [IRCAction] {
        guard p.count >= 3 else { return [fail("CHATHISTORY", "NEED_MORE_PARAMS", [], "Missing parameters")] }
        let sub = p[0].uppercased()
        let target = p[1]
        func reference(_ text: String) -> HistoryReference? { HistoryReference.parse(text) }
        func limit(_ text: String) -> Int? { Int(text).map { min(max($0, 0), ChatStore.maxHistory) } }
        let query: HistoryQuery
        let count: Int?
        switch sub {
        case "LATEST", "BEFORE", "AFTER", "AROUND":
            guard p.count >= 4, let ref = reference(p[2]) else {
                return [fail("CHATHISTORY", "INVALID_PARAMS", [sub], "Invalid message reference")]
            }
            if sub != "LATEST" && ref == .none { return [fail("CHATHISTORY", "INVALID_PARAMS", [sub], "Invalid message reference")] }
            query = sub == "LATEST" ? .latest(ref) : sub == "BEFORE" ? .before(ref) : sub == "AFTER" ? .after(ref) : .around(ref)
            count = limit(p[3])
        case "BETWEEN":
            guard p.count >= 5, let first = reference(p[2]), let second = reference(p[3]), first != .none, second != .none else {
                return [fail("CHATHISTORY", "INVALID_PARAMS", [sub], "Invalid message reference")]
            }
            query = .between(first, second)
            count = limit(p[4])
        case "TARGETS":
            return [fail("CHATHISTORY", "INVALID_PARAMS", [sub], "TARGETS is not supported")]
        default:
            return [fail("CHATHISTORY", "INVALID_PARAMS", [sub], "Unknown subcommand")]
        }
        guard let count else { return [fail("CHATHISTORY", "INVALID_PARAMS", [sub], "Invalid limit")] }
        if IRCNames.isChannel(target) {
            guard channels[IRCNames.fold(target)] != nil else {
                return [fail("CHATHISTORY", "INVALID_TARGET", [sub, target], "You are not on that channel")]
            }
        } else if !IRCNames.isValidNick(target) {
            return [fail("CHATHISTORY", "INVALID_TARGET", [sub, target], "Invalid target")]
        }
        return [.request(.history(target: target, query: query, limit: count))]
    }

    // MARK: Replies

    /// The driver's answer to a request this session made.
    public mutating func completed(_ request: ChatRequest, _ reply: ChatReply) -> [IRCAction] {
        if case .refused(let error) = reply {
            if case .register = request {
                registrationPending = false
                nick = nil
                return [.send(IRCMessage(source: configuration.serverName, command: error.code, params: ["*"] + error.params + [error.text]))]
            }
            // RFC 2812 §3.3.2: no automatic reply to a NOTICE.
            if case .post(.notice, _, _, _) = request { return [] }
            return [.send(IRCMessage(source: configuration.serverName, command: error.code, params: [nick ?? "*"] + error.params + [error.text]))]
        }
        switch (request, reply) {
        case (.register, .done):
            return registered()
        case (.nick(let new), .done):
            let old = user?.source ?? "*"
            nick = new
            return [.send(IRCMessage(source: old, command: "NICK", params: [new]))]
        case (.join, .joined(let event, let state)):
            channels[IRCNames.fold(state.name)] = state.name
            var out = [IRCAction.send(render(event, log: state.name, isChannel: true))]
            out += topicReply(state, silentWhenUnset: true)
            out += namesReply(state)
            return out
        case (.part(let channel, _), .done):
            channels[IRCNames.fold(channel)] = nil
            return []
        case (.quit, .done):
            return []
        case (.topic(let name, nil), .channel(let state)):
            guard let state else { return [numeric("403", [name], "No such channel")] }
            return topicReply(state, silentWhenUnset: false)
        case (.names(let name), .channel(let state)):
            guard let state, channels[IRCNames.fold(state.name)] != nil || !state.modes.inviteOnly else {
                return [numeric("366", [name], "End of /NAMES list.")]
            }
            return namesReply(state)
        case (.modeQuery(let name), .channel(let state)):
            guard let state else { return [numeric("403", [name], "No such channel")] }
            let isMember = state.member(nick ?? "") != nil
            return [
                .send(IRCMessage(source: configuration.serverName, command: "324", params: [nick ?? "*", state.name] + state.modes.modeString(showKey: isMember))),
                .send(IRCMessage(source: configuration.serverName, command: "329", params: [nick ?? "*", state.name, String(state.created / 1000)])),
            ]
        case (.banList(let name), .channel(let state)):
            guard let state else { return [numeric("403", [name], "No such channel")] }
            return state.bans.map { .send(IRCMessage(source: configuration.serverName, command: "367", params: [nick ?? "*", state.name, $0])) }
                + [numeric("368", [state.name], "End of channel ban list")]
        case (.who(let mask), .channel(let state)):
            return (state?.sortedMembers ?? []).map { whoReply($0, channel: state?.name ?? "*") } + [numeric("315", [mask], "End of /WHO list.")]
        case (.who(let mask), .user(let record, _)):
            guard let record, record.online else { return [numeric("315", [mask], "End of /WHO list.")] }
            let member = ChannelMember(
                nick: record.nick, source: "\(record.nick)!\(record.userHost)", account: record.account, node: record.node, pid: record.pid,
                op: false, voice: false, away: record.away)
            return [whoReply(member, channel: "*"), numeric("315", [mask], "End of /WHO list.")]
        case (.whois(let target), .user(let record, let channelNames)):
            return whoisReply(target, record: record, channels: channelNames)
        case (.list, .channels(let states)):
            var out = [numeric("321", ["Channel"], "Users  Name")]
            for state in states.sorted(by: { IRCNames.fold($0.name) < IRCNames.fold($1.name) }) where !state.members.isEmpty {
                out.append(.send(IRCMessage(
                    source: configuration.serverName, command: "322",
                    params: [nick ?? "*", state.name, String(state.members.count), state.topic ?? ""])))
            }
            return out + [numeric("323", [], "End of /LIST")]
        case (.invite, .invited(let invitee, let channel)):
            return [.send(IRCMessage(source: configuration.serverName, command: "341", params: [nick ?? "*", invitee, channel]))]
        case (.away(let text), .done):
            return text == nil ? [numeric("305", [], "You are no longer marked as being away")] : [numeric("306", [], "You have been marked as being away")]
        case (.history(let target, _, _), .history(let events)):
            return historyReply(target, events)
        default:
            return []
        }
    }

    func topicReply(_ state: ChannelState, silentWhenUnset: Bool) -> [IRCAction] {
        guard let topic = state.topic else { return silentWhenUnset ? [] : [numeric("331", [state.name], "No topic is set")] }
        var out = [IRCAction.send(IRCMessage(source: configuration.serverName, command: "332", params: [nick ?? "*", state.name, topic]))]
        if let setter = state.topicSetBy, let time = state.topicTime {
            out.append(.send(IRCMessage(source: configuration.serverName, command: "333", params: [nick ?? "*", state.name, setter, String(time / 1000)])))
        }
        return out
    }

    /// RPL_NAMREPLY lines kept under 512 bytes, then RPL_ENDOFNAMES.
    func namesReply(_ state: ChannelState) -> [IRCAction] {
        let multi = caps.contains("multi-prefix")
        let names = state.sortedMembers.map { $0.prefixes(multi: multi) + $0.nick }
        var out: [IRCAction] = []
        var line: [String] = []
        var length = 0
        let room = 400 - configuration.serverName.utf8.count - state.name.utf8.count
        for name in names {
            if length + name.utf8.count + 1 > room && !line.isEmpty {
                out.append(.send(IRCMessage(source: configuration.serverName, command: "353", params: [nick ?? "*", "=", state.name, line.joined(separator: " ")])))
                line = []
                length = 0
            }
            line.append(name)
            length += name.utf8.count + 1
        }
        if !line.isEmpty {
            out.append(.send(IRCMessage(source: configuration.serverName, command: "353", params: [nick ?? "*", "=", state.name, line.joined(separator: " ")])))
        }
        return out + [numeric("366", [state.name], "End of /NAMES list.")]
    }

    func whoReply(_ member: ChannelMember, channel: String) -> IRCAction {
        let parts = member.source.split(separator: "!", maxSplits: 1).last.map(String.init) ?? member.source
        let userHost = parts.split(separator: "@", maxSplits: 1).map(String.init)
        let flags = (member.away == nil ? "H" : "G") + member.prefixes(multi: caps.contains("multi-prefix"))
        return .send(IRCMessage(
            source: configuration.serverName, command: "352",
            params: [nick ?? "*", channel, userHost.first ?? "*", userHost.last ?? "*", member.node, member.nick, flags, "0 \(member.nick)"]))
    }

    func whoisReply(_ target: String, record: NickRecord?, channels names: [String]) -> [IRCAction] {
        guard let record, record.online else {
            return [numeric("401", [target], "No such nick/channel"), numeric("318", [target], "End of /WHOIS list.")]
        }
        let userHost = record.userHost.split(separator: "@", maxSplits: 1).map(String.init)
        var out: [IRCAction] = [
            .send(IRCMessage(
                source: configuration.serverName, command: "311",
                params: [nick ?? "*", record.nick, userHost.first ?? "*", userHost.last ?? "*", "*", record.realName]))
        ]
        if !names.isEmpty { out.append(numeric("319", [record.nick], names.joined(separator: " "))) }
        out.append(numeric("312", [record.nick, record.node], "svcpkg node"))
        if let away = record.away { out.append(numeric("301", [record.nick], away)) }
        if let account = record.account { out.append(numeric("330", [record.nick, account], "is logged in as")) }
        out.append(numeric("318", [record.nick], "End of /WHOIS list."))
        return out
    }

    mutating func historyReply(_ target: String, _ events: [ChatEvent]) -> [IRCAction] {
        let useBatch = caps.contains("batch")
        batchCounter += 1
        let reference = "h\(batchCounter)"
        var out: [IRCAction] = []
        if useBatch {
            out.append(.send(IRCMessage(source: configuration.serverName, command: "BATCH", params: ["+\(reference)", "chathistory", target])))
        }
        for event in events {
            var message = render(event, log: target, isChannel: IRCNames.isChannel(target))
            if useBatch { message.tags.insert(IRCTag("batch", reference), at: 0) }
            out.append(.send(message))
        }
        if useBatch { out.append(.send(IRCMessage(source: configuration.serverName, command: "BATCH", params: ["-\(reference)"]))) }
        return out
    }

    // MARK: Deliveries

    /// A line from a followed log. Own messages come back only with echo-message; a QUIT
    /// or AWAY seen in several shared channels is shown once.
    public mutating func deliver(_ delivery: ChatDelivery) -> [IRCAction] {
        guard phase == .registered, let me = nick else { return [] }
        let event = delivery.event
        let mine = IRCNames.fold(event.nick) == IRCNames.fold(me) && event.node == configuration.node && event.pid == configuration.pid
        let folded = IRCNames.fold(event.nick)
        switch event.kind {
        case .privmsg, .notice, .tagmsg:
            if event.kind == .tagmsg && !caps.contains("message-tags") { return [] }
            if mine && !caps.contains("echo-message") {
                // A message to oneself arrives once, as the recipient's copy.
                if delivery.isChannel || IRCNames.fold(event.target) != IRCNames.fold(me) { return [] }
            }
            if !delivery.isChannel && IRCNames.fold(event.nick) == IRCNames.fold(me) && IRCNames.fold(event.target) != IRCNames.fold(me) && !mine {
                return []
            }
        case .join:
            quitsShown[folded] = nil
            awayShown[folded] = nil
            if mine { return [] }  // the JOIN reply already showed it
        case .part, .kick:
            if mine && event.kind == .part || event.kind == .kick && IRCNames.fold(event.params?.first ?? "") == IRCNames.fold(me) {
                channels[IRCNames.fold(delivery.log)] = nil
            }
        case .quit:
            if let shown = quitsShown[folded], event.time - shown < 60_000 { return [] }
            quitsShown[folded] = event.time
            if quitsShown.count > 1000 { quitsShown.removeAll() }
            if mine { return [] }
        case .away:
            guard caps.contains("away-notify"), !mine else { return [] }
            if awayShown[folded] == (event.text ?? "") { return [] }
            awayShown[folded] = event.text ?? ""
            if awayShown.count > 1000 { awayShown.removeAll() }
        case .topic, .mode:
            break
        case .invite:
            break
        case .nick:
            let new = event.params?.first ?? ""
            // Our own change was shown when it was made; another user's once, whatever the
            // number of channels shared.
            if event.node == configuration.node && event.pid == configuration.pid && IRCNames.fold(new) == IRCNames.fold(me) { return [] }
            let key = folded + ">" + IRCNames.fold(new)
            if let shown = nickChangesShown[key], event.time - shown < 60_000 { return [] }
            nickChangesShown[key] = event.time
            if nickChangesShown.count > 1000 { nickChangesShown.removeAll() }
        }
        return [.send(render(event, log: delivery.log, isChannel: delivery.isChannel))]
    }

    /// A log line as this client sees it: the IRC command, and the tags its capabilities ask for.
    public func render(_ event: ChatEvent, log: String, isChannel: Bool) -> IRCMessage {
        var tags: [IRCTag] = []
        if caps.contains("account-tag"), let account = event.account { tags.append(IRCTag("account", account)) }
        if caps.contains("message-tags") {
            if event.isMessage || event.kind == .tagmsg { tags.append(IRCTag("msgid", ChatStore.messageID(event, log: log))) }
            for (key, value) in (event.tags ?? [:]).sorted(by: { $0.key < $1.key }) { tags.append(IRCTag(key, value)) }
        }
        if caps.contains("server-time") { tags.append(IRCTag("time", ServerTime.format(event.time))) }
        let me = nick ?? "*"
        let params: [String]
        let command: String
        switch event.kind {
        case .privmsg, .notice, .tagmsg:
            command = event.kind.rawValue.uppercased()
            let target = isChannel ? log : event.target
            params = event.kind == .tagmsg ? [target] : [target, event.text ?? ""]
        case .join:
            command = "JOIN"
            params = [log]
        case .part:
            command = "PART"
            params = [log] + (event.text.map { [$0] } ?? [])
        case .quit:
            command = "QUIT"
            params = [event.text ?? "Quit"]
        case .topic:
            command = "TOPIC"
            params = [log, event.text ?? ""]
        case .mode:
            command = "MODE"
            params = [log] + (event.params ?? [])
        case .kick:
            command = "KICK"
            params = [log, event.params?.first ?? "*", event.text ?? event.nick]
        case .away:
            command = "AWAY"
            params = event.text.map { [$0] } ?? []
        case .invite:
            command = "INVITE"
            params = [me, event.params?.first ?? "*"]
        case .nick:
            command = "NICK"
            params = [event.params?.first ?? "*"]
        }
        return IRCMessage(tags: tags, source: event.source, command: command, params: params)
    }

    // MARK: Helpers

    func numeric(_ code: String, _ params: [String], _ text: String) -> IRCAction {
        .send(IRCMessage(source: configuration.serverName, command: code, params: [nick ?? "*"] + params + [text]))
    }

    func needMore(_ command: String) -> IRCAction { numeric("461", [command], "Not enough parameters") }

    /// IRCv3 standard replies.
    func fail(_ command: String, _ code: String, _ context: [String], _ text: String) -> IRCAction {
        .send(IRCMessage(source: configuration.serverName, command: "FAIL", params: [command, code] + context + [text]))
    }
}

extension IRCAction {
    /// Drops an empty trailing parameter (RPL_UMODEIS has none).
    func replacingTrailing() -> IRCAction {
        guard case .send(var message) = self, message.params.last == "" else { return self }
        message.params.removeLast()
        return .send(message)
    }
}
