/// Turns a stored message, fed in chunks of any size, into the body of a RETR or TOP
/// response (RFC 1939 §3, §7): bare LF becomes CRLF, a line starting with `.` gets a second
/// `.`, and `finish()` ends the last line if needed and adds the terminating `.` line.
///
/// With `bodyLineLimit` (TOP) it passes the header section, the empty line after it and that
/// many body lines, then reports `isComplete` so that reading can stop early. A message
/// without an empty line is all header.
///
/// Chunk boundaries may fall anywhere, also between the CR and LF of a line end: the state
/// carried over is the last byte, the length of the current line and the header/body phase,
/// so memory stays constant whatever the message size. A bare CR is passed through as it is:
/// only LF ends a line (the sizes the maildrop reports count bare LF as CRLF, nothing else).
public struct POP3MessageEncoder: Sendable, Equatable {
    public let bodyLineLimit: Int?
    private var lastByte: UInt8 = 0x0a
    /// Bytes of the current line so far (0 right after a line end).
    private var lineLength = 0
    private var inBody = false
    private var bodyLines = 0
    public private(set) var isComplete = false

    public init(bodyLineLimit: Int? = nil) {
        self.bodyLineLimit = bodyLineLimit
    }

    /// Appends the encoded form of `chunk` to `output`. Bytes after the TOP limit are ignored.
    public mutating func encode(_ chunk: some Collection<UInt8>, into output: inout [UInt8]) {
        guard !isComplete else { return }
        output.reserveCapacity(output.count + chunk.count + chunk.count / 16 + 8)
        for byte in chunk {
            if byte == 0x0a {
                if lastByte != 0x0d { output.append(0x0d) }
                output.append(0x0a)
                endLine()
                lastByte = 0x0a
                if isComplete { return }
                continue
            }
            if lineLength == 0 && byte == 0x2e { output.append(0x2e) }
            output.append(byte)
            lineLength += 1
            lastByte = byte
        }
    }

    /// The bytes that end the response: CRLF if the message did not end with a line end,
    /// then `.` CRLF.
    public mutating func finish() -> [UInt8] {
        var output: [UInt8] = []
        if lineLength > 0 {
            if lastByte != 0x0d { output.append(0x0d) }
            output.append(0x0a)
        }
        output += [0x2e, 0x0d, 0x0a]
        isComplete = true
        lineLength = 0
        lastByte = 0x0a
        return output
    }

    private mutating func endLine() {
        // The line just ended is empty when it held nothing, or only the CR of its CRLF.
        let empty = lineLength == 0 || (lineLength == 1 && lastByte == 0x0d)
        lineLength = 0
        guard let bodyLineLimit else { return }
        if inBody {
            bodyLines += 1
            if bodyLines >= bodyLineLimit { isComplete = true }
        } else if empty {
            inBody = true
            if bodyLineLimit == 0 { isComplete = true }
        }
    }
}
