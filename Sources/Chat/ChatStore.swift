import Foundation
import SharedTree

/// A connected user as the logs record them.
public struct ChatUser: Sendable, Equatable {
    public var nick: String
    /// `user@host` part of the source; `source` is `nick!user@host`.
    public var userHost: String
    public var account: String?
    public var realName: String
    public var node: String
    public var pid: Int32

    public init(nick: String, userHost: String, account: String?, realName: String, node: String, pid: Int32) {
        self.nick = nick
        self.userHost = userHost
        self.account = account
        self.realName = realName
        self.node = node
        self.pid = pid
    }

    public var source: String { "\(nick)!\(userHost)" }

    func event(_ kind: ChatEvent.Kind, target: String, text: String? = nil, params: [String]? = nil, tags: [String: String]? = nil) -> ChatEvent {
        ChatEvent(
            time: 0, kind: kind, nick: nick, source: source, account: account, node: node, pid: pid, target: target, text: text,
            params: params, tags: tags)
    }
}

/// Who owns a nick (the first account to use it) and whether, and where, it is online.
/// `<chat>/nicks/<hex of folded nick>.json`, changed under the `nicks` lock.
public struct NickRecord: Codable, Sendable, Equatable {
    public var nick: String
    public var account: String?
    public var online: Bool
    public var userHost: String
    public var realName: String
    public var node: String
    public var pid: Int32
    public var away: String?
    public var since: Int64
}

/// IRCv3 chathistory selectors.
public enum HistoryReference: Sendable, Equatable {
    case timestamp(Int64)
    case seq(UInt64)
    /// `*`: no bound.
    case none

    /// `timestamp=…`, `msgid=…` or `*`; nil when malformed.
    public static func parse(_ text: String) -> HistoryReference? {
        if text == "*" { return HistoryReference.none }
        if text.hasPrefix("timestamp=") { return ServerTime.parse(String(text.dropFirst(10))).map { .timestamp($0) } }
        if text.hasPrefix("msgid=") { return ChatStore.seq(fromMessageID: String(text.dropFirst(6))).map { .seq($0) } }
        return nil
    }

    /// Whether `event` comes after this reference (false for `.none`).
    func isBefore(_ event: ChatEvent) -> Bool {
        switch self {
        case .timestamp(let time): return event.time > time
        case .seq(let seq): return event.seq > seq
        case .none: return false
        }
    }

    func isAfter(_ event: ChatEvent) -> Bool {
        switch self {
        case .timestamp(let time): return event.time < time
        case .seq(let seq): return event.seq < seq
        case .none: return false
        }
    }
}

public enum HistoryQuery: Sendable, Equatable {
    case latest(HistoryReference)
    case before(HistoryReference)
    case after(HistoryReference)
    case around(HistoryReference)
    case between(HistoryReference, HistoryReference)
}

/// The chat part of the shared tree, `<root>/chat/`:
///
///     channels/<hex of folded name>/   a channel's log (ChatLog) with its state
///     users/<hex of folded nick>/      a user's private-message log (both directions)
///     nicks/<hex of folded nick>.json  who owns a nick and where it is online
///
/// Every method blocks on the file server: call them on a thread pool.
public struct ChatStore: Sendable {
    public static let maxHistory = 100
    /// Day files one history query may open.
    public static let maxHistoryFiles = 366
    public static let maxNickRecordBytes = 64 * 1024

    public let root: String
    public let node: String
    public let lockOptions: LockOptions

    public init(root: String, node: String, lockOptions: LockOptions) {
        self.root = root
        self.node = node
        self.lockOptions = lockOptions
    }

    var channelsDirectory: String { root + "/channels" }
    var usersDirectory: String { root + "/users" }
    var nicksDirectory: String { root + "/nicks" }

    public func channelLog(_ name: String) -> ChatLog {
        ChatLog(directory: channelsDirectory + "/" + IRCNames.fileName(name), node: node, lockOptions: lockOptions)
    }

    public func inboxLog(_ nick: String) -> ChatLog {
        ChatLog(directory: usersDirectory + "/" + IRCNames.fileName(nick), node: node, lockOptions: lockOptions)
    }

    /// A message ID: the line's sequence number in its log, then a tag of the log so IDs
    /// from different logs differ.
    public static func messageID(_ event: ChatEvent, log: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in IRCNames.fold(log).utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return "\(event.seq)-\(String(hash, radix: 36))"
    }

