/// RFC 1939 §5–7, RFC 2449 §5 (CAPA), RFC 2595 §4 (STLS), RFC 5034 §4 (AUTH): the commands
/// a server understands. Message numbers are as the client sent them (1-based); the session
/// checks them against the maildrop.
public enum POP3Command: Sendable, Equatable {
    case user(String)
    /// RFC 1939 §7: everything after `PASS ` (spaces included) is the password.
    case pass(String)
    /// `AUTH` alone asks for the mechanism list (RFC 1734 clients still send it);
    /// `initialResponse` is base64, `=` being an empty one (RFC 5034 §4).
    case auth(mechanism: String?, initialResponse: String?)
    case stls
    case capa
    case stat
    case list(Int?)
    case retr(Int)
    case dele(Int)
    case noop
    case rset
    case quit
    /// RFC 1939 §7: message number and number of body lines.
    case top(Int, lines: Int)
    case uidl(Int?)
}

/// Why a command line was refused; each maps to one `-ERR` response.
public enum POP3SyntaxError: Error, Sendable, Equatable {
    case unknownCommand
    case syntax(String)
    case lineTooLong
    case invalidCharacters

    public var response: POP3Response {
        switch self {
        case .unknownCommand: return .error("Unknown command")
        case .syntax(let why): return .error("Syntax error: \(why)")
        case .lineTooLong: return .error("Line too long")
        case .invalidCharacters: return .error("Invalid characters in command")
        }
    }
}
