import ServerSupport

/// One message of the maildrop snapshot taken when the session locked it.
public struct POP3MessageInfo: Sendable, Equatable {
    /// RFC 1939 §7: 1 to 70 characters in 0x21–0x7E, the same for this message in every
    /// session for as long as it exists.
    public var uidl: String
    /// Octets as they will be sent: stored bytes with every bare LF counted as CRLF, before
    /// dot-stuffing (RFC 1939 §5 allows the listed size to differ from the octets on the wire).
    public var size: Int

    public init(uidl: String, size: Int) {
        self.uidl = uidl
        self.size = size
    }
}

/// How long the server keeps messages (RFC 2449 §6.7); `days(0)` means the client may not
/// leave mail on the server: retrieved messages are deleted at QUIT as if marked.
public enum POP3Expire: Sendable, Equatable {
    case never
    case days(Int)
}

/// The answer to `POP3Session.Action.authenticate`.
public enum POP3AuthResult: Sendable, Equatable {
    /// The credentials are good; `user` is the canonical name whose maildrop is opened.
    case ok(user: String)
    /// Wrong user or password: `-ERR [AUTH]` (RFC 3206 §5).
    case invalid
    /// No decision now (directory unreachable, this address refused for too many failures):
    /// `-ERR [SYS/TEMP]` (RFC 3206 §4).
    case temporarilyRefused
    /// The user logged in less than LOGIN-DELAY seconds ago: `-ERR [LOGIN-DELAY]` (RFC 2449 §8.1.2).
    case loginDelay
}

/// The POP3 server side of one connection as a pure state machine (STYLE.md): it is fed the
/// bytes the client sent and the results of the work it asked for, and returns actions. It
/// does no I/O, so every transition is tested with transcripts.
///
/// States (RFC 1939 §3): AUTHORIZATION until a maildrop is locked, then TRANSACTION; QUIT in
/// TRANSACTION enters UPDATE, where the marked messages are removed (`commitDeletions`). A
/// session that ends any other way removes nothing.
///
/// Pipelining (RFC 2449 §6.6) falls out of the design: input is buffered, and while the
/// session waits for a result (authentication, the lock, a message being sent, the commit) it
/// parses nothing further; the result resumes parsing of what is buffered.
public struct POP3Session: Sendable {
    public struct Configuration: Sendable {
        public var hostname: String
        /// STLS can be offered (a certificate is configured).
        public var tlsAvailable: Bool
        /// The connection is already encrypted (995, or after STLS).
        public var tlsActive: Bool
        /// USER/PASS and AUTH PLAIN are offered only over TLS unless this is set (RFC 2595 §2,
        /// loopback in dev).
        public var allowPlaintextAuth: Bool
        /// Advertised as EXPIRE (RFC 2449 §6.7).
        public var expire: POP3Expire
        /// Seconds advertised as LOGIN-DELAY (RFC 2449 §6.5); nil advertises nothing. The
        /// services enforce it by answering `.loginDelay`.
        public var loginDelay: Int?
        /// Errors after which the server says `-ERR` and closes.
        public var maxErrors: Int
        /// Longest command line (RFC 2449 §4 says 255 octets; more is tolerated).
        public var maxLineLength: Int
        /// Longest SASL response line (RFC 5034 §4 exempts them from the 255-octet limit).
        public var maxAuthResponseLength: Int
        /// Pipelined input held while the session waits; past it the client is cut off.
        public var maxBufferedInput: Int

        public init(
            hostname: String, tlsAvailable: Bool = false, tlsActive: Bool = false, allowPlaintextAuth: Bool = false,
            expire: POP3Expire = .never, loginDelay: Int? = nil, maxErrors: Int = 10,
            maxLineLength: Int = POP3CommandParser.defaultMaxLineLength, maxAuthResponseLength: Int = 8192,
            maxBufferedInput: Int = 256 * 1024
        ) {
            self.hostname = hostname
            self.tlsAvailable = tlsAvailable
            self.tlsActive = tlsActive
            self.allowPlaintextAuth = allowPlaintextAuth
            self.expire = expire
            self.loginDelay = loginDelay
            self.maxErrors = maxErrors
            self.maxLineLength = maxLineLength
            self.maxAuthResponseLength = maxAuthResponseLength
            self.maxBufferedInput = maxBufferedInput
        }
    }

