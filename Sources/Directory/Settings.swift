import Foundation

/// How a setting's raw LDAP value is checked. Every setting has one; see ldap-schema/SETTINGS.md.
public enum ValidationRule: Sendable {
    case integer(ClosedRange<Int>)
    case oneOf([String])
    case boolean
    case absolutePath
    case ipAddress
    case hostName
    case dnsServer
    /// A host name or IP literal with an optional `:port` (IPv6 with a port as `[addr]:port`).
    case hostPort
    /// Free text without control characters (user names, passwords).
    case text
    /// `never` or a whole number of days in the range.
    case neverOrDays(ClosedRange<Int>)
    /// Base64 of exactly this many bytes (a symmetric key).
    case base64Key(bytes: Int)

    /// Returns the value in canonical form, or why it is invalid.
    public func validate(_ raw: String) -> Result<String, SettingProblem.Reason> {
        let value = raw.trimmingCharacters(in: .whitespaces)
        switch self {
        case .integer(let range):
            guard let number = Int(value) else { return .failure(.init("`\(raw)` is not an integer")) }
            guard range.contains(number) else {
                return .failure(.init("\(number) is outside \(range.lowerBound)…\(range.upperBound)"))
            }
            return .success(String(number))
        case .oneOf(let allowed):
            let lowered = value.lowercased()
            guard allowed.contains(lowered) else {
                return .failure(.init("`\(raw)` is not one of: \(allowed.joined(separator: ", "))"))
            }
            return .success(lowered)
        case .boolean:
            switch value.uppercased() {
            case "TRUE": return .success("TRUE")
            case "FALSE": return .success("FALSE")
            default: return .failure(.init("`\(raw)` is not TRUE or FALSE"))
            }
        case .absolutePath:
            guard value.hasPrefix("/") else { return .failure(.init("`\(raw)` is not an absolute path")) }
            guard !value.split(separator: "/").contains("..") else {
                return .failure(.init("`\(raw)` contains a `..` component"))
            }
            guard !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
                return .failure(.init("the path contains control characters"))
            }
            return .success(value)
        case .ipAddress:
            guard IPAddressText.isValid(value) else { return .failure(.init("`\(raw)` is not an IPv4 or IPv6 address")) }
            return .success(value)
        case .hostName:
            guard HostNameText.isValid(value) else { return .failure(.init("`\(raw)` is not a valid host name")) }
            return .success(value.lowercased())
        case .dnsServer:
            if IPAddressText.isValid(value) { return .success(value) }
            let parts = value.split(separator: ":")
            if parts.count == 2, IPAddressText.isIPv4(String(parts[0])), let port = Int(parts[1]), (1...65535).contains(port) {
                return .success(value)
            }
            return .failure(.init("`\(raw)` is not an IP address with an optional :port"))
        case .hostPort:
            guard HostPort.parse(value, defaultPort: 1) != nil else {
                return .failure(.init("`\(raw)` is not a host name or IP address with an optional :port"))
            }
            return .success(value.lowercased())
        case .text:
            guard !raw.isEmpty, !raw.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
                return .failure(.init("the value is empty or contains control characters"))
            }
            return .success(raw)
        case .neverOrDays(let range):
            if value.lowercased() == "never" { return .success("never") }
            guard let days = Int(value), range.contains(days) else {
                return .failure(.init("`\(raw)` is neither never nor a number of days \(range.lowerBound)…\(range.upperBound)"))
            }
            return .success(String(days))
        case .base64Key(let bytes):
            guard let data = Data(base64Encoded: value), data.count == bytes else {
                return .failure(.init("the value is not the base64 of \(bytes) bytes (make one with `openssl rand -base64 \(bytes)`)"))
            }
            return .success(value)
        }
    }
}

public struct SettingDefinition: Sendable {
    public let attribute: String
    public let multiValued: Bool
    /// Canonical default values; empty means "unset".
    public let defaultValues: [String]
    public let rule: ValidationRule
    public let summary: String
}

/// The registry of every setting a node reads from LDAP. Nothing else in the code reads
/// setting attributes by name: modules read the typed `NodeConfig`.
public enum SettingsRegistry {
    static let portRange = 1...65535

