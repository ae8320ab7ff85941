/// An extended response code (RFC 2449 §8), sent in brackets after `-ERR`.
public struct POP3ResponseCode: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    /// RFC 2449 §8.1.1: the maildrop is locked by another session.
    public static let inUse = POP3ResponseCode("IN-USE")
    /// RFC 2449 §8.1.2: the user logged in too recently (LOGIN-DELAY).
    public static let loginDelay = POP3ResponseCode("LOGIN-DELAY")
    /// RFC 3206 §4: a temporary problem on the server; try again later.
    public static let sysTemp = POP3ResponseCode("SYS/TEMP")
    /// RFC 3206 §4: a permanent problem on the server.
    public static let sysPerm = POP3ResponseCode("SYS/PERM")
    /// RFC 3206 §5 (AUTH-RESP-CODE): the credentials were wrong.
    public static let auth = POP3ResponseCode("AUTH")
}

/// One POP3 response: `+OK`/`-ERR` with optional response code and text, the lines of a
/// multi-line response (RFC 1939 §3), or a SASL continuation (`+ `, RFC 5034 §4).
public struct POP3Response: Sendable, Equatable {
    public enum Status: Sendable, Equatable {
        case ok
        case error
        /// A SASL server challenge; `text` is the base64 (empty for PLAIN).
        case continuation
    }

    public var status: Status
    public var code: POP3ResponseCode?
    public var text: String
    /// The lines after the status line, for a multi-line response; nil for a single line.
    /// Encoding dot-stuffs them and adds the terminating `.` line.
    public var lines: [String]?

    public init(status: Status, code: POP3ResponseCode? = nil, text: String, lines: [String]? = nil) {
        self.status = status
        self.code = code
        self.text = text
        self.lines = lines
    }

    public static func ok(_ text: String, lines: [String]? = nil) -> POP3Response {
        POP3Response(status: .ok, text: text, lines: lines)
    }

    public static func error(_ code: POP3ResponseCode?, _ text: String) -> POP3Response {
        POP3Response(status: .error, code: code, text: text)
    }

    public static func error(_ text: String) -> POP3Response {
        POP3Response(status: .error, text: text)
    }

    public static func continuation(_ base64: String = "") -> POP3Response {
        POP3Response(status: .continuation, text: base64)
    }

    /// The wire form, every line CRLF-terminated. Text never carries a line break (one in
    /// `text` would let a value echoed from input forge a response), so CR and LF become spaces.
    public func encoded() -> String {
        var out: String
        switch status {
        case .ok: out = "+OK"
        case .error: out = "-ERR"
        case .continuation: out = "+"
        }
        if let code { out += " [\(code.rawValue)]" }
        let text = Self.singleLine(text)
        if status == .continuation || !text.isEmpty { out += " " + text }
        out += "\r\n"
        if let lines {
            for line in lines {
                // RFC 1939 §3: a line starting with the termination octet gets one more.
                let line = Self.singleLine(line)
                out += (line.hasPrefix(".") ? "." : "") + line + "\r\n"
            }
            out += ".\r\n"
        }
        return out
    }

    public var bytes: [UInt8] { Array(encoded().utf8) }

    private static func singleLine(_ text: String) -> String {
        guard text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else { return text }
        return String(text.map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : $0 })
    }
}
