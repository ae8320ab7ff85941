import Foundation

/// The SMTP server side of one connection as a pure state machine (STYLE.md): it is fed the
/// bytes the client sent and the results of the work it asked for, and returns actions.
/// It does no I/O, so every transition is tested with transcripts.
///
/// Pipelining (RFC 2920) falls out of the design: input is buffered, and while the session
/// waits for a result (recipient lookup, authentication, storing a message) it parses nothing
/// further; the result resumes parsing of what is buffered.
public struct SMTPSession: Sendable {
    public struct Configuration: Sendable {
        public var hostname: String
        /// Submission (587/465) vs relay/MX (25): submission requires AUTH before MAIL.
        public var isSubmission: Bool
        public var tlsAvailable: Bool
        /// Whether the connection is already encrypted (465, or after STARTTLS).
        public var tlsActive: Bool
        /// AUTH is offered only over TLS unless this is set (loopback in dev).
        public var allowPlaintextAuth: Bool
        public var maxMessageSize: Int
        public var maxRecipients: Int
        /// Errors after which the server closes the connection (RFC 5321 §4.3.2 allows 421).
        public var maxErrors: Int
        public var maxBufferedInput: Int

        public init(
            hostname: String, isSubmission: Bool = false, tlsAvailable: Bool = false, tlsActive: Bool = false,
            allowPlaintextAuth: Bool = false, maxMessageSize: Int = 52_428_800, maxRecipients: Int = 1000,
            maxErrors: Int = 10, maxBufferedInput: Int = 64 * 1024
        ) {
            self.hostname = hostname
            self.isSubmission = isSubmission
            self.tlsAvailable = tlsAvailable
            self.tlsActive = tlsActive
            self.allowPlaintextAuth = allowPlaintextAuth
            self.maxMessageSize = maxMessageSize
            self.maxRecipients = maxRecipients
            self.maxErrors = maxErrors
            self.maxBufferedInput = maxBufferedInput
        }
    }

    /// A message ready to be stored: envelope plus the exact bytes received.
    public struct Transaction: Sendable, Equatable {
        public var clientName: String
        public var sender: SMTPMailbox?
        public var recipients: [SMTPMailbox]
        public var message: [UInt8]
        public var authenticatedUser: String?
        public var usedTLS: Bool
        /// MAIL FROM carried SMTPUTF8 (RFC 6531): relays must keep it.
        public var requiresSMTPUTF8: Bool = false
        /// MAIL FROM carried BODY=8BITMIME (RFC 6152).
        public var eightBit: Bool = false
    }

    public enum Action: Sendable, Equatable {
        case send(SMTPReply)
        /// Start TLS now; the next bytes are the TLS handshake.
        case startTLS
        /// Decide the reverse-path (rate limits, sender ownership on submission); answer with `senderChecked`.
        case checkSender(SMTPMailbox?)
        /// Look the recipient up; answer with `recipientChecked`.
        case checkRecipient(SMTPMailbox)
        /// Check the credentials; answer with `authenticationFinished`.
        case authenticate(user: String, password: String)
        /// Store the message durably; answer with `transactionStored` (RFC 5321 §6.1: the
        /// 250 is sent only after that).
        case store(Transaction)
        case close
    }

    public enum RecipientVerdict: Sendable, Equatable {
        case accept
        case reject(SMTPReply)
    }

    enum Phase: Sendable, Equatable {
        case greeted  // before HELO/EHLO
        case ready  // after HELO/EHLO, no transaction
        case mail  // MAIL accepted
        case data(SMTPDataReader)
        case bdat(remaining: Int, last: Bool, size: Int)
        case authLogin(user: String?)
        case authPlain
        case closed

        static func == (lhs: Phase, rhs: Phase) -> Bool {
            switch (lhs, rhs) {
            case (.greeted, .greeted), (.ready, .ready), (.mail, .mail), (.data, .data), (.authPlain, .authPlain), (.closed, .closed): return true
            case (.bdat(let a, let b, let x), .bdat(let c, let d, let y)): return a == c && b == d && x == y
            case (.authLogin(let a), .authLogin(let b)): return a == b
            default: return false
            }
        }
    }

