/// One complete client command as it came off the wire: every line segment and the literal
/// data between them, the final CRLF included. `IMAPCommandParser` turns it into an `IMAPCommand`.
public struct IMAPFrame: Sendable, Hashable {
    public var bytes: [UInt8]
    /// The tag, when the frame starts with a well-formed one followed by a space.
    public var tag: String?
    /// Whether the command is APPEND (its literals fall under the APPEND limits).
    public var isAppend: Bool

    public init(bytes: [UInt8], tag: String?, isAppend: Bool) {
        self.bytes = bytes
        self.tag = tag
        self.isAppend = isAppend
    }
}

/// A synchronising literal (`{n}` or `~{n}`) the client announced and now waits to send.
public struct IMAPLiteralAnnouncement: Sendable, Hashable {
    public var tag: String?
    public var size: Int
    /// `~{n}`: literal8 (RFC 3516), may carry NUL.
    public var isBinary: Bool
    public var isAppend: Bool
}

public enum IMAPFramingEvent: Sendable, Hashable {
    /// A complete command.
    case frame(IMAPFrame)
    /// RFC 9051 §7.5: the server must now send a continuation request (`+ Ready`) for the client
    /// to send the literal, or refuse the command with a tagged `NO`/`BAD` and call
    /// `IMAPCommandFramer.rejectPendingLiteral()` (for instance `NO [OVERQUOTA]` on APPEND).
    case continuationRequired(IMAPLiteralAnnouncement)
    /// The input broke a limit; see `IMAPFramingError.disposition`.
    case error(IMAPFramingError)
}

public struct IMAPFramingError: Error, Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// A line (outside literals) went past `maxLineLength`.
        case lineTooLong(limit: Int)
        /// A synchronising literal bigger than the applicable literal limit; `size` is nil when
        /// the announced number does not even fit 64 bits.
        case literalTooLarge(size: UInt64?, limit: Int)
        /// A non-synchronising literal (`{n+}`) over the limit: its data is already on the way.
        case nonSynchronizingLiteralTooLarge(size: UInt64?, limit: Int)
        /// The whole command (lines plus literals) went past `maxCommandSize`/`maxAppendCommandSize`.
        case commandTooLarge(limit: Int)
        /// An over-long line kept coming for more than `maxDiscardedBytes`.
        case discardLimitExceeded(limit: Int)
    }

    public enum Disposition: Sendable, Hashable {
        /// The framer drops the rest of this command by itself (the client either has not sent
        /// the literal, waiting for a `+` that will not come, or the line is being skipped):
        /// answer with the suggested response and go on reading commands.
        case commandDiscarded
        /// Bytes that cannot be told apart from commands are in flight (a non-synchronising
        /// literal the framer refuses to read): send `* BYE` and close. The framer reads no further.
        case closeConnection
    }

    public var tag: String?
    public var kind: Kind
    public var disposition: Disposition

    /// The answer the server should give: tagged when the tag is known.
    public var suggestedResponse: IMAPResponse {
        let code: IMAPResponseCode
        let text: String
        switch kind {
        case .lineTooLong(let limit):
            code = .tooBig
            text = "Command line longer than \(limit) octets"
        case .literalTooLarge(let size, let limit):
            code = .tooBig
            text = "Literal of \(size.map(String.init) ?? "unrepresentable") octets exceeds the limit of \(limit)"
        case .nonSynchronizingLiteralTooLarge(let size, let limit):
            code = .tooBig
            text = "Non-synchronizing literal of \(size.map(String.init) ?? "unrepresentable") octets exceeds the limit of \(limit)"
        case .commandTooLarge(let limit):
            code = .tooBig
            text = "Command larger than \(limit) octets"
        case .discardLimitExceeded(let limit):
            code = .tooBig
            text = "Gave up skipping a line longer than \(limit) octets"
        }
        if disposition == .closeConnection {
            return .untagged(.status(IMAPStatusResponse(.bye, code: code, text)))
        }
        if let tag {
            // RFC 9051 §7.1: TOOBIG may come with NO or BAD; BAD since the command was not parsed.
            return .tagged(tag: tag, IMAPStatusResponse(.bad, code: code, text))
        }
        return .untagged(.status(IMAPStatusResponse(.bad, code: code, text)))
    }
}

