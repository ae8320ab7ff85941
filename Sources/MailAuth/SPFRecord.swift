import Foundation

/// Why an SPF record is refused (every one of these makes check_host() "permerror", RFC 7208
/// §4.6: a syntax error anywhere stops evaluation before anything is evaluated).
public enum SPFSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    case notSPF1
    case tooLong
    case unknownMechanism(String)
    case invalidTerm(String)
    case invalidMacro(String)
    case duplicateModifier(String)

    public var description: String {
        switch self {
        case .notSPF1: "record does not start with v=spf1"
        case .tooLong: "record too long"
        case .unknownMechanism(let term): "unknown mechanism \"\(term)\""
        case .invalidTerm(let term): "invalid term \"\(term)\""
        case .invalidMacro(let text): "invalid macro in \"\(text)\""
        case .duplicateModifier(let name): "\(name)= appears more than once"
        }
    }
}

/// A macro-string (RFC 7208 §7.1), parsed once and expanded per evaluation.
struct SPFMacroString: Sendable, Equatable {
    enum Element: Sendable, Equatable {
        case literal(String)
        /// `%{letter digits r delimiters}`; `escape` for an uppercase letter (§7.3).
        case macro(letter: Character, escape: Bool, rightmost: Int?, reverse: Bool, delimiters: [Character])
    }

    var elements: [Element]

    /// `allowExplanationLetters`: c, r and t are only allowed in explanation strings (§7.2).
    init(parsing text: Substring, allowExplanationLetters: Bool = false) throws(SPFSyntaxError) {
        var elements: [Element] = []
        var literal = ""
        var index = text.startIndex
        func fail() -> SPFSyntaxError { .invalidMacro(String(text.prefix(60))) }
        while index < text.endIndex {
            let character = text[index]
            guard character == "%" else {
                // macro-literal = %x21-24 / %x26-7E; explanations also carry spaces.
                guard let ascii = character.asciiValue, ascii >= 0x21 && ascii <= 0x7e || (allowExplanationLetters && ascii == 0x20) else {
                    throw fail()
                }
                literal.append(character)
                index = text.index(after: index)
                continue
            }
            let next = text.index(after: index)
            guard next < text.endIndex else { throw fail() }
            switch text[next] {
            case "%": literal.append("%")
            case "_": literal.append(" ")
            case "-": literal.append("%20")
            case "{":
                guard let close = text[next...].firstIndex(of: "}") else { throw fail() }
                let body = text[text.index(after: next)..<close]
                guard let letter = body.first else { throw fail() }
                let lower = Character(letter.lowercased())
                let letters: Set<Character> =
                    allowExplanationLetters
                    ? ["s", "l", "o", "d", "i", "p", "h", "v", "c", "r", "t"] : ["s", "l", "o", "d", "i", "p", "h", "v"]
                guard letters.contains(lower) else { throw fail() }
                var rest = body.dropFirst()
                let digits = rest.prefix { $0.isASCII && $0.isNumber }
                rest = rest.dropFirst(digits.count)
                var rightmost: Int?
                if !digits.isEmpty {
                    // §7.3: "If a DIGIT is specified, the value MUST be nonzero."
                    guard digits.count <= 3, let value = Int(digits), value > 0 else { throw fail() }
                    rightmost = value
                }
                var reverse = false
                if rest.first == "r" || rest.first == "R" {
                    reverse = true
                    rest = rest.dropFirst()
                }
                let allowed: Set<Character> = [".", "-", "+", ",", "/", "_", "="]
                guard rest.allSatisfy({ allowed.contains($0) }) else { throw fail() }
                if !literal.isEmpty {
                    elements.append(.literal(literal))
                    literal = ""
                }
                elements.append(
                    .macro(letter: lower, escape: letter.isUppercase, rightmost: rightmost, reverse: reverse, delimiters: Array(rest)))
                index = text.index(after: close)
                continue
            default:
                throw fail()
            }
            index = text.index(after: next)
        }
        if !literal.isEmpty { elements.append(.literal(literal)) }
        self.elements = elements
    }