    enum Waiting: Sendable, Equatable {
        case none
        case sender(SMTPMailbox?, size: Int?, smtputf8: Bool, eightBit: Bool)
        case recipient(SMTPMailbox)
        case authentication(user: String)
        case storing
        case tls
    }

    public private(set) var configuration: Configuration
    private(set) var phase: Phase = .greeted
    private(set) var waiting: Waiting = .none
    private var input: [UInt8] = []
    private var clientName = ""
    private var extended = false
    private var sender: SMTPMailbox?
    private var recipients: [SMTPMailbox] = []
    private var declaredSize: Int?
    private var requiresSMTPUTF8 = false
    private var eightBit = false
    private var chunks: [UInt8] = []
    /// A BDAT chunk pushed the message past the size limit; the rest is read and dropped.
    private var chunksOverflowed = false
    private var errors = 0
    public private(set) var authenticatedUser: String?
    private let parser = SMTPCommandParser()

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The greeting (RFC 5321 §4.3.1).
    public mutating func start() -> [Action] {
        [.send(SMTPReply(220, nil, "\(configuration.hostname) ESMTP Service Package"))]
    }

    public mutating func receive(_ bytes: [UInt8]) -> [Action] {
        guard phase != .closed else { return [] }
        input.append(contentsOf: bytes)
        return process()
    }

    /// The sender verdict: nil accepts; a reply (4xx rate limit, 5xx not yours) refuses.
    public mutating func senderChecked(_ refusal: SMTPReply?) -> [Action] {
        guard case .sender(let mailbox, let size, let smtputf8, let eightBit) = waiting else { return [] }
        waiting = .none
        if let refusal {
            return [.send(refusal)] + countError() + process()
        }
        sender = mailbox
        declaredSize = size
        requiresSMTPUTF8 = smtputf8
        self.eightBit = eightBit
        recipients = []
        phase = .mail
        return [.send(SMTPReply(250, "2.1.0", "Sender OK"))] + process()
    }

    public mutating func recipientChecked(_ verdict: RecipientVerdict) -> [Action] {
        guard case .recipient(let mailbox) = waiting else { return [] }
        waiting = .none
        var actions: [Action]
        switch verdict {
        case .accept:
            recipients.append(mailbox)
            actions = [.send(SMTPReply(250, "2.1.5", "Recipient OK"))]
        case .reject(let reply):
            actions = [.send(reply)] + countError()
        }
        return actions + process()
    }

    public mutating func authenticationFinished(success: Bool) -> [Action] {
        guard case .authentication(let user) = waiting else { return [] }
        waiting = .none
        if success {
            authenticatedUser = user
            return [.send(SMTPReply(235, "2.7.0", "Authentication successful"))] + process()
        }
        // RFC 4954 §6: 535; the connection layer adds the delay and the rate limit.
        return [.send(SMTPReply(535, "5.7.8", "Authentication credentials invalid"))] + countError() + process()
    }

    /// The store result: nil is success; a reply (4xx/5xx) otherwise.
    public mutating func transactionStored(failure: SMTPReply?) -> [Action] {
        guard waiting == .storing else { return [] }
        waiting = .none
        resetTransaction()
        phase = .ready
        return [.send(failure ?? SMTPReply(250, "2.0.0", "Message accepted for delivery"))] + process()
    }

    public mutating func tlsStarted() -> [Action] {
        guard waiting == .tls else { return [] }
        waiting = .none
        configuration.tlsActive = true
        // RFC 3207 §4.2: forget everything learnt before TLS; the client starts over with EHLO.
        // Anything still buffered arrived in plaintext and is dropped (CVE-2011-0411).
        input = []
        phase = .greeted
        clientName = ""
        resetTransaction()
        return process()
    }

    // MARK: - Input processing

