import Testing

@testable import MailAuth

@Suite("DMARC records (RFC 7489 §6.3)")
struct DMARCRecordTests {
    @Test func parsesEverything() throws {
        let record = try DMARCRecord(
            parsing:
                "v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=25; rua=mailto:a@example.com,mailto:b@example.net!10m; ruf=mailto:f@example.com; fo=1"
        )
        #expect(record.policy == .reject)
        #expect(record.subdomainPolicy == .quarantine)
        #expect(record.dkimAlignment == .strict)
        #expect(record.spfAlignment == .relaxed)
        #expect(record.percentage == 25)
        #expect(record.aggregateReportURIs == ["mailto:a@example.com", "mailto:b@example.net!10m"])
        #expect(record.failureReportURIs == ["mailto:f@example.com"])
    }

    @Test func defaults() throws {
        let record = try DMARCRecord(parsing: "v=DMARC1;p=none")
        #expect(record.policy == .none)
        #expect(record.subdomainPolicy == nil)
        #expect(record.dkimAlignment == .relaxed)
        #expect(record.spfAlignment == .relaxed)
        #expect(record.percentage == 100)
    }

    @Test(arguments: [
        ("v = DMARC1 ; p = Quarantine", DMARCResult.Policy.quarantine, 100),
        ("v=DMARC1; p=reject; pct=0", .reject, 0),
        ("v=DMARC1; p=reject; pct=101", .reject, 100),
        ("v=DMARC1; p=reject; pct=abc", .reject, 100),
        ("v=DMARC1; p=reject; adkim=x; unknown=tag", .reject, 100),
        // §6.6.3: an invalid p= with a usable rua= is p=none.
        ("v=DMARC1; p=bogus; rua=mailto:r@example.com", .none, 100),
        ("v=DMARC1; rua=mailto:r@example.com", .none, 100),
        ("v=DMARC1; p=reject; sp=bogus; rua=mailto:r@example.com", .none, 100),
    ])
    func policies(_ text: String, _ policy: DMARCResult.Policy, _ percentage: Int) throws {
        let record = try DMARCRecord(parsing: text)
        #expect(record.policy == policy)
        #expect(record.percentage == percentage)
    }

    @Test(arguments: [
        ("v=DMARC2; p=reject", DMARCRecord.ParseError.notDMARC1),
        ("p=reject; v=DMARC1", .notDMARC1),
        ("v=dmarc1; p=reject", .notDMARC1),
        ("v=DMARC1x; p=reject", .notDMARC1),
        ("v=DMARC1; p=bogus", .noValidPolicy),
        ("v=DMARC1", .noValidPolicy),
        ("v=DMARC1; p=reject; p=none", .syntax("duplicateTag(\"p\")")),
    ])
    func refused(_ text: String, _ error: DMARCRecord.ParseError) {
        #expect(throws: error) { try DMARCRecord(parsing: text) }
    }

    @Test func disposition() {
        var result = DMARCResult(result: .fail, policy: .reject, percentage: 30)
        #expect(result.disposition(sample: 0.1) == .reject)
        #expect(result.disposition(sample: 0.5) == .quarantine)
        result.policy = .quarantine
        #expect(result.disposition(sample: 0.5) == .none)
        result.result = .pass
        #expect(result.disposition(sample: 0) == .none)
    }
}

@Suite("Organizational domains")
struct OrganizationalDomainTests {
    @Test(arguments: [
        ("example.com", "example.com"),
        ("mail.example.com", "example.com"),
        ("a.b.c.example.com", "example.com"),
        ("com", "com"),
        ("example.co.uk", "example.co.uk"),
        ("mail.example.co.uk", "example.co.uk"),
        ("co.uk", "co.uk"),
        ("x.y.example.com.au", "example.com.au"),
        ("shop.example.de", "example.de"),
    ])
    func organizational(_ domain: String, _ expected: String) {
        #expect(OrganizationalDomain.of(domain) == expected)
    }
}

