import Foundation

/// The outcome of an SPF check (RFC 7208 §2.6).
public struct SPFResult: Sendable, Equatable {
    public enum Result: String, Sendable, Equatable {
        case none, neutral, pass, fail, softfail, temperror, permerror
    }

    /// Which identity was checked (RFC 7208 §2.3, §2.4).
    public enum Identity: String, Sendable, Equatable {
        /// The MAIL FROM address (RFC 8601 "smtp.mailfrom").
        case mailFrom
        /// The HELO/EHLO name, used when MAIL FROM is empty (RFC 8601 "smtp.helo").
        case helo
    }

    public var result: Result
    /// The domain checked: MAIL FROM's domain, or the HELO name for a null reverse-path. This
    /// is the SPF-authenticated identifier DMARC aligns (RFC 7489 §4.1).
    public var domain: String
    public var identity: Identity
    /// `local@domain` as checked ("postmaster@helo" for a null reverse-path).
    public var sender: String
    /// The domain's exp= explanation for a "fail", when it has one (printable ASCII only).
    public var explanation: String?
    /// What matched or what went wrong, for the log and an Authentication-Results comment.
    public var reason: String?

    public init(
        result: Result, domain: String, identity: Identity = .mailFrom, sender: String = "", explanation: String? = nil,
        reason: String? = nil
    ) {
        self.result = result
        self.domain = domain
        self.identity = identity
        self.sender = sender
        self.explanation = explanation
        self.reason = reason
    }
}

/// RFC 7208 check_host() over a `MailAuthResolver`, with the §4.6.4 limits: 10 mechanisms
/// or modifiers that query DNS, 2 void lookups, 10 address lookups per "mx", 10 names per
/// "ptr". %{p} expands to "unknown" (RFC 7208 §7.3 allows it; the lookup is costly and the
/// macro discouraged).
public struct SPFVerifier: Sendable {
    public let resolver: any MailAuthResolver
    /// %{r} in explanations: the receiving host's domain.
    public var receivingDomain: String
    public let now: @Sendable () -> Date

    public init(resolver: any MailAuthResolver, receivingDomain: String = "unknown", now: @escaping @Sendable () -> Date = { Date() }) {
        self.resolver = resolver
        self.receivingDomain = receivingDomain
        self.now = now
    }

    /// Checks `mailFrom` (angle brackets optional; empty for a null reverse-path, when
    /// "postmaster@<helo>" is checked instead, RFC 7208 §2.4) from `ip`.
    public func check(ip: String, mailFrom: String, helo: String) async -> SPFResult {
        var from = Substring(mailFrom.prefix(512)).trimmingCharacters(in: .whitespaces)[...]
        if from.hasPrefix("<") && from.hasSuffix(">") && from.count >= 2 { from = from.dropFirst().dropLast() }
        let heloName = String(helo.prefix(255))
        let identity: SPFResult.Identity
        var localPart: Substring
        var domainText: Substring
        if from.isEmpty {
            identity = .helo
            localPart = "postmaster"
            domainText = Substring(heloName)
        } else {
            identity = .mailFrom
            if let at = from.lastIndex(of: "@") {
                localPart = from[..<at]
                domainText = from[from.index(after: at)...]
            } else {
                localPart = ""
                domainText = from
            }
            // §4.3: no local-part → "postmaster".
            if localPart.isEmpty { localPart = "postmaster" }
        }
        let sender = "\(localPart)@\(domainText)"
        guard let domain = DomainName.normalized(domainText, minLabels: 2) else {
            // §4.3: a malformed domain (or an address literal HELO) gives "none".
            return SPFResult(
                result: .none, domain: String(domainText), identity: identity, sender: sender, reason: "not a valid domain name")
        }
        guard let address = IPAddress(ip) else {
            return SPFResult(
                result: .permerror, domain: domain, identity: identity, sender: sender,
                reason: "client IP \"\(ip.prefix(64))\" is not an address")
        }
        var context = Context(ip: address, sender: sender, localPart: String(localPart), senderDomain: domain, helo: heloName)
        let outcome = await checkHost(domain: domain, context: &context)
        return SPFResult(
            result: outcome.result, domain: domain, identity: identity, sender: sender, explanation: outcome.explanation,
            reason: outcome.reason)
    }