/// Finds complete commands in the byte stream of one connection, the way swift-nio-imap's
/// `SynchronizingLiteralParser` does: it understands only lines and literals (RFC 9051 §4.3,
/// RFC 7888 non-synchronising literals, RFC 3516 `~{n}` literal8), so a partial command is a
/// normal outcome and the grammar parser only ever sees whole commands.
///
/// Usage: `append` each read, then call `nextEvent()` until it returns nil. Memory held is the
/// unprocessed input plus one command, which is bounded by `maxCommandSize` or
/// `maxAppendCommandSize`; over-long lines are skipped, never stored.
///
/// AUTHENTICATE responses and IDLE's `DONE` are ordinary lines to the framer; the session hands
/// those frames to `IMAPCommandParser.parseAuthenticationResponse` / `parseIdleDone`.
public struct IMAPCommandFramer: Sendable {
    public var limits: IMAPLimits
    public var literalExtension: IMAPLiteralExtension

    private enum State: Sendable {
        case line
        case literal(remaining: Int)
        case discarding(tail: [UInt8], discarded: Int, tag: String?)
        case closed
    }

    private var state: State = .line
    private var input: [UInt8] = []
    private var inputIndex = 0
    private var frame: [UInt8] = []
    private var segmentStart = 0
    private var frameIsAppend = false
    private var syncLiteralPending = false

    /// Bytes that a discarded line may end with and still be recognised as ending in a literal marker.
    private static let tailLength = 32

    public init(limits: IMAPLimits = IMAPLimits(), literalExtension: IMAPLiteralExtension = .literalPlus) {
        self.limits = limits
        self.literalExtension = literalExtension
    }

    /// Bytes received but not yet handed out as a frame (for read backpressure).
    public var bufferedByteCount: Int { input.count - inputIndex + frame.count }