    /// domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) /
    /// macro-expand (§7.1). Checked on the literal tail: a macro at the end is accepted.
    var isValidDomainSpec: Bool {
        guard let last = elements.last else { return false }
        guard case .literal(let tail) = last else { return true }
        var text = Substring(tail)
        if text.hasSuffix(".") { text = text.dropLast() }
        guard let dot = text.lastIndex(of: ".") else { return false }
        let label = text[text.index(after: dot)...]
        // toplabel: alphanumerics, not all digits, "-" only inside.
        guard !label.isEmpty, label.count <= 63, label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
            !label.allSatisfy({ $0.isNumber }), label.first != "-", label.last != "-"
        else { return false }
        // Every label before it must be non-empty unless a macro precedes it.
        let head = text[..<dot]
        if elements.count == 1 { return !head.isEmpty && !head.split(separator: ".", omittingEmptySubsequences: false).contains("") }
        return true
    }
}

/// A parsed SPF record (RFC 7208 §4.6, §5, §6, §12).
struct SPFRecord: Sendable, Equatable {
    enum Qualifier: Character, Sendable {
        case pass = "+"
        case fail = "-"
        case softfail = "~"
        case neutral = "?"

        var result: SPFResult.Result {
            switch self {
            case .pass: .pass
            case .fail: .fail
            case .softfail: .softfail
            case .neutral: .neutral
            }
        }
    }

    enum Mechanism: Sendable, Equatable {
        case all
        case include(SPFMacroString)
        case a(SPFMacroString?, ipv4Prefix: Int, ipv6Prefix: Int)
        case mx(SPFMacroString?, ipv4Prefix: Int, ipv6Prefix: Int)
        case ptr(SPFMacroString?)
        case ip4(IPAddress, prefix: Int)
        case ip6(IPAddress, prefix: Int)
        case exists(SPFMacroString)
    }

    struct Directive: Sendable, Equatable {
        var qualifier: Qualifier
        var mechanism: Mechanism
        /// The term as written, for the result's reason.
        var text: String
    }

    var directives: [Directive] = []
    var redirect: SPFMacroString?
    var explanation: SPFMacroString?

    /// True when `text` selects itself as an SPF record (§4.5): "v=spf1" then a space or end.
    static func isSPF1(_ text: String) -> Bool {
        let lowered = text.prefix(7).lowercased()
        return lowered == "v=spf1" || lowered == "v=spf1 "
    }

    init(parsing text: String) throws(SPFSyntaxError) {
        guard text.utf8.count <= MailAuthLimits.maxSPFRecordLength else { throw .tooLong }
        guard Self.isSPF1(text) else { throw .notSPF1 }
        // terms are separated by 1*SP (§12); other white space is a syntax error.
        let terms = text.dropFirst(6).split(separator: " ")
        for term in terms {
            if let modifier = Self.modifierName(term) {
                let value = term[term.index(after: modifier.endIndex)...]
                switch modifier.lowercased() {
                case "redirect":
                    guard redirect == nil else { throw .duplicateModifier("redirect") }
                    redirect = try Self.domainSpec(value, term: term)
                case "exp":
                    guard explanation == nil else { throw .duplicateModifier("exp") }
                    explanation = try Self.domainSpec(value, term: term)
                default:
                    // §6: unknown modifiers are ignored, but must be syntactically valid.
                    _ = try SPFMacroString(parsing: value)
                }
                continue
            }
            directives.append(try Self.directive(term))
        }
    }

    /// The modifier name when `term` is a modifier: name "=" with name = ALPHA *( ALPHA /
    /// DIGIT / "-" / "_" / "." ).
    private static func modifierName(_ term: Substring) -> Substring? {
        guard let equals = term.firstIndex(of: "=") else { return nil }
        let name = term[..<equals]
        guard let first = name.first, first.isASCII, first.isLetter,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else { return nil }
        return name
    }

    private static func domainSpec(_ text: Substring, term: Substring) throws(SPFSyntaxError) -> SPFMacroString {
        let spec = try SPFMacroString(parsing: text)
        guard spec.isValidDomainSpec else { throw .invalidTerm(String(term.prefix(80))) }
        return spec
    }

    /// "/" ( "0" / %x31-39 0*1DIGIT ) within 0...max, no leading zero.
    private static func prefixLength(_ text: Substring, max: Int) -> Int? {
        guard !text.isEmpty, text.count <= 3, text.allSatisfy({ $0.isASCII && $0.isNumber }), text == "0" || text.first != "0",
            let value = Int(text), value <= max
        else { return nil }
        return value
    }

