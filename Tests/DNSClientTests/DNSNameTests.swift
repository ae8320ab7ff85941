import Testing

@testable import DNSClient

@Suite struct DNSNameTests {
    @Test(arguments: [
        ("example.com", "example.com"),
        ("Example.COM.", "example.com"),
        ("_dmarc.example.org", "_dmarc.example.org"),
        ("sel1._domainkey.Example.net", "sel1._domainkey.example.net"),
        ("xn--bcher-kva.test", "xn--bcher-kva.test"),
        ("localhost", "localhost"),
        ("1.2.0.192.in-addr.arpa", "1.2.0.192.in-addr.arpa"),
        (String(repeating: "a", count: 63) + ".test", String(repeating: "a", count: 63) + ".test"),
    ])
    func acceptsNames(input: String, expected: String) throws {
        #expect(try DNSName.validated(input).description == expected)
    }

    @Test(arguments: [
        "", ".", "..", "a..b", ".example.com", "example.com..", "exa mple.com", "bücher.test", "a/b.test",
        "a\\.b.test", "a\u{0}b.test", "*.example.com", "example.com\n",
        String(repeating: "a", count: 64) + ".test",
        Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: "."),
        String(repeating: "a.", count: 200),
    ])
    func refusesNames(input: String) {
        #expect(throws: DNSLookupError.self) { try DNSName.validated(input) }
    }

    @Test func refusalCarriesTheInputShortened() {
        let long = String(repeating: "x", count: 5_000)
        #expect(throws: DNSLookupError.invalidName(String(repeating: "x", count: 300) + "...")) {
            try DNSName.validated(long)
        }
        #expect(throws: DNSLookupError.invalidName("a b")) { try DNSName.validated("a b") }
    }

    @Test func longestValidName() throws {
        let label63 = String(repeating: "a", count: 63)
        let name = [label63, label63, label63, String(repeating: "b", count: 61)].joined(separator: ".")
        #expect(try DNSName.validated(name).wireLength == 255)
        #expect(throws: DNSLookupError.self) { try DNSName.validated(name + "b") }
    }

    @Test(arguments: [
        ("192.0.2.1", "1.2.0.192.in-addr.arpa"),
        ("10.0.0.255", "255.0.0.10.in-addr.arpa"),
        (
            "2001:db8::567:89ab",
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        ),
        ("::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"),
    ])
    func reverseNames(address: String, expected: String) throws {
        #expect(try DNSName.reverse(ipAddress: address).description == expected)
    }

    @Test(arguments: ["", "example.com", "192.0.2", "192.0.2.256", "1.2.3.4.5", "::g", "fe80::1%eth0"])
    func refusesReverseOfNonAddresses(input: String) {
        #expect(throws: DNSLookupError.invalidName(input)) { try DNSName.reverse(ipAddress: input) }
    }

    @Test func presentationEscapesOddOctets() {
        let name = DNSName(labels: [[0x61, 0x2E, 0x5C, 0x20, 0x00, 0xFF], Array("Test".utf8)])
        #expect(name.description == "a\\.\\\\\\032\\000\\255.test")
        #expect(DNSName.root.description == ".")
    }

    @Test func comparesCaseInsensitively() throws {
        #expect(
            try DNSName.validated("MAIL.Example.org")
                == DNSName(labels: [Array("mail".utf8), Array("EXAMPLE".utf8), Array("org".utf8)]))
    }
}

@Suite struct IPAddressTextTests {
    @Test(
        arguments: [
            ("0.0.0.0", [0, 0, 0, 0]), ("192.0.2.1", [192, 0, 2, 1]), ("255.255.255.255", [255, 255, 255, 255]),
        ] as [(String, [UInt8])])
    func parsesIPv4(text: String, expected: [UInt8]) {
        #expect(IPAddressText.parseIPv4(text) == expected)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.", ".1.2.3", "1..2.3", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "a.b.c.d", "1.2.3.1000",
    ])
    func refusesIPv4(text: String) {
        #expect(IPAddressText.parseIPv4(text) == nil)
    }

    @Test(arguments: [
        ("::", "::"),
        ("::1", "::1"),
        ("2001:DB8:0:0:0:0:2:1", "2001:db8::2:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // RFC 5952 §4.2.2: one zero group is not compressed
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  // §4.2.3: the longest run
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // §4.2.3: the first of equal runs
        ("fe80::", "fe80::"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
    ])
    func parsesAndFormatsIPv6(text: String, canonical: String) throws {
        let bytes = try #require(IPAddressText.parseIPv6(text))
        #expect(IPAddressText.formatIPv6(bytes) == canonical)
    }

    @Test(arguments: [
        "", ":", ":::", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", "12345::", "g::",
        ":1::", "1::2:", "::1.2.3", "1.2.3.4::", "::ffff:1.2.3.4:5", "fe80::1%eth0",
    ])
    func refusesIPv6(text: String) {
        #expect(IPAddressText.parseIPv6(text) == nil)
    }
}