    private mutating func process() -> [Action] {
        var actions: [Action] = []
        while waiting == .none && phase != .closed {
            switch phase {
            case .data(var reader):
                // Take the reader out of `phase` first: otherwise the enum still shares its
                // buffers and every chunk would copy the message received so far (O(n²)).
                phase = .ready
                let (outcome, used) = reader.feed(input)
                input.removeFirst(used)
                switch outcome {
                case .needMoreData:
                    phase = .data(reader)
                    return actions
                case .rejected(let reply):
                    resetTransaction()
                    phase = .ready
                    actions.append(.send(reply))
                case .complete(let message):
                    actions.append(.store(transaction(message)))
                    waiting = .storing
                }
            case .bdat(let remaining, let last, let size):
                let take = min(remaining, input.count)
                if chunksOverflowed || chunks.count + take > configuration.maxMessageSize {
                    chunksOverflowed = true
                    chunks = []
                } else {
                    chunks.append(contentsOf: input[..<take])
                }
                input.removeFirst(take)
                if take < remaining {
                    phase = .bdat(remaining: remaining - take, last: last, size: size)
                    return actions
                }
                if chunksOverflowed {
                    resetTransaction()
                    phase = .ready
                    actions.append(.send(SMTPReply(552, "5.3.4", "Message exceeds the maximum size of \(configuration.maxMessageSize) bytes")))
                } else if last {
                    actions.append(.store(transaction(chunks)))
                    waiting = .storing
                } else {
                    phase = .mail
                    actions.append(.send(SMTPReply(250, "2.0.0", "\(size) octets received")))
                }
            default:
                guard let lineEnd = input.firstIndex(of: 0x0a) else {
                    if input.count > configuration.maxBufferedInput {
                        actions.append(.send(SMTPSyntaxError.lineTooLong.reply))
                        actions.append(contentsOf: closeWith(nil))
                    }
                    return actions
                }
                var line = Array(input[..<lineEnd])
                input.removeFirst(lineEnd + 1)
                if line.last == 0x0d { line.removeLast() }
                actions.append(contentsOf: handleLine(line))
            }
        }
        return actions
    }

    private mutating func handleLine(_ line: [UInt8]) -> [Action] {
        switch phase {
        case .authPlain:
            phase = extended ? .ready : .greeted
            return finishPlain(String(decoding: line, as: UTF8.self))
        case .authLogin(let user):
            let text = String(decoding: line, as: UTF8.self)
            if text == "*" { return abortAuth() }
            guard let decoded = Base64.decode(text).map({ String(decoding: $0, as: UTF8.self) }) else {
                phase = .ready
                return [.send(SMTPReply(501, "5.5.2", "Cannot decode response"))] + countError()
            }
            if let user {
                phase = .ready
                return startAuthentication(user: user, password: decoded)
            }
            phase = .authLogin(user: decoded)
            return [.send(SMTPReply(334, nil, "UGFzc3dvcmQ6"))]  // "Password:"
        default:
            break
        }
        switch parser.parse(line) {
        case .failure(let error):
            return [.send(error.reply)] + countError()
        case .success(let command):
            return handle(command)
        }
    }

