/// Bounds for `MIMEParser`: the input is hostile, so nesting, part count and header size are
/// capped. What a limit cuts is still described (as a part without children or fields) and
/// `MessageStructure.truncated` says so.
public struct MIMELimits: Sendable, Hashable {
    /// Nested multiparts and message/rfc822 parts, counted from the message (depth 0).
    public var maxDepth: Int
    /// Parts in the whole tree, the message itself included.
    public var maxParts: Int
    /// Header bytes parsed into fields per part (the rest of a longer header is skipped).
    public var maxHeaderBytes: Int
    public var maxHeaderFields: Int
    /// RFC 2046 §5.1.1 allows 70; longer ones are seen in spam and accepted up to this.
    public var maxBoundaryLength: Int

    public init(maxDepth: Int = 32, maxParts: Int = 10_000, maxHeaderBytes: Int = 256 * 1024, maxHeaderFields: Int = 1000, maxBoundaryLength: Int = 200) {
        self.maxDepth = maxDepth
        self.maxParts = maxParts
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderFields = maxHeaderFields
        self.maxBoundaryLength = maxBoundaryLength
    }
}

/// What was wrong with a part; the part is still described as well as it can be.
public struct MIMEDefects: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A multipart without a usable boundary parameter: no children (Dovecot does the same).
    public static let missingBoundary = MIMEDefects(rawValue: 1 << 0)
    /// A multipart whose boundary never occurs: all of its body is preamble.
    public static let noParts = MIMEDefects(rawValue: 1 << 1)
    /// A multipart ended by the end of its parent or of the message, not by its close delimiter.
    public static let missingCloseDelimiter = MIMEDefects(rawValue: 1 << 2)
    /// The header has no blank line after it: the part has no body.
    public static let unterminatedHeader = MIMEDefects(rawValue: 1 << 3)
    /// The header was longer than `maxHeaderBytes` or `maxHeaderFields`.
    public static let headerTruncated = MIMEDefects(rawValue: 1 << 4)
    /// Nesting deeper than `maxDepth`: this part's children were not parsed.
    public static let depthLimit = MIMEDefects(rawValue: 1 << 5)
    /// More parts than `maxParts`: some children of this part were dropped.
    public static let partLimit = MIMEDefects(rawValue: 1 << 6)
    /// A message/rfc822 part with a base64 or quoted-printable encoding (RFC 2046 §5.2.1
    /// forbids it): not parsed as a message.
    public static let encodedMessage = MIMEDefects(rawValue: 1 << 7)
}

/// One node of the MIME tree. All ranges are byte offsets into the original message, so any
/// section can be served from the stored bytes.
public struct MessagePart: Sendable, Hashable {
    public indirect enum Content: Sendable, Hashable {
        /// A leaf (and a message/rfc822 part that could not be parsed as a message).
        case single
        /// The children of a multipart, in order (may be empty: see `MIMEDefects`).
        case multipart([MessagePart])
        /// The message inside a message/rfc822 (or message/global) part.
        case message(MessagePart)
    }

    /// The part's header (for the top level and inside message/rfc822 parts: the message
    /// header), including the blank line that ends it.
    public var headerRange: Range<Int>
    /// The body: for children of a multipart, without the line break before the next
    /// boundary line, which belongs to the delimiter (RFC 2046 §5.1.1).
    public var bodyRange: Range<Int>
    public var fields: [RawHeaderField]
    /// The effective Content-Type, defaults applied.
    public var contentType: ContentType
    public var content: Content
    /// Line feeds in the body (IMAP `body-fld-lines`).
    public var bodyLines: Int
    /// Line feeds in the body without a CR before them.
    public var bodyBareLineFeeds: Int
    public var defects: MIMEDefects

    /// The body size with every line break counted as CRLF: the size IMAP reports, since the
    /// message is sent with CRLF line breaks (RFC822.SIZE counts the same way).
    public var bodyOctets: Int { bodyRange.count + bodyBareLineFeeds }

