import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import SharedTree

/// A line of a log, delivered to one local client.
public struct ChatDelivery: Sendable, Equatable {
    public var event: ChatEvent
    /// The channel name, or the nick whose private log it came from.
    public var log: String
    public var isChannel: Bool
}

public typealias ChatClientID = Int

/// The chat engine of one node: the shared-tree store, the local clients, and the tailing
/// of the logs they follow. IRC connections (and a WebSocket handler, later) register a
/// client, subscribe it to logs, and read deliveries from its stream.
///
/// Delivery: every `pollInterval` the hub checks `state.json` of each followed log (a stat;
/// the file is replaced on every append, so any change shows) and reads the lines
/// committed since its cursor; a local append polls its log at once. Each subscriber keeps
/// the last sequence number it got, so overlapping polls never deliver a line twice or out
/// of order. Another node's users are live while their node's heartbeat is fresh and names
/// their process; `reapInterval` the hub writes QUIT lines for members of dead ones.
public final class ChatHub: Sendable {
    public struct Settings: Sendable {
        public var pollInterval: Duration
        public var reapInterval: Duration
        /// Heartbeat age (seconds) after which a node counts as dead.
        public var heartbeatStaleAfter: Double

        public init(pollInterval: Duration = .milliseconds(100), reapInterval: Duration = .seconds(2), heartbeatStaleAfter: Double = 10) {
            self.pollInterval = pollInterval
            self.reapInterval = reapInterval
            self.heartbeatStaleAfter = heartbeatStaleAfter
        }
    }

    struct Tail {
        var log: ChatLog
        var name: String
        var isChannel: Bool
        var cursor: ChatLogCursor
        var statKey: String?
        var subscribers: [ChatClientID: UInt64] = [:]
    }

    struct Client {
        var nick: String?
        var continuation: AsyncStream<ChatDelivery>.Continuation
    }

    struct State {
        var nextID = 1
        var clients: [ChatClientID: Client] = [:]
        /// Folded nick → the local client using it.
        var nicks: [String: ChatClientID] = [:]
        /// Log directory → tail.
        var tails: [String: Tail] = [:]
    }

    struct NodeLife: Equatable {
        var pid: Int32
        var live: Bool
    }

    struct Liveness {
        /// Node → its process and whether it is live, from the last heartbeat scan; nil
        /// before the first.
        var nodes: [String: NodeLife]?
        /// `nodes` as it was at the last reap, and when that was: the channels are scanned
        /// again only when a node died or restarted since, or after `fullReapInterval`.
        var reapedWith: [String: NodeLife]?
        var reapedAt: ContinuousClock.Instant?
    }

    static let fullReapInterval: Duration = .seconds(60)

    public let store: ChatStore
    public let pid: Int32
    let heartbeatLayout: SharedTreeLayout
    let threads: NIOThreadPool
    let settings: NIOLockedValueBox<Settings>
    let state = NIOLockedValueBox(State())
    let liveness = NIOLockedValueBox(Liveness())
    let nudge = NIOLockedValueBox<ChatNudge?>(nil)
    /// Messages waiting for their channel's next group commit, per channel directory, and
    /// whether a commit task runs for it.
    let posting = NIOLockedValueBox<[String: (queue: [PendingPost], busy: Bool)]>([:])
    /// The most messages one group commit takes.
    static let maxBatch = 64

    struct PendingPost {
        var post: ChatStore.Post
        var continuation: CheckedContinuation<Result<ChatEvent, ChatStoreError>, Never>
    }
    /// Logs peers nudged about, waiting for the one task that polls them.
    let nudges = NIOLockedValueBox<(keys: Set<String>, scheduled: Bool)>(([], false))
    let logger: Logger
    /// The most deliveries a slow client may have queued before the oldest are dropped.
    public static let maxQueuedDeliveries = 10_000

    public init(store: ChatStore, sharedRoot: String, pid: Int32 = getpid(), threads: NIOThreadPool, settings: Settings = Settings(), logger: Logger) {
        self.store = store
        self.pid = pid
        self.heartbeatLayout = SharedTreeLayout(root: sharedRoot)
        self.threads = threads
        self.settings = NIOLockedValueBox(settings)
        self.logger = logger
    }

    public func update(_ change: (inout Settings) -> Void) { settings.withLockedValue(change) }

    public var node: String { store.node }

