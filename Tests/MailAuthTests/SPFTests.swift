import Foundation
import Testing

@testable import MailAuth

@Suite("SPF record parsing (RFC 7208 §4.6, §12)")
struct SPFRecordTests {
    @Test func parsesMechanismsAndModifiers() throws {
        let record = try SPFRecord(
            parsing: "v=spf1 +a -mx:example.org/30 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 ptr include:_spf.example.net "
                + "exists:%{ir}.bl.example a//64 a:x.example/24//48 all redirect=other.example exp=explain.%{d} foo=bar")
        #expect(record.directives.count == 10)
        #expect(record.directives.map(\.qualifier) == [.pass, .fail, .softfail, .neutral, .pass, .pass, .pass, .pass, .pass, .pass])
        guard case .mx(let domain?, 30, 128) = record.directives[1].mechanism else {
            Issue.record("mx: \(record.directives[1].mechanism)")
            return
        }
        #expect(domain.elements == [.literal("example.org")])
        #expect(record.directives[2].mechanism == .ip4(IPAddress(bytes: [192, 0, 2, 0]), prefix: 24))
        guard case .ip6(let network, 32) = record.directives[3].mechanism else {
            Issue.record("ip6")
            return
        }
        #expect(network.description == "2001:db8::")
        guard case .a(nil, 32, 64) = record.directives[7].mechanism, case .a(_?, 24, 48) = record.directives[8].mechanism else {
            Issue.record("a cidr")
            return
        }
        #expect(record.redirect != nil)
        #expect(record.explanation != nil)
    }

    @Test(arguments: [
        "v=spf1", "V=SPF1 -ALL", "v=spf1 ", "v=spf1  a  mx  -all", "v=spf1 unknown-mod=%{d} -all", "v=spf1 ip4:0.0.0.0/0",
        "v=spf1 a:%{d}", "v=spf1 include:%{l1r-}.%{d2}.example", "v=spf1 exists:%{i}._spf.%{d}", "v=spf1 ip6:::1",
        "v=spf1 a:example.com.", "v=spf1 mx/0",
    ])
    func accepted(_ text: String) throws {
        _ = try SPFRecord(parsing: text)
    }

    @Test(arguments: [
        ("v=spf10 -all", SPFSyntaxError.notSPF1),
        ("spf1 -all", .notSPF1),
        ("v=spf1 foo", .unknownMechanism("foo")),
        ("v=spf1 -all:x", .invalidTerm("-all:x")),
        ("v=spf1 ip4:192.0.2.0/33", .invalidTerm("ip4:192.0.2.0/33")),
        ("v=spf1 ip4:192.0.2.0/024", .invalidTerm("ip4:192.0.2.0/024")),
        ("v=spf1 ip4:2001:db8::1", .invalidTerm("ip4:2001:db8::1")),
        ("v=spf1 ip6:192.0.2.1", .invalidTerm("ip6:192.0.2.1")),
        ("v=spf1 ip6:::1/129", .invalidTerm("ip6:::1/129")),
        ("v=spf1 a/33", .invalidTerm("a/33")),
        ("v=spf1 include", .invalidTerm("include")),
        ("v=spf1 include:com", .invalidTerm("include:com")),
        ("v=spf1 exists:%{x}.example.com", .invalidMacro("%{x}.example.com")),
        ("v=spf1 a:%{c}.example.com", .invalidMacro("%{c}.example.com")),
        ("v=spf1 a:%{d0}.example.com", .invalidMacro("%{d0}.example.com")),
        ("v=spf1 a:%.example.com", .invalidMacro("%.example.com")),
        ("v=spf1 a:%{d.example.com", .invalidMacro("%{d.example.com")),
        ("v=spf1 redirect=a.example redirect=b.example", .duplicateModifier("redirect")),
        ("v=spf1 exp=a.example exp=b.example", .duplicateModifier("exp")),
        ("v=spf1 -all\ta", .unknownMechanism("-all\ta")),
    ])
    func refused(_ text: String, _ error: SPFSyntaxError) {
        #expect(throws: error) { try SPFRecord(parsing: text) }
    }
}

@Suite("SPF macros (RFC 7208 §7.4)")
struct SPFMacroTests {
    static func context(ip: String) -> SPFVerifier.Context {
        SPFVerifier.Context(
            ip: IPAddress(ip)!, sender: "strong-bad@email.example.com", localPart: "strong-bad", senderDomain: "email.example.com",
            helo: "mx.example.org")
    }

    static let verifier = SPFVerifier(
        resolver: FakeResolver(), receivingDomain: "mx.receiver.example", now: { Date(timeIntervalSince1970: 1_700_000_000) })