    public var transferEncoding: TransferEncoding { TransferEncoding(fields.first("Content-Transfer-Encoding")) }
    public var disposition: ContentDisposition? { ContentDisposition.parse(fields.first("Content-Disposition")) }
    public var contentID: [UInt8]? { fields.first("Content-ID") }

    /// The children of a multipart, or the encapsulated message as the single child.
    public var children: [MessagePart] {
        switch content {
        case .single: []
        case .multipart(let parts): parts
        case .message(let inner): [inner]
        }
    }

    /// The file name for web-mail: Content-Disposition `filename`, else Content-Type `name`
    /// (RFC 2183 §2.3, RFC 2231, and encoded words as many mailers write them).
    public var filename: String? {
        disposition?.decodedParameters.first { $0.name == "filename" }?.value ?? contentType.decodedParameter("name")
    }
}

/// The MIME tree of a message (RFC 2045, RFC 2046).
public struct MessageStructure: Sendable, Hashable {
    public var root: MessagePart
    /// Parts described, the message itself included.
    public var partCount: Int
    /// True when a limit cut the tree short.
    public var truncated: Bool
    /// The message size in bytes as stored.
    public var messageSize: Int

    public static func parse(_ message: [UInt8], limits: MIMELimits = MIMELimits()) -> MessageStructure {
        var parser = MIMEParser(message, limits: limits)
        return parser.parse()
    }
}

/// A single forward pass over the lines of the message with a stack of the open multipart
/// boundaries, innermost first when matching, as Dovecot's parser and Python's feedparser do:
/// an outer boundary also ends every part inside it (RFC 2046 §5.1.2, a missing close
/// delimiter).
public struct MIMEParser {
    /// The MIME tree of `message`; the same as `MessageStructure.parse`.
    public static func parse(_ message: [UInt8], limits: MIMELimits = MIMELimits()) -> MessageStructure {
        var parser = MIMEParser(message, limits: limits)
        return parser.parse()
    }

    private enum Terminator {
        case end
        /// A boundary line of the multipart at `level` of the stack; `start` is its first byte.
        case boundary(level: Int, close: Bool, start: Int)
    }

    private let bytes: [UInt8]
    private let limits: MIMELimits
    /// Offsets of every LF, and of those without a CR before them.
    private let lineFeeds: [Int]
    private let bareLineFeeds: [Int]
    /// The current line: it starts after `lineFeeds[line - 1]`.
    private var line = 0
    private var boundaries: [[UInt8]] = []
    private var partCount = 0
    private var truncated = false

    init(_ bytes: [UInt8], limits: MIMELimits) {
        self.bytes = bytes
        self.limits = limits
        var lineFeeds: [Int] = []
        var bareLineFeeds: [Int] = []
        for index in bytes.indices where bytes[index] == 0x0a {
            lineFeeds.append(index)
            if index == 0 || bytes[index - 1] != 0x0d { bareLineFeeds.append(index) }
        }
        self.lineFeeds = lineFeeds
        self.bareLineFeeds = bareLineFeeds
    }

    mutating func parse() -> MessageStructure {
        line = 0
        let (root, _) = parsePart(depth: 0, defaultType: .textPlain)
        return MessageStructure(root: root, partCount: partCount, truncated: truncated, messageSize: bytes.count)
    }

    // MARK: lines

    private func lineStart(_ index: Int) -> Int { index == 0 ? 0 : lineFeeds[index - 1] + 1 }
    private func lineEnd(_ index: Int) -> Int { index < lineFeeds.count ? lineFeeds[index] : bytes.count }
    private var atEnd: Bool { offset >= bytes.count }
    /// The first byte of the current line (the message size past the last line).
    private var offset: Int { line > lineFeeds.count ? bytes.count : lineStart(line) }

    /// The start of the line break that ends just before `offset`, not below `floor`.
    private func breakStart(before offset: Int, floor: Int) -> Int {
        var start = offset
        if start > floor && bytes[start - 1] == 0x0a {
            start -= 1
            if start > floor && bytes[start - 1] == 0x0d { start -= 1 }
        }
        return start
    }

