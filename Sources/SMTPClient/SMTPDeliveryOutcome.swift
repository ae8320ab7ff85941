/// The result of one delivery attempt to one host.
public struct SMTPDeliveryOutcome: Sendable, Equatable {
    /// Set when the session failed before recipients were decided (connect refused, timeout,
    /// greeting 4xx/5xx, MAIL FROM refused, TLS required but not offered, protocol violation):
    /// it applies to every recipient, and `recipients` repeats it for each one not decided
    /// locally (an address refused before connecting keeps its own failure).
    public var sessionFailure: SMTPSessionFailure?
    /// One result per input recipient, in order: accepted (2xx after the end of DATA),
    /// temporary (4xx, timeouts, lost connection), permanent (5xx).
    public var recipients: [SMTPRecipientOutcome]
    public var usedTLS: Bool
    /// Short, for logs: remote host, TLS version, final reply or failure.
    public var transcriptSummary: String

    public init(sessionFailure: SMTPSessionFailure?, recipients: [SMTPRecipientOutcome], usedTLS: Bool, transcriptSummary: String) {
        self.sessionFailure = sessionFailure
        self.recipients = recipients
        self.usedTLS = usedTLS
        self.transcriptSummary = transcriptSummary
    }
}

public enum SMTPRecipientOutcome: Sendable, Equatable {
    /// The server took responsibility for the message (RFC 5321 §6.1).
    case delivered(SMTPClientReply)
    /// Try again later: a 4xx reply, a timeout or a lost connection, with the reason.
    case temporaryFailure(String)
    /// A 5xx reply (or a local refusal with a synthesised 5xx reply): bounce.
    case permanentFailure(SMTPClientReply)
}

public struct SMTPSessionFailure: Sendable, Equatable {
    /// Where the session was when it failed; the queue runner uses it to choose what to do
    /// next (another MX after a connect failure; a retry without TLS after a failed
    /// opportunistic handshake).
    public enum Stage: Sendable, Equatable {
        /// Refused locally before connecting (bad sender address, bad configuration).
        case local
        case connect
        case greeting
        /// EHLO/HELO.
        case hello
        case startTLS
        case tlsHandshake
        case authentication
        /// MAIL FROM, including the local checks against the server's extensions (SIZE, SMTPUTF8).
        case mailFrom
    }

    public var isPermanent: Bool
    public var reason: String
    public var reply: SMTPClientReply?
    public var stage: Stage

    public init(isPermanent: Bool, reason: String, reply: SMTPClientReply? = nil, stage: Stage) {
        self.isPermanent = isPermanent
        self.reason = reason
        self.reply = reply
        self.stage = stage
    }
}
