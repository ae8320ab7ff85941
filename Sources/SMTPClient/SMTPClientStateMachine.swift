/// One outbound SMTP transaction (RFC 5321) as a pure state machine (STYLE.md): it is fed the
/// server's replies and the outcome of the work it asked for (connect, TLS, sending the
/// message, timers) and returns actions. It does no I/O, so every transition is tested with
/// transcripts; `SMTPClient` is the thin NIO edge that performs the actions.
public struct SMTPClientStateMachine: Sendable {
    /// The envelope to deliver, and what the machine needs to know about the message.
    public struct Transaction: Sendable, Equatable {
        /// The reverse-path without angle brackets; empty (or `<>`) for the null sender.
        public var sender: String
        /// Forward-paths without angle brackets, already validated by the caller.
        public var recipients: [String]
        public var messageSize: Int
        public var requireSMTPUTF8: Bool
        public var eightBit: Bool

        public init(sender: String, recipients: [String], messageSize: Int, requireSMTPUTF8: Bool = false, eightBit: Bool = false) {
            self.sender = sender
            self.recipients = recipients
            self.messageSize = messageSize
            self.requireSMTPUTF8 = requireSMTPUTF8
            self.eightBit = eightBit
        }
    }

    public enum Action: Sendable, Equatable {
        /// Open the connection; then feed the greeting with `receive(reply:)`, or call `connectFailed`.
        case connect
        /// Write these bytes (one or more complete commands).
        case send([UInt8])
        /// Put TLS in front of the connection now, discarding every byte received so far
        /// (RFC 3207 §4.2); then call `tlsEstablished` or `tlsFailed`.
        case startTLS
        /// Send the message dot-stuffed and terminated (`SMTPMessageEncoder`); call
        /// `messageSent` once the last bytes are queued.
        case sendMessage
        /// Close the connection: the delivery is over.
        case close(SMTPDeliveryOutcome)
    }

    enum State: Sendable, Equatable {
        case idle
        case greeting
        case hello(extended: Bool)
        case startTLS
        case tlsHandshake
        case authPlain
        /// AUTH LOGIN: 0 after `AUTH LOGIN`, 1 after the user name, 2 after the password.
        case authLogin(step: Int)
        case mail
        /// Lock-step: waiting for the reply to the RCPT of `candidates[index]`.
        case recipient(index: Int)
        case data
        /// RFC 2920: MAIL, every RCPT and DATA went out in one write; replies come in order.
        case pipelined
        case sendingMessage
        case finalReply
        /// DATA was accepted although no recipient was: an empty message was sent (RFC 2920 §3.1).
        case emptyMessage
        case quitting
        case closed
    }

    enum PipelinedCommand: Sendable, Equatable {
        case mail
        case recipient(Int)
        case data
    }

    public let configuration: SMTPClientConfiguration
    public let transaction: Transaction
    /// `host[address]:port`, for the transcript summary.
    public let remoteName: String

    private(set) var state = State.idle
    /// Per input recipient; nil while undecided (an accepted RCPT stays undecided until the end of DATA).
    private var results: [SMTPRecipientOutcome?]
    /// Indices of the recipients that get an RCPT (the others were refused locally).
    private var candidates: [Int] = []
    private var accepted: [Int] = []
    private(set) var extensions = SMTPServerExtensions()
    private var tlsVersion: String?
    private var startTLSDeclined = false
    private var pipeline: [PipelinedCommand] = []
    private var pipelineIndex = 0
    private var mailRefused = false
    /// Once an RCPT reply arrived, failures are per recipient, not session failures.
    private var recipientsStarted = false
    private var sessionFailure: SMTPSessionFailure?
    private var summary = ""
    private var outcome: SMTPDeliveryOutcome?

    public init(configuration: SMTPClientConfiguration, transaction: Transaction, remoteName: String) {
        self.configuration = configuration
        self.transaction = transaction
        self.remoteName = remoteName
        self.results = Array(repeating: nil, count: transaction.recipients.count)
    }

    /// Whether TLS is established on the connection.
    public var usesTLS: Bool { tlsVersion != nil }

