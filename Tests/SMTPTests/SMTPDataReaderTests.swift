import Testing
@testable import SMTP

@Suite struct SMTPDataReaderTests {
    func read(_ text: String, max: Int = 1 << 20, lineLimit: Int = 1000, chunk: Int = 7) -> (SMTPDataReader.Outcome, Int) {
        var reader = SMTPDataReader(maxMessageSize: max, maxLineLength: lineLimit)
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            let (outcome, used) = reader.feed(Array(bytes[offset..<end]))
            offset += used
            if outcome != .needMoreData { return (outcome, offset) }
            if used == 0 { break }
        }
        return (.needMoreData, offset)
    }

    @Test func readsAndUnstuffs() {
        let (outcome, used) = read("Subject: x\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n")
        #expect(outcome == .complete(Array("Subject: x\r\n\r\n.leading dot\r\nbody\r\n".utf8)))
        #expect(used == "Subject: x\r\n\r\n..leading dot\r\nbody\r\n.\r\n".utf8.count, "pipelined QUIT is left alone")
    }

    @Test func emptyMessage() {
        #expect(read(".\r\n").0 == .complete([]))
    }

    @Test(arguments: [
        // Classic smuggling payloads: an end marker with bare LF hides a second message.
        "Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@x.test>\r\n.\r\n",
        "Subject: x\r\n\r\nhello\r\n.\nMAIL FROM:<evil@x.test>\r\n.\r\n",
        "Subject: x\r\n\r\nhello\n.\r\nMAIL FROM:<evil@x.test>\r\n.\r\n",
        "Subject: x\r\n\r\nhello\r.\rMAIL FROM:<evil@x.test>\r\n.\r\n",
        "Subject: x\r\n\r\nhello\r\n.\r.\r\n.\r\n",
    ])
    func refusesBareLFAndCR(payload: String) {
        let (outcome, used) = read(payload)
        guard case .rejected(let reply) = outcome else {
            Issue.record("accepted a smuggling payload: \(outcome)")
            return
        }
        #expect(reply.code == 554 && reply.enhanced == "5.6.0")
        #expect(used == payload.utf8.count, "reads up to the real CRLF.CRLF and no further")
    }

    @Test func refusesOversizeButStaysInSync() {
        let body = String(repeating: "0123456789\r\n", count: 200)
        let (outcome, used) = read(body + ".\r\nNOOP\r\n", max: 1000)
        #expect(outcome == .rejected(SMTPReply(552, "5.3.4", "Message exceeds the maximum size of 1000 bytes")))
        #expect(used == (body + ".\r\n").utf8.count)
    }

    @Test func refusesHugeLineWithoutBufferingIt() {
        var reader = SMTPDataReader(maxMessageSize: 50 << 20, maxLineLength: 1000)
        let megabyte = [UInt8](repeating: 0x61, count: 1 << 20)
        for _ in 0..<10 { #expect(reader.feed(megabyte).outcome == .needMoreData) }
        #expect(reader.violation == .lineTooLong)
        let (outcome, _) = reader.feed(Array("\r\n.\r\n".utf8))
        guard case .rejected(let reply) = outcome else {
            Issue.record("accepted a 10 MB line")
            return
        }
        #expect(reply.code == 554)
    }
}
