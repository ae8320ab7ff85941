/// A DNS server to ask: an IP literal (IPv4 or IPv6, without brackets) and a port.
/// Host names are not accepted here: resolving the resolver's own address would need a resolver.
public struct DNSServer: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 53) {
        self.host = host
        self.port = port
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// The record types this client asks for (RFC 1035 §3.2.2, RFC 3596 for AAAA).
public enum DNSRecordType: UInt16, Sendable, Hashable, CustomStringConvertible {
    case a = 1
    case ns = 2
    case cname = 5
    case soa = 6
    case ptr = 12
    case mx = 15
    case txt = 16
    case aaaa = 28

    public var description: String {
        switch self {
        case .a: "A"
        case .ns: "NS"
        case .cname: "CNAME"
        case .soa: "SOA"
        case .ptr: "PTR"
        case .mx: "MX"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        }
    }
}

/// One mail exchanger (RFC 5321 §5.1). A null MX (RFC 7505) has preference 0 and exchange ".".
public struct MXRecord: Sendable, Equatable, Hashable {
    public var preference: UInt16
    /// Lowercased host name without the trailing dot, or "." for the root (null MX).
    public var exchange: String

    public init(preference: UInt16, exchange: String) {
        self.preference = preference
        self.exchange = exchange
    }
}

/// Why a lookup failed. Only `noSuchDomain` is a definite answer; SPF, DMARC and the queue
/// runner treat every other case as a temporary error (RFC 7208 §5 "temperror").
public enum DNSLookupError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name does not exist (RCODE 3, NXDOMAIN). The payload is the name asked for.
    case noSuchDomain(String)
    /// The server answered with an error RCODE (SERVFAIL 2, NOTIMP 4, REFUSED 5, ...).
    /// The payload is the name asked for; `rcode` is the (EDNS-extended) RCODE of the last answer.
    case serverFailure(String, rcode: Int)
    /// No usable answer from any server within `timeout` × `attempts` (also: servers
    /// unreachable, no server configured, or the lookup task was cancelled). The payload is the name.
    case timeout(String)
    /// Every answer received was broken or did not match the question; the payload says
    /// which name, which server and what was wrong.
    case malformedResponse(String)
    /// The name (or IP address, for `ptr`) cannot be asked for. The payload is the input as given
    /// (shortened when very long).
    case invalidName(String)

    public var description: String {
        switch self {
        case .noSuchDomain(let name):
            "DNS: \(name) does not exist (NXDOMAIN)"
        case .serverFailure(let name, let rcode):
            "DNS: lookup of \(name) failed with \(DNSLookupError.rcodeName(rcode)) (rcode \(rcode)); temporary, "
                + "check the configured DNS servers if it persists"
        case .timeout(let name):
            "DNS: no answer for \(name) from any configured DNS server (timed out or unreachable); "
                + "check that the DNS servers in the configuration are up"
        case .malformedResponse(let detail):
            "DNS: malformed response: \(detail)"
        case .invalidName(let name):
            "DNS: '\(name)' is not a name that can be looked up: labels of letters, digits, '-' and '_' only, "
                + "at most 63 octets each and 253 in all; internationalised names must be IDNA-encoded (xn--...)"
        }
    }

    static func rcodeName(_ rcode: Int) -> String {
        switch rcode {
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        case 16: "BADVERS"
        default: "RCODE \(rcode)"
        }
    }

    /// Shortens hostile input before it goes into an error or a log line.
    static func shortened(_ text: String, limit: Int = 300) -> String {
        text.utf8.count <= limit ? text : String(decoding: text.utf8.prefix(limit), as: UTF8.self) + "..."
    }
}