    /// How long to wait for the next event before calling `timedOut()` (RFC 5321 §4.5.3.2);
    /// nil when nothing is awaited. While the message is being sent, the timer restarts on
    /// each write that completes (the data block timeout).
    public var timeout: Duration? {
        switch state {
        case .idle, .closed: nil
        case .greeting: configuration.greetingTimeout
        case .hello, .startTLS, .tlsHandshake, .authPlain, .authLogin, .mail, .recipient: configuration.commandTimeout
        case .data: configuration.dataInitiationTimeout
        case .pipelined:
            pipelineIndex < pipeline.count && pipeline[pipelineIndex] == .data
                ? configuration.dataInitiationTimeout : configuration.commandTimeout
        case .sendingMessage: configuration.dataBlockTimeout
        case .finalReply, .emptyMessage: configuration.dataTimeout
        case .quitting: configuration.quitTimeout
        }
    }

    /// Checks what can be checked before connecting; returns `.connect`, or `.close` when
    /// nothing is left to deliver.
    public mutating func start() -> [Action] {
        guard state == .idle else { return [] }
        state = .greeting
        guard Self.isValidHeloName(configuration.heloName) else {
            let reason = "the configured EHLO name \"\(configuration.heloName)\" is not a valid host name"
            return fail(isPermanent: false, stage: .local, reason: reason, quit: false)
        }
        guard Self.isSafeAddress(transaction.sender, allowNull: true) else {
            let reply = SMTPClientReply(code: 553, enhanced: "5.1.7", lines: ["Bad sender address syntax"])
            return fail(isPermanent: true, stage: .local, reason: "refused locally: bad sender address", reply: reply, quit: false)
        }
        for (index, recipient) in transaction.recipients.enumerated() {
            if Self.isSafeAddress(recipient, allowNull: false) {
                candidates.append(index)
            } else {
                results[index] = .permanentFailure(SMTPClientReply(code: 553, enhanced: "5.1.3", lines: ["Bad destination mailbox address syntax"]))
            }
        }
        guard !candidates.isEmpty else {
            summary = "no valid recipient, not connected"
            return finish(quit: false)
        }
        return [.connect]
    }

    public mutating func connectFailed(reason: String) -> [Action] {
        guard state == .greeting else { return [] }
        return fail(isPermanent: false, stage: .connect, reason: "cannot connect to \(remoteName): \(reason)", quit: false)
    }

    public mutating func receive(reply: SMTPClientReply) -> [Action] {
        switch state {
        case .idle, .closed:
            return []
        case .quitting:
            return close()
        default:
            break
        }
        // RFC 5321 §3.8: 421 means the server is closing; whatever was pending fails temporarily.
        if reply.isClosing {
            return fail(isPermanent: false, stage: stage, reason: "\(remoteName) is closing the connection: \(reply)", reply: reply, quit: false)
        }
        switch state {
        case .idle, .closed, .quitting:
            return []
        case .greeting:
            if reply.isPositive { return hello(extended: true) }
            // RFC 5321 §3.1: after a 554 greeting the client sends QUIT.
            return refused(reply, stage: .greeting, what: "greeting")
        case .hello(let extended):
            if reply.isPositive {
                extensions = extended ? SMTPServerExtensions(ehloReply: reply) : SMTPServerExtensions()
                return afterHello()
            }
            // RFC 5321 §3.2: a server that does not know EHLO answers 5xx; fall back to HELO.
            if extended, reply.isPermanent { return hello(extended: false) }
            return refused(reply, stage: .hello, what: extended ? "EHLO" : "HELO")
        case .startTLS:
            if reply.isPositive {
                state = .tlsHandshake
                return [.startTLS]
            }
            guard reply.isTransient || reply.isPermanent else { return violation("unexpected reply to STARTTLS: \(reply)") }
            if configuration.tls == .required {
                let reason = "TLS is required but \(remoteName) refused STARTTLS: \(reply)"
                return fail(isPermanent: false, stage: .startTLS, reason: reason, reply: reply, quit: true)
            }
            // RFC 3207 §4: the client decides whether to go on without TLS; opportunistic does.
            startTLSDeclined = true
            return afterHello()
        case .tlsHandshake:
            return violation("reply during the TLS handshake")
        case .authPlain, .authLogin:
            return authenticationReply(reply)
        case .mail:
            if reply.isPositive { return sendRecipient(0) }
            return refused(reply, stage: .mailFrom, what: "MAIL FROM")
        case .recipient(let index):
            recipientsStarted = true
            guard decideRecipient(candidates[index], reply: reply) else { return violation("unexpected reply to RCPT TO: \(reply)") }
            if index + 1 < candidates.count { return sendRecipient(index + 1) }
            if accepted.isEmpty {
                summary = "no recipient accepted"
                return finish(quit: true)
            }
            state = .data
            return [.send(Self.bytes("DATA"))]
        case .data:
            if reply.code == 354 {
                state = .sendingMessage
                return [.sendMessage]
            }
            guard reply.isTransient || reply.isPermanent else { return violation("unexpected reply to DATA: \(reply)") }
            decideAccepted(reply, after: "DATA")
            return finish(quit: true)
        case .pipelined:
            return pipelinedReply(reply)
        case .sendingMessage:
            // The server answered before the end of the message: it stopped reading, so the
            // rest of the message and a QUIT would only be taken as garbage.
            guard reply.isTransient || reply.isPermanent else { return violation("reply \(reply) before the end of the message") }
            decideAccepted(reply, after: "message data")
            return finish(quit: false)
        case .finalReply:
            guard reply.isPositive || reply.isTransient || reply.isPermanent else {
                return violation("unexpected reply to the end of data: \(reply)")
            }
            decideAccepted(reply, after: "end of data")
            return finish(quit: true)
        case .emptyMessage:
            return finish(quit: true)
        }
    }

