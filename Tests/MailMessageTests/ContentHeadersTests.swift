import Testing

@testable import MailMessage

/// RFC 2045 §5 Content-Type, RFC 2183 Content-Disposition, RFC 2231 parameters, RFC 3282.
@Suite struct ContentHeadersTests {
    static func contentType(_ value: String) -> String {
        let type = ContentType.parse(Array(value.utf8))
        return "\(type.type)/\(type.subtype) " + IMAPRendering.parameters(type.parameters)
    }

    @Test(arguments: [
        ("text/plain", "text/plain NIL"),
        ("TEXT/Plain; CharSet=\"UTF-8\"; Format=Flowed", #"TEXT/Plain ("CharSet" "UTF-8" "Format" "Flowed")"#),
        ("text/plain ; charset = utf-8 (comment) ; x=\"a\\\"b\"", #"text/plain ("charset" "utf-8" "x" "a\"b")"#),
        ("multipart/mixed; boundary=----=_Part_1", #"multipart/mixed ("boundary" "----=_Part_1")"#),
        ("multipart/mixed;\tboundary=\"a b\";", #"multipart/mixed ("boundary" "a b")"#),
        ("text/plain; charset=", #"text/plain ("charset" "")"#),
        ("text/plain; charset", "text/plain NIL"),
        ("text/plain; junk here; name=x", #"text/plain ("name" "x")"#),
        ("text/html; charset=utf-8; charset=latin1", #"text/html ("charset" "utf-8" "charset" "latin1")"#),
        ("application/x; name*0*=utf-8''a%20; name*1=b", #"application/x ("name*0*" "utf-8''a%20" "name*1" "b")"#),
        ("(comment) text / html", "text/html NIL"),
        // RFC 2045 §5.2: invalid means text/plain; charset=us-ascii
        ("text", #"text/plain ("charset" "us-ascii")"#),
        ("", #"text/plain ("charset" "us-ascii")"#),
        ("/plain", #"text/plain ("charset" "us-ascii")"#),
        (";charset=x", #"text/plain ("charset" "us-ascii")"#),
    ])
    func contentTypes(_ value: String, _ expected: String) {
        #expect(Self.contentType(value) == expected)
    }

    @Test func absentContentTypeUsesTheDefault() {
        #expect(ContentType.parse(nil) == .textPlain)
        #expect(ContentType.parse(nil, default: .messageRFC822) == .messageRFC822)
        #expect(ContentType.parse(Array("text".utf8), default: .messageRFC822) == .textPlain)
    }

    // RFC 2231 §3, §4 and encoded words in quoted values.
    @Test(arguments: [
        ("a/b; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A", "title", "This is ***fun***", "en-us"),
        ("a/b; url*0=\"ftp://\"; url*1=\"cs.utk.edu/pub\"", "url", "ftp://cs.utk.edu/pub", nil),
        ("a/b; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"", "title", "This is even more ***fun*** isn't it!", "en"),
        ("a/b; name*1*=%E2%82%AC.txt; name*0*=utf-8'de'Pr%C3%BCfbericht%20", "name", "Prüfbericht €.txt", "de"),
        ("a/b; name=\"old.txt\"; name*=utf-8''new.txt", "name", "new.txt", nil),
        ("a/b; name*=iso-8859-1''caf%E9", "name", "café", nil),
        ("a/b; name*=x-unknown''caf%C3%A9", "name", "café", nil),
        ("a/b; name*=noquotes%20here", "name", "noquotes here", nil),
        ("a/b; name*0=a; name*2=c", "name", "a", nil),
        ("a/b; name=\"=?UTF-8?B?w6TDtsO8LnBuZw==?=\"", "name", "äöü.png", nil),
        ("a/b; NAME=plain", "name", "plain", nil),
    ])
    func rfc2231(_ value: String, _ name: String, _ expected: String, _ language: String?) {
        let decoded = ContentType.parse(Array(value.utf8)).decodedParameters.first { $0.name == name }
        #expect(decoded?.value == expected)
        #expect(decoded?.language == language)
    }

    @Test(arguments: [
        ("attachment; filename=\"a \\\"q\\\".txt\"; size=3", #"attachment ("filename" "a \"q\".txt" "size" "3")"#),
        ("INLINE", "INLINE NIL"),
        ("inline (comment)", "inline NIL"),
        ("; filename=x", "none"),
        ("", "none"),
    ])
    func dispositions(_ value: String, _ expected: String) {
        let disposition = ContentDisposition.parse(Array(value.utf8))
        #expect(disposition.map { "\($0.kind) " + IMAPRendering.parameters($0.parameters) } ?? "none" == expected)
    }

    @Test(arguments: [
        ("en", ["en"]), ("en, de (german)", ["en", "de"]), ("en-US,fr-CA", ["en-US", "fr-CA"]), ("", []), (" , ,", []),
        ("(only comment)", []),
    ])
    func languages(_ value: String, _ expected: [String]) {
        #expect(ContentLanguage.parse(Array(value.utf8)) == expected)
    }

    // RFC 2045 §6.1 mechanisms, case-insensitive.
    @Test(arguments: [
        ("7bit", TransferEncoding.sevenBit), ("8BIT", .eightBit), ("Binary", .binary), ("BASE64", .base64),
        ("Quoted-Printable", .quotedPrintable), (" base64 (comment)", .base64), ("x-uuencode", .other("x-uuencode")), ("", .sevenBit),
    ])
    func transferEncodings(_ value: String, _ expected: TransferEncoding) {
        #expect(TransferEncoding(Array(value.utf8)) == expected)
    }
}
