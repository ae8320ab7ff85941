/// A refusal as an IRC numeric: `:<server> <code> <nick> <params…> :<text>`.
public struct IRCError: Error, Sendable, Equatable {
    public var code: String
    public var params: [String]
    public var text: String

    public init(_ code: String, _ params: [String], _ text: String) {
        self.code = code
        self.params = params
        self.text = text
    }

    static func noSuchChannel(_ name: String) -> IRCError { IRCError("403", [name], "No such channel") }
    static func notOnChannel(_ name: String) -> IRCError { IRCError("442", [name], "You're not on that channel") }
    static func notOperator(_ name: String) -> IRCError { IRCError("482", [name], "You're not channel operator") }
    static func noSuchNick(_ name: String) -> IRCError { IRCError("401", [name], "No such nick/channel") }
    static func needMoreParams(_ command: String) -> IRCError { IRCError("461", [command], "Not enough parameters") }
}

/// A channel member as the channel's state records it.
public struct ChannelMember: Codable, Sendable, Equatable {
    public var nick: String
    public var source: String
    public var account: String?
    public var node: String
    public var pid: Int32
    public var op: Bool
    public var voice: Bool
    /// Away message, when away (for WHO's H/G flag and away-notify on join).
    public var away: String?

    /// RFC 2812 prefixes, highest first (`multi-prefix` shows both).
    public func prefixes(multi: Bool) -> String {
        let all = (op ? "@" : "") + (voice ? "+" : "")
        return multi ? all : String(all.prefix(1))
    }
}

public struct ChannelModes: Codable, Sendable, Equatable {
    public var inviteOnly = false
    public var moderated = false
    public var noExternal = true
    public var topicLocked = true
    public var key: String?
    public var limit: Int?

    /// `+ntk key` style, with the key shown only to members.
    public func modeString(showKey: Bool) -> [String] {
        var letters = "+"
        var args: [String] = []
        if inviteOnly { letters += "i" }
        if let key {
            letters += "k"
            args.append(showKey ? key : "*")
        }
        if let limit {
            letters += "l"
            args.append(String(limit))
        }
        if moderated { letters += "m" }
        if noExternal { letters += "n" }
        if topicLocked { letters += "t" }
        return [letters] + args
    }
}

/// One change asked for by MODE: `+o bob`, `-k`, `+l 10`, `+b *!*@host`.
public struct ModeChange: Sendable, Equatable {
    public var adding: Bool
    public var mode: Character
    public var argument: String?
}

/// Everything known about a channel, rebuilt by applying its log in order. Pure: the
/// checks below decide whether an action is allowed; the store applies it under the lock.
public struct ChannelState: Codable, Sendable, Equatable {
    public static let maxBans = 100
    public static let maxInvites = 100
    public static let maxMembers = 5000

    public var name: String
    public var created: Int64
    public var topic: String?
    public var topicSetBy: String?
    public var topicTime: Int64?
    public var modes = ChannelModes()
    public var bans: [String] = []
    /// Folded nicks invited since the last join (RFC 2812 §3.2.7).
    public var invites: [String] = []
    /// Folded nick → member.
    public var members: [String: ChannelMember] = [:]

    public init(name: String, created: Int64) {
        self.name = name
        self.created = created
    }

    public func member(_ nick: String) -> ChannelMember? { members[IRCNames.fold(nick)] }

    /// Members sorted by nick, for NAMES and WHO.
    public var sortedMembers: [ChannelMember] { members.values.sorted { IRCNames.fold($0.nick) < IRCNames.fold($1.nick) } }

    public func isBanned(_ source: String) -> Bool {
        let folded = IRCNames.fold(source)
        return bans.contains { Glob.matches(IRCNames.fold($0), folded) }
    }

    public func checkJoin(nick: String, source: String, key: String?) -> IRCError? {
        if member(nick) != nil { return nil }
        let invited = invites.contains(IRCNames.fold(nick))
        if isBanned(source) && !invited { return IRCError("474", [name], "Cannot join channel (+b)") }
        if modes.inviteOnly && !invited { return IRCError("473", [name], "Cannot join channel (+i)") }
        if let required = modes.key, key != required { return IRCError("475", [name], "Cannot join channel (+k)") }
        if let limit = modes.limit, members.count >= limit { return IRCError("471", [name], "Cannot join channel (+l)") }
        if members.count >= Self.maxMembers { return IRCError("471", [name], "Cannot join channel (channel is full)") }
        return nil
    }

