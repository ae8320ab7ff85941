#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads the message text after DATA (RFC 5321 §4.1.1.4) incrementally from raw bytes.
///
/// - Only `CRLF . CRLF` ends the data. A bare LF or bare CR anywhere marks the message as
///   refused (RFC 5321 §2.3.8): that is what SMTP smuggling exploits, when a server and the
///   next hop disagree about where a message ends.
/// - Lines starting with a dot are unstuffed (§4.5.2).
/// - Size and line-length limits are enforced without buffering past them: the rest is read
///   and dropped up to the end marker, so the session stays in sync with the client and can
///   answer with one clear error.
public struct SMTPDataReader: Sendable {
    public enum Outcome: Sendable, Equatable {
        case needMoreData
        /// The message as it will be stored: CRLF line ends, dots unstuffed.
        case complete([UInt8])
        case rejected(SMTPReply)
    }

    public enum Violation: Sendable, Equatable {
        case bareLineFeed
        case bareCarriageReturn
        case lineTooLong
        case tooBig
    }

    public let maxMessageSize: Int
    public let maxLineLength: Int
    private(set) public var violation: Violation?
    private var message: [UInt8] = []
    private var line: [UInt8] = []
    private var lineLength = 0
    private var finished = false
    /// Whether the previous line ended in CRLF: the end marker is CRLF "." CRLF, so a "."
    /// line after a bare LF does not end the data. DATA's own CRLF counts as the first.
    private var previousLineEndedWithCRLF = true
    /// The byte before the current one, kept even when an over-long line is not buffered.
    private var previousByte: UInt8 = 0

    /// - Parameters:
    ///   - maxMessageSize: bytes of message (after unstuffing) accepted; more is a 552.
    ///   - maxLineLength: bytes per line including CRLF; RFC 5321 §4.5.3.1.6 says 1000, and
    ///     real mail sometimes exceeds it, so the default is generous while still bounded.
    public init(maxMessageSize: Int, maxLineLength: Int = 32 * 1024) {
        self.maxMessageSize = maxMessageSize
        self.maxLineLength = maxLineLength
        message.reserveCapacity(min(maxMessageSize, 64 * 1024))
    }

    /// Feeds bytes; returns the outcome and how many bytes were used. Bytes after the end
    /// marker are not used: with PIPELINING they belong to the next command.
    public mutating func feed(_ bytes: [UInt8]) -> (outcome: Outcome, consumed: Int) {
        guard !finished else { return (.needMoreData, 0) }
        // Whole line segments at a time (memchr for the LF), not byte by byte: a 50 MB
        // message is a few thousand appends.
        return bytes.withUnsafeBufferPointer { buffer -> (outcome: Outcome, consumed: Int) in
            guard let base = buffer.baseAddress else { return (.needMoreData, 0) }
            var index = 0
            while index < buffer.count {
                let found = memchr(base + index, 0x0a, buffer.count - index)
                let end = found.map { base.distance(to: $0.assumingMemoryBound(to: UInt8.self)) + 1 } ?? buffer.count
                let segment = UnsafeBufferPointer(rebasing: buffer[index..<end])
                let room = max(0, maxLineLength - lineLength)
                if room >= segment.count {
                    line.append(contentsOf: segment)
                } else {
                    line.append(contentsOf: UnsafeBufferPointer(rebasing: segment[..<room]))
                    if violation == nil { violation = .lineTooLong }
                }
                lineLength += segment.count
                let crBefore = segment.count >= 2 ? segment[segment.count - 2] == 0x0d : previousByte == 0x0d
                previousByte = segment[segment.count - 1]
                index = end
                guard found != nil else { break }
                if let outcome = endOfLine(endsWithCRLF: crBefore) { return (outcome, index) }
            }
            return (.needMoreData, index)
        }
    }

    /// Handles a complete line (ending in LF); returns an outcome at the end marker.
    private mutating func endOfLine(endsWithCRLF: Bool) -> Outcome? {
        defer {
            line.removeAll(keepingCapacity: true)
            lineLength = 0
        }
        if !endsWithCRLF && violation == nil { violation = .bareLineFeed }
        // A CR anywhere but right before the final LF is a bare CR.
        if line.dropLast(endsWithCRLF ? 2 : 1).contains(0x0d) && violation == nil { violation = .bareCarriageReturn }
        defer { previousLineEndedWithCRLF = endsWithCRLF }
        if endsWithCRLF && previousLineEndedWithCRLF && line.count == 3 && line[0] == UInt8(ascii: ".") {
            finished = true
            return finish()
        }
        var content = line[...]
        if content.first == UInt8(ascii: ".") { content = content.dropFirst() }
        if message.count + content.count > maxMessageSize {
            if violation == nil { violation = .tooBig }
        } else if violation == nil {
            message.append(contentsOf: content)
        }
        return nil
    }

    private mutating func finish() -> Outcome {
        switch violation {
        case nil:
            let result = message
            message = []
            return .complete(result)
        case .bareLineFeed, .bareCarriageReturn:
            return .rejected(SMTPReply(554, "5.6.0", "Message contains a bare CR or LF (RFC 5321 section 2.3.8); not accepted"))
        case .lineTooLong:
            return .rejected(SMTPReply(554, "5.6.0", "Message has a line longer than \(maxLineLength) bytes; not accepted"))
        case .tooBig:
            return .rejected(SMTPReply(552, "5.3.4", "Message exceeds the maximum size of \(maxMessageSize) bytes"))
        }
    }
}