    private mutating func handle(_ command: SMTPCommand) -> [Action] {
        switch command {
        case .helo(let name):
            clientName = name
            extended = false
            resetTransaction()
            phase = .ready
            return [.send(SMTPReply(250, nil, "\(configuration.hostname)"))]
        case .ehlo(let name):
            clientName = name
            extended = true
            resetTransaction()
            phase = .ready
            return [.send(SMTPReply(code: 250, enhanced: nil, lines: ["\(configuration.hostname)"] + capabilities))]
        case .quit:
            return closeWith(SMTPReply(221, "2.0.0", "Bye"))
        case .noop:
            return [.send(SMTPReply(250, "2.0.0", "OK"))]
        case .rset:
            resetTransaction()
            if phase != .greeted { phase = .ready }
            return [.send(SMTPReply(250, "2.0.0", "OK"))]
        case .help:
            return [.send(SMTPReply(214, "2.0.0", "See RFC 5321"))]
        case .vrfy:
            // RFC 5321 §3.5.3: 252 is the answer that reveals nothing.
            return [.send(SMTPReply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery"))]
        case .startTLS:
            guard configuration.tlsAvailable, !configuration.tlsActive else {
                return [.send(SMTPReply(502, "5.5.1", "STARTTLS not available"))] + countError()
            }
            guard phase == .ready || phase == .greeted else { return badSequence() }
            waiting = .tls
            return [.send(SMTPReply(220, "2.0.0", "Ready to start TLS")), .startTLS]
        case .auth(let mechanism, let initialResponse):
            return handleAuth(mechanism, initialResponse)
        case .mail(let from, let parameters):
            return handleMail(from, parameters)
        case .rcpt(let to, _):
            guard phase == .mail else { return badSequence() }
            guard recipients.count < configuration.maxRecipients else {
                return [.send(SMTPReply(452, "4.5.3", "Too many recipients"))]
            }
            waiting = .recipient(to)
            return [.checkRecipient(to)]
        case .data:
            // RFC 3030 §2: DATA after BDAT in one transaction is a sequence error.
            guard phase == .mail, chunks.isEmpty else { return badSequence() }
            guard !recipients.isEmpty else { return [.send(SMTPReply(554, "5.5.1", "No valid recipients"))] + countError() }
            phase = .data(SMTPDataReader(maxMessageSize: configuration.maxMessageSize))
            return [.send(SMTPReply(354, nil, "End data with <CR><LF>.<CR><LF>"))]
        case .bdat(let size, let last):
            guard phase == .mail else { return badSequence() }
            guard !recipients.isEmpty else { return [.send(SMTPReply(554, "5.5.1", "No valid recipients"))] + countError() }
            phase = .bdat(remaining: size, last: last, size: size)
            return []
        }
    }

    private var capabilities: [String] {
        var list = ["PIPELINING", "SIZE \(configuration.maxMessageSize)", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING"]
        if configuration.tlsAvailable && !configuration.tlsActive { list.append("STARTTLS") }
        if authOffered { list.append("AUTH PLAIN LOGIN") }
        return list
    }

    private var authOffered: Bool {
        configuration.isSubmission && (configuration.tlsActive || configuration.allowPlaintextAuth)
    }

    private mutating func handleMail(_ from: SMTPMailbox?, _ parameters: [SMTPParameter]) -> [Action] {
        guard phase == .ready else { return badSequence() }
        if configuration.isSubmission && authenticatedUser == nil {
            return [.send(SMTPReply(530, "5.7.0", "Authentication required"))] + countError()
        }
        var size: Int?
        var smtputf8 = false
        var eightBit = false
        for parameter in parameters {
            switch parameter.keyword {
            case "SIZE":
                guard let value = parameter.value, let declared = Int(value), declared >= 0 else {
                    return [.send(SMTPReply(501, "5.5.4", "Invalid SIZE"))] + countError()
                }
                guard declared <= configuration.maxMessageSize else {
                    return [.send(SMTPReply(552, "5.3.4", "Message size exceeds the maximum of \(configuration.maxMessageSize) bytes"))]
                }
                size = declared
            case "BODY":
                guard let value = parameter.value?.uppercased(), ["7BIT", "8BITMIME", "BINARYMIME"].contains(value) else {
                    return [.send(SMTPReply(501, "5.5.4", "Invalid BODY"))] + countError()
                }
                eightBit = value != "7BIT"
            case "SMTPUTF8":
                smtputf8 = true
            case "AUTH", "RET", "ENVID":
                break
            default:
                return [.send(SMTPReply(555, "5.5.4", "Unsupported parameter \(parameter.keyword)"))] + countError()
            }
        }
        waiting = .sender(from, size: size, smtputf8: smtputf8, eightBit: eightBit)
        return [.checkSender(from)]
    }

    private mutating func handleAuth(_ mechanism: String, _ initialResponse: String?) -> [Action] {
        guard authOffered else {
            return [.send(SMTPReply(503, "5.5.1", configuration.isSubmission ? "Use STARTTLS first" : "AUTH not available"))] + countError()
        }
        guard authenticatedUser == nil else { return [.send(SMTPReply(503, "5.5.1", "Already authenticated"))] }
        guard phase == .ready else { return badSequence() }
        switch mechanism {
        case "PLAIN":
            if let initialResponse { return finishPlain(initialResponse) }
            phase = .authPlain
            return [.send(SMTPReply(334, nil, ""))]
        case "LOGIN":
            if let initialResponse, let user = Base64.decode(initialResponse) {
                phase = .authLogin(user: String(decoding: user, as: UTF8.self))
                return [.send(SMTPReply(334, nil, "UGFzc3dvcmQ6"))]
            }
            phase = .authLogin(user: nil)
            return [.send(SMTPReply(334, nil, "VXNlcm5hbWU6"))]  // "Username:"
        default:
            return [.send(SMTPReply(504, "5.5.4", "Unrecognized authentication type"))] + countError()
        }
    }

    /// RFC 4616: base64 of `authzid NUL authcid NUL password`.
    private mutating func finishPlain(_ response: String) -> [Action] {
        if response == "*" { return abortAuth() }
        guard let bytes = Base64.decode(response == "=" ? "" : response) else {
            return [.send(SMTPReply(501, "5.5.2", "Cannot decode response"))] + countError()
        }
        let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return [.send(SMTPReply(501, "5.5.2", "Malformed PLAIN response"))] + countError() }
        let authzid = String(decoding: parts[0], as: UTF8.self)
        let user = String(decoding: parts[1], as: UTF8.self)
        guard authzid.isEmpty || authzid == user else {
            return [.send(SMTPReply(535, "5.7.8", "Authorization identity not allowed"))] + countError()
        }
        return startAuthentication(user: user, password: String(decoding: parts[2], as: UTF8.self))
    }

    private mutating func startAuthentication(user: String, password: String) -> [Action] {
        guard !user.isEmpty, !password.isEmpty else {
            return [.send(SMTPReply(535, "5.7.8", "Authentication credentials invalid"))] + countError()
        }
        waiting = .authentication(user: user)
        return [.authenticate(user: user, password: password)]
    }

    private mutating func abortAuth() -> [Action] {
        phase = .ready
        return [.send(SMTPReply(501, "5.0.0", "Authentication cancelled"))]
    }

    private mutating func badSequence() -> [Action] {
        [.send(SMTPReply(503, "5.5.1", "Bad sequence of commands"))] + countError()
    }

    private mutating func countError() -> [Action] {
        errors += 1
        guard errors >= configuration.maxErrors else { return [] }
        return closeWith(SMTPReply(421, "4.7.0", "Too many errors, closing connection"))
    }

    private mutating func closeWith(_ reply: SMTPReply?) -> [Action] {
        phase = .closed
        input = []
        return (reply.map { [Action.send($0)] } ?? []) + [.close]
    }

    private mutating func resetTransaction() {
        sender = nil
        recipients = []
        declaredSize = nil
        requiresSMTPUTF8 = false
        eightBit = false
        chunks = []
        chunksOverflowed = false
    }

    private func transaction(_ message: [UInt8]) -> Transaction {
        Transaction(
            clientName: clientName, sender: sender, recipients: recipients, message: message,
            authenticatedUser: authenticatedUser, usedTLS: configuration.tlsActive,
            requiresSMTPUTF8: requiresSMTPUTF8, eightBit: eightBit)
    }
}

enum Base64 {
    /// Strict decoding of a SASL response; nil on anything that is not base64.
    static func decode(_ text: String) -> [UInt8]? {
        if text.isEmpty { return [] }
        return Data(base64Encoded: text).map(Array.init)
    }
}