    /// TLS is up (RFC 3207 §4.2: forget what the server said before and greet again).
    public mutating func tlsEstablished(protocolVersion: String?) -> [Action] {
        guard state == .tlsHandshake else { return [] }
        tlsVersion = protocolVersion ?? "TLS"
        extensions = SMTPServerExtensions()
        return hello(extended: true)
    }

    /// The TLS handshake failed; the connection is unusable. Outside the handshake, a TLS
    /// error is a lost connection.
    public mutating func tlsFailed(reason: String) -> [Action] {
        guard state == .tlsHandshake else { return connectionLost(reason: "TLS error: \(reason)") }
        let retry = configuration.tls == .opportunistic ? " (opportunistic TLS: a retry without TLS may succeed)" : ""
        return fail(isPermanent: false, stage: .tlsHandshake, reason: "TLS handshake with \(remoteName) failed: \(reason)\(retry)", quit: false)
    }

    /// The last bytes of the message are queued; now wait for the final reply.
    public mutating func messageSent() -> [Action] {
        if state == .sendingMessage { state = .finalReply }
        return []
    }

    /// The wait for the current event exceeded `timeout`, or the whole session exceeded
    /// `configuration.sessionTimeout` (`sessionLimit`).
    public mutating func timedOut(sessionLimit: Bool = false) -> [Action] {
        switch state {
        case .idle, .closed: return []
        case .quitting: return close()
        default:
            let limit = sessionLimit ? "session time limit \(Self.format(configuration.sessionTimeout))" : "timeout \(Self.format(timeout ?? .zero))"
            return fail(isPermanent: false, stage: stage, reason: "\(limit) exceeded at \(remoteName) waiting for \(waitingFor)", quit: false)
        }
    }

    /// The connection closed or failed. Always returns `.close`, with the outcome decided
    /// before if the session was already over.
    public mutating func connectionLost(reason: String) -> [Action] {
        switch state {
        case .closed, .quitting: return close()
        default:
            let reason = "connection to \(remoteName) lost waiting for \(waitingFor): \(reason)"
            return fail(isPermanent: false, stage: stage, reason: reason, quit: false)
        }
    }

    /// The server's bytes are not valid replies (`SMTPReplyParseError`).
    public mutating func protocolViolation(reason: String) -> [Action] {
        switch state {
        case .idle: return []
        case .closed, .quitting: return close()
        default: return violation(reason)
        }
    }

    // MARK: - Steps

    private mutating func hello(extended: Bool) -> [Action] {
        state = .hello(extended: extended)
        return [.send(Self.bytes((extended ? "EHLO " : "HELO ") + configuration.heloName))]
    }