    public enum Action: Sendable, Equatable {
        case send(POP3Response)
        /// Start TLS now (after the `+OK`); answer with `tlsStarted`.
        case startTLS
        /// Check the credentials; answer with `authenticationFinished`. Never log `password`.
        case authenticate(user: String, password: String)
        /// Lock the user's maildrop and snapshot it; answer with `maildropLocked`.
        case lockMaildrop(user: String)
        /// Send `status`, then message `index` (0-based in the snapshot) dot-stuffed, with at
        /// most `bodyLineLimit` body lines (TOP), then the `.` line; answer with `messageSent`.
        /// `status` waits until the message could be opened, so a message that cannot be read
        /// gets `-ERR` instead of a truncated `+OK`.
        case sendMessage(index: Int, bodyLineLimit: Int?, status: POP3Response)
        /// UPDATE state (RFC 1939 §6): remove these messages (by UIDL), then release the
        /// maildrop; answer with `deletionsCommitted`. Emitted only by QUIT in TRANSACTION.
        case commitDeletions([String])
        case close
    }

    public enum MaildropResult: Sendable, Equatable {
        /// Locked; the snapshot in maildrop order.
        case opened([POP3MessageInfo])
        /// Another session holds the lock (RFC 2449 §8.1.1).
        case inUse
        case failed
    }

    public enum MessageOutcome: Sendable, Equatable {
        case sent
        /// The message could not be opened; nothing was sent.
        case unavailable
        /// Reading failed after part of it was sent: the only honest end is closing.
        case interrupted
    }

    enum Phase: Sendable, Equatable {
        case authorization
        /// AUTH PLAIN sent `+ `; the next line is the client's response.
        case saslPlain
        case transaction
        case closed
    }

    enum Waiting: Sendable, Equatable {
        case none
        case authentication
        case maildrop(user: String)
        case message(number: Int)
        case commit
        case tls
    }

