import Foundation

/// SPF, DKIM and DMARC for one inbound message.
public struct MailAuthenticationReport: Sendable, Equatable {
    public var spf: SPFResult
    /// One per DKIM-Signature field verified; empty when the message is not signed.
    public var dkim: [DKIMVerificationResult]
    public var dmarc: DMARCResult

    public init(spf: SPFResult, dkim: [DKIMVerificationResult], dmarc: DMARCResult) {
        self.spf = spf
        self.dkim = dkim
        self.dmarc = dmarc
    }

    /// The `Authentication-Results:` field (RFC 8601) to prepend, CRLF-terminated, folded so
    /// that lines stay under 78 columns (a single word longer than that, such as a 200-octet
    /// domain name, is left whole). Values from the message or DNS are made safe: quoted when
    /// they are not tokens, control characters dropped. The SMTP layer must first remove
    /// Authentication-Results fields claiming the same authserv-id (RFC 8601 §5).
    public func authenticationResultsHeader(authServID: String) -> String {
        var resinfos: [[String]] = []

        var spfWords = ["spf=\(spf.result.rawValue)"]
        if spf.result == .temperror || spf.result == .permerror, let reason = spf.reason {
            spfWords.append(AuthResultsText.comment(reason))
        }
        switch spf.identity {
        case .mailFrom: spfWords.append("smtp.mailfrom=" + AuthResultsText.value(spf.sender.isEmpty ? spf.domain : spf.sender))
        case .helo: spfWords.append("smtp.helo=" + AuthResultsText.value(spf.domain))
        }
        resinfos.append(spfWords)

        if dkim.isEmpty {
            resinfos.append(["dkim=none"])
        }
        for signature in dkim {
            var words = ["dkim=\(signature.result.rawValue)"]
            if signature.result != .pass || signature.bodyLengthLimited, let reason = signature.reason {
                words.append(AuthResultsText.comment(reason))
            }
            if !signature.domain.isEmpty { words.append("header.d=" + AuthResultsText.value(signature.domain)) }
            if !signature.selector.isEmpty { words.append("header.s=" + AuthResultsText.value(signature.selector)) }
            if !signature.headerB.isEmpty { words.append("header.b=" + AuthResultsText.value(signature.headerB)) }
            resinfos.append(words)
        }

        var dmarcWords = ["dmarc=\(dmarc.result.rawValue)"]
        if dmarc.recordDomain != nil {
            dmarcWords.append(
                dmarc.percentage < 100 ? "(p=\(dmarc.policy.rawValue) pct=\(dmarc.percentage))" : "(p=\(dmarc.policy.rawValue))")
        } else if dmarc.result == .temperror || dmarc.result == .permerror, let reason = dmarc.reason {
            dmarcWords.append(AuthResultsText.comment(reason))
        }
        if !dmarc.fromDomain.isEmpty { dmarcWords.append("header.from=" + AuthResultsText.value(dmarc.fromDomain)) }
        resinfos.append(dmarcWords)

        var folder = AuthResultsFolder(start: "Authentication-Results: " + AuthResultsText.value(authServID) + ";")
        for (index, words) in resinfos.enumerated() {
            folder.newLine()
            for (wordIndex, word) in words.enumerated() {
                let last = wordIndex == words.count - 1
                folder.append(last && index < resinfos.count - 1 ? word + ";" : word, first: wordIndex == 0)
            }
        }
        return folder.text + "\r\n"
    }
}

/// Safe text for Authentication-Results values and comments.
enum AuthResultsText {
    /// RFC 2045 token characters.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7f && !"()<>@,;:\\\"/[]?=".utf8.contains(byte)
    }

    /// A pvalue (RFC 8601 §2.2): `[local-part "@"] domain` or a token when the text is one,
    /// otherwise a quoted-string. Control characters are dropped and length is capped.
    static func value(_ raw: String) -> String {
        let bytes = Array(raw.utf8.filter { $0 >= 0x20 && $0 != 0x7f }.prefix(320))
        if bytes.isEmpty { return "\"\"" }
        let atCount = bytes.filter { $0 == 0x40 }.count
        let plain = bytes.allSatisfy { isTokenByte($0) || $0 == 0x40 } && atCount <= 1 && bytes.first != 0x40
        if plain { return String(decoding: bytes, as: UTF8.self) }
        var out: [UInt8] = [0x22]
        for byte in bytes {
            if byte == 0x22 || byte == 0x5c { out.append(0x5c) }
            out.append(byte)
        }
        out.append(0x22)
        return String(decoding: out, as: UTF8.self)
    }

    /// A comment of printable ASCII, parentheses and backslashes escaped, at most 60 characters.
    static func comment(_ raw: String) -> String {
        var out = "("
        for scalar in raw.unicodeScalars.prefix(60) where scalar.value >= 0x20 && scalar.value < 0x7f {
            if scalar == "(" || scalar == ")" || scalar == "\\" { out += "\\" }
            out.unicodeScalars.append(scalar)
        }
        return out + ")"
    }
}

/// Folds at word boundaries; a comment stays whole on its line when it fits.
struct AuthResultsFolder {
    private(set) var text: String
    private var column: Int
    private static let width = 76

    init(start: String) {
        text = start
        column = start.count
    }

    mutating func newLine() {
        text += "\r\n\t"
        column = 1
    }

    mutating func append(_ word: String, first: Bool) {
        if first {
            text += word
            column += word.count
        } else if column + 1 + word.count > Self.width {
            text += "\r\n\t" + word
            column = 1 + word.count
        } else {
            text += " " + word
            column += 1 + word.count
        }
    }
}

/// SPF, DKIM and DMARC in one call, for the SMTP server's DATA phase.
public struct MailAuthenticator: Sendable {
    public var spf: SPFVerifier
    public var dkim: DKIMVerifier
    public var dmarc: DMARCEvaluator

    public init(resolver: any MailAuthResolver, receivingDomain: String = "unknown", now: @escaping @Sendable () -> Date = { Date() }) {
        spf = SPFVerifier(resolver: resolver, receivingDomain: receivingDomain, now: now)
        dkim = DKIMVerifier(resolver: resolver, now: now)
        dmarc = DMARCEvaluator(resolver: resolver)
    }

    /// SPF and DKIM run concurrently, then DMARC over both.
    public func authenticate(message: [UInt8], clientIP: String, helo: String, mailFrom: String) async -> MailAuthenticationReport {
        async let spfResult = spf.check(ip: clientIP, mailFrom: mailFrom, helo: helo)
        async let dkimResults = dkim.verify(message)
        let (spfOutcome, dkimOutcome) = await (spfResult, dkimResults)
        let dmarcResult = await dmarc.evaluate(message: message, spf: spfOutcome, dkim: dkimOutcome)
        return MailAuthenticationReport(spf: spfOutcome, dkim: dkimOutcome, dmarc: dmarcResult)
    }
}
