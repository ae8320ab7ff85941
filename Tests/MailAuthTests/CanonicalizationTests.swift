import Testing

@testable import MailAuth

@Suite("RFC 6376 §3.4 canonicalization")
struct CanonicalizationTests {
    /// The example of RFC 6376 §3.4.5.
    static let example = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n".bytes

    @Test func rfcExampleRelaxed() {
        let message = RawMessage(Self.example)
        #expect(message.fields.count == 2)
        let headers = message.fields.flatMap { Canonicalizer.header($0, .relaxed) }
        #expect(String(decoding: headers, as: UTF8.self) == "a:X\r\nb:Y Z\r\n")
        #expect(String(decoding: Canonicalizer.body(message.body, .relaxed), as: UTF8.self) == " C\r\nD E\r\n")
    }

    @Test func rfcExampleSimple() {
        let message = RawMessage(Self.example)
        let headers = message.fields.flatMap { Canonicalizer.header($0, .simple) }
        #expect(String(decoding: headers, as: UTF8.self) == "A: X\r\nB : Y\t\r\n\tZ  \r\n")
        #expect(String(decoding: Canonicalizer.body(message.body, .simple), as: UTF8.self) == " C \r\nD \t E\r\n")
    }

    @Test(arguments: [
        // (body, simple, relaxed)
        ("", "\r\n", ""),
        ("\r\n", "\r\n", ""),
        ("\r\n\r\n\r\n", "\r\n", ""),
        ("abc", "abc\r\n", "abc\r\n"),
        ("abc\r\n\r\n", "abc\r\n", "abc\r\n"),
        ("  \r\n", "  \r\n", ""),
        ("a  b\t\tc \r\n \r\nd", "a  b\t\tc \r\n \r\nd\r\n", "a b c\r\n\r\nd\r\n"),
        ("x\r\n\t\r\n", "x\r\n\t\r\n", "x\r\n"),
        ("line\rwith CR\r\n", "line\rwith CR\r\n", "line\rwith CR\r\n"),
    ])
    func bodies(_ input: String, _ simple: String, _ relaxed: String) {
        #expect(String(decoding: Canonicalizer.body(input.bytes[...], .simple), as: UTF8.self) == simple)
        #expect(String(decoding: Canonicalizer.body(input.bytes[...], .relaxed), as: UTF8.self) == relaxed)
    }

    @Test(arguments: [
        ("Subject: Hello\r\n", "subject:Hello\r\n"),
        ("SUBJECT :   spaced   out   \r\n", "subject:spaced out\r\n"),
        ("X-Fold: a\r\n  b\r\n\tc\r\n", "x-fold:a b c\r\n"),
        ("Empty:\r\n", "empty:\r\n"),
        ("Empty-Spaces:   \r\n", "empty-spaces:\r\n"),
    ])
    func relaxedHeaders(_ input: String, _ expected: String) throws {
        let message = RawMessage((input + "\r\n").bytes)
        let field = try #require(message.fields.first)
        #expect(String(decoding: Canonicalizer.header(field, .relaxed), as: UTF8.self) == expected)
        // Simple keeps the field byte for byte.
        #expect(String(decoding: Canonicalizer.header(field, .simple), as: UTF8.self) == input)
    }

    @Test func bareLineFeedsBecomeCRLF() {
        let message = RawMessage("From: a@b.example\nSubject: x\n\nbody\n".bytes)
        #expect(message.fields.map(\.name) == ["From", "Subject"])
        #expect(Array(message.body) == "body\r\n".bytes)
    }

    @Test func headerWithoutBody() {
        let message = RawMessage("From: a@b.example\r\nSubject: x".bytes)
        #expect(message.fields.count == 2)
        #expect(message.body.isEmpty)
    }

    @Test func headerFieldLimit() {
        var text = ""
        for index in 0..<50 { text += "X-\(index): v\r\n" }
        let message = RawMessage((text + "\r\nbody").bytes, maxFields: 10)
        #expect(message.fields.count == 10)
        #expect(message.truncated)
    }

    @Test func bodyLongerThanBuffer() {
        // Crosses BodyCanonicalizer's 64 KiB flush boundary.
        let line = String(repeating: "x", count: 999) + "  \r\n"
        let body = String(repeating: line, count: 200)
        let relaxed = Canonicalizer.body(body.bytes[...], .relaxed)
        #expect(relaxed.count == 200 * 1001)
    }
}

