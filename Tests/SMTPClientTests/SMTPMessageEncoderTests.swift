import NIOCore
import Testing
@testable import SMTPClient

@Suite struct SMTPMessageEncoderTests {
    static func encode(_ message: String, chunk: Int) -> String {
        var encoder = SMTPMessageEncoder(message: Array(message.utf8))
        var buffer = ByteBuffer()
        var rounds = 0
        while !encoder.isFinished, rounds < 10_000 {
            encoder.encodeNext(into: &buffer, maxBytes: chunk)
            rounds += 1
        }
        return String(buffer: buffer)
    }

    @Test(arguments: [
        ("", ".\r\n"),
        ("a\r\n", "a\r\n.\r\n"),
        ("a", "a\r\n.\r\n"),
        ("a\r", "a\r\n.\r\n"),
        (".", "..\r\n.\r\n"),
        (".\r\n", "..\r\n.\r\n"),
        ("Subject: x\r\n\r\n.hidden\r\n..two\r\nmid.dle\r\n.\r\nend.\r\n",
         "Subject: x\r\n\r\n..hidden\r\n...two\r\nmid.dle\r\n..\r\nend.\r\n.\r\n"),
        ("x\r\n.", "x\r\n..\r\n.\r\n"),
        ("\r\n.\r\n", "\r\n..\r\n.\r\n"),
    ])
    func dotStuffsWhateverTheChunkSize(message: String, expected: String) {
        for chunk in [1, 2, 3, 5, 64 * 1024] {
            #expect(Self.encode(message, chunk: chunk) == expected, "chunk \(chunk)")
        }
    }

    @Test func chunksAreBounded() {
        let message = Array(String(repeating: "line of text\r\n.dot\r\n", count: 10_000).utf8)
        var encoder = SMTPMessageEncoder(message: message)
        var total = 0
        var chunks = 0
        while !encoder.isFinished {
            var buffer = ByteBuffer()
            encoder.encodeNext(into: &buffer, maxBytes: 4096)
            // At most one stuffing dot per line, plus the terminator.
            #expect(buffer.readableBytes <= 4096 + 4096 / 5 + 5)
            total += buffer.readableBytes
            chunks += 1
        }
        #expect(total == message.count + 10_000 + 3)
        #expect(chunks == (message.count + 4095) / 4096)
    }
}
