/// A command that could not be parsed, with what the server should answer.
public struct IMAPCommandParseError: Error, Sendable, Hashable {
    /// Nil when the line did not start with a valid tag: the answer is then untagged.
    public var tag: String?
    public var error: IMAPParseError

    public init(tag: String?, error: IMAPParseError) {
        self.tag = tag
        self.error = error
    }

    /// `BAD` for syntax, `BAD [LIMIT]` for limits, `NO [BADCHARSET]` for charsets (RFC 9051 §6.4.4).
    public var suggestedResponse: IMAPResponse {
        let status: IMAPStatusResponse
        switch error.kind {
        case .syntax:
            status = IMAPStatusResponse(.bad, code: nil, "Syntax error: \(error.message)")
        case .limitExceeded:
            status = IMAPStatusResponse(.bad, code: .limit, "Limit exceeded: \(error.message)")
        case .unsupportedCharset:
            status = IMAPStatusResponse(.no, code: .badCharset(["UTF-8", "US-ASCII"]), "Unsupported charset")
        }
        if let tag { return .tagged(tag: tag, status) }
        return .untagged(.status(status))
    }
}

/// What the client sent in answer to an AUTHENTICATE challenge (RFC 9051 §6.2.2).
public enum IMAPAuthenticationResponse: Sendable, Hashable {
    /// `*`: the client cancels; answer `BAD`.
    case cancel
    case data([UInt8])
    /// Not base64: answer `BAD` and end the exchange.
    case invalid
}

/// Turns frames from `IMAPCommandFramer` into typed commands. Pure and cheap to copy: the
/// session keeps one and flips `utf8Accept` after `ENABLE UTF8=ACCEPT`.
public struct IMAPCommandParser: Sendable {
    public var limits: IMAPLimits
    /// RFC 6855 §3: after ENABLE UTF8=ACCEPT, quoted strings may carry UTF-8.
    public var utf8Accept: Bool

    public init(limits: IMAPLimits = IMAPLimits(), utf8Accept: Bool = false) {
        self.limits = limits
        self.utf8Accept = utf8Accept
    }

    public func parse(_ frame: IMAPFrame) -> Result<IMAPCommand, IMAPCommandParseError> {
        parse(frame.bytes)
    }

    /// One complete command, final CRLF included.
    public func parse(_ bytes: [UInt8]) -> Result<IMAPCommand, IMAPCommandParseError> {
        var cursor = ParserCursor(bytes, limits: limits, utf8Accept: utf8Accept)
        let tag: String
        do throws(IMAPParseError) {
            if cursor.isAtLineEnd {
                throw cursor.syntax("empty command line")
            }
            tag = try GrammarParser.tag(&cursor)
            try cursor.space()
        } catch {
            return .failure(IMAPCommandParseError(tag: nil, error: error))
        }
        do throws(IMAPParseError) {
            return .success(IMAPCommand(tag: tag, try GrammarParser.commandKind(&cursor)))
        } catch {
            return .failure(IMAPCommandParseError(tag: tag, error: error))
        }
    }

    /// RFC 2177: the line that ends IDLE is `DONE` (case-insensitive).
    public func parseIdleDone(_ frame: IMAPFrame) -> Bool {
        let line = IMAPCommandFramer.withoutLineEnd(frame.bytes[...])
        return line.count == 4 && line.map(IMAPCharacter.uppercase).elementsEqual("DONE".utf8)
    }

    /// A line sent during AUTHENTICATE: base64, possibly empty, or `*` to cancel.
    public func parseAuthenticationResponse(_ frame: IMAPFrame) -> IMAPAuthenticationResponse {
        let line = IMAPCommandFramer.withoutLineEnd(frame.bytes[...])
        if line.elementsEqual("*".utf8) { return .cancel }
        guard let data = IMAPBase64.decode(line) else { return .invalid }
        return .data(data)
    }
}