    struct Context {
        var ip: IPAddress
        var sender: String
        var localPart: String
        var senderDomain: String
        var helo: String
        var dnsMechanisms = 0
        var voidLookups = 0

        init(ip: IPAddress, sender: String, localPart: String, senderDomain: String, helo: String) {
            self.ip = ip
            self.sender = sender
            self.localPart = localPart
            self.senderDomain = senderDomain
            self.helo = helo
        }
    }

    struct Outcome {
        var result: SPFResult.Result
        var explanation: String?
        var reason: String?
    }

    /// Ends evaluation with temperror or permerror from anywhere below check_host().
    enum Abort: Error {
        case temperror(String)
        case permerror(String)
    }

    func checkHost(domain: String, context: inout Context) async -> Outcome {
        do throws(Abort) {
            return try await evaluate(domain: domain, context: &context, wantsExplanation: true)
        } catch {
            switch error {
            case .temperror(let why): return Outcome(result: .temperror, reason: why)
            case .permerror(let why): return Outcome(result: .permerror, reason: why)
            }
        }
    }

    /// §4.4–§4.7 for one domain; `none` when it publishes no record. `wantsExplanation` is
    /// false inside include:, whose "fail" only means "no match" (§5.2), so that exp= costs
    /// no DNS query there.
    private func evaluate(domain: String, context: inout Context, wantsExplanation: Bool) async throws(Abort) -> Outcome {
        let records: [String]
        do {
            records = try await resolver.txt(domain)
        } catch {
            switch error {
            case .noSuchDomain: return Outcome(result: .none, reason: "\(domain): no such domain")
            case .temporary(let why): throw .temperror("\(domain): DNS error: \(why.prefix(80))")
            }
        }
        let spf = records.prefix(MailAuthLimits.maxTXTRecords).filter(SPFRecord.isSPF1)
        if spf.isEmpty { return Outcome(result: .none, reason: "\(domain): no SPF record") }
        guard spf.count == 1 else { throw .permerror("\(domain): more than one SPF record") }
        let record: SPFRecord
        do {
            record = try SPFRecord(parsing: spf[0])
        } catch {
            throw .permerror("\(domain): \(error)")
        }

        for directive in record.directives {
            guard try await matches(directive.mechanism, domain: domain, context: &context) else { continue }
            let result = directive.qualifier.result
            var outcome = Outcome(result: result, reason: "\(domain): matched \(directive.text)")
            if result == .fail, wantsExplanation, let exp = record.explanation {
                outcome.explanation = await explanation(exp, domain: domain, context: context)
            }
            return outcome
        }

        if let redirect = record.redirect {
            try countDNSMechanism(&context)
            guard let target = expandDomain(redirect, domain: domain, context: context) else {
                throw .permerror("\(domain): redirect= expands to an invalid domain")
            }
            // §6.1: the redirect target's result is the result; "none" there is permerror.
            let outcome = try await evaluate(domain: target, context: &context, wantsExplanation: wantsExplanation)
            if outcome.result == .none { throw .permerror("\(domain): redirect=\(target) has no SPF record") }
            return outcome
        }
        // §4.7: no match and no redirect.
        return Outcome(result: .neutral, reason: "\(domain): no mechanism matched")
    }

    private func countDNSMechanism(_ context: inout Context) throws(Abort) {
        context.dnsMechanisms += 1
        if context.dnsMechanisms > MailAuthLimits.spfDNSMechanisms {
            throw .permerror("more than \(MailAuthLimits.spfDNSMechanisms) DNS-querying mechanisms (RFC 7208 §4.6.4)")
        }
    }

    private func countVoidLookup(_ context: inout Context) throws(Abort) {
        context.voidLookups += 1
        if context.voidLookups > MailAuthLimits.spfVoidLookups {
            throw .permerror("more than \(MailAuthLimits.spfVoidLookups) void DNS lookups (RFC 7208 §4.6.4)")
        }
    }

