/// The outcome of DMARC evaluation (RFC 7489 §6.6, RFC 8601 "dmarc=").
public struct DMARCResult: Sendable, Equatable {
    public enum Result: String, Sendable, Equatable {
        case none, pass, fail, temperror, permerror
    }

    public enum Policy: String, Sendable, Equatable, Comparable {
        case none, quarantine, reject

        private var rank: Int {
            switch self {
            case .none: 0
            case .quarantine: 1
            case .reject: 2
            }
        }

        public static func < (lhs: Policy, rhs: Policy) -> Bool { lhs.rank < rhs.rank }
    }

    public var result: Result
    /// The policy the domain owner asks for on failure: p=, or sp= when the record was found
    /// at the organizational domain of a subdomain author (§6.6.3). `.none` without a record.
    public var policy: Policy
    /// pct= (0–100): the share of failing messages the policy is meant for (§6.6.4).
    public var percentage: Int
    /// The RFC5322.From domain evaluated (the failing one when there were several).
    public var fromDomain: String
    /// Where the policy record was found (`_dmarc.` not included).
    public var recordDomain: String?
    public var spfAligned: Bool
    public var dkimAligned: Bool
    /// The message had more than one author domain (several From fields, or several mailboxes
    /// in one). Each was evaluated and the strictest outcome kept (§6.6.1); RFC 5322 allows
    /// one From field, so the SMTP layer may simply reject such mail.
    public var multipleAuthors: Bool
    public var reason: String?

    public init(
        result: Result, policy: Policy = .none, percentage: Int = 100, fromDomain: String = "", recordDomain: String? = nil,
        spfAligned: Bool = false, dkimAligned: Bool = false, multipleAuthors: Bool = false, reason: String? = nil
    ) {
        self.result = result
        self.policy = policy
        self.percentage = percentage
        self.fromDomain = fromDomain
        self.recordDomain = recordDomain
        self.spfAligned = spfAligned
        self.dkimAligned = dkimAligned
        self.multipleAuthors = multipleAuthors
        self.reason = reason
    }

    /// What to do with the message (§6.6.4): the policy for a "fail" picked by pct=
    /// (`sample` in 0..<1, e.g. `Double.random(in: 0..<1)`); a message outside the sample
    /// gets the next weaker policy (reject → quarantine, quarantine → none).
    public func disposition(sample: Double) -> Policy {
        guard result == .fail else { return .none }
        if Double(percentage) / 100 > sample { return policy }
        switch policy {
        case .reject: return .quarantine
        case .quarantine, .none: return .none
        }
    }
}

/// Alignment mode, adkim= and aspf= (§6.3).
public enum DMARCAlignment: String, Sendable, Equatable {
    case relaxed = "r"
    case strict = "s"
}

/// A DMARC policy record (RFC 7489 §6.3, §6.4).
public struct DMARCRecord: Sendable, Equatable {
    public enum ParseError: Error, Sendable, Equatable {
        /// Not a DMARC record: the first tag is not v=DMARC1.
        case notDMARC1
        /// A DMARC record whose tag-list is broken.
        case syntax(String)
        /// p= (or sp=) is missing or invalid and there is no rua= to fall back on (§6.6.3).
        case noValidPolicy
    }

    public var policy: DMARCResult.Policy
    public var subdomainPolicy: DMARCResult.Policy?
    public var dkimAlignment: DMARCAlignment
    public var spfAlignment: DMARCAlignment
    public var percentage: Int
    public var aggregateReportURIs: [String]
    public var failureReportURIs: [String]