    /// RFC 2812 §3.3.1: +n keeps outsiders out, +m lets only voiced and operators speak, a
    /// banned member is silenced unless voiced or operator.
    public func checkSend(nick: String, source: String) -> IRCError? {
        let sender = member(nick)
        if sender == nil && modes.noExternal { return IRCError("404", [name], "Cannot send to channel (no external messages)") }
        let privileged = sender.map { $0.op || $0.voice } ?? false
        if modes.moderated && !privileged { return IRCError("404", [name], "Cannot send to channel (+m)") }
        if isBanned(source) && !privileged { return IRCError("404", [name], "Cannot send to channel (+b)") }
        return nil
    }

    public func checkTopic(nick: String) -> IRCError? {
        guard let sender = member(nick) else { return .notOnChannel(name) }
        if modes.topicLocked && !sender.op { return .notOperator(name) }
        return nil
    }

    public func checkKick(nick: String, victim: String) -> IRCError? {
        guard let sender = member(nick) else { return .notOnChannel(name) }
        guard sender.op else { return .notOperator(name) }
        guard member(victim) != nil else { return IRCError("441", [victim, name], "They aren't on that channel") }
        return nil
    }

    public func checkInvite(nick: String, invitee: String) -> IRCError? {
        guard let sender = member(nick) else { return .notOnChannel(name) }
        if member(invitee) != nil { return IRCError("443", [invitee, name], "is already on channel") }
        if modes.inviteOnly && !sender.op { return .notOperator(name) }
        return nil
    }