    /// Addresses of `name` in the client's family; nil for NXDOMAIN or an empty answer.
    private func addresses(_ name: String, ipv4: Bool) async throws(Abort) -> [IPAddress]? {
        let texts: [String]
        do {
            texts = ipv4 ? try await resolver.a(name) : try await resolver.aaaa(name)
        } catch {
            switch error {
            case .noSuchDomain: return nil
            case .temporary(let why): throw .temperror("\(name): DNS error: \(why.prefix(80))")
            }
        }
        let parsed = texts.prefix(64).compactMap(IPAddress.init).filter { $0.isIPv4 == ipv4 }
        return parsed.isEmpty ? nil : parsed
    }

    private func matches(_ mechanism: SPFRecord.Mechanism, domain: String, context: inout Context) async throws(Abort) -> Bool {
        let ip = context.ip
        switch mechanism {
        case .all:
            return true

        case .ip4(let network, let prefix):
            return ip.isIPv4 && ip.matches(network, prefixLength: prefix)

        case .ip6(let network, let prefix):
            return !ip.isIPv4 && ip.matches(network, prefixLength: prefix)

        case .include(let spec):
            try countDNSMechanism(&context)
            guard let target = expandDomain(spec, domain: domain, context: context) else { return false }
            // §5.2: the included check's result decides whether include matches.
            let outcome = try await evaluate(domain: target, context: &context, wantsExplanation: false)
            switch outcome.result {
            case .pass: return true
            case .fail, .softfail, .neutral: return false
            case .temperror: throw .temperror(outcome.reason ?? "include:\(target) temperror")
            case .permerror: throw .permerror(outcome.reason ?? "include:\(target) permerror")
            case .none: throw .permerror("include:\(target) has no SPF record")
            }

        case .a(let spec, let ipv4Prefix, let ipv6Prefix):
            try countDNSMechanism(&context)
            guard let target = spec.map({ expandDomain($0, domain: domain, context: context) }) ?? domain else { return false }
            guard let found = try await addresses(target, ipv4: ip.isIPv4) else {
                try countVoidLookup(&context)
                return false
            }
            return found.contains { ip.matches($0, prefixLength: ip.isIPv4 ? ipv4Prefix : ipv6Prefix) }

        case .mx(let spec, let ipv4Prefix, let ipv6Prefix):
            try countDNSMechanism(&context)
            guard let target = spec.map({ expandDomain($0, domain: domain, context: context) }) ?? domain else { return false }
            let exchanges: [MailAuthMXRecord]
            do {
                exchanges = try await resolver.mx(target)
            } catch {
                switch error {
                case .noSuchDomain: exchanges = []
                case .temporary(let why): throw .temperror("\(target): MX lookup failed: \(why.prefix(80))")
                }
            }
            if exchanges.isEmpty {
                try countVoidLookup(&context)
                return false
            }
            let prefix = ip.isIPv4 ? ipv4Prefix : ipv6Prefix
            for (index, exchange) in exchanges.sorted(by: { $0.preference < $1.preference }).enumerated() {
                // §4.6.4: looking up the addresses of an 11th MX name is permerror.
                guard index < MailAuthLimits.spfAddressLookupsPerMechanism else {
                    throw .permerror(
                        "\(target): more than \(MailAuthLimits.spfAddressLookupsPerMechanism) MX names to look up (RFC 7208 §4.6.4)")
                }
                // RFC 7505 null MX ("." ) names no host.
                guard let host = DomainName.normalized(exchange.exchange) else { continue }
                if let found = try await addresses(host, ipv4: ip.isIPv4), found.contains(where: { ip.matches($0, prefixLength: prefix) }) {
                    return true
                }
            }
            return false

        case .ptr(let spec):
            try countDNSMechanism(&context)
            guard let target = spec.map({ expandDomain($0, domain: domain, context: context) }) ?? domain else { return false }
            // §5.5: a DNS error on the PTR lookup makes the mechanism not match.
            let names: [String]
            do {
                names = try await resolver.ptr(ip.description)
            } catch {
                if case .noSuchDomain = error { try countVoidLookup(&context) }
                return false
            }
            if names.isEmpty {
                try countVoidLookup(&context)
                return false
            }
            for name in names.prefix(MailAuthLimits.spfAddressLookupsPerMechanism) {
                guard let host = DomainName.normalized(name), DomainName.isSame(host, orSubdomainOf: target) else { continue }
                // Forward-confirm: the name must resolve back to the client address.
                if let found = try? await addresses(host, ipv4: ip.isIPv4), found.contains(ip) { return true }
            }
            return false

        case .exists(let spec):
            try countDNSMechanism(&context)
            guard let target = expandDomain(spec, domain: domain, context: context) else { return false }
            // §5.7: always an A query, whatever the client's address family.
            guard try await addresses(target, ipv4: true) != nil else {
                try countVoidLookup(&context)
                return false
            }
            return true
        }
    }

