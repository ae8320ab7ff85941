import Crypto
import Foundation
import _CryptoExtras

/// The outcome of one DKIM-Signature field, in RFC 8601 §2.7.1 terms.
public struct DKIMVerificationResult: Sendable, Equatable {
    public enum Result: String, Sendable, Equatable {
        case pass, fail, neutral, temperror, permerror, none
    }

    public var result: Result
    /// d=, lowercased; empty when the signature had none.
    public var domain: String
    /// s=; empty when the signature had none.
    public var selector: String
    /// The first 8 characters of b= (RFC 6008 header.b), to tell signatures apart.
    public var headerB: String
    /// i=, when given.
    public var identity: String?
    /// a= as written, when given.
    public var algorithm: String?
    /// Why it did not pass (or a note on a pass, such as l=), for the log and a comment.
    public var reason: String?
    /// The signature covered only the first l= octets of the body: content after them is not
    /// authenticated (RFC 6376 §8.2). The result is still "pass" when those octets verify.
    public var bodyLengthLimited: Bool
    /// The key record has t=y (RFC 6376 §3.6.1): the domain is testing DKIM.
    public var testing: Bool

    public init(
        result: Result, domain: String = "", selector: String = "", headerB: String = "", identity: String? = nil,
        algorithm: String? = nil, reason: String? = nil, bodyLengthLimited: Bool = false, testing: Bool = false
    ) {
        self.result = result
        self.domain = domain
        self.selector = selector
        self.headerB = headerB
        self.identity = identity
        self.algorithm = algorithm
        self.reason = reason
        self.bodyLengthLimited = bodyLengthLimited
        self.testing = testing
    }
}

/// A parsed DKIM-Signature field (RFC 6376 §3.5).
struct DKIMSignature: Sendable {
    var algorithm: DKIMAlgorithm
    var headerCanonicalization: DKIMCanonicalization
    var bodyCanonicalization: DKIMCanonicalization
    var domain: String
    var selector: String
    var signedHeaders: [String]
    var bodyHash: [UInt8]
    var signature: [UInt8]
    var bodyLength: Int?
    var identity: String?
    var timestamp: Int?
    var expiration: Int?

    struct Failure: Error {
        var result: DKIMVerificationResult.Result
        var reason: String
    }

    /// A numeric tag value: 1 to 12 digits (§3.5 allows up to 76; nobody needs more than 12,
    /// and larger ones could not be compared without overflow).
    private static func number(_ value: String?, tag: String) throws(Failure) -> Int? {
        guard let value else { return nil }
        guard !value.isEmpty, value.utf8.count <= 12, value.utf8.allSatisfy(TagList.isDigit), let number = Int(value) else {
            throw Failure(result: .permerror, reason: "\(tag)= is not a number")
        }
        return number
    }

    private static func base64(_ value: String, tag: String) throws(Failure) -> [UInt8] {
        let compact = value.removingFWS
        guard !compact.isEmpty, let data = Data(base64Encoded: compact) else {
            throw Failure(result: .permerror, reason: "\(tag)= is not valid base64")
        }
        return Array(data)
    }