    /// Parses `MODE #chan <modestring> <args…>` into the changes that would alter the
    /// state, after checking the sender may make them. List queries (`+b` without a mask)
    /// are not changes: the caller answers them from the state.
    public func checkModes(nick: String, modeString: String, arguments: [String]) -> Result<[ModeChange], IRCError> {
        guard let sender = member(nick) else { return .failure(.notOnChannel(name)) }
        guard sender.op else { return .failure(.notOperator(name)) }
        var adding = true
        var arguments = arguments[...]
        var changes: [ModeChange] = []
        for letter in modeString {
            switch letter {
            case "+": adding = true
            case "-": adding = false
            case "i", "m", "n", "t":
                changes.append(ModeChange(adding: adding, mode: letter))
            case "k":
                if adding {
                    guard let key = arguments.popFirst(), !key.isEmpty, key.utf8.count <= IRCNames.maxKeyLength,
                        !key.utf8.contains(where: { $0 <= 0x20 || $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: ":") })
                    else { return .failure(IRCError("525", [name], "Key is not well-formed")) }
                    changes.append(ModeChange(adding: true, mode: "k", argument: key))
                } else {
                    _ = arguments.popFirst()  // RFC 2812: -k takes the key, which is not checked
                    changes.append(ModeChange(adding: false, mode: "k"))
                }
            case "l":
                if adding {
                    guard let text = arguments.popFirst() else { return .failure(.needMoreParams("MODE")) }
                    guard let limit = Int(text), limit > 0, limit <= Self.maxMembers else {
                        return .failure(IRCError("696", [name, "l", text], "Invalid limit"))
                    }
                    changes.append(ModeChange(adding: true, mode: "l", argument: String(limit)))
                } else {
                    changes.append(ModeChange(adding: false, mode: "l"))
                }
            case "o", "v":
                guard let target = arguments.popFirst() else { return .failure(.needMoreParams("MODE")) }
                guard let member = member(target) else {
                    return .failure(IRCError("441", [target, name], "They aren't on that channel"))
                }
                changes.append(ModeChange(adding: adding, mode: letter, argument: member.nick))
            case "b":
                guard let mask = arguments.popFirst() else { continue }  // a list query
                let normalized = Glob.normalizeMask(mask)
                if adding && bans.count >= Self.maxBans { return .failure(IRCError("478", [name, normalized], "Channel ban list is full")) }
                changes.append(ModeChange(adding: adding, mode: "b", argument: normalized))
            default:
                return .failure(IRCError("472", [String(letter)], "is unknown mode char to me for \(name)"))
            }
            if changes.count > 12 { break }
        }
        return .success(changes)
    }

    /// The wire form of applied changes: one mode string then the arguments.
    public static func modeParams(_ changes: [ModeChange]) -> [String] {
        var letters = ""
        var sign: Bool?
        var args: [String] = []
        for change in changes {
            if sign != change.adding {
                letters += change.adding ? "+" : "-"
                sign = change.adding
            }
            letters.append(change.mode)
            if let argument = change.argument { args.append(argument) }
        }
        return [letters] + args
    }

    /// Reads back `modeParams`.
    public static func parseModeParams(_ params: [String]) -> [ModeChange] {
        guard let letters = params.first else { return [] }
        var arguments = params.dropFirst()
        var adding = true
        var changes: [ModeChange] = []
        for letter in letters {
            switch letter {
            case "+": adding = true
            case "-": adding = false
            case "k" where adding, "l" where adding, "o", "v", "b":
                changes.append(ModeChange(adding: adding, mode: letter, argument: arguments.popFirst()))
            default:
                changes.append(ModeChange(adding: adding, mode: letter))
            }
        }
        return changes
    }

    /// Applies one log line. Unknown or stale lines (a PART of someone not present) change
    /// nothing, so replaying a log is always safe.
    public mutating func apply(_ event: ChatEvent) {
        let folded = IRCNames.fold(event.nick)
        switch event.kind {
        case .join:
            members[folded] = ChannelMember(
                nick: event.nick, source: event.source, account: event.account, node: event.node, pid: event.pid,
                op: members.isEmpty, voice: false)
            invites.removeAll { $0 == folded }
        case .part, .quit:
            members[folded] = nil
        case .nick:
            guard let new = event.params?.first, var member = members.removeValue(forKey: folded) else { return }
            member.nick = new
            member.source = new + String(member.source.drop { $0 != "!" })
            members[IRCNames.fold(new)] = member
            invites.removeAll { $0 == folded }
        case .kick:
            if let victim = event.params?.first { members[IRCNames.fold(victim)] = nil }
        case .topic:
            topic = event.text.flatMap { $0.isEmpty ? nil : $0 }
            topicSetBy = event.source
            topicTime = event.time
        case .away:
            members[folded]?.away = event.text
        case .mode:
            for change in Self.parseModeParams(event.params ?? []) { apply(change) }
        case .privmsg, .notice, .tagmsg, .invite:
            break
        }
    }

    mutating func apply(_ change: ModeChange) {
        switch change.mode {
        case "i": modes.inviteOnly = change.adding
        case "m": modes.moderated = change.adding
        case "n": modes.noExternal = change.adding
        case "t": modes.topicLocked = change.adding
        case "k": modes.key = change.adding ? change.argument : nil
        case "l": modes.limit = change.adding ? change.argument.flatMap { Int($0) } : nil
        case "o":
            if let nick = change.argument { members[IRCNames.fold(nick)]?.op = change.adding }
        case "v":
            if let nick = change.argument { members[IRCNames.fold(nick)]?.voice = change.adding }
        case "b":
            guard let mask = change.argument else { return }
            bans.removeAll { IRCNames.fold($0) == IRCNames.fold(mask) }
            if change.adding { bans.append(mask) }
        default: break
        }
    }

    /// Records an invitation (not a log line: invitations are between two users).
    public mutating func invite(_ nick: String) {
        let folded = IRCNames.fold(nick)
        guard !invites.contains(folded) else { return }
        if invites.count >= Self.maxInvites { invites.removeFirst() }
        invites.append(folded)
    }
}

/// `*` and `?` wildcard matching for ban masks (RFC 2812 §2.5), iterative so that no mask
/// can cost more than length × length steps.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8)
        let t = Array(text.utf8)
        var pi = 0
        var ti = 0
        var star = -1
        var mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
                pi += 1
                ti += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// `nick` → `nick!*@*`, `user@host` → `*!user@host`, as servers normalise ban masks.
    public static func normalizeMask(_ mask: String) -> String {
        let cut = IRCNames.truncate(mask, to: 100)
        if cut.contains("!") { return cut.contains("@") ? cut : cut + "@*" }
        if cut.contains("@") { return "*!" + cut }
        return cut + "!*@*"
    }
}