    @Test(arguments: [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%{h}", "mx.example.org"),
        ("%{p}", "unknown"),
        ("%%%_%-", "% %20"),
        ("%{S}", "strong-bad%40email.example.com"),
    ])
    func ipv4(_ macro: String, _ expected: String) throws {
        let string = try SPFMacroString(parsing: Substring(macro))
        #expect(Self.verifier.expand(string, domain: "email.example.com", context: Self.context(ip: "192.0.2.3")) == expected)
    }

    @Test func ipv6() throws {
        let string = try SPFMacroString(parsing: "%{ir}.%{v}._spf.%{d2}")
        #expect(
            Self.verifier.expand(string, domain: "email.example.com", context: Self.context(ip: "2001:db8::cb01"))
                == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com")
    }

    @Test func explanationLetters() throws {
        let string = try SPFMacroString(parsing: "%{c} is not allowed by %{r} at %{t}", allowExplanationLetters: true)
        #expect(
            Self.verifier.expand(string, domain: "email.example.com", context: Self.context(ip: "2001:db8::cb01"))
                == "2001:db8::cb01 is not allowed by mx.receiver.example at 1700000000")
    }

    @Test func longExpansionIsCutFromTheLeft() throws {
        let long = String(repeating: "abcdefghij.", count: 30) + "example.com"
        let context = SPFVerifier.Context(
            ip: IPAddress("192.0.2.3")!, sender: "x@\(long)", localPart: "x", senderDomain: long, helo: "h.example")
        let name = try #require(Self.verifier.expandDomain(try SPFMacroString(parsing: "%{o}.bl.example"), domain: long, context: context))
        #expect(name.utf8.count <= 253)
        #expect(name.hasSuffix("example.com.bl.example"))
    }
}

@Suite("SPF evaluation")
struct SPFEvaluationTests {
    /// The DNS zone of RFC 7208 Appendix A.
    static func appendixZone(_ exampleCom: String) -> FakeResolver {
        let zone = FakeResolver()
        zone.txt["example.com"] = [exampleCom]
        zone.mx["example.com"] = [
            .init(preference: 10, exchange: "mail-a.example.com"), .init(preference: 20, exchange: "mail-b.example.com"),
        ]
        zone.a["example.com"] = ["192.0.2.10", "192.0.2.11"]
        zone.a["amy.example.com"] = ["192.0.2.65"]
        zone.a["bob.example.com"] = ["192.0.2.66"]
        zone.a["mail-a.example.com"] = ["192.0.2.129"]
        zone.a["mail-b.example.com"] = ["192.0.2.130"]
        zone.a["www.example.com"] = ["192.0.2.10", "192.0.2.11"]
        zone.mx["example.org"] = [.init(preference: 10, exchange: "mail-c.example.org")]
        zone.a["mail-c.example.org"] = ["192.0.2.140"]
        zone.ptr = [
            "192.0.2.10": ["example.com."], "192.0.2.11": ["example.com."], "192.0.2.65": ["amy.example.com."],
            "192.0.2.66": ["bob.example.com."], "192.0.2.129": ["mail-a.example.com."], "192.0.2.130": ["mail-b.example.com."],
            "192.0.2.140": ["mail-c.example.org."], "10.0.0.4": ["bob.example.com."],
        ]
        return zone
    }

    static let appendixHosts = [
        "192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.129", "192.0.2.130", "192.0.2.140", "10.0.0.4",
    ]

    /// RFC 7208 Appendix A.1: the hosts each record lets through; every other host fails.
    @Test(arguments: [
        ("v=spf1 a -all", ["192.0.2.10", "192.0.2.11"]),
        ("v=spf1 a:example.org -all", []),
        ("v=spf1 mx -all", ["192.0.2.129", "192.0.2.130"]),
        ("v=spf1 mx:example.org -all", ["192.0.2.140"]),
        ("v=spf1 mx mx:example.org -all", ["192.0.2.129", "192.0.2.130", "192.0.2.140"]),
        ("v=spf1 mx/30 mx:example.org/30 -all", ["192.0.2.129", "192.0.2.130", "192.0.2.140"]),
        ("v=spf1 ptr -all", ["192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.129", "192.0.2.130"]),
        ("v=spf1 ip4:192.0.2.128/28 -all", ["192.0.2.129", "192.0.2.130", "192.0.2.140"]),
    ])
    func appendixA1(_ record: String, _ passing: [String]) async {
        let verifier = SPFVerifier(resolver: Self.appendixZone(record))
        for host in Self.appendixHosts {
            let result = await verifier.check(ip: host, mailFrom: "user@example.com", helo: "client.example")
            #expect(result.result == (passing.contains(host) ? .pass : .fail), "\(record) from \(host): \(result.reason ?? "")")
            #expect(result.domain == "example.com")
        }
    }