    init(tags: TagList) throws(Failure) {
        for required in ["v", "a", "b", "bh", "d", "h", "s"] where tags[required] == nil {
            throw Failure(result: .permerror, reason: "signature has no \(required)= tag")
        }
        guard tags["v"] == "1" else { throw Failure(result: .permerror, reason: "unsupported signature version v=\(tags["v"] ?? "")") }
        let algorithmText = (tags["a"] ?? "").lowercased()
        switch algorithmText {
        case "rsa-sha256": algorithm = .rsaSHA256
        case "ed25519-sha256": algorithm = .ed25519SHA256
        case "rsa-sha1":
            // RFC 8301 §3.1: verifiers MUST NOT consider rsa-sha1 signatures valid.
            throw Failure(result: .permerror, reason: "rsa-sha1 is not accepted (RFC 8301)")
        default:
            throw Failure(result: .permerror, reason: "unknown algorithm a=\(algorithmText.prefix(30))")
        }

        // c= default simple/simple; "relaxed" alone is relaxed/simple (§3.5).
        let canonicalization = (tags["c"] ?? "simple/simple").lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard canonicalization.count <= 2,
            let header = DKIMCanonicalization(rawValue: String(canonicalization[0])),
            let body = canonicalization.count == 2 ? DKIMCanonicalization(rawValue: String(canonicalization[1])) : .simple
        else { throw Failure(result: .permerror, reason: "unknown canonicalization c=\(tags["c"]?.prefix(30) ?? "")") }
        headerCanonicalization = header
        bodyCanonicalization = body

        guard let domain = DomainName.normalized(tags["d"] ?? "", minLabels: 1) else {
            throw Failure(result: .permerror, reason: "d= is not a domain name")
        }
        self.domain = domain
        guard let selector = DomainName.normalized(tags["s"] ?? "") else {
            throw Failure(result: .permerror, reason: "s= is not a valid selector")
        }
        self.selector = selector

        let names = (tags["h"] ?? "").removingFWS.split(separator: ":", omittingEmptySubsequences: false).map { $0.lowercased() }
        guard names.count <= MailAuthLimits.maxSignedHeaders else { throw Failure(result: .permerror, reason: "h= lists too many fields") }
        guard names.allSatisfy(RawMessage.isValidFieldName) else {
            throw Failure(result: .permerror, reason: "h= has an invalid field name")
        }
        // §5.4: "The From header field MUST be signed".
        guard names.contains("from") else { throw Failure(result: .permerror, reason: "From is not in h=") }
        signedHeaders = names

        bodyHash = try Self.base64(tags["bh"] ?? "", tag: "bh")
        signature = try Self.base64(tags["b"] ?? "", tag: "b")
        guard bodyHash.count == 32 else { throw Failure(result: .permerror, reason: "bh= is not a SHA-256 hash") }
        bodyLength = try Self.number(tags["l"], tag: "l")
        timestamp = try Self.number(tags["t"], tag: "t")
        expiration = try Self.number(tags["x"], tag: "x")
        if let timestamp, let expiration, expiration < timestamp {
            throw Failure(result: .permerror, reason: "x= is before t=")
        }
        if let q = tags["q"], !q.removingFWS.lowercased().split(separator: ":").contains("dns/txt") {
            throw Failure(result: .permerror, reason: "unsupported query method q=\(q.prefix(30))")
        }

        // §3.5 i=: the domain part must be d= or a subdomain of it.
        if let identity = tags["i"] {
            guard let at = identity.lastIndex(of: "@"),
                let identityDomain = DomainName.normalized(identity[identity.index(after: at)...]),
                DomainName.isSame(identityDomain, orSubdomainOf: domain)
            else { throw Failure(result: .permerror, reason: "i= is not in the d= domain") }
            self.identity = identity
        }
    }

    var identityDomain: String? {
        guard let identity, let at = identity.lastIndex(of: "@") else { return nil }
        return DomainName.normalized(identity[identity.index(after: at)...])
    }
}

/// A DKIM key record (RFC 6376 §3.6.1, RFC 8463 for k=ed25519).
struct DKIMKeyRecord {
    var key: DKIMPublicKey
    var testing: Bool
    var strict: Bool