@Suite("RFC 6376 §3.2 tag-lists")
struct TagListTests {
    @Test func parsesSignature() throws {
        let tags = try TagList(parsing: " v=1; a=rsa-sha256;\r\n\td=example.com ; s = sel;h=From : To;bh=ab\r\n cd=; b=")
        #expect(tags.names == ["v", "a", "d", "s", "h", "bh", "b"])
        #expect(tags["d"] == "example.com")
        #expect(tags["s"] == "sel")
        #expect(tags["h"] == "From : To")
        #expect(tags["bh"] == "ab\r\n cd=")
        #expect(tags["b"] == "")
        #expect(tags["x"] == nil)
    }

    @Test(arguments: [
        ("a=1;", ["a"]),
        ("a=1;;b=2", ["a", "b"]),
        ("", []),
        ("  ;  ", []),
        ("k_1=v", ["k_1"]),
        ("p=", ["p"]),
    ])
    func accepted(_ text: String, _ names: [String]) throws {
        #expect(try TagList(parsing: text).names == names)
    }

    @Test(arguments: [
        ("a=1; a=2", TagListError.duplicateTag("a")),
        ("novalue", TagListError.malformedTag("novalue")),
        ("1a=x", TagListError.malformedTag("1a=x")),
        ("a b=c", TagListError.malformedTag("a b=c")),
        ("=x", TagListError.malformedTag("=x")),
        ("a=x\u{01}y", TagListError.invalidValue(tag: "a")),
    ])
    func refused(_ text: String, _ error: TagListError) {
        #expect(throws: error) { try TagList(parsing: text) }
    }

    @Test func tagNamesAreCaseSensitive() throws {
        let tags = try TagList(parsing: "V=1; v=2")
        #expect(tags["v"] == "2")
        #expect(tags["V"] == "1")
    }

    @Test func tooManyTags() {
        let text = (0..<100).map { "t\($0)=x" }.joined(separator: ";")
        #expect(throws: TagListError.tooManyTags) { try TagList(parsing: text) }
    }
}

@Suite("IP addresses")
struct IPAddressTests {
    static let zeros: [UInt8] = Array(repeating: 0, count: 16)
    static let valid: [(String, [UInt8])] = [
        ("192.0.2.1", [192, 0, 2, 1]),
        ("0.0.0.0", [0, 0, 0, 0]),
        ("::ffff:192.0.2.1", [192, 0, 2, 1]),
        ("[192.0.2.9]", [192, 0, 2, 9]),
        ("::1", Array(zeros.prefix(15)) + [1]),
        ("2001:db8::cb01", [0x20, 0x01, 0x0d, 0xb8] + Array(zeros.prefix(10)) + [0xcb, 0x01]),
        ("2001:DB8:0:0:0:0:0:1", [0x20, 0x01, 0x0d, 0xb8] + Array(zeros.prefix(11)) + [1]),
        ("::", zeros),
        ("64:ff9b::192.0.2.33", [0, 0x64, 0xff, 0x9b] + Array(zeros.prefix(8)) + [192, 0, 2, 33]),
    ]

    @Test(arguments: valid)
    func parses(_ text: String, _ bytes: [UInt8]) throws {
        #expect(try #require(IPAddress(text)).bytes == bytes)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1",
        ":::", "1:2:3:4:5:6:7", "+1::", "::1.2.3", "example.com",
    ])
    func refuses(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("::1", "::1"),
    ])
    func prints(_ text: String, _ expected: String) throws {
        #expect(try #require(IPAddress(text)).description == expected)
    }

    @Test func prefixMatching() throws {
        let address = try #require(IPAddress("2001:db8:abcd:12::5"))
        #expect(address.matches(try #require(IPAddress("2001:db8:abcd::")), prefixLength: 48))
        #expect(address.matches(try #require(IPAddress("2001:db8:abcd:10::")), prefixLength: 60))
        #expect(!address.matches(try #require(IPAddress("2001:db8:abcd:20::")), prefixLength: 60))
        #expect(address.matches(try #require(IPAddress("::")), prefixLength: 0))
        #expect(!address.matches(try #require(IPAddress("192.0.2.0")), prefixLength: 0))
        let v4 = try #require(IPAddress("192.0.2.130"))
        #expect(v4.matches(try #require(IPAddress("192.0.2.128")), prefixLength: 25))
        #expect(!v4.matches(try #require(IPAddress("192.0.2.0")), prefixLength: 25))
        #expect(v4.matches(try #require(IPAddress("192.0.2.131")), prefixLength: 30))
    }
}