    /// Splits a trailing dual-cidr-length ("/24", "//64", "/24//64") off `argument`.
    private static func dualCIDR(_ argument: Substring, term: Substring) throws(SPFSyntaxError) -> (Substring, Int, Int) {
        var rest = argument
        var ipv4 = 32
        var ipv6 = 128
        if let range = rest.range(of: "//", options: .backwards) {
            guard let value = prefixLength(rest[range.upperBound...], max: 128) else { throw .invalidTerm(String(term.prefix(80))) }
            ipv6 = value
            rest = rest[..<range.lowerBound]
        }
        if let slash = rest.lastIndex(of: "/"), rest[rest.index(after: slash)...].allSatisfy({ $0.isNumber }) {
            guard let value = prefixLength(rest[rest.index(after: slash)...], max: 32) else { throw .invalidTerm(String(term.prefix(80))) }
            ipv4 = value
            rest = rest[..<slash]
        }
        return (rest, ipv4, ipv6)
    }

    private static func directive(_ term: Substring) throws(SPFSyntaxError) -> Directive {
        var body = term
        var qualifier = Qualifier.pass
        if let first = body.first, let explicit = Qualifier(rawValue: first) {
            qualifier = explicit
            body = body.dropFirst()
        }
        let nameEnd = body.firstIndex { $0 == ":" || $0 == "/" } ?? body.endIndex
        let name = body[..<nameEnd].lowercased()
        let argument = body[nameEnd...]
        let text = String(term.prefix(120))
        let invalid = SPFSyntaxError.invalidTerm(String(term.prefix(80)))

        func requiredDomain() throws(SPFSyntaxError) -> SPFMacroString {
            guard argument.first == ":" else { throw invalid }
            return try domainSpec(argument.dropFirst(), term: term)
        }

        switch name {
        case "all":
            guard argument.isEmpty else { throw invalid }
            return Directive(qualifier: qualifier, mechanism: .all, text: text)
        case "include":
            return Directive(qualifier: qualifier, mechanism: .include(try requiredDomain()), text: text)
        case "exists":
            return Directive(qualifier: qualifier, mechanism: .exists(try requiredDomain()), text: text)
        case "a", "mx":
            let (domainPart, ipv4, ipv6) = try dualCIDR(argument, term: term)
            var domain: SPFMacroString?
            if !domainPart.isEmpty {
                guard domainPart.first == ":" else { throw invalid }
                domain = try domainSpec(domainPart.dropFirst(), term: term)
            }
            let mechanism: Mechanism =
                name == "a" ? .a(domain, ipv4Prefix: ipv4, ipv6Prefix: ipv6) : .mx(domain, ipv4Prefix: ipv4, ipv6Prefix: ipv6)
            return Directive(qualifier: qualifier, mechanism: mechanism, text: text)
        case "ptr":
            var domain: SPFMacroString?
            if !argument.isEmpty { domain = try requiredDomain() }
            return Directive(qualifier: qualifier, mechanism: .ptr(domain), text: text)
        case "ip4":
            guard argument.first == ":" else { throw invalid }
            var network = argument.dropFirst()
            var prefix = 32
            if let slash = network.firstIndex(of: "/") {
                guard let value = prefixLength(network[network.index(after: slash)...], max: 32) else { throw invalid }
                prefix = value
                network = network[..<slash]
            }
            guard let bytes = IPAddress.parseIPv4(network) else { throw invalid }
            return Directive(qualifier: qualifier, mechanism: .ip4(IPAddress(bytes: bytes), prefix: prefix), text: text)
        case "ip6":
            guard argument.first == ":" else { throw invalid }
            var network = argument.dropFirst()
            var prefix = 128
            if let slash = network.firstIndex(of: "/") {
                guard let value = prefixLength(network[network.index(after: slash)...], max: 128) else { throw invalid }
                prefix = value
                network = network[..<slash]
            }
            guard let bytes = IPAddress.parseIPv6(network) else { throw invalid }
            return Directive(qualifier: qualifier, mechanism: .ip6(IPAddress(bytes: bytes), prefix: prefix), text: text)
        default:
            throw .unknownMechanism(String(term.prefix(80)))
        }
    }
}
