import Foundation
import Testing

@testable import MailAuth

@Suite("Authentication-Results (RFC 8601)")
struct AuthenticationResultsTests {
    static func lines(_ header: String) -> [String] {
        header.dropLast(2).components(separatedBy: "\r\n")
    }

    @Test func formatsAllThree() {
        let report = MailAuthenticationReport(
            spf: SPFResult(result: .pass, domain: "example.com", identity: .mailFrom, sender: "bounce@example.com"),
            dkim: [
                DKIMVerificationResult(result: .pass, domain: "example.com", selector: "sel", headerB: "abcd+efg"),
                DKIMVerificationResult(
                    result: .fail, domain: "example.net", selector: "s2", headerB: "ab/c=xyz", reason: "body hash did not verify"),
            ],
            dmarc: DMARCResult(result: .pass, policy: .reject, fromDomain: "example.com", recordDomain: "example.com"))
        let header = report.authenticationResultsHeader(authServID: "mx1.svcpkg.example")
        #expect(
            header
                == "Authentication-Results: mx1.svcpkg.example;\r\n\tspf=pass smtp.mailfrom=bounce@example.com;\r\n"
                + "\tdkim=pass header.d=example.com header.s=sel header.b=abcd+efg;\r\n"
                + "\tdkim=fail (body hash did not verify) header.d=example.net header.s=s2\r\n"
                + "\theader.b=\"ab/c=xyz\";\r\n\tdmarc=pass (p=reject) header.from=example.com\r\n")
        for line in Self.lines(header) { #expect(line.count < 78, "\(line)") }
    }

    @Test func noneResults() {
        let report = MailAuthenticationReport(
            spf: SPFResult(result: .none, domain: "helo.example", identity: .helo, sender: "postmaster@helo.example"),
            dkim: [],
            dmarc: DMARCResult(result: .none, fromDomain: "example.org", reason: "no DMARC record"))
        #expect(
            report.authenticationResultsHeader(authServID: "mx")
                == "Authentication-Results: mx;\r\n\tspf=none smtp.helo=helo.example;\r\n\tdkim=none;\r\n\tdmarc=none header.from=example.org\r\n"
        )
    }

    @Test func hostileValuesAreNeutralized() {
        let report = MailAuthenticationReport(
            spf: SPFResult(
                result: .permerror, domain: "example.com", identity: .mailFrom, sender: "evil\r\nX-Injected: yes\"@example.com",
                reason: "example.com: unknown mechanism \"x)(\\\""),
            dkim: [DKIMVerificationResult(result: .permerror, domain: "a;b.example", selector: "s s", headerB: "", reason: "bad (really)")],
            dmarc: DMARCResult(result: .fail, policy: .quarantine, percentage: 20, fromDomain: "example.com", recordDomain: "example.com"))
        let header = report.authenticationResultsHeader(authServID: "mx; evil=1")
        #expect(!header.dropLast(2).contains("\r\nX-Injected"))
        #expect(header.contains("smtp.mailfrom=\"evilX-Injected: yes\\\"@example.com\""))
        #expect(header.contains("(example.com: unknown mechanism \"x\\)\\(\\\\\")"))
        #expect(header.contains("header.d=\"a;b.example\""))
        #expect(header.contains("header.s=\"s s\""))
        #expect(header.contains("(bad \\(really\\))"))
        #expect(header.contains("dmarc=fail (p=quarantine pct=20) header.from=example.com"))
        #expect(header.hasPrefix("Authentication-Results: \"mx; evil=1\";"))
        // Every line break is a fold.
        let body = header.dropLast(2)
        #expect(body.components(separatedBy: "\r\n").dropFirst().allSatisfy { $0.hasPrefix("\t") })
    }

    @Test func longValuesFold() {
        let longDomain = (0..<5).map { _ in String(repeating: "a", count: 40) }.joined(separator: ".") + ".example"
        let report = MailAuthenticationReport(
            spf: SPFResult(result: .pass, domain: longDomain, sender: "x@\(longDomain)"),
            dkim: [
                DKIMVerificationResult(
                    result: .pass, domain: "example.com", selector: String(repeating: "s", count: 60), headerB: "12345678")
            ],
            dmarc: DMARCResult(result: .pass, fromDomain: "example.com"))
        let header = report.authenticationResultsHeader(authServID: "mx")
        for line in Self.lines(header) where !line.contains(longDomain) { #expect(line.count < 78, "\(line)") }
    }
}

@Suite("MailAuthenticator end to end")
struct MailAuthenticatorTests {
    @Test func authenticatesSignedMessage() async throws {
        let key = try DKIMSigningKey(pem: try #require(TestKeys.ed25519).pkcs8)
        let zone = FakeResolver()
        zone.txt["example.com"] = ["v=spf1 ip4:192.0.2.0/24 -all"]
        zone.txt["mail._domainkey.example.com"] = [key.publicKeyRecord()]
        zone.txt["_dmarc.example.com"] = ["v=DMARC1; p=reject"]
        let message = sampleMessage(from: "Alice <alice@example.com>")
        let signed =
            try DKIMSigner(domain: "example.com", selector: "mail", key: key).signatureHeader(for: message, now: Date()).bytes + message
        let authenticator = MailAuthenticator(resolver: zone)

        let good = await authenticator.authenticate(
            message: signed, clientIP: "192.0.2.25", helo: "mta.example.com", mailFrom: "<alice@example.com>")
        #expect(good.spf.result == .pass)
        #expect(good.dkim.map(\.result) == [.pass])
        #expect(good.dmarc.result == .pass)
        let header = good.authenticationResultsHeader(authServID: "mx.receiver.example")
        #expect(header.contains("spf=pass smtp.mailfrom=alice@example.com;"))
        #expect(header.contains("dkim=pass header.d=example.com header.s=mail header.b="))
        #expect(header.contains("dmarc=pass (p=reject) header.from=example.com"))

        // Forged: unsigned, from an address outside the SPF range, with a lookalike envelope.
        let forged = await authenticator.authenticate(
            message: message, clientIP: "203.0.113.9", helo: "evil.example", mailFrom: "ceo@example.com")
        #expect(forged.spf.result == .fail)
        #expect(forged.dkim.isEmpty)
        #expect(forged.dmarc.result == .fail)
        #expect(forged.dmarc.policy == .reject)
        #expect(forged.dmarc.disposition(sample: 0.99) == .reject)

        // Signed by the real domain but sent with a stranger in From: DKIM passes, DMARC does not.
        let stranger = sampleMessage(from: "Boss <boss@example.com>")
        let resigned =
            try DKIMSigner(domain: "other.example", selector: "mail", key: key).signatureHeader(for: stranger, now: Date()).bytes + stranger
        zone.txt["mail._domainkey.other.example"] = [key.publicKeyRecord()]
        let unaligned = await authenticator.authenticate(message: resigned, clientIP: "203.0.113.9", helo: "other.example", mailFrom: "")
        #expect(unaligned.dkim.map(\.result) == [.pass])
        #expect(unaligned.spf.identity == .helo)
        #expect(unaligned.dmarc.result == .fail)
    }
}