    /// RFC 2046 §5.1.1: a line starting with "--" and a boundary of the stack; by the note to
    /// implementors, "the boundary ... in its entirety following the CRLF" is enough, so
    /// transport padding or anything else may follow. "--" right after makes it a close delimiter.
    private func boundaryMatch(_ index: Int) -> (level: Int, close: Bool)? {
        guard !boundaries.isEmpty else { return nil }
        let start = lineStart(index)
        let end = lineEnd(index)
        guard end - start >= 3, bytes[start] == 0x2d, bytes[start + 1] == 0x2d else { return nil }
        for level in boundaries.indices.reversed() {
            let boundary = boundaries[level]
            guard end - start >= boundary.count else { continue }
            var matches = true
            for offset in 0..<boundary.count where bytes[start + offset] != boundary[offset] {
                matches = false
                break
            }
            if matches {
                let after = start + boundary.count
                let close = after + 2 <= end && bytes[after] == 0x2d && bytes[after + 1] == 0x2d
                return (level, close)
            }
        }
        return nil
    }

    private func countLineFeeds(_ positions: [Int], in range: Range<Int>) -> Int {
        lowerBound(positions, range.upperBound) - lowerBound(positions, range.lowerBound)
    }

    private func lowerBound(_ positions: [Int], _ value: Int) -> Int {
        var low = 0
        var high = positions.count
        while low < high {
            let middle = (low + high) / 2
            if positions[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }

    // MARK: parts

    /// Skips lines up to a boundary line of the stack (consumed) or the end.
    private mutating func scanToBoundary(from bodyStart: Int) -> (bodyEnd: Int, terminator: Terminator) {
        while !atEnd {
            if let match = boundaryMatch(line) {
                let start = lineStart(line)
                line += 1
                return (breakStart(before: start, floor: bodyStart), .boundary(level: match.level, close: match.close, start: start))
            }
            line += 1
        }
        return (bytes.count, .end)
    }

    /// A part from the current line: its header, then its body by type.
    private mutating func parsePart(depth: Int, defaultType: ContentType) -> (MessagePart, Terminator) {
        partCount += 1
        let start = offset
        var headerEnd = bytes.count
        var early: Terminator? = .end
        while !atEnd {
            if let match = boundaryMatch(line) {
                let boundaryStart = lineStart(line)
                headerEnd = breakStart(before: boundaryStart, floor: start)
                line += 1
                early = .boundary(level: match.level, close: match.close, start: boundaryStart)
                break
            }
            let lineFirst = lineStart(line)
            let end = lineEnd(line)
            line += 1
            if end == lineFirst || (end == lineFirst + 1 && bytes[lineFirst] == 0x0d) {
                headerEnd = min(end + 1, bytes.count)
                early = nil
                break
            }
        }
        let scanned = HeaderScanner.fields(bytes, in: start..<headerEnd, maxFields: limits.maxHeaderFields, maxBytes: limits.maxHeaderBytes)
        var defects: MIMEDefects = scanned.truncated ? [.headerTruncated] : []
        if early != nil { defects.insert(.unterminatedHeader) }
        let contentType = ContentType.parse(scanned.fields.first("Content-Type"), default: defaultType)
        let bodyStart = headerEnd

        var content = MessagePart.Content.single
        var bodyEnd = bodyStart
        var terminator = Terminator.end
        if let early {
            // No blank line: the part is all header (RFC 2046 §5.1.1 needs one before a body).
            terminator = early
            if contentType.isMultipart { content = .multipart([]) }
        } else if contentType.isMultipart {
            let boundary = contentType.parameter("boundary") ?? []
            if boundary.isEmpty || boundary.count > limits.maxBoundaryLength || depth >= limits.maxDepth {
                defects.insert(depth >= limits.maxDepth ? .depthLimit : .missingBoundary)
                if depth >= limits.maxDepth { truncated = true }
                (bodyEnd, terminator) = scanToBoundary(from: bodyStart)
                content = .multipart([])
            } else {
                let childDefault: ContentType = contentType.subtype.lowercased() == "digest" ? .messageRFC822 : .textPlain
                let result = parseMultipartBody(boundary: boundary, bodyStart: bodyStart, depth: depth, childDefault: childDefault)
                (bodyEnd, terminator) = (result.bodyEnd, result.terminator)
                defects.formUnion(result.defects)
                content = .multipart(result.children)
            }
        } else if contentType.isEncapsulatedMessage {
            let encoding = TransferEncoding(scanned.fields.first("Content-Transfer-Encoding"))
            if !encoding.isIdentity {
                defects.insert(.encodedMessage)
                (bodyEnd, terminator) = scanToBoundary(from: bodyStart)
            } else if depth >= limits.maxDepth || partCount >= limits.maxParts {
                defects.insert(depth >= limits.maxDepth ? .depthLimit : .partLimit)
                truncated = true
                (bodyEnd, terminator) = scanToBoundary(from: bodyStart)
            } else {
                let (inner, innerTerminator) = parsePart(depth: depth + 1, defaultType: .textPlain)
                bodyEnd = max(bodyStart, inner.bodyRange.upperBound)
                terminator = innerTerminator
                content = .message(inner)
            }
        } else {
            (bodyEnd, terminator) = scanToBoundary(from: bodyStart)
        }
        let bodyRange = bodyStart..<max(bodyStart, bodyEnd)
        let part = MessagePart(
            headerRange: start..<headerEnd, bodyRange: bodyRange, fields: scanned.fields, contentType: contentType, content: content,
            bodyLines: countLineFeeds(lineFeeds, in: bodyRange), bodyBareLineFeeds: countLineFeeds(bareLineFeeds, in: bodyRange),
            defects: defects)
        return (part, terminator)
    }

    /// RFC 2046 §5.1.1: preamble, body parts between delimiters, close delimiter, epilogue.
    private mutating func parseMultipartBody(boundary: [UInt8], bodyStart: Int, depth: Int, childDefault: ContentType)
        -> (children: [MessagePart], bodyEnd: Int, terminator: Terminator, defects: MIMEDefects)
    {
        boundaries.append([0x2d, 0x2d] + boundary)
        let level = boundaries.count - 1
        var children: [MessagePart] = []
        var defects: MIMEDefects = []
        var (_, terminator) = scanToBoundary(from: bodyStart)
        while true {
            switch terminator {
            case .end:
                boundaries.removeLast()
                defects.insert(children.isEmpty ? .noParts : .missingCloseDelimiter)
                return (children, bytes.count, .end, defects)
            case .boundary(let matched, _, let start) where matched < level:
                boundaries.removeLast()
                defects.insert(children.isEmpty ? .noParts : .missingCloseDelimiter)
                // The line break before the outer delimiter may be the blank line that ended
                // the last child's header: the child keeps it.
                let end = max(breakStart(before: start, floor: bodyStart), children.last?.bodyRange.upperBound ?? bodyStart)
                return (children, end, terminator, defects)
            case .boundary(_, true, _):
                // The close delimiter; the epilogue runs to an outer boundary or the end.
                boundaries.removeLast()
                if children.isEmpty { defects.insert(.noParts) }
                let (epilogueEnd, outer) = scanToBoundary(from: offset)
                return (children, max(bodyStart, epilogueEnd), outer, defects)
            case .boundary where atEnd && bytes.last != 0x0a:
                // The delimiter is the last line and has no line break: RFC 2046 §5.1.1 wants
                // CRLF after it, so no body part starts there (Dovecot agrees).
                boundaries.removeLast()
                defects.insert(children.isEmpty ? .noParts : .missingCloseDelimiter)
                return (children, bytes.count, .end, defects)
            case .boundary:
                if partCount >= limits.maxParts {
                    truncated = true
                    defects.insert(.partLimit)
                    (_, terminator) = scanToBoundary(from: offset)
                    continue
                }
                let (child, next) = parsePart(depth: depth + 1, defaultType: childDefault)
                children.append(child)
                terminator = next
            }
        }
    }
}