    public static let all: [SettingDefinition] = [
        .init(attribute: "svcpkgModule", multiValued: true, defaultValues: ModuleName.allCases.map(\.rawValue),
              rule: .oneOf(ModuleName.allCases.map(\.rawValue)), summary: "protocol modules this node runs"),
        .init(attribute: "svcpkgNodeState", multiValued: false, defaultValues: ["active"],
              rule: .oneOf(NodeState.allCases.map(\.rawValue)), summary: "active, drain (no new connections) or maint"),
        .init(attribute: "svcpkgListenAddress", multiValued: false, defaultValues: ["0.0.0.0"],
              rule: .ipAddress, summary: "address every listener binds"),
        .init(attribute: "svcpkgSmtpPort", multiValued: false, defaultValues: ["25"], rule: .integer(portRange), summary: "SMTP (MX) port"),
        .init(attribute: "svcpkgSubmissionPort", multiValued: false, defaultValues: ["587"], rule: .integer(portRange), summary: "submission port (STARTTLS)"),
        .init(attribute: "svcpkgSmtpsPort", multiValued: false, defaultValues: ["465"], rule: .integer(portRange), summary: "submission port (implicit TLS)"),
        .init(attribute: "svcpkgPop3Port", multiValued: false, defaultValues: ["110"], rule: .integer(portRange), summary: "POP3 port"),
        .init(attribute: "svcpkgPop3sPort", multiValued: false, defaultValues: ["995"], rule: .integer(portRange), summary: "POP3 over TLS port"),
        .init(attribute: "svcpkgImapPort", multiValued: false, defaultValues: ["143"], rule: .integer(portRange), summary: "IMAP port"),
        .init(attribute: "svcpkgImapsPort", multiValued: false, defaultValues: ["993"], rule: .integer(portRange), summary: "IMAP over TLS port"),
        .init(attribute: "svcpkgIrcPort", multiValued: false, defaultValues: ["6667"], rule: .integer(portRange), summary: "IRC port"),
        .init(attribute: "svcpkgIrcsPort", multiValued: false, defaultValues: ["6697"], rule: .integer(portRange), summary: "IRC over TLS port"),
        .init(attribute: "svcpkgHttpPort", multiValued: false, defaultValues: ["80"], rule: .integer(portRange), summary: "HTTP port (web, /healthz)"),
        .init(attribute: "svcpkgHttpsPort", multiValued: false, defaultValues: ["443"], rule: .integer(portRange), summary: "HTTPS port"),
        .init(attribute: "svcpkgAgentPort", multiValued: false, defaultValues: ["9777"], rule: .integer(portRange), summary: "HAProxy agent-check port"),
        .init(attribute: "svcpkgSharedRoot", multiValued: false, defaultValues: ["/srv/svcpkg"], rule: .absolutePath, summary: "root of the shared tree"),
        .init(attribute: "svcpkgLogLevel", multiValued: false, defaultValues: ["info"],
              rule: .oneOf(["trace", "debug", "info", "notice", "warning", "error", "critical"]), summary: "log level"),
        .init(attribute: "svcpkgLockStaleTimeout", multiValued: false, defaultValues: ["30"], rule: .integer(1...3600), summary: "seconds after which an untouched lock file may be broken"),
        .init(attribute: "svcpkgHeartbeatInterval", multiValued: false, defaultValues: ["2"], rule: .integer(1...60), summary: "seconds between heartbeat touches"),
        .init(attribute: "svcpkgHeartbeatStaleAfter", multiValued: false, defaultValues: ["10"], rule: .integer(2...3600), summary: "heartbeat age (s) after which a node counts as stale"),
        .init(attribute: "svcpkgConfigPollInterval", multiValued: false, defaultValues: ["1000"], rule: .integer(100...60000), summary: "milliseconds between LDAP config polls"),
        .init(attribute: "svcpkgDrainTimeout", multiValued: false, defaultValues: ["30"], rule: .integer(0...86400), summary: "seconds sessions get to finish on SIGTERM"),
        .init(attribute: "svcpkgMaxConnections", multiValued: false, defaultValues: ["10000"], rule: .integer(1...1_000_000), summary: "connections at which the node reports full load"),
        .init(attribute: "svcpkgTlsCertificateFile", multiValued: false, defaultValues: [], rule: .absolutePath, summary: "PEM certificate chain"),
        .init(attribute: "svcpkgTlsKeyFile", multiValued: false, defaultValues: [], rule: .absolutePath, summary: "PEM private key"),
        .init(attribute: "svcpkgAllowPlaintextAuthLoopback", multiValued: false, defaultValues: ["FALSE"], rule: .boolean, summary: "allow plaintext auth without TLS from loopback (dev)"),
        .init(attribute: "svcpkgMaxMessageSize", multiValued: false, defaultValues: ["52428800"], rule: .integer(1024...2_147_483_647), summary: "largest message accepted, bytes"),
        .init(attribute: "svcpkgDnsServer", multiValued: false, defaultValues: [], rule: .dnsServer, summary: "DNS server for MX lookups (empty: system resolver)"),
        .init(attribute: "svcpkgHostname", multiValued: false, defaultValues: [], rule: .hostName, summary: "host name in banners (empty: the node name)"),
        .init(attribute: "svcpkgAuthFailureDelay", multiValued: false, defaultValues: ["1000"], rule: .integer(0...60000), summary: "ms a failed authentication is answered late (times recent failures, up to 5)"),
        .init(attribute: "svcpkgMaxAuthFailures", multiValued: false, defaultValues: ["10"], rule: .integer(1...10000), summary: "failures per client address within the window before AUTH is refused"),
        .init(attribute: "svcpkgAuthFailureWindow", multiValued: false, defaultValues: ["300"], rule: .integer(10...86400), summary: "seconds over which failures per client address count"),
        .init(attribute: "svcpkgSmarthost", multiValued: false, defaultValues: [], rule: .hostPort, summary: "relay for all outbound mail (empty: deliver via MX)"),
        .init(attribute: "svcpkgSmarthostUser", multiValued: false, defaultValues: [], rule: .text, summary: "user for AUTH at the smarthost"),
        .init(attribute: "svcpkgSmarthostPassword", multiValued: false, defaultValues: [], rule: .text, summary: "password for AUTH at the smarthost"),
        .init(attribute: "svcpkgOutboundTls", multiValued: false, defaultValues: ["opportunistic"],
              rule: .oneOf(["none", "opportunistic", "required"]), summary: "STARTTLS to remote MX hosts"),
        .init(attribute: "svcpkgRemoteSmtpPort", multiValued: false, defaultValues: ["25"], rule: .integer(portRange), summary: "port of remote MX hosts"),
        .init(attribute: "svcpkgQueueLifetime", multiValued: false, defaultValues: ["432000"], rule: .integer(10...2_592_000), summary: "seconds before an undelivered message bounces"),
        .init(attribute: "svcpkgQueueRetryInterval", multiValued: false, defaultValues: ["300"], rule: .integer(1...86400), summary: "first retry delay in seconds, doubled per attempt up to 1 hour"),
        .init(attribute: "svcpkgMaxConnectionsPerIp", multiValued: false, defaultValues: ["20"], rule: .integer(1...100_000), summary: "SMTP connections per client address on one node"),
        .init(attribute: "svcpkgMessageRatePerIp", multiValued: false, defaultValues: ["600"], rule: .integer(0...1_000_000), summary: "messages per minute per client address on one node (0 = unlimited)"),
        .init(attribute: "svcpkgMessageRatePerUser", multiValued: false, defaultValues: ["1000"], rule: .integer(0...1_000_000), summary: "messages per hour per authenticated user on one node (0 = unlimited)"),
        .init(attribute: "svcpkgPop3Expire", multiValued: false, defaultValues: ["never"], rule: .neverOrDays(0...3650), summary: "POP3 EXPIRE policy"),
        .init(attribute: "svcpkgPop3LoginDelay", multiValued: false, defaultValues: ["0"], rule: .integer(0...86400), summary: "seconds between POP3 logins of one user (0 = none)"),
        .init(attribute: "svcpkgMaxRecipients", multiValued: false, defaultValues: ["100"], rule: .integer(1...10000), summary: "recipients per SMTP transaction"),
        .init(attribute: "svcpkgMaxConnectionsPerUser", multiValued: false, defaultValues: ["20"], rule: .integer(1...100_000), summary: "IMAP connections of one user on one node"),
        .init(attribute: "svcpkgImapPollInterval", multiValued: false, defaultValues: ["1000"], rule: .integer(100...60_000), summary: "milliseconds between checks for changes elsewhere while an IMAP session IDLEs"),
        .init(attribute: "svcpkgChatAllowGuests", multiValued: false, defaultValues: ["FALSE"], rule: .boolean, summary: "IRC clients may chat without logging in"),
        .init(attribute: "svcpkgChatPollInterval", multiValued: false, defaultValues: ["100"], rule: .integer(20...10_000), summary: "milliseconds between checks of followed chat logs for lines from other nodes"),
        .init(attribute: "svcpkgChatFloodBurst", multiValued: false, defaultValues: ["20"], rule: .integer(1...10_000), summary: "IRC commands a client may send at once"),
        .init(attribute: "svcpkgChatFloodRate", multiValued: false, defaultValues: ["4"], rule: .integer(1...1000), summary: "IRC commands per second a client earns back"),
        .init(attribute: "svcpkgWebSessionKey", multiValued: false, defaultValues: [], rule: .base64Key(bytes: 32),
              summary: "cluster key sealing web-mail session cookies, base64 of 32 bytes (unset: web login disabled)"),
        .init(attribute: "svcpkgWebSessionLifetime", multiValued: false, defaultValues: ["43200"], rule: .integer(300...2_592_000),
              summary: "seconds a web-mail login lasts"),
    ]