@Suite("Author domains from From fields")
struct AuthorAddressTests {
    @Test(arguments: [
        ("alice@example.com", ["example.com"]),
        ("Alice <alice@Example.COM>", ["example.com"]),
        ("\"Alice @ Work\" <alice@example.com>", ["example.com"]),
        ("\"bob@evil.example\" <alice@example.com>", ["example.com"]),
        ("=?utf-8?q?ceo=40bank.example?= <alice@example.com>", ["example.com"]),
        ("=?utf-8?B?Ym9iQGV2aWwuZXhhbXBsZQ==?= <alice@example.com>", ["example.com"]),
        ("alice@example.com (Alice at evil.example@evil.example)", ["example.com"]),
        ("(comment (nested @x.example)) alice@example.com", ["example.com"]),
        ("\"quoted@local\"@example.com", ["example.com"]),
        ("<@relay.example:alice@example.com>", ["example.com"]),
        ("alice@example.com, bob@example.net", ["example.com", "example.net"]),
        ("Team: alice@example.com, Bob <bob@example.org>;", ["example.com", "example.org"]),
        ("alice@example.com.", ["example.com"]),
        ("Alice <alice@ example.com >", ["example.com"]),
    ])
    func domains(_ value: String, _ expected: [String]) throws {
        #expect(try AuthorAddress.domains(in: value) == expected)
    }

    @Test(arguments: [
        "", "Alice", "Alice <>", "alice@[192.0.2.1]", "\"unterminated <a@example.com>", "(open comment a@example.com",
        "Alice <alice@example.com", "alice@exa mple..com", "Undisclosed recipients:;",
    ])
    func refused(_ value: String) {
        #expect(throws: AuthorAddress.Problem.self) { try AuthorAddress.domains(in: value) }
    }
}

@Suite("DMARC evaluation")
struct DMARCEvaluationTests {
    static func zone() -> FakeResolver {
        let zone = FakeResolver()
        zone.txt = [
            "_dmarc.example.com": ["v=DMARC1; p=reject; sp=quarantine; pct=100"],
            "_dmarc.strict.example": ["v=DMARC1; p=quarantine; adkim=s; aspf=s"],
            "_dmarc.two.example": ["v=DMARC1; p=none", "v=DMARC1; p=reject"],
            "_dmarc.syntax.example": ["v=DMARC1; p=reject; bad tag"],
            "_dmarc.other.example": ["some other record", "v=DMARC1; p=quarantine; pct=50"],
            "_dmarc.example.co.uk": ["v=DMARC1; p=reject"],
        ]
        zone.failing = ["_dmarc.flaky.example"]
        return zone
    }

    static func spf(_ result: SPFResult.Result, _ domain: String) -> SPFResult { SPFResult(result: result, domain: domain) }
    static func dkim(_ result: DKIMVerificationResult.Result, _ domain: String) -> DKIMVerificationResult {
        DKIMVerificationResult(result: result, domain: domain, selector: "s", headerB: "abcdefgh")
    }

    @Test func alignedSPFPasses() async {
        let result = await DMARCEvaluator(resolver: Self.zone()).evaluate(
            fromDomain: "example.com", spf: Self.spf(.pass, "bounces.example.com"), dkim: [])
        #expect(result.result == .pass)
        #expect(result.spfAligned)
        #expect(!result.dkimAligned)
        #expect(result.policy == .reject)
        #expect(result.recordDomain == "example.com")
    }

    @Test func alignedDKIMPasses() async {
        let result = await DMARCEvaluator(resolver: Self.zone()).evaluate(
            fromDomain: "example.com", spf: Self.spf(.pass, "mailer.example.net"),
            dkim: [Self.dkim(.pass, "other.example"), Self.dkim(.pass, "news.example.com")])
        #expect(result.result == .pass)
        #expect(result.dkimAligned)
        #expect(!result.spfAligned)
    }

    @Test func unalignedOrFailingFails() async {
        let evaluator = DMARCEvaluator(resolver: Self.zone())
        let unaligned = await evaluator.evaluate(
            fromDomain: "example.com", spf: Self.spf(.pass, "example.net"), dkim: [Self.dkim(.pass, "example.org")])
        #expect(unaligned.result == .fail)
        #expect(unaligned.policy == .reject)
        // Aligned domains whose checks did not pass do not count.
        let failing = await evaluator.evaluate(
            fromDomain: "example.com", spf: Self.spf(.softfail, "example.com"), dkim: [Self.dkim(.fail, "example.com")])
        #expect(failing.result == .fail)
        // "example.com" and "xexample.com" are not aligned.
        let lookalike = await evaluator.evaluate(fromDomain: "example.com", spf: Self.spf(.pass, "xexample.com"), dkim: [])
        #expect(lookalike.result == .fail)
    }

    @Test func subdomainUsesOrganizationalRecordAndSP() async {
        let result = await DMARCEvaluator(resolver: Self.zone()).evaluate(
            fromDomain: "news.example.com", spf: Self.spf(.fail, "x.example"), dkim: [])
        #expect(result.result == .fail)
        #expect(result.policy == .quarantine)
        #expect(result.recordDomain == "example.com")
        #expect(result.fromDomain == "news.example.com")
    }