    private mutating func afterHello() -> [Action] {
        if configuration.tls != .none, !usesTLS, !startTLSDeclined {
            if extensions.startTLS {
                state = .startTLS
                return [.send(Self.bytes("STARTTLS"))]
            }
            if configuration.tls == .required {
                return fail(isPermanent: false, stage: .startTLS, reason: "TLS is required but \(remoteName) does not offer STARTTLS", quit: true)
            }
        }
        if let credentials = configuration.credentials {
            guard usesTLS || configuration.allowPlaintextAuth else {
                return fail(isPermanent: false, stage: .authentication, reason: "not sending credentials to \(remoteName) without TLS", quit: true)
            }
            // RFC 4954 §4: PLAIN with an initial response; LOGIN only when PLAIN is not offered.
            if extensions.authMechanisms.contains("PLAIN") {
                state = .authPlain
                let response = Self.base64([0] + Array(credentials.username.utf8) + [0] + Array(credentials.password.utf8))
                return [.send(Self.bytes("AUTH PLAIN " + response))]
            }
            if extensions.authMechanisms.contains("LOGIN") {
                state = .authLogin(step: 0)
                return [.send(Self.bytes("AUTH LOGIN"))]
            }
            let reason = "credentials are configured but \(remoteName) offers neither AUTH PLAIN nor AUTH LOGIN"
            return fail(isPermanent: false, stage: .authentication, reason: reason, quit: true)
        }
        return beginTransaction()
    }

    private mutating func authenticationReply(_ reply: SMTPClientReply) -> [Action] {
        if reply.isPositive { return beginTransaction() }
        if reply.code == 334, case .authLogin(let step) = state, step < 2, let credentials = configuration.credentials {
            state = .authLogin(step: step + 1)
            let value = step == 0 ? credentials.username : credentials.password
            return [.send(Self.bytes(Self.base64(Array(value.utf8))))]
        }
        guard reply.isTransient || reply.isPermanent else { return violation("unexpected reply to AUTH: \(reply)") }
        // A refused login is a configuration problem: keep the mail queued, never bounce it.
        let user = configuration.credentials?.username ?? ""
        let reason = "authentication as \(user) at \(remoteName) failed: \(reply)"
        return fail(isPermanent: false, stage: .authentication, reason: reason, reply: reply, quit: true)
    }

    private mutating func beginTransaction() -> [Action] {
        let needsUTF8 = transaction.requireSMTPUTF8 || !transaction.sender.utf8.allSatisfy { $0 < 0x80 }
            || candidates.contains { !transaction.recipients[$0].utf8.allSatisfy { $0 < 0x80 } }
        if needsUTF8, !extensions.smtpUTF8 {
            // RFC 6531 §3.2: without SMTPUTF8 at the server, such a message cannot be relayed.
            let reply = SMTPClientReply(code: 554, enhanced: "5.6.7", lines: ["Remote host \(remoteName) does not support SMTPUTF8"])
            let reason = "message needs SMTPUTF8, which \(remoteName) does not offer"
            return fail(isPermanent: true, stage: .mailFrom, reason: reason, reply: reply, quit: true)
        }
        if let limit = extensions.size, transaction.messageSize > limit {
            // RFC 1870 §6.1: do not send a message the server has announced it will refuse.
            let text = "Message size \(transaction.messageSize) exceeds the limit \(limit) of \(remoteName)"
            let reply = SMTPClientReply(code: 552, enhanced: "5.3.4", lines: [text])
            return fail(isPermanent: true, stage: .mailFrom, reason: "message too big for \(remoteName)", reply: reply, quit: true)
        }
        var mail = "MAIL FROM:<\(Self.isNull(transaction.sender) ? "" : transaction.sender)>"
        if extensions.sizeAnnounced { mail += " SIZE=\(transaction.messageSize)" }
        if transaction.eightBit, extensions.eightBitMIME { mail += " BODY=8BITMIME" }
        if needsUTF8 { mail += " SMTPUTF8" }
        guard extensions.pipelining else {
            state = .mail
            return [.send(Self.bytes(mail))]
        }
        var commands = Self.bytes(mail)
        pipeline = [.mail]
        for index in candidates {
            commands += Self.bytes("RCPT TO:<\(transaction.recipients[index])>")
            pipeline.append(.recipient(index))
        }
        commands += Self.bytes("DATA")
        pipeline.append(.data)
        pipelineIndex = 0
        state = .pipelined
        return [.send(commands)]
    }

    private mutating func sendRecipient(_ index: Int) -> [Action] {
        state = .recipient(index: index)
        return [.send(Self.bytes("RCPT TO:<\(transaction.recipients[candidates[index]])>"))]
    }

