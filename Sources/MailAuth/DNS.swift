/// What a DNS lookup can fail with, as SPF, DKIM and DMARC need to tell the cases apart.
///
/// An empty answer (the name exists, no record of that type) is not an error: return `[]`.
public enum MailAuthDNSError: Error, Sendable, Equatable {
    /// NXDOMAIN (RCODE 3): the name does not exist.
    case noSuchDomain
    /// SERVFAIL, timeout, truncation without a TCP retry, …: worth trying again later.
    case temporary(String)
}

/// One MX record. A struct rather than the tuple of the first sketch: tuples are neither
/// `Equatable` nor extensible.
public struct MailAuthMXRecord: Sendable, Equatable {
    public var preference: UInt16
    public var exchange: String

    public init(preference: UInt16, exchange: String) {
        self.preference = preference
        self.exchange = exchange
    }
}

/// The DNS lookups mail authentication needs. The node supplies a real resolver; tests
/// supply a table. Names are passed without a trailing dot; implementations should treat
/// `example.com` and `example.com.` alike and bound their own time per query (RFC 7208
/// §4.6.4 suggests at least 20 seconds for a whole SPF evaluation).
public protocol MailAuthResolver: Sendable {
    /// TXT records of `name`, each one record's character-strings concatenated (RFC 7208
    /// §3.3, RFC 6376 §3.6.2.2).
    func txt(_ name: String) async throws(MailAuthDNSError) -> [String]
    /// IPv4 addresses of `name`, dotted quads.
    func a(_ name: String) async throws(MailAuthDNSError) -> [String]
    /// IPv6 addresses of `name`, in any textual form `IPAddress` parses.
    func aaaa(_ name: String) async throws(MailAuthDNSError) -> [String]
    func mx(_ name: String) async throws(MailAuthDNSError) -> [MailAuthMXRecord]
    /// Host names of the PTR records for `ip` (the implementation builds the
    /// in-addr.arpa / ip6.arpa name).
    func ptr(_ ip: String) async throws(MailAuthDNSError) -> [String]
}

/// Hard limits on what a hostile message or DNS zone can make us do. The defaults follow
/// the RFCs where they give a number and otherwise stay far above what real mail needs.
public enum MailAuthLimits {
    /// Header fields looked at in one message; the rest are ignored.
    public static let maxHeaderFields = 1000
    /// Bytes of header section looked at.
    public static let maxHeaderBytes = 1 << 20
    /// DKIM-Signature fields verified per message; later ones are ignored.
    public static let maxDKIMSignatures = 5
    /// Entries in a DKIM-Signature h= list.
    public static let maxSignedHeaders = 128
    /// Tags in one tag-list (DKIM-Signature, key record, DMARC record).
    public static let maxTags = 64
    /// RFC 7208 §4.6.4: mechanisms and modifiers that cause DNS queries.
    public static let spfDNSMechanisms = 10
    /// RFC 7208 §4.6.4: lookups that returned NXDOMAIN or no answer.
    public static let spfVoidLookups = 2
    /// RFC 7208 §4.6.4: A/AAAA lookups per "mx" mechanism, PTR names per "ptr".
    public static let spfAddressLookupsPerMechanism = 10
    /// Characters of an SPF record or explanation we accept.
    public static let maxSPFRecordLength = 4096
    /// Characters of one macro expansion before it is cut.
    public static let maxMacroExpansion = 1024
    /// TXT records of one name we look at.
    public static let maxTXTRecords = 32
}