    /// Settings whose values are secrets: `svcpkg config show` says whether they are set, not what they are.
    public static let secretAttributes: Set<String> = ["svcpkgWebSessionKey", "svcpkgSmarthostPassword"]

    /// Values as logs, `/healthz` and `config show` may print them: secrets as `(secret)`.
    public static func displayed(_ attribute: String, _ values: [String]) -> [String] {
        secretAttributes.contains(attribute) ? values.map { _ in "(secret)" } : values
    }

    public static let byAttribute: [String: SettingDefinition] = Dictionary(
        uniqueKeysWithValues: all.map { ($0.attribute.lowercased(), $0) })

    public static var attributeNames: [String] { all.map(\.attribute) }
}

public enum ModuleName: String, CaseIterable, Sendable, Codable {
    case smtp, submission, pop3, imap, chat, web
}

public enum NodeState: String, CaseIterable, Sendable, Codable {
    case active, drain, maint
}

enum IPAddressText {
    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func isValid(_ text: String) -> Bool {
        var address6 = in6_addr()
        return isIPv4(text) || inet_pton(AF_INET6, text, &address6) == 1
    }
}

/// `host`, `host:port`, `IPv4:port`, an IPv6 literal, or `[IPv6]:port`.
public struct HostPort: Sendable, Equatable {
    public var host: String
    public var port: Int

    public static func parse(_ text: String, defaultPort: Int) -> HostPort? {
        let value = text.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("["), let close = value.firstIndex(of: "]") {
            let host = String(value[value.index(after: value.startIndex)..<close])
            guard IPAddressText.isValid(host) else { return nil }
            let rest = value[value.index(after: close)...]
            if rest.isEmpty { return HostPort(host: host, port: defaultPort) }
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else { return nil }
            return HostPort(host: host, port: port)
        }
        if IPAddressText.isValid(value), value.contains(":") { return HostPort(host: value, port: defaultPort) }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        let host = String(parts[0])
        guard IPAddressText.isValid(host) || HostNameText.isValid(host) else { return nil }
        guard parts.count == 2 else { return HostPort(host: host.lowercased(), port: defaultPort) }
        guard let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
        return HostPort(host: host.lowercased(), port: port)
    }
}

enum HostNameText {
    static func isValid(_ text: String) -> Bool {
        guard (1...253).contains(text.utf8.count) else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte == UInt8(ascii: "-")
                }
        }
    }
}
