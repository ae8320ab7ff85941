import NIOSSL

/// Whether and how the client uses STARTTLS (RFC 3207).
public enum SMTPClientTLSPolicy: Sendable, Equatable {
    /// Never send STARTTLS.
    case none
    /// Use STARTTLS when offered (RFC 7435 opportunistic security); plaintext otherwise.
    case opportunistic
    /// Fail the session (temporarily) when STARTTLS is not offered or does not succeed.
    case required
}

public struct SMTPClientCredentials: Sendable, Equatable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

public struct SMTPClientConfiguration: Sendable {
    /// Our node's host name, sent with EHLO/HELO.
    public var heloName: String
    public var tls: SMTPClientTLSPolicy
    /// Verify the server's certificate chain and name. False for opportunistic MX delivery
    /// (RFC 7435 §4: an unauthenticated encrypted channel beats plaintext); true for a smarthost.
    public var verifyCertificates: Bool
    /// Trust roots for verification (the system store by default).
    public var trustRoots: NIOSSLTrustRoots
    /// AUTH PLAIN, or LOGIN when only that is offered (RFC 4954). Sent only over TLS unless
    /// `allowPlaintextAuth`. When set and AUTH cannot be done, the session fails temporarily
    /// rather than sending mail unauthenticated.
    public var credentials: SMTPClientCredentials?
    public var allowPlaintextAuth: Bool

    // Timeouts: RFC 5321 §4.5.3.2 gives the minimum a client should wait at each step.
    public var connectTimeout: Duration
    /// Initial 220 message: 5 minutes.
    public var greetingTimeout: Duration
    /// EHLO, STARTTLS (and the TLS handshake), AUTH, MAIL, RCPT, QUIT-less commands: 5 minutes.
    public var commandTimeout: Duration
    /// DATA initiation (waiting for 354): 2 minutes.
    public var dataInitiationTimeout: Duration
    /// Data block: no write progress for this long while sending the message: 3 minutes.
    public var dataBlockTimeout: Duration
    /// DATA termination (waiting for the reply to `.`): 10 minutes.
    public var dataTimeout: Duration
    /// How long to wait for the 221 after QUIT; the outcome is already decided then.
    public var quitTimeout: Duration
    /// A bound on the whole session, however slowly a peer trickles replies.
    public var sessionTimeout: Duration

    /// Peer replies are hostile: bounds on one reply line (with its CRLF) and on a reply's lines.
    public var maxReplyLineLength: Int
    public var maxReplyLines: Int

    public init(
        heloName: String,
        tls: SMTPClientTLSPolicy = .opportunistic,
        verifyCertificates: Bool = false,
        trustRoots: NIOSSLTrustRoots = .default,
        credentials: SMTPClientCredentials? = nil,
        allowPlaintextAuth: Bool = false,
        connectTimeout: Duration = .seconds(30),
        greetingTimeout: Duration = .seconds(300),
        commandTimeout: Duration = .seconds(300),
        dataInitiationTimeout: Duration = .seconds(120),
        dataBlockTimeout: Duration = .seconds(180),
        dataTimeout: Duration = .seconds(600),
        quitTimeout: Duration = .seconds(5),
        sessionTimeout: Duration = .seconds(1800),
        maxReplyLineLength: Int = 2048,
        maxReplyLines: Int = 100
    ) {
        self.heloName = heloName
        self.tls = tls
        self.verifyCertificates = verifyCertificates
        self.trustRoots = trustRoots
        self.credentials = credentials
        self.allowPlaintextAuth = allowPlaintextAuth
        self.connectTimeout = connectTimeout
        self.greetingTimeout = greetingTimeout
        self.commandTimeout = commandTimeout
        self.dataInitiationTimeout = dataInitiationTimeout
        self.dataBlockTimeout = dataBlockTimeout
        self.dataTimeout = dataTimeout
        self.quitTimeout = quitTimeout
        self.sessionTimeout = sessionTimeout
        self.maxReplyLineLength = maxReplyLineLength
        self.maxReplyLines = maxReplyLines
    }

    /// For a smarthost: TLS required and verified, with credentials.
    public static func smarthost(heloName: String, credentials: SMTPClientCredentials?) -> SMTPClientConfiguration {
        SMTPClientConfiguration(heloName: heloName, tls: .required, verifyCertificates: true, credentials: credentials)
    }
}
