/// What the server announced in its EHLO reply (RFC 5321 §4.1.1.1: one keyword per line
/// after the first, keywords case-insensitive). HELO announces nothing.
public struct SMTPServerExtensions: Sendable, Equatable {
    public var startTLS = false
    /// RFC 1870: the fixed maximum message size; nil when SIZE is not announced or announces no limit (0).
    public var size: Int?
    /// SIZE was announced, with or without a limit: MAIL then carries `SIZE=` (RFC 1870 §6).
    public var sizeAnnounced = false
    public var pipelining = false
    public var eightBitMIME = false
    public var smtpUTF8 = false
    /// RFC 4954 mechanism names, upper-cased.
    public var authMechanisms: Set<String> = []
    public var enhancedStatusCodes = false
    public var chunking = false

    public init() {}

    public init(ehloReply reply: SMTPClientReply) {
        for line in reply.lines.dropFirst() {
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let keyword = words.first?.uppercased() else { continue }
            let parameters = words.dropFirst()
            switch keyword {
            case "STARTTLS": startTLS = true
            case "SIZE":
                sizeAnnounced = true
                if let value = parameters.first.flatMap({ Int($0) }), value > 0 { size = value }
            case "PIPELINING": pipelining = true
            case "8BITMIME": eightBitMIME = true
            case "SMTPUTF8": smtpUTF8 = true
            case "ENHANCEDSTATUSCODES": enhancedStatusCodes = true
            case "CHUNKING": chunking = true
            case "AUTH":
                authMechanisms.formUnion(parameters.map { $0.uppercased() })
            default:
                // Old servers announce `AUTH=LOGIN PLAIN` (pre-RFC 4954 form).
                if keyword.hasPrefix("AUTH=") {
                    authMechanisms.insert(String(keyword.dropFirst(5)))
                    authMechanisms.formUnion(parameters.map { $0.uppercased() })
                }
            }
        }
    }
}