    @Test func mx30CoversNeighbours() async {
        let verifier = SPFVerifier(resolver: Self.appendixZone("v=spf1 mx/30 mx:example.org/30 -all"))
        for (host, expected) in [
            ("192.0.2.131", SPFResult.Result.pass), ("192.0.2.132", .fail), ("192.0.2.143", .pass), ("192.0.2.144", .fail),
        ] {
            #expect(await verifier.check(ip: host, mailFrom: "user@example.com", helo: "h.example").result == expected, "\(host)")
        }
    }

    @Test func plusAll() async {
        let verifier = SPFVerifier(resolver: Self.appendixZone("v=spf1 +all"))
        #expect(await verifier.check(ip: "203.0.113.7", mailFrom: "user@example.com", helo: "h.example").result == .pass)
        #expect(await verifier.check(ip: "2001:db8::7", mailFrom: "user@example.com", helo: "h.example").result == .pass)
    }

    /// RFC 7208 Appendix A.2: several domains sharing one policy through include and redirect.
    @Test func appendixA2() async {
        let zone = FakeResolver()
        zone.txt["example.org"] = ["v=spf1 include:example.com include:example.net -all"]
        zone.txt["la.example.org"] = ["v=spf1 redirect=example.org"]
        zone.txt["example.com"] = ["v=spf1 ip4:10.0.0.1 -all"]
        zone.txt["example.net"] = ["v=spf1 ip4:10.0.0.2 -all"]
        let verifier = SPFVerifier(resolver: zone)
        for (domain, ip, expected) in [
            ("example.org", "10.0.0.1", SPFResult.Result.pass), ("example.org", "10.0.0.2", .pass), ("example.org", "10.0.0.3", .fail),
            ("la.example.org", "10.0.0.1", .pass), ("la.example.org", "10.0.0.2", .pass), ("la.example.org", "10.0.0.3", .fail),
            ("example.com", "10.0.0.2", .fail),
        ] {
            let result = await verifier.check(ip: ip, mailFrom: "someone@\(domain)", helo: "h.example")
            #expect(result.result == expected, "\(domain) \(ip): \(result.reason ?? "")")
        }
    }

    /// RFC 7208 Appendix A.3: DNSBL-style exists: with macros.
    @Test func appendixA3() async {
        let zone = Self.appendixZone("v=spf1 mx include:mobile-users._spf.%{d} include:remote-users._spf.%{d} -all")
        zone.txt["mobile-users._spf.example.com"] = ["v=spf1 exists:%{l1r+}.%{d}"]
        zone.txt["remote-users._spf.example.com"] = ["v=spf1 exists:%{ir}.%{l1r+}.%{d}"]
        zone.a["mary.mobile-users._spf.example.com"] = ["127.0.0.2"]
        zone.a["fred.mobile-users._spf.example.com"] = ["127.0.0.2"]
        zone.a["15.15.168.192.joel.remote-users._spf.example.com"] = ["127.0.0.2"]
        zone.a["16.15.168.192.joel.remote-users._spf.example.com"] = ["127.0.0.2"]
        let verifier = SPFVerifier(resolver: zone)
        for (local, ip, expected) in [
            ("mary", "1.2.3.4", SPFResult.Result.pass), ("fred", "1.2.3.4", .pass), ("fred+wildcard", "1.2.3.4", .pass),
            ("joel", "1.2.3.4", .fail), ("joel", "192.168.15.15", .pass), ("joel", "192.168.15.16", .pass),
            ("joel", "192.168.15.17", .fail), ("other", "192.0.2.129", .pass),
        ] {
            let result = await verifier.check(ip: ip, mailFrom: "\(local)@example.com", helo: "h.example")
            #expect(result.result == expected, "\(local) from \(ip): \(result.reason ?? "")")
        }
    }