    public init(parsing text: String) throws(ParseError) {
        guard Self.startsWithVersion(text) else { throw .notDMARC1 }
        let tags: TagList
        do {
            tags = try TagList(parsing: text)
        } catch {
            throw .syntax("\(error)")
        }
        guard tags.names.first == "v", tags["v"] == "DMARC1" else { throw .notDMARC1 }
        aggregateReportURIs = Self.uris(tags["rua"])
        failureReportURIs = Self.uris(tags["ruf"])

        let p = tags["p"].flatMap { DMARCResult.Policy(rawValue: $0.lowercased()) }
        let spText = tags["sp"]
        let sp = spText.flatMap { DMARCResult.Policy(rawValue: $0.lowercased()) }
        if let p, spText == nil || sp != nil {
            policy = p
            subdomainPolicy = sp
        } else if aggregateReportURIs.contains(where: { $0.lowercased().hasPrefix("mailto:") }) {
            // §6.6.3: an invalid p= or sp= with a usable rua= acts as p=none.
            policy = .none
            subdomainPolicy = nil
        } else {
            throw .noValidPolicy
        }
        // Invalid adkim=, aspf= and pct= values fall back to their defaults (§6.3).
        dkimAlignment = tags["adkim"].flatMap { DMARCAlignment(rawValue: $0.lowercased()) } ?? .relaxed
        spfAlignment = tags["aspf"].flatMap { DMARCAlignment(rawValue: $0.lowercased()) } ?? .relaxed
        if let pct = tags["pct"], pct.utf8.count <= 3, let value = Int(pct), (0...100).contains(value) {
            percentage = value
        } else {
            percentage = 100
        }
    }

    /// §6.6.3: records not starting with "v=DMARC1" are discarded (white space around "="
    /// allowed, §6.4).
    static func startsWithVersion(_ text: String) -> Bool {
        var rest = text.drop { $0 == " " || $0 == "\t" }
        guard rest.first == "v" else { return false }
        rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
        guard rest.first == "=" else { return false }
        rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" }
        guard rest.hasPrefix("DMARC1") else { return false }
        rest = rest.dropFirst(6).drop { $0 == " " || $0 == "\t" }
        return rest.isEmpty || rest.first == ";"
    }

    private static func uris(_ value: String?) -> [String] {
        guard let value else { return [] }
        return value.removingFWS.split(separator: ",").prefix(16).map(String.init)
    }
}

/// DMARC evaluation (RFC 7489 §6.6) over SPF and DKIM results already computed.
public struct DMARCEvaluator: Sendable {
    public let resolver: any MailAuthResolver
    /// Author domains evaluated when a message has several; beyond this it is permerror.
    public static let maxAuthorDomains = 4

    public init(resolver: any MailAuthResolver) {
        self.resolver = resolver
    }

    /// Extracts the author domains from the message's From fields and evaluates each.
    ///
    /// No From field, or one that yields no usable domain: permerror (RFC 5322 requires one
    /// From; §6.6.1 lets such mail be rejected). Several From fields or several mailboxes:
    /// each distinct domain is evaluated and the strictest outcome is returned (§6.6.1 "apply
    /// the most strict policy selected among the checks that fail"), with `multipleAuthors`
    /// set.
    public func evaluate(message: [UInt8], spf: SPFResult, dkim: [DKIMVerificationResult]) async -> DMARCResult {
        let fromFields = RawMessage(message).fields(named: "from")
        guard !fromFields.isEmpty else { return DMARCResult(result: .permerror, reason: "no From header field") }
        var domains: [String] = []
        for field in fromFields.prefix(8) {
            do {
                for domain in try AuthorAddress.domains(in: field.unfoldedValue) where !domains.contains(domain) { domains.append(domain) }
            } catch {
                return DMARCResult(result: .permerror, multipleAuthors: fromFields.count > 1, reason: "From header field: \(error)")
            }
        }
        let multiple = fromFields.count > 1 || domains.count > 1
        guard domains.count <= Self.maxAuthorDomains, let first = domains.first else {
            return DMARCResult(result: .permerror, multipleAuthors: multiple, reason: "too many author domains")
        }
        if domains.count == 1 {
            var result = await evaluate(fromDomain: first, spf: spf, dkim: dkim)
            result.multipleAuthors = multiple
            return result
        }
        var results: [DMARCResult] = []
        for domain in domains { results.append(await evaluate(fromDomain: domain, spf: spf, dkim: dkim)) }
        var strictest = Self.strictest(results)
        strictest.multipleAuthors = true
        return strictest
    }

