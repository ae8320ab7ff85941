/// The answer to one question, read out of a decoded response. Pure: the resolver decides
/// what to do with it (return, cache, try the next server).
enum DNSAnswer: Equatable, Sendable {
    /// Records of the asked type at the end of the CNAME chain, and how long all of it
    /// (the chain included) may be cached.
    case records([DNSRecordData], ttl: UInt32)
    /// NOERROR without records of that type (NODATA, RFC 2308 §2.2).
    case noData(negativeTTL: UInt32?)
    /// NXDOMAIN (RFC 2308 §2.1); after a CNAME it is the chain's last name that does not
    /// exist (RFC 6604 §2), which is no different for the caller.
    case nameError(negativeTTL: UInt32?)
    /// Any other RCODE: SERVFAIL, REFUSED, NOTIMP, FORMERR, BADVERS, ...
    case failure(rcode: Int)

    /// Recursive servers put the whole chain in the answer; this bounds loops and abuse.
    static let maxCNAMEChain = 8

    static func interpret(_ message: DNSMessage, question: DNSQuestion) throws(DNSWireError) -> DNSAnswer {
        let rcode = message.rcode
        guard rcode == DNSResponseCode.noError || rcode == DNSResponseCode.nameError else {
            return .failure(rcode: rcode)
        }
        let cnameType = DNSRecordType.cname.rawValue
        var name = question.name
        var ttl = UInt32.max
        var hops = 0
        while true {
            let matching = message.answers.filter {
                $0.name == name && $0.type == question.type && $0.recordClass == question.recordClass
            }
            if !matching.isEmpty {
                ttl = min(ttl, matching.map(\.ttl).min() ?? 0)
                return .records(matching.map(\.data), ttl: ttl)
            }
            guard
                let alias = message.answers.first(where: {
                    $0.name == name && $0.type == cnameType && $0.recordClass == question.recordClass
                }),
                case .cname(let target) = alias.data
            else { break }
            hops += 1
            guard hops <= maxCNAMEChain else { throw .cnameChainTooLong }
            ttl = min(ttl, alias.ttl)
            name = target
        }
        // RFC 2308 §5: a negative answer is cached for min(SOA TTL, SOA MINIMUM).
        let negativeTTL = message.authorities.lazy.compactMap { record -> UInt32? in
            guard case .soa(let soa) = record.data else { return nil }
            return min(record.ttl, soa.minimum)
        }.first
        return rcode == DNSResponseCode.nameError
            ? .nameError(negativeTTL: negativeTTL) : .noData(negativeTTL: negativeTTL)
    }
}