    /// RFC 7208 Appendix A.4 (with erratum 6216): both an address range and a PTR name.
    @Test func appendixA4() async {
        let zone = Self.appendixZone("v=spf1 -include:ip4._spf.%{d} -include:ptr._spf.%{d} +all")
        zone.txt["ip4._spf.example.com"] = ["v=spf1 -ip4:192.0.2.0/24 +all"]
        zone.txt["ptr._spf.example.com"] = ["v=spf1 -ptr:example.com +all"]
        zone.ptr["192.0.2.1"] = ["a.example.com."]
        zone.ptr["192.0.0.1"] = ["b.example.com."]
        zone.a["a.example.com"] = ["192.0.2.1"]
        zone.a["b.example.com"] = ["192.0.0.1"]
        let verifier = SPFVerifier(resolver: zone)
        for (ip, expected) in [("192.0.2.1", SPFResult.Result.pass), ("192.0.2.2", .fail), ("192.0.0.1", .fail), ("192.0.0.2", .fail)] {
            let result = await verifier.check(ip: ip, mailFrom: "x@example.com", helo: "h.example")
            #expect(result.result == expected, "\(ip): \(result.reason ?? "")")
        }
    }

    @Test func ptrNeedsForwardConfirmation() async {
        // 10.0.0.4 claims bob.example.com, which resolves elsewhere.
        let verifier = SPFVerifier(resolver: Self.appendixZone("v=spf1 ptr -all"))
        #expect(await verifier.check(ip: "10.0.0.4", mailFrom: "x@example.com", helo: "h.example").result == .fail)
    }

    static func scenarios() -> FakeResolver {
        let zone = FakeResolver()
        zone.txt = [
            "v6.example": ["v=spf1 ip6:2001:db8::/64 -all"],
            "a6.example": ["v=spf1 a:mail.v6.example -all"],
            "void.example": ["v=spf1 exists:absent1.example exists:absent2.example ip4:1.2.3.4 exists:absent3.example -all"],
            "loop.example": ["v=spf1 include:loop.example -all"],
            "redirect-loop.example": ["v=spf1 redirect=redirect-loop.example"],
            "a-absent.example": ["v=spf1 a:absent.example"],
            "include-temperror.example": ["v=spf1 include:failing.example"],
            "include-none.example": ["v=spf1 include:absent.example"],
            "include-permerror.example": ["v=spf1 include:broken.example"],
            "broken.example": ["v=spf1 bogus"],
            "two.example": ["v=spf1 -all", "v=spf1 +all"],
            "other-txt.example": ["google-site-verification=abc", "v=spf1 ip4:192.0.2.1 -all"],
            "no-spf.example": ["hello"],
            "null-mx.example": ["v=spf1 mx -all"],
            "many-mx.example": ["v=spf1 mx -all"],
            "many-ptr.example": ["v=spf1 ptr:many-mx.example ~all"],
            "expl.example": ["v=spf1 ip4:10.0.1.1 -ip4:10.0.1.2 ?all exp=details.expl.example"],
            "details.expl.example": ["%{i} is not one of %{d}'s senders"],
            "expl-two.example": ["v=spf1 -all exp=two.expl.example"],
            "two.expl.example": ["one", "two"],
            "redirect-none.example": ["v=spf1 redirect=absent.example"],
            "helo.example": ["v=spf1 ip4:192.0.2.5 -all"],
            "upper.example": ["V=SPF1 IP4:192.0.2.5 -ALL"],
            "exists-v6.example": ["v=spf1 exists:%{ir}.list.example -all"],
            "ten.example": ["v=spf1 " + (1...9).map { "a:h\($0).example" }.joined(separator: " ") + " include:helo.example -all"],
            "eleven.example": ["v=spf1 " + (1...10).map { "a:h\($0).example" }.joined(separator: " ") + " include:helo.example -all"],
        ]
        zone.a = ["1.0.0.127.list.example": ["127.0.0.2"]]
        for index in 1...11 { zone.a["h\(index).example"] = ["203.0.113.\(index)"] }
        zone.aaaa = ["mail.v6.example": ["2001:db8::1"]]
        zone.mx["null-mx.example"] = [.init(preference: 0, exchange: ".")]
        zone.mx["many-mx.example"] = (1...11).map { .init(preference: UInt16($0), exchange: "mx\($0).many-mx.example") }
        for index in 1...11 { zone.a["mx\(index).many-mx.example"] = ["10.0.1.\(index)"] }
        zone.ptr["10.0.1.1"] = (1...11).map { "mx\($0).many-mx.example." }
        // mx2, which resolves to 10.0.1.2, is the 11th name: ignored (§4.6.4).
        zone.ptr["10.0.1.2"] = (3...11).map { "mx\($0).many-mx.example." } + ["other.many-mx.example.", "mx2.many-mx.example."]
        zone.failing = ["failing.example"]
        return zone
    }

