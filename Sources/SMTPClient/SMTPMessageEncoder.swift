import NIOCore

/// Turns the message into DATA content in chunks (RFC 5321 §4.5.2): a line starting with
/// `.` gets another `.`, the content ends with CRLF, then `.CRLF`. The message is expected
/// CRLF-normalised already; each byte is copied once, into the chunk that carries it.
public struct SMTPMessageEncoder: Sendable {
    private let message: [UInt8]
    private var position = 0
    private var atLineStart = true
    public private(set) var isFinished = false

    public init(message: [UInt8]) {
        self.message = message
    }

    /// Appends up to `maxBytes` bytes of the message (plus stuffing) to `buffer`; with the
    /// last of them, the final CRLF if missing and the terminating `.CRLF`.
    public mutating func encodeNext(into buffer: inout ByteBuffer, maxBytes: Int) {
        guard !isFinished else { return }
        let end = min(message.count, position + max(1, maxBytes))
        var index = position
        while index < end {
            if atLineStart, message[index] == UInt8(ascii: ".") { buffer.writeInteger(UInt8(ascii: ".")) }
            if let newline = message[index..<end].firstIndex(of: 0x0a) {
                buffer.writeBytes(message[index...newline])
                index = newline + 1
                atLineStart = true
            } else {
                buffer.writeBytes(message[index..<end])
                index = end
                atLineStart = false
            }
        }
        position = end
        guard position == message.count else { return }
        if let last = message.last, last != 0x0a {
            if last != 0x0d { buffer.writeInteger(UInt8(0x0d)) }
            buffer.writeInteger(UInt8(0x0a))
        }
        buffer.writeBytes([UInt8(ascii: "."), 0x0d, 0x0a])
        isFinished = true
    }
}
