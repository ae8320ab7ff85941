/// Parses one SMTP command line (without its CRLF) into an `SMTPCommand`, trusting nothing:
/// length-bounded, ASCII verbs, RFC 5321 §4.1.2 paths with quoted local parts, UTF-8 only
/// where SMTPUTF8 (RFC 6531) allows it, and no control characters anywhere.
public struct SMTPCommandParser: Sendable {
    /// RFC 5321 §4.5.3.1.4: 512 octets including CRLF; extensions may add up to 2 × 512 more
    /// for parameters, so a little more is tolerated.
    public static let maxLineLength = 2048
    /// RFC 5321 §4.5.3.1.1 and .2: local part 64 octets, domain 255.
    public static let maxLocalPartLength = 64
    public static let maxDomainLength = 255

    public init() {}

    public func parse(_ line: [UInt8]) -> Result<SMTPCommand, SMTPSyntaxError> {
        guard line.count <= Self.maxLineLength else { return .failure(.lineTooLong) }
        // NUL, bare CR/LF and other controls are never legitimate in a command (tab is tolerated as space).
        guard !line.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7f }) else {
            return .failure(.invalidCharacters)
        }
        guard let text = String(validating: line, as: UTF8.self) else { return .failure(.invalidCharacters) }
        let trimmed = text.drop { $0 == " " || $0 == "\t" }
        let verbEnd = trimmed.firstIndex { $0 == " " || $0 == "\t" } ?? trimmed.endIndex
        let verb = trimmed[..<verbEnd].uppercased()
        let argument = String(trimmed[verbEnd...].drop { $0 == " " || $0 == "\t" }).trimmingTrailingWhitespace()

        switch verb {
        case "HELO":
            guard !argument.isEmpty else { return .failure(.syntax("HELO needs a domain")) }
            return .success(.helo(argument))
        case "EHLO":
            guard !argument.isEmpty else { return .failure(.syntax("EHLO needs a domain or address literal")) }
            return .success(.ehlo(argument))
        case "MAIL":
            return parseMail(argument)
        case "RCPT":
            return parseRcpt(argument)
        case "DATA":
            return noArgument(argument, .data)
        case "BDAT":
            return parseBdat(argument)
        case "RSET":
            return noArgument(argument, .rset)
        case "NOOP":
            return .success(.noop)  // RFC 5321 §4.1.1.9: a parameter may be given and is ignored
        case "QUIT":
            return noArgument(argument, .quit)
        case "VRFY":
            guard !argument.isEmpty else { return .failure(.syntax("VRFY needs an argument")) }
            return .success(.vrfy(argument))
        case "HELP":
            return .success(.help)
        case "STARTTLS":
            return noArgument(argument, .startTLS)
        case "AUTH":
            let parts = argument.split(separator: " ", omittingEmptySubsequences: true)
            guard (1...2).contains(parts.count), parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                return .failure(.syntax("AUTH mechanism [initial-response]"))
            }
            return .success(.auth(mechanism: parts[0].uppercased(), initialResponse: parts.count == 2 ? String(parts[1]) : nil))
        default:
            return .failure(.unknownCommand(String(verb.prefix(32))))
        }
    }

    private func noArgument(_ argument: String, _ command: SMTPCommand) -> Result<SMTPCommand, SMTPSyntaxError> {
        argument.isEmpty ? .success(command) : .failure(.syntax("no argument allowed"))
    }

    private func parseMail(_ argument: String) -> Result<SMTPCommand, SMTPSyntaxError> {
        guard let rest = stripPrefix(argument, "FROM:") else { return .failure(.syntax("expected MAIL FROM:<address>")) }
        switch parsePath(rest, allowNull: true) {
        case .failure(let error): return .failure(error)
        case .success(let (mailbox, remainder)):
            switch parseParameters(remainder) {
            case .failure(let error): return .failure(error)
            case .success(let parameters): return .success(.mail(from: mailbox, parameters: parameters))
            }
        }
    }

    private func parseRcpt(_ argument: String) -> Result<SMTPCommand, SMTPSyntaxError> {
        guard let rest = stripPrefix(argument, "TO:") else { return .failure(.syntax("expected RCPT TO:<address>")) }
        switch parsePath(rest, allowNull: false) {
        case .failure(let error): return .failure(error)
        case .success(let (mailbox, remainder)):
            guard let mailbox else { return .failure(.syntax("null recipient")) }
            switch parseParameters(remainder) {
            case .failure(let error): return .failure(error)
            case .success(let parameters): return .success(.rcpt(to: mailbox, parameters: parameters))
            }
        }
    }

    private func parseBdat(_ argument: String) -> Result<SMTPCommand, SMTPSyntaxError> {
        let parts = argument.split(separator: " ", omittingEmptySubsequences: true)
        guard (1...2).contains(parts.count), parts[0].count <= 18, parts[0].allSatisfy(\.isASCIIDigit), let size = Int(parts[0]) else {
            return .failure(.syntax("BDAT chunk-size [LAST]"))
        }
        if parts.count == 2 {
            guard parts[1].uppercased() == "LAST" else { return .failure(.syntax("BDAT chunk-size [LAST]")) }
            return .success(.bdat(size: size, last: true))
        }
        return .success(.bdat(size: size, last: false))
    }

    private func stripPrefix(_ text: String, _ prefix: String) -> Substring? {
        guard text.uppercased().hasPrefix(prefix) else { return nil }
        // RFC 5321 has no space after the colon, but many clients send one.
        return text.dropFirst(prefix.count).drop { $0 == " " }
    }

    /// `<>`, `<local@domain>`, `<@route,@route:local@domain>`, and `<Postmaster>` for RCPT.
    private func parsePath(_ text: Substring, allowNull: Bool) -> Result<(SMTPMailbox?, Substring), SMTPSyntaxError> {
        guard text.first == "<" else { return .failure(.syntax("address must be in angle brackets")) }
        var inQuotes = false
        var escaped = false
        var closing: Substring.Index?
        var index = text.index(after: text.startIndex)
        while index < text.endIndex {
            let character = text[index]
            if escaped {
                escaped = false
            } else if character == "\\" && inQuotes {
                escaped = true
            } else if character == "\"" {
                inQuotes.toggle()
            } else if character == ">" && !inQuotes {
                closing = index
                break
            }
            index = text.index(after: index)
        }
        guard let closing else { return .failure(.syntax("unterminated address")) }
        var path = text[text.index(after: text.startIndex)..<closing]
        let remainder = text[text.index(after: closing)...]
        if path.isEmpty {
            return allowNull ? .success((nil, remainder)) : .failure(.syntax("empty address"))
        }
        // RFC 5321 §4.1.2 / C: a source route is accepted and ignored.
        if path.first == "@", let colon = path.firstIndex(of: ":") { path = path[path.index(after: colon)...] }
        if !allowNull, path.uppercased() == "POSTMASTER" {
            return .success((SMTPMailbox(localPart: "Postmaster", domain: ""), remainder))
        }
        guard let at = path.lastIndex(of: "@") else { return .failure(.syntax("address has no domain")) }
        let localPart = String(path[..<at])
        let domain = String(path[path.index(after: at)...])
        guard !localPart.isEmpty, localPart.utf8.count <= Self.maxLocalPartLength, isValidLocalPart(localPart) else {
            return .failure(.syntax("invalid local part"))
        }
        guard !domain.isEmpty, domain.utf8.count <= Self.maxDomainLength, isValidDomain(domain) else {
            return .failure(.syntax("invalid domain"))
        }
        return .success((SMTPMailbox(localPart: localPart, domain: domain), remainder))
    }

    /// Dot-string (atoms separated by single dots) or a quoted string; UTF-8 allowed (SMTPUTF8).
    private func isValidLocalPart(_ localPart: String) -> Bool {
        if localPart.hasPrefix("\"") {
            return localPart.count >= 2 && localPart.hasSuffix("\"")
        }
        let atoms = localPart.split(separator: ".", omittingEmptySubsequences: false)
        let special: Set<Character> = ["!", "#", "$", "%", "&", "'", "*", "+", "-", "/", "=", "?", "^", "_", "`", "{", "|", "}", "~"]
        return atoms.allSatisfy { atom in
            !atom.isEmpty && atom.allSatisfy { $0.isLetter || $0.isNumber || special.contains($0) || !$0.isASCII }
        }
    }

    /// A domain name (letters, digits, hyphens, dots; UTF-8 labels allowed) or an address literal.
    private func isValidDomain(_ domain: String) -> Bool {
        if domain.hasPrefix("[") { return domain.hasSuffix("]") && domain.count > 2 && !domain.dropFirst().dropLast().contains(where: { $0 == "[" || $0 == "]" || $0 == " " }) }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || !$0.isASCII }
        }
    }

    /// RFC 5321 §4.1.2 Mail-parameters: `keyword[=value]` separated by spaces.
    private func parseParameters(_ text: Substring) -> Result<[SMTPParameter], SMTPSyntaxError> {
        var parameters: [SMTPParameter] = []
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            let pieces = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let keyword = pieces[0]
            guard !keyword.isEmpty, keyword.count <= 64, keyword.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                return .failure(.syntax("invalid parameter `\(word.prefix(32))`"))
            }
            let value = pieces.count == 2 ? String(pieces[1]) : nil
            if let value, value.isEmpty || value.contains("=") && keyword.uppercased() != "AUTH" && keyword.uppercased() != "ENVID" {
                return .failure(.syntax("invalid value for \(keyword)"))
            }
            guard parameters.count < 16 else { return .failure(.syntax("too many parameters")) }
            parameters.append(SMTPParameter(keyword.uppercased(), value))
        }
        return .success(parameters)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var result = self
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