    @Test func strictAlignment() async {
        let evaluator = DMARCEvaluator(resolver: Self.zone())
        let relaxedOnly = await evaluator.evaluate(
            fromDomain: "strict.example", spf: Self.spf(.pass, "mail.strict.example"), dkim: [Self.dkim(.pass, "mail.strict.example")])
        #expect(relaxedOnly.result == .fail)
        let exact = await evaluator.evaluate(
            fromDomain: "strict.example", spf: Self.spf(.fail, "strict.example"), dkim: [Self.dkim(.pass, "strict.example")])
        #expect(exact.result == .pass)
    }

    @Test func multiLabelSuffix() async {
        let evaluator = DMARCEvaluator(resolver: Self.zone())
        // Relaxed alignment stops at example.co.uk: another.co.uk is a different organization.
        let other = await evaluator.evaluate(fromDomain: "example.co.uk", spf: Self.spf(.pass, "another.co.uk"), dkim: [])
        #expect(other.result == .fail)
        let same = await evaluator.evaluate(fromDomain: "www.example.co.uk", spf: Self.spf(.pass, "bounce.example.co.uk"), dkim: [])
        #expect(same.result == .pass)
        #expect(same.recordDomain == "example.co.uk")
    }

    @Test(arguments: [
        ("nodmarc.example", DMARCResult.Result.none),
        ("two.example", .none),
        ("syntax.example", .permerror),
        ("flaky.example", .temperror),
    ])
    func discovery(_ domain: String, _ expected: DMARCResult.Result) async {
        let result = await DMARCEvaluator(resolver: Self.zone()).evaluate(fromDomain: domain, spf: Self.spf(.fail, domain), dkim: [])
        #expect(result.result == expected, "\(result.reason ?? "")")
    }

    @Test func percentageAndOtherRecordsIgnored() async {
        let result = await DMARCEvaluator(resolver: Self.zone()).evaluate(
            fromDomain: "other.example", spf: Self.spf(.fail, "x.example"), dkim: [])
        #expect(result.result == .fail)
        #expect(result.policy == .quarantine)
        #expect(result.percentage == 50)
    }

    static func message(_ fromFields: [String]) -> [UInt8] {
        (fromFields.map { "From: \($0)\r\n" }.joined() + "Subject: x\r\n\r\nbody\r\n").bytes
    }

    @Test func fromMessage() async {
        let evaluator = DMARCEvaluator(resolver: Self.zone())
        let one = await evaluator.evaluate(
            message: Self.message(["\"Bank\" <alerts@example.com>"]), spf: Self.spf(.pass, "example.com"), dkim: [])
        #expect(one.result == .pass)
        #expect(one.fromDomain == "example.com")
        #expect(!one.multipleAuthors)
    }

    @Test func noOrBrokenFrom() async {
        let evaluator = DMARCEvaluator(resolver: Self.zone())
        #expect(await evaluator.evaluate(message: Self.message([]), spf: Self.spf(.pass, "example.com"), dkim: []).result == .permerror)
        #expect(
            await evaluator.evaluate(message: Self.message(["Alice"]), spf: Self.spf(.pass, "example.com"), dkim: []).result == .permerror)
    }

    /// §6.6.1: every author domain is evaluated and the strictest result wins, so a second
    /// From cannot hide a failing one.
    @Test func severalFromFields() async {
        let evaluator = DMARCEvaluator(resolver: Self.zone())
        let spoof = await evaluator.evaluate(
            message: Self.message(["attacker@nodmarc.example", "ceo@example.com"]), spf: Self.spf(.pass, "nodmarc.example"), dkim: [])
        #expect(spoof.result == .fail)
        #expect(spoof.policy == .reject)
        #expect(spoof.fromDomain == "example.com")
        #expect(spoof.multipleAuthors)

        let sameDomain = await evaluator.evaluate(
            message: Self.message(["a@example.com", "b@example.com"]), spf: Self.spf(.pass, "example.com"), dkim: [])
        #expect(sameDomain.result == .pass)
        #expect(sameDomain.multipleAuthors)

        let mailboxList = await evaluator.evaluate(
            message: Self.message(["a@example.com, b@strict.example"]), spf: Self.spf(.pass, "example.com"), dkim: [])
        #expect(mailboxList.result == .fail)
        #expect(mailboxList.fromDomain == "strict.example")
        #expect(mailboxList.multipleAuthors)
    }
}
