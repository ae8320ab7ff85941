/// A domain name as its labels, ASCII-lowercased on the way in (RFC 4343: DNS compares names
/// case-insensitively), so that `==` is the DNS comparison. The root name has no labels.
struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// RFC 1035 §2.3.4.
    static let maxLabelLength = 63
    static let maxWireLength = 255

    let labels: [[UInt8]]

    static let root = DNSName(labels: [])

    init(labels: [[UInt8]]) {
        self.labels = labels.map { $0.map(DNSName.lowercased) }
    }

    /// Octets the name takes on the wire, uncompressed: a length octet per label and the final zero.
    var wireLength: Int { labels.reduce(1) { $0 + 1 + $1.count } }

    /// Presentation form without the trailing dot ("." for the root). Octets that cannot stand
    /// in a plain label are escaped as RFC 1035 §5.1 does (`\.`, `\\`, `\DDD`).
    var description: String {
        if labels.isEmpty { return "." }
        var out: [UInt8] = []
        for (index, label) in labels.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ".")) }
            for byte in label {
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "\\"):
                    out.append(UInt8(ascii: "\\"))
                    out.append(byte)
                case 0x21...0x7E:
                    out.append(byte)
                default:
                    out.append(UInt8(ascii: "\\"))
                    out.append(contentsOf: Array(String(byte / 100).utf8))
                    out.append(contentsOf: Array(String(byte / 10 % 10).utf8))
                    out.append(contentsOf: Array(String(byte % 10).utf8))
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Validates a name given by a caller: letters, digits, hyphen and underscore (underscore for
    /// `_dmarc.` and `selector._domainkey.`, RFC 8552), labels 1...63 octets, 255 on the wire,
    /// one optional trailing dot. Hyphen placement is not checked: DNS itself does not care,
    /// and refusing such a name would only turn a real answer into an error.
    /// Non-ASCII input must be converted to A-labels (IDNA, `xn--`) by the caller.
    static func validated(_ text: String) throws(DNSLookupError) -> DNSName {
        var bytes = Array(text.utf8)
        guard bytes.count <= maxWireLength + 1 else { throw .invalidName(DNSLookupError.shortened(text)) }
        if bytes.last == UInt8(ascii: ".") { bytes.removeLast() }
        guard !bytes.isEmpty else { throw .invalidName(text) }
        var labels: [[UInt8]] = []
        var current: [UInt8] = []
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard !current.isEmpty else { throw .invalidName(text) }
                labels.append(current)
                current = []
                continue
            }
            guard isNameOctet(byte), current.count < maxLabelLength else { throw .invalidName(text) }
            current.append(byte)
        }
        guard !current.isEmpty else { throw .invalidName(text) }
        labels.append(current)
        let name = DNSName(labels: labels)
        guard name.wireLength <= maxWireLength else { throw .invalidName(DNSLookupError.shortened(text)) }
        return name
    }

    /// The `in-addr.arpa` (RFC 1035 §3.5) or `ip6.arpa` (RFC 3596 §2.5) name for an address.
    static func reverse(ipAddress text: String) throws(DNSLookupError) -> DNSName {
        if let v4 = IPAddressText.parseIPv4(text) {
            let labels = v4.reversed().map { Array(String($0).utf8) }
            return DNSName(labels: labels + [Array("in-addr".utf8), Array("arpa".utf8)])
        }
        if let v6 = IPAddressText.parseIPv6(text) {
            let hex = Array("0123456789abcdef".utf8)
            var labels: [[UInt8]] = []
            for byte in v6.reversed() {
                labels.append([hex[Int(byte & 0x0F)]])
                labels.append([hex[Int(byte >> 4)]])
            }
            return DNSName(labels: labels + [Array("ip6".utf8), Array("arpa".utf8)])
        }
        throw .invalidName(DNSLookupError.shortened(text))
    }

    private static func isNameOctet(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
    }
}
