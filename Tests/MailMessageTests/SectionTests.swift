import Testing

@testable import MailMessage

/// RFC 9051 §6.4.5 BODY[section]<partial> and RFC 3516 BINARY[section].
@Suite struct SectionTests {
    static let message = Array(
        """
        From: a@x\r
        Subject: s\r
        Content-Type: multipart/mixed; boundary=b\r
        \r
        --b\r
        Content-Type: text/plain\r
        \r
        part one\r
        --b\r
        Content-Type: message/rfc822\r
        \r
        Subject: inner\r
        From: i@x\r
        Content-Type: multipart/alternative; boundary=c\r
        \r
        --c\r
        Content-Type: text/plain\r
        \r
        inner one\r
        --c\r
        Content-Type: text/html\r
        Content-Transfer-Encoding: base64\r
        \r
        PGI+aGk8L2I+\r
        --c--\r
        --b\r
        Content-Type: message/rfc822\r
        \r
        Subject: single\r
        \r
        single body\r
        --b\r
        Content-Type: application/octet-stream\r
        Content-Transfer-Encoding: quoted-printable\r
        \r
        a=3Db=\r
        c\r
        --b\r
        Content-Type: application/x\r
        Content-Transfer-Encoding: x-uuencode\r
        \r
        begin\r
        --b--\r

        """.utf8)

    static let structure = MessageStructure.parse(message)

    // The line break after a close delimiter stays in that multipart's body when the outer
    // delimiter follows at once (the epilogue is empty); Dovecot counts it the same way.

    static func text(_ path: [Int], _ part: SectionText) -> String {
        do {
            return String(decoding: try structure.section(of: message, path: path, part: part).bytes(of: message), as: UTF8.self)
        } catch {
            return "error: \(error)"
        }
    }

    static let innerMessage = "Subject: inner\r\nFrom: i@x\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: text/plain\r\n\r\ninner one\r\n--c\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\r\n--c--\r\n"

    @Test(arguments: [
        ([], SectionText.header, "From: a@x\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"),
        ([], .headerFields(["subject", "FROM"]), "From: a@x\r\nSubject: s\r\n\r\n"),
        ([], .headerFieldsNot(["content-type"]), "From: a@x\r\nSubject: s\r\n\r\n"),
        ([], .headerFields(["x-none"]), "\r\n"),
        ([], .mime, "error: MIME needs a part number"),
        ([1], .full, "part one"),
        ([1], .mime, "Content-Type: text/plain\r\n\r\n"),
        ([1], .header, "error: part 1 is not a message/rfc822 part"),
        ([1], .text, "error: part 1 is not a message/rfc822 part"),
        ([1, 1], .full, "error: the message has no part 1.1"),
        ([2], .full, innerMessage),
        ([2], .mime, "Content-Type: message/rfc822\r\n\r\n"),
        ([2], .header, "Subject: inner\r\nFrom: i@x\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n"),
        ([2], .headerFields(["From"]), "From: i@x\r\n\r\n"),
        ([2], .text, "--c\r\nContent-Type: text/plain\r\n\r\ninner one\r\n--c\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\r\n--c--\r\n"),
        ([2, 1], .full, "inner one"),
        ([2, 2], .full, "PGI+aGk8L2I+"),
        ([2, 2], .mime, "Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
        ([2, 3], .full, "error: the message has no part 2.3"),
        // Part 3's message is not multipart: 3.1 is its body, 3.1.MIME its header.
        ([3], .full, "Subject: single\r\n\r\nsingle body"),
        ([3], .headerFields(["subject"]), "Subject: single\r\n\r\n"),
        ([3], .text, "single body"),
        ([3, 1], .full, "single body"),
        ([3, 1], .mime, "Subject: single\r\n\r\n"),
        ([3, 2], .full, "error: the message has no part 3.2"),
        ([3, 1, 1], .full, "error: the message has no part 3.1.1"),
        ([0], .full, "error: the message has no part 0"),
        ([9], .full, "error: the message has no part 9"),
    ])
    func sections(_ path: [Int], _ part: SectionText, _ expected: String) {
        #expect(Self.text(path, part) == expected)
    }

    @Test func wholeMessageAndText() throws {
        #expect(try Self.structure.section(of: Self.message, path: [], part: .full) == .range(0..<Self.message.count))
        let text = try Self.structure.section(of: Self.message, path: [], part: .text).bytes(of: Self.message)
        #expect(String(decoding: text, as: UTF8.self).hasPrefix("--b\r\nContent-Type: text/plain"))
    }

    // RFC 9051 §6.4.5: part 1 of a non-multipart message is its body.
    @Test func singlePartMessage() throws {
        let message = Array("Subject: x\r\n\r\nbody\r\n".utf8)
        #expect(try MessageStructure.section(of: message, path: [1], part: .full) == Array("body\r\n".utf8))
        #expect(try MessageStructure.section(of: message, path: [1], part: .mime) == Array("Subject: x\r\n\r\n".utf8))
        #expect(try MessageStructure.section(of: message, path: [], part: .text) == Array("body\r\n".utf8))
        #expect(throws: SectionError.noSuchPart([2])) { try MessageStructure.section(of: message, path: [2], part: .full) }
        // A header-only message has no blank line to add to HEADER.FIELDS.
        let headerOnly = Array("Subject: x\r\nFrom: y".utf8)
        #expect(try MessageStructure.section(of: headerOnly, path: [], part: .headerFields(["from"])) == Array("From: y\r\n".utf8))
        // LF message: the blank line as in the message.
        let lf = Array("A: 1\nB: 2\n\nbody".utf8)
        #expect(try MessageStructure.section(of: lf, path: [], part: .headerFieldsNot(["a"])) == Array("B: 2\n\n".utf8))
    }

    @Test(arguments: [
        (0, 4 as Int?, "part"), (5, nil as Int?, "one"), (5, 100 as Int?, "one"), (8, 1 as Int?, ""), (100, 5 as Int?, ""), (2, 0 as Int?, ""),
    ])
    func partial(_ origin: Int, _ length: Int?, _ expected: String) throws {
        let section = try Self.structure.section(of: Self.message, path: [1], part: .full)
        #expect(String(decoding: section.partial(origin: origin, length: length).bytes(of: Self.message), as: UTF8.self) == expected)
        let built = SectionContent.bytes(section.bytes(of: Self.message))
        #expect(String(decoding: built.partial(origin: origin, length: length).bytes(of: Self.message), as: UTF8.self) == expected)
    }

    @Test func binary() throws {
        #expect(try Self.structure.binary(of: Self.message, path: [2, 2]) == Array("<b>hi</b>".utf8))
        #expect(try Self.structure.binary(of: Self.message, path: [4]) == Array("a=bc".utf8))
        #expect(try Self.structure.binary(of: Self.message, path: [1]) == Array("part one".utf8))
        #expect(try Self.structure.binary(of: Self.message, path: []) == Self.message)
        #expect(throws: SectionError.unknownTransferEncoding(path: [5], encoding: "x-uuencode")) {
            try Self.structure.binary(of: Self.message, path: [5])
        }
        #expect(throws: SectionError.noSuchPart([6])) { try Self.structure.binary(of: Self.message, path: [6]) }
    }