    /// Records a reply to RCPT; false when it is not a valid one.
    private mutating func decideRecipient(_ index: Int, reply: SMTPClientReply) -> Bool {
        if reply.isPositive {
            accepted.append(index)
        } else if reply.isTransient || Self.isOutOfSequence(reply) {
            results[index] = .temporaryFailure("RCPT TO refused by \(remoteName): \(reply)")
        } else if reply.isPermanent {
            results[index] = .permanentFailure(reply)
        } else {
            return false
        }
        return true
    }

    /// RFC 2920 §3.1: check every reply of the group, in order, including DATA's.
    private mutating func pipelinedReply(_ reply: SMTPClientReply) -> [Action] {
        guard pipelineIndex < pipeline.count else { return violation("unexpected reply \(reply)") }
        let command = pipeline[pipelineIndex]
        pipelineIndex += 1
        switch command {
        case .mail:
            if reply.isPositive { return [] }
            guard reply.isTransient || reply.isPermanent else { return violation("unexpected reply to MAIL FROM: \(reply)") }
            // Keep reading the RCPT and DATA replies; they are now meaningless.
            mailRefused = true
            recordFailure(isPermanent: reply.isPermanent, stage: .mailFrom, reason: "MAIL FROM refused by \(remoteName): \(reply)", reply: reply)
            return []
        case .recipient(let index):
            if mailRefused { return [] }
            recipientsStarted = true
            return decideRecipient(index, reply: reply) ? [] : violation("unexpected reply to RCPT TO: \(reply)")
        case .data:
            if reply.code == 354 {
                if mailRefused || accepted.isEmpty {
                    // RFC 2920 §3.1: DATA was accepted with no valid recipient: send an empty message.
                    if !mailRefused { summary = "no recipient accepted" }
                    state = .emptyMessage
                    return [.send(Self.bytes("."))]
                }
                state = .sendingMessage
                return [.sendMessage]
            }
            if mailRefused || accepted.isEmpty {
                if !mailRefused { summary = "no recipient accepted" }
                return finish(quit: true)
            }
            guard reply.isTransient || reply.isPermanent else { return violation("unexpected reply to DATA: \(reply)") }
            decideAccepted(reply, after: "DATA")
            return finish(quit: true)
        }
    }

    /// The accepted recipients share the reply to DATA or to the end of data.
    private mutating func decideAccepted(_ reply: SMTPClientReply, after command: String) {
        summary = "\(command): \(reply)"
        for index in accepted where results[index] == nil {
            if reply.isPositive {
                results[index] = .delivered(reply)
            } else if reply.isTransient || Self.isOutOfSequence(reply) {
                results[index] = .temporaryFailure("\(command) refused by \(remoteName): \(reply)")
            } else {
                results[index] = .permanentFailure(reply)
            }
        }
    }

    // MARK: - Ending

    private mutating func refused(_ reply: SMTPClientReply, stage: SMTPSessionFailure.Stage, what: String) -> [Action] {
        guard reply.isTransient || reply.isPermanent else { return violation("unexpected reply to \(what): \(reply)") }
        return fail(isPermanent: reply.isPermanent, stage: stage, reason: "\(what) refused by \(remoteName): \(reply)", reply: reply, quit: true)
    }

    /// RFC 5321 §4.2.1 and the rest: a server that breaks the protocol is not answered further.
    private mutating func violation(_ reason: String) -> [Action] {
        fail(isPermanent: false, stage: stage, reason: "protocol violation by \(remoteName): \(reason)", quit: false)
    }

    private mutating func fail(
        isPermanent: Bool, stage: SMTPSessionFailure.Stage, reason: String, reply: SMTPClientReply? = nil, quit: Bool
    ) -> [Action] {
        recordFailure(isPermanent: isPermanent, stage: stage, reason: reason, reply: reply)
        return finish(quit: quit)
    }

    /// Every undecided recipient gets the failure; before any RCPT reply it is also the session's.
    private mutating func recordFailure(isPermanent: Bool, stage: SMTPSessionFailure.Stage, reason: String, reply: SMTPClientReply?) {
        let failure = SMTPSessionFailure(isPermanent: isPermanent, reason: reason, reply: reply, stage: stage)
        if sessionFailure == nil, !recipientsStarted { sessionFailure = failure }
        let result: SMTPRecipientOutcome = isPermanent
            ? .permanentFailure(reply ?? SMTPClientReply(code: 554, enhanced: "5.0.0", lines: [reason]))
            : .temporaryFailure(reason)
        for index in results.indices where results[index] == nil { results[index] = result }
        summary = reason
    }

