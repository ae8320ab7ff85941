/// Parses one POP3 command line (without its CRLF) into a `POP3Command`, trusting nothing:
/// length-bounded, case-insensitive keywords (RFC 1939 §3), no control characters, UTF-8
/// only, message numbers as plain decimal digits.
public struct POP3CommandParser: Sendable {
    /// RFC 2449 §4 limits a command line to 255 octets; a little more is tolerated (long
    /// addresses and passwords). The session's framer enforces the same bound before parsing.
    public static let defaultMaxLineLength = 1024
    /// RFC 5321 §4.5.3.1.3: a path (our user names are addresses) is at most 256 octets.
    public static let maxUserLength = 256
    /// SASL mechanism names are at most 20 characters (RFC 4422 §3.1).
    public static let maxMechanismLength = 20

    public let maxLineLength: Int

    public init(maxLineLength: Int = Self.defaultMaxLineLength) {
        self.maxLineLength = maxLineLength
    }

    public func parse(_ line: [UInt8]) -> Result<POP3Command, POP3SyntaxError> {
        guard line.count <= maxLineLength else { return .failure(.lineTooLong) }
        // NUL, bare CR/LF and other controls never belong in a command (tab is tolerated as a
        // separator elsewhere, and inside a password).
        guard !line.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7f }) else {
            return .failure(.invalidCharacters)
        }
        guard let text = String(validating: line, as: UTF8.self) else { return .failure(.invalidCharacters) }
        let keywordEnd = text.firstIndex(of: " ") ?? text.endIndex
        let keyword = text[..<keywordEnd]
        guard (3...4).contains(keyword.utf8.count), keyword.utf8.allSatisfy(Self.isASCIILetter) else {
            return .failure(.unknownCommand)
        }
        // RFC 1939 §7: the password is everything after the single space, spaces included.
        let rawArgument = keywordEnd < text.endIndex ? String(text[text.index(after: keywordEnd)...]) : ""
        let arguments = rawArgument.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)

        switch keyword.uppercased() {
        case "USER":
            guard arguments.count == 1 else { return .failure(.syntax("USER name")) }
            guard arguments[0].utf8.count <= Self.maxUserLength else { return .failure(.syntax("user name too long")) }
            return .success(.user(arguments[0]))
        case "PASS":
            guard !rawArgument.isEmpty else { return .failure(.syntax("PASS password")) }
            return .success(.pass(rawArgument))
        case "AUTH":
            return parseAuth(arguments)
        case "STLS": return noArgument(arguments, .stls)
        case "CAPA": return noArgument(arguments, .capa)
        case "STAT": return noArgument(arguments, .stat)
        case "NOOP": return noArgument(arguments, .noop)
        case "RSET": return noArgument(arguments, .rset)
        case "QUIT": return noArgument(arguments, .quit)
        case "LIST":
            return optionalMessageNumber(arguments).map(POP3Command.list)
        case "UIDL":
            return optionalMessageNumber(arguments).map(POP3Command.uidl)
        case "RETR":
            guard arguments.count == 1 else { return .failure(.syntax("RETR msg")) }
            return number(arguments[0]).map(POP3Command.retr)
        case "DELE":
            guard arguments.count == 1 else { return .failure(.syntax("DELE msg")) }
            return number(arguments[0]).map(POP3Command.dele)
        case "TOP":
            guard arguments.count == 2 else { return .failure(.syntax("TOP msg n")) }
            switch (number(arguments[0]), number(arguments[1])) {
            case (.success(let message), .success(let lines)): return .success(.top(message, lines: lines))
            case (.failure(let error), _), (_, .failure(let error)): return .failure(error)
            }
        default:
            return .failure(.unknownCommand)
        }
    }

    private func noArgument(_ arguments: [String], _ command: POP3Command) -> Result<POP3Command, POP3SyntaxError> {
        arguments.isEmpty ? .success(command) : .failure(.syntax("no argument allowed"))
    }

    private func optionalMessageNumber(_ arguments: [String]) -> Result<Int?, POP3SyntaxError> {
        switch arguments.count {
        case 0: return .success(nil)
        case 1: return number(arguments[0]).map { Optional($0) }
        default: return .failure(.syntax("at most one message number"))
        }
    }

    /// A non-negative decimal number; one too large for `Int` becomes `Int.max`, which no
    /// maildrop reaches, so the session answers "no such message" rather than a syntax error.
    private func number(_ text: String) -> Result<Int, POP3SyntaxError> {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return .failure(.syntax("expected a number, got \"\(text.prefix(20))\""))
        }
        return .success(Int(text) ?? Int.max)
    }

    private func parseAuth(_ arguments: [String]) -> Result<POP3Command, POP3SyntaxError> {
        guard arguments.count <= 2 else { return .failure(.syntax("AUTH mechanism [initial-response]")) }
        guard let mechanism = arguments.first else { return .success(.auth(mechanism: nil, initialResponse: nil)) }
        // RFC 4422 §3.1: upper-case letters, digits, hyphen and underscore.
        guard mechanism.utf8.count <= Self.maxMechanismLength,
            mechanism.utf8.allSatisfy({ Self.isASCIILetter($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x5f })
        else {
            return .failure(.syntax("invalid SASL mechanism name"))
        }
        return .success(.auth(mechanism: mechanism.uppercased(), initialResponse: arguments.count == 2 ? arguments[1] : nil))
    }

    private static func isASCIILetter(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
    }
}