    /// True after a `.closeConnection` error: the framer produces nothing more.
    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        guard !isClosed else { return }
        input.append(contentsOf: bytes)
    }

    /// The server refused the command whose literal was just announced (it answered `NO`/`BAD`
    /// instead of `+`): drop what was collected of it. RFC 9051 §7.5: the client then does not send the literal.
    public mutating func rejectPendingLiteral() {
        guard syncLiteralPending, case .literal = state else { return }
        syncLiteralPending = false
        resetFrame()
        state = .line
    }

    public mutating func nextEvent() -> IMAPFramingEvent? {
        while true {
            switch state {
            case .closed:
                return nil
            case .literal(let remaining):
                let available = input.count - inputIndex
                guard available > 0 || remaining == 0 else { return finishInput() }
                // Literal data arrived: too late to refuse the literal.
                syncLiteralPending = false
                let count = min(remaining, available)
                frame.append(contentsOf: input[inputIndex..<(inputIndex + count)])
                inputIndex += count
                if count == remaining {
                    state = .line
                    segmentStart = frame.count
                } else {
                    state = .literal(remaining: remaining - count)
                    return finishInput()
                }
            case .discarding(let tail, let discarded, let tag):
                guard inputIndex < input.count else { return finishInput() }
                if let lineFeed = input[inputIndex...].firstIndex(of: UInt8(ascii: "\n")) {
                    let newTail = Self.keepTail(tail, input[inputIndex...lineFeed])
                    inputIndex = lineFeed + 1
                    state = .line
                    resetFrame()
                    // The skipped line announced a non-synchronising literal: its data follows
                    // and would be read as commands (RFC 7888 §4 lets the server close instead).
                    if let marker = Self.literalMarker(atEndOf: Self.withoutLineEnd(newTail[...])), marker.nonSynchronizing {
                        return close(IMAPFramingError(
                            tag: tag,
                            kind: .lineTooLong(limit: limits.maxLineLength),
                            disposition: .closeConnection
                        ))
                    }
                } else {
                    let total = discarded + (input.count - inputIndex)
                    let newTail = Self.keepTail(tail, input[inputIndex...])
                    inputIndex = input.count
                    if total > limits.maxDiscardedBytes {
                        return close(IMAPFramingError(
                            tag: tag,
                            kind: .discardLimitExceeded(limit: limits.maxDiscardedBytes),
                            disposition: .closeConnection
                        ))
                    }
                    state = .discarding(tail: newTail, discarded: total, tag: tag)
                    return finishInput()
                }
            case .line:
                guard inputIndex < input.count else { return finishInput() }
                let lineFeed = input[inputIndex...].firstIndex(of: UInt8(ascii: "\n"))
                let end = lineFeed.map { $0 + 1 } ?? input.count
                let segmentLength = frame.count - segmentStart + (end - inputIndex)
                if segmentLength > limits.maxLineLength {
                    return startDiscarding()
                }
                frame.append(contentsOf: input[inputIndex..<end])
                inputIndex = end
                guard lineFeed != nil else { return finishInput() }
                if segmentStart == 0 {
                    frameIsAppend = Self.isAppendCommand(frame)
                }
                let commandLimit = frameIsAppend ? limits.maxAppendCommandSize : limits.maxCommandSize
                let marker = Self.literalMarker(atEndOf: Self.withoutLineEnd(frame[segmentStart...]))
                if frame.count > commandLimit {
                    let tag = Self.tag(of: frame, maxLength: limits.maxTagLength)
                    resetFrame()
                    let closing = marker?.nonSynchronizing == true
                    let error = IMAPFramingError(
                        tag: tag, kind: .commandTooLarge(limit: commandLimit),
                        disposition: closing ? .closeConnection : .commandDiscarded
                    )
                    return closing ? close(error) : .error(error)
                }
                guard let marker else {
                    return .frame(takeFrame())
                }
                if let event = startLiteral(marker, commandLimit: commandLimit) {
                    return event
                }
            }
        }
    }

    // MARK: - Literals

    private mutating func startLiteral(_ marker: LiteralMarker, commandLimit: Int) -> IMAPFramingEvent? {
        let literalLimit = frameIsAppend ? limits.maxAppendLiteralSize : limits.maxLiteralSize
        let tag = Self.tag(of: frame, maxLength: limits.maxTagLength)
        if marker.nonSynchronizing {
            let limit = literalExtension == .literalPlus
                ? literalLimit : min(literalLimit, IMAPLimits.literalMinusMaximum)
            guard let size = marker.size, size <= UInt64(limit) else {
                return close(IMAPFramingError(
                    tag: tag, kind: .nonSynchronizingLiteralTooLarge(size: marker.size, limit: limit),
                    disposition: .closeConnection
                ))
            }
            guard frame.count + Int(size) <= commandLimit else {
                return close(IMAPFramingError(tag: tag, kind: .commandTooLarge(limit: commandLimit), disposition: .closeConnection))
            }
            state = .literal(remaining: Int(size))
            return nil
        }
        // Synchronising: nothing of the literal has been sent, so refusing costs nothing.
        guard let size = marker.size, size <= UInt64(literalLimit) else {
            resetFrame()
            return .error(IMAPFramingError(
                tag: tag, kind: .literalTooLarge(size: marker.size, limit: literalLimit),
                disposition: .commandDiscarded
            ))
        }
        guard frame.count + Int(size) <= commandLimit else {
            resetFrame()
            return .error(IMAPFramingError(tag: tag, kind: .commandTooLarge(limit: commandLimit), disposition: .commandDiscarded))
        }
        state = .literal(remaining: Int(size))
        syncLiteralPending = true
        return .continuationRequired(IMAPLiteralAnnouncement(
            tag: tag, size: Int(size), isBinary: marker.binary, isAppend: frameIsAppend
        ))
    }

    struct LiteralMarker: Equatable {
        var size: UInt64?
        var nonSynchronizing: Bool
        var binary: Bool
    }

    /// `{n}`, `{n+}`, `~{n}`, `~{n+}` at the very end of a line (line end already removed).
    static func literalMarker(atEndOf line: ArraySlice<UInt8>) -> LiteralMarker? {
        guard line.last == UInt8(ascii: "}") else { return nil }
        var index = line.endIndex - 1
        var nonSynchronizing = false
        if index > line.startIndex, line[index - 1] == UInt8(ascii: "+") {
            nonSynchronizing = true
            index -= 1
        }
        let digitsEnd = index
        while index > line.startIndex, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(line[index - 1]) {
            index -= 1
        }
        let digitsStart = index
        guard digitsStart < digitsEnd, index > line.startIndex, line[index - 1] == UInt8(ascii: "{") else { return nil }
        let binary = index - 1 > line.startIndex && line[index - 2] == UInt8(ascii: "~")
        var size: UInt64? = 0
        for digit in line[digitsStart..<digitsEnd] {
            guard let current = size else { break }
            let (times10, overflow1) = current.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            size = overflow1 || overflow2 ? nil : sum
        }
        return LiteralMarker(size: size, nonSynchronizing: nonSynchronizing, binary: binary)
    }

    // MARK: - Helpers

    private mutating func startDiscarding() -> IMAPFramingEvent {
        let tag = Self.tag(of: frame.isEmpty ? Array(input[inputIndex..<min(input.count, inputIndex + limits.maxTagLength + 1)]) : frame, maxLength: limits.maxTagLength)
        let tail = Self.keepTail(Array(frame.suffix(Self.tailLength)), [])
        let discarded = frame.count - segmentStart
        resetFrame()
        state = .discarding(tail: tail, discarded: discarded, tag: tag)
        return .error(IMAPFramingError(tag: tag, kind: .lineTooLong(limit: limits.maxLineLength), disposition: .commandDiscarded))
    }

    private mutating func close(_ error: IMAPFramingError) -> IMAPFramingEvent {
        state = .closed
        input = []
        inputIndex = 0
        resetFrame()
        return .error(error)
    }

    private mutating func takeFrame() -> IMAPFrame {
        let tag = Self.tag(of: frame, maxLength: limits.maxTagLength)
        let result = IMAPFrame(bytes: frame, tag: tag, isAppend: frameIsAppend)
        frame = []
        segmentStart = 0
        frameIsAppend = false
        return result
    }

    private mutating func resetFrame() {
        frame = []
        segmentStart = 0
        frameIsAppend = false
    }

    /// All input consumed (or waiting for more): release what has been read.
    private mutating func finishInput() -> IMAPFramingEvent? {
        if inputIndex == input.count {
            input.removeAll(keepingCapacity: input.capacity <= 65_536)
            inputIndex = 0
        } else if inputIndex > 65_536 {
            input.removeSubrange(0..<inputIndex)
            inputIndex = 0
        }
        return nil
    }

    private static func keepTail(_ tail: [UInt8], _ more: ArraySlice<UInt8>) -> [UInt8] {
        if more.count >= tailLength { return Array(more.suffix(tailLength)) }
        return Array((tail + more).suffix(tailLength))
    }

    static func withoutLineEnd(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var line = line
        if line.last == UInt8(ascii: "\n") { line = line.dropLast() }
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        return line
    }

    /// The tag if the bytes start with `tag SP` (RFC 9051 §9: tag = 1*<any ASTRING-CHAR except "+">).
    static func tag(of bytes: [UInt8], maxLength: Int) -> String? {
        var index = 0
        while index < bytes.count, index <= maxLength {
            let byte = bytes[index]
            if byte == UInt8(ascii: " ") {
                guard index > 0 else { return nil }
                return String(decoding: bytes[0..<index], as: UTF8.self)
            }
            guard IMAPCharacter.isAStringChar(byte), byte != UInt8(ascii: "+") else { return nil }
            index += 1
        }
        return nil
    }

    static func isAppendCommand(_ bytes: [UInt8]) -> Bool {
        guard let space = bytes.firstIndex(of: UInt8(ascii: " ")) else { return false }
        let name = bytes[(space + 1)...].prefix { IMAPCharacter.isAtomChar($0) }
        return name.count == 6 && name.elementsEqual("APPEND".utf8) { IMAPCharacter.uppercase($0) == $1 }
    }
}