    /// fail (strictest policy first) over temperror over permerror over none over pass.
    static func strictest(_ results: [DMARCResult]) -> DMARCResult {
        func rank(_ result: DMARCResult) -> (Int, DMARCResult.Policy) {
            switch result.result {
            case .fail: (5, result.policy)
            case .temperror: (4, .none)
            case .permerror: (3, .none)
            case .none: (2, .none)
            case .pass: (1, .none)
            }
        }
        return results.max { rank($0) < rank($1) } ?? DMARCResult(result: .none)
    }

    /// Evaluates one author domain.
    public func evaluate(fromDomain: String, spf: SPFResult, dkim: [DKIMVerificationResult]) async -> DMARCResult {
        guard let from = DomainName.normalized(fromDomain) else {
            return DMARCResult(result: .permerror, fromDomain: String(fromDomain.prefix(253)), reason: "From domain is not a domain name")
        }
        var result = DMARCResult(result: .none, fromDomain: from)

        // §6.6.3 policy discovery: the author domain, then its organizational domain.
        let organizational = OrganizationalDomain.of(from)
        var found: (record: DMARCRecord, domain: String)?
        for candidate in organizational == from ? [from] : [from, organizational] {
            switch await lookup(candidate) {
            case .record(let record):
                found = (record, candidate)
            case .none:
                continue
            case .temperror(let why):
                result.result = .temperror
                result.reason = why
                return result
            case .permerror(let why):
                result.result = .permerror
                result.reason = why
                return result
            case .stop(let why):
                result.reason = why
                return result
            }
            break
        }
        guard let (record, recordDomain) = found else {
            result.reason = "no DMARC record"
            return result
        }
        result.recordDomain = recordDomain
        result.policy = recordDomain != from ? (record.subdomainPolicy ?? record.policy) : record.policy
        result.percentage = record.percentage

        // §3.1 identifier alignment.
        func aligned(_ domain: String, _ mode: DMARCAlignment) -> Bool {
            guard let domain = DomainName.normalized(domain) else { return false }
            switch mode {
            case .strict: return domain == from
            case .relaxed: return OrganizationalDomain.of(domain) == organizational
            }
        }
        result.spfAligned = spf.result == .pass && aligned(spf.domain, record.spfAlignment)
        result.dkimAligned = dkim.contains { $0.result == .pass && aligned($0.domain, record.dkimAlignment) }
        result.result = result.spfAligned || result.dkimAligned ? .pass : .fail
        if result.result == .fail { result.reason = "neither SPF nor DKIM passed aligned with \(from)" }
        return result
    }

    private enum Lookup {
        case record(DMARCRecord)
        case none
        /// Policy discovery ends without DMARC (several records, unusable policy).
        case stop(String)
        case temperror(String)
        case permerror(String)
    }

    private func lookup(_ domain: String) async -> Lookup {
        let name = "_dmarc." + domain
        guard name.utf8.count <= 253 else { return .none }
        let texts: [String]
        do {
            texts = try await resolver.txt(name)
        } catch {
            switch error {
            case .noSuchDomain: return .none
            case .temporary(let why): return .temperror("\(name): DNS error: \(why.prefix(80))")
            }
        }
        let candidates = texts.prefix(MailAuthLimits.maxTXTRecords).filter(DMARCRecord.startsWithVersion)
        if candidates.isEmpty { return .none }
        // §6.6.3: several records mean no DMARC processing.
        guard candidates.count == 1 else { return .stop("\(name): more than one DMARC record") }
        do {
            return .record(try DMARCRecord(parsing: candidates[0]))
        } catch {
            switch error {
            case .notDMARC1: return .none
            case .noValidPolicy: return .stop("\(name): no valid p= and no rua=")
            case .syntax(let why): return .permerror("\(name): \(why)")
            }
        }
    }
}