    private mutating func finish(quit: Bool) -> [Action] {
        let recipients = results.map { $0 ?? .temporaryFailure("not attempted") }
        outcome = SMTPDeliveryOutcome(
            sessionFailure: sessionFailure, recipients: recipients, usedTLS: usesTLS,
            transcriptSummary: "\(remoteName) \(tlsVersion ?? "plaintext"): \(summary)")
        if quit {
            state = .quitting
            return [.send(Self.bytes("QUIT"))]
        }
        return close()
    }

    private mutating func close() -> [Action] {
        state = .closed
        if let outcome { return [.close(outcome)] }
        // Unreachable: every path to `.closed` goes through `finish`.
        return [.close(SMTPDeliveryOutcome(
            sessionFailure: nil, recipients: results.map { $0 ?? .temporaryFailure("session ended") },
            usedTLS: usesTLS, transcriptSummary: "\(remoteName): session ended"))]
    }

    private var stage: SMTPSessionFailure.Stage {
        switch state {
        case .idle: .local
        case .greeting: .greeting
        case .hello: .hello
        case .startTLS: .startTLS
        case .tlsHandshake: .tlsHandshake
        case .authPlain, .authLogin: .authentication
        default: .mailFrom
        }
    }

    private var waitingFor: String {
        switch state {
        case .idle, .closed: "nothing"
        case .greeting: "the greeting"
        case .hello(let extended): extended ? "the reply to EHLO" : "the reply to HELO"
        case .startTLS: "the reply to STARTTLS"
        case .tlsHandshake: "the TLS handshake"
        case .authPlain, .authLogin: "the reply to AUTH"
        case .mail: "the reply to MAIL FROM"
        case .recipient: "the reply to RCPT TO"
        case .data: "the reply to DATA"
        case .pipelined:
            switch pipelineIndex < pipeline.count ? pipeline[pipelineIndex] : .data {
            case .mail: "the reply to MAIL FROM"
            case .recipient: "the reply to RCPT TO"
            case .data: "the reply to DATA"
            }
        case .sendingMessage: "the server to accept message data"
        case .finalReply, .emptyMessage: "the reply to the end of data"
        case .quitting: "the reply to QUIT"
        }
    }

    // MARK: - Encoding and checks

    /// 503 (bad sequence of commands) after MAIL was accepted says the two sides are out of
    /// step, nothing about the recipient or the message: never a reason to bounce.
    static func isOutOfSequence(_ reply: SMTPClientReply) -> Bool { reply.code == 503 }

    static func bytes(_ command: String) -> [UInt8] { Array(command.utf8) + [0x0d, 0x0a] }

    static func isNull(_ sender: String) -> Bool { sender.isEmpty || sender == "<>" }

    /// No command injection: the caller validated the syntax, but an address that could end
    /// the command or the path early (CR, LF, NUL and other controls, `<`, `>`, a space
    /// outside a quoted local part) is refused here again.
    static func isSafeAddress(_ address: String, allowNull: Bool) -> Bool {
        if isNull(address) { return allowNull }
        let bytes = Array(address.utf8)
        guard bytes.count <= 512 else { return false }
        var quoted = false
        var escaped = false
        for byte in bytes {
            if byte < 0x20 || byte == 0x7f || byte == UInt8(ascii: "<") || byte == UInt8(ascii: ">") { return false }
            if escaped {
                escaped = false
            } else if quoted, byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if byte == UInt8(ascii: " "), !quoted {
                return false
            }
        }
        return !quoted && !escaped
    }

    static func isValidHeloName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255 && name.utf8.allSatisfy { (0x21...0x7e).contains($0) }
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = UInt32(bytes[index])
            let b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let group = b0 << 16 | b1 << 8 | b2
            output.append(alphabet[Int(group >> 18 & 63)])
            output.append(alphabet[Int(group >> 12 & 63)])
            output.append(index + 1 < bytes.count ? alphabet[Int(group >> 6 & 63)] : UInt8(ascii: "="))
            output.append(index + 2 < bytes.count ? alphabet[Int(group & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func format(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        return seconds >= 1 ? "\(seconds) s" : "\(duration.components.attoseconds / 1_000_000_000_000_000) ms"
    }
}