    public private(set) var configuration: Configuration
    private(set) var phase: Phase = .authorization
    private(set) var waiting: Waiting = .none
    private var framer = LineFramer()
    private let parser: POP3CommandParser
    /// The name from a USER command, good for the PASS that comes right after it.
    private var pendingUser: String?
    private var errors = 0
    /// The user whose maildrop is locked (TRANSACTION state).
    public private(set) var user: String?
    public private(set) var messages: [POP3MessageInfo] = []
    private var deleted = Set<Int>()
    private var retrieved = Set<Int>()
    /// How many messages the QUIT in progress removes.
    private var removing = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
        parser = POP3CommandParser(maxLineLength: configuration.maxLineLength)
    }

    /// RFC 1939 §4: the greeting.
    public mutating func start() -> [Action] {
        [.send(.ok("\(configuration.hostname) POP3 server ready"))]
    }

    public mutating func receive(_ bytes: some Collection<UInt8>) -> [Action] {
        guard phase != .closed else { return [] }
        framer.append(bytes)
        var actions = process()
        if phase != .closed && framer.bufferedCount > configuration.maxBufferedInput {
            actions += closeWith(.error("Too much pipelined input, closing connection"))
        }
        return actions
    }

    public mutating func tlsStarted() -> [Action] {
        guard waiting == .tls else { return [] }
        waiting = .none
        configuration.tlsActive = true
        // RFC 2595 §4: the client discards what it knew and starts again (CAPA). Anything
        // still buffered arrived in plaintext and is dropped (CVE-2011-0411).
        framer.reset()
        pendingUser = nil
        return process()
    }

    public mutating func authenticationFinished(_ result: POP3AuthResult) -> [Action] {
        guard waiting == .authentication else { return [] }
        waiting = .none
        switch result {
        case .ok(let user):
            waiting = .maildrop(user: user)
            return [.lockMaildrop(user: user)]
        case .invalid:
            return [.send(.error(.auth, "Authentication failed"))] + countError() + process()
        case .temporarilyRefused:
            return [.send(.error(.sysTemp, "Authentication temporarily unavailable, try again later"))] + process()
        case .loginDelay:
            return [.send(.error(.loginDelay, "Logged in too recently, try again later"))] + process()
        }
    }

    public mutating func maildropLocked(_ result: MaildropResult) -> [Action] {
        guard case .maildrop(let user) = waiting else { return [] }
        waiting = .none
        switch result {
        case .opened(let snapshot):
            self.user = user
            messages = snapshot
            deleted = []
            retrieved = []
            phase = .transaction
            return [.send(.ok("Maildrop has \(summary)"))] + process()
        case .inUse:
            // RFC 2449 §8.1.1: stay in AUTHORIZATION; the client may try again later.
            return [.send(.error(.inUse, "Maildrop is locked by another session, try again later"))] + process()
        case .failed:
            return [.send(.error(.sysTemp, "Cannot open the maildrop, try again later"))] + process()
        }
    }

    public mutating func messageSent(_ outcome: MessageOutcome) -> [Action] {
        guard case .message(let number) = waiting else { return [] }
        waiting = .none
        switch outcome {
        case .sent:
            return process()
        case .unavailable:
            return [.send(.error(.sysTemp, "Cannot read message \(number), try again later"))] + process()
        case .interrupted:
            return closeWith(nil)
        }
    }

    public mutating func deletionsCommitted(success: Bool) -> [Action] {
        guard waiting == .commit else { return [] }
        waiting = .none
        guard success else {
            // RFC 1939 §6 / RFC 2449 §8: the client must not assume the messages are gone.
            return closeWith(.error(.sysTemp, "Some deleted messages not removed"))
        }
        let left = messages.count - removing
        return closeWith(.ok("\(configuration.hostname) POP3 server signing off (\(left == 0 ? "maildrop empty" : "\(left) message\(left == 1 ? "" : "s") left"))"))
    }

    // MARK: - Input processing

    private mutating func process() -> [Action] {
        var actions: [Action] = []
        while waiting == .none && phase != .closed {
            let limit = phase == .saslPlain ? configuration.maxAuthResponseLength : configuration.maxLineLength
            guard let event = framer.next(maxLength: limit) else { break }
            switch event {
            case .tooLong:
                if phase == .saslPlain { phase = .authorization }
                pendingUser = nil
                actions += [.send(POP3SyntaxError.lineTooLong.response)] + countError()
            case .line(let line):
                actions += handleLine(line)
            }
        }
        return actions
    }

    private mutating func handleLine(_ line: [UInt8]) -> [Action] {
        if phase == .saslPlain {
            phase = .authorization
            return finishPlain(line)
        }
        switch parser.parse(line) {
        case .failure(let error):
            pendingUser = nil
            return [.send(error.response)] + countError()
        case .success(let command):
            return handle(command)
        }
    }

    private mutating func handle(_ command: POP3Command) -> [Action] {
        // RFC 1939 §7: PASS is valid only right after a successful USER.
        let userForPass = pendingUser
        pendingUser = nil
        switch command {
        case .capa:
            return [.send(.ok("Capability list follows", lines: capabilities))]
        case .quit:
            guard phase == .transaction else { return closeWith(.ok("\(configuration.hostname) POP3 server signing off")) }
            waiting = .commit
            var doomed = deleted
            if configuration.expire == .days(0) { doomed.formUnion(retrieved) }
            removing = doomed.count
            return [.commitDeletions(doomed.sorted().map { messages[$0].uidl })]
        case .stls:
            guard configuration.tlsAvailable, !configuration.tlsActive else {
                return [.send(.error("STLS not available"))] + countError()
            }
            guard phase == .authorization else { return wrongState() }
            waiting = .tls
            return [.send(.ok("Begin TLS negotiation")), .startTLS]
        case .user(let name):
            guard phase == .authorization else { return wrongState() }
            guard plaintextAuthAllowed else { return plaintextRefused() }
            pendingUser = name
            // The same answer for every name: nothing is learnt about which users exist.
            return [.send(.ok("Send PASS"))]
        case .pass(let password):
            guard phase == .authorization else { return wrongState() }
            guard plaintextAuthAllowed else { return plaintextRefused() }
            guard let userForPass else { return [.send(.error("Send USER first"))] + countError() }
            return startAuthentication(user: userForPass, password: password)
        case .auth(let mechanism, let initialResponse):
            guard phase == .authorization else { return wrongState() }
            guard let mechanism else {
                return [.send(.ok("Supported mechanisms follow", lines: plaintextAuthAllowed ? ["PLAIN"] : []))]
            }
            guard plaintextAuthAllowed else { return plaintextRefused() }
            guard mechanism == "PLAIN" else { return [.send(.error("Unrecognized authentication mechanism"))] + countError() }
            if let initialResponse {
                // RFC 5034 §4: "=" is an empty initial response.
                return finishPlain(Array((initialResponse == "=" ? "" : initialResponse).utf8))
            }
            phase = .saslPlain
            return [.send(.continuation())]
        case .stat:
            guard phase == .transaction else { return wrongState() }
            let (count, octets) = totals
            return [.send(.ok("\(count) \(octets)"))]
        case .list(nil):
            guard phase == .transaction else { return wrongState() }
            let lines = messages.indices.filter { !deleted.contains($0) }.map { "\($0 + 1) \(messages[$0].size)" }
            return [.send(.ok(summary, lines: lines))]
        case .list(let number?):
            guard phase == .transaction else { return wrongState() }
            switch message(number) {
            case .failure(let response): return [.send(response)] + countError()
            case .success(let index): return [.send(.ok("\(number) \(messages[index].size)"))]
            }
        case .uidl(nil):
            guard phase == .transaction else { return wrongState() }
            let lines = messages.indices.filter { !deleted.contains($0) }.map { "\($0 + 1) \(messages[$0].uidl)" }
            return [.send(.ok("Unique-ID listing follows", lines: lines))]
        case .uidl(let number?):
            guard phase == .transaction else { return wrongState() }
            switch message(number) {
            case .failure(let response): return [.send(response)] + countError()
            case .success(let index): return [.send(.ok("\(number) \(messages[index].uidl)"))]
            }
        case .retr(let number):
            guard phase == .transaction else { return wrongState() }
            switch message(number) {
            case .failure(let response): return [.send(response)] + countError()
            case .success(let index):
                retrieved.insert(index)
                waiting = .message(number: number)
                return [.sendMessage(index: index, bodyLineLimit: nil, status: .ok("\(messages[index].size) octets"))]
            }
        case .top(let number, let lines):
            guard phase == .transaction else { return wrongState() }
            switch message(number) {
            case .failure(let response): return [.send(response)] + countError()
            case .success(let index):
                waiting = .message(number: number)
                return [.sendMessage(index: index, bodyLineLimit: lines, status: .ok("Top of message follows"))]
            }
        case .dele(let number):
            guard phase == .transaction else { return wrongState() }
            switch message(number) {
            case .failure(let response): return [.send(response)] + countError()
            case .success(let index):
                deleted.insert(index)
                return [.send(.ok("Message \(number) deleted"))]
            }
        case .noop:
            guard phase == .transaction else { return wrongState() }
            return [.send(.ok(""))]
        case .rset:
            guard phase == .transaction else { return wrongState() }
            deleted = []
            return [.send(.ok("Maildrop has \(summary)"))]
        }
    }

    // MARK: - Helpers

    private var plaintextAuthAllowed: Bool { configuration.tlsActive || configuration.allowPlaintextAuth }

    /// RFC 2449 §5: what is offered in AUTHORIZATION is announced in both states.
    private var capabilities: [String] {
        var list = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        switch configuration.expire {
        case .never: list.append("EXPIRE NEVER")
        case .days(let days): list.append("EXPIRE \(days)")
        }
        if let delay = configuration.loginDelay { list.append("LOGIN-DELAY \(delay)") }
        if plaintextAuthAllowed { list += ["USER", "SASL PLAIN"] }
        if configuration.tlsAvailable && !configuration.tlsActive { list.append("STLS") }
        return list
    }

    /// Messages not marked deleted, and their octets.
    private var totals: (count: Int, octets: Int) {
        var count = 0
        var octets = 0
        for index in messages.indices where !deleted.contains(index) {
            count += 1
            octets += messages[index].size
        }
        return (count, octets)
    }

    private var summary: String {
        let (count, octets) = totals
        return "\(count) message\(count == 1 ? "" : "s") (\(octets) octets)"
    }

    /// RFC 1939 §5: a message number names a message of the snapshot not marked deleted.
    private func message(_ number: Int) -> MessageLookup {
        guard number >= 1, number <= messages.count else { return .failure(.error("No such message")) }
        guard !deleted.contains(number - 1) else { return .failure(.error("Message \(number) already deleted")) }
        return .success(number - 1)
    }

    private enum MessageLookup {
        /// The 0-based index in the snapshot.
        case success(Int)
        case failure(POP3Response)
    }

    /// RFC 4616: `authzid NUL authcid NUL password`, base64 (RFC 5034 §4).
    private mutating func finishPlain(_ response: [UInt8]) -> [Action] {
        if response == [0x2a] { return [.send(.error("Authentication cancelled"))] }  // "*"
        guard let bytes = POP3Base64.decode(response) else {
            return [.send(.error("Cannot decode the response"))] + countError()
        }
        let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3,
            let authzid = String(validating: parts[0], as: UTF8.self),
            let user = String(validating: parts[1], as: UTF8.self),
            let password = String(validating: parts[2], as: UTF8.self)
        else {
            return [.send(.error("Malformed PLAIN response"))] + countError()
        }
        guard authzid.isEmpty || authzid == user else {
            return [.send(.error(.auth, "Authorization identity not allowed"))] + countError()
        }
        return startAuthentication(user: user, password: password)
    }

    private mutating func startAuthentication(user: String, password: String) -> [Action] {
        guard !user.isEmpty, !password.isEmpty, user.utf8.count <= POP3CommandParser.maxUserLength,
            !user.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f })
        else {
            return [.send(.error(.auth, "Authentication failed"))] + countError()
        }
        waiting = .authentication
        return [.authenticate(user: user, password: password)]
    }

    private mutating func plaintextRefused() -> [Action] {
        // RFC 2595 §2: no cleartext passwords on an unencrypted connection.
        [.send(.error("Plaintext authentication is not allowed without TLS, use STLS"))] + countError()
    }

    private mutating func wrongState() -> [Action] {
        let state = phase == .transaction ? "TRANSACTION" : "AUTHORIZATION"
        return [.send(.error("Command not valid in the \(state) state"))] + countError()
    }

    private mutating func countError() -> [Action] {
        errors += 1
        guard errors >= configuration.maxErrors else { return [] }
        return closeWith(.error("Too many errors, closing connection"))
    }

    private mutating func closeWith(_ response: POP3Response?) -> [Action] {
        phase = .closed
        framer.reset()
        return (response.map { [Action.send($0)] } ?? []) + [.close]
    }
}

/// Strict base64 (RFC 4648 §4, padding required): nil for anything else, whitespace included.
enum POP3Base64 {
    static func decode(_ text: [UInt8]) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(text.count / 4 * 3)
        var index = 0
        while index < text.count {
            var quad: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let byte = text[index + offset]
                let value: UInt32
                switch byte {
                case 0x41...0x5a: value = UInt32(byte - 0x41)
                case 0x61...0x7a: value = UInt32(byte - 0x61 + 26)
                case 0x30...0x39: value = UInt32(byte - 0x30 + 52)
                case 0x2b: value = 62
                case 0x2f: value = 63
                case 0x3d:
                    // "=" only at the end: at most two, in the last quad's last places.
                    guard index + 4 == text.count, offset >= 2 else { return nil }
                    padding += 1
                    value = 0
                default: return nil
                }
                if padding > 0 && byte != 0x3d { return nil }
                quad = quad << 6 | value
            }
            output.append(UInt8(truncatingIfNeeded: quad >> 16))
            if padding < 2 { output.append(UInt8(truncatingIfNeeded: quad >> 8)) }
            if padding < 1 { output.append(UInt8(truncatingIfNeeded: quad)) }
            index += 4
        }
        return output
    }
}
