import ServerSupport

/// Checks a user's password (the node checks it against LDAP, with the failure limits
/// every protocol shares).
public protocol ChatAuthenticator: Sendable {
    func authenticate(user: String, password: String, remoteAddress: String) async -> AuthenticationResult
}

/// Runs one IRC session against the hub: frames input into lines, feeds the session,
/// performs its requests (blocking store calls go to the hub's thread pool) and collects
/// the output. Owned by one task; the NIO edge only moves bytes in and out, so tests drive
/// this type directly.
public struct IRCConnectionDriver: Sendable {
    public let hub: ChatHub
    public let authenticator: any ChatAuthenticator
    public let clientID: ChatClientID
    public let remoteAddress: String
    public private(set) var session: IRCSession
    var framer = LineFramer()
    /// Messages that came from requests, counted for the closing log line.
    public private(set) var requests = 0

    public init(hub: ChatHub, authenticator: any ChatAuthenticator, session: IRCSession, clientID: ChatClientID, remoteAddress: String) {
        self.hub = hub
        self.authenticator = authenticator
        self.session = session
        self.clientID = clientID
        self.remoteAddress = remoteAddress
    }

    public struct Output: Sendable {
        public var messages: [IRCMessage] = []
        public var close = false

        public var text: String { messages.map { $0.encoded() }.joined() }
    }

    /// Bytes from the client.
    public mutating func received(_ bytes: some Collection<UInt8>, now: Int64 = ServerTime.nowMilliseconds()) async -> Output {
        framer.append(bytes)
        var output = Output()
        while !output.close, let event = framer.next(maxLength: IRCLimits.maxLineBytes) {
            switch event {
            case .line(let line): await perform(session.receive(line, now: now), into: &output)
            case .tooLong: await perform(session.lineTooLong(), into: &output)
            }
        }
        return output
    }

    /// Input that arrives already framed, one line per message (a WebSocket carrying IRC
    /// lines, `IRCWebSocketFraming`): fed to the session exactly as a line from the framer.
    public mutating func received(_ input: IRCWebSocketFraming.Input, now: Int64 = ServerTime.nowMilliseconds()) async -> Output {
        var output = Output()
        switch input {
        case .line(let line): await perform(session.receive(line, now: now), into: &output)
        case .tooLong: await perform(session.lineTooLong(), into: &output)
        case .malformed: await perform(session.malformedLine(), into: &output)
        case .empty: break
        }
        return output
    }

    /// A line from a followed log.
    public mutating func delivered(_ delivery: ChatDelivery) async -> Output {
        var output = Output()
        await perform(session.deliver(delivery), into: &output)
        return output
    }

    mutating func perform(_ actions: [IRCAction], into output: inout Output) async {
        var pending = actions[...]
        while let action = pending.popFirst() {
            switch action {
            case .send(let message): output.messages.append(message)
            case .close: output.close = true
            case .authenticate(let user, let password):
                let result = await authenticator.authenticate(user: user, password: password, remoteAddress: remoteAddress)
                pending = session.authenticationFinished(result)[...] + pending
            case .request(let request):
                requests += 1
                let reply = await execute(request)
                pending = session.completed(request, reply)[...] + pending
            }
        }
    }

    /// Ends the session after its connection loop stopped for `closeReason` ("Quit" when the
    /// client quit): run in a task of its own, not cancelled with the connection, because the
    /// QUIT lines must be written when the server stops too.
    public func end(closeReason: String) async {
        let ending = self
        let reason = closeReason == "Quit" ? "Client Quit" : closeReason
        await Task { await ending.finish(reason: reason) }.value
    }

    /// Ends the session: QUIT lines in its channels (unless QUIT already wrote them), the
    /// nick marked offline, the client unregistered.
    public func finish(reason: String = "Connection closed") async {
        if session.isRegistered, let user = session.user {
            let channels = Array(session.channels.values)
            _ = try? await hub.perform { store in store.quit(channels, user: user, reason: reason) }
            for channel in channels { await hub.poll(channel: channel) }
        }
        if let user = session.user, session.isRegistered || session.isClosed {
            _ = try? await hub.perform { store in store.releaseNick(user) }
        }
        hub.disconnect(clientID)
    }

