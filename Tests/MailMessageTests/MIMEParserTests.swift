import Testing

@testable import MailMessage

/// RFC 2045/2046 structure rules, one table per rule.
@Suite struct MIMEParserTests {
    static func parse(_ text: String, limits: MIMELimits = MIMELimits()) -> (MessageStructure, [UInt8]) {
        let bytes = Array(text.utf8)
        return (MessageStructure.parse(bytes, limits: limits), bytes)
    }

    static func body(_ part: MessagePart, _ bytes: [UInt8]) -> String {
        String(decoding: bytes[part.bodyRange], as: UTF8.self)
    }

    /// The media types of the tree, depth first: "multipart/mixed(text/plain,text/html)".
    static func shape(_ part: MessagePart) -> String {
        let children = part.children
        return part.contentType.mediaType + (children.isEmpty && !part.contentType.isMultipart ? "" : "(" + children.map(shape).joined(separator: ",") + ")")
    }

    // RFC 2046 §5.1.1: delimiter lines, transport padding, the CRLF before a delimiter belonging to it.
    @Test(arguments: [
        ("--b\r\n\r\none\r\n--b--\r\n", ["one"]),
        ("--b   \r\n\r\npadded\r\n--b--\t \r\n", ["padded"]),
        ("--b\r\n\r\none\r\n\r\n--b--", ["one\r\n"]),
        ("--b\r\n\r\n--b\r\n\r\nx\r\n--b--", ["", "x"]),
        ("--b\n\nlf\n--b--\n", ["lf"]),
        ("preamble\r\n--b\r\n\r\nbody\r\n--b--\r\nepilogue\r\n--b\r\n\r\nnot a part\r\n", ["body"]),
        ("--b\r\n\r\nno close\r\n", ["no close\r\n"]),
        ("--b\r\n\r\n --b is not a delimiter\r\n-b\r\n--b--", [" --b is not a delimiter\r\n-b"]),
        ("--bextra\r\n\r\nprefix match\r\n--b--", ["prefix match"]),
    ])
    func delimiters(_ body: String, _ expected: [String]) {
        let (structure, bytes) = Self.parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body)
        #expect(structure.root.children.map { Self.body($0, bytes) } == expected)
    }

    @Test func preambleAndEpilogueStayInTheMultipartBody() {
        let head = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        let body = "preamble\r\n--b\r\n\r\nx\r\n--b--\r\nepilogue\r\n"
        let (structure, bytes) = Self.parse(head + body)
        #expect(structure.root.headerRange == 0..<head.utf8.count)
        #expect(Self.body(structure.root, bytes) == body)
        let child = structure.root.children[0]
        #expect(child.headerRange == (head + "preamble\r\n--b\r\n").utf8.count..<(head + "preamble\r\n--b\r\n\r\n").utf8.count)
        #expect(!structure.root.defects.contains(.missingCloseDelimiter))
    }

    // RFC 2046 §5.1.2: an outer boundary ends the inner multipart too.
    @Test func outerBoundaryEndsInnerMultipart() {
        let text = """
            Content-Type: multipart/mixed; boundary=outer\r
            \r
            --outer\r
            Content-Type: multipart/alternative; boundary=inner\r
            \r
            --inner\r
            \r
            a\r
            --outer\r
            \r
            b\r
            --outer--\r

            """
        let (structure, bytes) = Self.parse(text)
        #expect(Self.shape(structure.root) == "multipart/mixed(multipart/alternative(text/plain),text/plain)")
        let inner = structure.root.children[0]
        #expect(inner.defects.contains(.missingCloseDelimiter))
        #expect(Self.body(inner.children[0], bytes) == "a")
        #expect(Self.body(structure.root.children[1], bytes) == "b")
    }

    /// Innermost boundary first: "--ab" is the inner delimiter even though "--a" is its prefix.
    @Test func innermostBoundaryWins() {
        let text = "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\nx\r\n--ab\r\n\r\ny\r\n--ab--\r\n--a--\r\n"
        let (structure, _) = Self.parse(text)
        #expect(Self.shape(structure.root) == "multipart/mixed(multipart/mixed(text/plain,text/plain))")
    }

    @Test(arguments: [
        ("Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", MIMEDefects.missingBoundary),
        ("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\nx\r\n", .missingBoundary),
        ("Content-Type: multipart/mixed; boundary=zz\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", .noParts),
        ("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n", .noParts),
    ])
    func multipartWithoutParts(_ text: String, _ defect: MIMEDefects) {
        let (structure, _) = Self.parse(text)
        #expect(structure.root.content == .multipart([]))
        #expect(structure.root.defects.contains(defect))
        // IMAP needs one part: an empty text/plain, as Dovecot sends.
        guard case .multipart(let body) = structure.bodyStructure else {
            Issue.record("not a multipart")
            return
        }
        #expect(body.parts == [.emptyTextPlain])
    }

    // RFC 2045 §5.2 defaults, RFC 2046 §5.1.5 digest default.
    @Test(arguments: [
        ("Subject: x\r\n\r\nbody", "text/plain"),
        ("Content-Type: text\r\n\r\nbody", "text/plain"),
        ("Content-Type: /plain\r\n\r\nbody", "text/plain"),
        ("Content-Type: image/png; name=x.png\r\n\r\nbody", "image/png"),
        ("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: m\r\n\r\nx\r\n--d--", "multipart/digest(message/rfc822(text/plain))"),
        ("Content-Type: message/rfc822\r\n\r\nContent-Type: text/html\r\n\r\n<p>", "message/rfc822(text/html)"),
        ("Content-Type: message/global\r\n\r\nSubject: s\r\n\r\nx", "message/global(text/plain)"),
        ("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA==", "message/rfc822"),
    ])
    func contentTypeDefaults(_ text: String, _ shape: String) {
        #expect(Self.shape(Self.parse(text).0.root) == shape)
    }

    @Test func headerWithoutBlankLineHasNoBody() {
        let (structure, bytes) = Self.parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nhello no header\r\n--b--\r\n")
        let child = structure.root.children[0]
        #expect(child.defects.contains(.unterminatedHeader))
        #expect(child.bodyRange.isEmpty)
        #expect(String(decoding: bytes[child.headerRange], as: UTF8.self) == "hello no header")
        let (alone, _) = Self.parse("Subject: only a header")
        #expect(alone.root.bodyRange == 22..<22 && alone.root.headerRange == 0..<22)
        let (empty, _) = Self.parse("")
        #expect(empty.root.headerRange == 0..<0 && empty.root.bodyRange == 0..<0)
    }

    // IMAP body-fld-lines and body-fld-octets: line feeds counted, bare LF counted as CRLF.
    @Test(arguments: [
        ("Subject: x\r\n\r\nhello\r\nworld", 12, 1),
        ("Subject: x\n\nhello\nworld\n", 14, 2),
        ("Subject: x\n\nmixed\r\nends\n", 13, 2),
        ("Subject: x\r\n\r\n", 0, 0),
    ])
    func sizesAndLines(_ text: String, _ octets: Int, _ lines: Int) {
        let root = Self.parse(text).0.root
        #expect(root.bodyOctets == octets)
        #expect(root.bodyLines == lines)
    }

    @Test func depthIsBounded() {
        var text = ""
        for level in 0..<50 { text += "Content-Type: multipart/mixed; boundary=l\(level)\r\n\r\n--l\(level)\r\n" }
        text += "\r\ninnermost\r\n"
        let (structure, _) = Self.parse(text, limits: MIMELimits(maxDepth: 8))
        #expect(structure.truncated)
        var part = structure.root
        var depth = 0
        while let child = part.children.first {
            part = child
            depth += 1
        }
        #expect(depth == 8)
        #expect(part.defects.contains(.depthLimit))
        let messages = String(repeating: "Content-Type: message/rfc822\r\n\r\n", count: 100) + "body"
        #expect(Self.parse(messages, limits: MIMELimits(maxDepth: 5)).0.truncated)
    }

    @Test func partCountIsBounded() {
        let text = "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + String(repeating: "--b\r\n\r\nx\r\n", count: 500) + "--b--\r\n"
        let (structure, _) = Self.parse(text, limits: MIMELimits(maxParts: 100))
        #expect(structure.truncated && structure.partCount == 100)
        #expect(structure.root.children.count == 99)
        #expect(structure.root.defects.contains(.partLimit))
    }

    @Test func headerBytesAreBounded() {
        let text = "Content-Type: text/html\r\n" + String(repeating: "X-Junk: aaaaaaaaaa\r\n", count: 1000) + "\r\nbody"
        let (structure, bytes) = Self.parse(text, limits: MIMELimits(maxHeaderBytes: 1000))
        #expect(structure.root.defects.contains(.headerTruncated))
        #expect(structure.root.contentType.mediaType == "text/html")
        #expect(Self.body(structure.root, bytes) == "body")
    }

    @Test func hostileBytesDoNotCrash() {
        let inputs: [[UInt8]] = [
            [0x0a], [0x0d], [0x0d, 0x0a, 0x0d, 0x0a], [0x2d, 0x2d, 0x0a], Array("Content-Type: multipart/mixed; boundary=-\n\n---\n--\n---\n".utf8),
            Array("Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=x\n\n--x\n".utf8),
            [0xff, 0x3a, 0x0a, 0x0a, 0x00], Array("A: b\r\n\tc\r\n \r\n\r\n".utf8),
        ]
        for input in inputs {
            let structure = MessageStructure.parse(input)
            _ = structure.bodyStructure
            _ = structure.envelope.decoded
            #expect(structure.root.bodyRange.upperBound <= input.count)
        }
    }

    /// Inputs built to make a quadratic rule slow: they must finish in a blink.
    @Test func hostileInputsStayLinear() {
        let clock = ContinuousClock()
        let started = clock.now
        let words = Array(String(repeating: "=?utf-8?q?", count: 20_000).utf8)
        _ = EncodedWords.decode(words)
        let adjacent = Array(String(repeating: "=?utf-8?q?a?= ", count: 20_000).utf8)
        #expect(EncodedWords.decode(adjacent) == String(repeating: "a", count: 20_000) + " ")
        _ = AddressParser.parse(Array(String(repeating: "a@b (c), ", count: 20_000).utf8))
        _ = AddressParser.parse(Array(("@" + String(repeating: ":", count: 50_000)).utf8))
        let boundaries = "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + String(repeating: "--b\r\n\r\n", count: 20_000)
        _ = MIMEParser.parse(Array(boundaries.utf8), limits: MIMELimits(maxParts: 1000))
        #expect(clock.now - started < .seconds(20))
    }

    @Test func messageHeaderAPIIsUnchanged() {
        // MessageCache and `svcpkg queue show` use MessageHeader; the MIME parser sees the same fields.
        let text = "From: a@b\r\nSubject: s\r\n t\r\n\r\nbody"
        let header = MessageHeader.parse(Array(text.utf8))
        let root = Self.parse(text).0.root
        #expect(header.bodyOffset == root.bodyRange.lowerBound)
        #expect(header.fields.map(\.name) == root.fields.map(\.name))
        #expect(root.fields.first("subject") == Array("s t".utf8))
    }
}

/// Inputs the fuzzer (fuzz/MIMEParser) found, kept so they stay fixed.
@Suite struct FuzzRegressionTests {
    /// A child whose header's blank line is also the line break before an outer delimiter:
    /// the parent's body must still contain the child.
    @Test func childHeaderBlankLineBeforeOuterDelimiter() {
        let text = "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n--a--\r\n"
        let structure = MessageStructure.parse(Array(text.utf8))
        let inner = structure.root.children[0]
        let leaf = inner.children[0]
        #expect(leaf.bodyRange.upperBound <= inner.bodyRange.upperBound)
        #expect(inner.bodyRange.upperBound <= structure.root.bodyRange.upperBound)
    }
}