    static func seq(fromMessageID id: String) -> UInt64? {
        id.split(separator: "-").first.flatMap { UInt64($0) }
    }

    // MARK: Channels

    public enum JoinOutcome: Sendable {
        case joined(ChatEvent, ChatLogState)
        /// Already a member: nothing written.
        case already(ChatLogState)
    }

    public func join(_ channel: String, key: String?, user: ChatUser) throws(ChatStoreError) -> JoinOutcome {
        let log = channelLog(channel)
        var wasMember = false
        let (events, state) = try log.append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
            var current = state.channel ?? ChannelState(name: channel, created: ServerTime.nowMilliseconds())
            if let member = current.member(user.nick) {
                // A stale entry of this nick from an earlier connection is replaced.
                if member.node == user.node && member.pid == user.pid {
                    wasMember = true
                    return []
                }
                current.members[IRCNames.fold(user.nick)] = nil
            }
            if let refusal = current.checkJoin(nick: user.nick, source: user.source, key: key) { throw .refused(refusal) }
            state.channel = current
            return [user.event(.join, target: current.name, text: user.realName, params: user.account.map { [$0] })]
        }
        if wasMember { return .already(state) }
        guard let event = events.first else { return .already(state) }
        return .joined(event, state)
    }

    func existingChannel(_ state: inout ChatLogState, _ name: String) throws(ChatStoreError) -> ChannelState {
        guard let channel = state.channel else { throw .refused(.noSuchChannel(name)) }
        return channel
    }

    public func part(_ channel: String, user: ChatUser, reason: String?) throws(ChatStoreError) -> ChatEvent? {
        try channelLog(channel).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
            let current = try existingChannel(&state, channel)
            guard current.member(user.nick) != nil else { throw .refused(.notOnChannel(current.name)) }
            return [user.event(.part, target: current.name, text: reason)]
        }.events.first
    }

    /// PRIVMSG, NOTICE or TAGMSG to a channel.
    public func post(_ kind: ChatEvent.Kind, to channel: String, user: ChatUser, text: String?, tags: [String: String]?) throws(ChatStoreError) -> ChatEvent? {
        guard let state = try channelLog(channel).readState(), let current = state.channel else {
            throw .refused(.noSuchChannel(channel))
        }
        // Checked before taking the lock too, so refused messages cost no lock, unless lines
        // past the committed offset (a dead writer's) may change the answer.
        let log = channelLog(channel)
        let settled = state.file.map { log.fileSize(log.directory + "/" + $0) == state.offset } ?? true
        if settled, let refusal = current.checkSend(nick: user.nick, source: user.source) { throw .refused(refusal) }
        return try log.append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
            let current = try existingChannel(&state, channel)
            if let refusal = current.checkSend(nick: user.nick, source: user.source) { throw .refused(refusal) }
            return [user.event(kind, target: current.name, text: text, tags: tags)]
        }.events.first
    }

    /// One message of a batch.
    public struct Post: Sendable {
        public var kind: ChatEvent.Kind
        public var user: ChatUser
        public var text: String?
        public var tags: [String: String]?

        public init(kind: ChatEvent.Kind, user: ChatUser, text: String?, tags: [String: String]?) {
            self.kind = kind
            self.user = user
            self.text = text
            self.tags = tags
        }
    }

    /// Appends several messages to a channel under one lock acquisition (group commit):
    /// each is checked as `post` checks it, and gets its own outcome in order.
    public func post(_ posts: [Post], to channel: String) -> [Result<ChatEvent, ChatStoreError>] {
        var outcomes = [Result<ChatEvent, ChatStoreError>?](repeating: nil, count: posts.count)
        var accepted: [Int] = []
        do {
            let (events, _) = try channelLog(channel).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
                let current = try existingChannel(&state, channel)
                accepted = []
                var events: [ChatEvent] = []
                for (index, post) in posts.enumerated() {
                    if let refusal = current.checkSend(nick: post.user.nick, source: post.user.source) {
                        outcomes[index] = .failure(.refused(refusal))
                        continue
                    }
                    accepted.append(index)
                    events.append(post.user.event(post.kind, target: current.name, text: post.text, tags: post.tags))
                }
                return events
            }
            for (index, event) in zip(accepted, events) { outcomes[index] = .success(event) }
        } catch {
            return posts.map { _ in .failure(error) }
        }
        return outcomes.map { $0 ?? .failure(.refused(.noSuchChannel(channel))) }
    }

    public func setTopic(_ channel: String, user: ChatUser, topic: String) throws(ChatStoreError) -> ChatEvent? {
        try channelLog(channel).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
            let current = try existingChannel(&state, channel)
            if let refusal = current.checkTopic(nick: user.nick) { throw .refused(refusal) }
            return [user.event(.topic, target: current.name, text: IRCNames.truncate(topic, to: IRCNames.maxTopicLength))]
        }.events.first
    }

    public func mode(_ channel: String, user: ChatUser, modeString: String, arguments: [String]) throws(ChatStoreError) -> ChatEvent? {
        try channelLog(channel).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
            let current = try existingChannel(&state, channel)
            switch current.checkModes(nick: user.nick, modeString: modeString, arguments: arguments) {
            case .failure(let error): throw .refused(error)
            case .success(let changes):
                // Only what changes the state is logged.
                var probe = current
                let effective = changes.filter { change in
                    let before = probe
                    probe.apply(change)
                    return probe != before
                }
                guard !effective.isEmpty else { return [] }
                return [user.event(.mode, target: current.name, params: ChannelState.modeParams(effective))]
            }
        }.events.first
    }

    public func kick(_ channel: String, user: ChatUser, victim: String, reason: String) throws(ChatStoreError) -> ChatEvent? {
        try channelLog(channel).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
            let current = try existingChannel(&state, channel)
            if let refusal = current.checkKick(nick: user.nick, victim: victim) { throw .refused(refusal) }
            let nick = current.member(victim)?.nick ?? victim
            return [user.event(.kick, target: current.name, text: IRCNames.truncate(reason, to: IRCNames.maxKickReasonLength), params: [nick])]
        }.events.first
    }

    /// Records the invitation in the channel state (no channel log line) and tells the
    /// invitee through their private log; returns the invitee's nick and the channel name.
    public func invite(_ channel: String, user: ChatUser, invitee: String) throws(ChatStoreError) -> (nick: String, channel: String) {
        guard let record = try nickRecord(invitee), record.online else { throw .refused(.noSuchNick(invitee)) }
        var name = channel
        _ = try channelLog(channel).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
            var current = try existingChannel(&state, channel)
            if let refusal = current.checkInvite(nick: user.nick, invitee: invitee) { throw .refused(refusal) }
            current.invite(invitee)
            name = current.name
            state.channel = current
            return []
        }
        let notice = user.event(.invite, target: record.nick, params: [name])
        _ = try inboxLog(record.nick).append { (_: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in [notice] }
        return (record.nick, name)
    }

    /// A QUIT line in each channel the user is still in (as this connection).
    public func quit(_ channels: [String], user: ChatUser, reason: String) -> [ChatEvent] {
        channels.compactMap { channel in
            try? channelLog(channel).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
                guard let member = state.channel?.member(user.nick), member.node == user.node, member.pid == user.pid else { return [] }
                return [user.event(.quit, target: state.channel?.name ?? channel, text: reason)]
            }.events.first
        }
    }

    /// A NICK line in each channel the user is in as this connection (the member is renamed
    /// in the channel state under the same lock). The new nick must be claimed first.
    public func rename(_ channels: [String], user: ChatUser, to new: String) -> [ChatEvent] {
        channels.compactMap { channel in
            try? channelLog(channel).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
                guard let member = state.channel?.member(user.nick), member.node == user.node, member.pid == user.pid,
                    state.channel?.member(new) == nil || IRCNames.fold(new) == IRCNames.fold(user.nick)
                else { return [] }
                return [user.event(.nick, target: state.channel?.name ?? channel, params: [new])]
            }.events.first
        }
    }

    /// An AWAY line (away-notify) in each channel; nil text: back.
    public func away(_ channels: [String], user: ChatUser, text: String?) {
        for channel in channels {
            _ = try? channelLog(channel).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
                guard let member = state.channel?.member(user.nick), member.away != text else { return [] }
                return [user.event(.away, target: state.channel?.name ?? channel, text: text)]
            }
        }
        _ = try? updateNick(user.nick) { record in
            guard record?.pid == user.pid, record?.node == user.node else { return }
            record?.away = text
        }
    }

    public func channelState(_ name: String) throws(ChatStoreError) -> ChatLogState? {
        try channelLog(name).readState()
    }

    /// Every channel's state (LIST, WHOIS, the reaper).
    public func allChannels() -> [ChatLogState] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: channelsDirectory)) ?? []
        return names.filter { !$0.hasPrefix(".") }.compactMap { name in
            try? ChatLog(directory: channelsDirectory + "/" + name, node: node, lockOptions: lockOptions).readState()
        }.filter { $0.channel != nil }
    }

    // MARK: Private messages

    /// Appends the message to the recipient's log and to the sender's (so both can fetch
    /// the conversation with CHATHISTORY); nobody else reads either log.
    public func sendPrivate(_ kind: ChatEvent.Kind, from user: ChatUser, to recipient: String, text: String?, tags: [String: String]?) throws(ChatStoreError) -> ChatEvent {
        guard let record = try nickRecord(recipient), record.online else { throw .refused(.noSuchNick(recipient)) }
        let template = user.event(kind, target: record.nick, text: text, tags: tags)
        let (events, _) = try inboxLog(record.nick).append { (_: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in [template] }
        if IRCNames.fold(record.nick) != IRCNames.fold(user.nick) {
            _ = try? inboxLog(user.nick).append { (_: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in [template] }
        }
        return events.first ?? template
    }

    // MARK: Nicks

    func nickPath(_ nick: String) -> String { nicksDirectory + "/" + IRCNames.fileName(nick) + ".json" }

    public func nickRecord(_ nick: String) throws(ChatStoreError) -> NickRecord? {
        let bytes: [UInt8]
        do {
            bytes = try AtomicFile.read(nickPath(nick), maxBytes: Self.maxNickRecordBytes)
        } catch {
            if error.isNotFound { return nil }
            throw .tree(error)
        }
        return try? JSONDecoder().decode(NickRecord.self, from: Data(bytes))
    }

    /// Changes a nick record under the `nicks` lock.
    func updateNick<T>(_ nick: String, _ change: (inout NickRecord?) throws(ChatStoreError) -> T) throws(ChatStoreError) -> T {
        do {
            try FileManager.default.createDirectory(atPath: nicksDirectory, withIntermediateDirectories: true)
        } catch {
            throw .tree(.io(operation: "mkdir", path: nicksDirectory, code: EIO))
        }
        let lock: LockFile
        do {
            lock = try LockFile.acquire(name: "nicks", in: nicksDirectory, node: node, options: lockOptions)
        } catch {
            throw .tree(error)
        }
        defer { _ = try? lock.release() }
        var record = try nickRecord(nick)
        let before = record
        let result = try change(&record)
        if record != before, let record {
            do {
                try lock.verify()
                try AtomicFile.write(Array(try JSONEncoder().encode(record)), to: nickPath(nick))
            } catch let error as SharedTreeError {
                throw .tree(error)
            } catch {
                throw .malformed(path: nickPath(nick), reason: "\(error)")
            }
        }
        return result
    }

    /// Takes `user.nick` for this connection. A nick belongs to the first account that used
    /// it; guests may only use nicks no account owns. A nick online elsewhere (on a live
    /// node) is in use. `isLive` says whether a node process still runs.
    public func claimNick(_ user: ChatUser, isLive: (String, Int32) -> Bool) throws(ChatStoreError) {
        try updateNick(user.nick) { (record: inout NickRecord?) throws(ChatStoreError) in
            if let existing = record {
                if let owner = existing.account, owner != user.account {
                    throw .refused(IRCError("433", [user.nick], "Nickname is registered to another account"))
                }
                if existing.online && isLive(existing.node, existing.pid) && !(existing.node == user.node && existing.pid == user.pid) {
                    throw .refused(IRCError("433", [user.nick], "Nickname is already in use"))
                }
            }
            record = NickRecord(
                nick: user.nick, account: record?.account ?? user.account, online: true, userHost: user.userHost,
                realName: user.realName, node: user.node, pid: user.pid, away: nil, since: ServerTime.nowMilliseconds())
        }
    }

    /// Marks the nick offline if this connection still holds it.
    public func releaseNick(_ user: ChatUser) {
        _ = try? updateNick(user.nick) { record in
            guard record?.online == true, record?.node == user.node, record?.pid == user.pid else { return }
            record?.online = false
            record?.away = nil
        }
    }

    // MARK: Dead nodes

    /// Writes QUIT lines for members whose node process is gone (`isLive` false) and marks
    /// their nicks offline. Any node may run it; the check is repeated under each lock, so
    /// two nodes reaping at once write each QUIT once.
    public func reap(isLive: (String, Int32) -> Bool, reason: String = "Connection lost (node down)") -> [ChatEvent] {
        var written: [ChatEvent] = []
        var offline: Set<String> = []
        for state in allChannels() {
            guard let channel = state.channel else { continue }
            let dead = channel.members.values.filter { !isLive($0.node, $0.pid) }
            guard !dead.isEmpty else { continue }
            let result = try? channelLog(channel.name).append { (state: inout ChatLogState) throws(ChatStoreError) -> [ChatEvent] in
                guard let current = state.channel else { return [] }
                return current.members.values.filter { !isLive($0.node, $0.pid) }.sorted { $0.nick < $1.nick }.map { member in
                    ChatEvent(
                        time: 0, kind: .quit, nick: member.nick, source: member.source, account: member.account, node: member.node,
                        pid: member.pid, target: current.name, text: reason)
                }
            }
            written += result?.events ?? []
            for member in dead { offline.insert(member.nick) }
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: nicksDirectory)) ?? []
        for name in names where name.hasSuffix(".json") && !name.hasPrefix(".") {
            guard let bytes = try? AtomicFile.read(nicksDirectory + "/" + name, maxBytes: Self.maxNickRecordBytes),
                let record = try? JSONDecoder().decode(NickRecord.self, from: Data(bytes)),
                record.online, !isLive(record.node, record.pid)
            else { continue }
            offline.insert(record.nick)
        }
        for nick in offline {
            _ = try? updateNick(nick) { record in
                guard let current = record, current.online, !isLive(current.node, current.pid) else { return }
                record?.online = false
            }
        }
        return written
    }

    // MARK: History

    /// Messages (PRIVMSG/NOTICE) of a log in order, as CHATHISTORY selects them. `filter`
    /// narrows an inbox to one conversation.
    public func history(_ log: ChatLog, query: HistoryQuery, limit: Int, filter: (ChatEvent) -> Bool = { _ in true }) throws(ChatStoreError) -> [ChatEvent] {
        let limit = max(0, min(limit, Self.maxHistory))
        guard limit > 0 else { return [] }
        let files = log.dayFiles()
        func wanted(_ event: ChatEvent) -> Bool { event.isMessage && filter(event) }
        /// The last `count` matching events, scanning files newest first.
        func backward(_ matches: (ChatEvent) -> Bool, count: Int) throws(ChatStoreError) -> [ChatEvent] {
            var found: [ChatEvent] = []
            for file in files.reversed().prefix(Self.maxHistoryFiles) {
                let events = try log.events(inDayFile: file).filter { wanted($0) && matches($0) }
                found = events.suffix(count - found.count) + found
                if found.count >= count { break }
            }
            return found
        }
        func forward(_ matches: (ChatEvent) -> Bool, count: Int) throws(ChatStoreError) -> [ChatEvent] {
            var found: [ChatEvent] = []
            for file in files.suffix(Self.maxHistoryFiles) {
                found += try log.events(inDayFile: file).filter { wanted($0) && matches($0) }.prefix(count - found.count)
                if found.count >= count { break }
            }
            return found
        }
        switch query {
        case .latest(let reference):
            return try backward({ reference == .none || reference.isBefore($0) }, count: limit)
        case .before(let reference):
            return try backward({ reference.isAfter($0) }, count: limit)
        case .after(let reference):
            return try forward({ reference.isBefore($0) }, count: limit)
        case .around(let reference):
            let before = try backward({ reference.isAfter($0) }, count: limit / 2)
            let after = try forward({ !reference.isAfter($0) }, count: limit - before.count)
            return before + after
        case .between(let first, let second):
            if first.isAfterReference(second) {
                return try backward({ first.isAfter($0) && second.isBefore($0) }, count: limit)
            }
            return try forward({ first.isBefore($0) && second.isAfter($0) }, count: limit)
        }
    }
}

extension HistoryReference {
    /// Whether this reference points later than `other` (BETWEEN may go either way).
    func isAfterReference(_ other: HistoryReference) -> Bool {
        switch (self, other) {
        case (.timestamp(let a), .timestamp(let b)): return a > b
        case (.seq(let a), .seq(let b)): return a > b
        default: return false
        }
    }
}
