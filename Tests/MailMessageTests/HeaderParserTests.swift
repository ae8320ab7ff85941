import Testing
@testable import MailMessage

@Suite struct HeaderParserTests {
    func parse(_ text: String) -> MessageHeader { MessageHeader.parse(Array(text.utf8)) }

    @Test func parsesAndUnfolds() {
        let head = "From: Alice <a@x.test>\r\nSubject: hello\r\n  world\r\nTo: b@y.test\r\n\r\n"
        let header = parse(head + "body\r\n")
        #expect(header.first("from") == "Alice <a@x.test>")
        #expect(header.first("SUBJECT") == "hello  world")
        #expect(header.fields.count == 3)
        #expect(header.bodyOffset == head.utf8.count)
        #expect(!header.truncated)
    }

    @Test func toleratesBareLFAndJunk() {
        let header = parse("X-A: 1\nthis line has no colon\n\tcontinued\nX-B:2\n\nbody")
        #expect(header.all("x-a") == ["1"])
        #expect(header.first("x-b") == "2")
        #expect(header.bodyOffset == Array("X-A: 1\nthis line has no colon\n\tcontinued\nX-B:2\n\n".utf8).count)
    }

    @Test func headerOnlyMessage() {
        let header = parse("Subject: x")
        #expect(header.first("subject") == "x")
        #expect(header.bodyOffset == 10)
    }

    @Test func boundsFieldCountAndSize() {
        let many = String(repeating: "X: y\r\n", count: 5000) + "\r\nbody"
        let header = MessageHeader.parse(Array(many.utf8), limits: .init(maxFields: 100, maxHeaderBytes: 1 << 20))
        #expect(header.fields.count == 100 && header.truncated)
        let huge = "Subject: " + String(repeating: "a", count: 3000) + "\r\n\r\n"
        let cut = MessageHeader.parse(Array(huge.utf8), limits: .init(maxFields: 10, maxHeaderBytes: 1000))
        #expect(cut.truncated)
    }

    @Test func invalidNamesAndBytesDoNotCrash() {
        let bytes: [UInt8] = [0x00, 0x3a, 0xff, 0x0a, 0x41, 0x3a, 0xfe, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]
        let header = MessageHeader.parse(bytes)
        #expect(header.fields.map(\.name) == ["A"])
        #expect(header.bodyOffset == bytes.count)
    }
}