    static func parse(_ text: String) throws(DKIMSignature.Failure) -> DKIMKeyRecord {
        guard text.utf8.count <= 8192 else { throw .init(result: .permerror, reason: "key record too long") }
        let tags: TagList
        do {
            tags = try TagList(parsing: text)
        } catch {
            throw .init(result: .permerror, reason: "key record syntax: \(error)")
        }
        if let version = tags["v"], version != "DKIM1" { throw .init(result: .permerror, reason: "key record v= is not DKIM1") }
        if let hashes = tags["h"], !hashes.removingFWS.lowercased().split(separator: ":").contains("sha256") {
            throw .init(result: .permerror, reason: "key record h= excludes sha256")
        }
        if let services = tags["s"] {
            let list = services.removingFWS.lowercased().split(separator: ":")
            guard list.contains("*") || list.contains("email") else { throw .init(result: .permerror, reason: "key not for email (s=)") }
        }
        let flags = (tags["t"] ?? "").removingFWS.lowercased().split(separator: ":")
        guard let p = tags["p"] else { throw .init(result: .permerror, reason: "key record has no p=") }
        let compact = p.removingFWS
        // §3.6.1: an empty p= means the key was revoked.
        guard !compact.isEmpty else { throw .init(result: .permerror, reason: "key revoked") }
        guard let der = Data(base64Encoded: compact) else { throw .init(result: .permerror, reason: "key p= is not base64") }
        let key: DKIMPublicKey
        switch (tags["k"] ?? "rsa").lowercased() {
        case "rsa":
            // RFC 8301 §3.2: verifiers MUST accept 1024-bit keys and may refuse smaller ones;
            // the "unsafe" initializer is swift-crypto's name for accepting 1024–2047 bits.
            guard let rsa = try? _RSA.Signing.PublicKey(unsafeDERRepresentation: der), rsa.keySizeInBits >= 1024 else {
                throw .init(result: .permerror, reason: "RSA key unusable or smaller than 1024 bits")
            }
            key = .rsa(rsa)
        case "ed25519":
            guard der.count == 32, let ed = try? Curve25519.Signing.PublicKey(rawRepresentation: der) else {
                throw .init(result: .permerror, reason: "Ed25519 key is not 32 bytes")
            }
            key = .ed25519(ed)
        default:
            throw .init(result: .permerror, reason: "unknown key type k=\((tags["k"] ?? "").prefix(20))")
        }
        return DKIMKeyRecord(key: key, testing: flags.contains("y"), strict: flags.contains("s"))
    }
}

/// Verifies the DKIM signatures of an inbound message (RFC 6376 §6).
public struct DKIMVerifier: Sendable {
    public let resolver: any MailAuthResolver
    public let now: @Sendable () -> Date
    /// Signatures verified per message, top to bottom; the rest are ignored (§6.1).
    public var maxSignatures: Int

    public init(
        resolver: any MailAuthResolver, now: @escaping @Sendable () -> Date = { Date() },
        maxSignatures: Int = MailAuthLimits.maxDKIMSignatures
    ) {
        self.resolver = resolver
        self.now = now
        self.maxSignatures = maxSignatures
    }