    /// BODYSTRUCTURE sizes count bare LF as CRLF; the section sent must match them.
    @Test func lineFeedOnlyMessageIsSentWithCRLF() throws {
        let message = Array("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nline1\nline2\n--b--\n".utf8)
        let structure = MessageStructure.parse(message)
        let section = try structure.section(of: message, path: [1], part: .full)
        let sent = section.bytesWithCRLF(of: message)
        #expect(sent == Array("line1\r\nline2".utf8))
        guard case .multipart(let body) = structure.bodyStructure, case .singlePart(let part) = body.parts[0] else {
            Issue.record("unexpected structure")
            return
        }
        #expect(part.fields.octets == sent.count)
        #expect(SectionContent.bytes(sent).partial(origin: 5, length: 3).bytes(of: message) == Array("\r\nl".utf8))
    }

    @Test func decodedTextForWebMail() {
        let message = Array("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9\r\n".utf8)
        let structure = MessageStructure.parse(message)
        #expect(structure.decodedText(of: structure.root, in: message) == "Café\r\n")
    }
}

/// RFC 2045 §6.7 quoted-printable and §6.8 base64, decoded tolerantly.
@Suite struct TransferEncodingTests {
    @Test(arguments: [
        ("SGVsbG8=", "Hello"), ("SGVs\r\nbG8=\r\n", "Hello"), ("SGVsbG8", "Hello"), (" S G V s b G 8 = ", "Hello"),
        ("SGVs*bG8!", "Hello"), ("", ""), ("=", ""), ("SGVsbG8=garbage", "Hello"), ("QQ", "A"),
    ])
    func base64(_ input: String, _ expected: String) {
        #expect(TransferEncoding.base64.decode(Array(input.utf8)) == Array(expected.utf8))
    }

    @Test(arguments: [
        ("a=3Db", "a=b"), ("soft=\r\nbreak", "softbreak"), ("soft=  \r\nbreak", "softbreak"), ("lf=\nonly", "lfonly"),
        ("trailing   \r\nspace", "trailing\r\nspace"), ("lower=3d", "lower="), ("bad=ZZ", "bad=ZZ"), ("end=", "end"),
        ("=4", "=4"), ("line\r\n", "line\r\n"), ("caf=C3=A9", "café"), ("tab\t=\r\n", "tab\t"),
    ])
    func quotedPrintable(_ input: String, _ expected: String) {
        #expect(TransferEncoding.quotedPrintable.decode(Array(input.utf8)) == Array(expected.utf8))
    }

    @Test func unknownEncodingIsRefused() {
        #expect(TransferEncoding.other("x-uuencode").decode([0x41]) == nil)
        #expect(TransferEncoding.eightBit.decode([0xff]) == [0xff])
    }
}