    /// §6.2: the explanation for a "fail"; any problem just means no explanation.
    private func explanation(_ spec: SPFMacroString, domain: String, context: Context) async -> String? {
        guard let target = expandDomain(spec, domain: domain, context: context),
            let records = try? await resolver.txt(target), records.count == 1,
            let text = try? SPFMacroString(
                parsing: Substring(records[0].prefix(MailAuthLimits.maxSPFRecordLength)), allowExplanationLetters: true)
        else { return nil }
        let expanded = expand(text, domain: domain, context: context)
        let printable = expanded.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f }
        return String(String.UnicodeScalarView(printable).prefix(512))
    }

    /// Expands a domain-spec and makes it a usable DNS name: §7.3 cuts labels from the left
    /// beyond 253 characters; an invalid result matches nothing.
    func expandDomain(_ spec: SPFMacroString, domain: String, context: Context) -> String? {
        var name = Substring(expand(spec, domain: domain, context: context))
        if name.hasSuffix(".") { name = name.dropLast() }
        while name.utf8.count > 253, let dot = name.firstIndex(of: ".") { name = name[name.index(after: dot)...] }
        return DomainName.normalized(name)
    }

    /// §7.3 macro expansion, bounded by `MailAuthLimits.maxMacroExpansion`.
    func expand(_ string: SPFMacroString, domain: String, context: Context) -> String {
        var out = ""
        for element in string.elements {
            switch element {
            case .literal(let text):
                out += text
            case .macro(let letter, let escape, let rightmost, let reverse, let delimiters):
                let value: String
                switch letter {
                case "s": value = context.sender
                case "l": value = context.localPart
                case "o": value = context.senderDomain
                case "d": value = domain
                case "i": value = context.ip.spfMacroForm
                case "p": value = "unknown"
                case "v": value = context.ip.isIPv4 ? "in-addr" : "ip6"
                case "h": value = context.helo
                case "c": value = context.ip.description
                case "r": value = receivingDomain
                case "t": value = String(Int(now().timeIntervalSince1970))
                default: value = ""
                }
                let splitOn: Set<Character> = delimiters.isEmpty ? ["."] : Set(delimiters)
                var parts = value.split(omittingEmptySubsequences: false, whereSeparator: { splitOn.contains($0) })
                if reverse { parts.reverse() }
                if let rightmost, rightmost < parts.count { parts = Array(parts.suffix(rightmost)) }
                var piece = parts.joined(separator: ".")
                if escape { piece = Self.urlEscaped(piece) }
                out += piece
            }
            if out.utf8.count > MailAuthLimits.maxMacroExpansion {
                return String(decoding: out.utf8.prefix(MailAuthLimits.maxMacroExpansion), as: UTF8.self)
            }
        }
        return out
    }

    /// §7.3: uppercase macros are URL-escaped (RFC 3986 unreserved characters kept).
    static func urlEscaped(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if TagList.isAlpha(byte) || TagList.isDigit(byte) || byte == 0x2d || byte == 0x2e || byte == 0x5f || byte == 0x7e {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