    /// Runs the tailer and the reaper until cancelled.
    public func run() async {
        await refreshLiveness()
        await reap()
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    await self.pollAll()
                    try? await Task.sleep(for: self.settings.withLockedValue { $0.pollInterval })
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.settings.withLockedValue { $0.reapInterval })
                    guard !Task.isCancelled else { return }
                    await self.refreshLiveness()
                    await self.reap()
                }
            }
        }
    }

    /// Runs blocking store work on the thread pool.
    public func perform<T: Sendable>(_ body: @escaping @Sendable (ChatStore) throws -> T) async throws(ChatStoreError) -> T {
        let store = self.store
        do {
            return try await threads.runIfActive { try body(store) }
        } catch let error as ChatStoreError {
            throw error
        } catch {
            throw .tree(.cancelled(operation: "chat store call", path: store.root))
        }
    }

    /// PRIVMSG, NOTICE or TAGMSG to a channel. Messages that arrive for a channel while
    /// its last append is under way are appended together under one lock (group commit),
    /// then polled and nudged once.
    public func post(_ post: ChatStore.Post, to channel: String) async throws(ChatStoreError) -> ChatEvent {
        let key = store.channelLog(channel).directory
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<ChatEvent, ChatStoreError>, Never>) in
            let lead = posting.withLockedValue { posting -> Bool in
                var entry = posting[key] ?? (queue: [], busy: false)
                entry.queue.append(PendingPost(post: post, continuation: continuation))
                let lead = !entry.busy
                entry.busy = true
                posting[key] = entry
                return lead
            }
            if lead { Task { await self.commitPosts(key: key, channel: channel) } }
        }
        return try result.get()
    }

    func commitPosts(key: String, channel: String) async {
        while true {
            let batch = posting.withLockedValue { posting -> [PendingPost] in
                guard var entry = posting[key] else { return [] }
                let batch = Array(entry.queue.prefix(Self.maxBatch))
                entry.queue.removeFirst(batch.count)
                if batch.isEmpty {
                    posting[key] = nil
                } else {
                    posting[key] = entry
                }
                return batch
            }
            guard !batch.isEmpty else { return }
            let posts = batch.map(\.post)
            let outcomes: [Result<ChatEvent, ChatStoreError>]
            do {
                outcomes = try await perform { store in store.post(posts, to: channel) }
            } catch {
                outcomes = posts.map { _ in .failure(error) }
            }
            await poll(channel: channel)
            for (pending, outcome) in zip(batch, outcomes) { pending.continuation.resume(returning: outcome) }
        }
    }

    // MARK: Clients

    public func connect() -> (id: ChatClientID, deliveries: AsyncStream<ChatDelivery>) {
        let (stream, continuation) = AsyncStream<ChatDelivery>.makeStream(bufferingPolicy: .bufferingOldest(Self.maxQueuedDeliveries))
        let id = state.withLockedValue { state in
            let id = state.nextID
            state.nextID += 1
            state.clients[id] = Client(continuation: continuation)
            return id
        }
        return (id, stream)
    }

    public func disconnect(_ id: ChatClientID) {
        let continuation = state.withLockedValue { state -> AsyncStream<ChatDelivery>.Continuation? in
            guard let client = state.clients.removeValue(forKey: id) else { return nil }
            if let nick = client.nick, state.nicks[IRCNames.fold(nick)] == id { state.nicks[IRCNames.fold(nick)] = nil }
            for key in state.tails.keys {
                state.tails[key]?.subscribers[id] = nil
                if state.tails[key]?.subscribers.isEmpty == true { state.tails[key] = nil }
            }
            return client.continuation
        }
        continuation?.finish()
    }

    /// Takes a nick for a client: refused when another local client has it, when another
    /// account owns it, or when it is online on another live node. Then follows the nick's
    /// private log.
    public func claim(_ id: ChatClientID, user: ChatUser) async throws(ChatStoreError) {
        let folded = IRCNames.fold(user.nick)
        let reserved = state.withLockedValue { state -> Bool in
            if let holder = state.nicks[folded], holder != id { return false }
            state.nicks[folded] = id
            return true
        }
        guard reserved else { throw .refused(IRCError("433", [user.nick], "Nickname is already in use")) }
        do {
            let hub = self
            let inboxState = try await perform { (store: ChatStore) throws(ChatStoreError) -> ChatLogState? in
                try store.claimNick(user, isLive: hub.isLive)
                return try store.inboxLog(user.nick).readState()
            }
            let log = store.inboxLog(user.nick)
            let cursor = inboxState.map(ChatLogCursor.init) ?? ChatLogCursor(seq: 0, file: nil, offset: 0)
            state.withLockedValue { state in
                if let old = state.clients[id]?.nick, IRCNames.fold(old) != folded, state.nicks[IRCNames.fold(old)] == id {
                    state.nicks[IRCNames.fold(old)] = nil
                }
                state.clients[id]?.nick = user.nick
                subscribe(&state, id: id, log: log, name: user.nick, isChannel: false, at: cursor)
            }
        } catch {
            state.withLockedValue { state in
                if state.nicks[folded] == id && state.clients[id]?.nick.map(IRCNames.fold) != folded { state.nicks[folded] = nil }
            }
            throw error
        }
    }

    /// Moves a registered client to a new nick: claims it (as `claim`), then drops the
    /// old nick's private log and its local reservation.
    public func rename(_ id: ChatClientID, from old: ChatUser, to new: ChatUser) async throws(ChatStoreError) {
        try await claim(id, user: new)
        let oldKey = store.inboxLog(old.nick).directory
        state.withLockedValue { state in
            if IRCNames.fold(old.nick) != IRCNames.fold(new.nick) {
                state.tails[oldKey]?.subscribers[id] = nil
                if state.tails[oldKey]?.subscribers.isEmpty == true { state.tails[oldKey] = nil }
                if state.nicks[IRCNames.fold(old.nick)] == id { state.nicks[IRCNames.fold(old.nick)] = nil }
            }
        }
        if IRCNames.fold(old.nick) != IRCNames.fold(new.nick) {
            _ = try? await perform { store in store.releaseNick(old) }
        }
    }

    /// Follows a channel from the position right after the client's JOIN line.
    public func follow(_ id: ChatClientID, channel: String, after state: ChatLogState) {
        let log = store.channelLog(channel)
        self.state.withLockedValue { hubState in
            subscribe(&hubState, id: id, log: log, name: state.channel?.name ?? channel, isChannel: true, at: ChatLogCursor(state))
        }
    }

    public func unfollow(_ id: ChatClientID, channel: String) {
        let key = store.channelLog(channel).directory
        state.withLockedValue { state in
            state.tails[key]?.subscribers[id] = nil
            if state.tails[key]?.subscribers.isEmpty == true { state.tails[key] = nil }
        }
    }

    private func subscribe(_ state: inout State, id: ChatClientID, log: ChatLog, name: String, isChannel: Bool, at cursor: ChatLogCursor) {
        guard state.clients[id] != nil else { return }
        var tail = state.tails[log.directory] ?? Tail(log: log, name: name, isChannel: isChannel, cursor: cursor)
        // Lines after the client's position that the tail has already read are read again
        // (other subscribers skip them by sequence number).
        if tail.cursor.seq > cursor.seq {
            tail.cursor = cursor
            tail.statKey = nil
        }
        tail.subscribers[id] = cursor.seq
        state.tails[log.directory] = tail
    }

    // MARK: Tailing

    /// Polls every followed log.
    public func pollAll() async {
        let keys = state.withLockedValue { Array($0.tails.keys) }
        await poll(keys)
    }

    /// Polls one log at once after a local append, and nudges the peers about it.
    public func poll(channel: String) async {
        nudge.withLockedValue { $0 }?.send("c:" + IRCNames.fileName(channel))
        await poll([store.channelLog(channel).directory])
    }

    public func poll(inbox nick: String) async {
        nudge.withLockedValue { $0 }?.send("u:" + IRCNames.fileName(nick))
        await poll([store.inboxLog(nick).directory])
    }

    /// Uses `nudge` to tell peers about local appends (nil: polling only).
    public func attach(_ nudge: ChatNudge?) {
        self.nudge.withLockedValue { $0 = nudge }
    }

    /// A peer appended to the log `key` (`c:<hex>` or `u:<hex>`): polls it soon if it is
    /// followed here. Nudges that arrive while a poll is under way join it, so a flood of
    /// datagrams costs one poll task at a time.
    func nudged(_ key: String) {
        let hex = String(key.dropFirst(2))
        let directory = (key.hasPrefix("c:") ? store.channelsDirectory : store.usersDirectory) + "/" + hex
        guard state.withLockedValue({ $0.tails[directory] != nil }) else { return }
        let start = nudges.withLockedValue { pending -> Bool in
            pending.keys.insert(directory)
            if pending.scheduled { return false }
            pending.scheduled = true
            return true
        }
        guard start else { return }
        Task {
            while true {
                let keys = nudges.withLockedValue { pending -> [String] in
                    let keys = Array(pending.keys)
                    pending.keys.removeAll()
                    if keys.isEmpty { pending.scheduled = false }
                    return keys
                }
                guard !keys.isEmpty else { return }
                await poll(keys)
            }
        }
    }

    struct PollResult: Sendable {
        var key: String
        var statKey: String
        var events: [ChatEvent]
        var cursor: ChatLogCursor
    }

    func poll(_ keys: [String]) async {
        let work: [(key: String, log: ChatLog, cursor: ChatLogCursor, statKey: String?)] = state.withLockedValue { state in
            keys.compactMap { key in state.tails[key].map { (key, $0.log, $0.cursor, $0.statKey) } }
        }
        guard !work.isEmpty else { return }
        let results: [PollResult]
        do {
            results = try await threads.runIfActive {
                work.compactMap { item -> PollResult? in
                    guard let statKey = item.log.stateStamp(), statKey != item.statKey else { return nil }
                    do {
                        guard let logState = try item.log.readState() else { return nil }
                        let (events, cursor) = try item.log.readNew(after: item.cursor, state: logState)
                        return PollResult(key: item.key, statKey: statKey, events: events, cursor: cursor)
                    } catch {
                        return nil
                    }
                }
            }
        } catch {
            return
        }
        deliver(results)
    }

    func deliver(_ results: [PollResult]) {
        state.withLockedValue { state in
            for result in results {
                guard var tail = state.tails[result.key] else { continue }
                if result.cursor.seq >= tail.cursor.seq {
                    tail.cursor = result.cursor
                    tail.statKey = result.statKey
                }
                for event in result.events {
                    for (id, last) in tail.subscribers where event.seq > last {
                        guard let client = state.clients[id] else { continue }
                        if case .dropped = client.continuation.yield(ChatDelivery(event: event, log: tail.name, isChannel: tail.isChannel)) {
                            // A client that reads nothing while its queue fills is cut off
                            // (its stream ends; the connection closes) rather than left with gaps.
                            client.continuation.finish()
                            continue
                        }
                        tail.subscribers[id] = event.seq
                        if tail.isChannel, let nick = client.nick, Self.removes(event, nick: nick, node: node, pid: pid) {
                            tail.subscribers[id] = nil
                        }
                    }
                }
                state.tails[result.key] = tail.subscribers.isEmpty ? nil : tail
            }
        }
    }

    /// Whether a channel line takes this local nick out of the channel.
    static func removes(_ event: ChatEvent, nick: String, node: String, pid: Int32) -> Bool {
        let folded = IRCNames.fold(nick)
        switch event.kind {
        case .part, .quit: return IRCNames.fold(event.nick) == folded && event.node == node && event.pid == pid
        case .nick: return false
        case .kick: return event.params?.first.map(IRCNames.fold) == folded
        default: return false
        }
    }

    // MARK: Liveness

    /// Whether the process `pid` on `node` still serves: this process, or a node whose
    /// heartbeat is fresh, not "stopped", and written by that process.
    @Sendable public func isLive(_ node: String, _ pid: Int32) -> Bool {
        if node == store.node { return pid == self.pid }
        guard let nodes = liveness.withLockedValue({ $0.nodes }) else { return true }
        guard let entry = nodes[node] else { return false }
        return entry.live && entry.pid == pid
    }

    func refreshLiveness() async {
        let layout = heartbeatLayout
        let staleAfter = settings.withLockedValue { $0.heartbeatStaleAfter }
        guard let readings = try? await threads.runIfActive({ try HeartbeatStore.readAll(layout: layout) }) else { return }
        var nodes: [String: NodeLife] = [:]
        for reading in readings {
            guard let heartbeat = reading.heartbeat else { continue }
            nodes[reading.node] = NodeLife(pid: heartbeat.pid, live: reading.age < staleAfter && heartbeat.state != "stopped")
        }
        liveness.withLockedValue { $0.nodes = nodes }
    }

    /// QUIT lines for members of dead node processes (and this node's earlier runs). The
    /// channels are scanned when the heartbeats changed since the last scan (a node died,
    /// stopped or restarted) and once a minute besides.
    func reap() async {
        let due = liveness.withLockedValue { life -> [String: NodeLife]? in
            guard let nodes = life.nodes else { return nil }
            if let at = life.reapedAt, life.reapedWith == nodes, ContinuousClock.now - at < Self.fullReapInterval { return nil }
            return nodes
        }
        guard let nodes = due else { return }
        defer {
            liveness.withLockedValue {
                $0.reapedWith = nodes
                $0.reapedAt = .now
            }
        }
        let hub = self
        let written = (try? await perform { store in store.reap(isLive: hub.isLive) }) ?? []
        if !written.isEmpty {
            logger.notice("chat: members of stopped nodes shown as quit", metadata: ["lines": "\(written.count)"])
        }
    }
}
