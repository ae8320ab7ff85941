/// One complete reply from an SMTP server (RFC 5321 §4.2), possibly of several lines.
public struct SMTPClientReply: Sendable, Equatable, CustomStringConvertible {
    /// The three-digit reply code.
    public var code: Int
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`, when the first line carries one.
    public var enhanced: String?
    /// The text of each line after the code (and after the enhanced code, when present);
    /// control characters are replaced by `?`, so the lines are safe to log.
    public var lines: [String]

    public init(code: Int, enhanced: String? = nil, lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
    }

    /// The lines joined by spaces.
    public var text: String { lines.joined(separator: " ") }

    /// `550 5.1.1 text`: the form for logs and DSN diagnostic codes.
    public var description: String {
        var result = String(code)
        if let enhanced { result += " " + enhanced }
        let text = text
        if !text.isEmpty { result += " " + text }
        return result
    }

    var isPositive: Bool { (200..<300).contains(code) }
    var isIntermediate: Bool { (300..<400).contains(code) }
    var isTransient: Bool { (400..<500).contains(code) }
    var isPermanent: Bool { (500..<600).contains(code) }
    /// RFC 5321 §3.8: 421 means the server is closing the channel; no further command is useful.
    var isClosing: Bool { code == 421 }
}

/// Why the bytes from the server are not a valid reply. Any of these ends the session as a
/// protocol violation (a temporary failure).
public enum SMTPReplyParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A line longer than the limit (counting its CRLF).
    case lineTooLong(limit: Int)
    /// A multi-line reply with more lines than the limit.
    case tooManyLines(limit: Int)
    /// A line that does not start with a valid reply code and separator.
    case malformedLine(String)
    /// A continuation line whose code differs from the first line's (RFC 5321 §4.2.1).
    case mismatchedCode(expected: Int, found: Int)

    public var description: String {
        switch self {
        case .lineTooLong(let limit): "reply line longer than \(limit) bytes"
        case .tooManyLines(let limit): "reply with more than \(limit) lines"
        case .malformedLine(let line): "malformed reply line \"\(line)\""
        case .mismatchedCode(let expected, let found): "reply line with code \(found) inside a \(expected) reply"
        }
    }
}

/// Frames and parses server replies from a byte stream, incrementally and with bounds: a
/// partial line is kept until its end arrives, but never past `maxLineLength` bytes.
/// After an error the parser stays failed; the connection must be closed.
public struct SMTPReplyParser: Sendable {
    public var maxLineLength: Int
    public var maxLines: Int

    private var buffer: [UInt8] = []
    /// Where unparsed input starts in `buffer`.
    private var start = 0
    /// Where the search for the next LF resumes (everything between `start` and here has none).
    private var scanned = 0
    private var code: Int?
    private var lines: [String] = []
    private var failure: SMTPReplyParseError?

    public init(maxLineLength: Int = 2048, maxLines: Int = 100) {
        self.maxLineLength = maxLineLength
        self.maxLines = maxLines
    }

    /// Adds bytes received from the server.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if start > 0, start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            scanned -= start
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Drops buffered input and any partial reply (RFC 3207 §4.2: nothing received before
    /// the TLS handshake may be used after it).
    public mutating func reset() {
        buffer = []
        start = 0
        scanned = 0
        code = nil
        lines = []
    }

    /// The next complete reply, nil when more input is needed.
    public mutating func next() throws(SMTPReplyParseError) -> SMTPClientReply? {
        if let failure { throw failure }
        do {
            while let line = try nextLine() {
                if let reply = try take(line) { return reply }
            }
            return nil
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func nextLine() throws(SMTPReplyParseError) -> ArraySlice<UInt8>? {
        guard let newline = buffer[scanned...].firstIndex(of: 0x0a) else {
            scanned = buffer.count
            if buffer.count - start > maxLineLength { throw .lineTooLong(limit: maxLineLength) }
            return nil
        }
        if newline + 1 - start > maxLineLength { throw .lineTooLong(limit: maxLineLength) }
        var end = newline
        if end > start, buffer[end - 1] == 0x0d { end -= 1 }
        let line = buffer[start..<end]
        start = newline + 1
        scanned = start
        return line
    }

    /// RFC 5321 §4.2: `Reply-code [ SP / "-" textstring ] CRLF`; first digit 2–5, second 0–5.
    private mutating func take(_ line: ArraySlice<UInt8>) throws(SMTPReplyParseError) -> SMTPClientReply? {
        let bytes = Array(line)
        guard bytes.count >= 3,
              (0x32...0x35).contains(bytes[0]), (0x30...0x35).contains(bytes[1]), (0x30...0x39).contains(bytes[2]),
              bytes.count == 3 || bytes[3] == 0x20 || bytes[3] == 0x2d
        else { throw .malformedLine(Self.printable(bytes.prefix(80))) }
        let lineCode = Int(bytes[0] - 0x30) * 100 + Int(bytes[1] - 0x30) * 10 + Int(bytes[2] - 0x30)
        if let code, code != lineCode { throw .mismatchedCode(expected: code, found: lineCode) }
        code = lineCode
        guard lines.count < maxLines else { throw .tooManyLines(limit: maxLines) }
        lines.append(bytes.count > 4 ? Self.printable(bytes[4...]) : "")
        let isLast = bytes.count == 3 || bytes[3] == 0x20
        guard isLast else { return nil }
        defer {
            code = nil
            lines = []
        }
        return Self.reply(code: lineCode, lines: lines)
    }

    /// Splits off the enhanced status code (RFC 3463, RFC 2034 §4: `class.subject.detail`,
    /// the class matching the reply's first digit) that servers repeat on every line.
    static func reply(code: Int, lines: [String]) -> SMTPClientReply {
        guard let first = lines.first, let enhanced = enhancedCode(in: first, replyClass: code / 100) else {
            return SMTPClientReply(code: code, lines: lines)
        }
        let stripped = lines.map { line -> String in
            if line == enhanced { return "" }
            if line.hasPrefix(enhanced + " ") { return String(line.dropFirst(enhanced.count + 1)) }
            return line
        }
        return SMTPClientReply(code: code, enhanced: enhanced, lines: stripped)
    }

    static func enhancedCode(in line: String, replyClass: Int) -> String? {
        let token = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "\(replyClass)",
              parts[1...].allSatisfy({ (1...3).contains($0.count) && $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return nil }
        return String(token)
    }

    /// Reply text for logs and reports: invalid UTF-8 repaired, control characters replaced.
    static func printable(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self).unicodeScalars.reduce(into: "") { result, scalar in
            if scalar.value < 0x20 || scalar.value == 0x7f || (0x80..<0xa0).contains(scalar.value) {
                result.unicodeScalars.append(scalar == "\t" ? " " : "?")
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
}