    /// One result per DKIM-Signature field (at most `maxSignatures`), top to bottom. An empty
    /// array means the message is not signed (RFC 8601 "dkim=none").
    public func verify(_ message: [UInt8]) async -> [DKIMVerificationResult] {
        let parsed = RawMessage(message)
        let signatureFields = Array(parsed.fields(named: "dkim-signature").prefix(maxSignatures))
        if signatureFields.isEmpty { return [] }
        return await withTaskGroup(of: (Int, DKIMVerificationResult).self) { group in
            for (index, field) in signatureFields.enumerated() {
                group.addTask { (index, await verify(field, in: parsed)) }
            }
            var results = [DKIMVerificationResult?](repeating: nil, count: signatureFields.count)
            for await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
    }

    func verify(_ field: RawHeaderField, in message: RawMessage) async -> DKIMVerificationResult {
        var result = DKIMVerificationResult(result: .permerror)
        let tags: TagList
        do {
            tags = try TagList(parsing: field.unfoldedValue)
        } catch {
            result.reason = "signature syntax: \(error)"
            return result
        }
        // What identifies the signature is reported even when it is unusable.
        result.domain = String((tags["d"] ?? "").lowercased().prefix(253))
        result.selector = String((tags["s"] ?? "").prefix(253))
        result.headerB = String((tags["b"] ?? "").removingFWS.prefix(8))
        result.identity = tags["i"].map { String($0.prefix(256)) }
        result.algorithm = tags["a"].map { String($0.prefix(32)) }

        let signature: DKIMSignature
        do {
            signature = try DKIMSignature(tags: tags)
        } catch {
            result.result = error.result
            result.reason = error.reason
            return result
        }
        result.domain = signature.domain
        result.selector = signature.selector

        // §3.5 x=: a signature past its expiration is not valid.
        let nowSeconds = Int(now().timeIntervalSince1970)
        if let expiration = signature.expiration, nowSeconds > expiration {
            result.result = .fail
            result.reason = "signature expired"
            return result
        }

        // §6.1.2: the key.
        let keyName = "\(signature.selector)._domainkey.\(signature.domain)"
        guard keyName.utf8.count <= 253 else {
            result.reason = "key name too long"
            return result
        }
        let records: [String]
        do {
            records = try await resolver.txt(keyName)
        } catch {
            switch error {
            case .noSuchDomain:
                result.reason = "no key for signature"
            case .temporary(let why):
                result.result = .temperror
                result.reason = "key lookup failed: \(why.prefix(80))"
            }
            return result
        }
        var keyRecord: DKIMKeyRecord?
        var firstProblem: DKIMSignature.Failure?
        for record in records.prefix(MailAuthLimits.maxTXTRecords) {
            do {
                keyRecord = try DKIMKeyRecord.parse(record)
                break
            } catch {
                if firstProblem == nil { firstProblem = error }
            }
        }
        guard let keyRecord else {
            result.reason = firstProblem?.reason ?? "no key for signature"
            return result
        }
        result.testing = keyRecord.testing
        guard keyRecord.key.algorithm == signature.algorithm else {
            result.reason = "key type does not match a="
            return result
        }
        // §3.6.1 t=s: the i= domain must be d= itself, not a subdomain.
        if keyRecord.strict, let identityDomain = signature.identityDomain, identityDomain != signature.domain {
            result.reason = "key requires i= domain to equal d= (t=s)"
            return result
        }

        // §6.1.3: the body hash, honouring l=.
        let limit = signature.bodyLength
        var bodyHasher = SHA256()
        var hashed = 0
        var body = BodyCanonicalizer(algorithm: signature.bodyCanonicalization) { chunk in
            guard let limit else {
                bodyHasher.update(data: chunk)
                return
            }
            let take = min(chunk.count, max(limit - hashed, 0))
            if take > 0 { bodyHasher.update(data: chunk[0..<take]) }
            hashed += take
        }
        body.process(message.body)
        body.finish()
        if let limit {
            // §3.5: l= larger than the body means the body was cut after signing.
            guard limit <= body.emitted else {
                result.result = .fail
                result.reason = "l= is longer than the body"
                return result
            }
            result.bodyLengthLimited = limit < body.emitted
        }
        guard Array(bodyHasher.finalize()) == signature.bodyHash else {
            result.result = .fail
            result.reason = "body hash did not verify"
            return result
        }

        var data: [UInt8] = []
        for selected in DKIMHeaderSelection.select(signature.signedHeaders, from: message.fields) {
            Canonicalizer.appendHeader(selected, signature.headerCanonicalization, to: &data)
        }
        let unsigned = Self.removingSignatureValue(field)
        Canonicalizer.appendHeader(unsigned, signature.headerCanonicalization, terminate: false, to: &data)
        guard keyRecord.key.isValidSignature(signature.signature, forSHA256Of: data) else {
            result.result = .fail
            result.reason = "signature did not verify"
            return result
        }
        result.result = .pass
        if result.bodyLengthLimited { result.reason = "l= covers only part of the body" }
        return result
    }

    /// RFC 6376 §3.7: the field with the value of b= (and the white space around it) removed,
    /// everything else byte for byte.
    static func removingSignatureValue(_ field: RawHeaderField) -> RawHeaderField {
        let bytes = field.bytes
        var specStart = field.valueStart
        while specStart <= bytes.count {
            let specEnd = bytes[specStart...].firstIndex(of: 0x3b) ?? bytes.count
            if let equals = bytes[specStart..<specEnd].firstIndex(of: 0x3d) {
                let name = bytes[specStart..<equals].filter { !TagList.isFWSByte($0) }
                if name == [0x62] {
                    var copy = field
                    copy.bytes = Array(bytes[..<(equals + 1)]) + Array(bytes[specEnd...])
                    return copy
                }
            }
            specStart = specEnd + 1
        }
        return field
    }
}