    @Test(arguments: [
        ("v6.example", "2001:db8::1", SPFResult.Result.pass),
        ("v6.example", "2001:db8:0:1::1", .fail),
        ("v6.example", "192.0.2.1", .fail),
        ("a6.example", "2001:db8::1", .pass),
        ("a6.example", "2001:db8::2", .fail),
        ("void.example", "1.2.3.4", .pass),
        ("void.example", "1.1.1.1", .permerror),
        ("loop.example", "1.2.3.4", .permerror),
        ("redirect-loop.example", "1.2.3.4", .permerror),
        ("a-absent.example", "1.2.3.4", .neutral),
        ("include-temperror.example", "1.2.3.4", .temperror),
        ("include-none.example", "1.2.3.4", .permerror),
        ("include-permerror.example", "1.2.3.4", .permerror),
        ("two.example", "1.2.3.4", .permerror),
        ("other-txt.example", "192.0.2.1", .pass),
        ("no-spf.example", "192.0.2.1", .none),
        ("absent.example", "192.0.2.1", .none),
        ("failing.example", "192.0.2.1", .temperror),
        ("null-mx.example", "1.2.3.4", .fail),
        ("many-mx.example", "10.0.1.1", .pass),
        ("many-mx.example", "10.0.1.10", .pass),
        ("many-mx.example", "10.0.1.11", .permerror),
        ("many-ptr.example", "10.0.1.1", .pass),
        ("many-ptr.example", "10.0.1.2", .softfail),
        ("expl.example", "10.0.1.1", .pass),
        ("expl.example", "10.0.1.3", .neutral),
        ("redirect-none.example", "1.2.3.4", .permerror),
        ("upper.example", "192.0.2.5", .pass),
        ("exists-v6.example", "127.0.0.1", .pass),
        ("exists-v6.example", "::ffff:127.0.0.1", .pass),
        ("ten.example", "192.0.2.5", .pass),
        ("eleven.example", "192.0.2.5", .permerror),
    ])
    func scenario(_ domain: String, _ ip: String, _ expected: SPFResult.Result) async {
        let result = await SPFVerifier(resolver: Self.scenarios()).check(ip: ip, mailFrom: "x@\(domain)", helo: "h.example")
        #expect(result.result == expected, "\(domain) from \(ip): \(result.reason ?? "")")
    }

    @Test func explanation() async {
        let verifier = SPFVerifier(resolver: Self.scenarios())
        let result = await verifier.check(ip: "10.0.1.2", mailFrom: "x@expl.example", helo: "h.example")
        #expect(result.result == .fail)
        #expect(result.explanation == "10.0.1.2 is not one of expl.example's senders")
        // Two TXT records at the exp= name: no explanation (§6.2).
        let two = await verifier.check(ip: "10.0.1.2", mailFrom: "x@expl-two.example", helo: "h.example")
        #expect(two.result == .fail)
        #expect(two.explanation == nil)
    }

    @Test func identities() async {
        let verifier = SPFVerifier(resolver: Self.scenarios())
        // Null reverse-path: postmaster@<helo>.
        let helo = await verifier.check(ip: "192.0.2.5", mailFrom: "<>", helo: "helo.example")
        #expect(helo.result == .pass)
        #expect(helo.identity == .helo)
        #expect(helo.domain == "helo.example")
        #expect(helo.sender == "postmaster@helo.example")
        // No local part.
        let bare = await verifier.check(ip: "192.0.2.5", mailFrom: "<@helo.example>", helo: "x.example")
        #expect(bare.sender == "postmaster@helo.example")
        #expect(bare.result == .pass)
        // Angle brackets and case.
        let upper = await verifier.check(ip: "192.0.2.5", mailFrom: "<Someone@HELO.Example>", helo: "x.example")
        #expect(upper.result == .pass)
        #expect(upper.domain == "helo.example")
        // Malformed domains and address-literal HELOs give none (§4.3).
        for (from, heloName) in [("x@-bad..example", "h.example"), ("", "[192.0.2.1]"), ("x@com", "h.example"), ("x@", "h.example")] {
            #expect(await verifier.check(ip: "192.0.2.5", mailFrom: from, helo: heloName).result == .none, "\(from) \(heloName)")
        }
        #expect(await verifier.check(ip: "not-an-ip", mailFrom: "x@helo.example", helo: "h.example").result == .permerror)
    }

    @Test func lookupsAreBounded() async {
        let zone = Self.scenarios()
        _ = await SPFVerifier(resolver: zone).check(ip: "1.2.3.4", mailFrom: "x@loop.example", helo: "h.example")
        // The first record plus 10 includes, then permerror.
        #expect(zone.queries.count <= 11)
    }
}