    func execute(_ request: ChatRequest) async -> ChatReply {
        guard let user = session.user else { return .refused(IRCError("451", [], "You have not registered")) }
        let hub = self.hub
        let me = user.nick
        let myChannels = Array(session.channels.values)
        do {
            switch request {
            case .register(let user):
                try await hub.claim(clientID, user: user)
                return .done
            case .nick(let new):
                var renamed = user
                renamed.nick = new
                try await hub.rename(clientID, from: user, to: renamed)
                try await hub.perform { store in _ = store.rename(myChannels, user: user, to: new) }
                for channel in myChannels { await hub.poll(channel: channel) }
                return .done
            case .join(let channel, let key):
                let outcome = try await hub.perform { store in try store.join(channel, key: key, user: user) }
                guard case .joined(let event, let state) = outcome, let channelState = state.channel else { return .done }
                hub.follow(clientID, channel: channel, after: state)
                await hub.poll(channel: channel)
                return .joined(event, channelState)
            case .part(let channel, let reason):
                _ = try await hub.perform { store in try store.part(channel, user: user, reason: reason) }
                await hub.poll(channel: channel)
                return .done
            case .post(let kind, let target, let text, let tags):
                if IRCNames.isChannel(target) {
                    _ = try await hub.post(ChatStore.Post(kind: kind, user: user, text: text, tags: tags), to: target)
                } else {
                    let event = try await hub.perform { store in try store.sendPrivate(kind, from: user, to: target, text: text, tags: tags) }
                    await hub.poll(inbox: event.target)
                    await hub.poll(inbox: me)
                }
                return .done
            case .topic(let channel, let text):
                if let text {
                    _ = try await hub.perform { store in try store.setTopic(channel, user: user, topic: text) }
                    await hub.poll(channel: channel)
                    return .done
                }
                return .channel(try await hub.perform { store in try store.channelState(channel) }?.channel)
            case .names(let channel), .modeQuery(let channel), .banList(let channel):
                return .channel(try await hub.perform { store in try store.channelState(channel) }?.channel)
            case .mode(let channel, let modeString, let arguments):
                _ = try await hub.perform { store in try store.mode(channel, user: user, modeString: modeString, arguments: arguments) }
                await hub.poll(channel: channel)
                return .done
            case .kick(let channel, let victim, let reason):
                _ = try await hub.perform { store in try store.kick(channel, user: user, victim: victim, reason: reason) }
                await hub.poll(channel: channel)
                return .done
            case .invite(let nick, let channel):
                let (invitee, name) = try await hub.perform { store in try store.invite(channel, user: user, invitee: nick) }
                await hub.poll(inbox: invitee)
                return .invited(nick: invitee, channel: name)
            case .list:
                return .channels(try await hub.perform { store in store.allChannels().compactMap(\.channel) })
            case .who(let mask):
                if IRCNames.isChannel(mask) {
                    return .channel(try await hub.perform { store in try store.channelState(mask) }?.channel)
                }
                return .user(try await hub.perform { store in try store.nickRecord(mask) }, channels: [])
            case .whois(let nick):
                return try await hub.perform { store in
                    let record = try store.nickRecord(nick)
                    let channels = record == nil ? [] : store.allChannels().compactMap(\.channel).compactMap { channel -> String? in
                        guard let member = channel.member(nick) else { return nil }
                        return member.prefixes(multi: false) + channel.name
                    }
                    return .user(record, channels: channels)
                }
            case .away(let text):
                try await hub.perform { store in store.away(myChannels, user: user, text: text) }
                for channel in myChannels { await hub.poll(channel: channel) }
                return .done
            case .history(let target, let query, let limit):
                let events = try await hub.perform { store in
                    if IRCNames.isChannel(target) {
                        return try store.history(store.channelLog(target), query: query, limit: limit)
                    }
                    let other = IRCNames.fold(target)
                    let mine = IRCNames.fold(me)
                    return try store.history(store.inboxLog(me), query: query, limit: limit) { event in
                        (IRCNames.fold(event.nick) == other && IRCNames.fold(event.target) == mine)
                            || (IRCNames.fold(event.nick) == mine && IRCNames.fold(event.target) == other)
                    }
                }
                return .history(events)
            case .quit(let reason):
                try await hub.perform { store in _ = store.quit(myChannels, user: user, reason: reason) }
                for channel in myChannels { await hub.poll(channel: channel) }
                return .done
            }
        } catch {
            if case .refused(let refusal) = error { return .refused(refusal) }
            hub.logger.error("chat store call failed", metadata: ["error": "\(error)", "user": "\(me)"])
            return .refused(IRCError("400", [Self.commandName(request)], "Temporary failure, try again"))
        }
    }

    static func commandName(_ request: ChatRequest) -> String {
        switch request {
        case .register, .nick: return "NICK"
        case .join: return "JOIN"
        case .part: return "PART"
        case .post(let kind, _, _, _): return kind.rawValue.uppercased()
        case .topic: return "TOPIC"
        case .names: return "NAMES"
        case .modeQuery, .banList, .mode: return "MODE"
        case .kick: return "KICK"
        case .invite: return "INVITE"
        case .list: return "LIST"
        case .who: return "WHO"
        case .whois: return "WHOIS"
        case .away: return "AWAY"
        case .history: return "CHATHISTORY"
        case .quit: return "QUIT"
        }
    }
}

/// What a connection loop (TCP `IRCConnection`, WebSocket `IRCLineConnection`) waits for:
/// client input of the transport's kind, the hub's deliveries, and a timer.
enum IRCConnectionEvent<Input: Sendable>: Sendable {
    case input(Input)
    case inputEnded
    case delivery(ChatDelivery)
    /// The hub ended the client's deliveries: it fell too far behind.
    case deliveriesEnded
    case tick

    /// Forwards the hub's deliveries into the loop's events until they end.
    static func forward(_ deliveries: AsyncStream<ChatDelivery>, to sink: AsyncStream<Self>.Continuation) async {
        for await delivery in deliveries { sink.yield(.delivery(delivery)) }
        sink.yield(.deliveriesEnded)
    }

    /// A tick every `interval` until cancelled.
    static func tick(every interval: Duration, to sink: AsyncStream<Self>.Continuation) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            sink.yield(.tick)
        }
    }
}
